"""What the muscle-law tests share: random muscles, and a law's gradient check."""

from __future__ import annotations

import torch

MUSCLE_RANGES = (
    (0.1, 1.0),  # activation
    (0.28, 0.33),  # musculotendon length (m)
    (-0.3, 0.3),  # musculotendon velocity (m/s)
    (200.0, 800.0),  # max isometric force (N)
    (0.08, 0.12),  # optimal fibre length (m)
    (0.18, 0.21),  # tendon slack length (m)
    (0.0, 0.3),  # pennation at the optimal length (rad)
)
"""A law's positional inputs, ``(low, high)`` each: the elbow's muscles, roughly."""


def random_inputs(generator: torch.Generator, n: int, ranges=MUSCLE_RANGES) -> tuple:
    """One float64 tensor of ``n`` uniform values per ``(low, high)``, each requiring grad."""

    def rand(low, high):
        x = low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)
        return x.requires_grad_(True)

    return tuple(rand(low, high) for low, high in ranges)


def assert_gradients(force, inputs, **gradcheck) -> None:
    """``force``'s gradients against finite differences (float64), and finite in float32.

    ``gradcheck`` goes to :func:`torch.autograd.gradcheck` (e.g. ``fast_mode=True``); in float32
    the output keeps its dtype and every input that gets a gradient gets a finite one.
    """
    assert torch.autograd.gradcheck(force, inputs, eps=1e-7, atol=1e-5, rtol=1e-4, **gradcheck)
    f32 = [x.detach().float().requires_grad_(True) for x in inputs]
    out = force(*f32)
    out.sum().backward()
    assert out.dtype == torch.float32
    assert all(torch.isfinite(x.grad).all() for x in f32 if x.grad is not None)
