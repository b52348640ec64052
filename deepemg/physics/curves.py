"""DeGroote-Fregly 2016 muscle curves, exactly as OpenSim 4.6 computes them.

Every function takes torch tensors of any shape and dtype (float32 or float64) and is
differentiable. The constants are those of ``OpenSim::DeGrooteFregly2016Muscle``;
``tests/physics/test_curves.py`` checks each curve against OpenSim's ``calc*`` methods to 1e-10.

References
----------
De Groote F, Kinney AL, Rao AV, Fregly BJ (2016). Evaluation of direct collocation optimal
control problem formulations for solving the muscle redundancy problem. Ann Biomed Eng 44:2922-36.
"""

from __future__ import annotations

import math

import torch

# (b1i, b2i, b3i, b4i) for the three Gaussian-like terms of the active force-length curve.
_ACTIVE_FL = (
    (0.8150671134243542, 1.055033428970575, 0.162384573599574, 0.063303448465465),
    (0.433004984392647, 0.716775413397760, -0.029947116970696, 0.200356847296188),
    (0.1, 1.0, 0.353553390593274, 0.0),
)
# Force-velocity constants d1..d4.
_FV_D1 = -0.3211346127989808
_FV_D2 = -8.149
_FV_D3 = -0.374
_FV_D4 = 0.8825327733249912
_KPE = 4.0
MIN_NORM_FIBER_LENGTH = 0.2
"""Smallest normalised fibre length of OpenSim's DeGrooteFregly2016Muscle (fPE is 0 there)."""
_TENDON_C1, _TENDON_C2, _TENDON_C3 = 0.2, 1.0, 0.2

__all__ = [
    "MIN_NORM_FIBER_LENGTH",
    "active_force_length",
    "force_velocity",
    "passive_force_length",
    "tendon_force_length",
]


def active_force_length(
    norm_fiber_length: torch.Tensor, width_scale: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """Active force-length multiplier fL of a normalised fibre length.

    Parameters
    ----------
    norm_fiber_length : torch.Tensor
        Fibre length divided by the optimal fibre length (dimensionless), any shape.
    width_scale : float or torch.Tensor, default=1.0
        OpenSim's ``active_force_width_scale`` (w >= 1 widens the curve).

    Returns
    -------
    torch.Tensor
        fL, 1.0 at the optimal length (dimensionless), same shape as the input.

    Examples
    --------
    >>> import torch
    >>> round(float(active_force_length(torch.tensor(1.0))), 3)
    1.0
    """
    x = 1.0 + (norm_fiber_length - 1.0) / width_scale
    total = torch.zeros_like(x)
    for b1, b2, b3, b4 in _ACTIVE_FL:
        total = total + b1 * torch.exp(-0.5 * (x - b2) ** 2 / (b3 + b4 * x) ** 2)
    return total


def passive_force_length(
    norm_fiber_length: torch.Tensor, strain_at_one_norm_force: float | torch.Tensor = 0.6
) -> torch.Tensor:
    """Passive force-length multiplier fPE (0 at the minimum fibre length 0.2).

    Parameters
    ----------
    norm_fiber_length : torch.Tensor
        Fibre length over optimal fibre length (dimensionless).
    strain_at_one_norm_force : float or torch.Tensor, default=0.6
        OpenSim's ``passive_fiber_strain_at_one_norm_force`` (e0).

    Returns
    -------
    torch.Tensor
        fPE (dimensionless); 1.0 at a normalised length of ``1 + e0``.

    Examples
    --------
    >>> import torch
    >>> round(float(passive_force_length(torch.tensor(1.6))), 6)
    1.0
    """
    e0 = strain_at_one_norm_force
    if not torch.is_tensor(e0):
        e0 = torch.as_tensor(e0, dtype=norm_fiber_length.dtype, device=norm_fiber_length.device)
    offset = torch.exp(_KPE * (MIN_NORM_FIBER_LENGTH - 1.0) / e0)
    denom = math.exp(_KPE) - offset
    return (torch.exp(_KPE * (norm_fiber_length - 1.0) / e0) - offset) / denom


def force_velocity(norm_fiber_velocity: torch.Tensor) -> torch.Tensor:
    """Force-velocity multiplier fV of the normalised fibre velocity.

    Parameters
    ----------
    norm_fiber_velocity : torch.Tensor
        Fibre velocity over ``max_contraction_velocity * optimal_fiber_length``
        (dimensionless; negative when shortening).

    Returns
    -------
    torch.Tensor
        fV: 1 when isometric, 0 at ``-1`` (maximal shortening), about 1.8 when lengthening fast.

    Examples
    --------
    >>> import torch
    >>> round(float(force_velocity(torch.tensor(0.0))), 4)
    1.0
    """
    z = _FV_D2 * norm_fiber_velocity + _FV_D3
    return _FV_D1 * torch.log(z + torch.sqrt(z * z + 1.0)) + _FV_D4


def tendon_force_length(
    norm_tendon_length: torch.Tensor, strain_at_one_norm_force: float = 0.049
) -> torch.Tensor:
    """Tendon force multiplier fT of the normalised tendon length (compliant tendons only).

    Parameters
    ----------
    norm_tendon_length : torch.Tensor
        Tendon length over tendon slack length (dimensionless).
    strain_at_one_norm_force : float, default=0.049
        OpenSim's ``tendon_strain_at_one_norm_force``.

    Returns
    -------
    torch.Tensor
        fT (dimensionless), 0 at slack length, 1 at ``1 + strain``.

    Examples
    --------
    >>> import torch
    >>> round(float(tendon_force_length(torch.tensor(1.049, dtype=torch.float64))), 6)
    1.0
    """
    k_t = math.log((1.0 + _TENDON_C3) / _TENDON_C1) / (1.0 + strain_at_one_norm_force - _TENDON_C2)
    return _TENDON_C1 * torch.exp(k_t * (norm_tendon_length - _TENDON_C2)) - _TENDON_C3
