"""OpenSim Moco's MocoInverse: muscle activations and excitations with activation dynamics."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

import numpy as np
import opensim as osim

from .model import ModelPose

__all__ = ["moco_inverse"]


@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """Silence what the C++ solver writes to the process's stdout (file descriptor 1)."""
    if verbose:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def moco_inverse(
    pose: ModelPose,
    time: np.ndarray,
    angle: np.ndarray,
    mesh_interval: float = 0.02,
    min_activation: float = 0.0,
    verbose: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Activations and excitations of the posed model's muscles by MocoInverse.

    MocoInverse prescribes the motion and finds the muscle excitations of least squared
    effort (excitations and activations, with the muscles' first-order activation dynamics)
    that produce it. Initial activations are penalised too
    (``set_minimize_sum_squared_activations(True)``).

    Parameters
    ----------
    pose : ModelPose
        The posed model; its current load mass is used. Other coordinates stay locked.
    time, angle : arrays of shape (n_frames,)
        Times (s) and the coordinate's angle (rad); velocities come from a spline of the angle.
    mesh_interval : float, default=0.02
        Moco mesh interval (s).
    min_activation : float, default=0
        Lower bound on every muscle's activation and excitation (a co-contraction floor).
    verbose : bool, default=False
        Let IPOPT print its iterations (they are silenced otherwise).

    Returns
    -------
    activation, excitation : ndarrays of shape (n_frames, n_muscles)
        Interpolated at ``time``, muscles in the model's order.
    """
    model = osim.Model(pose.model)
    model.initSystem()
    table = osim.TimeSeriesTable()
    coordinates = model.getCoordinateSet()
    labels, columns = [], []
    for i in range(coordinates.getSize()):
        coordinate = coordinates.get(i)
        name = coordinate.getName()
        values = (
            np.asarray(angle, dtype=float)
            if name == pose.coordinate_name
            else np.full(len(time), pose.others[name])
        )
        labels.append(f"{coordinate.getAbsolutePathString()}/value")
        columns.append(values)
    table.setColumnLabels(labels)
    table.addTableMetaDataString("inDegrees", "no")
    data = np.column_stack(columns)
    for k, t in enumerate(time):
        table.appendRow(float(t), osim.RowVector(data[k].tolist()))
    processor = osim.ModelProcessor(model)
    processor.append(osim.ModOpIgnoreTendonCompliance())
    inverse = osim.MocoInverse()
    inverse.setModel(processor)
    inverse.setKinematics(osim.TableProcessor(table))
    inverse.set_initial_time(float(time[0]))
    inverse.set_final_time(float(time[-1]))
    inverse.set_mesh_interval(mesh_interval)
    inverse.set_kinematics_allow_extra_columns(True)
    inverse.set_minimize_sum_squared_activations(True)
    study = inverse.initialize()
    problem = study.updProblem()
    muscles = model.getMuscles()
    names = [muscles.get(i).getName() for i in range(muscles.getSize())]
    if min_activation > 0:
        for name in names:
            path = muscles.get(name).getAbsolutePathString()
            problem.setStateInfo(f"{path}/activation", [float(min_activation), 1.0])
            problem.setControlInfo(path, [float(min_activation), 1.0])
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as folder, _quiet(verbose):
        os.chdir(folder)  # Moco writes its solution files to the working directory
        try:
            solution = study.solve()
        finally:
            os.chdir(cwd)
    if not solution.success():
        raise RuntimeError(f"MocoInverse did not converge: {solution.getStatus()}")
    times = np.asarray(solution.getTimeMat())
    activation = np.empty((len(time), len(names)))
    excitation = np.empty_like(activation)
    for j, name in enumerate(names):
        path = muscles.get(name).getAbsolutePathString()
        activation[:, j] = np.interp(
            time, times, np.asarray(solution.getStateMat(f"{path}/activation"))
        )
        excitation[:, j] = np.interp(time, times, np.asarray(solution.getControlMat(path)))
    return activation, excitation
