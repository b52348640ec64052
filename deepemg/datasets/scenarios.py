"""``make_scenario``: simulated subjects that are *not* simulated as the estimators model them.

``make_elbow_lifting`` simulates its truth with deepemg's own muscle law (rigid-tendon
DeGrooteFregly2016, the torch model the estimators fit), minimum-jerk motions, loads of 0-6 kg
and one family of neural strategies. Each scenario here changes some of that, so that an
estimator can be judged off its own simulator: compliant Thelen2003 tendons, muscles whose
curve shapes and tendon compliance are the subject's own, other motions, loads beyond those of
the training trials, other effort criteria, co-contraction, activation dynamics, delays and EMG
gain errors. See ``docs/scenarios.md``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils import Bunch
from tqdm.auto import tqdm

from .. import opensim as bridge
from ..channels import ELBOW_DEEP_MUSCLES
from ._cache import load_cached, save_bunch
from .lifting import (
    _CACHED_KEYS,
    DESCR,
    GENERATOR_VERSION,
    RandomStateLike,
    _assemble,
    _check_sizes,
    _elbow_cache_path,
    _generator,
    _simulate_all,
    _top_angle,
    make_elbow_lifting,
)
from .subjects import (
    MUSCLE_CURVE_RANGES,
    MUSCLE_MODELS,
    ScenarioSubject,
    SimulatedSubject,
    build_subject_model,
    draw_muscle_curves,
    draw_subject,
)
from .trajectories import MOTIONS, minimum_jerk_trial, motion_trial

__all__ = ["SCENARIOS", "Scenario", "make_scenario"]

SCENARIO_GENERATOR_VERSION = 1
"""Bumped whenever a scenario's output changes for the same definition (cache key)."""

SCENARIO_KEYS = (
    *_CACHED_KEYS,
    "scenario",
    "beyond_training",
    "train_loads",
    "motion",
    "truth_residual",
    "torque_residual",
    "saturated",
)
"""Every key of a scenario data set."""

EMG_CEILING = 1.5
"""Measured EMG of the harder scenarios is clipped to [0, 1.5] (MVC-normalised EMG above 1 is
legitimate); the default data set keeps make_elbow_lifting's [0, 1]."""

BALLISTIC_TORQUE_BUDGET = 12.0
"""N·m: a ballistic move is slowed until its peak inertial torque stays below this (with 20 N·m,
heavy loads lifted from near full extension, where the flexors are weakest, needed more torque
than the muscles have in 0.3 % of the frames)."""

_FOREARM_INERTIA = 0.0705  # kg m², generic forearm+hand about the elbow (fit_joint_dynamics)
_LOAD_INERTIA = 0.0899  # kg m² per kg of load at the hand


@dataclass(frozen=True)
class Scenario:
    """How a scenario's subjects are simulated.

    Ranges ``(low, high)`` are drawn uniformly per subject.

    Attributes
    ----------
    name, description : str
    muscle : {"degroote_rigid", "thelen_compliant", "degroote_compliant_personal"}
        The truth's muscles: deepemg's own law, OpenSim's compliant-tendon Thelen2003Muscle
        (same F0, l_opt, tendon slack length, pennation and path) at fibre equilibrium, or
        compliant-tendon DeGrooteFregly2016 at fibre equilibrium with curve shapes and tendon
        compliance drawn per subject and muscle
        (:data:`~deepemg.datasets.subjects.MUSCLE_CURVE_RANGES`).
    motions : tuple of str
        Motion kinds (:data:`deepemg.datasets.trajectories.MOTIONS`), dealt round-robin over a
        subject's trials after shuffling the tuple (repeat a kind to weight it).
    train_loads : tuple of float
        Loads (kg) of the training trials (the first ``round(2/3 n_trials)`` of each subject).
    beyond_loads : tuple of float
        Loads heavier than every training load, carried by about half of the test trials
        (rounded up); empty: test trials use ``train_loads`` too.
    effort_exponent : (float, float)
        Exponent ``p`` of the effort ``sum w_j a_j^p``.
    volume_weighted : bool
        Effort weights proportional to muscle volume ``F0 l_opt`` (times the log-normal scatter).
    cocontraction_floor, cocontraction_per_kg : (float, float)
        Activation floor of every muscle: ``floor + per_kg * load``.
    activation_time_constant, deactivation_time_constant : (float, float)
        Activation dynamics (s), used to turn activations into excitations.
    electromechanical_delay : (float, float)
        Lead (s) of the EMG envelope over the activation.
    emg_gain_sd : float
        SD of the log-normal per-subject, per-surface-channel gain of the measured EMG.
    noise : (float, float)
        Multiplicative and additive EMG noise (smooth, 5 Hz).
    """

    name: str
    description: str
    muscle: str = "degroote_rigid"
    motions: tuple[str, ...] = ("minimum_jerk",)
    train_loads: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    beyond_loads: tuple[float, ...] = ()
    effort_exponent: tuple[float, float] = (2.0, 3.0)
    volume_weighted: bool = False
    cocontraction_floor: tuple[float, float] = (0.005, 0.03)
    cocontraction_per_kg: tuple[float, float] = (0.002, 0.008)
    activation_time_constant: tuple[float, float] = (0.015, 0.015)
    deactivation_time_constant: tuple[float, float] = (0.060, 0.060)
    electromechanical_delay: tuple[float, float] = (0.02, 0.06)
    emg_gain_sd: float = 0.0
    noise: tuple[float, float] = (0.05, 0.01)

    def __post_init__(self) -> None:
        if self.muscle not in MUSCLE_MODELS:
            raise ValueError(f"muscle must be one of {MUSCLE_MODELS}, got {self.muscle!r}.")
        unknown = sorted(set(self.motions) - set(MOTIONS))
        if not self.motions or unknown:
            raise ValueError(f"motions must be kinds among {sorted(MOTIONS)}, got {self.motions}.")
        if not self.train_loads:
            raise ValueError("train_loads must not be empty.")
        if self.beyond_loads and min(self.beyond_loads) <= max(self.train_loads):
            raise ValueError("beyond_loads must all be heavier than every training load.")


_HEAVY: dict[str, Any] = dict(train_loads=(0.0, 1.0, 2.0, 3.0, 4.0), beyond_loads=(5.0, 6.0, 7.0))
_STRATEGIES: dict[str, Any] = dict(
    effort_exponent=(2.0, 3.0),
    volume_weighted=True,
    cocontraction_floor=(0.02, 0.08),
    cocontraction_per_kg=(0.005, 0.015),
    activation_time_constant=(0.010, 0.025),
    deactivation_time_constant=(0.040, 0.090),
    electromechanical_delay=(0.010, 0.100),
    emg_gain_sd=0.25,
    noise=(0.10, 0.02),
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "default",
            "make_elbow_lifting's data, unchanged: deepemg's own rigid-tendon muscles, "
            "minimum-jerk motions, loads 0-6 kg, effort-minimising static optimisation.",
        ),
        Scenario(
            "compliant_tendons",
            "The truth's muscles are OpenSim Thelen2003Muscle with compliant tendons (forces at "
            "fibre equilibrium), not the rigid DeGroote-Fregly law the estimators fit; "
            "co-contraction floor from 0.01 (Thelen's lowest activation).",
            muscle="thelen_compliant",
            cocontraction_floor=(0.01, 0.03),
        ),
        Scenario(
            "motions",
            "Kinematics other than minimum-jerk: band-limited random, half-cosine moves with "
            "holds, fast ballistic flexions and extensions braked by the triceps.",
            motions=("random", "sinusoid_holds", "ballistic"),
        ),
        Scenario(
            "heavy_loads",
            "Training trials carry 0-4 kg; half of the test trials carry 5-7 kg, heavier than "
            "any training load (extrapolation in load).",
            **_HEAVY,
        ),
        Scenario(
            "strategies",
            "Other neural strategies and sensors: volume-weighted effort, more co-contraction "
            "(0.02-0.08 + 0.005-0.015 per kg), activation time constants 10-25/40-90 ms, "
            "electromechanical delays 10-100 ms, EMG gain errors (log-normal SD 0.25) and "
            "twice the noise.",
            **_STRATEGIES,
        ),
        Scenario(
            "off_simulator",
            "The hardest set: compliant Thelen tendons, random and half-cosine motions, heavy "
            "loads (train 0-4 kg, test up to 7 kg) and the 'strategies' settings.",
            muscle="thelen_compliant",
            motions=("random", "sinusoid_holds"),
            **_HEAVY,
            **_STRATEGIES,
        ),
        Scenario(
            "ballistic",
            "deepemg's own muscles with ballistic motions (2:1 with minimum-jerk), the "
            "'strategies' settings and heavy loads (train 0-4 kg, test up to 7 kg).",
            motions=("ballistic", "ballistic", "minimum_jerk"),
            **_HEAVY,
            **_STRATEGIES,
        ),
        Scenario(
            "personal_curves",
            "Each subject's muscles have their own curve shapes and tendon compliance: OpenSim "
            "DeGrooteFregly2016Muscle with a compliant tendon (forces at fibre equilibrium), "
            "active force-length width x1.0-1.4, passive fibre strain at F0 0.45-0.75, maximum "
            "contraction velocity 6-14 l_opt/s and tendon strain at F0 0.033-0.06, drawn "
            "uniformly per subject and muscle; everything else as 'default'.",
            muscle="degroote_compliant_personal",
        ),
    )
}
"""The scenarios by name."""


def _deal(rng: np.random.Generator, loads: tuple[float, ...], n: int) -> list[float]:
    """``n`` loads dealt so that every load appears before any repeats."""
    if n <= 0:
        return []
    order = np.concatenate([rng.permutation(loads) for _ in range(-(-n // len(loads)))])
    return [float(m) for m in order[:n]]


def _trial_loads(rng: np.random.Generator, scenario: Scenario, n_trials: int) -> list[float]:
    """Training loads first (``round(2/3 n)``), then the test trials' loads, shuffled."""
    n_train = round(2 * n_trials / 3)
    n_test = n_trials - n_train
    n_beyond = -(-n_test // 2) if scenario.beyond_loads else 0
    train = _deal(rng, scenario.train_loads, n_train)
    test = _deal(rng, scenario.train_loads, n_test - n_beyond)
    test = test + _deal(rng, scenario.beyond_loads, n_beyond)
    return train + [float(m) for m in rng.permutation(np.array(test, dtype=float))]


def _trial(
    kind: str, rng: np.random.Generator, duration: float, rate: float, load: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One trial of motion ``kind`` holding ``load`` kg, within [5 deg, the load's top angle]."""
    top = _top_angle(load)
    if kind == "minimum_jerk":
        return minimum_jerk_trial(rng, duration, rate, (0.0, top))  # starts 5 deg above 0
    options: dict[str, float] = {}
    if kind == "ballistic":
        inertia = _FOREARM_INERTIA + _LOAD_INERTIA * load
        options["max_acceleration"] = BALLISTIC_TORQUE_BUDGET / inertia
    return motion_trial(kind, rng, duration, rate, (5.0, top), **options)


def _draw_subject(
    rng: np.random.Generator, name: str, generic: Any, scenario: Scenario
) -> ScenarioSubject:
    """A subject of ``scenario``: anatomy as make_elbow_lifting's, strategy from its ranges."""
    base = draw_subject(
        rng,
        name,
        generic,
        effort_exponent=scenario.effort_exponent,
        volume_weighted=scenario.volume_weighted,
        cocontraction_floor=scenario.cocontraction_floor,
        cocontraction_per_kg=scenario.cocontraction_per_kg,
        electromechanical_delay=scenario.electromechanical_delay,
    )
    tau_act = float(rng.uniform(*scenario.activation_time_constant))
    tau_deact = float(rng.uniform(*scenario.deactivation_time_constant))
    gain = np.exp(rng.normal(0.0, scenario.emg_gain_sd, len(base.muscles)))
    gain[[base.muscles.index(m) for m in ELBOW_DEEP_MUSCLES if m in base.muscles]] = 1.0
    # drawn last, so that the other scenarios' draws are those they always were
    curves: dict[str, Any] = (
        draw_muscle_curves(rng, len(base.muscles))
        if scenario.muscle == "degroote_compliant_personal"
        else {}
    )
    return ScenarioSubject(
        **{k: getattr(base, k) for k in base.__dataclass_fields__},
        muscle_model=scenario.muscle,
        activation_time_constant=tau_act,
        deactivation_time_constant=tau_deact,
        emg_gain=gain,
        **curves,
    )


def _torque_residual(data: Bunch, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """OpenSim muscle torque at the truth activations minus OpenSim inverse dynamics (N·m).

    Each subject's OpenSim model is rebuilt from ``true_params``; at every frame the muscles'
    equilibrium tendon forces at the truth activations (``equilibrateMuscles``; for rigid
    tendons the plain forces) times OpenSim's moment arms are summed and compared with X's
    torque channel (OpenSim inverse dynamics). Returns the residual (n_sequences, n_steps) and
    the frames where some muscle is fully active (saturated).
    """
    muscles = list(data.muscles)
    residual = np.empty(data.X.shape[:2])
    for params in tqdm(
        data.true_params,
        desc="checking the truth with OpenSim",
        unit="subject",
        disable=not progress,
    ):
        kind = ScenarioSubject if "muscle_model" in params else SimulatedSubject
        subject = kind(**params)
        model = build_subject_model(subject)
        for i in np.flatnonzero(np.asarray(data.groups) == subject.name):
            bridge.set_load_mass(model, float(data.loads[i]))
            pose = bridge.ModelPose(model, "r_elbow_flex")
            angle, velocity = data.X[i, :, 0], data.X[i, :, 1]
            forces = bridge.equilibrium_tendon_forces(
                pose, muscles, data.activation[i], angle, velocity
            )
            _, arms = bridge.sample_path_geometry(pose, muscles, angle)
            residual[i] = (arms * forces).sum(axis=1) - data.X[i, :, 4]
    saturated = data.activation.max(axis=-1) >= 1.0 - 1e-6
    return residual, saturated


def _describe(scenario: Scenario) -> str:
    """DESCR of a scenario: what it changes, its settings, then make_elbow_lifting's DESCR."""
    title = f"Scenario '{scenario.name}' (deepemg.datasets.make_scenario)"
    lines = [title, "=" * len(title), "", scenario.description, "", "Settings:"]
    for key, value in asdict(scenario).items():
        if key not in ("name", "description"):
            lines.append(f"  {key}: {value}")
    muscle = {
        "degroote_rigid": "rigid-tendon DeGrooteFregly2016 (deepemg's own law)",
        "thelen_compliant": "OpenSim Thelen2003Muscle, compliant tendon, forces at fibre "
        "equilibrium (equilibrateMuscles), solved by compliant_static_optimization",
        "degroote_compliant_personal": "OpenSim DeGrooteFregly2016Muscle, compliant tendon, "
        "forces at fibre equilibrium (equilibrateMuscles), solved by "
        "compliant_static_optimization; per subject and muscle (uniform, in true_params): "
        + ", ".join(f"{k} {lo:g}-{hi:g}" for k, (lo, hi) in MUSCLE_CURVE_RANGES.items()),
    }[scenario.muscle]
    lines += [
        f"Truth muscles: {muscle}.",
        "Sequences: per subject, the first round(2/3 n_trials) are training trials (train_loads "
        "only); the rest are test trials, about half of them (rounded up) with beyond_loads when "
        "there are any. beyond_training marks sequences heavier than every training load.",
        f"Measured EMG (X's emg_* and y) carries noise and gain errors, clipped to "
        f"[0, {EMG_CEILING}]; y_true is the noise-free envelope.",
        "",
        "Everything else as in make_elbow_lifting:",
        "",
    ]
    return "\n".join(lines) + DESCR


def make_scenario(
    name: str = "default",
    n_subjects: int = 5,
    n_trials: int = 12,
    duration: float = 5.0,
    rate: float = 100.0,
    random_state: RandomStateLike = None,
    cache: bool = True,
    progress: bool = True,
    data_home: str | os.PathLike | None = None,
) -> Bunch:
    """Simulated elbow lifting under one of :data:`SCENARIOS`, deep-muscle truth known.

    Parameters
    ----------
    name : str, default="default"
        A key of :data:`SCENARIOS`: ``default`` (``make_elbow_lifting``'s data),
        ``compliant_tendons``, ``motions``, ``heavy_loads``, ``strategies``, ``off_simulator``,
        ``ballistic``, ``personal_curves``.
    n_subjects, n_trials, duration, rate, random_state, cache, progress, data_home
        As :func:`~deepemg.datasets.make_elbow_lifting`. Scenarios are cached (``.npz``)
        under a key that holds the scenario's whole definition.

    Returns
    -------
    sklearn.utils.Bunch
        Every key of ``make_elbow_lifting`` and ``scenario`` (the name), ``beyond_training``
        (bool per sequence: its load is heavier than every training load), ``train_loads``,
        ``motion`` (motion kind per sequence), ``truth_residual`` (the largest absolute
        difference, in N·m, between OpenSim's muscle torque at the truth activations and OpenSim
        inverse dynamics, over frames where no muscle is fully active), ``torque_residual``
        (that difference per frame) and
        ``saturated`` (frames where some muscle is fully active).

    Raises
    ------
    ValueError
        For an unknown ``name`` (the message lists the scenarios) or bad sizes.

    Examples
    --------
    >>> from deepemg.datasets import make_scenario
    >>> data = make_scenario("heavy_loads", n_subjects=1, n_trials=3, duration=1.0,
    ...                      random_state=0, cache=False, progress=False)
    >>> data.beyond_training.tolist(), data.train_loads, data.X.shape
    ([False, False, True], [0.0, 1.0, 2.0, 3.0, 4.0], (3, 100, 10))
    """
    if name not in SCENARIOS:
        raise ValueError(f"Unknown scenario {name!r}; the scenarios are {sorted(SCENARIOS)}.")
    _check_sizes(n_subjects, n_trials, duration, rate)
    scenario = SCENARIOS[name]
    sizes = (n_subjects, n_trials, duration, rate)
    path = None
    if cache and isinstance(random_state, (int, np.integer)):
        path = _scenario_cache_path(name, *sizes, random_state, data_home)
        cached = load_cached(path, required=SCENARIO_KEYS)
        if cached is not None:
            return cached
    if name == "default":
        data = make_elbow_lifting(
            *sizes, random_state=random_state, cache=cache, progress=progress, data_home=data_home
        )
        kinds = ["minimum_jerk"] * len(data.loads)
    else:
        data, kinds = _simulate_scenario(
            scenario, int(n_subjects), int(n_trials), duration, rate, random_state, progress
        )
    _add_truth(data, name, kinds, progress)
    if path is not None:
        save_bunch(path, data)
    return data


def _scenario_cache_path(
    name: str,
    n_subjects: int,
    n_trials: int,
    duration: float,
    rate: float,
    random_state: int,
    data_home: str | os.PathLike | None,
) -> Path:
    """Where ``make_scenario`` caches a scenario: keyed by its whole definition and the sizes.

    A scenario with personal muscle curves adds their ranges to the key (the other scenarios'
    keys are those they always had).
    """
    scenario = SCENARIOS[name]
    curves = (
        {"muscle_curve_ranges": MUSCLE_CURVE_RANGES}
        if scenario.muscle == "degroote_compliant_personal"
        else {}
    )
    return _elbow_cache_path(
        f"scenario_{name}",
        data_home,
        version=SCENARIO_GENERATOR_VERSION,
        lifting_version=GENERATOR_VERSION,
        scenario=asdict(scenario),
        **curves,
        ballistic_torque_budget=BALLISTIC_TORQUE_BUDGET,
        emg_ceiling=EMG_CEILING,
        n_subjects=int(n_subjects),
        n_trials=int(n_trials),
        duration=float(duration),
        rate=float(rate),
        random_state=int(random_state),
    )


def _add_truth(data: Bunch, name: str, kinds: list[str], progress: bool) -> None:
    """Add scenario ``name``'s keys to ``data``; warn where the muscles miss the torque.

    The warning is for ``make_scenario``'s caller.
    """
    scenario = SCENARIOS[name]
    residual, saturated = _torque_residual(data, progress)
    free = ~saturated
    truth = float(np.abs(residual[free]).max()) if free.any() else float("nan")
    data.update(
        scenario=name,
        beyond_training=np.asarray(data.loads) > max(scenario.train_loads),
        train_loads=[float(m) for m in scenario.train_loads],
        motion=np.array(kinds, dtype=str),
        truth_residual=truth,
        torque_residual=residual,
        saturated=saturated,
    )
    worst = float(np.abs(residual).max())
    if name != "default" and worst > 1e-3 and worst > truth:
        warnings.warn(
            f"Scenario {name!r}: the muscles could not balance the torque everywhere "
            f"(largest residual {worst:.3g} N m); some muscle is fully active in "
            f"{100 * saturated.mean():.2g} % of the frames (largest residual elsewhere "
            f"{truth:.2g} N m).",
            UserWarning,
            stacklevel=3,
        )


def _simulate_scenario(
    scenario: Scenario,
    n_subjects: int,
    n_trials: int,
    duration: float,
    rate: float,
    random_state: RandomStateLike,
    progress: bool,
) -> tuple[Bunch, list[str]]:
    """A non-default scenario's data (uncached) and the motion kind of every sequence."""
    rng = _generator(random_state)
    generic = bridge.load_model(bridge.ELBOW_MODEL_PATH)
    subjects, plans, kinds = [], [], []
    for s in range(n_subjects):
        subject = _draw_subject(rng, f"S{s + 1:02d}", generic, scenario)
        order = rng.permutation(len(scenario.motions))
        subject_kinds = [scenario.motions[order[i % len(order)]] for i in range(n_trials)]
        trial_loads = _trial_loads(rng, scenario, n_trials)
        trials = [
            _trial(kind, rng, duration, rate, load)
            for kind, load in zip(subject_kinds, trial_loads, strict=True)
        ]
        subjects.append(subject)
        kinds += subject_kinds
        plans.append((trials, trial_loads, int(rng.integers(2**31))))
    multiplicative, additive = scenario.noise
    cat, elapsed = _simulate_all(
        subjects,
        plans,
        rate,
        "static_optimization",
        (float(multiplicative), float(additive)),
        progress,
        emg_ceiling=EMG_CEILING,
    )
    sequence_loads = np.concatenate([p[1] for p in plans])
    data = _assemble(
        subjects,
        sequence_loads,
        cat,
        n_trials,
        rate,
        "static_optimization",
        elapsed,
        _describe(scenario),
    )
    return data, kinds
