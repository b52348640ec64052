"""Rigid-tendon Hill-type muscle with constant-width pennation (DeGroote-Fregly 2016 curves)."""

from __future__ import annotations

import torch

from .curves import active_force_length, force_velocity, passive_force_length

__all__ = ["rigid_tendon_force"]


def rigid_tendon_force(
    activation: torch.Tensor,
    musculotendon_length: torch.Tensor,
    musculotendon_velocity: torch.Tensor,
    max_isometric_force: torch.Tensor,
    optimal_fiber_length: torch.Tensor,
    tendon_slack_length: torch.Tensor,
    pennation_angle: torch.Tensor,
    max_contraction_velocity: torch.Tensor | float = 10.0,
    fiber_damping: torch.Tensor | float = 0.01,
    passive_fiber_strain: torch.Tensor | float = 0.6,
    active_force_width_scale: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """Tendon force (N) of a rigid-tendon DeGrooteFregly2016 muscle, as OpenSim computes it.

    ``l_m = sqrt((l_mt - l_ts)^2 + (l_opt sin phi0)^2)``, ``cos phi = (l_mt - l_ts) / l_m``,
    ``v~ = v_mt cos phi / (v_max l_opt)`` and
    ``F = F0 (a fL(l_m / l_opt) fV(v~) + fPE(l_m / l_opt) + damping v~) cos phi``.

    Parameters
    ----------
    activation : torch.Tensor
        Activation in [0, 1], shape ``(..., n_muscles)``.
    musculotendon_length : torch.Tensor
        Length (m), same shape.
    musculotendon_velocity : torch.Tensor
        Lengthening velocity (m/s), same shape.
    max_isometric_force, optimal_fiber_length, tendon_slack_length, pennation_angle : torch.Tensor
        Per-muscle parameters (N, m, m, rad at optimal fibre length), broadcastable.
    max_contraction_velocity : float or torch.Tensor, default=10
        Optimal fibre lengths per second.
    fiber_damping, passive_fiber_strain, active_force_width_scale : float or torch.Tensor
        OpenSim's ``fiber_damping``, ``passive_fiber_strain_at_one_norm_force`` and
        ``active_force_width_scale``.

    Returns
    -------
    torch.Tensor
        Force along the tendon (N), shape of ``activation``.

    Examples
    --------
    >>> import torch
    >>> f = rigid_tendon_force(torch.tensor(1.0), torch.tensor(0.3), torch.tensor(0.0),
    ...                        torch.tensor(100.0), torch.tensor(0.1), torch.tensor(0.2),
    ...                        torch.tensor(0.0), fiber_damping=0.0)
    >>> round(float(f), 2)  # optimal length, isometric: F0 plus 1.8% passive force
    101.82
    """
    width = optimal_fiber_length * torch.sin(pennation_angle)
    along = musculotendon_length - tendon_slack_length
    fiber_length = torch.sqrt(along * along + width * width)
    cos_pennation = along / fiber_length
    norm_length = fiber_length / optimal_fiber_length
    norm_velocity = (
        musculotendon_velocity * cos_pennation / (max_contraction_velocity * optimal_fiber_length)
    )
    fiber_force = max_isometric_force * (
        activation
        * active_force_length(norm_length, active_force_width_scale)
        * force_velocity(norm_velocity)
        + passive_force_length(norm_length, passive_fiber_strain)
        + fiber_damping * norm_velocity
    )
    return fiber_force * cos_pennation
