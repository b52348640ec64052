"""Activation dynamics against the recursion written out step by step, and closed forms."""

import numpy as np
import pytest
import torch

from deepemg.physics import excitation_to_activation, neural_activation, nonlinear_activation


def recursion(e, g1, g2, delay_steps):
    """u(t) = alpha e(t - d) - beta1 u(t-1) - beta2 u(t-2), started from steady state e(0)."""
    beta1, beta2 = g1 + g2, g1 * g2
    alpha = 1 + beta1 + beta2
    whole, frac = int(np.floor(delay_steps)), delay_steps - np.floor(delay_steps)

    def delayed(t):
        def at(i):
            return e[max(i, 0)]

        return (1 - frac) * at(t - whole) + frac * at(t - whole - 1)

    u = np.empty_like(e)
    u1 = u2 = e[0]
    for t in range(e.size):
        u[t] = alpha * delayed(t) - beta1 * u1 - beta2 * u2
        u2, u1 = u1, u[t]
    return u


@pytest.mark.parametrize(
    ("g1", "g2", "delay"),
    [(-0.6, -0.4, 0.02), (-0.9, -0.1, 0.035), (-0.3, -0.8, 0.0), (-0.95, -0.95, 0.1)],
)
def test_matches_step_by_step_recursion(g1, g2, delay):
    rng = np.random.default_rng(3)
    e = rng.uniform(0, 1, 400)
    got = neural_activation(torch.tensor(e)[:, None], g1, g2, delay, rate=100.0)[:, 0].numpy()
    np.testing.assert_allclose(got, recursion(e, g1, g2, delay * 100.0), atol=1e-9)


def test_per_sequence_and_per_muscle_parameters():
    rng = np.random.default_rng(4)
    e = rng.uniform(0, 1, (3, 200, 2))
    g1 = np.array([[-0.5, -0.7], [-0.2, -0.9], [-0.6, -0.6]])
    g2 = np.full((3, 2), -0.4)
    delay = np.array([[0.01, 0.05], [0.0, 0.033], [0.1, 0.02]])
    got = neural_activation(
        torch.tensor(e), torch.tensor(g1), torch.tensor(g2), torch.tensor(delay), rate=100.0
    ).numpy()
    for b in range(3):
        for m in range(2):
            np.testing.assert_allclose(
                got[b, :, m],
                recursion(e[b, :, m], g1[b, m], g2[b, m], delay[b, m] * 100),
                atol=1e-9,
            )


def test_unit_gain_and_pure_delay():
    e = torch.full((50, 1), 0.37, dtype=torch.float64)
    np.testing.assert_allclose(
        neural_activation(e, -0.8, -0.7, 0.05, 100.0).numpy(), 0.37, atol=1e-9
    )
    step = torch.zeros(30, 1, dtype=torch.float64)
    step[10:] = 1.0
    shifted = neural_activation(step, 0.0, 0.0, 0.03, 100.0)[:, 0].numpy()  # no filtering
    np.testing.assert_allclose(shifted, np.r_[np.zeros(13), np.ones(17)], atol=1e-12)


def test_long_sequence_float32_close_to_float64():
    e = torch.rand(2, 10_000, 7, generator=torch.Generator().manual_seed(0))
    u32 = neural_activation(e, -0.7, -0.6, 0.04, 100.0)
    u64 = neural_activation(e.double(), -0.7, -0.6, 0.04, 100.0)
    assert u32.dtype == torch.float32
    assert (u32.double() - u64).abs().max() < 1e-5


def test_nonlinear_activation_closed_form():
    u = torch.linspace(0, 1, 11, dtype=torch.float64)
    a = nonlinear_activation(u, -2.0)
    expected = (np.exp(-2.0 * u.numpy()) - 1) / (np.exp(-2.0) - 1)
    np.testing.assert_allclose(a.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(nonlinear_activation(u, 0.0).numpy(), u.numpy(), atol=1e-6)
    assert float(nonlinear_activation(torch.tensor(1.0), -3.0)) == pytest.approx(1.0)


def test_excitation_to_activation_stays_in_unit_interval():
    e = torch.rand(1, 300, 7, generator=torch.Generator().manual_seed(1))
    a = excitation_to_activation(e, -0.9, -0.9, 0.08, -1.5, 100.0)
    assert float(a.min()) >= 0.0
    assert float(a.max()) <= 1.0


def test_unstable_filter_and_negative_delay_rejected():
    e = torch.rand(20, 1)
    with pytest.raises(ValueError, match="stable"):
        neural_activation(e, -1.0, -0.5, 0.01, 100.0)
    with pytest.raises(ValueError, match="delay"):
        neural_activation(e, -0.5, -0.5, -0.01, 100.0)
