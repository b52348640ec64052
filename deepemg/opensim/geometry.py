"""Musculotendon lengths and moment arms from OpenSim, and their piecewise-polynomial fit."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .model import ModelPose, muscle_handles

__all__ = ["PathFit", "fit_path_geometry", "muscles_crossing", "sample_path_geometry"]


def sample_path_geometry(
    pose: ModelPose, muscles: list[str], angles: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Musculotendon length (m) and moment arm (m) of each muscle at each angle, from OpenSim.

    Parameters
    ----------
    pose : ModelPose
        The posed model.
    muscles : list of str
        Muscle names.
    angles : array of shape (n_angles,)
        Coordinate values (rad).

    Returns
    -------
    lengths, moment_arms : arrays of shape (n_angles, n_muscles)
        OpenSim's ``getLength`` and ``computeMomentArm`` (positive for flexors of a flexion
        coordinate).
    """
    model, state = pose.model, pose.state
    handles = muscle_handles(model, muscles)
    angles = np.asarray(angles, dtype=float)
    lengths = np.empty((angles.size, len(muscles)))
    moment_arms = np.empty_like(lengths)
    for i, angle in enumerate(angles):
        pose.set(angle)
        model.realizePosition(state)
        for j, muscle in enumerate(handles):
            lengths[i, j] = muscle.getLength(state)
            moment_arms[i, j] = muscle.computeMomentArm(state, pose.coordinate)
    return lengths, moment_arms


def muscles_crossing(pose: ModelPose, muscles: list[str], min_moment_arm: float = 1e-4) -> list:
    """The muscles of ``muscles`` whose moment arm exceeds ``min_moment_arm`` (m), in order.

    The moment arm is about the posed coordinate, checked at 61 angles over its range.
    """
    low, high = pose.range
    _, arms = sample_path_geometry(pose, muscles, np.linspace(low, high, 61))
    return [n for n, r in zip(muscles, np.abs(arms).max(axis=0), strict=True) if r > min_moment_arm]


def _hermite(
    x0: np.ndarray,
    x1: np.ndarray,
    y0: np.ndarray,
    y1: np.ndarray,
    s0: np.ndarray,
    s1: np.ndarray,
    x: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Cubic Hermite value and derivative on [x0, x1] (numpy; used to test the fit)."""
    h = x1 - x0
    t = (x - x0) / h
    t2, t3 = t * t, t * t * t
    value = (
        (2 * t3 - 3 * t2 + 1) * y0
        + (t3 - 2 * t2 + t) * h * s0
        + (-2 * t3 + 3 * t2) * y1
        + (t3 - t2) * h * s1
    )
    slope = (
        (6 * t2 - 6 * t) * y0
        + (3 * t2 - 4 * t + 1) * h * s0
        + (-6 * t2 + 6 * t) * y1
        + (3 * t2 - 2 * t) * h * s1
    ) / h
    return value, slope


@dataclass
class PathFit:
    """Knots of a cubic Hermite fit of musculotendon length along one coordinate.

    Between knots the length is a cubic polynomial of the angle and the moment arm its
    negative derivative, so ``moment_arm = -d musculotendon_length / d angle`` holds exactly.
    Knots are placed adaptively until the fit agrees with OpenSim at the midpoint of every
    interval, which also isolates kinks (conditional via points, wrap objects that let go).

    Attributes
    ----------
    knots : array (n_knots,)
        Coordinate values (rad), increasing.
    lengths, moment_arms : arrays (n_knots, n_muscles)
        OpenSim's musculotendon length and moment arm (m) at the knots.
    max_length_error, max_moment_arm_error : arrays (n_muscles,)
        Largest absolute difference from OpenSim (m) on a check grid between the knots.
    """

    knots: np.ndarray
    lengths: np.ndarray
    moment_arms: np.ndarray
    max_length_error: np.ndarray = field(default_factory=lambda: np.zeros(0))
    max_moment_arm_error: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def evaluate(self, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Length and moment arm (m) of the fit at ``angles`` (rad), shapes (n, n_muscles)."""
        angles = np.asarray(angles, dtype=float)
        i = np.clip(np.searchsorted(self.knots, angles) - 1, 0, self.knots.size - 2)
        x0, x1 = self.knots[i, None], self.knots[i + 1, None]
        value, slope = _hermite(
            x0,
            x1,
            self.lengths[i],
            self.lengths[i + 1],
            -self.moment_arms[i],
            -self.moment_arms[i + 1],
            angles[:, None],
        )
        return value, -slope


def fit_path_geometry(
    pose: ModelPose,
    muscles: list[str],
    angle_range: tuple[float, float] | None = None,
    step: float = np.radians(2.0),
    length_tolerance: float = 1e-5,
    moment_arm_tolerance: float = 5e-4,
    min_step: float = 1e-6,
    max_knots: int = 5000,
) -> PathFit:
    """Fit musculotendon length and moment arm of ``muscles`` along the posed coordinate.

    Parameters
    ----------
    pose : ModelPose
        The posed model.
    muscles : list of str
        Muscles to fit.
    angle_range : (float, float), optional
        Range (rad); defaults to the coordinate's range in the model.
    step : float, default=2 degrees
        Initial knot spacing (rad).
    length_tolerance, moment_arm_tolerance : float
        Largest accepted midpoint error in length and moment arm (m); intervals are halved
        until both hold or the interval is narrower than ``min_step`` (rad). OpenSim's moment
        arm differs from the derivative of its own path length by up to ~0.3 mm where paths
        wrap, so tolerances much tighter than that cannot be met.
    max_knots : int, default=5000
        Stop refining past this many knots (the error is still measured and reported).

    Returns
    -------
    PathFit
        The knots, with the fit error measured on a grid 4x finer than the knots.

    Examples
    --------
    >>> from deepemg.opensim import ELBOW_MODEL_PATH, ModelPose, load_model, fit_path_geometry
    >>> pose = ModelPose(load_model(ELBOW_MODEL_PATH), "r_elbow_flex")
    >>> fit = fit_path_geometry(pose, ["BRA"])
    >>> bool(fit.max_moment_arm_error.max() < 1e-3)
    True
    """
    low, high = angle_range if angle_range is not None else pose.range
    if not low < high:
        raise ValueError(f"angle_range must be increasing, got ({low}, {high}).")
    n = max(int(np.ceil((high - low) / step)), 2)
    knots = np.linspace(low, high, n + 1)
    lengths, arms = sample_path_geometry(pose, muscles, knots)
    while True:
        mids = 0.5 * (knots[:-1] + knots[1:])
        wide = np.diff(knots) > min_step
        if not wide.any() or knots.size >= max_knots:
            break
        mids = mids[wide]
        fit = PathFit(knots, lengths, arms)
        want_l, want_r = sample_path_geometry(pose, muscles, mids)
        got_l, got_r = fit.evaluate(mids)
        bad = (np.abs(got_l - want_l).max(axis=1) > length_tolerance) | (
            np.abs(got_r - want_r).max(axis=1) > moment_arm_tolerance
        )
        if not bad.any():
            break
        knots = np.concatenate([knots, mids[bad]])
        lengths = np.concatenate([lengths, want_l[bad]])
        arms = np.concatenate([arms, want_r[bad]])
        order = np.argsort(knots)
        knots, lengths, arms = knots[order], lengths[order], arms[order]
    fit = PathFit(knots, lengths, arms)
    check = np.linspace(low, high, 4 * knots.size + 1)
    want_l, want_r = sample_path_geometry(pose, muscles, check)
    got_l, got_r = fit.evaluate(check)
    fit.max_length_error = np.abs(got_l - want_l).max(axis=0)
    fit.max_moment_arm_error = np.abs(got_r - want_r).max(axis=0)
    return fit
