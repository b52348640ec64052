"""The activation filter as a linear operator (deepemg.physics.ActivationFilter), checked
against the recursion of Lloyd & Besier written out sample by sample, and the muscle laws'
``affine_in_activation`` flag checked against the laws themselves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepemg.opensim import elbow_model
from deepemg.physics import MUSCLE_LAWS, ActivationFilter, neural_activation
from deepemg.physics.activation import _filter_parameters


def _recursion(excitation, g1, g2, delay_steps):
    """``u(t) = alpha e(t - d) - beta1 u(t-1) - beta2 u(t-2)``, sample by sample, at rest on
    the first sample before the start; a fractional delay interpolates the two whole ones."""
    n = len(excitation)
    beta1, beta2 = g1 + g2, g1 * g2
    alpha = 1 + beta1 + beta2
    whole, fraction = int(np.floor(delay_steps)), delay_steps - np.floor(delay_steps)

    def delayed(t):
        def at(k):
            return excitation[max(t - k, 0)]

        return (1 - fraction) * at(whole) + fraction * at(whole + 1)

    u = np.full(n + 2, excitation[0])
    for t in range(n):
        u[t + 2] = alpha * delayed(t) - beta1 * u[t + 1] - beta2 * u[t]
    return u[2:]


@pytest.mark.parametrize(
    ("g1", "g2", "delay"), [(-0.5, -0.5, 2.0), (-0.7, 0.3, 3.4), (0.2, -0.9, 0.0)]
)
def test_the_filter_is_the_recursion_and_its_transpose_the_adjoint(g1, g2, delay):
    rng = np.random.default_rng(0)
    n = 120
    excitation = rng.uniform(0, 1, (2, n))
    values = (torch.full((2,), v, dtype=torch.float64) for v in (g1, g2, delay))
    filt = ActivationFilter(*values, n_steps=n)
    applied = filt.apply(torch.as_tensor(excitation)).numpy()
    for row in range(2):
        expected = _recursion(excitation[row], g1, g2, delay)
        np.testing.assert_allclose(applied[row], expected, atol=1e-12)
    # the operator's matrix, column j = L applied to the j-th basis signal
    basis = torch.eye(n, dtype=torch.float64).unsqueeze(1).expand(n, 2, n)
    matrix = filt.apply(basis)[:, 0, :].T.numpy()  # (t, j)
    transposed = filt.transpose(basis)[:, 0, :].T.numpy()
    np.testing.assert_allclose(transposed, matrix.T, atol=1e-12)  # L^T is the adjoint
    # energy: the squared norm of a column away from the ends
    np.testing.assert_allclose(float(filt.energy[0]), (matrix[:, 1] ** 2).sum(), rtol=1e-6)


def test_the_filter_equals_the_training_filter():
    """ActivationFilter.apply is neural_activation, the filter the training uses."""
    generator = torch.Generator().manual_seed(3)
    excitation = torch.rand(3, 80, 7, generator=generator, dtype=torch.float64)
    g1 = -0.9 * torch.rand(3, 7, generator=generator, dtype=torch.float64)
    g2 = -0.9 * torch.rand(3, 7, generator=generator, dtype=torch.float64)
    delay = 0.05 * torch.rand(3, 7, generator=generator, dtype=torch.float64)
    expected = neural_activation(excitation, g1, g2, delay, rate=100.0)
    _, _, steps = _filter_parameters(excitation, g1, g2, delay, 100.0)
    filt = ActivationFilter(g1, g2, steps, 80)
    got = filt.apply(excitation.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MUSCLE_LAWS))
def test_the_affine_flag_tells_the_truth(name):
    """A law flagged affine in the activation is (force at 0.3 = 0.7 F(0) + 0.3 F(1), over
    lengths and velocities); the compliant law is not, so it must not be flagged."""
    law = MUSCLE_LAWS[name]
    angle = torch.linspace(0.2, 2.3, 25, dtype=torch.float64)
    velocity = torch.linspace(-4.0, 4.0, 25, dtype=torch.float64)
    physics = elbow_model(muscle_law=law)

    def force(level):
        activation = torch.full((25, 7), level, dtype=torch.float64)
        return physics.muscle_force(activation, angle, velocity)

    gap = (force(0.3) - (0.7 * force(0.0) + 0.3 * force(1.0))).abs().max()
    if law.affine_in_activation:
        assert float(gap) < 1e-9
    else:
        assert float(gap) > 1e-3, f"{name} is affine in the activation: flag it"
