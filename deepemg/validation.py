"""Checks of the sequence arrays every deepemg estimator takes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from . import ELBOW_CHANNELS

__all__ = ["channel_names", "check_sequences"]


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
