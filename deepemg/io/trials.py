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
        _check_electrodes(mapping, f"trial {i}")
    if "mvc" in trial:
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
        trial["mvc"] = [Path(p) for p in paths]
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


def _mvc_levels(path: Path, labels: set[str]) -> dict:
    """Channel label -> MVC reference (the highest mean envelope over ``MVC_WINDOW``) of the
    ``labels`` that the MVC recording ``path`` holds."""
    from ..preprocessing import EMGEnvelope
    from .c3d import _read_c3d, _select

    suffix = path.suffix.lower()
    if suffix == ".c3d":
        analogs = _read_c3d(path)
        recording = _select(analogs, [c for c in analogs.labels if c in labels])
    elif suffix in (".csv", ".txt"):
        table = read_csv_table(path)
        keep = [c for c in table.labels if c in labels]
        index = [table.labels.index(c) for c in keep]
        recording = Recording(table.time, table.data[:, index], keep, table.rate, path=path)
    else:
        _existing_file(path, "a .c3d or .csv file of raw EMG")
        raise ValueError(
            f"The MVC recording '{path}' is neither .c3d nor .csv; deepemg reads raw EMG from "
            "c3d analog channels or from a csv table with a time column."
        )
    if not recording.labels:
        return {}
    width = int(round(MVC_WINDOW * recording.rate))
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


def _emg_references(trials: list[dict], envelopes: list) -> list[dict | None]:
    """Per trial, muscle -> the envelope that is 1 (the MVC), by the one rule of
    :func:`load_trials`: the trial's MVC recordings, else the subject's maximum over all its
    trials."""
    by_subject: dict = {}
    for i, emg in enumerate(envelopes):
        if emg is not None:
            by_subject.setdefault(trials[i]["subject"], []).append(i)
    references: list[dict | None] = [None] * len(trials)
    needed: dict = {}  # MVC file -> channel labels wanted from it
    for subject, indices in by_subject.items():
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
        if with_mvc:
            for i in indices:
                labels = [str(label) for label in trials[i]["emg_channels"].values()]
                for path in trials[i]["mvc"]:
                    needed.setdefault(path, set()).update(labels)
            continue
        maximum: dict = {}
        for i in indices:
            for muscle, envelope in envelopes[i][1].items():
                maximum[muscle] = max(maximum.get(muscle, 0.0), float(envelope.max()))
        for muscle, value in maximum.items():
            if value <= 0:
                raise ValueError(
                    f"The EMG of {muscle} of subject {subject!r} is flat zero in every trial: "
                    "was the channel recorded? Leave it out of emg_channels."
                )
        for i in indices:
            references[i] = {m: maximum[m] for m in envelopes[i][1]}
    levels = {path: _mvc_levels(path, labels) for path, labels in needed.items()}
    for i, trial in enumerate(trials):
        if envelopes[i] is None or "mvc" not in trial:
            continue
        references[i] = {}
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
            references[i][muscle] = max(found)
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
    """Turn recorded trials (IK angles, load, raw EMG, torque) into ``X`` and ``y``.

    For each trial: the joint angle is read from the inverse kinematics file (degrees become
    radians) and resampled to ``rate`` on a uniform grid from the file's first time;
    velocity and acceleration come from a cubic Savitzky-Golay filter over
    ``DERIVATIVE_WINDOW`` = 0.1 s; the torque comes from the trial's inverse dynamics file or,
    without one, from OpenSim inverse dynamics of ``model`` carrying ``load_mass`` (other
    coordinates held still); raw EMG becomes envelopes with
    :class:`~deepemg.preprocessing.EMGEnvelope` (band-pass 20-450 Hz, rectify, 6 Hz low-pass),
    in units of a maximal voluntary contraction (MVC), then resampled to the grid.

    **EMG units: one rule** (as in :func:`~deepemg.datasets.make_elbow_lifting`'s arrays):

    - trials that give ``mvc`` (the subject's MVC recordings) are divided, muscle by muscle,
      by the MVC reference: the highest mean envelope over ``MVC_WINDOW`` = 0.5 s in those
      recordings, processed like the trials. Envelopes above 1 (a lift stronger than the MVC
      trial) are kept, up to :data:`~deepemg.validation.EMG_CEILING` = 1.5; above that the
      reference cannot be the muscle's MVC and a ValueError names the trial and the muscle.
    - a subject without MVC recordings is normalised to each muscle's maximum envelope over
      all of that subject's trials given in this call (whole files, not only the part that
      the kinematics cover): never trial by trial, so give all of a subject's trials together
      (:func:`load_each_trial` keeps trials apart while normalising them together).

    A subject's trials with EMG either all give ``mvc`` or none do.

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
        - ``mvc`` (optional, with ``emg``): path, or list of paths, of the subject's maximal
          voluntary contraction recordings (``.c3d`` or ``.csv``, raw EMG with the same
          channel labels as ``emg``; each muscle's label must be in at least one of them);
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
        For a channel not in an EMG file, a muscle not in the model, a channel given to two
        muscles in ``emg_channels`` (an electrode records one muscle), kinematics sampled below
        ``rate``, files that do not cover the same time span, NaN in a file (with the column
        and time), a trial too short for the derivative window, a subject whose trials mix
        ``mvc`` and none, a muscle missing from the MVC recordings, or EMG above
        ``EMG_CEILING`` times its MVC reference.

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
    if n_timesteps is not None and (
        not isinstance(n_timesteps, int | np.integer) or n_timesteps < 1
    ):
        raise ValueError(f"n_timesteps must be None or a positive integer, got {n_timesteps!r}.")
    read = _read_trials(trials, model, coordinate, rate, channels, muscles, locked)
    trials, channels, muscles, rate = read.trials, read.channels, read.muscles, read.rate
    grids, X_trials, y_trials = read.grids, read.X, read.y

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


def _read_trials(trials, model, coordinate, rate, channels, muscles, locked) -> Bunch:
    """Every trial read and in deepemg's units: per trial ``X`` (n_i, n_channels) and
    ``y`` (n_i, n_muscles), with the grids, the checked trial dicts, channels and muscles."""
    from .. import ELBOW_CHANNELS
    from .. import opensim as bridge
    from ..opensim import muscle_handles, muscles_crossing
    from ..preprocessing import EMGEnvelope
    from ..validation import check_envelopes

    if not isinstance(rate, int | float) or not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"rate must be a sampling rate in Hz (> 0), got {rate!r}.")
    rate = float(rate)
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
                stacklevel=3,
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
                stacklevel=3,
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

    # ------------------------------------------------ EMG in MVC units (one rule)
    references = _emg_references(trials, envelopes)
    X_trials, y_trials = [], []
    for i, (trial, grid, kin, emg) in enumerate(
        zip(trials, grids, kinematics, envelopes, strict=True)
    ):
        y = np.full((grid.size, len(muscles)), np.nan)
        if emg is not None:
            recording, by_muscle = emg
            for muscle, envelope in by_muscle.items():
                normalised = envelope / references[i][muscle]
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
        columns = {name: kin[:, k] for k, name in enumerate(layout.base)}
        columns.update({emg_channel(m): y[:, muscles.index(m)] for m in emg_muscles})
        X_trials.append(np.column_stack([columns[c] for c in channels]))
        y_trials.append(y)
    return Bunch(
        trials=trials,
        channels=list(channels),
        muscles=list(muscles),
        rate=rate,
        grids=grids,
        X=X_trials,
        y=y_trials,
    )
