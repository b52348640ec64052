"""``make_elbow_lifting``: simulated subjects lifting loads, with known deep-muscle EMG."""

from __future__ import annotations

import hashlib
import os
import time as _time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import butter, sosfiltfilt
from sklearn.utils import Bunch, check_random_state
from tqdm.auto import tqdm

from .. import opensim as bridge
from ..channels import ELBOW_CHANNELS, ELBOW_DEEP_MUSCLES
from ._cache import cache_key, get_data_home, load_cached, save_bunch
from .subjects import (
    COMPLIANT_MUSCLE_MODELS,
    SimulatedSubject,
    build_subject_model,
    draw_subject,
)
from .trajectories import minimum_jerk_trial

__all__ = ["excitation_from_activation", "make_elbow_lifting"]

RandomStateLike = int | np.random.RandomState | np.random.Generator | None
"""What a ``random_state`` argument may be: a seed, a generator, or None (fresh entropy)."""

_Trial = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""One trial's time (s), angle (rad), velocity (rad/s) and acceleration (rad/s²)."""

_Plan = tuple[list[_Trial], list[float], int]
"""One subject's trials, their loads (kg) and the seed of its noise."""

GENERATOR_VERSION = 1
"""Bumped whenever the generator's output changes, so old caches are not reused."""

_CACHED_KEYS = (
    "X",
    "y",
    "y_true",
    "activation",
    "groups",
    "channels",
    "muscles",
    "deep_muscles",
    "surface_muscles",
    "true_params",
    "rate",
    "time",
    "loads",
    "solver",
    "simulation_seconds",
    "DESCR",
)
"""Every key of a data set: a cache file lacking one is simulated again."""

ACTIVATION_TIME_CONSTANT = 0.015  # s, OpenSim DeGrooteFregly2016Muscle default
DEACTIVATION_TIME_CONSTANT = 0.060  # s


def excitation_from_activation(
    activation: np.ndarray,
    rate: float,
    activation_time_constant: float = ACTIVATION_TIME_CONSTANT,
    deactivation_time_constant: float = DEACTIVATION_TIME_CONSTANT,
) -> np.ndarray:
    """Excitation that drives first-order activation dynamics along ``activation``.

    Inverts ``da/dt = (e - a) / tau(a)`` with ``tau = tau_act (0.5 + 1.5 a)`` while activating
    and ``tau_deact / (0.5 + 1.5 a)`` while deactivating (by default OpenSim's
    DeGrooteFregly2016Muscle time constants 15 and 60 ms, without its tanh smoothing). Time is
    axis 0.
    """
    slope = np.gradient(activation, 1.0 / rate, axis=0)
    tau = np.where(
        slope >= 0,
        activation_time_constant * (0.5 + 1.5 * activation),
        deactivation_time_constant / (0.5 + 1.5 * activation),
    )
    return np.clip(activation + tau * slope, 0.0, 1.0)


def _top_angle(load: float) -> float:
    """Highest flexion (deg) of a trial holding ``load`` kg.

    The elbow's flexors lose force-length capacity at high flexion (isometric capacity of the
    generic model: 29 N m at 120 deg, 12 N m at 130 deg), so heavier loads are lifted less high.
    """
    return max(120.0 - 4.0 * load, 80.0)


def _smooth_noise(
    rng: np.random.Generator, shape: tuple[int, ...], rate: float, cutoff: float = 5.0
) -> np.ndarray:
    """Unit-variance Gaussian noise low-passed at ``cutoff`` Hz along axis 0."""
    sos = butter(2, cutoff, fs=rate, output="sos")
    noise = sosfiltfilt(sos, rng.standard_normal(shape), axis=0)
    return noise / noise.std(axis=0, keepdims=True)


_SIMULATED = (
    "angle",
    "velocity",
    "acceleration",
    "torque",
    "activation",
    "excitation",
    "envelope",
    "measured",
    "residual",
)
"""What :func:`_simulate_subject` returns per frame of every trial, in this order."""


def _simulate_subject(
    subject: SimulatedSubject,
    trials: Sequence[_Trial],
    loads: Sequence[float],
    rate: float,
    solver: str,
    noise: tuple[float, float],
    seed: int,
    *,
    emg_ceiling: float = 1.0,
) -> dict[str, np.ndarray]:
    """Kinematics, torque, activations and envelopes of one subject's trials.

    A :class:`~deepemg.datasets.subjects.ScenarioSubject` brings its muscle model (compliant
    tendons, Thelen's or DeGroote-Fregly's, are solved by ``compliant_static_optimization``),
    activation time constants and EMG gains; measured EMG is clipped to ``[0, emg_ceiling]``.
    """
    rng = np.random.default_rng(seed)
    model = build_subject_model(subject)
    muscles = subject.muscles
    compliant = getattr(subject, "muscle_model", "degroote_rigid") in COMPLIANT_MUSCLE_MODELS
    if compliant and solver != "static_optimization":
        raise ValueError("compliant-tendon subjects are solved by static optimisation only.")
    time_constants = (
        getattr(subject, "activation_time_constant", ACTIVATION_TIME_CONSTANT),
        getattr(subject, "deactivation_time_constant", DEACTIVATION_TIME_CONSTANT),
    )
    gain = getattr(subject, "emg_gain", None)
    gain = None if gain is None or np.size(gain) == 0 else np.asarray(gain, dtype=float)
    pose = bridge.ModelPose(model, "r_elbow_flex")
    out: dict[str, list[np.ndarray]] = {k: [] for k in _SIMULATED}
    for (t, q, qd, qdd), load in zip(trials, loads, strict=True):
        bridge.set_load_mass(model, load)
        pose.reinitialize()
        torque = bridge.inverse_dynamics(pose, q, qd, qdd)
        floor = subject.cocontraction_floor + subject.cocontraction_per_kg * load
        if solver == "moco":
            from ..opensim.moco import moco_inverse

            activation, excitation = moco_inverse(pose, t, q, min_activation=floor)
            residual = np.zeros_like(torque)
        else:
            optimize = (
                bridge.compliant_static_optimization if compliant else bridge.static_optimization
            )
            activation, residual = optimize(
                pose,
                muscles,
                q,
                qd,
                torque,
                exponent=subject.effort_exponent,
                weights=subject.effort_weights,
                min_activation=floor,
            )
            excitation = excitation_from_activation(activation, rate, *time_constants)
        # the EMG envelope leads the activation by the electromechanical delay
        envelope = np.stack(
            [
                np.interp(t + subject.electromechanical_delay, t, excitation[:, j])
                for j in range(len(muscles))
            ],
            axis=1,
        )
        multiplicative, additive = noise
        measured = envelope * (1.0 + multiplicative * _smooth_noise(rng, envelope.shape, rate))
        measured = measured + additive * _smooth_noise(rng, envelope.shape, rate)
        if gain is not None:
            measured = measured * gain  # the sensor's gain error: noise and all
        measured = np.clip(measured, 0, emg_ceiling)
        values = (q, qd, qdd, torque, activation, excitation, envelope, measured, residual)
        for key, value in zip(_SIMULATED, values, strict=True):
            out[key].append(value)
    return {k: np.stack(v) for k, v in out.items()}


DESCR = """Simulated elbow lifting (deepemg.datasets.make_elbow_lifting)
=============================================================

Subjects: the 7-muscle OpenSim elbow (BIClong, BICshort, BRA, BRD, TRIlong, TRIlat, TRImed)
with per-subject forearm mass and inertia (x0.85-1.15), maximum isometric force (log-normal,
SD 0.2, within x0.6-1.6), optimal fibre length (x0.92-1.08) and tendon slack length
(x0.97-1.03), and a neural strategy: effort sum w_j a_j^p with p in [2, 3] and log-normal
weights w_j (SD 0.3), plus a co-contraction floor of every muscle that rises with the load.
Everything drawn is in ``true_params``.

Trials: minimum-jerk flexion-extension within 0-120 deg (at most 120 - 4 x load deg, as the
flexors weaken at high flexion), periods 1.5-4 s, holds up to 0.8 s,
holding a known load (kg); angle, velocity and acceleration are exact.

Muscles: torque by OpenSim inverse dynamics of the subject's model; activations by a per-frame,
passive-aware static optimisation with OpenSim's own muscles (or MocoInverse); excitations by
inverting first-order activation dynamics (15/60 ms); EMG envelopes lead the excitation by the
subject's electromechanical delay (20-60 ms) and are normalised to the maximal excitation
(1 = maximal voluntary contraction). Measured channels carry smooth multiplicative and additive
noise (5 Hz). Deep muscles (BRA, TRImed) are NaN in ``y``; ``y_true`` holds every muscle without
noise.

Arrays: X (n_sequences, n_timesteps, 10) with channels elbow_angle (rad), elbow_velocity
(rad/s), elbow_acceleration (rad/s^2), load_mass (kg), elbow_torque (N m), emg_BIClong,
emg_BICshort, emg_BRD, emg_TRIlong, emg_TRIlat; y and y_true (n_sequences, n_timesteps, 7);
groups (subject label per sequence); activation (the solved activations).
"""


def make_elbow_lifting(
    n_subjects: int = 5,
    n_trials: int = 12,
    duration: float = 5.0,
    rate: float = 100.0,
    loads: Sequence[float] = (0, 1, 2, 3, 4, 5, 6),
    solver: str = "static_optimization",
    noise: tuple[float, float] = (0.05, 0.01),
    random_state: RandomStateLike = None,
    cache: bool = True,
    progress: bool = True,
    data_home: str | os.PathLike | None = None,
) -> Bunch:
    """Simulated subjects lifting loads with elbow flexion-extension, deep-muscle truth known.

    Parameters
    ----------
    n_subjects : int, default=5
        Number of subjects.
    n_trials : int, default=12
        Trials per subject; loads are dealt so that every load appears before any repeats.
    duration : float, default=5.0
        Trial length (s).
    rate : float, default=100.0
        Sampling rate (Hz).
    loads : sequence of float, default=(0, 1, 2, 3, 4, 5, 6)
        Loads (kg) to deal over the trials.
    solver : {"static_optimization", "moco"}, default="static_optimization"
        How activations are found: a per-frame passive-aware static optimisation with OpenSim's
        muscles (fast), or OpenSim Moco's MocoInverse (4-5 s a trial).
    noise : (float, float), default=(0.05, 0.01)
        Standard deviations of the multiplicative and additive EMG noise.
    random_state : int, RandomState instance or None, default=None
        Seed. With None the data differ on every call and are not cached.
    cache : bool, default=True
        Keep the result in ``data_home`` keyed by every argument; a second call loads it.
        The cache is a ``.npz`` file read without pickle (it cannot run code); it is written
        whole or not at all. A cache file that cannot be read (truncated, damaged, not a
        deepemg data set) is simulated again, with a warning naming it; a folder that cannot
        be written gives one warning and the data are returned uncached.
    progress : bool, default=True
        Show a progress bar (stderr).
    data_home : str or path, optional
        Cache folder; default ``$DEEPEMG_DATA`` or ``~/.cache/deepemg``.

    Returns
    -------
    sklearn.utils.Bunch
        ``X``, ``y`` (deep channels NaN), ``y_true``, ``activation``, ``groups``, ``channels``,
        ``muscles``, ``deep_muscles``, ``surface_muscles``, ``true_params`` (one dict per
        subject), ``rate``, ``time``, ``loads`` (per sequence) and ``DESCR``.

    Examples
    --------
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=1, n_trials=2, duration=1.0, random_state=0,
    ...                           cache=False, progress=False)
    >>> data.X.shape, data.y.shape, data.deep_muscles
    ((2, 100, 10), (2, 100, 7), ['BRA', 'TRImed'])
    """
    loads, noise = _checked_arguments(n_subjects, n_trials, duration, rate, loads, solver, noise)
    plan = _Lifting(
        int(n_subjects), int(n_trials), float(duration), float(rate), loads, solver, noise
    )
    path = None
    if cache and isinstance(random_state, (int, np.integer)):
        path = _lifting_cache_path(plan, int(random_state), data_home)
        cached = load_cached(path, required=_CACHED_KEYS)
        if cached is not None:
            return cached
    data, cat = _generate(plan, random_state, progress)
    worst = float(np.abs(cat["residual"]).max())
    if worst > 1e-3:
        warnings.warn(
            f"The muscles could not balance the torque everywhere (largest residual "
            f"{worst:.3g} N m); those frames have saturated activations.",
            stacklevel=2,
        )
    if path is not None:
        save_bunch(path, data)  # whole or not at all; an unwritable folder warns, no more
    return data


def _check_sizes(n_subjects: int, n_trials: int, duration: float, rate: float) -> None:
    """A ValueError unless there is a subject, a trial and 10 samples a trial."""
    if int(n_subjects) < 1 or int(n_trials) < 1:
        raise ValueError("n_subjects and n_trials must be >= 1.")
    if duration * rate < 10:
        raise ValueError(f"duration x rate must give at least 10 samples, got {duration * rate}.")


def _checked_arguments(
    n_subjects: int,
    n_trials: int,
    duration: float,
    rate: float,
    loads: Sequence[float],
    solver: str,
    noise: tuple[float, float],
) -> tuple[tuple[float, ...], tuple[float, float]]:
    """``make_elbow_lifting``'s arguments checked; the loads and the noise as tuples of float."""
    if solver not in ("static_optimization", "moco"):
        raise ValueError(f"solver must be 'static_optimization' or 'moco', got {solver!r}.")
    _check_sizes(n_subjects, n_trials, duration, rate)
    loads = tuple(float(m) for m in loads)
    if not loads or any(m < 0 or not np.isfinite(m) for m in loads):
        raise ValueError(f"loads must be a non-empty sequence of masses >= 0 kg, got {loads}.")
    multiplicative, additive = (float(v) for v in noise)
    return loads, (multiplicative, additive)


def _elbow_cache_path(name: str, data_home: str | os.PathLike | None, **arguments: Any) -> Path:
    """Where a data set simulated on the built-in elbow is cached, keyed by the model file too."""
    model_hash = hashlib.sha256(bridge.ELBOW_MODEL_PATH.read_bytes()).hexdigest()[:12]
    return get_data_home(data_home) / cache_key(name, model=model_hash, **arguments)


@dataclass(frozen=True)
class _Lifting:
    """``make_elbow_lifting``'s checked arguments: what the data set is (its cache key too)."""

    n_subjects: int
    n_trials: int
    duration: float
    rate: float
    loads: tuple[float, ...]
    solver: str
    noise: tuple[float, float]


def _lifting_cache_path(
    plan: _Lifting, random_state: int, data_home: str | os.PathLike | None
) -> Path:
    """Where ``make_elbow_lifting`` caches the data set of ``plan`` and ``random_state``."""
    return _elbow_cache_path(
        "elbow_lifting",
        data_home,
        version=GENERATOR_VERSION,
        **asdict(plan),
        random_state=random_state,
    )


def _generator(random_state: RandomStateLike) -> np.random.Generator:
    """The random generator of ``random_state`` (int, None, Generator or RandomState)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.default_rng(random_state)
    return np.random.default_rng(check_random_state(random_state).randint(2**31))


def _simulate_all(
    subjects: Sequence[SimulatedSubject],
    plans: Sequence[_Plan],
    rate: float,
    solver: str,
    noise: tuple[float, float],
    progress: bool,
    emg_ceiling: float = 1.0,
) -> tuple[dict[str, np.ndarray], float]:
    """Simulate every subject (progress bar over subjects); concatenated results, seconds."""
    start = _time.perf_counter()
    results = []
    bar = tqdm(
        total=len(subjects), desc="simulating subjects", unit="subject", disable=not progress
    )
    for subject, (trials, trial_loads, seed) in zip(subjects, plans, strict=True):
        results.append(
            _simulate_subject(
                subject, trials, trial_loads, rate, solver, noise, seed, emg_ceiling=emg_ceiling
            )
        )
        bar.update()
    bar.close()
    elapsed = _time.perf_counter() - start
    return {k: np.concatenate([r[k] for r in results]) for k in results[0]}, elapsed


def _generate(
    plan: _Lifting, random_state: RandomStateLike, progress: bool
) -> tuple[Bunch, dict[str, np.ndarray]]:
    """``make_elbow_lifting``'s data (uncached) and the concatenated simulation results."""
    n_subjects, n_trials, duration, rate = plan.n_subjects, plan.n_trials, plan.duration, plan.rate
    loads, solver, noise = plan.loads, plan.solver, plan.noise
    rng = _generator(random_state)
    generic = bridge.load_model(bridge.ELBOW_MODEL_PATH)
    subjects, plans = [], []
    for s in range(int(n_subjects)):
        subject = draw_subject(rng, f"S{s + 1:02d}", generic)
        order = np.concatenate([rng.permutation(loads) for _ in range(-(-n_trials // len(loads)))])
        trial_loads = [float(m) for m in order[:n_trials]]
        trials = [
            minimum_jerk_trial(rng, duration, rate, (0.0, _top_angle(m))) for m in trial_loads
        ]
        subjects.append(subject)
        plans.append((trials, trial_loads, int(rng.integers(2**31))))
    cat, elapsed = _simulate_all(subjects, plans, rate, solver, noise, progress)
    sequence_loads = np.concatenate([p[1] for p in plans])
    data = _assemble(subjects, sequence_loads, cat, n_trials, rate, solver, elapsed, DESCR)
    return data, cat


def _assemble(
    subjects: Sequence[SimulatedSubject],
    sequence_loads: np.ndarray,
    cat: dict[str, np.ndarray],
    n_trials: int,
    rate: float,
    solver: str,
    elapsed: float,
    descr: str,
) -> Bunch:
    """The data set's Bunch from the subjects' concatenated simulation results ``cat``."""
    muscles = list(subjects[0].muscles)
    deep = [m for m in muscles if m in ELBOW_DEEP_MUSCLES]
    surface = [m for m in muscles if m not in deep]
    n_steps = cat["angle"].shape[1]
    X = np.concatenate(
        [
            np.stack(
                [
                    cat["angle"],
                    cat["velocity"],
                    cat["acceleration"],
                    np.repeat(sequence_loads[:, None], n_steps, axis=1),
                    cat["torque"],
                ],
                axis=-1,
            ),
            cat["measured"][..., [muscles.index(m) for m in surface]],
        ],
        axis=-1,
    )
    y = cat["measured"].copy()
    y[..., [muscles.index(m) for m in deep]] = np.nan
    data = Bunch(
        X=X,
        y=y,
        y_true=cat["envelope"],
        activation=cat["activation"],
        groups=np.repeat([s.name for s in subjects], int(n_trials)),
        channels=list(ELBOW_CHANNELS),
        muscles=muscles,
        deep_muscles=deep,
        surface_muscles=surface,
        true_params=[s.as_dict() for s in subjects],
        rate=float(rate),
        time=np.arange(n_steps) / rate,
        loads=sequence_loads,
        solver=solver,
        simulation_seconds=elapsed,
        DESCR=descr,
    )
    return data
