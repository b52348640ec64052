"""Smooth elbow flexion-extension trials with exact derivatives (minimum-jerk segments)."""

from __future__ import annotations

import numpy as np

__all__ = ["minimum_jerk_trial"]


def _minimum_jerk(start: float, end: float, duration: float, t: np.ndarray):
    """Position, velocity and acceleration of a minimum-jerk move at times ``t`` in [0, T]."""
    s = np.clip(t / duration, 0.0, 1.0)
    delta = end - start
    position = start + delta * (10 * s**3 - 15 * s**4 + 6 * s**5)
    velocity = delta * (30 * s**2 - 60 * s**3 + 30 * s**4) / duration
    acceleration = delta * (60 * s - 180 * s**2 + 120 * s**3) / duration**2
    return position, velocity, acceleration


def minimum_jerk_trial(
    rng: np.random.Generator,
    duration: float = 5.0,
    rate: float = 100.0,
    angle_range_deg: tuple[float, float] = (0.0, 140.0),
    period_range: tuple[float, float] = (1.5, 4.0),
    max_hold: float = 0.8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A flexion-extension trial: rest, flex, hold, extend, hold, ... until ``duration``.

    Each cycle draws a low angle, a high angle (amplitude at least 30 degrees, all within
    ``angle_range_deg``), a period in ``period_range`` (s; half of it to flex, half to extend)
    and holds of up to ``max_hold`` s at the top and bottom. Moves are minimum-jerk, so angle,
    velocity and acceleration are exact and continuous.

    Returns
    -------
    time (s), angle (rad), velocity (rad/s), acceleration (rad/s²): arrays of
    ``round(duration * rate)`` samples.

    Examples
    --------
    >>> import numpy as np
    >>> t, q, qd, qdd = minimum_jerk_trial(np.random.default_rng(0))
    >>> t.shape, bool(np.degrees(q).min() >= 0 and np.degrees(q).max() <= 140)
    ((500,), True)
    """
    n = int(round(duration * rate))
    time = np.arange(n) / rate
    low_deg, high_deg = angle_range_deg
    angle = np.empty(n)
    velocity = np.empty(n)
    acceleration = np.empty(n)
    current = np.radians(rng.uniform(low_deg + 5.0, low_deg + 35.0))
    moves = [(rng.uniform(0.1, max_hold), current, current)]  # (seconds, from, to)

    def move_to(end: float) -> None:
        nonlocal current
        moves.append((rng.uniform(*period_range) / 2, current, end))
        moves.append((rng.uniform(0.0, max_hold), end, end))
        current = end

    while sum(m[0] for m in moves) < duration:
        move_to(np.radians(rng.uniform(max(np.degrees(current) + 30.0, 60.0), high_deg)))
        move_to(np.radians(rng.uniform(low_deg + 5.0, np.degrees(current) - 30.0)))
    starts = np.cumsum([0.0] + [m[0] for m in moves[:-1]])
    segments = [(t0, *move) for t0, move in zip(starts, moves, strict=True)]
    for start_time, length, start, end in segments:
        inside = (time >= start_time) & (time < start_time + length)
        if length <= 0 or not inside.any():
            continue
        q, qd, qdd = _minimum_jerk(start, end, length, time[inside] - start_time)
        angle[inside], velocity[inside], acceleration[inside] = q, qd, qdd
    return time, angle, velocity, acceleration
