"""deepemg.opensim.export_subject: a subject's personalised muscles written back into its .osim.

OpenSim is the oracle: the written model is loaded by OpenSim, which computes its muscles'
tendon forces over angles, velocities and activations; deepemg's torch physics driven with the
subject's parameters must give the same forces (0.1 % RMS per muscle, as the physics-vs-OpenSim
tests). The subject's parameters are set by hand far from their nominal values, so a model
written without them would fail.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import opensim as osim
import pytest
import torch
from sklearn.exceptions import NotFittedError

from deepemg import NMMRegressor
from deepemg import opensim as bridge
from deepemg.opensim import ELBOW_MODEL_PATH, export_subject, read_export_notes

from ..conftest import ARM26_LOCKED, FAST_NMM, joint_channels, opensim_pose, simulated

TOLERANCE = 1e-3  # relative RMS per muscle, as tight as tests/physics/test_torque.py's
SCALES = {
    "max_isometric_force_scale": [1.6, 0.6, 1.3, 0.75, 1.9, 0.55, 1.2],
    "optimal_fiber_length_scale": [1.15, 0.85, 1.1, 0.9, 1.05, 0.82, 1.18],
    "tendon_slack_length_scale": [0.92, 1.08, 0.95, 1.06, 0.91, 1.04, 0.97],
    "shape_factor": [-0.5, -1.0, -1.5, -2.0, -2.5, -0.2, -0.7],
    "g1": -0.3,
    "g2": -0.7,
    "delay": 0.065,
    "moment_arm_scale": 1.1,
    "emg_level": [0.5, -0.5, 1.0, 0.2, -0.2, 0.3, -1.0],  # used only by the muscles without EMG
}
"""A subject far from nominal (F0 x0.55-1.9, l_opt x0.82-1.18, l_ts x0.91-1.08...)."""


def _personalise(estimator, row: int = 0, scales=SCALES) -> None:
    """Set subject ``row``'s parameters to ``scales`` (physical values), by hand."""
    table = estimator.net_.module_.subject_parameters
    n = len(estimator.muscles_)
    with torch.no_grad():
        for spec in table.specs:
            value = np.asarray(scales[spec.name], dtype=float)
            value = value[:n].copy() if value.ndim else value
            if spec.name == "max_isometric_force_scale":  # held for the muscles without EMG
                value[estimator.net_.module_.levelled] = 1.0
            fraction = torch.as_tensor((value - spec.lower) / (spec.upper - spec.lower))
            table.unconstrained[spec.name][row] = torch.logit(fraction)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return simulated(tmp_path_factory, 2, 2, 1.5)


@pytest.fixture(scope="module")
def nmm(data):
    """A tiny NMM of two subjects; S02 personalised by hand, S01 as fitted."""
    estimator = NMMRegressor(random_state=0, **FAST_NMM)
    estimator.fit(data.X, data.y, subject_ids=data.groups)
    _personalise(estimator, row=1)
    return estimator


def _grid(physics):
    """Angles across the range x velocities {0, +-2 rad/s} x activations {0, 0.3, 1}."""
    low, high = physics.coordinate_range
    angle, velocity, activation = np.meshgrid(
        np.linspace(low + 0.05, high - 0.05, 9), [0.0, -2.0, 2.0], [0.0, 0.3, 1.0], indexing="ij"
    )
    activation = np.repeat(activation.reshape(-1, 1), physics.n_muscles, axis=1)
    return angle.ravel(), velocity.ravel(), activation


def _opensim_forces(path, physics, locked=None):
    """Tendon forces OpenSim computes with the written model as it is (no conversion)."""
    model = bridge.load_model(path)
    pose = bridge.ModelPose(model, physics.coordinate, locked)
    angle, velocity, activation = _grid(physics)
    return bridge.muscle_tendon_forces(pose, physics.muscles, activation, angle, velocity)


def _torch_forces(estimator, row, moment_arm_scale=1.0):
    """deepemg's forces with subject ``row``'s parameters; the moment-arm scale, which an
    OpenSim model cannot hold, set to ``moment_arm_scale`` (None: the subject's)."""
    physics = estimator.physics_
    with torch.no_grad():
        params = dict(estimator.net_.module_.subject_parameters(torch.tensor(row)))
        if moment_arm_scale is not None:
            params["moment_arm_scale"] = torch.tensor(moment_arm_scale, dtype=torch.float64)
        angle, velocity, activation = _grid(physics)
        return physics.muscle_force(
            torch.tensor(activation), torch.tensor(angle), torch.tensor(velocity), params
        ).numpy()


def _relative_rms(got, expected):
    """Relative RMS difference per muscle (columns)."""
    return np.sqrt(((got - expected) ** 2).mean(axis=0)) / np.sqrt((expected**2).mean(axis=0))


def test_exported_forces_are_the_subjects(nmm, tmp_path):
    path = export_subject(nmm, "S02", tmp_path / "S02.osim")
    physics = nmm.physics_
    model = bridge.load_model(path)
    for name in physics.muscles:  # the muscles as deepemg models them
        muscle = osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(name))
        assert muscle is not None
        assert muscle.get_ignore_tendon_compliance()
    expected = _opensim_forces(path, physics)
    error = _relative_rms(_torch_forces(nmm, 1), expected)
    assert error.max() < TOLERANCE, dict(zip(physics.muscles, error.round(7), strict=True))
    # the export changed the forces: the file's own muscles, or deepemg's nominal muscles,
    # are far from the subject's
    nominal = _opensim_forces(ELBOW_MODEL_PATH, physics)
    # (> 5 %: the deep muscles' strength is held nominal, their other parameters are not)
    assert _relative_rms(nominal, expected).min() > 0.05
    with torch.no_grad():
        angle, velocity, activation = _grid(physics)
        population = physics.muscle_force(
            torch.tensor(activation), torch.tensor(angle), torch.tensor(velocity)
        ).numpy()
    assert _relative_rms(population, expected).min() > 0.05
    # the moment-arm scale (1.1) is not in the file: with it, deepemg's forces differ
    assert _relative_rms(_torch_forces(nmm, 1, moment_arm_scale=None), expected).max() > 0.01


def test_a_fitted_subject_is_exported_as_fitted(nmm, tmp_path):
    path = nmm.export_subject("S01", tmp_path / "S01.osim")  # the estimator's thin method
    error = _relative_rms(_torch_forces(nmm, 0), _opensim_forces(path, nmm.physics_))
    assert error.max() < TOLERANCE


def test_properties_written_are_the_file_times_the_scales(nmm, tmp_path):
    path = export_subject(nmm, "S02", tmp_path / "S02.osim")
    original, exported = bridge.load_model(ELBOW_MODEL_PATH), bridge.load_model(path)
    for j, name in enumerate(nmm.muscles_):
        before, after = original.getMuscles().get(name), exported.getMuscles().get(name)
        for getter, scale in (
            ("getMaxIsometricForce", "max_isometric_force_scale"),
            ("getOptimalFiberLength", "optimal_fiber_length_scale"),
            ("getTendonSlackLength", "tendon_slack_length_scale"),
        ):
            held = scale == "max_isometric_force_scale" and j in nmm.net_.module_.levelled
            want = getattr(before, getter)() * (1.0 if held else SCALES[scale][j])
            assert getattr(after, getter)() == pytest.approx(want, rel=1e-12), (name, getter)
        # what deepemg cannot write is left as in the file
        assert after.getPennationAngleAtOptimalFiberLength() == pytest.approx(
            before.getPennationAngleAtOptimalFiberLength(), rel=1e-15
        )


def test_notes_record_what_opensim_cannot_hold(nmm, tmp_path):
    path = export_subject(nmm, "S02", tmp_path / "S02.osim")
    notes = read_export_notes(path)
    assert notes["subject"] == "S02"
    assert notes["source"] == "elbow.osim"
    assert sorted(notes["not_in_opensim"]) == [
        "delay",
        "emg_level",  # the deep muscles' EMG level: an EMG property, not a muscle's
        "g1",
        "g2",
        "moment_arm_scale",
        "shape_factor",
    ]
    parameters = notes["parameters"]
    for name in ("g1", "g2", "delay", "moment_arm_scale"):
        assert parameters[name] == pytest.approx(SCALES[name], rel=1e-12)
    for j, muscle in enumerate(nmm.muscles_):
        assert parameters["shape_factor"][muscle] == pytest.approx(
            SCALES["shape_factor"][j], rel=1e-12
        )
    model = bridge.load_model(path)  # kept: its muscles live as long as it does
    bra = model.getMuscles().get("BRA")
    assert notes["written"]["BRA"]["max_isometric_force"] == bra.getMaxIsometricForce()
    text = path.read_text()
    assert "shape_factor A" in text
    assert "delay = 65.0 ms" in text
    assert "moment_arm_scale = 1.1000" in text
    # the notes are an XML comment: OpenSim reads the model (above) and drops them on saving
    again = tmp_path / "again.osim"
    bridge.load_model(path).printToXML(str(again))
    with pytest.raises(ValueError, match="holds no deepemg notes"):
        read_export_notes(again)


def test_overwrite_unknown_subject_and_in_memory_model(nmm, tmp_path):
    path = export_subject(nmm, "S01", tmp_path / "model.osim")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_subject(nmm, "S02", path)
    assert path.read_bytes() == before
    export_subject(nmm, "S02", path, overwrite=True)
    assert read_export_notes(path)["subject"] == "S02"

    with pytest.raises(ValueError, match=r"No subject 'S03'.*\['S01', 'S02'\]"):
        export_subject(nmm, "S03", tmp_path / "S03.osim")
    in_memory = copy.copy(nmm)
    in_memory.physics_ = copy.copy(nmm.physics_)
    in_memory.physics_.fit_report = {
        k: v for k, v in nmm.physics_.fit_report.items() if k != "source"
    }
    with pytest.raises(ValueError, match="built in memory"):
        export_subject(in_memory, "S01", tmp_path / "memory.osim")
    with pytest.raises(ValueError, match=r"does not end in \.osim"):
        export_subject(nmm, "S01", tmp_path / "model.xml")
    with pytest.raises(FileNotFoundError, match="create it"):
        export_subject(nmm, "S01", tmp_path / "missing" / "model.osim")
    with pytest.raises(NotFittedError):
        export_subject(NMMRegressor(), "S01", tmp_path / "unfitted.osim")
    with pytest.raises(TypeError, match="NMMRegressor"):
        export_subject(object(), "S01", tmp_path / "other.osim")
    assert sorted(os.listdir(tmp_path)) == ["model.osim"]


def test_a_changed_source_file_is_refused(nmm, tmp_path):
    changed = copy.copy(nmm)
    changed.physics_ = copy.deepcopy(nmm.physics_)
    changed.physics_.max_isometric_force[2] += 1.0  # BRA, fitted with another F0
    with pytest.raises(ValueError, match=r"has changed since.*BRA's max_isometric_force"):
        export_subject(changed, "S01", tmp_path / "S01.osim")
    assert os.listdir(tmp_path) == []


def test_ctrl_c_leaves_the_earlier_model(nmm, tmp_path, monkeypatch):
    path = export_subject(nmm, "S01", tmp_path / "model.osim")
    before = path.read_bytes()

    def interrupted(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_subject(nmm, "S02", path, overwrite=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.osim"]  # no temporary file or folder left


def test_a_saved_and_loaded_estimator_exports_the_same_model(nmm, tmp_path):
    loaded = NMMRegressor.load(nmm.save(tmp_path / "nmm.deepemg"))
    first = export_subject(nmm, "S02", tmp_path / "first.osim")
    second = loaded.export_subject("S02", tmp_path / "second.osim")
    np.testing.assert_allclose(
        _opensim_forces(second, nmm.physics_), _opensim_forces(first, nmm.physics_), rtol=1e-12
    )
    assert read_export_notes(second)["parameters"] == read_export_notes(first)["parameters"]


def test_a_users_model_file_is_converted_as_deepemg_models_it(data, arm26_with_load, tmp_path):
    """Arm26's Thelen2003 muscles, converted (a muscle_law named), are written as rigid-tendon
    DeGrooteFregly2016 muscles with the subject's properties, and OpenSim's forces match
    deepemg's."""
    arm26 = ["TRIlong", "TRIlat", "TRImed", "BIClong", "BICshort", "BRA"]
    y = data.y[..., [list(data.muscles).index(m) for m in arm26]]
    estimator = NMMRegressor(
        model=arm26_with_load,
        locked=ARM26_LOCKED,
        muscle_law="rigid_tendon_degroote_fregly",
        channels=joint_channels(data.channels, "r_elbow_flex"),
        random_state=0,
        **FAST_NMM,
    ).fit(data.X, y, subject_ids=data.groups)
    _personalise(estimator, row=0)
    path = estimator.export_subject("S01", tmp_path / "arm26_S01.osim")
    model = bridge.load_model(path)
    assert model.getMuscles().get("BRA").getConcreteClassName() == "DeGrooteFregly2016Muscle"
    assert "converted from the file: TRIlong" in path.read_text()
    expected = _opensim_forces(path, estimator.physics_, ARM26_LOCKED)
    error = _relative_rms(_torch_forces(estimator, 0), expected)
    assert error.max() < TOLERANCE, error
    pose = opensim_pose(arm26_with_load, locked=ARM26_LOCKED)  # the file's own muscles
    angle, velocity, activation = _grid(estimator.physics_)
    nominal = bridge.muscle_tendon_forces(pose, arm26, activation, angle, velocity)
    assert _relative_rms(nominal, expected).min() > 0.05  # deep muscles: strength held


def test_a_compliant_law_is_written_with_compliant_tendons(data, tmp_path):
    """With the compliant-tendon law the written muscles keep elastic tendons, and OpenSim's
    forces at fibre equilibrium match deepemg's (isometric)."""
    estimator = NMMRegressor(
        random_state=0, muscle_law="compliant_tendon_degroote_fregly", **FAST_NMM
    ).fit(data.X[:2], data.y[:2], subject_ids=data.groups[:2])
    _personalise(estimator, row=0)
    path = estimator.export_subject(estimator.subjects_[0], tmp_path / "compliant.osim")
    model = bridge.load_model(path)
    muscles = model.getMuscles()
    assert not any(muscles.get(m).get_ignore_tendon_compliance() for m in estimator.muscles_)
    assert "with a compliant tendon (ignore_tendon_compliance=false)" in path.read_text()
    physics = estimator.physics_
    pose = bridge.ModelPose(model, physics.coordinate)
    angle = np.linspace(0.1, 2.2, 8)
    activation = np.repeat(np.array([0.0, 0.3, 0.6, 1.0] * 2)[:, None], physics.n_muscles, 1)
    velocity = np.zeros_like(angle)
    expected = bridge.equilibrium_tendon_forces(pose, physics.muscles, activation, angle, velocity)
    with torch.no_grad():
        params = dict(estimator.net_.module_.subject_parameters(torch.tensor(0)))
        params["moment_arm_scale"] = torch.tensor(1.0, dtype=torch.float64)
        got = physics.muscle_force(
            torch.tensor(activation), torch.tensor(angle), torch.tensor(velocity), params
        ).numpy()
    assert _relative_rms(got, expected).max() < TOLERANCE
