"""OpenSim as the oracle: inverse dynamics, muscle forces, a passive-aware static optimisation."""

from __future__ import annotations

import numpy as np
import opensim as osim

from .model import ModelPose, muscle_handles

__all__ = [
    "fit_joint_dynamics",
    "inverse_dynamics",
    "muscle_tendon_forces",
    "static_optimization",
]


def _frames(**arrays) -> list[np.ndarray]:
    """The named per-frame arrays as flat float arrays, checked for length and NaN."""
    flat = {name: np.asarray(a, dtype=float).ravel() for name, a in arrays.items()}
    sizes = {name: a.size for name, a in flat.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"All per-frame inputs need the same number of frames, got {sizes}.")
    for name, a in flat.items():
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise ValueError(f"{name} holds NaN or infinite values at frames {bad[:5].tolist()}.")
    return list(flat.values())


def inverse_dynamics(pose: ModelPose, angle, velocity, acceleration) -> np.ndarray:
    """Generalised force (N·m) at the posed coordinate by OpenSim's InverseDynamicsSolver.

    Muscles do not apply force (``setAppliesForce(state, False)``); the other coordinates are
    held still. Set the load mass (``set_load_mass``) before posing the model.

    Parameters
    ----------
    pose : ModelPose
        The posed model.
    angle, velocity, acceleration : arrays of shape (n_frames,)
        rad, rad/s, rad/s².

    Returns
    -------
    ndarray of shape (n_frames,)
        The torque (N·m) the joint must produce.
    """
    angle, velocity, acceleration = _frames(
        angle=angle, velocity=velocity, acceleration=acceleration
    )
    model, state = pose.model, pose.state
    muscles = model.getMuscles()
    for i in range(muscles.getSize()):
        muscles.get(i).setAppliesForce(state, False)
    solver = osim.InverseDynamicsSolver(model)
    udot = osim.Vector(state.getNU(), 0.0)
    torque = np.empty(angle.size)
    try:
        for k in range(angle.size):
            pose.set(angle[k], velocity[k])
            model.realizeVelocity(state)
            udot.set(pose.mobility_index, float(acceleration[k]))
            torque[k] = solver.solve(state, udot).get(pose.mobility_index)
    finally:
        for i in range(muscles.getSize()):
            muscles.get(i).setAppliesForce(state, True)
    return torque


def muscle_tendon_forces(
    pose: ModelPose, muscles: list[str], activation, angle, velocity
) -> np.ndarray:
    """Tendon force (N) of rigid-tendon DeGrooteFregly2016 muscles, computed by OpenSim.

    Parameters
    ----------
    pose : ModelPose
        The posed model (muscles made rigid-tendon DeGrooteFregly2016Muscle).
    muscles : list of str
        Muscle names, in the order of ``activation``'s columns.
    activation : array of shape (n_frames, n_muscles) or (n_muscles,)
        Muscle activation in [0, 1] (one row used for every frame when 1-D).
    angle, velocity : arrays of shape (n_frames,)
        rad and rad/s.

    Returns
    -------
    ndarray of shape (n_frames, n_muscles)
        Force along the tendon (N).
    """
    angle, velocity = _frames(angle=angle, velocity=velocity)
    activation = np.broadcast_to(np.asarray(activation, dtype=float), (angle.size, len(muscles)))
    model, state = pose.model, pose.state
    handles = [
        osim.DeGrooteFregly2016Muscle.safeDownCast(h) for h in muscle_handles(model, muscles)
    ]
    if any(h is None for h in handles):
        raise TypeError(
            "muscle_tendon_forces needs DeGrooteFregly2016Muscle muscles "
            "(see use_rigid_tendon_degroote_muscles)."
        )
    forces = np.empty((angle.size, len(muscles)))
    for k in range(angle.size):
        pose.set(angle[k], velocity[k])
        for j, muscle in enumerate(handles):
            muscle.setActivation(state, float(activation[k, j]))
        model.realizeDynamics(state)
        for j, muscle in enumerate(handles):
            forces[k, j] = muscle.getTendonForce(state)
    return forces


def static_optimization(
    pose: ModelPose,
    muscles: list[str],
    angle,
    velocity,
    torque,
    moment_arms=None,
    exponent: float = 2.0,
    weights=None,
    min_activation=0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Activations that balance ``torque`` with OpenSim's own muscles, frame by frame.

    Minimises ``sum_j w_j a_j^p`` subject to ``sum_j r_j F_j(a_j) = torque`` and
    ``a_min_j <= a_j <= 1``, where ``F_j(a) = F_j(0) + a (F_j(1) - F_j(0))`` is read from OpenSim
    at each frame's angle and velocity, so passive fibre force is part of the balance (OpenSim's
    StaticOptimization analysis leaves it out). With ``c_j = r_j (F_j(1) - F_j(0))`` the
    optimality conditions give ``a_j = clip((lambda c_j / (p w_j))^(1/(p-1)), a_min_j, 1)`` where
    ``lambda c_j > 0`` (else ``a_min_j``); the torque this produces increases with ``lambda``,
    so ``lambda`` is found by bisection, for all frames at once.

    Parameters
    ----------
    pose : ModelPose
        The posed model (rigid-tendon DeGrooteFregly2016 muscles).
    muscles : list of str
        Muscles that may act.
    angle, velocity, torque : arrays of shape (n_frames,)
        rad, rad/s and the torque to balance (N·m), typically from ``inverse_dynamics``.
    moment_arms : array of shape (n_frames, n_muscles), optional
        Moment arms (m); computed with OpenSim when not given.
    exponent : float, default=2
        Effort exponent ``p`` > 1.
    weights : array of shape (n_muscles,), optional
        Effort weights ``w_j`` > 0 (1 by default).
    min_activation : float or array broadcastable to (n_frames, n_muscles), default=0
        Co-contraction floor ``a_min`` in [0, 1).

    Returns
    -------
    activation : ndarray of shape (n_frames, n_muscles)
        Activations in [0, 1].
    residual : ndarray of shape (n_frames,)
        ``torque - sum r F`` (N·m): 0 unless the muscles cannot produce the torque.
    """
    from .geometry import sample_path_geometry

    angle, velocity, torque = _frames(angle=angle, velocity=velocity, torque=torque)
    if exponent <= 1:
        raise ValueError(f"exponent must be > 1, got {exponent}.")
    weights = np.ones(len(muscles)) if weights is None else np.asarray(weights, dtype=float)
    if weights.shape != (len(muscles),) or np.any(weights <= 0):
        raise ValueError(f"weights must be {len(muscles)} positive numbers, one per muscle.")
    floor = np.broadcast_to(np.asarray(min_activation, dtype=float), (angle.size, len(muscles)))
    if np.any(floor < 0) or np.any(floor >= 1):
        raise ValueError("min_activation must lie in [0, 1).")
    if moment_arms is None:
        _, moment_arms = sample_path_geometry(pose, muscles, angle)
    passive = muscle_tendon_forces(pose, muscles, np.zeros(len(muscles)), angle, velocity)
    full = muscle_tendon_forces(pose, muscles, np.ones(len(muscles)), angle, velocity)
    gain = moment_arms * (full - passive)  # N·m per unit activation
    need = torque - (moment_arms * passive).sum(axis=1)

    def activation_at(lam):
        x = lam[:, None] * gain / (exponent * weights)
        return np.clip(np.maximum(x, 0.0) ** (1.0 / (exponent - 1.0)), floor, 1.0)

    # At |lambda| = max_j p w_j / |c_j| every muscle that helps is saturated: a bracket.
    with np.errstate(divide="ignore"):
        bound = np.where(np.abs(gain) > 0, exponent * weights / np.abs(gain), 0.0).max(axis=1)
    low, high = -bound - 1.0, bound + 1.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        below = (gain * activation_at(mid)).sum(axis=1) < need
        low = np.where(below, mid, low)
        high = np.where(below, high, mid)
    activation = activation_at(0.5 * (low + high))
    residual = need - (gain * activation).sum(axis=1)
    return activation, residual


def fit_joint_dynamics(
    pose: ModelPose, load_body: str | None = "load", n_samples: int = 60, random_state: int = 0
) -> dict:
    """Rigid-body coefficients of the posed coordinate, identified from OpenSim inverse dynamics.

    With the other coordinates held still, a hinge's inverse dynamics is exactly
    ``tau = I qdd + A cos q + B sin q`` (no velocity term), and a point load of mass m adds
    ``m (I_L qdd + A_L cos q + B_L sin q)``. The six coefficients are found by least squares on
    OpenSim inverse dynamics at random angles, velocities and accelerations, with the load at 0
    and 1 kg; the largest residual is reported.

    Returns
    -------
    dict
        ``inertia`` (kg m²), ``gravity_cos``, ``gravity_sin`` (N·m), the same per kg of load
        (``load_inertia``, ``load_gravity_cos``, ``load_gravity_sin``, zero when there is no load
        body) and ``max_residual`` (N·m).
    """
    from .model import set_load_mass

    rng = np.random.default_rng(random_state)
    low, high = pose.range
    q = rng.uniform(low, high, n_samples)
    qd = rng.uniform(-10.0, 10.0, n_samples)
    qdd = rng.uniform(-50.0, 50.0, n_samples)
    design = np.column_stack([qdd, np.cos(q), np.sin(q)])
    model = pose.model
    has_load = load_body is not None and model.getBodySet().contains(load_body)
    if has_load:
        original = model.getBodySet().get(load_body).getMass()
        set_load_mass(model, 0.0, load_body)
        pose.reinitialize()
    tau0 = inverse_dynamics(pose, q, qd, qdd)
    coef0, *_ = np.linalg.lstsq(design, tau0, rcond=None)
    residual = np.abs(design @ coef0 - tau0).max()
    coef1 = np.zeros(3)
    if has_load:
        set_load_mass(model, 1.0, load_body)
        pose.reinitialize()
        tau1 = inverse_dynamics(pose, q, qd, qdd) - tau0
        coef1, *_ = np.linalg.lstsq(design, tau1, rcond=None)
        residual = max(residual, np.abs(design @ coef1 - tau1).max())
        set_load_mass(model, original, load_body)
        pose.reinitialize()
    return {
        "inertia": coef0[0],
        "gravity_cos": coef0[1],
        "gravity_sin": coef0[2],
        "load_inertia": coef1[0],
        "load_gravity_cos": coef1[1],
        "load_gravity_sin": coef1[2],
        "has_load": has_load,
        "max_residual": float(residual),
    }
