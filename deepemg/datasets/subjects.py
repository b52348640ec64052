"""Simulated subjects: the elbow model varied per subject, and each subject's neural strategy."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np
import opensim as osim

from .. import opensim as bridge
from ..opensim.builder import use_compliant_tendon_degroote_muscles

__all__ = [
    "MUSCLE_CURVE_RANGES",
    "ScenarioSubject",
    "SimulatedSubject",
    "build_subject_model",
    "draw_muscle_curves",
    "draw_subject",
]

MUSCLE_MODELS = ("degroote_rigid", "thelen_compliant", "degroote_compliant_personal")
"""Muscle models of the simulated truth: deepemg's own (rigid-tendon DeGrooteFregly2016, the
torch model's law), OpenSim's compliant-tendon Thelen2003Muscle, or compliant-tendon
DeGrooteFregly2016 with the subject's own curve shapes (:func:`draw_muscle_curves`)."""

COMPLIANT_MUSCLE_MODELS = ("thelen_compliant", "degroote_compliant_personal")
"""The muscle models with an elastic tendon (forces at fibre equilibrium)."""

MUSCLE_CURVE_RANGES: dict[str, tuple[float, float]] = {
    "active_force_width_scale": (1.0, 1.4),
    "passive_fiber_strain_at_one_norm_force": (0.45, 0.75),
    "max_contraction_velocity": (6.0, 14.0),
    "tendon_strain_at_one_norm_force": (0.033, 0.06),
}
"""Ranges ``(low, high)`` of the personal curve properties of DeGrooteFregly2016Muscle, drawn
uniformly per subject and per muscle by :func:`draw_muscle_curves` (units: width scale and
strains dimensionless, maximum contraction velocity in optimal fibre lengths per second). Each
contains the generic elbow model's value (1, 0.6, 10, 0.049; the width scale's is its lowest)."""


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
    muscle_model : {"degroote_rigid", "thelen_compliant", "degroote_compliant_personal"}
        Muscles of the subject's OpenSim model (the truth).
    activation_time_constant, deactivation_time_constant : float
        Time constants (s) of the subject's first-order activation dynamics.
    emg_gain : array
        Per-muscle gain of the measured EMG (electrode placement, normalisation error);
        1 for the deep muscles, which are not measured.
    active_force_width_scale, passive_fiber_strain_at_one_norm_force : arrays
        Per-muscle width scale of the active force-length curve and passive fibre strain at
        maximum isometric force (dimensionless) of a ``"degroote_compliant_personal"``
        subject (:func:`draw_muscle_curves`); empty otherwise (the generic model's).
    max_contraction_velocity : array
        Per-muscle maximum contraction velocity (optimal fibre lengths per second), idem.
    tendon_strain_at_one_norm_force : array
        Per-muscle tendon strain at maximum isometric force (dimensionless), idem.
    """

    muscle_model: str = "degroote_rigid"
    activation_time_constant: float = 0.015
    deactivation_time_constant: float = 0.060
    emg_gain: np.ndarray = field(default_factory=lambda: np.ones(0))
    active_force_width_scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    passive_fiber_strain_at_one_norm_force: np.ndarray = field(default_factory=lambda: np.ones(0))
    max_contraction_velocity: np.ndarray = field(default_factory=lambda: np.ones(0))
    tendon_strain_at_one_norm_force: np.ndarray = field(default_factory=lambda: np.ones(0))

    def as_dict(self) -> dict:
        """Plain dict (arrays kept) for ``true_params``; curve properties only when drawn.

        A subject without personal curves (every muscle model but
        ``"degroote_compliant_personal"``) leaves the four empty curve arrays out, so that the
        other scenarios' ``true_params`` are those they always had.
        """
        values = asdict(self)
        for key in MUSCLE_CURVE_RANGES:
            if np.size(values[key]) == 0:
                del values[key]
        return values


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


def draw_muscle_curves(rng: np.random.Generator, n_muscles: int) -> dict[str, np.ndarray]:
    """Draw a subject's own muscle curve shapes and tendon compliance, one value per muscle.

    Each property of :data:`MUSCLE_CURVE_RANGES` is drawn **uniformly** and independently per
    muscle within its range (uniform: the literature gives plausible bounds, not a
    distribution), in this order, ``n_muscles`` values each:

    ``active_force_width_scale`` 1.0-1.4
        Scale of the width of DeGroote-Fregly's active force-length Gaussians (generic 1).
        A whole muscle's force-length curve is wider than one sarcomere's by an amount that
        depends on the spread of sarcomere and fibre lengths and on pennation (Winters et al.
        2011, J Biomech 44:109; Lieber & Ward 2011, Phil Trans R Soc B 366:1466), so it
        differs between muscles and people. The spread is that of +-20 % (0.4), but one-sided:
        OpenSim's DeGrooteFregly2016Muscle refuses a scale below 1 (its curve is already the
        narrowest it allows), and wider, not narrower, is the direction whole muscles deviate.
    ``passive_fiber_strain_at_one_norm_force`` 0.45-0.75
        Fibre strain at which the passive force reaches F0 (generic 0.6). Thelen (2003,
        J Biomech Eng 125:70) used 0.6 for young and 0.5 for older adults; passive stiffness
        varies several-fold between muscles and subjects (e.g. Gajdosik 2001, Clin Biomech
        16:87), which 0.45-0.75 covers around the generic value.
    ``max_contraction_velocity`` 6-14 optimal fibre lengths per second
        Generic 10 (Zajac 1989, Crit Rev Biomed Eng 17:359; Thelen 2003 used 10 young and 8
        old). Unloaded shortening speed scales with the fast-fibre fraction, which ranges
        widely between human muscles and people (Johnson et al. 1973, J Neurol Sci 18:111),
        hence 6-14.
    ``tendon_strain_at_one_norm_force`` 0.033-0.06
        Tendon strain at F0 (generic 0.049, DeGroote-Fregly's default): 0.033 is Zajac's
        generic value; in vivo human tendons strain about 3-8 % at maximal force
        (Maganaris & Paul 1999, J Physiol 521:307; Magnusson et al. 2003, Scand J Med Sci
        Sports 13:57), of which 3.3-6 % keeps the elbow's short tendons stable.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the draws.
    n_muscles : int
        Number of muscles (values per property).

    Returns
    -------
    dict of str to ndarray of shape (n_muscles,)
        One array per key of :data:`MUSCLE_CURVE_RANGES`.

    Examples
    --------
    >>> import numpy as np
    >>> curves = draw_muscle_curves(np.random.default_rng(0), 7)
    >>> velocity = curves["max_contraction_velocity"]  # optimal fibre lengths per second
    >>> sorted(curves) == sorted(MUSCLE_CURVE_RANGES), velocity.shape
    (True, (7,))
    >>> bool(velocity.min() >= 6.0 and velocity.max() <= 14.0)
    True
    """
    if int(n_muscles) < 1:
        raise ValueError(f"n_muscles must be a positive integer, got {n_muscles!r}.")
    return {
        key: rng.uniform(low, high, int(n_muscles))
        for key, (low, high) in MUSCLE_CURVE_RANGES.items()
    }


def _set_muscle_curves(model: osim.Model, subject: SimulatedSubject) -> None:
    """Give the model's (compliant DeGrooteFregly2016) muscles the subject's curve properties."""
    values = {
        key: np.asarray(getattr(subject, key, ()), dtype=float) for key in MUSCLE_CURVE_RANGES
    }
    n = len(subject.muscles)
    wrong = [key for key, value in values.items() if value.shape != (n,)]
    if wrong:
        raise ValueError(
            f"A 'degroote_compliant_personal' subject needs {n} values (one per muscle) of "
            f"{wrong}; draw them with draw_muscle_curves (make_scenario('personal_curves') "
            "does)."
        )
    for j, handle in enumerate(bridge.muscle_handles(model, subject.muscles)):
        muscle = osim.DeGrooteFregly2016Muscle.safeDownCast(handle)
        muscle.set_active_force_width_scale(float(values["active_force_width_scale"][j]))
        muscle.set_passive_fiber_strain_at_one_norm_force(
            float(values["passive_fiber_strain_at_one_norm_force"][j])
        )
        muscle.set_max_contraction_velocity(float(values["max_contraction_velocity"][j]))
        muscle.set_tendon_strain_at_one_norm_force(
            float(values["tendon_strain_at_one_norm_force"][j])
        )
        for name in ("activation_time_constant", "deactivation_time_constant"):
            if hasattr(subject, name):  # no effect on equilibrium forces; kept for the record
                getattr(muscle, f"set_{name}")(float(getattr(subject, name)))


def build_subject_model(
    subject: SimulatedSubject,
    path: str | os.PathLike | None = None,
    body: str = "r_ulna_radius_hand",
    muscle_model: str | None = None,
) -> osim.Model:
    """The subject's OpenSim model: the generic elbow with the subject's anatomy.

    ``muscle_model`` (default: the subject's own, ``"degroote_rigid"`` for a
    :class:`SimulatedSubject`) picks the muscles: rigid-tendon DeGrooteFregly2016,
    compliant-tendon Thelen2003 (:func:`deepemg.opensim.use_thelen_muscles`, same anatomy) or
    compliant-tendon DeGrooteFregly2016 with the subject's own curve properties
    (``"degroote_compliant_personal"``:
    :func:`deepemg.opensim.builder.use_compliant_tendon_degroote_muscles`, then the
    subject's ``active_force_width_scale``, ``passive_fiber_strain_at_one_norm_force``,
    ``max_contraction_velocity`` and ``tendon_strain_at_one_norm_force`` per muscle).
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
    elif muscle_model == "degroote_compliant_personal":
        use_compliant_tendon_degroote_muscles(model)
        _set_muscle_curves(model, subject)
    return model
