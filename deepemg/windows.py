"""Cutting sequences into overlapping windows and putting window outputs back together."""

from __future__ import annotations

import numpy as np

__all__ = ["from_windows", "to_windows", "window_starts"]


def window_starts(n_timesteps: int, window: int, overlap: float) -> np.ndarray:
    """Start indices of windows of ``window`` steps overlapping by ``overlap``.

    ``overlap`` is a fraction in [0, 1); the last window is aligned with the end so every step
    is covered.

    Examples
    --------
    >>> window_starts(10, 4, 0.5).tolist()
    [0, 2, 4, 6]
    """
    if window > n_timesteps:
        raise ValueError(
            f"sequences of {n_timesteps} steps are shorter than the window of {window} steps; "
            "use a smaller window or longer sequences."
        )
    stride = max(round(window * (1.0 - overlap)), 1)
    starts = list(range(0, n_timesteps - window + 1, stride))
    if starts[-1] != n_timesteps - window:
        starts.append(n_timesteps - window)
    return np.asarray(starts)


def to_windows(array: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """``(n, T, ...)`` -> ``(n * len(starts), window, ...)``, sequence-major."""
    return np.stack([array[:, s : s + window] for s in starts], axis=1).reshape(
        (-1, window, *array.shape[2:])
    )


def from_windows(windows: np.ndarray, starts: np.ndarray, n_timesteps: int) -> np.ndarray:
    """Average overlapping window outputs back into ``(n, n_timesteps, ...)``."""
    window = windows.shape[1]
    per_sequence = windows.reshape((-1, len(starts), *windows.shape[1:]))
    total = np.zeros((per_sequence.shape[0], n_timesteps, *windows.shape[2:]))
    count = np.zeros((1, n_timesteps) + (1,) * (windows.ndim - 2))
    for k, s in enumerate(starts):
        total[:, s : s + window] += per_sequence[:, k]
        count[:, s : s + window] += 1
    return total / count
