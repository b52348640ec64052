"""Simulated subjects: the elbow model varied per subject, and each subject's neural strategy."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np
import opensim as osim

from .. import opensim as bridge

__all__ = ["ScenarioSubject", "SimulatedSubject", "build_subject_model", "draw_subject"]

MUSCLE_MODELS = ("degroote_rigid", "thelen_compliant")
"""Muscle models of the simulated truth: deepemg's own (rigid-tendon DeGrooteFregly2016, the
torch model's law) or OpenSim's compliant-tendon Thelen2003Muscle."""


@dataclass
class SimulatedSubject:
    """Everything that makes one simulated subject differ from the generic elbow model.

    Attributes
    ----------
    name : str
        Subject label (``"S01"``...).
    forearm_mass_scale, forearm_inertia_scale : float
        Scale of the forearm+hand mass and inertia.
    max_isometric_force_scale, optimal_fiber_length_scale, tendon_slack_length_scale : arrays
        Per-muscle scales of the OpenSim parameters.
    max_isometric_force, optimal_fiber_length, tendon_slack_length : arrays
        The resulting values (N, m, m).
    effort_exponent : float
        Exponent ``p`` of the effort ``sum w_j a_j^p`` the subject minimises.
    effort_weights : array
        Per-muscle weights ``w_j``.
    cocontraction_floor, cocontraction_per_kg : float
        Co-contraction floor of every muscle: ``floor + per_kg * load_mass`` (activation).
    electromechanical_delay : float
        Delay (s) by which the EMG envelope leads the activation.
    muscles : list of str
        Muscle order of the per-muscle arrays.
    """

    name: str
    muscles: list
    forearm_mass_scale: float
    forearm_inertia_scale: float
    max_isometric_force_scale: np.ndarray
    optimal_fiber_length_scale: np.ndarray
    tendon_slack_length_scale: np.ndarray
    max_isometric_force: np.ndarray
    optimal_fiber_length: np.ndarray
    tendon_slack_length: np.ndarray
    effort_exponent: float
    effort_weights: np.ndarray
    cocontraction_floor: float
    cocontraction_per_kg: float
    electromechanical_delay: float

    def as_dict(self) -> dict:
        """Plain dict (arrays kept) for ``true_params``."""
        return asdict(self)


@dataclass
class ScenarioSubject(SimulatedSubject):
    """A subject of a harder scenario (:func:`deepemg.datasets.make_scenario`).

    Adds to :class:`SimulatedSubject`:

    Attributes
    ----------
    muscle_model : {"degroote_rigid", "thelen_compliant"}
        Muscles of the subject's OpenSim model (the truth).
    activation_time_constant, deactivation_time_constant : float
        Time constants (s) of the subject's first-order activation dynamics.
    emg_gain : array
        Per-muscle gain of the measured EMG (electrode placement, normalisation error);
        1 for the deep muscles, which are not measured.
    """

    muscle_model: str = "degroote_rigid"
    activation_time_constant: float = 0.015
    deactivation_time_constant: float = 0.060
    emg_gain: np.ndarray = field(default_factory=lambda: np.ones(0))


def draw_subject(
    rng: np.random.Generator,
    name: str,
    generic: osim.Model,
    *,
    effort_exponent: tuple[float, float] = (2.0, 3.0),
    volume_weighted: bool = False,
    cocontraction_floor: tuple[float, float] = (0.005, 0.03),
    cocontraction_per_kg: tuple[float, float] = (0.002, 0.008),
    electromechanical_delay: tuple[float, float] = (0.02, 0.06),
) -> SimulatedSubject:
    """Draw a subject's anatomy and neural strategy around the generic ``generic`` model.

    The keyword arguments are the ranges (uniform) of the neural strategy; their defaults are
    ``make_elbow_lifting``'s (and then the draws are exactly its). With ``volume_weighted``
    the effort weights are the muscle volumes ``F0 l_opt`` (relative to their mean) times the
    log-normal per-muscle scatter, so that large muscles cost more per unit activation.
    """
    muscles = bridge.muscle_names(generic)
    handles = bridge.muscle_handles(generic, muscles)
    n = len(muscles)
    f0_scale = np.clip(np.exp(rng.normal(0.0, 0.2, n)), 0.6, 1.6)
    lopt_scale = rng.uniform(0.92, 1.08, n)
    lts_scale = rng.uniform(0.97, 1.03, n)
    mass_scale = rng.uniform(0.85, 1.15)
    max_isometric_force = f0_scale * [h.getMaxIsometricForce() for h in handles]
    optimal_fiber_length = lopt_scale * [h.getOptimalFiberLength() for h in handles]
    inertia_scale = mass_scale * rng.uniform(0.95, 1.05)
    exponent = rng.uniform(*effort_exponent)
    weights = np.exp(rng.normal(0.0, 0.3, n))
    if volume_weighted:
        volume = max_isometric_force * optimal_fiber_length
        weights = weights * volume / volume.mean()
    return SimulatedSubject(
        name=name,
        muscles=muscles,
        forearm_mass_scale=mass_scale,
        forearm_inertia_scale=inertia_scale,
        max_isometric_force_scale=f0_scale,
        optimal_fiber_length_scale=lopt_scale,
        tendon_slack_length_scale=lts_scale,
        max_isometric_force=max_isometric_force,
        optimal_fiber_length=optimal_fiber_length,
        tendon_slack_length=lts_scale * [h.getTendonSlackLength() for h in handles],
        effort_exponent=exponent,
        effort_weights=weights,
        cocontraction_floor=rng.uniform(*cocontraction_floor),
        cocontraction_per_kg=rng.uniform(*cocontraction_per_kg),
        electromechanical_delay=rng.uniform(*electromechanical_delay),
    )


def build_subject_model(
    subject: SimulatedSubject,
    path: str | os.PathLike | None = None,
    body: str = "r_ulna_radius_hand",
    muscle_model: str | None = None,
) -> osim.Model:
    """The subject's OpenSim model: the generic elbow with the subject's anatomy.

    ``muscle_model`` (default: the subject's own, ``"degroote_rigid"`` for a
    :class:`SimulatedSubject`) picks the muscles: rigid-tendon DeGrooteFregly2016 or
    compliant-tendon Thelen2003 (:func:`deepemg.opensim.use_thelen_muscles`, same anatomy).
    """
    muscle_model = muscle_model or getattr(subject, "muscle_model", "degroote_rigid")
    if muscle_model not in MUSCLE_MODELS:
        raise ValueError(f"muscle_model must be one of {MUSCLE_MODELS}, got {muscle_model!r}.")
    model = bridge.load_model(path or bridge.ELBOW_MODEL_PATH)
    forearm = model.getBodySet().get(body)
    forearm.setMass(forearm.getMass() * subject.forearm_mass_scale)
    inertia = forearm.getInertia()
    moments = inertia.getMoments()
    products = inertia.getProducts()
    s = subject.forearm_inertia_scale
    forearm.setInertia(
        osim.Inertia(
            moments.get(0) * s,
            moments.get(1) * s,
            moments.get(2) * s,
            products.get(0) * s,
            products.get(1) * s,
            products.get(2) * s,
        )
    )
    for j, muscle in enumerate(bridge.muscle_handles(model, subject.muscles)):
        muscle.setMaxIsometricForce(float(subject.max_isometric_force[j]))
        muscle.setOptimalFiberLength(float(subject.optimal_fiber_length[j]))
        muscle.setTendonSlackLength(float(subject.tendon_slack_length[j]))
    bridge.use_rigid_tendon_degroote_muscles(model)
    if muscle_model == "thelen_compliant":
        bridge.use_thelen_muscles(
            model,
            activation_time_constant=getattr(subject, "activation_time_constant", None),
            deactivation_time_constant=getattr(subject, "deactivation_time_constant", None),
        )
    return model
