"""Trial files of real recordings (IK angles, load, EMG, torque) to ``X`` and ``y``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy.signal import savgol_filter
from sklearn.utils import Bunch

from ..channels import ELBOW_JOINT, EMG_PREFIX, ChannelLayout, emg_channel, layout_for
from .c3d import read_c3d_analogs
from .storage import _check_column, read_storage
from .table import Recording, _existing_file, _missing_message, read_csv_table, resample

__all__ = ["load_trials"]

KINEMATIC_CHANNELS = ChannelLayout(ELBOW_JOINT).base
"""The built-in elbow's base channels, the first channels of ``X`` that :func:`load_trials`
builds for ``model="elbow"``: ``elbow_angle``, ``elbow_velocity``, ``elbow_acceleration``,
``load_mass``, ``elbow_torque`` (rad, rad/s, rad/s², kg, N·m). Another model's are
``layout_for(model, coordinate).base`` (:mod:`deepemg.channels`)."""

DERIVATIVE_WINDOW = 0.1
"""Length (s) of the Savitzky-Golay window (cubic) that gives velocity and acceleration."""

_REQUIRED_KEYS = ("kinematics", "load_mass", "subject")
_OPTIONAL_KEYS = ("emg", "emg_channels", "torque", "torque_column", "angle_column")


def _check_trial(i: int, trial) -> dict:
    if not isinstance(trial, Mapping):
        raise TypeError(
            f"trial {i} must be a dict with keys {list(_REQUIRED_KEYS)} (and optionally "
            f"{list(_OPTIONAL_KEYS)}), got {type(trial).__name__}."
        )
    trial = dict(trial)
    missing = [k for k in _REQUIRED_KEYS if k not in trial]
    unknown = [k for k in trial if k not in _REQUIRED_KEYS + _OPTIONAL_KEYS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"lacks {missing}")
        if unknown:
            parts.append(f"has unknown keys {unknown}")
        raise ValueError(
            f"trial {i} {' and '.join(parts)}; a trial is a dict with keys "
            f"{list(_REQUIRED_KEYS)} and optionally {list(_OPTIONAL_KEYS)}."
        )
    mass = trial["load_mass"]
    try:
        mass = float(mass)
    except (TypeError, ValueError):
        raise ValueError(f"trial {i}: load_mass must be a number of kg, got {mass!r}.") from None
    if not np.isfinite(mass) or mass < 0:
        raise ValueError(f"trial {i}: load_mass must be a finite number of kg >= 0, got {mass}.")
    trial["load_mass"] = mass
    if ("emg" in trial) != ("emg_channels" in trial):
        raise ValueError(
            f"trial {i}: give 'emg' (the file) and 'emg_channels' (muscle name -> channel label "
            "in the file, e.g. {'BIClong': 'Biceps.EMG4'}) together."
        )
    if "emg_channels" in trial:
        mapping = trial["emg_channels"]
        if not isinstance(mapping, Mapping) or not mapping:
            raise ValueError(
                f"trial {i}: emg_channels must be a non-empty dict of muscle name -> channel "
                f"label, e.g. {{'BIClong': 'Biceps.EMG4'}}, got {mapping!r}."
            )
    if "torque_column" in trial and "torque" not in trial:
        raise ValueError(f"trial {i}: 'torque_column' needs 'torque' (the inverse dynamics file).")
    return trial


def _trial_name(i: int, trial: dict) -> str:
    return f"trial {i} (subject {trial['subject']!r}, '{Path(trial['kinematics']).name}')"


def _read_emg(path, channels: list[str], where: str) -> Recording:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".c3d":
        return read_c3d_analogs(path, channels)
    if suffix in (".csv", ".txt"):
        table = read_csv_table(path)
        missing = [c for c in channels if c not in table.labels]
        if missing:
            raise ValueError(_missing_message("EMG channel", missing, table.labels, path))
        index = [table.labels.index(c) for c in channels]
        return Recording(table.time, table.data[:, index], list(channels), table.rate, path=path)
    _existing_file(path, "a .c3d or .csv file of raw EMG")
    raise ValueError(
        f"{where}: the EMG file '{path}' is neither .c3d nor .csv; deepemg reads raw EMG from "
        "c3d analog channels or from a csv table with a time column."
    )


def _check_span(time: np.ndarray, grid: np.ndarray, what: str, path: Path, where: str) -> None:
    step = np.median(np.diff(time))
    if grid[0] < time[0] - 1e-3 * step or grid[-1] > time[-1] + 1e-3 * step:
        raise ValueError(
            f"{where}: the {what} in '{path}' cover t = {time[0]:.6g}-{time[-1]:.6g} s, but the "
            f"kinematics cover t = {grid[0]:.6g}-{grid[-1]:.6g} s; both files must share a clock "
            f"and the {what} must span the whole movement."
        )


def _check_rate(file_rate: float, rate: float, what: str, path: Path, where: str) -> None:
    if file_rate < rate * (1 - 1e-3):
        raise ValueError(
            f"{where}: the {what} in '{path}' are sampled at {file_rate:.6g} Hz, below "
            f"rate={rate:g} Hz. deepemg does not make up samples by upsampling: pass "
            f"rate={file_rate:.6g} (or less)."
        )


def _savgol_window(rate: float) -> int:
    window = max(int(round(DERIVATIVE_WINDOW * rate)), 5)
    return window if window % 2 else window + 1


def load_trials(
    trials: Iterable[Mapping],
    model: str | os.PathLike = "elbow",
    coordinate: str = "r_elbow_flex",
    rate: float = 100.0,
    n_timesteps: int | None = None,
    channels: Sequence[str] | None = None,
    muscles: Sequence[str] | None = None,
    locked: Mapping[str, float] | None = None,
) -> Bunch:
    """Turn recorded trials (IK angles, load, raw EMG, torque) into ``X`` and ``y``.

    For each trial: the joint angle is read from the inverse kinematics file (degrees become
    radians) and resampled to ``rate`` on a uniform grid from the file's first time;
    velocity and acceleration come from a cubic Savitzky-Golay filter over
    ``DERIVATIVE_WINDOW`` = 0.1 s; the torque comes from the trial's inverse dynamics file or,
    without one, from OpenSim inverse dynamics of ``model`` carrying ``load_mass`` (other
    coordinates held still); raw EMG becomes envelopes with
    :class:`~deepemg.preprocessing.EMGEnvelope` (band-pass 20-450 Hz, rectify, 6 Hz low-pass),
    normalised per subject to the maximum of each muscle's envelope over all of that subject's
    recordings (whole files, not only the part that the kinematics cover), then resampled to
    the grid.

    Parameters
    ----------
    trials : iterable of dict
        One dict per trial, with keys

        - ``kinematics``: path of the inverse kinematics ``.mot`` (or ``.sto``);
        - ``load_mass``: mass of the lifted load (kg);
        - ``subject``: label of the subject (becomes ``groups``);
        - ``emg`` (optional): path of a ``.c3d`` (analog channels) or ``.csv`` (with a
          ``time`` column) of raw EMG, on the same clock as the kinematics;
        - ``emg_channels`` (with ``emg``): muscle name -> channel label, e.g.
          ``{"BIClong": "Biceps.EMG4", "TRIlong": "Triceps.EMG5"}``;
        - ``torque`` (optional): path of an inverse dynamics ``.sto``;
        - ``torque_column`` (optional): its column, default ``<angle_column>_moment``;
        - ``angle_column`` (optional): the angle's column in ``kinematics``, default
          ``coordinate``.
    model : "elbow" or path of an .osim file, default="elbow"
        The model whose muscles make the columns of ``y`` and that gives the torque when a
        trial has no ``torque`` file. It needs a body named ``load`` for a ``load_mass`` > 0.
    coordinate : str, default="r_elbow_flex"
        The model's coordinate that the angle describes.
    rate : float, default=100.0
        Sampling rate (Hz) of ``X`` and ``y``; the kinematics must be sampled at least as fast.
    n_timesteps : int, optional
        None: every trial is one sequence, all cropped to the shortest trial (with a warning
        naming the trials cropped). An int: each trial is cut into consecutive non-overlapping
        windows of ``n_timesteps`` samples, the remainder dropped (a warning names trials
        shorter than one window).
    channels : sequence of str, optional
        Channels of ``X`` to return, in this order, named by the model's
        :class:`~deepemg.channels.ChannelLayout` (``layout_for(model, coordinate)``: joint
        ``elbow`` for the built-in model, the coordinate for a model file). Default: the
        layout's base channels (``<joint>_angle``, ``<joint>_velocity``,
        ``<joint>_acceleration``, ``load_mass``, ``<joint>_torque``; for ``model="elbow"``
        ``elbow_angle`` ... ``elbow_torque``), then ``emg_<muscle>`` for every muscle
        measured in all trials (in the order of ``deepemg.ELBOW_CHANNELS``, then the
        model's order).
    muscles : sequence of str, optional
        Muscles of ``y``, in this order; default: the model's muscles that cross
        ``coordinate``.
    locked : mapping of str to float, optional
        Values (rad or m) at which to hold the model's other coordinates for inverse dynamics
        (others: their default values), e.g. ``{"r_shoulder_elev": 0.0}`` for Arm26.

    Returns
    -------
    Bunch
        ``X`` (n_sequences, n_timesteps, n_channels), ``y`` (n_sequences, n_timesteps,
        n_muscles; NaN for muscles without EMG in a trial), ``channels``, ``muscles``,
        ``groups`` (subject of each sequence), ``trial_index`` (trial of each sequence),
        ``time`` (n_sequences, n_timesteps; s, on the files' clock) and ``rate`` (Hz).

    Raises
    ------
    FileNotFoundError
        For a missing file.
    KeyError
        For an angle or torque column that is not in its file (the message lists the columns).
    ValueError
        For a channel not in an EMG file, a muscle not in the model, kinematics sampled below
        ``rate``, files that do not cover the same time span, NaN in a file (with the column
        and time), or a trial too short for the derivative window.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> t = np.arange(0.0, 2.0, 0.01)
    >>> angle = 90 + 30 * np.sin(np.pi * t)  # degrees
    >>> rows = "".join(f"{a:.3f}\\t{b:.6f}\\n" for a, b in zip(t, angle))
    >>> _ = (folder / "ik.mot").write_text(
    ...     "ik\\ninDegrees=yes\\nendheader\\ntime\\tr_elbow_flex\\n" + rows)
    >>> data = load_trials([{"kinematics": folder / "ik.mot", "load_mass": 2.0, "subject": "S1"}])
    >>> data.X.shape, data.y.shape
    ((1, 200, 5), (1, 200, 7))
    >>> data.channels
    ['elbow_angle', 'elbow_velocity', 'elbow_acceleration', 'load_mass', 'elbow_torque']
    >>> bool(np.isnan(data.y).all())  # no EMG recorded
    True
    """
    from .. import ELBOW_CHANNELS
    from .. import opensim as bridge
    from ..opensim import muscle_handles, muscles_crossing
    from ..preprocessing import EMGEnvelope

    if not isinstance(rate, int | float) or not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"rate must be a sampling rate in Hz (> 0), got {rate!r}.")
    rate = float(rate)
    if n_timesteps is not None and (
        not isinstance(n_timesteps, int | np.integer) or n_timesteps < 1
    ):
        raise ValueError(f"n_timesteps must be None or a positive integer, got {n_timesteps!r}.")
    if isinstance(trials, Mapping):
        trials = [trials]
    trials = [_check_trial(i, trial) for i, trial in enumerate(trials)]
    if not trials:
        raise ValueError("trials is empty; give at least one trial dict.")

    # ---------------------------------------------------------------- the model
    if isinstance(model, str) and model == "elbow":
        model_path = bridge.ELBOW_MODEL_PATH
    elif isinstance(model, str | os.PathLike):
        model_path = Path(model)
    else:
        raise TypeError(f'model must be "elbow" or the path of an .osim file, got {model!r}.')
    osim_model = bridge.load_model(model_path)
    pose = bridge.ModelPose(osim_model, coordinate, locked)
    all_muscles = bridge.muscle_names(osim_model)
    if muscles is None:
        muscles = muscles_crossing(pose, all_muscles)
    else:
        muscles = [muscles] if isinstance(muscles, str) else list(muscles)
        muscle_handles(osim_model, muscles)  # a clear error for names not in the model
    layout = layout_for(model, coordinate)
    import opensim as osim

    rotational = pose.coordinate.getMotionType() == osim.Coordinate.Rotational
    low, high = pose.range
    window = _savgol_window(rate)

    for i, trial in enumerate(trials):
        unknown = [m for m in trial.get("emg_channels", {}) if m not in muscles]
        if unknown:
            raise ValueError(
                f"{_trial_name(i, trial)}: emg_channels names {unknown}, which are not muscles "
                f"of y {muscles}; its keys are the model's muscle names and its values the "
                "channel labels in the EMG file, e.g. {'BIClong': 'Biceps.EMG4'}."
            )
    emg_everywhere = [m for m in muscles if all(m in t.get("emg_channels", {}) for t in trials)]
    emg_somewhere = [m for m in muscles if any(m in t.get("emg_channels", {}) for t in trials)]
    order = ChannelLayout(ELBOW_JOINT).emg_muscles(ELBOW_CHANNELS)
    emg_muscles = [m for m in order if m in emg_everywhere] + [
        m for m in emg_everywhere if m not in order
    ]
    available = layout.default_channels(emg_muscles)
    if channels is None:
        channels = available
        partial = [m for m in emg_somewhere if m not in emg_everywhere]
        if partial:
            warnings.warn(
                f"EMG of {partial} is in some trials only: it enters y but not X (X needs the "
                "channel in every trial).",
                stacklevel=2,
            )
    else:
        channels = [channels] if isinstance(channels, str) else list(channels)
        missing = [c for c in channels if c not in available]
        if missing:
            partly = [
                c
                for c in missing
                if c.startswith(EMG_PREFIX) and c[len(EMG_PREFIX) :] in emg_somewhere
            ]
            note = f" ({partly} are measured in some trials only.)" if partly else ""
            raise ValueError(_missing_message("channel", missing, available) + note)
    need_torque = layout.torque in channels

    # ---------------------------------------------------------------- each trial
    grids, kinematics, envelopes = [], [], []
    loaded_mass = None
    for i, trial in enumerate(trials):
        where = _trial_name(i, trial)
        column = str(trial.get("angle_column", coordinate))
        kin = read_storage(trial["kinematics"], radians=False)
        angle = _check_column(
            kin, column, " Set 'angle_column' in the trial dict to the angle's column."
        ).copy()
        if kin.in_degrees and rotational:
            angle = np.radians(angle)
        _check_rate(kin.rate, rate, "kinematics", kin.path, where)
        n = int(np.floor((kin.time[-1] - kin.time[0]) * rate + 1e-6)) + 1
        grid = kin.time[0] + np.arange(n) / rate
        angle = resample(kin.time, angle, grid)
        if n < window:
            raise ValueError(
                f"{where} has {n} samples at {rate:g} Hz, fewer than the {window} of the "
                f"{DERIVATIVE_WINDOW:g} s derivative window."
            )
        if angle.min() < low - 1e-6 or angle.max() > high + 1e-6:
            warnings.warn(
                f"{where}: the angle leaves the range of '{coordinate}' "
                f"[{np.degrees(low):.1f}, {np.degrees(high):.1f}] deg: it runs from "
                f"{np.degrees(angle.min()):.1f} to {np.degrees(angle.max()):.1f} deg"
                f"{'' if kin.in_degrees else ' (the file says inDegrees=no: is that right?)'}. "
                "The musculoskeletal model refuses angles outside its range.",
                stacklevel=2,
            )
        velocity = savgol_filter(angle, window, 3, deriv=1, delta=1.0 / rate)
        acceleration = savgol_filter(angle, window, 3, deriv=2, delta=1.0 / rate)

        torque = np.full(n, np.nan)
        if need_torque and "torque" in trial:
            dynamics = read_storage(trial["torque"], radians=False)
            name = str(trial.get("torque_column", f"{column}_moment"))
            moment = _check_column(
                dynamics, name, " Set 'torque_column' in the trial dict to the torque's column."
            )
            _check_rate(dynamics.rate, rate, "torques", dynamics.path, where)
            _check_span(dynamics.time, grid, "torques", dynamics.path, where)
            torque = resample(dynamics.time, moment, grid)
        elif need_torque:
            if trial["load_mass"] != loaded_mass:
                if trial["load_mass"] > 0 or osim_model.getBodySet().contains("load"):
                    bridge.set_load_mass(osim_model, trial["load_mass"])
                pose.reinitialize()
                loaded_mass = trial["load_mass"]
            torque = bridge.inverse_dynamics(pose, angle, velocity, acceleration)

        emg = None
        if "emg" in trial:
            mapping = {m: str(label) for m, label in trial["emg_channels"].items()}
            recording = _read_emg(trial["emg"], list(mapping.values()), where)
            _check_span(recording.time, grid, "EMG samples", recording.path, where)
            try:
                envelope = EMGEnvelope(rate=recording.rate, normalize=None).fit_transform(
                    recording.data
                )
            except ValueError as exc:
                raise ValueError(f"{where}, EMG file '{recording.path}': {exc}") from None
            emg = (recording, dict(zip(mapping, envelope.T, strict=True)))
        grids.append(grid)
        kinematics.append(
            np.column_stack([angle, velocity, acceleration, np.full(n, trial["load_mass"]), torque])
        )
        envelopes.append(emg)

    # ------------------------------------------------ EMG normalised to each subject's maximum
    maximum: dict = {}
    for trial, emg in zip(trials, envelopes, strict=True):
        if emg is not None:
            for muscle, envelope in emg[1].items():
                key = (trial["subject"], muscle)
                maximum[key] = max(maximum.get(key, 0.0), float(envelope.max()))
    for (subject, muscle), value in maximum.items():
        if value <= 0:
            raise ValueError(
                f"The EMG of {muscle} of subject {subject!r} is flat zero in every trial: was "
                "the channel recorded? Leave it out of emg_channels."
            )
    X_trials, y_trials = [], []
    for trial, grid, kin, emg in zip(trials, grids, kinematics, envelopes, strict=True):
        y = np.full((grid.size, len(muscles)), np.nan)
        if emg is not None:
            recording, by_muscle = emg
            for muscle, envelope in by_muscle.items():
                normalised = envelope / maximum[(trial["subject"], muscle)]
                y[:, muscles.index(muscle)] = resample(recording.time, normalised, grid)
        columns = {name: kin[:, k] for k, name in enumerate(layout.base)}
        columns.update({emg_channel(m): y[:, muscles.index(m)] for m in emg_muscles})
        X_trials.append(np.column_stack([columns[c] for c in channels]))
        y_trials.append(y)

    # ---------------------------------------------------------------- sequences
    lengths = [grid.size for grid in grids]
    pieces = []  # (trial, start, stop)
    if n_timesteps is None:
        shortest = min(lengths)
        cropped = [
            f"{_trial_name(i, t)}: {lengths[i]} -> {shortest}"
            for i, t in enumerate(trials)
            if lengths[i] > shortest
        ]
        if cropped:
            warnings.warn(
                f"Trials were cropped to the shortest trial ({shortest} samples, "
                f"{shortest / rate:g} s): {'; '.join(cropped)}. Pass n_timesteps to cut windows "
                "instead.",
                stacklevel=2,
            )
        pieces = [(i, 0, shortest) for i in range(len(trials))]
    else:
        short = []
        for i, length in enumerate(lengths):
            count = length // n_timesteps
            if count == 0:
                short.append(f"{_trial_name(i, trials[i])}: {length} samples")
            pieces += [(i, k * n_timesteps, (k + 1) * n_timesteps) for k in range(count)]
        if not pieces:
            raise ValueError(
                f"No trial holds a window of n_timesteps={n_timesteps} samples at {rate:g} Hz "
                f"(the longest has {max(lengths)}); pass a smaller n_timesteps."
            )
        if short:
            warnings.warn(
                f"Trials shorter than one window of n_timesteps={n_timesteps} are left out: "
                f"{'; '.join(short)}.",
                stacklevel=2,
            )
    return Bunch(
        X=np.stack([X_trials[i][a:b] for i, a, b in pieces]).astype(np.float64),
        y=np.stack([y_trials[i][a:b] for i, a, b in pieces]).astype(np.float64),
        channels=list(channels),
        muscles=list(muscles),
        groups=np.array([trials[i]["subject"] for i, _, _ in pieces]),
        trial_index=np.array([i for i, _, _ in pieces], dtype=int),
        time=np.stack([grids[i][a:b] for i, a, b in pieces]),
        rate=rate,
    )
