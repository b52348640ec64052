"""Differentiability: gradcheck on the force chain in float64."""

import torch

from deepemg.physics import SubjectParameters


def test_gradcheck_force_chain(elbow):
    generator = torch.Generator().manual_seed(0)
    excitation = torch.rand(1, 12, 7, dtype=torch.float64, generator=generator) * 0.8 + 0.1
    angle = torch.linspace(0.4, 2.0, 12, dtype=torch.float64).unsqueeze(0)
    velocity = torch.linspace(-2.0, 2.0, 12, dtype=torch.float64).unsqueeze(0)
    params = SubjectParameters(1, elbow.muscles)

    def chain(excitation, angle, velocity, force_scale, g1, delay, arm_scale):
        values = {k: v.double() for k, v in params(torch.tensor([0])).items()}
        values["max_isometric_force_scale"] = force_scale
        values["g1"] = g1
        values["delay"] = delay
        values["moment_arm_scale"] = arm_scale
        activation = elbow.activation(excitation, rate=100.0, params=values)
        return elbow.joint_torque(activation, angle, velocity, params=values)

    inputs = (
        excitation.requires_grad_(),
        angle.requires_grad_(),
        velocity.requires_grad_(),
        torch.full((1, 7), 1.1, dtype=torch.float64, requires_grad=True),
        torch.tensor([-0.4], dtype=torch.float64, requires_grad=True),
        torch.tensor([0.0333], dtype=torch.float64, requires_grad=True),
        torch.tensor([0.95], dtype=torch.float64, requires_grad=True),
    )
    assert torch.autograd.gradcheck(chain, inputs, eps=1e-6, atol=1e-5)


def test_gradients_reach_subject_parameters(elbow):
    params = SubjectParameters(2, elbow.muscles)
    index = torch.tensor([0, 1])
    values = params(index)
    # an excitation that changes: a constant one is a steady state of the activation filter,
    # whose output then depends on neither g1, g2 nor the delay (the filter is exact; a
    # truncated impulse response once gave them gradients of 1e-7, its truncation error)
    ramp = torch.linspace(0.1, 0.5, 30, dtype=torch.float64)[None, :, None]
    excitation = ramp.expand(2, 30, 7).clone()
    angle = torch.full((2, 30), 1.2, dtype=torch.float64)
    activation = elbow.activation(excitation, 100.0, values)
    torque = elbow.joint_torque(activation, angle, torch.zeros_like(angle), values)
    torque.sum().backward()
    for name, theta in params.unconstrained.items():
        assert theta.grad is not None, name
        assert float(theta.grad.abs().sum()) > 0, name
