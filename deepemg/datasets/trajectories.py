"""Elbow flexion-extension trials with exact derivatives.

``minimum_jerk_trial`` (the default data set's motion) and, for the harder scenarios
(:func:`deepemg.datasets.make_scenario`), ``random_trial`` (band-limited random motion),
``sinusoid_holds_trial`` (half-cosine moves between holds) and ``ballistic_trial`` (fast
minimum-jerk flexions and extensions). Every function returns time (s), angle (rad), velocity
(rad/s) and acceleration (rad/s²), the derivatives analytic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "MOTIONS",
    "ballistic_trial",
    "minimum_jerk_trial",
    "motion_trial",
    "random_trial",
    "sinusoid_holds_trial",
]


_Trial = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_Profile = Callable[[float, float, float, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _minimum_jerk(
    start: float, end: float, duration: float, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    n = round(duration * rate)
    time = np.arange(n) / rate
    low_deg, high_deg = angle_range_deg
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
    return (time, *_segments(time, moves, _minimum_jerk))


def _segments(
    time: np.ndarray, moves: Sequence[tuple[float, float, float]], profile: _Profile
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill angle, velocity, acceleration from ``moves`` (seconds, from, to), back to back.

    ``profile(start, end, length, t)`` gives the position, velocity and acceleration of one
    move at local times ``t``; a hold has ``start == end``.
    """
    n = time.size
    angle, velocity, acceleration = np.empty(n), np.empty(n), np.empty(n)
    start_time = 0.0
    for length, start, end in moves:
        inside = (time >= start_time) & (time < start_time + length)
        if length > 0 and inside.any():
            q, qd, qdd = profile(start, end, length, time[inside] - start_time)
            angle[inside], velocity[inside], acceleration[inside] = q, qd, qdd
        start_time += length
    return angle, velocity, acceleration


def random_trial(
    rng: np.random.Generator,
    duration: float = 5.0,
    rate: float = 100.0,
    angle_range_deg: tuple[float, float] = (5.0, 120.0),
    n_components: tuple[int, int] = (8, 15),
    frequency_range: tuple[float, float] = (0.1, 1.0),
    span_fraction: tuple[float, float] = (0.6, 1.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Band-limited random motion: a sum of sinusoids mapped into the angle range.

    ``s(t) = sum_i A_i sin(2 pi f_i t + phi_i)`` with 8-15 components (``n_components``),
    frequencies uniform in ``frequency_range`` (Hz), phases uniform and amplitudes
    ``A_i = u_i / f_i`` (``u_i`` uniform in [0.5, 1], so every component moves about as fast).
    The angle is the affine image of ``s`` whose samples span a random fraction
    (``span_fraction``) of ``angle_range_deg``, placed at random inside it; velocity and
    acceleration are the analytic derivatives (the same affine scale).

    Examples
    --------
    >>> import numpy as np
    >>> t, q, qd, qdd = random_trial(np.random.default_rng(0))
    >>> bool(np.degrees(q).min() >= 5 - 1e-9 and np.degrees(q).max() <= 120 + 1e-9)
    True
    """
    n = round(duration * rate)
    time = np.arange(n) / rate
    count = int(rng.integers(n_components[0], n_components[1] + 1))
    frequency = rng.uniform(*frequency_range, count)
    phase = rng.uniform(0.0, 2 * np.pi, count)
    amplitude = rng.uniform(0.5, 1.0, count) / frequency
    omega = 2 * np.pi * frequency
    argument = omega * time[:, None] + phase
    s = (amplitude * np.sin(argument)).sum(axis=1)
    ds = (amplitude * omega * np.cos(argument)).sum(axis=1)
    dds = -(amplitude * omega**2 * np.sin(argument)).sum(axis=1)
    low, high = np.radians(angle_range_deg[0]), np.radians(angle_range_deg[1])
    span = rng.uniform(*span_fraction) * (high - low)
    bottom = low + rng.uniform(0.0, 1.0) * (high - low - span)
    scale = span / (s.max() - s.min())
    angle = bottom + scale * (s - s.min())
    return time, np.clip(angle, low, high), scale * ds, scale * dds


def _half_cosine(
    start: float, end: float, length: float, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position, velocity and acceleration of ``start + (end - start)(1 - cos(pi t/T))/2``."""
    delta, w = end - start, np.pi / length
    return (
        start + 0.5 * delta * (1.0 - np.cos(w * t)),
        0.5 * delta * w * np.sin(w * t),
        0.5 * delta * w * w * np.cos(w * t),
    )


def sinusoid_holds_trial(
    rng: np.random.Generator,
    duration: float = 5.0,
    rate: float = 100.0,
    angle_range_deg: tuple[float, float] = (5.0, 120.0),
    move_time: tuple[float, float] = (0.6, 2.0),
    hold_time: tuple[float, float] = (0.2, 1.0),
    min_amplitude_deg: float = 20.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Half-cosine moves between random angles, with holds in between.

    Each move goes to an angle drawn uniformly in ``angle_range_deg`` at least
    ``min_amplitude_deg`` away, in ``move_time`` s, along ``(1 - cos)/2``; holds last
    ``hold_time`` s. The velocity is continuous, the acceleration jumps at the start and end of
    every move (a half-cosine starts and stops with a finite acceleration), both analytic.

    Examples
    --------
    >>> import numpy as np
    >>> t, q, qd, qdd = sinusoid_holds_trial(np.random.default_rng(0))
    >>> bool(np.abs(np.gradient(q, t) - qd)[1:-1].max() < 0.05)
    True
    """
    n = round(duration * rate)
    time = np.arange(n) / rate
    low, high = angle_range_deg
    current = rng.uniform(low, high)
    moves = [(rng.uniform(*hold_time), current, current)]
    while sum(m[0] for m in moves) < duration:
        choices = [
            (a, b)
            for a, b in ((low, current - min_amplitude_deg), (current + min_amplitude_deg, high))
            if b > a
        ]
        widths = np.array([b - a for a, b in choices])
        a, b = choices[int(rng.choice(len(choices), p=widths / widths.sum()))]
        target = rng.uniform(a, b)
        moves.append((rng.uniform(*move_time), current, target))
        moves.append((rng.uniform(*hold_time), target, target))
        current = target
    moves = [(length, np.radians(a), np.radians(b)) for length, a, b in moves]
    return (time, *_segments(time, moves, _half_cosine))


MINIMUM_JERK_PEAK_ACCELERATION = 10.0 * np.sqrt(3.0) / 3.0
"""Peak acceleration of a minimum-jerk move of amplitude D in T seconds, in units of D/T²."""


def ballistic_trial(
    rng: np.random.Generator,
    duration: float = 5.0,
    rate: float = 100.0,
    angle_range_deg: tuple[float, float] = (5.0, 120.0),
    amplitude_deg: tuple[float, float] = (40.0, 90.0),
    move_time: tuple[float, float] = (0.25, 0.5),
    hold_time: tuple[float, float] = (0.3, 1.0),
    max_acceleration: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fast minimum-jerk flexions and extensions separated by holds.

    Flexions and extensions alternate; each covers ``amplitude_deg`` (as far as the range
    allows) in ``move_time`` s, so peak velocities reach 10 rad/s and the end of a flexion is
    braked by the extensors. With ``max_acceleration`` (rad/s²) a move is slowed down until its
    peak acceleration (5.77 D/T²) stays below it (heavy loads are moved less briskly).

    Examples
    --------
    >>> import numpy as np
    >>> t, q, qd, qdd = ballistic_trial(np.random.default_rng(0))
    >>> bool(np.abs(qd).max() > 4.0)
    True
    """
    n = round(duration * rate)
    time = np.arange(n) / rate
    low, high = angle_range_deg
    current = rng.uniform(low, low + 0.25 * (high - low))
    moves = [(rng.uniform(*hold_time), current, current)]
    flexing = True
    while sum(m[0] for m in moves) < duration:
        room = (high - current) if flexing else (current - low)
        amplitude = min(rng.uniform(*amplitude_deg), room)
        target = current + amplitude if flexing else current - amplitude
        length = rng.uniform(*move_time)
        if max_acceleration is not None:
            need = np.sqrt(
                MINIMUM_JERK_PEAK_ACCELERATION * np.radians(amplitude) / max_acceleration
            )
            length = max(length, float(need))
        moves.append((length, current, target))
        moves.append((rng.uniform(*hold_time), target, target))
        current, flexing = target, not flexing
    moves = [(length, np.radians(a), np.radians(b)) for length, a, b in moves]

    def profile(
        start: float, end: float, length: float, t: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _minimum_jerk(start, end, length, t)

    return (time, *_segments(time, moves, profile))


MOTIONS: dict[str, Callable[..., _Trial]] = {
    "minimum_jerk": minimum_jerk_trial,
    "random": random_trial,
    "sinusoid_holds": sinusoid_holds_trial,
    "ballistic": ballistic_trial,
}
"""Motion kinds by name (``make_scenario``'s ``motion`` key)."""


def motion_trial(
    kind: str,
    rng: np.random.Generator,
    duration: float,
    rate: float,
    angle_range_deg: tuple[float, float],
    **options: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One trial of motion ``kind`` (a key of :data:`MOTIONS`) within ``angle_range_deg``."""
    if kind not in MOTIONS:
        raise ValueError(f"Unknown motion {kind!r}; the motions are {sorted(MOTIONS)}.")
    return MOTIONS[kind](rng, duration, rate, angle_range_deg, **options)
