"""Neural activation dynamics: EMG excitation to muscle activation (Lloyd & Besier 2003).

``u(t) = alpha e(t - d) - beta1 u(t-1) - beta2 u(t-2)`` with ``beta1 = g1 + g2``,
``beta2 = g1 g2`` and unit gain ``alpha = 1 + beta1 + beta2``, then the nonlinear shape
``a = (exp(A u) - 1) / (exp(A) - 1)``.

The recursion is a linear filter, so it is applied as FFT convolutions with its impulse
response: no Python loop over time steps, cost O(T log T) for T steps. Before the first sample
the excitation is held at its first value, where the filter is at rest (unit gain), so the
output is that value plus the filtered change from it, which is zero before the first sample:
a response of T steps is then exact for T outputs, whatever the filter's poles or delay, and no
size of the computation depends on a parameter's value (nothing is read back to the host). The
delay ``d`` may be fractional: the signal is linearly interpolated between the two neighbouring
whole-sample delays, so the delay is differentiable.
"""

from __future__ import annotations

import copy

import torch

from ._validation import check_activation_filter

__all__ = [
    "ActivationFilter",
    "excitation_to_activation",
    "neural_activation",
    "nonlinear_activation",
]


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
        Unused, kept for compatibility: the impulse response was once truncated below it;
        it is now exact over the sequence.

    Returns
    -------
    torch.Tensor
        Neural activation ``u``, same shape and dtype as ``excitation``. Before the first sample
        the excitation is taken as constant (equal to the first sample), so a constant input
        gives the same constant output at every step (unit gain, no start-up transient).

    Raises
    ------
    ValueError
        For ``|g1| >= 1`` or ``|g2| >= 1`` (an unstable filter) or a negative delay.

    Examples
    --------
    >>> import torch
    >>> e = torch.zeros(1, 10, 1, dtype=torch.float64); e[0, 5:] = 1.0
    >>> u = neural_activation(e, -0.5, -0.5, delay=0.02, rate=100.0)  # 2 steps of delay
    >>> [round(float(v), 4) + 0.0 for v in u[0, 6:, 0]]
    [0.0, 0.25, 0.5, 0.6875]
    """
    g1, g2, delay_steps = _filter_parameters(excitation, g1, g2, delay, rate)
    check_activation_filter(g1, g2, delay_steps)
    return _filtered(excitation, g1, g2, delay_steps)


def _filter_parameters(excitation, g1, g2, delay, rate):
    """``g1``, ``g2`` and the delay in steps as tensors shaped ``(..., n_muscles)``."""
    dtype, device = excitation.dtype, excitation.device
    shape = excitation.shape[:-2] + excitation.shape[-1:]
    g1 = torch.as_tensor(g1, dtype=dtype, device=device).expand(shape)
    g2 = torch.as_tensor(g2, dtype=dtype, device=device).expand(shape)
    delay = torch.as_tensor(delay, dtype=dtype, device=device)
    return g1, g2, delay.expand(shape) * rate


def _filtered(excitation, g1, g2, delay_steps):
    """:func:`neural_activation` without its checks: the hot path's version.

    The output is the first sample plus the filtered, delayed change from it (zero before the
    first sample, where the filter rests): two linear FFT convolutions of ``2 T`` points.
    """
    n_steps = excitation.shape[-2]
    n_fft = 1 << (2 * n_steps - 1).bit_length()
    signal = excitation.transpose(-1, -2)  # (..., n_muscles, n_steps)
    start = signal[..., :1]
    change = _delayed(signal - start, delay_steps)
    response = _impulse_response(g1, g2, n_steps, n_fft)
    spectrum = torch.fft.rfft(change, n=n_fft) * torch.fft.rfft(response, n=n_fft)
    alpha = ((1.0 + g1) * (1.0 + g2)).unsqueeze(-1)
    filtered = start + alpha * torch.fft.irfft(spectrum, n=n_fft)[..., :n_steps]
    return filtered.transpose(-1, -2)


def _impulse_response(g1, g2, n_steps: int, n_fft: int) -> torch.Tensor:
    """The recursion's first ``n_steps`` impulse-response samples without its gain, ``(..., T)``.

    First-order responses ``p^n`` with ``p = -g``; their convolution (an FFT of ``n_fft``
    points, ``n_fft >= 2 n_steps - 1``) is the second-order response.
    """
    steps = torch.arange(n_steps, dtype=g1.dtype, device=g1.device)
    first = torch.fft.rfft(torch.pow((-g1).unsqueeze(-1), steps), n=n_fft)
    second = torch.fft.rfft(torch.pow((-g2).unsqueeze(-1), steps), n=n_fft)
    return torch.fft.irfft(first * second, n=n_fft)[..., :n_steps]


class ActivationFilter:
    """The neural activation filter of fixed parameters as a linear operator, with its transpose.

    :func:`neural_activation` is linear in the excitation: ``u = L e`` with
    ``L e = e[0] + C (e - e[0])``, ``C`` the causal convolution with the delayed, unit-gain
    impulse response ``h`` (zero before the first sample). This object computes ``h``'s
    spectrum once, then applies ``L`` and its transpose ``L^T`` with one FFT pair each: what a
    solver that linearises the EMG-to-torque map needs (:func:`deepemg.correction.correct_emg`).
    Signals are laid out time last, ``(..., n_muscles, n_steps)``; nothing is checked.

    Parameters
    ----------
    g1, g2 : torch.Tensor
        Filter coefficients, shape ``(..., n_muscles)``, ``|g| < 1``.
    delay_steps : torch.Tensor
        Electromechanical delay in samples (>= 0, may be fractional), same shape.
    n_steps : int
        Length of the signals it filters.

    Attributes
    ----------
    response : torch.Tensor of shape (..., n_muscles, n_steps)
        ``h``, the delayed impulse response with the gain ``(1 + g1)(1 + g2)``.
    energy : torch.Tensor of shape (..., n_muscles)
        ``sum h**2``: the squared norm of each column of ``L`` away from the ends.

    Examples
    --------
    >>> import torch
    >>> g = torch.tensor([[-0.5]], dtype=torch.float64)
    >>> filt = ActivationFilter(g, g, torch.tensor([[2.0]], dtype=torch.float64), 10)
    >>> e = torch.zeros(1, 1, 10, dtype=torch.float64); e[..., 5:] = 1.0
    >>> [round(float(v), 4) + 0.0 for v in filt.apply(e)[0, 0, 6:]]
    [0.0, 0.25, 0.5, 0.6875]
    >>> w = torch.randn(1, 1, 10, dtype=torch.float64)
    >>> bool(torch.isclose((filt.apply(e) * w).sum(), (e * filt.transpose(w)).sum()))
    True
    """

    def __init__(
        self, g1: torch.Tensor, g2: torch.Tensor, delay_steps: torch.Tensor, n_steps: int
    ) -> None:
        self.n_steps = int(n_steps)
        self.n_fft = 1 << (2 * self.n_steps - 1).bit_length()
        alpha = ((1.0 + g1) * (1.0 + g2)).unsqueeze(-1)
        response = alpha * _delayed(
            _impulse_response(g1, g2, self.n_steps, self.n_fft), delay_steps
        )
        self.response = response
        self.energy = (response * response).sum(-1)
        self._spectrum = torch.fft.rfft(response, n=self.n_fft)
        self._rest = 1.0 - torch.cumsum(response, -1)  # 1 - C 1: what the first sample adds

    def astype(self, dtype: torch.dtype) -> ActivationFilter:
        """The same filter computing in ``dtype`` (e.g. float32 for an approximate solve)."""
        other = copy.copy(self)
        complex_dtype = torch.complex64 if dtype == torch.float32 else torch.complex128
        other.response = self.response.to(dtype)
        other.energy = self.energy.to(dtype)
        other._spectrum = self._spectrum.to(complex_dtype)
        other._rest = self._rest.to(dtype)
        return other

    def _causal(self, signal: torch.Tensor) -> torch.Tensor:
        """``C signal``: the causal convolution with :attr:`response`."""
        spectrum = torch.fft.rfft(signal, n=self.n_fft) * self._spectrum
        return torch.fft.irfft(spectrum, n=self.n_fft)[..., : self.n_steps]

    def apply(self, excitation: torch.Tensor) -> torch.Tensor:
        """``L excitation``: neural activation ``(..., n_muscles, n_steps)``, as the filter."""
        start = excitation[..., :1]
        return start + self._causal(excitation - start)

    def transpose(self, signal: torch.Tensor) -> torch.Tensor:
        """``L^T signal``: the adjoint (a time-reversed convolution plus the first sample's)."""
        back = self._causal(signal.flip(-1)).flip(-1)
        first = (signal * self._rest).sum(-1, keepdim=True)
        return torch.cat([back[..., :1] + first, back[..., 1:]], dim=-1)


def _delayed(signal: torch.Tensor, delay_steps: torch.Tensor) -> torch.Tensor:
    """``signal`` (..., n_steps), zero before its start, delayed by ``delay_steps`` (...) >= 0.

    Linear interpolation between the two neighbouring whole-sample delays ``k = floor(d)`` and
    ``k + 1``: ``(1 - f) x[t - k] + f x[t - k - 1]``, differentiable in ``d`` through ``f``.
    """
    n_steps = signal.shape[-1]
    whole = delay_steps.detach().floor().clamp(0, n_steps)
    fraction = (delay_steps - whole).unsqueeze(-1)
    padded = torch.nn.functional.pad(signal, (n_steps + 1, 0))  # n_steps + 1 zeros first
    times = torch.arange(n_steps, device=signal.device) + n_steps + 1
    index = (times - whole.to(torch.long).unsqueeze(-1)).expand(signal.shape)
    now = torch.gather(padded, -1, index)
    before = torch.gather(padded, -1, index - 1)
    return (1.0 - fraction) * now + fraction * before


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


def _excitation_to_activation(excitation, g1, g2, delay, shape_factor, rate):
    """:func:`excitation_to_activation` without the filter's checks (the hot path's)."""
    u = _filtered(excitation, *_filter_parameters(excitation, g1, g2, delay, rate))
    return nonlinear_activation(u.clamp(0.0, 1.0), shape_factor)
