"""Neural activation dynamics: EMG excitation to muscle activation (Lloyd & Besier 2003).

``u(t) = alpha e(t - d) - beta1 u(t-1) - beta2 u(t-2)`` with ``beta1 = g1 + g2``,
``beta2 = g1 g2`` and unit gain ``alpha = 1 + beta1 + beta2``, then the nonlinear shape
``a = (exp(A u) - 1) / (exp(A) - 1)``.

The recursion is a linear filter, so it is applied as one FFT convolution with its (truncated)
impulse response: no Python loop over time steps, cost O(T log T) for T steps, and exact up to
the truncation tolerance. The delay ``d`` may be fractional: the filter output is linearly
interpolated between the two neighbouring whole-sample delays, so the delay is differentiable.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["excitation_to_activation", "neural_activation", "nonlinear_activation"]


def _kernel_length(pole: float, tolerance: float) -> int:
    """Steps after which the double-pole impulse response ``(n + 1) p^n`` stays below tolerance."""
    if pole <= 0.0:
        return 3
    n = np.arange(1, 100_000)
    below = (n + 1) * pole**n < tolerance
    return int(n[np.argmax(below)]) + 1 if below.any() else 100_000


def neural_activation(
    excitation: torch.Tensor,
    g1: torch.Tensor | float,
    g2: torch.Tensor | float,
    delay: torch.Tensor | float,
    rate: float,
    tolerance: float = 1e-9,
) -> torch.Tensor:
    """Second-order recursive filter with electromechanical delay and unit gain.

    Parameters
    ----------
    excitation : torch.Tensor
        EMG envelope in [0, 1], shape ``(..., n_timesteps, n_muscles)`` (time on axis -2).
    g1, g2 : float or torch.Tensor
        Filter coefficients with ``|g| < 1`` (negative values give a smooth low-pass),
        broadcastable to ``(..., n_muscles)``.
    delay : float or torch.Tensor
        Electromechanical delay (s), >= 0, broadcastable to ``(..., n_muscles)``.
    rate : float
        Sampling rate (Hz).
    tolerance : float, default=1e-9
        The impulse response is truncated once it falls below this.

    Returns
    -------
    torch.Tensor
        Neural activation ``u``, same shape and dtype as ``excitation``. Before the first sample
        the excitation is taken as constant (equal to the first sample), so a constant input
        gives the same constant output at every step (unit gain, no start-up transient).

    Examples
    --------
    >>> import torch
    >>> e = torch.zeros(1, 10, 1, dtype=torch.float64); e[0, 5:] = 1.0
    >>> u = neural_activation(e, -0.5, -0.5, delay=0.02, rate=100.0)  # 2 steps of delay
    >>> [round(float(v), 4) + 0.0 for v in u[0, 6:, 0]]
    [0.0, 0.25, 0.5, 0.6875]
    """
    dtype, device = excitation.dtype, excitation.device
    n_steps, n_muscles = excitation.shape[-2], excitation.shape[-1]
    batch = excitation.shape[:-2]
    g1 = torch.as_tensor(g1, dtype=dtype, device=device).expand(*batch, n_muscles)
    g2 = torch.as_tensor(g2, dtype=dtype, device=device).expand(*batch, n_muscles)
    delay = torch.as_tensor(delay, dtype=dtype, device=device)
    delay_steps = delay.expand(*batch, n_muscles) * rate
    if bool((g1.abs() >= 1).any() | (g2.abs() >= 1).any()):
        raise ValueError("g1 and g2 must satisfy |g| < 1 for a stable activation filter.")
    if bool((delay_steps < 0).any()):
        raise ValueError("delay must be >= 0 s.")

    pole = float(torch.maximum(g1.detach().abs().max(), g2.detach().abs().max()))
    n_kernel = _kernel_length(pole, tolerance)
    max_shift = int(math.floor(float(delay_steps.detach().max()))) + 2
    n_pad = n_kernel + max_shift
    n_fft = 1 << int(math.ceil(math.log2(n_pad + n_steps + n_kernel + max_shift)))

    steps = torch.arange(n_kernel, dtype=dtype, device=device)
    # First-order responses p^n with p = -g; their convolution is the second-order response.
    first = torch.pow((-g1).unsqueeze(-1), steps)
    second = torch.pow((-g2).unsqueeze(-1), steps)
    alpha = ((1.0 + g1) * (1.0 + g2)).unsqueeze(-1)
    shifts = torch.arange(max_shift + 1, dtype=dtype, device=device)
    # Linear interpolation between whole-sample delays: a "hat" kernel centred on the delay.
    delay_kernel = torch.relu(1.0 - (shifts - delay_steps.unsqueeze(-1)).abs())

    signal = excitation.transpose(-1, -2)  # (..., n_muscles, n_steps)
    signal = torch.cat([signal[..., :1].expand(*signal.shape[:-1], n_pad), signal], dim=-1)
    spectrum = (
        torch.fft.rfft(signal, n=n_fft)
        * torch.fft.rfft(first, n=n_fft)
        * torch.fft.rfft(second, n=n_fft)
        * torch.fft.rfft(delay_kernel, n=n_fft)
    )
    filtered = torch.fft.irfft(spectrum, n=n_fft)[..., n_pad : n_pad + n_steps] * alpha
    return filtered.transpose(-1, -2)


def nonlinear_activation(
    neural_activation: torch.Tensor, shape_factor: torch.Tensor | float
) -> torch.Tensor:
    """Nonlinear EMG-to-activation shape ``a = (exp(A u) - 1) / (exp(A) - 1)``.

    Parameters
    ----------
    neural_activation : torch.Tensor
        ``u`` in [0, 1], shape ``(..., n_muscles)``.
    shape_factor : float or torch.Tensor
        ``A`` in [-3, 0]; ``A -> 0`` is the identity (handled without dividing by zero).

    Returns
    -------
    torch.Tensor
        Activation in [0, 1], same shape.

    Examples
    --------
    >>> import torch
    >>> round(float(nonlinear_activation(torch.tensor(0.5), -2.0)), 4)
    0.7311
    """
    shape = torch.as_tensor(
        shape_factor, dtype=neural_activation.dtype, device=neural_activation.device
    )
    tiny = 1e-6 if neural_activation.dtype == torch.float64 else 1e-3
    safe = torch.where(shape.abs() < tiny, torch.full_like(shape, -tiny), shape)
    return torch.expm1(safe * neural_activation) / torch.expm1(safe)


def excitation_to_activation(
    excitation: torch.Tensor,
    g1: torch.Tensor | float,
    g2: torch.Tensor | float,
    delay: torch.Tensor | float,
    shape_factor: torch.Tensor | float,
    rate: float,
) -> torch.Tensor:
    """Neural activation followed by the nonlinear shape: EMG envelope to muscle activation.

    See :func:`neural_activation` and :func:`nonlinear_activation` for the parameters.
    The filtered signal is clamped to [0, 1] before the shape (FFT round-off can leave
    values a few ulp outside).
    """
    u = neural_activation(excitation, g1, g2, delay, rate).clamp(0.0, 1.0)
    return nonlinear_activation(u, shape_factor)
