"""Trial files of real recordings (IK angles, load, EMG, torque) to ``X`` and ``y``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.signal import savgol_filter
from sklearn.utils import Bunch

from ..channels import ELBOW_JOINT, EMG_PREFIX, ChannelLayout, emg_channel, layout_for
from ..specification import ModelSpecification
from .c3d import read_c3d_analogs
from .storage import _check_column, read_storage
from .table import Recording, _existing_file, _missing_message, read_csv_table, resample

if TYPE_CHECKING:
    import opensim as osim

    from ..opensim import ModelPose

__all__ = ["MVC_WINDOW", "load_each_trial", "load_trials"]

KINEMATIC_CHANNELS = ChannelLayout(ELBOW_JOINT).base
"""The built-in elbow's base channels, the first channels of ``X`` that :func:`load_trials`
builds for ``model="elbow"``: ``elbow_angle``, ``elbow_velocity``, ``elbow_acceleration``,
``load_mass``, ``elbow_torque`` (rad, rad/s, rad/s², kg, N·m). Another model's are
``layout_for(model, coordinate).base`` (:mod:`deepemg.channels`)."""

DERIVATIVE_WINDOW = 0.1
"""Length (s) of the Savitzky-Golay window (cubic) that gives velocity and acceleration."""

_REQUIRED_KEYS = ("kinematics", "load_mass", "subject")
_OPTIONAL_KEYS = ("emg", "emg_channels", "mvc", "torque", "torque_column", "angle_column")

MVC_WINDOW = 0.5
"""Length (s) of the window over which an MVC recording's envelope is averaged: a muscle's
MVC reference is the highest mean envelope over ``MVC_WINDOW`` in its MVC recordings (the
"highest 500 ms" of the usual MVC analysis; a single peak would ride on the envelope's
ripple)."""


def _check_electrodes(mapping: Mapping, where: str) -> None:
    """Raise if ``mapping`` (muscle -> channel label) gives one channel to two muscles."""
    by_label: dict = {}
    for muscle, label in mapping.items():
        by_label.setdefault(str(label), []).append(str(muscle))
    for label, muscles in by_label.items():
        if len(muscles) > 1:
            names = f"{', '.join(muscles[:-1])} and {muscles[-1]}"
            raise ValueError(
                f"{where}: emg_channels gives the channel {label!r} to {names}; an electrode "
                "records the muscle under it, so this is most often a slip in copying the "
                "mapping. Give each muscle its own channel and leave out a muscle without an "
                "electrode of its own (BICshort under the one biceps electrode, say): deepemg "
                "estimates the muscles without EMG."
            )


def _check_trial(i: int, trial: object) -> dict:
    """Trial ``i`` as a checked dict: known keys, ``load_mass`` a float, ``mvc`` a list of paths."""
    if not isinstance(trial, Mapping):
        raise TypeError(
            f"trial {i} must be a dict with keys {list(_REQUIRED_KEYS)} (and optionally "
            f"{list(_OPTIONAL_KEYS)}), got {type(trial).__name__}."
        )
    trial = dict(trial)
    _check_keys(i, trial)
    trial["load_mass"] = _checked_load_mass(i, trial["load_mass"])
    _check_emg_keys(i, trial)
    if "mvc" in trial:
        trial["mvc"] = _checked_mvc(i, trial)
    if "torque_column" in trial and "torque" not in trial:
        raise ValueError(f"trial {i}: 'torque_column' needs 'torque' (the inverse dynamics file).")
    return trial


def _check_keys(i: int, trial: dict) -> None:
    """Raise if trial ``i`` lacks a required key or has one that is not a trial's."""
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


def _checked_load_mass(i: int, mass: Any) -> float:
    """Trial ``i``'s ``load_mass`` as a float of kg, finite and >= 0."""
    try:
        mass = float(mass)
    except (TypeError, ValueError):
        raise ValueError(f"trial {i}: load_mass must be a number of kg, got {mass!r}.") from None
    if not np.isfinite(mass) or mass < 0:
        raise ValueError(f"trial {i}: load_mass must be a finite number of kg >= 0, got {mass}.")
    return mass


def _check_emg_keys(i: int, trial: dict) -> None:
    """Raise unless ``emg`` and ``emg_channels`` come together, one channel per muscle."""
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
        _check_electrodes(mapping, f"trial {i}")


def _checked_mvc(i: int, trial: dict) -> list[Path]:
    """Trial ``i``'s ``mvc`` (one path or several) as a list of paths; it needs ``emg``."""
    if "emg" not in trial:
        raise ValueError(
            f"trial {i}: 'mvc' (the subject's MVC recordings) goes with 'emg' and "
            "'emg_channels': it gives the EMG's reference."
        )
    mvc = trial["mvc"]
    paths = [mvc] if isinstance(mvc, str | os.PathLike) else list(mvc)
    if not paths or not all(isinstance(p, str | os.PathLike) for p in paths):
        raise ValueError(
            f"trial {i}: mvc must be the path of an MVC recording (.c3d or .csv) or a list "
            f"of such paths, got {mvc!r}."
        )
    return [Path(p) for p in paths]


def _trial_name(i: int, trial: dict) -> str:
    return f"trial {i} (subject {trial['subject']!r}, '{Path(trial['kinematics']).name}')"


def _read_emg(path: str | os.PathLike, channels: list[str], where: str) -> Recording:
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


def _check_span(
    time: np.ndarray, grid: np.ndarray, what: str, path: Path | None, where: str
) -> None:
    step = np.median(np.diff(time))
    if grid[0] < time[0] - 1e-3 * step or grid[-1] > time[-1] + 1e-3 * step:
        raise ValueError(
            f"{where}: the {what} in '{path}' cover t = {time[0]:.6g}-{time[-1]:.6g} s, but the "
            f"kinematics cover t = {grid[0]:.6g}-{grid[-1]:.6g} s; both files must share a clock "
            f"and the {what} must span the whole movement."
        )


def _check_rate(file_rate: float, rate: float, what: str, path: Path | None, where: str) -> None:
    if file_rate < rate * (1 - 1e-3):
        raise ValueError(
            f"{where}: the {what} in '{path}' are sampled at {file_rate:.6g} Hz, below "
            f"rate={rate:g} Hz. deepemg does not make up samples by upsampling: pass "
            f"rate={file_rate:.6g} (or less)."
        )


def _savgol_window(rate: float) -> int:
    window = max(round(DERIVATIVE_WINDOW * rate), 5)
    return window if window % 2 else window + 1


def _mvc_levels(path: Path, labels: set[str]) -> dict:
    """Channel label -> MVC reference of the ``labels`` that the MVC recording ``path`` holds.

    A channel's reference is its highest mean envelope over ``MVC_WINDOW``.
    """
    from ..preprocessing import EMGEnvelope

    recording = _read_mvc_recording(path, labels)
    if not recording.labels:
        return {}
    width = round(MVC_WINDOW * recording.rate)
    if recording.time.size < width:
        raise ValueError(
            f"The MVC recording '{path}' lasts {recording.time[-1] - recording.time[0]:.3g} s, "
            f"less than the {MVC_WINDOW:g} s window its reference is averaged over."
        )
    try:
        envelope = EMGEnvelope(rate=recording.rate, normalize=None).fit_transform(recording.data)
    except ValueError as exc:
        raise ValueError(f"MVC recording '{path}': {exc}") from None
    total = np.vstack([np.zeros((1, envelope.shape[1])), np.cumsum(envelope, axis=0)])
    means = (total[width:] - total[:-width]) / width
    return dict(zip(recording.labels, means.max(axis=0).tolist(), strict=True))


def _read_mvc_recording(path: Path, labels: set[str]) -> Recording:
    """The channels of the MVC recording ``path`` (.c3d or .csv) that are among ``labels``."""
    from .c3d import _read_c3d, _select

    suffix = path.suffix.lower()
    if suffix == ".c3d":
        analogs = _read_c3d(path)
        return _select(analogs, [c for c in analogs.labels if c in labels])
    if suffix in (".csv", ".txt"):
        table = read_csv_table(path)
        keep = [c for c in table.labels if c in labels]
        index = [table.labels.index(c) for c in keep]
        return Recording(table.time, table.data[:, index], keep, table.rate, path=path)
    _existing_file(path, "a .c3d or .csv file of raw EMG")
    raise ValueError(
        f"The MVC recording '{path}' is neither .c3d nor .csv; deepemg reads raw EMG from "
        "c3d analog channels or from a csv table with a time column."
    )


def _emg_references(trials: list[dict], envelopes: list) -> list[dict | None]:
    """Per trial, muscle -> the envelope that is 1 (the MVC), by :func:`load_trials`' one rule.

    The rule: the trial's MVC recordings, else the subject's maximum over all its trials.
    """
    by_subject: dict = {}
    for i, emg in enumerate(envelopes):
        if emg is not None:
            by_subject.setdefault(trials[i]["subject"], []).append(i)
    references: list[dict | None] = [None] * len(trials)
    needed: dict = {}  # MVC file -> channel labels wanted from it
    for subject, indices in by_subject.items():
        if _gives_mvc(subject, indices, trials):
            for i in indices:
                labels = [str(label) for label in trials[i]["emg_channels"].values()]
                for path in trials[i]["mvc"]:
                    needed.setdefault(path, set()).update(labels)
            continue
        maximum = _subject_maximum(subject, [envelopes[i][1] for i in indices])
        for i in indices:
            references[i] = {m: maximum[m] for m in envelopes[i][1]}
    levels = {path: _mvc_levels(path, labels) for path, labels in needed.items()}
    for i, trial in enumerate(trials):
        if envelopes[i] is not None and "mvc" in trial:
            references[i] = _mvc_references(i, trial, levels)
    return references


def _gives_mvc(subject: object, indices: list[int], trials: list[dict]) -> bool:
    """Whether the subject's trials with EMG (``indices``) give MVC recordings: all or none."""
    with_mvc = [i for i in indices if "mvc" in trials[i]]
    if with_mvc and len(with_mvc) < len(indices):
        lacking = [_trial_name(i, trials[i]) for i in indices if "mvc" not in trials[i]]
        raise ValueError(
            f"Subject {subject!r}: {len(with_mvc)} of its trials with EMG give MVC "
            f"recordings ('mvc') and {len(lacking)} do not ({'; '.join(lacking[:3])}"
            f"{'...' if len(lacking) > 3 else ''}). One subject's EMG needs one unit: give "
            "every trial with EMG its MVC recordings, or none (then each muscle is "
            "normalised to its maximum over all the subject's trials)."
        )
    return bool(with_mvc)


def _subject_maximum(subject: object, envelopes: list[dict]) -> dict:
    """Muscle -> its highest envelope over the subject's trials (``envelopes``, one per trial)."""
    maximum: dict = {}
    for by_muscle in envelopes:
        for muscle, envelope in by_muscle.items():
            maximum[muscle] = max(maximum.get(muscle, 0.0), float(envelope.max()))
    for muscle, value in maximum.items():
        if value <= 0:
            raise ValueError(
                f"The EMG of {muscle} of subject {subject!r} is flat zero in every trial: "
                "was the channel recorded? Leave it out of emg_channels."
            )
    return maximum


def _mvc_references(i: int, trial: dict, levels: dict) -> dict:
    """Muscle -> MVC reference of trial ``i``: the highest level of its channel in the MVC files."""
    references = {}
    for muscle, label in trial["emg_channels"].items():
        found = [levels[p][str(label)] for p in trial["mvc"] if str(label) in levels[p]]
        names = [str(p) for p in trial["mvc"]]
        if not found:
            raise ValueError(
                f"{_trial_name(i, trial)}: no MVC recording of {muscle} (channel "
                f"{label!r}) in {names}; each channel of emg_channels must be in one of "
                "the trial's mvc files, with the same label."
            )
        if max(found) <= 0:
            raise ValueError(
                f"{_trial_name(i, trial)}: the MVC recordings {names} of {muscle} (channel "
                f"{label!r}) are flat zero: was the channel recorded?"
            )
        references[muscle] = max(found)
    return references


def load_each_trial(
    trials: Iterable[Mapping],
    model: str | os.PathLike = "elbow",
    coordinate: str = "r_elbow_flex",
    rate: float = 100.0,
    channels: Sequence[str] | None = None,
    muscles: Sequence[str] | None = None,
    locked: Mapping[str, float] | None = None,
) -> list[Bunch]:
    """:func:`load_trials`, one Bunch per trial, whole (nothing cropped or cut).

    Every trial is read exactly as :func:`load_trials` reads it, and the EMG follows the same
    rule: all the trials given are read together, so a subject without MVC recordings is
    normalised to its maximum over all of its trials given here, never trial by trial. Use it
    where trials of different lengths must each be kept whole (predicting each trial).

    Parameters
    ----------
    trials, model, coordinate, rate, channels, muscles, locked
        As for :func:`load_trials`.

    Returns
    -------
    list of Bunch
        One per trial, in order, with ``X`` (1, n_timesteps_i, n_channels), ``y``
        (1, n_timesteps_i, n_muscles), ``channels``, ``muscles``, ``groups`` (1,),
        ``trial_index`` (1,), ``time`` (1, n_timesteps_i) and ``rate``, as
        :func:`load_trials` returns for that trial alone.
    """
    read = _read_trials(trials, model, coordinate, rate, channels, muscles, locked)
    return [
        Bunch(
            X=X[None].astype(np.float64),
            y=y[None].astype(np.float64),
            channels=list(read.channels),
            muscles=list(read.muscles),
            groups=np.array([trial["subject"]]),
            trial_index=np.array([i], dtype=int),
            time=grid[None],
            rate=read.rate,
        )
        for i, (trial, grid, X, y) in enumerate(
            zip(read.trials, read.grids, read.X, read.y, strict=True)
        )
    ]


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
    r"""Turn recorded trials (IK angles, load, raw EMG, torque) into ``X`` and ``y``.

    Per trial, the angle (degrees become radians) is resampled to ``rate`` from the kinematics'
    first time, velocity and acceleration come from a cubic Savitzky-Golay filter over
    ``DERIVATIVE_WINDOW``, the torque from the ``torque`` file or OpenSim inverse dynamics of
    ``model`` carrying ``load_mass``, and raw EMG becomes envelopes
    (:class:`~deepemg.preprocessing.EMGEnvelope`) in MVC units by the one rule of :mod:`deepemg.io`:
    divided by the MVC reference of the trial's ``mvc`` recordings or, for a subject without them,
    by the muscle's maximum over all of the subject's trials in this call (give them together;
    :func:`load_each_trial` keeps trials whole).

    Parameters
    ----------
    trials : iterable of dict
        One dict per trial: ``kinematics`` (inverse kinematics ``.mot``/``.sto``),
        ``load_mass`` (kg), ``subject`` (becomes ``groups``); optionally ``emg`` (raw EMG: a
        ``.c3d``'s analog channels or a ``.csv`` with a ``time`` column, on the kinematics'
        clock) with ``emg_channels`` (muscle -> channel label, e.g.
        ``{"BIClong": "Biceps.EMG4"}``), ``mvc`` (with ``emg``: path or list of paths of the
        subject's MVC recordings, ``.c3d``/``.csv`` with the same labels, each muscle's in at
        least one), ``torque`` (inverse dynamics ``.sto``), ``torque_column`` (its column,
        default ``<angle_column>_moment``), ``angle_column`` (default ``coordinate``).
    model : "elbow" or path of an .osim file, default="elbow"
        Its muscles make ``y``'s columns and it gives the torque of trials without ``torque``
        (it needs a body named ``load`` for a ``load_mass`` > 0).
    coordinate : str, default="r_elbow_flex"
        The model's coordinate that the angle describes.
    rate : float, default=100.0
        Sampling rate (Hz) of ``X`` and ``y``; the kinematics must be sampled at least as fast.
    n_timesteps : int, optional
        None: one sequence per trial, all cropped to the shortest; an int: trials cut into
        windows of ``n_timesteps`` samples, remainders dropped. A warning names trials cropped
        or too short for a window.
    channels : sequence of str, optional
        Channels of ``X``, in order, named by ``layout_for(model, coordinate)``
        (:class:`~deepemg.channels.ChannelLayout`; joint ``elbow`` for the built-in model, the
        coordinate for a model file). Default: its base channels (``elbow_angle`` ...
        ``elbow_torque`` for ``model="elbow"``), then ``emg_<muscle>`` for every muscle
        measured in all trials (in ``deepemg.ELBOW_CHANNELS``' order, then the model's).
    muscles : sequence of str, optional
        Muscles of ``y``, in order; default: the model's muscles that cross ``coordinate``.
    locked : mapping of str to float, optional
        Values (rad or m) of the model's other coordinates for inverse dynamics (others: their
        defaults), e.g. ``{"r_shoulder_elev": 0.0}`` for Arm26.

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
        For a channel not in an EMG file, a muscle not in the model, a channel given to two
        muscles, kinematics sampled below ``rate``, files that do not cover the same time span,
        NaN in a file, a trial too short for the derivative window, a subject mixing ``mvc``
        and none, a muscle missing from the MVC recordings, or EMG above ``EMG_CEILING``.

    Examples
    --------
    >>> import pathlib, tempfile, numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> rows = "".join(f"{t / 100}\t{90 + 30 * np.sin(np.pi * t / 100)}\n" for t in range(200))
    >>> _ = (folder / "ik.mot").write_text(
    ...     "ik\ninDegrees=yes\nendheader\ntime\tr_elbow_flex\n" + rows)
    >>> data = load_trials([{"kinematics": folder / "ik.mot", "load_mass": 2.0, "subject": "S1"}])
    >>> data.X.shape, data.y.shape, bool(np.isnan(data.y).all())  # no EMG recorded: y is NaN
    ((1, 200, 5), (1, 200, 7), True)
    >>> data.channels
    ['elbow_angle', 'elbow_velocity', 'elbow_acceleration', 'load_mass', 'elbow_torque']
    """
    _check_n_timesteps(n_timesteps)
    read = _read_trials(trials, model, coordinate, rate, channels, muscles, locked)
    return _sequences(read, n_timesteps)


def _check_n_timesteps(n_timesteps: object) -> None:
    """Raise unless ``n_timesteps`` is None or a positive integer."""
    if n_timesteps is not None and (
        not isinstance(n_timesteps, int | np.integer) or n_timesteps < 1
    ):
        raise ValueError(f"n_timesteps must be None or a positive integer, got {n_timesteps!r}.")


def _sequences(read: Bunch, n_timesteps: int | None) -> Bunch:
    """:func:`load_trials`' Bunch: the trials of ``read`` cropped, or cut into windows."""
    lengths = [grid.size for grid in read.grids]
    if n_timesteps is None:
        pieces = _crop_to_shortest(read.trials, lengths, read.rate)
    else:
        pieces = _cut_windows(read.trials, lengths, n_timesteps, read.rate)
    return Bunch(
        X=np.stack([read.X[i][a:b] for i, a, b in pieces]).astype(np.float64),
        y=np.stack([read.y[i][a:b] for i, a, b in pieces]).astype(np.float64),
        channels=list(read.channels),
        muscles=list(read.muscles),
        groups=np.array([read.trials[i]["subject"] for i, _, _ in pieces]),
        trial_index=np.array([i for i, _, _ in pieces], dtype=int),
        time=np.stack([read.grids[i][a:b] for i, a, b in pieces]),
        rate=read.rate,
    )


def _crop_to_shortest(trials: list[dict], lengths: list[int], rate: float) -> list[tuple]:
    """(trial, start, stop) of each trial cropped to the shortest, with a warning if any was."""
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
            stacklevel=4,
        )
    return [(i, 0, shortest) for i in range(len(trials))]


def _cut_windows(trials: list[dict], lengths: list[int], n_timesteps: int, rate: float) -> list:
    """(trial, start, stop) of every whole window of ``n_timesteps`` samples in the trials."""
    pieces, short = [], []
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
            stacklevel=4,
        )
    return pieces


def _read_trials(
    trials: Iterable[Mapping] | Mapping,
    model: str | os.PathLike,
    coordinate: str,
    rate: float,
    channels: str | Sequence[str] | None,
    muscles: str | Sequence[str] | None,
    locked: Mapping[str, float] | None,
) -> Bunch:
    """Every trial read and in deepemg's units.

    Per trial ``X`` (n_i, n_channels) and ``y`` (n_i, n_muscles), with the grids, the checked
    trial dicts, channels and muscles.
    """
    if not isinstance(rate, int | float) or not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"rate must be a sampling rate in Hz (> 0), got {rate!r}.")
    rate = float(rate)
    checked = _checked_trials(trials)
    arm = _TrialModel.load(model, coordinate, locked, muscles)
    muscles = arm.muscles
    _check_emg_muscles(checked, muscles)
    channels, emg_muscles = _choose_channels(checked, muscles, arm.layout, channels)
    need_torque = arm.layout.torque in channels

    grids, kinematics, envelopes = [], [], []
    for i, trial in enumerate(checked):
        where = _trial_name(i, trial)
        grid, motion = _trial_motion(trial, where, rate, arm)
        torque = np.full(grid.size, np.nan)
        if need_torque:
            torque = _trial_torque(trial, where, rate, grid, motion, arm)
        load = np.full(grid.size, trial["load_mass"])
        grids.append(grid)
        kinematics.append(np.column_stack([*motion, load, torque]))
        envelopes.append(_trial_envelopes(trial, grid, where))

    references = _emg_references(checked, envelopes)
    X_trials, y_trials = [], []
    for i, (trial, grid, kin, emg) in enumerate(
        zip(checked, grids, kinematics, envelopes, strict=True)
    ):
        y = _trial_y(i, trial, grid, emg, references[i], muscles)
        columns = {name: kin[:, k] for k, name in enumerate(arm.layout.base)}
        columns.update({emg_channel(m): y[:, muscles.index(m)] for m in emg_muscles})
        X_trials.append(np.column_stack([columns[c] for c in channels]))
        y_trials.append(y)
    return Bunch(
        trials=checked,
        channels=list(channels),
        muscles=list(muscles),
        rate=rate,
        grids=grids,
        X=X_trials,
        y=y_trials,
    )


def _checked_trials(trials: Iterable[Mapping] | Mapping) -> list[dict]:
    """The trial dicts checked (:func:`_check_trial`); one dict alone is a list of one."""
    if isinstance(trials, Mapping):
        trials = [trials]
    checked = [_check_trial(i, trial) for i, trial in enumerate(trials)]
    if not checked:
        raise ValueError("trials is empty; give at least one trial dict.")
    return checked


@dataclass
class _TrialModel:
    """The OpenSim model of :func:`load_trials`: its muscles of ``y``, its coordinate's range.

    It gives the torque of trials without an inverse dynamics file, carrying each trial's load.
    """

    model: osim.Model
    pose: ModelPose
    coordinate: str
    muscles: list[str]
    layout: ChannelLayout
    rotational: bool
    range: tuple[float, float]
    loaded_mass: float | None = None

    @classmethod
    def load(
        cls,
        model: str | os.PathLike,
        coordinate: str,
        locked: Mapping[str, float] | None,
        muscles: str | Sequence[str] | None,
    ) -> _TrialModel:
        """Load ``model`` ("elbow" or an .osim path) posed at ``coordinate``; check ``muscles``."""
        import opensim as osim

        from .. import opensim as bridge
        from ..opensim import muscle_handles, muscles_crossing

        specification = ModelSpecification(model)
        if specification.is_builtin:
            model_path = bridge.ELBOW_MODEL_PATH
        elif specification.path is not None:
            model_path = specification.path
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
        rotational = pose.coordinate.getMotionType() == osim.Coordinate.Rotational
        return cls(osim_model, pose, coordinate, muscles, layout, rotational, pose.range)

    def inverse_dynamics(self, load_mass: float, motion: list[np.ndarray]) -> np.ndarray:
        """The coordinate's torque (N·m) for ``motion`` (angle, velocity, acceleration)."""
        from .. import opensim as bridge

        if load_mass != self.loaded_mass:
            if load_mass > 0 or self.model.getBodySet().contains("load"):
                bridge.set_load_mass(self.model, load_mass)
            self.pose.reinitialize()
            self.loaded_mass = load_mass
        return bridge.inverse_dynamics(self.pose, *motion)


def _check_emg_muscles(trials: list[dict], muscles: list[str]) -> None:
    """Raise if a trial's ``emg_channels`` names a muscle that is not one of ``y``."""
    for i, trial in enumerate(trials):
        unknown = [m for m in trial.get("emg_channels", {}) if m not in muscles]
        if unknown:
            raise ValueError(
                f"{_trial_name(i, trial)}: emg_channels names {unknown}, which are not muscles "
                f"of y {muscles}; its keys are the model's muscle names and its values the "
                "channel labels in the EMG file, e.g. {'BIClong': 'Biceps.EMG4'}."
            )


def _choose_channels(
    trials: list[dict],
    muscles: list[str],
    layout: ChannelLayout,
    channels: str | Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    """The channels of ``X`` (``channels`` checked, or the default) and the muscles with EMG in X.

    A muscle's EMG can enter ``X`` only when every trial measures it.
    """
    from ..channels import ELBOW_CHANNELS

    emg_everywhere = [m for m in muscles if all(m in t.get("emg_channels", {}) for t in trials)]
    emg_somewhere = [m for m in muscles if any(m in t.get("emg_channels", {}) for t in trials)]
    order = ChannelLayout(ELBOW_JOINT).emg_muscles(ELBOW_CHANNELS)
    emg_muscles = [m for m in order if m in emg_everywhere] + [
        m for m in emg_everywhere if m not in order
    ]
    available = layout.default_channels(emg_muscles)
    if channels is None:
        partial = [m for m in emg_somewhere if m not in emg_everywhere]
        if partial:
            warnings.warn(
                f"EMG of {partial} is in some trials only: it enters y but not X (X needs the "
                "channel in every trial).",
                stacklevel=4,
            )
        return available, emg_muscles
    channels = [channels] if isinstance(channels, str) else list(channels)
    missing = [c for c in channels if c not in available]
    if missing:
        partly = [
            c for c in missing if c.startswith(EMG_PREFIX) and c[len(EMG_PREFIX) :] in emg_somewhere
        ]
        note = f" ({partly} are measured in some trials only.)" if partly else ""
        raise ValueError(_missing_message("channel", missing, available) + note)
    return channels, emg_muscles


def _trial_motion(
    trial: dict, where: str, rate: float, arm: _TrialModel
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The trial's grid at ``rate`` and its angle, velocity and acceleration on it.

    In rad, rad/s and rad/s² for a rotational coordinate (m, m/s, m/s² for a translation).
    """
    column = str(trial.get("angle_column", arm.coordinate))
    kin = read_storage(trial["kinematics"], radians=False)
    angle = _check_column(
        kin, column, " Set 'angle_column' in the trial dict to the angle's column."
    ).copy()
    if kin.in_degrees and arm.rotational:
        angle = np.radians(angle)
    _check_rate(kin.rate, rate, "kinematics", kin.path, where)
    n = int(np.floor((kin.time[-1] - kin.time[0]) * rate + 1e-6)) + 1
    grid = kin.time[0] + np.arange(n) / rate
    angle = resample(kin.time, angle, grid)
    window = _savgol_window(rate)
    if n < window:
        raise ValueError(
            f"{where} has {n} samples at {rate:g} Hz, fewer than the {window} of the "
            f"{DERIVATIVE_WINDOW:g} s derivative window."
        )
    low, high = arm.range
    if angle.min() < low - 1e-6 or angle.max() > high + 1e-6:
        warnings.warn(
            f"{where}: the angle leaves the range of '{arm.coordinate}' "
            f"[{np.degrees(low):.1f}, {np.degrees(high):.1f}] deg: it runs from "
            f"{np.degrees(angle.min()):.1f} to {np.degrees(angle.max()):.1f} deg"
            f"{'' if kin.in_degrees else ' (the file says inDegrees=no: is that right?)'}. "
            "The musculoskeletal model refuses angles outside its range.",
            stacklevel=4,
        )
    velocity = savgol_filter(angle, window, 3, deriv=1, delta=1.0 / rate)
    acceleration = savgol_filter(angle, window, 3, deriv=2, delta=1.0 / rate)
    return grid, [angle, velocity, acceleration]


def _trial_torque(
    trial: dict,
    where: str,
    rate: float,
    grid: np.ndarray,
    motion: list[np.ndarray],
    arm: _TrialModel,
) -> np.ndarray:
    """The trial's torque on ``grid``: from its inverse dynamics file, else from the model."""
    if "torque" not in trial:
        return arm.inverse_dynamics(trial["load_mass"], motion)
    dynamics = read_storage(trial["torque"], radians=False)
    column = str(trial.get("angle_column", arm.coordinate))
    name = str(trial.get("torque_column", f"{column}_moment"))
    moment = _check_column(
        dynamics, name, " Set 'torque_column' in the trial dict to the torque's column."
    )
    _check_rate(dynamics.rate, rate, "torques", dynamics.path, where)
    _check_span(dynamics.time, grid, "torques", dynamics.path, where)
    return resample(dynamics.time, moment, grid)


def _trial_envelopes(
    trial: dict, grid: np.ndarray, where: str
) -> tuple[Recording, dict[str, np.ndarray]] | None:
    """The trial's EMG recording and its envelopes (muscle -> unnormalised envelope), or None."""
    from ..preprocessing import EMGEnvelope

    if "emg" not in trial:
        return None
    mapping = {m: str(label) for m, label in trial["emg_channels"].items()}
    recording = _read_emg(trial["emg"], list(mapping.values()), where)
    _check_span(recording.time, grid, "EMG samples", recording.path, where)
    try:
        envelope = EMGEnvelope(rate=recording.rate, normalize=None).fit_transform(recording.data)
    except ValueError as exc:
        raise ValueError(f"{where}, EMG file '{recording.path}': {exc}") from None
    return recording, dict(zip(mapping, envelope.T, strict=True))


def _trial_y(
    i: int,
    trial: dict,
    grid: np.ndarray,
    emg: tuple[Recording, dict[str, np.ndarray]] | None,
    reference: dict | None,
    muscles: list[str],
) -> np.ndarray:
    """The trial's ``y`` (n_i, n_muscles): its envelopes in MVC units on ``grid``, NaN without."""
    from ..validation import check_envelopes

    y = np.full((grid.size, len(muscles)), np.nan)
    if emg is None:
        return y
    recording, by_muscle = emg
    assert reference is not None  # every trial with EMG has one (_emg_references)
    for muscle, envelope in by_muscle.items():
        normalised = envelope / reference[muscle]
        y[:, muscles.index(muscle)] = resample(recording.time, normalised, grid)
    measured = [muscles.index(m) for m in by_muscle]
    try:
        check_envelopes(y[:, measured], "the EMG", [muscles[j] for j in measured])
    except ValueError as exc:
        source = (
            f"its MVC recording(s) {[p.name for p in trial['mvc']]}"
            if "mvc" in trial
            else "the subject's maximum"
        )
        raise ValueError(
            f"{_trial_name(i, trial)}: {exc} The reference is {source}: was it "
            "recorded with the same electrodes and gain, at maximal effort?"
        ) from None
    return y
