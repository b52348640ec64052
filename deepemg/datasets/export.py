"""Simulated subjects written as trial files: the layout of a lab's recordings, with a truth."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["export_trials"]


def export_trials(
    data: Bunch,
    folder: str | os.PathLike,
    emg_rate: float = 1000.0,
    random_state: int | None = 0,
    coordinate: str | None = None,
) -> list[dict]:
    """Write simulated sequences as OpenSim and csv files with a ``trials.csv`` manifest.

    For each sequence of ``data`` (from :func:`make_elbow_lifting`), writes
    ``<subject>_trial<k>_ik.mot`` (the joint angle in degrees, column ``coordinate``),
    ``<subject>_trial<k>_id.sto`` (the inverse dynamics moment, ``<coordinate>_moment``, N·m)
    and ``<subject>_trial<k>_emg.csv``: raw EMG of the surface muscles at ``emg_rate``,
    white Gaussian noise modulated by their envelopes (channels ``EMG_<muscle>``), which
    :func:`deepemg.io.load_trials` turns back into envelopes normalised to each subject's
    maximum. The deep muscles are not written: they are what is to be reconstructed.

    X's columns are found by the data's :class:`~deepemg.channels.ChannelLayout`
    (``ChannelLayout.infer(data.channels)``), so data of any joint can be written.

    Parameters
    ----------
    data : Bunch
        ``X``, ``y``, ``channels``, ``muscles``, ``groups``, ``rate`` and optionally
        ``surface_muscles`` (default: the muscles with an EMG channel in ``channels``), as
        :func:`make_elbow_lifting` returns.
    folder : path
        Created if missing.
    emg_rate : float, default=1000.0
        Sampling rate (Hz) of the raw EMG.
    random_state : int or None, default=0
        Seed of the EMG's noise carrier.
    coordinate : str, optional
        The model coordinate that names the angle and moment columns. Default:
        ``r_elbow_flex`` for the built-in elbow's channels (``elbow_angle`` ...), else the
        layout's joint (a model file's channels are named by its coordinate).

    Returns
    -------
    list of dict
        The trials, as :func:`deepemg.io.read_manifest` reads them back.

    Examples
    --------
    >>> import tempfile
    >>> from deepemg.datasets import make_elbow_lifting
    >>> from deepemg.io import load_trials, read_manifest
    >>> data = make_elbow_lifting(n_subjects=1, n_trials=2, duration=2.0, random_state=0,
    ...                           progress=False)
    >>> folder = tempfile.mkdtemp()
    >>> _ = export_trials(data, folder)
    >>> again = load_trials(read_manifest(folder))
    >>> again.X.shape, again.channels[5:]
    ((2, 200, 10), ['emg_BIClong', 'emg_BICshort', 'emg_BRD', 'emg_TRIlong', 'emg_TRIlat'])
    """
    from ..channels import ELBOW_JOINT, ChannelLayout
    from ..io.manifest import write_manifest

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(random_state)
    rate = float(data.rate)
    channels = list(data.channels)
    layout = ChannelLayout.infer(channels)
    if coordinate is None:
        coordinate = "r_elbow_flex" if layout.joint == ELBOW_JOINT else layout.joint
    surface = list(getattr(data, "surface_muscles", None) or layout.emg_muscles(channels))
    n_steps = data.X.shape[1]
    time = np.arange(n_steps) / rate
    emg_time = np.arange(int(np.floor(time[-1] * emg_rate)) + 1) / emg_rate
    trials, counts = [], {}
    for i, subject in enumerate(np.asarray(data.groups).tolist()):
        counts[subject] = counts.get(subject, 0) + 1
        stem = folder / f"{subject}_trial{counts[subject]:02d}"
        angle = np.degrees(data.X[i, :, channels.index(layout.angle)])
        torque = data.X[i, :, channels.index(layout.torque)]
        _write_storage(stem.with_name(stem.name + "_ik.mot"), time, coordinate, angle, True)
        _write_storage(
            stem.with_name(stem.name + "_id.sto"), time, f"{coordinate}_moment", torque, False
        )
        envelopes = np.column_stack(
            [np.interp(emg_time, time, data.y[i, :, data.muscles.index(m)]) for m in surface]
        )
        raw = np.clip(envelopes, 0, None) * rng.standard_normal(envelopes.shape)
        header = ",".join(["time", *(f"EMG_{m}" for m in surface)])
        np.savetxt(
            stem.with_name(stem.name + "_emg.csv"),
            np.column_stack([emg_time, raw]),
            delimiter=",",
            header=header,
            comments="",
            fmt="%.6g",
        )
        trials.append(
            {
                "subject": subject,
                "load_mass": float(data.X[i, 0, channels.index(layout.load)]),
                "kinematics": stem.with_name(stem.name + "_ik.mot"),
                "emg": stem.with_name(stem.name + "_emg.csv"),
                "emg_channels": {m: f"EMG_{m}" for m in surface},
                "torque": stem.with_name(stem.name + "_id.sto"),
            }
        )
    write_manifest(trials, folder)
    return trials


def _write_storage(path: Path, time, label: str, values, in_degrees: bool) -> None:
    lines = [
        path.stem,
        "version=1",
        f"nRows={len(time)}",
        "nColumns=2",
        f"inDegrees={'yes' if in_degrees else 'no'}",
        "endheader",
        f"time\t{label}",
        *(f"{t:.6f}\t{v:.9g}" for t, v in zip(time, values, strict=True)),
    ]
    path.write_text("\n".join(lines) + "\n")
