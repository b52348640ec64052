"""Musculotendon length and moment arm as differentiable piecewise cubics of the joint angle."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["PathGeometry"]


class PathGeometry(nn.Module):
    """Cubic Hermite interpolation of musculotendon length over one coordinate.

    Built from OpenSim samples (``deepemg.opensim.fit_path_geometry``): length and moment arm at
    each knot. Between knots, length is a cubic of the angle and the moment arm is exactly its
    negative derivative, so the two are always consistent.

    Parameters
    ----------
    knots : array of shape (n_knots,)
        Increasing angles (rad).
    lengths, moment_arms : arrays of shape (n_knots, n_muscles)
        Musculotendon length and moment arm (m) at the knots.

    Examples
    --------
    >>> import numpy as np, torch
    >>> knots = np.linspace(0.0, 2.0, 5)
    >>> geometry = PathGeometry(knots, 0.3 - 0.02 * knots[:, None], np.full((5, 1), 0.02))
    >>> geometry.moment_arm(torch.tensor([0.7]))
    tensor([[0.0200]])
    """

    def __init__(self, knots, lengths, moment_arms) -> None:
        super().__init__()
        knots = np.asarray(knots, dtype=np.float64)
        if knots.ndim != 1 or knots.size < 2 or np.any(np.diff(knots) <= 0):
            raise ValueError("knots must be a 1-D increasing array of at least 2 angles.")
        self.register_buffer("knots", torch.as_tensor(knots))
        self.register_buffer("lengths", torch.as_tensor(np.asarray(lengths, dtype=np.float64)))
        self.register_buffer("slopes", -torch.as_tensor(np.asarray(moment_arms, dtype=np.float64)))

    def _segment(self, angle: torch.Tensor):
        knots = self.knots.to(angle.dtype)
        index = torch.searchsorted(knots, angle.detach().contiguous()) - 1
        index = index.clamp(0, knots.numel() - 2)
        x0, x1 = knots[index], knots[index + 1]
        width = (x1 - x0).unsqueeze(-1)
        t = ((angle - x0) / (x1 - x0)).unsqueeze(-1)
        lengths, slopes = self.lengths.to(angle.dtype), self.slopes.to(angle.dtype)
        return t, width, lengths[index], lengths[index + 1], slopes[index], slopes[index + 1]

    def musculotendon_length(self, angle: torch.Tensor) -> torch.Tensor:
        """Musculotendon length (m), shape ``angle.shape + (n_muscles,)``."""
        t, h, y0, y1, s0, s1 = self._segment(angle)
        t2, t3 = t * t, t * t * t
        return (
            (2 * t3 - 3 * t2 + 1) * y0
            + (t3 - 2 * t2 + t) * h * s0
            + (-2 * t3 + 3 * t2) * y1
            + (t3 - t2) * h * s1
        )

    def moment_arm(self, angle: torch.Tensor) -> torch.Tensor:
        """Moment arm ``-d length / d angle`` (m), shape ``angle.shape + (n_muscles,)``."""
        t, h, y0, y1, s0, s1 = self._segment(angle)
        t2 = t * t
        slope = (6 * t2 - 6 * t) * (y0 - y1) / h + (3 * t2 - 4 * t + 1) * s0 + (3 * t2 - 2 * t) * s1
        return -slope
