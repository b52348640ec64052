"""OpenSim as the oracle: inverse dynamics, muscle forces, a passive-aware static optimisation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import opensim as osim
from numpy.typing import ArrayLike

from .model import ModelPose, muscle_handles

__all__ = [
    "compliant_static_optimization",
    "equilibrium_tendon_forces",
    "fit_joint_dynamics",
    "inverse_dynamics",
    "muscle_tendon_forces",
    "static_optimization",
]


def _frames(**arrays: ArrayLike) -> list[np.ndarray]:
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


def inverse_dynamics(
    pose: ModelPose, angle: ArrayLike, velocity: ArrayLike, acceleration: ArrayLike
) -> np.ndarray:
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
    pose: ModelPose,
    muscles: list[str],
    activation: ArrayLike,
    angle: ArrayLike,
    velocity: ArrayLike,
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
    angle: ArrayLike,
    velocity: ArrayLike,
    torque: ArrayLike,
    moment_arms: ArrayLike | None = None,
    exponent: float = 2.0,
    weights: ArrayLike | None = None,
    min_activation: ArrayLike = 0.0,
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

    angle, velocity, torque, weights, floor = _effort_problem(
        muscles, angle, velocity, torque, exponent, weights, min_activation
    )
    if moment_arms is None:
        _, moment_arms = sample_path_geometry(pose, muscles, angle)
    arms = np.asarray(moment_arms, dtype=float)
    passive = muscle_tendon_forces(pose, muscles, np.zeros(len(muscles)), angle, velocity)
    full = muscle_tendon_forces(pose, muscles, np.ones(len(muscles)), angle, velocity)
    gain = arms * (full - passive)  # N·m per unit activation
    need = torque - (arms * passive).sum(axis=1)
    activation = _affine_effort_solve(gain, need, exponent, weights, floor)
    residual = need - (gain * activation).sum(axis=1)
    return activation, residual


def _effort_problem(
    muscles: list[str],
    angle: ArrayLike,
    velocity: ArrayLike,
    torque: ArrayLike,
    exponent: float,
    weights: ArrayLike | None,
    min_activation: ArrayLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The inputs of a static optimisation, checked.

    Returns the per-frame arrays, the effort weights (1 by default) and the activation floor
    broadcast to ``(n_frames, n_muscles)``.
    """
    angle, velocity, torque = _frames(angle=angle, velocity=velocity, torque=torque)
    if exponent <= 1:
        raise ValueError(f"exponent must be > 1, got {exponent}.")
    n_muscles = len(muscles)
    weights = np.ones(n_muscles) if weights is None else np.asarray(weights, dtype=float)
    if weights.shape != (n_muscles,) or np.any(weights <= 0):
        raise ValueError(f"weights must be {n_muscles} positive numbers, one per muscle.")
    floor = np.broadcast_to(np.asarray(min_activation, dtype=float), (angle.size, n_muscles))
    if np.any(floor < 0) or np.any(floor >= 1):
        raise ValueError("min_activation must lie in [0, 1).")
    return angle, velocity, torque, weights, floor


def _affine_effort_solve(
    gain: np.ndarray, need: np.ndarray, exponent: float, weights: np.ndarray, floor: np.ndarray
) -> np.ndarray:
    """``argmin sum_j w_j a_j^p`` s.t. ``sum_j gain_j a_j = need``, ``floor <= a <= 1``.

    Solved per frame (rows), by bisection on the multiplier (see :func:`static_optimization`).
    """

    def activation_at(lam: np.ndarray) -> np.ndarray:
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
    return activation_at(0.5 * (low + high))


EQUILIBRIUM_NUDGES = (
    (0.0, 0.0),
    (0.0, 1e-4),
    (0.0, -1e-4),
    (1e-5, 0.0),
    (-1e-5, 0.0),
    (1e-4, 0.0),
    (-1e-4, 0.0),
    (1e-4, 1e-3),
    (-1e-4, -1e-3),
    (1e-3, 0.0),
    (-1e-3, 0.0),
)
"""(angle in rad, velocity in rad/s) added to a frame's pose, in turn, where OpenSim's
equilibrium solver fails. Thelen2003Muscle's Newton solve (20 iterations to 1e-8 F0) stalls
in rare slivers of the state space (about 2e-4 rad wide; near 1e-5 N of equilibrium); a nudge
of the angle by 1e-4 rad changes a tendon force by well under a newton (< 0.02 N·m)."""


def equilibrium_tendon_forces(
    pose: ModelPose,
    muscles: list[str],
    activation: ArrayLike,
    angle: ArrayLike,
    velocity: ArrayLike,
) -> np.ndarray:
    """Tendon force (N) of the muscles at fibre equilibrium, computed by OpenSim.

    At every frame the model is posed (angle, velocity), the muscles' activations are set,
    ``model.equilibrateMuscles(state)`` finds each fibre length at which fibre and tendon
    forces balance (for a compliant tendon, Thelen2003Muscle shares the musculotendon
    velocity between fibre and tendon by their stiffness) and ``getTendonForce`` is read. Works
    for any OpenSim muscle (for a rigid tendon it equals :func:`muscle_tendon_forces`). Where
    OpenSim's solver fails, the pose is nudged by :data:`EQUILIBRIUM_NUDGES` in turn; a
    RuntimeError names the frame if none works.

    Parameters
    ----------
    pose : ModelPose
        The posed model.
    muscles : list of str
        Muscle names, in the order of ``activation``'s columns.
    activation : array of shape (n_frames, n_muscles) or (n_muscles,)
        Activations (a muscle may clamp them, e.g. Thelen2003Muscle at 0.01).
    angle, velocity : arrays of shape (n_frames,)
        rad and rad/s.

    Returns
    -------
    ndarray of shape (n_frames, n_muscles)
        Tendon force (N).
    """
    angle, velocity = _frames(angle=angle, velocity=velocity)
    activation = np.broadcast_to(np.asarray(activation, dtype=float), (angle.size, len(muscles)))
    model, state = pose.model, pose.state
    handles = muscle_handles(model, muscles)
    forces = np.empty((angle.size, len(muscles)))
    for k in range(angle.size):
        for angle_nudge, velocity_nudge in EQUILIBRIUM_NUDGES:
            pose.set(angle[k] + angle_nudge, velocity[k] + velocity_nudge)
            for j, muscle in enumerate(handles):
                muscle.setActivation(state, float(activation[k, j]))
            try:
                model.equilibrateMuscles(state)
            except RuntimeError as error:
                failure = error
                continue
            break
        else:
            raise RuntimeError(
                f"OpenSim cannot equilibrate the muscles at frame {k} (angle "
                f"{angle[k]:.4g} rad, velocity {velocity[k]:.4g} rad/s, activations "
                f"{np.round(activation[k], 4).tolist()}): {str(failure).strip()[:300]}"
            )
        model.realizeDynamics(state)
        for j, muscle in enumerate(handles):
            forces[k, j] = muscle.getTendonForce(state)
    return forces


def _pchip_slopes(values: np.ndarray, step: float) -> np.ndarray:
    """Fritsch-Carlson (scipy PCHIP) slopes of samples on a uniform grid, along the last axis."""
    delta = np.diff(values, axis=-1) / step
    slopes = np.zeros_like(values)
    left, right = delta[..., :-1], delta[..., 1:]
    same = (left * right) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = 2.0 / (1.0 / np.where(same, left, 1.0) + 1.0 / np.where(same, right, 1.0))
    slopes[..., 1:-1] = np.where(same, harmonic, 0.0)
    for end, d0, d1 in ((0, delta[..., 0], delta[..., 1]), (-1, delta[..., -1], delta[..., -2])):
        slope = (3.0 * d0 - d1) / 2.0
        slope = np.where(np.sign(slope) != np.sign(d0), 0.0, slope)
        slope = np.where(
            (np.sign(d0) != np.sign(d1)) & (np.abs(slope) > 3 * np.abs(d0)), 3.0 * d0, slope
        )
        slopes[..., end] = slope
    return slopes


def _hermite_table(
    table: np.ndarray, slopes: np.ndarray, step: float, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Value and derivative (per unit s) of the cubic Hermite through ``table`` at ``s``."""
    n = table.shape[-1]
    i = np.clip(np.floor(s / step).astype(int), 0, n - 2)
    t = s / step - i
    y0 = np.take_along_axis(table, i[..., None], -1)[..., 0]
    y1 = np.take_along_axis(table, i[..., None] + 1, -1)[..., 0]
    m0 = np.take_along_axis(slopes, i[..., None], -1)[..., 0] * step
    m1 = np.take_along_axis(slopes, i[..., None] + 1, -1)[..., 0] * step
    t2, t3 = t * t, t * t * t
    value = (2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + t) * m0 + (-2 * t3 + 3 * t2) * y1
    value = value + (t3 - t2) * m1
    slope = (6 * t2 - 6 * t) * y0 + (3 * t2 - 4 * t + 1) * m0 + (-6 * t2 + 6 * t) * y1
    slope = (slope + (3 * t2 - 2 * t) * m1) / step
    return value, slope


def compliant_static_optimization(
    pose: ModelPose,
    muscles: list[str],
    angle: ArrayLike,
    velocity: ArrayLike,
    torque: ArrayLike,
    moment_arms: ArrayLike | None = None,
    exponent: float = 2.0,
    weights: ArrayLike | None = None,
    min_activation: ArrayLike = 0.0,
    levels: int = 11,
    iterations: int = 40,
    corrections: int = 3,
    tolerance: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """Activations that balance ``torque`` with OpenSim's equilibrium tendon forces.

    For compliant tendons (Thelen2003Muscle, Millard2012EquilibriumMuscle...). Minimises
    ``sum_j w_j a_j^p`` subject to ``sum_j r_j F_j(a_j) = torque`` and
    ``a_min_j <= a_j <= 1`` per frame, where ``F_j(a)`` is the tendon force at fibre equilibrium
    (:func:`equilibrium_tendon_forces`), which is not affine in ``a`` with an elastic tendon:

    1. tabulate ``F_j`` at ``levels`` activations from ``a_min`` to 1 at every frame (one
       ``equilibrateMuscles`` per level and frame, all muscles at once) and interpolate it with
       a monotone cubic (PCHIP) in ``a``;
    2. iterate: linearise the interpolant at the current activations and solve the affine
       problem exactly as :func:`static_optimization` does (bisection on the multiplier); its
       fixed point satisfies the optimality conditions ``p w_j a_j^(p-1) = lambda r_j F_j'(a_j)``;
    3. evaluate the forces with OpenSim at the solution; where the torque misses by more than
       ``tolerance`` (N·m), shift the interpolant by OpenSim's difference and solve again
       (at most ``corrections`` times).

    Parameters
    ----------
    pose, muscles, angle, velocity, torque, moment_arms, exponent, weights, min_activation
        As :func:`static_optimization`; ``min_activation`` is raised to 0.01 for
        Thelen2003Muscle, whose activation cannot go lower.
    levels : int, default=11
        Activation levels tabulated per frame.
    iterations : int, default=40
        Most linearisations per solve (it stops when activations move less than 1e-10).
    corrections : int, default=3
        Most OpenSim re-evaluations after the first.
    tolerance : float, default=1e-3
        Torque miss (N·m) below which a frame needs no correction.

    Returns
    -------
    activation : ndarray of shape (n_frames, n_muscles)
    residual : ndarray of shape (n_frames,)
        ``torque - sum_j r_j F_j(a_j)`` (N·m) with ``F_j`` evaluated by OpenSim at the
        returned activations: small except where the muscles saturate.
    """
    from .geometry import sample_path_geometry

    if int(levels) < 3:
        raise ValueError(f"levels must be >= 3, got {levels}.")
    angle, velocity, torque, weights, floor = _effort_problem(
        muscles, angle, velocity, torque, exponent, weights, min_activation
    )
    floor = _thelen_floor(pose, muscles, floor)
    if moment_arms is None:
        _, moment_arms = sample_path_geometry(pose, muscles, angle)
    problem = _CompliantProblem(
        pose,
        muscles,
        angle,
        velocity,
        torque,
        np.asarray(moment_arms, dtype=float),
        exponent,
        weights,
        floor,
        int(levels),
        int(iterations),
    )
    # start from the secant (the affine model through a_min and 1), then linearise
    activation = problem.solve(problem.secant_activation(), np.arange(angle.size))
    return problem.corrected(activation, int(corrections), tolerance)


def _thelen_floor(pose: ModelPose, muscles: list[str], floor: np.ndarray) -> np.ndarray:
    """``floor`` raised to the lowest activation of Thelen2003Muscle for the muscles that are."""
    from .model import THELEN_MINIMUM_ACTIVATION

    thelen = [
        h.getConcreteClassName() == "Thelen2003Muscle" for h in muscle_handles(pose.model, muscles)
    ]
    return np.where(thelen, np.maximum(floor, THELEN_MINIMUM_ACTIVATION), floor)


@dataclass
class _CompliantProblem:
    """A :func:`compliant_static_optimization` and its table of equilibrium tendon forces.

    The table holds ``F`` at ``s = 0, 1/(L-1), ..., 1`` with ``a = floor + s (1 - floor)``, per
    frame and muscle; ``shift`` (per frame and muscle) is OpenSim's correction, added to the
    interpolant.
    """

    pose: ModelPose
    muscles: list[str]
    angle: np.ndarray
    velocity: np.ndarray
    torque: np.ndarray
    moment_arms: np.ndarray
    exponent: float
    weights: np.ndarray
    floor: np.ndarray
    levels: int
    iterations: int
    table: np.ndarray = field(init=False)
    slopes: np.ndarray = field(init=False)
    shift: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.step = 1.0 / (self.levels - 1)
        self.span = 1.0 - self.floor
        self.table = np.empty((*self.floor.shape, self.levels))
        for k in range(self.levels):
            self.table[..., k] = equilibrium_tendon_forces(
                self.pose,
                self.muscles,
                self.floor + k * self.step * self.span,
                self.angle,
                self.velocity,
            )
        self.slopes = _pchip_slopes(self.table, self.step)
        self.shift = np.zeros(self.floor.shape)

    def model_force(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The interpolated force (N) at activations ``a`` and its slope in ``a``, every frame."""
        s = np.clip((a - self.floor) / self.span, 0, 1)
        value, slope = _hermite_table(self.table, self.slopes, self.step, s)
        return value + self.shift, slope / self.span

    def secant_activation(self) -> np.ndarray:
        """The exact solution with the affine force through ``a_min`` and 1 (the secant)."""
        arms, table, floor = self.moment_arms, self.table, self.floor
        gain = arms * (table[..., -1] - table[..., 0]) / self.span
        need = self.torque - (arms * table[..., 0]).sum(axis=1) + (gain * floor).sum(axis=1)
        return _affine_effort_solve(gain, need, self.exponent, self.weights, floor)

    def solve(self, a: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """``a`` solved again at ``frames`` by linearising the interpolant until it settles."""
        for _ in range(self.iterations):
            force, slope = self.model_force(a)
            force, slope = force[frames], slope[frames]
            arms = self.moment_arms[frames]
            gain = arms * slope
            need = self.torque[frames] - (arms * (force - slope * a[frames])).sum(axis=1)
            new = _affine_effort_solve(gain, need, self.exponent, self.weights, self.floor[frames])
            moved = np.abs(new - a[frames]).max() if new.size else 0.0
            a = a.copy()
            a[frames] = new
            if moved < 1e-10:
                break
        return a

    def corrected(
        self, activation: np.ndarray, corrections: int, tolerance: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Check ``activation`` with OpenSim, correct the interpolant where it misses, solve again.

        Returns the activations and the residual torque (N·m) with OpenSim's forces.
        """
        pose, muscles, angle, velocity = self.pose, self.muscles, self.angle, self.velocity
        forces = equilibrium_tendon_forces(pose, muscles, activation, angle, velocity)
        residual = self.torque - (self.moment_arms * forces).sum(axis=1)
        for _ in range(corrections):
            interpolated, _ = self.model_force(activation)
            off = np.flatnonzero(
                (np.abs(residual) > tolerance) & (np.abs(forces - interpolated).max(axis=1) > 0)
            )
            if off.size == 0:
                break
            self.shift[off] += forces[off] - interpolated[off]
            activation = self.solve(activation, off)
            forces[off] = equilibrium_tendon_forces(
                pose, muscles, activation[off], angle[off], velocity[off]
            )
            residual[off] = self.torque[off] - (self.moment_arms[off] * forces[off]).sum(axis=1)
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
    load = load_body if load_body is not None and model.getBodySet().contains(load_body) else None
    if load is not None:
        original = model.getBodySet().get(load).getMass()
        set_load_mass(model, 0.0, load)
        pose.reinitialize()
    tau0 = inverse_dynamics(pose, q, qd, qdd)
    coef0, *_ = np.linalg.lstsq(design, tau0, rcond=None)
    residual = np.abs(design @ coef0 - tau0).max()
    coef1 = np.zeros(3)
    if load is not None:
        set_load_mass(model, 1.0, load)
        pose.reinitialize()
        tau1 = inverse_dynamics(pose, q, qd, qdd) - tau0
        coef1, *_ = np.linalg.lstsq(design, tau1, rcond=None)
        residual = max(residual, np.abs(design @ coef1 - tau1).max())
        set_load_mass(model, original, load)
        pose.reinitialize()
    return {
        "inertia": coef0[0],
        "gravity_cos": coef0[1],
        "gravity_sin": coef0[2],
        "load_inertia": coef1[0],
        "load_gravity_cos": coef1[1],
        "load_gravity_sin": coef1[2],
        "has_load": load is not None,
        "max_residual": float(residual),
    }
