"""Is the fitted muscle model adequate for a subject? Numbers measured after fit and personalize.

The physics helps only where the subject's muscles follow the fitted muscle law: in the
scenario benchmark (docs/scenarios.md) the prediction-time correction hurts the deep muscles
of subjects with compliant tendons. Per subject (and per sequence), whether the fitted model
explains the measured surface EMG and the inverse-dynamics (ID) torque together:

``torque_residual_ratio``
    The surface muscles driven by their measured EMG (through the subject's activation
    dynamics and delay), the others by the network's EMG (as in the fit's
    ``physics_drive="measured"``): RMS of the ID torque minus the muscles' torque over the
    subject's samples, divided by the RMS of the ID torque. The fit minimises it; what it
    cannot remove is what the muscle law, within its parameters' bounds, cannot explain.
``noise_ratio``
    The same RMS residual (N·m) divided by the ID torque's noise level
    (:func:`torque_noise_level`): a residual within the torque's own noise is no evidence.
``unreachable_ratio``
    Torque no activation of the unmeasured muscles could close, whatever the network says
    (:func:`surface_drive_residual`, closed form), RMS / RMS ID torque: gross errors (torque
    units, EMG calibration, a model far too weak).
``surface_pull``
    How far the ``"torque"`` correction (:func:`~deepemg.correction.correct_emg`) moves the
    surface muscles' EMG from the network's, RMS over the measured samples / RMS of the
    measured EMG. Reported, not judged: it did not separate the scenarios
    (``docs/results/adequacy.txt``).

The verdict is ``"poor"`` when ``unreachable_ratio`` > :data:`UNREACHABLE_THRESHOLD`, or when
``torque_residual_ratio`` > :data:`RESIDUAL_THRESHOLD` and ``noise_ratio`` >
:data:`NOISE_THRESHOLD`. The thresholds were chosen on simulated subjects whose muscles follow
the model and subjects whose do not (``benchmarks/bench_adequacy.py``,
``docs/results/adequacy.txt``); docs/nmm.md says what to do when a subject is flagged.
:class:`deepemg.NMMRegressor` calls :func:`record_adequacy` at the end of ``fit`` and
``personalize``: :func:`assess_fit` on their data, kept in ``model_adequacy_`` (fits of fewer
than :data:`MIN_STEPS` optimiser steps are judged on ``unreachable_ratio`` only), and a
:class:`ModelAdequacyWarning` for each poor subject (:func:`warn_if_poor`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

__all__ = [
    "MIN_PERSONALIZE_STEPS",
    "MIN_STEPS",
    "MOVEMENT_BAND_HZ",
    "NOISE_FLOOR_FRACTION",
    "NOISE_THRESHOLD",
    "PERSONALIZED_RESIDUAL_THRESHOLD",
    "RESIDUAL_THRESHOLD",
    "UNREACHABLE_THRESHOLD",
    "VERDICTS",
    "ModelAdequacyWarning",
    "SubjectAdequacy",
    "adequacy_from_rows",
    "adequacy_rows",
    "adequacy_table",
    "assess_fit",
    "measured_drive_residual",
    "record_adequacy",
    "subject_adequacy",
    "surface_drive_residual",
    "torque_noise_level",
    "training_steps",
    "trusts_physics",
    "warn_if_poor",
]

MOVEMENT_BAND_HZ = 10.0
"""Hz: the ID torque's content above this frequency is taken for noise (movement is below)."""

NOISE_FLOOR_FRACTION = 0.02
"""The torque's noise level is at least this fraction of its RMS (smooth, simulated torque)."""

RESIDUAL_THRESHOLD = 0.10
"""``torque_residual_ratio`` above which (with ``noise_ratio`` above :data:`NOISE_THRESHOLD`)
a subject's muscle model is called poor. Since 0.6 the network's EMG is not trained by the
torque (``physics_trains="auto"`` with EMG inputs), so the residual shows the law's misfit
more plainly: after 30 epochs simulated subjects whose muscles follow the model reached
0.044-0.052 (0.058 in the scenario run), compliant-tendon Thelen ones 0.156-0.173, and
``off_simulator`` 0.184-0.214; fast ballistic moves with deepemg's own law 0.13-0.18, kept
adequate by :data:`NOISE_THRESHOLD` (``docs/results/adequacy.txt``). 0.5's value was 0.040."""

NOISE_THRESHOLD = 7.0
"""``noise_ratio`` a residual must exceed to count: 7 times the torque's noise level.
Compliant-tendon subjects reached 7.6-9.2, the ballistic ones 4.8-6.2, the others at most 5.8
(``docs/results/adequacy.txt``; 0.5's value was 2)."""

UNREACHABLE_THRESHOLD = 0.10
"""``unreachable_ratio`` above which a subject's muscle model is called poor: 0 on every
simulated case with BRA and TRImed unmeasured, 0.22-0.27 with the torque x 10; 0.045-0.059
after a one-epoch fit whose ``y`` measured every muscle (nothing free to close the torque:
the residual is then the parameters' misfit, for ``torque_residual_ratio`` to judge)."""

PERSONALIZED_RESIDUAL_THRESHOLD = 0.10
""":data:`RESIDUAL_THRESHOLD` after ``personalize`` (the network fitted on other subjects):
new subjects whose muscles follow the model reached 0.049-0.062, compliant-tendon ones
0.158-0.184, ``off_simulator`` ones 0.200-0.236 (``docs/results/adequacy.txt``; 0.5's value
was 0.050)."""

MIN_PERSONALIZE_STEPS = 100
""":data:`MIN_STEPS` of ``personalize`` (the network is fitted already; 135 steps were enough
for the numbers of :data:`PERSONALIZED_RESIDUAL_THRESHOLD`)."""

MIN_STEPS = 250
"""Optimiser steps a fit needs before ``torque_residual_ratio`` is judged
(:func:`record_adequacy`). With the thresholds since 0.6 the scenario benchmark's
within-subject fits (8 sequences, 30 epochs: 270 steps) already separate every subject with
deepemg's own muscle law (``noise_ratio`` at most 6.2) from every compliant-tendon one (at least
7.6); 0.5's limit, 800, was set for its tighter residual threshold (0.040: 410 steps gave
0.041 where the model holds; ``docs/results/adequacy.txt``)."""


class ModelAdequacyWarning(UserWarning):
    """The fitted muscle model cannot explain a subject's measured EMG and torque together.

    Raised (as a warning) by :meth:`deepemg.NMMRegressor.fit` and ``personalize`` when a
    subject's :class:`SubjectAdequacy` verdict is ``"poor"``.

    Examples
    --------
    >>> import warnings
    >>> from deepemg import ModelAdequacyWarning
    >>> issubclass(ModelAdequacyWarning, UserWarning)
    True
    """


@dataclass(frozen=True)
class SubjectAdequacy:
    """One subject's adequacy numbers (the module's docstring says what each measures).

    Attributes
    ----------
    torque_residual_ratio : float
        RMS torque residual with the surface muscles driven by their measured EMG / RMS ID
        torque (dimensionless; NaN without torque).
    noise_ratio : float
        The same RMS residual (N·m) / the ID torque's noise level (N·m).
    unreachable_ratio : float
        RMS of the torque no activation of the unmeasured muscles could close / RMS ID torque.
    surface_pull : float
        RMS change of the surface muscles' EMG by the ``"torque"`` correction / RMS measured
        EMG (NaN when no surface EMG was measured).
    trial_residual_ratios : tuple of float
        ``torque_residual_ratio`` of each of the subject's sequences, in the order given.
    verdict : str
        ``"adequate"``, ``"poor"`` (above a threshold) or ``"not assessed"`` (NaN numbers,
        or a fit of fewer than :data:`MIN_STEPS` steps).

    Examples
    --------
    >>> a = SubjectAdequacy(0.03, 1.5, 0.0, 0.05, (0.03, 0.032), "adequate")
    >>> a.to_dict()["verdict"], SubjectAdequacy.from_dict(a.to_dict()) == a
    ('adequate', True)
    """

    torque_residual_ratio: float
    noise_ratio: float
    unreachable_ratio: float
    surface_pull: float
    trial_residual_ratios: tuple[float, ...]
    verdict: str

    def to_dict(self) -> dict:
        """The numbers as plain JSON values (floats, list, str; NaN as None)."""
        out = asdict(self)
        out["trial_residual_ratios"] = [_plain(v) for v in self.trial_residual_ratios]
        for key in _NUMBERS:
            out[key] = _plain(out[key])
        return out

    @classmethod
    def from_dict(cls, values: dict) -> SubjectAdequacy:
        """The inverse of :meth:`to_dict` (None as NaN), or a ``ValueError``."""
        try:
            numbers = [float(_nan(values[key])) for key in _NUMBERS]
            trials = tuple(float(_nan(v)) for v in values["trial_residual_ratios"])
            verdict = values["verdict"]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a model adequacy record ({error!r}).") from None
        if verdict not in VERDICTS:
            raise ValueError(f"not a model adequacy record (verdict {verdict!r}).")
        return cls(numbers[0], numbers[1], numbers[2], numbers[3], trials, str(verdict))


_NUMBERS = ("torque_residual_ratio", "noise_ratio", "unreachable_ratio", "surface_pull")

VERDICTS = ("adequate", "poor", "not assessed")
"""The verdicts of :class:`SubjectAdequacy`."""


def _plain(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _nan(value):
    return math.nan if value is None else value


def torque_noise_level(torque, rate: float) -> np.ndarray:
    """Each sequence's inverse-dynamics torque noise level (N·m, RMS).

    The RMS of the torque's content above :data:`MOVEMENT_BAND_HZ` (by FFT, after removing
    the line through the first and last samples so that the ends do not leak), scaled up to
    the whole band as for white noise, and at least :data:`NOISE_FLOOR_FRACTION` x the
    torque's RMS (simulated torque is smooth: its level is then the floor).

    Parameters
    ----------
    torque : array-like (n_sequences, n_timesteps)
        ID torque (N·m), finite.
    rate : float
        Sampling rate (Hz); below ``2.5 x`` :data:`MOVEMENT_BAND_HZ` only the floor is used.

    Returns
    -------
    ndarray (n_sequences,)
        N·m.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(1000) / 100.0
    >>> smooth = 10 * np.sin(2 * np.pi * 0.5 * t)
    >>> noise = np.random.default_rng(0).normal(0, 1.0, t.size)
    >>> level = torque_noise_level(np.stack([smooth, smooth + noise]), 100.0)
    >>> [round(float(v), 2) for v in level]       # floor 0.02 x 7.07 N·m; the noise's SD
    [0.14, 0.98]
    """
    torque = np.asarray(torque, dtype=np.float64)
    if torque.ndim != 2 or torque.shape[1] < 2 or not np.isfinite(torque).all():
        raise ValueError(
            "torque must be finite and shaped (n_sequences, n_timesteps >= 2), got shape "
            f"{torque.shape}."
        )
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a finite number of Hz > 0, got {rate!r}.")
    floor = NOISE_FLOOR_FRACTION * np.sqrt((torque**2).mean(axis=1))
    nyquist = rate / 2.0
    if nyquist < 1.25 * MOVEMENT_BAND_HZ:
        return floor
    n = torque.shape[1]
    ramp = np.linspace(0.0, 1.0, n)
    detrended = torque - (torque[:, :1] + (torque[:, -1:] - torque[:, :1]) * ramp)
    spectrum = np.fft.rfft(detrended, axis=1)
    spectrum[:, np.fft.rfftfreq(n, 1.0 / rate) <= MOVEMENT_BAND_HZ] = 0.0
    high = np.fft.irfft(spectrum, n=n, axis=1)
    level = np.sqrt((high**2).mean(axis=1) * nyquist / (nyquist - MOVEMENT_BAND_HZ))
    return np.maximum(level, floor)


def _module_inputs(module, subject, angle, *arrays) -> tuple:
    """The subject rows, the angle (rad) and ``arrays`` as float64 tensors on the module's device.

    The rows are checked against the module's subjects and the angle against the coordinate's
    range (they are checked once, here, where they enter).
    """
    device = next(module.parameters()).device  # the module's (a GPU's when fitted there)
    subject = module.subject_parameters._check_index(np.asarray(subject)).to(device)
    angle = module.physics._angle(torch.as_tensor(np.asarray(angle, dtype=np.float64)))
    tensors = (torch.as_tensor(np.asarray(a, dtype=np.float64)).to(device) for a in arrays)
    return subject, angle.to(device), *tensors


@torch.no_grad()
def surface_drive_residual(module, measured, angle, velocity, torque, subject) -> np.ndarray:
    """The torque (N·m) no activation of the free muscles can close, per sample.

    The muscles with measured EMG are driven by it (clipped to [0, 1]) through the subject's
    activation dynamics; the others (a muscle whose column holds a NaN in a sequence is free
    there) may take any activation in [0, 1] at each sample. The joint torque is the sum of
    the muscles' torques, each monotone in its activation, so the reachable torques form an
    interval; the residual is the ID torque minus its nearest point in that interval.

    Parameters
    ----------
    module : NeuralMusculoskeletalModule
        The fitted module (``physics``, ``subject_parameters``, ``rate``).
    measured : array-like (n_sequences, n_timesteps, n_muscles)
        EMG (MVC units), NaN where a muscle is not measured.
    angle, velocity, torque : array-like (n_sequences, n_timesteps)
        Joint angle (rad, within the model's range), velocity (rad/s), ID torque (N·m).
    subject : array-like (n_sequences,) of int
        Each sequence's row of the module's subject parameters (-1: the population's).

    Returns
    -------
    ndarray (n_sequences, n_timesteps)
        Signed residual (N·m): positive where more flexion torque is needed than reachable.

    Examples
    --------
    >>> import numpy as np
    >>> from deepemg.opensim import elbow_model
    >>> from deepemg.nmm_module import NeuralMusculoskeletalModule
    >>> module = NeuralMusculoskeletalModule.nominal(elbow_model())  # untrained, nominal
    >>> measured = np.full((1, 50, 7), 0.1)
    >>> measured[..., [2, 6]] = np.nan               # BRA and TRImed free
    >>> angle, zero = np.full((1, 50), 1.5), np.zeros((1, 50))
    >>> need = np.stack([np.full(50, 5.0)])            # 5 N·m: reachable
    >>> too_much = np.full((1, 50), 500.0)             # 500 N·m: not
    >>> subject = np.zeros(1, dtype=int)
    >>> float(np.abs(surface_drive_residual(module, measured, angle, zero, need, subject)).max())
    0.0
    >>> bool(surface_drive_residual(module, measured, angle, zero, too_much, subject).min() > 100)
    True
    """
    physics = module.physics
    subject, angle, measured, velocity, torque = _module_inputs(
        module, subject, angle, measured, velocity, torque
    )
    if measured.shape != (*angle.shape, physics.n_muscles) or velocity.shape != angle.shape:
        raise ValueError(
            f"measured must be shaped (n_sequences, n_timesteps, {physics.n_muscles}) and "
            f"angle, velocity, torque (n_sequences, n_timesteps); got {tuple(measured.shape)}, "
            f"{tuple(angle.shape)}, {tuple(velocity.shape)}, {tuple(torque.shape)}."
        )
    if torque.shape != angle.shape or subject.shape != angle.shape[:1]:
        raise ValueError(
            f"torque must be shaped {tuple(angle.shape)} and subject ({angle.shape[0]},); got "
            f"{tuple(torque.shape)} and {tuple(subject.shape)}."
        )
    free = torch.isnan(measured).any(dim=1, keepdim=True).expand_as(measured)
    drive = torch.where(free, 0.0, measured.clamp(0.0, 1.0))
    activation, params = module.activation(drive, subject)
    activation = torch.where(free, 0.0, activation)
    force, arm = physics._force(activation, angle, velocity, params)
    force_max, _ = physics._force(torch.ones_like(activation), angle, velocity, params)
    low, high = force * arm, force_max * arm
    fixed = torch.where(free, 0.0, low).sum(-1)
    reach_low = fixed + torch.where(free, torch.minimum(low, high), 0.0).sum(-1)
    reach_high = fixed + torch.where(free, torch.maximum(low, high), 0.0).sum(-1)
    closest = torch.minimum(torch.maximum(torque, reach_low), reach_high)
    return (torque - closest).cpu().numpy()


def _rms(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(np.sqrt((values**2).mean())) if values.size else math.nan


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def _verdict(residual_ratio, noise_ratio, unreachable_ratio, threshold: float) -> str:
    if not (math.isfinite(residual_ratio) or math.isfinite(unreachable_ratio)):
        return "not assessed"
    if unreachable_ratio > UNREACHABLE_THRESHOLD:
        return "poor"
    if residual_ratio > threshold and noise_ratio > NOISE_THRESHOLD:
        return "poor"
    return "adequate"


def subject_adequacy(
    residual, unreachable, torque, noise, pull_change, measured, threshold=RESIDUAL_THRESHOLD
):
    """One subject's :class:`SubjectAdequacy` of its sequences' arrays.

    ``residual`` (the measured drive's torque residual; NaN rows where nothing was
    measured), ``unreachable`` (:func:`surface_drive_residual`) and ``torque``, N·m,
    ``(n, T)``; ``noise`` (N·m) ``(n,)``; ``pull_change`` (the ``"torque"`` correction's EMG
    minus the network's, or None) and ``measured`` EMG ``(n, T, M)``, NaN where not measured;
    ``threshold``: the ``torque_residual_ratio`` beyond which the verdict is poor.

    Examples
    --------
    >>> import numpy as np
    >>> torque = np.full((2, 10), 10.0)
    >>> a = subject_adequacy(torque * 0.2, torque * 0, torque, np.full(2, 0.2), None,
    ...                      np.full((2, 10, 3), 0.2))
    >>> round(a.torque_residual_ratio, 3), round(a.noise_ratio, 1), a.verdict
    (0.2, 10.0, 'poor')
    """
    torque_rms = _rms(torque)
    residual_rms = _rms(residual)
    trials = tuple(_ratio(_rms(r), _rms(t)) for r, t in zip(residual, torque, strict=True))
    noise_rms = float(np.sqrt((np.asarray(noise) ** 2).mean()))
    ratio = _ratio(residual_rms, torque_rms)
    noise_ratio = _ratio(residual_rms, noise_rms)
    unreachable = _ratio(_rms(unreachable), torque_rms)
    pull = math.nan
    seen = np.isfinite(measured)
    if pull_change is not None and seen.any():
        pull = _ratio(_rms(pull_change[seen]), _rms(np.clip(measured[seen], 0.0, 1.0)))
    verdict = _verdict(ratio, noise_ratio, unreachable, threshold)
    return SubjectAdequacy(ratio, noise_ratio, unreachable, pull, trials, verdict)


@torch.no_grad()
def measured_drive_residual(module, measured, network, angle, velocity, torque, subject):
    """ID torque minus the muscles' torque (N·m), measured EMG driving its muscles.

    A muscle whose column in a sequence is measured throughout is driven by that EMG (clipped
    to [0, 1]), every other by ``network`` (the network's EMG), through the subject's
    activation dynamics: the residual of the fit's ``physics_drive="measured"``.

    Parameters
    ----------
    module : NeuralMusculoskeletalModule
        The fitted module.
    measured : array-like (n_sequences, n_timesteps, n_muscles)
        EMG (MVC units), NaN where not measured.
    network : array-like like ``measured``
        EMG in [0, 1] of the muscles not measured.
    angle, velocity, torque : array-like (n_sequences, n_timesteps)
        Joint angle (rad), velocity (rad/s), ID torque (N·m).
    subject : array-like (n_sequences,) of int
        Each sequence's row of the module's subject parameters (-1: the population's).

    Returns
    -------
    ndarray (n_sequences, n_timesteps)
        N·m; NaN rows for sequences without any measured muscle.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from deepemg.opensim import elbow_model
    >>> from deepemg.nmm_module import NeuralMusculoskeletalModule
    >>> module = NeuralMusculoskeletalModule.nominal(elbow_model())  # untrained, nominal
    >>> emg = np.full((1, 50, 7), 0.1)
    >>> angle, zero, subject = np.full((1, 50), 1.5), np.zeros((1, 50)), np.zeros(1, int)
    >>> torque = module.torque(*(torch.as_tensor(a) for a in (emg, angle, zero, subject)))
    >>> measured = emg.copy()
    >>> measured[..., 2] = np.nan                      # BRA from the "network"
    >>> residual = measured_drive_residual(
    ...     module, measured, emg, angle, zero, torque.detach().numpy() + 2.0, subject)
    >>> round(float(residual.mean()), 6)
    2.0
    """
    measured = np.asarray(measured, dtype=np.float64)
    network = np.asarray(network, dtype=np.float64)
    torque = np.asarray(torque, dtype=np.float64)
    if network.shape != measured.shape or measured.shape[:2] != torque.shape:
        raise ValueError(
            "measured and network must be shaped (n_sequences, n_timesteps, n_muscles) and "
            f"torque (n_sequences, n_timesteps); got {measured.shape}, {network.shape}, "
            f"{torque.shape}."
        )
    seen = np.isfinite(measured).all(axis=1, keepdims=True)
    drive = np.where(seen, np.clip(np.nan_to_num(measured), 0.0, 1.0), network)
    subject, angle, drive, velocity = _module_inputs(module, subject, angle, drive, velocity)
    residual = torque - module.torque(drive, angle, velocity, subject).cpu().numpy()
    residual[~seen.any(axis=(1, 2))] = np.nan
    return residual


def assess_fit(estimator, X, y=None, subject_ids=None, *, threshold=RESIDUAL_THRESHOLD) -> dict:
    """Each subject's :class:`SubjectAdequacy` on ``X``, ``y`` for a fitted NMMRegressor.

    What :meth:`deepemg.NMMRegressor.fit` and ``personalize`` store in ``model_adequacy_``
    (on their own data); callable on other data (held-out trials) too.

    Parameters
    ----------
    estimator : NMMRegressor
        Fitted.
    X : array-like (n_sequences, n_timesteps, n_channels)
        As for ``fit``; the torque channel (or inverse dynamics) is the torque explained.
    y : array-like (n_sequences, n_timesteps, n_muscles), optional
        Measured EMG (MVC units), NaN where not measured; None: nothing measured (every
        muscle free, no ``surface_pull``).
    subject_ids : array-like (n_sequences,), optional
        Each sequence's subject, seen in fit or personalised (None: the population's model,
        reported under the label None).
    threshold : float, default=RESIDUAL_THRESHOLD
        ``torque_residual_ratio`` beyond which (with ``noise_ratio`` > :data:`NOISE_THRESHOLD`)
        the verdict is ``"poor"``; :data:`PERSONALIZED_RESIDUAL_THRESHOLD` for subjects
        personalised on a network fitted on others.

    Returns
    -------
    dict
        Subject label -> :class:`SubjectAdequacy`, in order of first appearance.

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=1, n_trials=2, duration=1.0, random_state=0,
    ...                           cache=False, progress=False)
    >>> model = NMMRegressor(max_epochs=1, window=50, d_model=8, n_heads=2, n_layers=1,
    ...                      random_state=0).fit(data.X, data.y)
    >>> result = assess_fit(model, data.X, data.y, [0, 0])
    >>> sorted(result), result[0].verdict in ("adequate", "poor")
    ([0], True)
    """
    from sklearn.utils.validation import check_is_fitted

    from .validation import check_envelopes, check_subject_ids, prepare_sequences

    check_is_fitted(estimator, "net_")
    sequences = prepare_sequences(
        X, estimator.channels_, estimator.physics_, int(estimator.window), estimator.rate
    )
    n = sequences.X.shape[0]
    shape = (n, sequences.X.shape[1], len(estimator.muscles_))
    measured = np.full(shape, np.nan)
    if y is not None:
        measured = np.asarray(y, dtype=np.float64)
        if measured.shape != shape:
            raise ValueError(
                f"y must be shaped (n_sequences, n_timesteps, n_muscles) = {shape} with one "
                f"column per muscle {estimator.muscles_} (NaN where not measured), got "
                f"{measured.shape}."
            )
        measured = check_envelopes(measured, "y", estimator.muscles_)
    labels = None if subject_ids is None else check_subject_ids(subject_ids, n)
    index = estimator.subject_index(labels, n)
    module = estimator.net_.module_
    inputs = (sequences.angle, sequences.velocity, sequences.torque, index)
    unreachable = surface_drive_residual(module, measured, *inputs)
    noise = torque_noise_level(sequences.torque, float(estimator.rate))
    network = estimator.predict(X, labels, predict_physics="level")
    residual, change = measured_drive_residual(module, measured, network, *inputs), None
    if np.isfinite(measured).any():
        change = estimator.predict(X, labels, predict_physics="torque") - network
    keys = [None] * n if labels is None else labels.tolist()
    out = {}
    for key in dict.fromkeys(keys):
        rows = np.array([k == key for k in keys])
        out[key] = subject_adequacy(
            residual[rows],
            unreachable[rows],
            sequences.torque[rows],
            noise[rows],
            None if change is None else change[rows],
            measured[rows],
            threshold,
        )
    return out


def warn_if_poor(adequacy: dict, threshold: float = RESIDUAL_THRESHOLD) -> list:
    """Warn (:class:`ModelAdequacyWarning`) naming each subject whose verdict is ``"poor"``.

    ``threshold``: the ``torque_residual_ratio`` limit that was applied (quoted). Returns the
    subjects warned about.

    Examples
    --------
    >>> import warnings
    >>> poor = SubjectAdequacy(0.3, 15.0, 0.0, 0.4, (0.3,), "poor")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_if_poor({"s1": poor})
    ['s1']
    >>> caught[0].category.__name__
    'ModelAdequacyWarning'
    """
    poor = [s for s, a in adequacy.items() if a.verdict == "poor"]
    if not poor:
        return []
    details = "; ".join(
        f"{s!r}: torque_residual_ratio {a.torque_residual_ratio:.3g} (limit "
        f"{threshold}, noise_ratio {a.noise_ratio:.3g}), unreachable_ratio "
        f"{a.unreachable_ratio:.3g} (limit {UNREACHABLE_THRESHOLD})"
        for s, a in adequacy.items()
        if a.verdict == "poor"
    )
    warnings.warn(
        f"The fitted muscle model cannot explain the measured surface EMG and the torque "
        f"together for subject(s) {details} (model_adequacy_). Its physics may then make "
        "the deep muscles worse, so by default (predict_physics='auto') their EMG is the "
        "network's alone, as with predict_physics='none'. Check the torque's units and the "
        "EMG's MVC calibration; try a muscle law closer to the subject's "
        "(muscle_law='from_model' for an .osim's own muscles, or "
        "'compliant_tendon_degroote_fregly') or a lower physics_weight (docs/nmm.md, "
        "'Is the physics adequate for my subject?').",
        ModelAdequacyWarning,
        stacklevel=3,
    )
    return poor


def trusts_physics(adequacy: dict, subjects, index) -> np.ndarray:
    """Per sequence: whether ``predict_physics="auto"`` corrects its EMG by the torque.

    The prediction-time correction (:func:`~deepemg.correction.correct_emg`) helps the deep
    muscles where the subject's muscles follow the fitted law and costs them where they do not
    (docs/scenarios.md). ``"auto"`` lets the subject's evidence decide: a fitted or personalised
    subject is corrected unless its verdict is ``"poor"`` (``"adequate"``, ``"not assessed"``
    and a subject without a record are: the physics is trusted until the evidence says
    otherwise); a subject not seen in fit (row -1, the population's parameters) unless more
    than half of the assessed subjects are poor.

    Parameters
    ----------
    adequacy : dict
        ``model_adequacy_``: subject -> :class:`SubjectAdequacy`.
    subjects : sequence
        The fitted subjects, in row order (``subjects_``).
    index : array-like of int, shape (n_sequences,)
        Each sequence's row in ``subjects``; -1 for the population.

    Returns
    -------
    ndarray of bool, shape (n_sequences,)

    Examples
    --------
    >>> good = SubjectAdequacy(0.05, 2.5, 0.0, 0.1, (0.05,), "adequate")
    >>> poor = SubjectAdequacy(0.2, 10.0, 0.0, 0.2, (0.2,), "poor")
    >>> trusts_physics({"S1": good, "S2": poor}, ["S1", "S2", "S3"], [0, 1, 2, -1]).tolist()
    [True, False, True, True]
    >>> trusts_physics({"S1": poor, "S2": poor}, ["S1", "S2"], [-1]).tolist()
    [False]
    """
    labels = list(subjects)
    verdicts = [adequacy[s].verdict if s in adequacy else VERDICTS[2] for s in labels]
    assessed = [v for v in verdicts if v != VERDICTS[2]]
    population = 2 * sum(v == "poor" for v in assessed) <= len(assessed)
    trusted = np.array([v != "poor" for v in verdicts] + [population], dtype=bool)
    return trusted[np.asarray(index, dtype=int).reshape(-1)]


def training_steps(history) -> int:
    """Optimiser steps (training batches) in a skorch ``History``.

    Examples
    --------
    >>> training_steps([{"batches": [{"train_loss": 1.0}, {"train_loss": 0.9}]},
    ...                 {"batches": [{"train_loss": 0.8}, {"valid_loss": 0.7}]}])
    3
    """
    return sum(
        sum(1 for batch in row.get("batches", ()) if "train_loss" in batch) for row in history
    )


def record_adequacy(
    estimator, X, y, subject_ids, *, history, keep: bool = False, personalized: bool = False
):
    """Assess a fit's subjects and keep the result in ``estimator.model_adequacy_``.

    :func:`assess_fit` on the data of a ``fit`` or ``personalize`` whose loss ``history``
    (skorch ``History``) counts its optimiser steps: with fewer than :data:`MIN_STEPS` the
    muscle parameters (and the network) are still near where they started, and a verdict that
    rests on ``torque_residual_ratio`` is ``"not assessed"`` (``unreachable_ratio`` does not
    depend on the network and is judged after any fit). A personalisation (``personalized``)
    is judged with :data:`PERSONALIZED_RESIDUAL_THRESHOLD` after
    :data:`MIN_PERSONALIZE_STEPS`. With ``keep`` (a warm fit) or ``personalized`` the other
    subjects' earlier records are kept, the assessed ones replaced. Then :func:`warn_if_poor`.
    Returns the estimator (the end of its ``fit``).

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=1, n_trials=2, duration=1.0, random_state=0,
    ...                           cache=False, progress=False)
    >>> model = NMMRegressor(max_epochs=1, window=50, d_model=8, n_heads=2, n_layers=1,
    ...                      random_state=0).fit(data.X, data.y)   # calls it
    >>> [(subject, a.verdict) for subject, a in model.model_adequacy_.items()]
    [(0, 'not assessed')]
    """
    threshold = PERSONALIZED_RESIDUAL_THRESHOLD if personalized else RESIDUAL_THRESHOLD
    with torch.random.fork_rng(devices=[]):  # the user's global RNG untouched, as by fit
        fresh = assess_fit(estimator, X, y, subject_ids, threshold=threshold)
    if training_steps(history) < (MIN_PERSONALIZE_STEPS if personalized else MIN_STEPS):
        fresh = {
            s: a if a.unreachable_ratio > UNREACHABLE_THRESHOLD else replace(a, verdict=VERDICTS[2])
            for s, a in fresh.items()
        }
    earlier = getattr(estimator, "model_adequacy_", None) or {}
    estimator.model_adequacy_ = {**(earlier if keep or personalized else {}), **fresh}
    warn_if_poor(fresh, threshold)
    return estimator


def adequacy_rows(adequacy: dict, subjects) -> list[dict]:
    """``model_adequacy_`` as JSON rows, each subject named by its index in ``subjects``.

    Records of subjects not in ``subjects`` (labels changed after fit) are left out.

    What :func:`deepemg.persistence.save_model` writes; :func:`adequacy_from_rows` reads it.

    Examples
    --------
    >>> a = SubjectAdequacy(0.03, 1.5, 0.0, float("nan"), (0.03,), "adequate")
    >>> rows = adequacy_rows({"s2": a}, ["s1", "s2"])
    >>> rows[0]["subject"], rows[0]["surface_pull"]
    (1, None)
    >>> adequacy_from_rows(rows, ["s1", "s2"])["s2"].verdict
    'adequate'
    """
    labels = list(subjects)
    return [{"subject": labels.index(s), **a.to_dict()} for s, a in adequacy.items() if s in labels]


def adequacy_from_rows(rows, subjects) -> dict:
    """The ``model_adequacy_`` of :func:`adequacy_rows`' rows, or a ``ValueError``."""
    labels = list(subjects)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError("the model adequacy entry must be a list of records.")
    out = {}
    for row in rows:
        index = row.get("subject")
        if not (isinstance(index, int) and not isinstance(index, bool)) or not (
            0 <= index < len(labels)
        ):
            raise ValueError(f"a model adequacy record names no fitted subject ({index!r}).")
        out[labels[index]] = SubjectAdequacy.from_dict(row)
    return out


def adequacy_table(adequacy: dict) -> list[dict]:
    """``model_adequacy_`` as table rows: subject, the four numbers (rounded), verdict.

    The rows the benchmark report writes (``model_adequacy.csv``, :mod:`deepemg.report`).

    Examples
    --------
    >>> a = SubjectAdequacy(0.0312, 1.56, 0.0, 0.0912, (0.03, 0.032), "adequate")
    >>> adequacy_table({"S01": a})
    [{'subject': 'S01', 'torque_residual_ratio': 0.0312, 'noise_ratio': 1.56, \
'unreachable_ratio': 0.0, 'surface_pull': 0.0912, 'verdict': 'adequate'}]
    """
    return [
        {
            "subject": subject,
            **{key: round(float(getattr(a, key)), 4) for key in _NUMBERS},
            "verdict": a.verdict,
        }
        for subject, a in adequacy.items()
    ]
