"""Checks of the sequence arrays every deepemg estimator takes, and their preparation."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy import sparse

from .channels import ELBOW_JOINT, ELBOW_SURFACE_MUSCLES, ChannelLayout, layout_for

if TYPE_CHECKING:
    from .physics.model import MusculoskeletalModel

__all__ = [
    "DERIVATIVE_TOLERANCE",
    "EMG_CEILING",
    "MAX_LOAD_KG",
    "EMGSaturationWarning",
    "SequenceInputs",
    "channel_names",
    "check_envelopes",
    "check_plausible",
    "check_sequences",
    "check_subject_ids",
    "measured_r2",
    "prepare_sequences",
    "saturate_envelopes",
    "sequence_array",
    "subject_array",
    "torque_target",
    "unique_subjects",
]


EMG_CEILING = 1.5
"""Largest EMG envelope accepted (in units of the maximal voluntary contraction, MVC)."""


class EMGSaturationWarning(UserWarning):
    """EMG above 1 (the MVC) was clipped at 1 where it drives the muscle model."""


def check_envelopes(emg: ArrayLike, what: str, names: Sequence[str] | None = None) -> np.ndarray:
    """EMG envelopes in MVC units as float64, or a clear error.

    No infinite or negative values, none above :data:`EMG_CEILING`; NaN (not measured) passes.

    Envelopes normalised to an MVC often exceed 1 a little (noise, gain, an effort stronger
    than the MVC trial): that is real data, kept as it is; :func:`saturate_envelopes` clips
    it where it drives the muscle model.

    Parameters
    ----------
    emg : array-like (..., n_channels)
    what : str
        What the array is, for the messages (``"y"``, ``"X's EMG channels"``).
    names : sequence of str, optional
        Channel names, for the messages.

    Examples
    --------
    >>> check_envelopes([[0.2, 1.1]], "y").max()
    np.float64(1.1)
    >>> check_envelopes([[0.2, 2.5]], "y", ["BIClong", "BRA"])
    Traceback (most recent call last):
    ...
    ValueError: y holds EMG up to 2.5 in 'BRA'; envelopes must be normalised to a maximal ...
    """
    emg = np.asarray(emg, dtype=np.float64)
    names = list(names) if names is not None else [str(j) for j in range(emg.shape[-1])]
    if np.isinf(emg).any():
        raise ValueError(f"{what} holds infinite values; use NaN for channels not measured.")
    for j in range(emg.shape[-1]):
        column = emg[..., j]
        if np.isnan(column).all():
            continue
        low, high = np.nanmin(column), np.nanmax(column)
        if low < 0:
            raise ValueError(
                f"{what} holds negative EMG ({low:.3g}) in '{names[j]}': envelopes are "
                "rectified and low-passed (deepemg.preprocessing.EMGEnvelope), never negative."
            )
        if high > EMG_CEILING:
            raise ValueError(
                f"{what} holds EMG up to {high:.3g} in '{names[j]}'; envelopes must be "
                f"normalised to a maximal voluntary contraction (1 = MVC; up to {EMG_CEILING} "
                "is accepted). Normalise each subject's EMG to its MVC, or to its maximum over "
                "all its trials (deepemg.io.load_trials does)."
            )
    return emg


def saturate_envelopes(emg: ArrayLike, what: str, names: Sequence[str] | None = None) -> np.ndarray:
    """``emg`` clipped at 1 where it drives the muscle model (a muscle is at most fully excited).

    An :class:`EMGSaturationWarning` says how much was clipped. NaN stays.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     out = saturate_envelopes([[0.5, 1.2]], "y", ["BIClong", "BRD"])
    >>> out.tolist(), str(caught[0].message)[:45]
    ([[0.5, 1.0]], 'y: EMG above 1 (the MVC) in BRD (max 1.2, 50.')
    """
    emg = np.asarray(emg, dtype=np.float64)
    above = emg > 1.0
    if above.any():
        names = list(names) if names is not None else [str(j) for j in range(emg.shape[-1])]
        where = [names[j] for j in range(emg.shape[-1]) if above[..., j].any()]
        share = 100.0 * above.sum() / max(int(np.isfinite(emg).sum()), 1)
        warnings.warn(
            f"{what}: EMG above 1 (the MVC) in {', '.join(where)} (max {np.nanmax(emg):.3g}, "
            f"{share:.1f} % of the samples) is clipped at 1 where it drives the muscle model; "
            "the data term uses it as it is.",
            EMGSaturationWarning,
            stacklevel=3,
        )
        emg = np.where(above, 1.0, emg)
    return emg


def channel_names(channels: Sequence[str] | None, layout: ChannelLayout) -> list[str]:
    """The estimator's channel names: ``channels``, or the layout's default.

    The default is :data:`deepemg.ELBOW_CHANNELS` for the built-in elbow (kinematics, load,
    torque and the five surface muscles) and the kinematics, load and torque of the model's
    joint otherwise (name surface EMG channels with ``channels=``).

    Examples
    --------
    >>> channel_names(None, ChannelLayout("knee"))
    ['knee_angle', 'knee_velocity', 'knee_acceleration', 'load_mass', 'knee_torque']
    """
    if channels is not None:
        return [channels] if isinstance(channels, str) else list(channels)
    if layout.joint == ELBOW_JOINT:
        return layout.default_channels(ELBOW_SURFACE_MUSCLES)
    return list(layout.base)


def check_sequences(X: ArrayLike, names: Sequence[str], required: Sequence[str] = ()) -> np.ndarray:
    """``X`` as a float64 ``(n_sequences, n_timesteps, n_channels)`` array, or a clear error.

    Rejects sparse and complex input, other shapes (saying that channels go last), a channel
    count that does not match ``names``, and missing ``required`` channels.

    Examples
    --------
    >>> import numpy as np
    >>> check_sequences(np.zeros((2, 5, 2)), ["a", "b"]).shape
    (2, 5, 2)
    """
    X = sequence_array(X)
    names = list(names)
    if X.shape[2] != len(names):
        raise ValueError(
            f"X has {X.shape[2]} channels but `channels` names {len(names)}: {names}. "
            "Pass channels= naming X's last axis."
        )
    missing = [c for c in required if c not in names]
    if missing:
        raise ValueError(f"X lacks the channels {missing}; its channels are {names}.")
    return X


def sequence_array(X: ArrayLike) -> np.ndarray:
    """``X`` as a float64 ``(n_sequences, n_timesteps, n_channels)`` array, channels unchecked.

    Rejects sparse and complex input, other shapes (saying that channels go last) and empty
    arrays, with the messages of :func:`check_sequences`.

    Examples
    --------
    >>> import numpy as np
    >>> sequence_array(np.zeros((2, 5, 3))).dtype
    dtype('float64')
    """
    if sparse.issparse(X):
        raise TypeError(
            "sparse X is not supported: pass a dense array (n_sequences, n_timesteps, n_channels)."
        )
    X = np.asarray(X)
    if np.iscomplexobj(X):
        raise ValueError("Complex data not supported: X must hold real numbers.")
    X = X.astype(np.float64)
    if X.ndim != 3 and not np.isfinite(X).all():
        raise ValueError("X holds NaN or infinite values; interpolate or drop them.")
    if X.ndim != 3:
        raise ValueError(
            f"X must be 3-D (n_sequences, n_timesteps, n_channels), channels last, got shape "
            f"{X.shape}. (sktime and braindecode put channels first: use X.transpose(0, 2, 1).)"
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"X holds no data (shape {X.shape}): give at least one sequence of at least one "
            "step, (n_sequences, n_timesteps, n_channels)."
        )
    return X


@dataclass
class SequenceInputs:
    """``X`` checked once and split into what the estimators use.

    Attributes
    ----------
    X : ndarray (n_sequences, n_timesteps, n_channels)
        The checked array, float64.
    names : list of str
        Its channel names.
    layout : ChannelLayout
        The joint's channel names.
    inputs : ndarray (n_sequences, n_timesteps, 4)
        Angle (rad), velocity (rad/s), acceleration (rad/s²) and load (kg): the network's input.
    torque : ndarray (n_sequences, n_timesteps)
        Inverse-dynamics torque (N·m): ``X``'s torque channel, or computed once, on first use,
        by the model's rigid-body inverse dynamics.
    """

    X: np.ndarray
    names: list[str]
    layout: ChannelLayout
    inputs: np.ndarray
    physics: MusculoskeletalModel | None = field(default=None, repr=False)

    @property
    def angle(self) -> np.ndarray:
        """Joint angle (rad), ``(n_sequences, n_timesteps)``."""
        return self.inputs[..., 0]

    @property
    def velocity(self) -> np.ndarray:
        """Joint angular velocity (rad/s)."""
        return self.inputs[..., 1]

    @property
    def load(self) -> np.ndarray:
        """Load mass (kg)."""
        return self.inputs[..., 3]

    def channel(self, name: str) -> np.ndarray:
        """One channel of ``X`` by name, ``(n_sequences, n_timesteps)``."""
        return self.X[..., self.names.index(name)]

    @cached_property
    def torque(self) -> np.ndarray:
        """The torque target (N·m) per step (:func:`torque_target`)."""
        return torque_target(self.X, self.names, self.physics, self.layout)

    def subset(self, rows) -> SequenceInputs:
        """The sequences ``rows`` (an index array), as checked; a torque computed is kept."""
        part = SequenceInputs(
            self.X[rows], self.names, self.layout, self.inputs[rows], self.physics
        )
        if "torque" in self.__dict__:
            part.__dict__["torque"] = self.__dict__["torque"][rows]
        return part


DERIVATIVE_TOLERANCE = 1.5
"""Largest factor by which X's velocity (acceleration) may differ from the time derivative of
its angle (velocity) at the declared rate. The simulated subjects' derivatives agree within
1 %, Savitzky-Golay derivatives of recordings within a few %; a rate off by a factor of 2
gives exactly 2 or 1/2."""

MAX_LOAD_KG = 50.0
"""Heaviest load (kg) accepted as plausible for one joint; heavier usually means grams or N."""


def prepare_sequences(
    X: ArrayLike,
    channels: Sequence[str] | None,
    physics: MusculoskeletalModel,
    min_timesteps: int = 1,
    rate: float | None = None,
) -> SequenceInputs:
    """Check ``X`` against the channel contract of ``physics`` and split it once.

    Parameters
    ----------
    X : array-like (n_sequences, n_timesteps, n_channels)
    channels : sequence of str or None
        Names of ``X``'s channels (:func:`channel_names`).
    physics : MusculoskeletalModel
        Names the joint (:func:`deepemg.channels.layout_for`) and gives the inverse dynamics.
    min_timesteps : int, default=1
        Fewest steps a sequence may have (an estimator's window).
    rate : float, optional
        Sampling rate (Hz); with it, the velocity and acceleration are checked against the
        time derivatives of the angle and the velocity (:func:`check_plausible`).

    Returns
    -------
    SequenceInputs

    Raises
    ------
    ValueError
        For a wrong shape, a missing channel (naming the joint's channels), too-short
        sequences, NaN/infinite values in a channel used (with sequence and step), or values
        that cannot be physical (:func:`check_plausible`).

    Examples
    --------
    >>> import numpy as np
    >>> from deepemg.opensim import elbow_model
    >>> X = np.zeros((2, 5, 4)); X[..., 0] = 1.0
    >>> names = ["elbow_angle", "elbow_velocity", "elbow_acceleration", "load_mass"]
    >>> seq = prepare_sequences(X, names, elbow_model())
    >>> seq.inputs.shape, round(float(seq.torque[0, 0]), 2)  # N·m to hold the forearm
    ((2, 5, 4), 2.29)
    """
    layout = layout_for(physics)
    names = channel_names(channels, layout)
    X = check_sequences(X, names, layout.inputs)
    if X.shape[1] < int(min_timesteps):
        raise ValueError(
            f"sequences have {X.shape[1]} steps, fewer than window={min_timesteps}; use a "
            "smaller window or longer sequences."
        )
    used = [names.index(c) for c in layout.inputs]
    if layout.torque in names:
        used.append(names.index(layout.torque))
    bad = ~np.isfinite(X[..., used])
    if bad.any():
        s, t, c = np.argwhere(bad)[0]
        raise ValueError(
            f"X holds NaN or infinite values in channel '{names[used[c]]}' (first at sequence "
            f"{s}, step {t}); interpolate or drop them."
        )
    sequences = SequenceInputs(X, names, layout, X[..., used[:4]], physics)
    check_plausible(sequences, physics, rate)
    return sequences


def check_plausible(
    sequences: SequenceInputs, physics: MusculoskeletalModel, rate: float | None = None
) -> None:
    """Raise a ValueError that says what to fix when the kinematics or the load cannot be physical.

    * the angle must lie in the coordinate's range (radians, not degrees);
    * the load must be between 0 and :data:`MAX_LOAD_KG` kg (not grams, not newtons);
    * with ``rate``, the velocity must be the time derivative of the angle, and the
      acceleration that of the velocity, within a factor of :data:`DERIVATIVE_TOLERANCE`
      (least-squares gain of the channel on ``numpy.gradient``, checked where the motion is
      large enough to tell): a velocity in deg/s, a sampling rate off by a factor of 2 either
      way (50 Hz data declared as 100 Hz) or swapped channels fail.
    """
    layout = sequences.layout
    angle = sequences.angle
    physics._angle(torch.from_numpy(angle), f"X's '{layout.angle}'")  # the model's own range
    load = sequences.load
    if load.min() < 0 or load.max() > MAX_LOAD_KG:
        raise ValueError(
            f"X's '{layout.load}' runs from {load.min():.4g} to {load.max():.4g}; it is the "
            f"mass of the lifted load in kg, between 0 and {MAX_LOAD_KG:g} (not grams, not "
            "newtons)."
        )
    if rate is None or angle.shape[1] < 3:
        return
    step = 1.0 / float(rate)
    pairs = (
        (layout.velocity, sequences.velocity, angle, "angle", 0.05, "rad/s"),
        (
            layout.acceleration,
            sequences.inputs[..., 2],
            sequences.velocity,
            "velocity",
            0.5,
            "rad/s²",
        ),
    )
    for name, values, integral, of, floor, unit in pairs:
        derivative = np.gradient(integral, step, axis=1)
        if np.sqrt(np.mean(derivative**2)) < floor:
            continue  # too little motion to tell
        gain = float(np.sum(values * derivative) / np.sum(derivative**2))
        if not 1 / DERIVATIVE_TOLERANCE <= gain <= DERIVATIVE_TOLERANCE:
            raise ValueError(
                f"X's '{name}' is not the time derivative of its {of} at rate={rate:g} Hz "
                f"(least-squares gain {gain:.3g} instead of 1): is it in {unit}, is the "
                "sampling rate right, and are the channels in the order `channels` names?"
            )


def torque_target(
    X: np.ndarray,
    names: Sequence[str],
    physics: MusculoskeletalModel | None,
    layout: ChannelLayout | None = None,
) -> np.ndarray:
    """Inverse-dynamics torque (N·m) per step.

    ``X``'s torque channel, or, without one, the rigid-body inverse dynamics of ``physics`` (a
    MusculoskeletalModel) from the kinematics and the load.
    """
    names = list(names)
    layout = layout or layout_for(physics)
    if layout.torque in names:
        return X[..., names.index(layout.torque)]
    if physics is None:
        raise ValueError(
            f"X has no '{layout.torque}' channel, and there is no model to compute the torque."
        )
    kinematics = (torch.tensor(X[..., names.index(c)]) for c in layout.inputs)
    with torch.no_grad():
        return physics.inverse_dynamics(*kinematics).numpy()


def measured_r2(
    y: ArrayLike, prediction: ArrayLike, sample_weight: ArrayLike | None = None
) -> float:
    """R² over the muscles ``y`` measures, variance-weighted, each on its non-NaN steps.

    ``1 - sum_j SSE_j / sum_j SST_j`` with ``SST_j`` the sum of squares of muscle ``j`` about
    its own mean (time flattened): scikit-learn's ``multioutput="variance_weighted"``, so that
    a nearly silent muscle (the triceps while lifting) does not dominate the score as it would
    in a plain mean of per-muscle R². ``sample_weight`` (one weight per sequence) weights each
    sequence's steps in both sums and in the means.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[[0.1, np.nan], [0.3, np.nan], [0.5, np.nan]]])
    >>> measured_r2(y, np.array([[[0.1, 9.0], [0.3, 9.0], [0.5, 9.0]]]))
    1.0
    >>> y = np.array([[[0.0, 0.10], [1.0, 0.11]]])  # a silent second muscle
    >>> round(measured_r2(y, np.array([[[0.0, 0.0], [1.0, 0.0]]])), 4)  # mean R² would be -220
    0.9558
    """
    y = np.asarray(y, dtype=np.float64)
    prediction = np.asarray(prediction, dtype=np.float64)
    if sample_weight is None:
        weight = np.ones(y.shape[:2])
    else:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != (y.shape[0],) or not np.isfinite(sample_weight).all():
            raise ValueError(
                f"sample_weight needs one finite weight per sequence ({y.shape[0]}), got shape "
                f"{sample_weight.shape}."
            )
        if (sample_weight < 0).any() or sample_weight.sum() <= 0:
            raise ValueError("sample_weight must be >= 0 with a positive sum.")
        weight = np.broadcast_to(sample_weight[:, None], y.shape[:2])
    if np.isnan(y).all():
        raise ValueError("y has no measured channel to score against.")
    residual = total = 0.0
    for j in range(y.shape[2]):
        measured = ~np.isnan(y[..., j])
        w = weight[measured]
        if measured.any() and w.sum() > 0:
            truth = y[..., j][measured]
            mean = np.average(truth, weights=w)
            residual += float(np.sum(w * (truth - prediction[..., j][measured]) ** 2))
            total += float(np.sum(w * (truth - mean) ** 2))
    if total == 0.0:  # constant targets: perfect or not, as r2_score scores them
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


_LABEL_TYPES = (str, bool, int, float)


def _label(value: object, what: str) -> str | bool | int | float:
    """One subject label as a plain Python ``str``, ``bool``, ``int`` or ``float``."""
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, _LABEL_TYPES):
        raise ValueError(
            f"{what} holds {value!r} ({type(value).__name__}); a subject label is a string or "
            "a number (e.g. 'S01' or 1)."
        )
    if isinstance(value, float) and not np.isfinite(value):
        raise ValueError(f"{what} holds {value!r}; every sequence needs its subject's label.")
    return value


def _kind(value: object) -> str:
    return "string" if isinstance(value, str) else "bool" if isinstance(value, bool) else "number"


def check_subject_ids(
    subject_ids: ArrayLike, n_sequences: int, what: str = "subject_ids"
) -> np.ndarray:
    """One subject label per sequence, as the user gave them, or a clear error.

    Labels are strings, integers, floats or booleans. ``None``, NaN and other objects are
    refused. An array keeps its dtype; a list whose labels are all of one type becomes the
    array numpy makes of it, and a list that mixes types (``[0, 1, "S03"]``) an object array
    of the labels as they are (numpy would turn the numbers into strings). Booleans cannot be
    mixed with numbers (``True == 1`` in Python: they would be the same subject).

    Parameters
    ----------
    subject_ids : array-like of shape (n_sequences,)
    n_sequences : int
    what : str, default="subject_ids"
        The name used in messages.

    Returns
    -------
    ndarray of shape (n_sequences,)

    Examples
    --------
    >>> check_subject_ids([0, 1, "S03"], 3).tolist()
    [0, 1, 'S03']
    >>> check_subject_ids([1.0, float("nan")], 2)
    Traceback (most recent call last):
    ...
    ValueError: subject_ids holds nan; every sequence needs its subject's label.
    """
    if isinstance(subject_ids, np.ndarray) and subject_ids.dtype.kind in "biufU":
        labels = subject_ids
        if labels.dtype.kind == "f" and not np.isfinite(labels).all():
            raise ValueError(f"{what} holds NaN; every sequence needs its subject's label.")
    else:
        if isinstance(subject_ids, str | bytes) or np.ndim(subject_ids) == 0:
            raise ValueError(
                f"{what} needs one label per sequence of X ({n_sequences}), got {subject_ids!r}."
            )
        items = [_label(v, what) for v in np.asarray(subject_ids, dtype=object).ravel()]
        labels = np.asarray(subject_ids, dtype=object)
        if labels.ndim == 1:
            labels = subject_array(items)
    if labels.shape != (n_sequences,):
        raise ValueError(
            f"{what} needs one label per sequence of X ({n_sequences}), got shape {labels.shape}."
        )
    kinds = {_kind(v) for v in labels.tolist()}
    if "bool" in kinds and len(kinds) > 1:
        raise ValueError(
            f"{what} mixes booleans with other labels; True and 1 would be one subject. Use "
            "one kind of label."
        )
    return labels


def subject_array(items: list) -> np.ndarray:
    """An array of subject labels: numpy's own for labels of one type, else an object array.

    The object array keeps each label as it is (numpy would turn numbers beside strings into
    strings).

    Examples
    --------
    >>> subject_array([0, "new"]).tolist()
    [0, 'new']
    """
    if len({type(v) for v in items}) <= 1:
        return np.asarray(items)
    labels = np.empty(len(items), dtype=object)
    labels[:] = items
    return labels


def unique_subjects(labels: ArrayLike) -> np.ndarray:
    """The distinct subject labels, sorted (numbers before strings), types kept.

    Examples
    --------
    >>> unique_subjects(np.array(["S02", 1, "S01", 1], dtype=object)).tolist()
    [1, 'S01', 'S02']
    """
    labels = np.asarray(labels)
    if labels.dtype != object:
        return np.unique(labels)
    distinct = list(dict.fromkeys(labels.tolist()))
    distinct.sort(key=lambda v: (isinstance(v, str), v))
    return subject_array(distinct)
