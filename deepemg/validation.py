"""Checks of the sequence arrays every deepemg estimator takes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import sparse

from . import ELBOW_CHANNELS

__all__ = [
    "INPUT_CHANNELS",
    "TORQUE_CHANNEL",
    "channel_names",
    "check_sequences",
    "measured_r2",
    "torque_target",
]

INPUT_CHANNELS = tuple(ELBOW_CHANNELS[:4])
"""Channels every estimator needs; angle (rad), velocity (rad/s), acceleration (rad/s²), load."""
TORQUE_CHANNEL = "elbow_torque"
"""The inverse-dynamics torque channel (N·m); computed from the kinematics when absent."""


def channel_names(channels: Sequence[str] | None) -> list[str]:
    """The estimator's channel names: ``channels``, or :data:`deepemg.ELBOW_CHANNELS`."""
    return list(channels) if channels is not None else list(ELBOW_CHANNELS)


def check_sequences(X, names: Sequence[str], required: Sequence[str] = ()) -> np.ndarray:
    """``X`` as a float64 ``(n_sequences, n_timesteps, n_channels)`` array, or a clear error.

    Rejects sparse and complex input, other shapes (saying that channels go last), a channel
    count that does not match ``names``, and missing ``required`` channels.

    Examples
    --------
    >>> import numpy as np
    >>> check_sequences(np.zeros((2, 5, 2)), ["a", "b"]).shape
    (2, 5, 2)
    """
    if sparse.issparse(X):
        raise TypeError(
            "sparse X is not supported: pass a dense array (n_sequences, n_timesteps, n_channels)."
        )
    X = np.asarray(X)
    if np.iscomplexobj(X):
        raise ValueError("Complex data not supported: X must hold real numbers.")
    X = X.astype(np.float64)
    if X.ndim != 3 and not np.isfinite(X).all():
        raise ValueError("X holds NaN or infinite values; interpolate or drop them.")
    if X.ndim != 3:
        raise ValueError(
            f"X must be 3-D (n_sequences, n_timesteps, n_channels), channels last, got shape "
            f"{X.shape}. (sktime and braindecode put channels first: use X.transpose(0, 2, 1).)"
        )
    names = list(names)
    if X.shape[2] != len(names):
        raise ValueError(
            f"X has {X.shape[2]} channels but `channels` names {len(names)}: {names}. "
            "Pass channels= naming X's last axis."
        )
    missing = [c for c in required if c not in names]
    if missing:
        raise ValueError(f"X lacks the channels {missing}; its channels are {names}.")
    return X


def torque_target(X: np.ndarray, names: Sequence[str], physics) -> np.ndarray:
    """Inverse-dynamics torque (N·m) per step: ``X``'s torque channel, or, without one, the
    rigid-body inverse dynamics of ``physics`` (a MusculoskeletalModel) from the kinematics."""
    names = list(names)
    if TORQUE_CHANNEL in names:
        return X[..., names.index(TORQUE_CHANNEL)]
    kinematics = (torch.tensor(X[..., names.index(c)]) for c in INPUT_CHANNELS)
    with torch.no_grad():
        return physics.inverse_dynamics(*kinematics).numpy()


def measured_r2(y, prediction: np.ndarray) -> float:
    """R² over the muscles ``y`` measures, variance-weighted, each on its non-NaN steps.

    ``1 - sum_j SSE_j / sum_j SST_j`` with ``SST_j`` the sum of squares of muscle ``j`` about
    its own mean (time flattened): scikit-learn's ``multioutput="variance_weighted"``, so that
    a nearly silent muscle (the triceps while lifting) does not dominate the score as it would
    in a plain mean of per-muscle R².

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[[0.1, np.nan], [0.3, np.nan], [0.5, np.nan]]])
    >>> measured_r2(y, np.array([[[0.1, 9.0], [0.3, 9.0], [0.5, 9.0]]]))
    1.0
    >>> y = np.array([[[0.0, 0.10], [1.0, 0.11]]])  # a silent second muscle
    >>> round(measured_r2(y, np.array([[[0.0, 0.0], [1.0, 0.0]]])), 4)  # mean R² would be -220
    0.9558
    """
    y = np.asarray(y, dtype=np.float64)
    prediction = np.asarray(prediction, dtype=np.float64)
    residual = total = 0.0
    for j in range(y.shape[2]):
        measured = ~np.isnan(y[..., j])
        if measured.any():
            truth = y[..., j][measured]
            residual += float(np.sum((truth - prediction[..., j][measured]) ** 2))
            total += float(np.sum((truth - truth.mean()) ** 2))
    if np.isnan(y).all():
        raise ValueError("y has no measured channel to score against.")
    if total == 0.0:  # constant targets: perfect or not, as r2_score scores them
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total
