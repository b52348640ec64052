"""Muscle torque and inverse dynamics of the torch model against OpenSim.

OpenSim's inverse dynamics gives the torque of a 0-120 degree flexion-extension holding 0-6 kg;
a per-frame, passive-aware static optimisation with OpenSim's own muscles gives activations that
balance it. Driven by those activations, the torch model must reproduce the torque.
"""

import numpy as np
import pytest
import torch

from deepemg import opensim as bridge
from deepemg.opensim import ELBOW_MODEL_PATH

from ..conftest import ARM26_LOCKED, flexion_extension, opensim_pose

LOADS = (0.0, 2.0, 4.0, 6.0)


def _case(which, elbow, arm26, arm26_with_load):
    if which == "elbow":
        return elbow, ELBOW_MODEL_PATH, None
    return arm26, arm26_with_load, ARM26_LOCKED


@pytest.mark.parametrize("which", ["elbow", "arm26"])
@pytest.mark.parametrize("load", LOADS)
def test_joint_torque_matches_opensim_inverse_dynamics(which, load, elbow, arm26, arm26_with_load):
    model, path, locked = _case(which, elbow, arm26, arm26_with_load)
    pose = opensim_pose(path, locked=locked, load_mass=load)
    angle, velocity, acceleration = flexion_extension()
    tau_id = bridge.inverse_dynamics(pose, angle, velocity, acceleration)
    activation, residual = bridge.static_optimization(pose, model.muscles, angle, velocity, tau_id)
    assert np.abs(residual).max() < 1e-6  # OpenSim's muscles balance the torque exactly
    # the OpenSim muscles really produce tau_id with these activations
    forces = bridge.muscle_tendon_forces(pose, model.muscles, activation, angle, velocity)
    _, arms = bridge.sample_path_geometry(pose, model.muscles, angle)
    np.testing.assert_allclose((arms * forces).sum(axis=1), tau_id, atol=1e-6)

    torque = model.joint_torque(
        torch.tensor(activation), torch.tensor(angle), torch.tensor(velocity)
    ).numpy()
    relative_rms = np.sqrt(np.mean((torque - tau_id) ** 2)) / np.sqrt(np.mean(tau_id**2))
    assert relative_rms < 0.02, f"{which} {load} kg: {100 * relative_rms:.3f}% RMS"


@pytest.mark.parametrize("which", ["elbow", "arm26"])
def test_muscle_force_matches_opensim(which, elbow, arm26, arm26_with_load):
    model, path, locked = _case(which, elbow, arm26, arm26_with_load)
    pose = opensim_pose(path, locked=locked)
    rng = np.random.default_rng(1)
    low, high = model.coordinate_range
    angle = rng.uniform(low, high, 60)
    velocity = rng.uniform(-4.0, 4.0, 60)
    activation = rng.uniform(0.0, 1.0, (60, model.n_muscles))
    expected = bridge.muscle_tendon_forces(pose, model.muscles, activation, angle, velocity)
    got = model.muscle_force(
        torch.tensor(activation), torch.tensor(angle), torch.tensor(velocity)
    ).numpy()
    # differences come only from the fitted geometry (sub-millimetre)
    scale = model.max_isometric_force.numpy()
    assert np.abs(got - expected).max() / scale.max() < 0.01


@pytest.mark.parametrize("which", ["elbow", "arm26"])
@pytest.mark.parametrize("load", LOADS)
def test_inverse_dynamics_matches_opensim(which, load, elbow, arm26, arm26_with_load):
    model, path, locked = _case(which, elbow, arm26, arm26_with_load)
    pose = opensim_pose(path, locked=locked, load_mass=load)
    rng = np.random.default_rng(2)
    low, high = model.coordinate_range
    angle = rng.uniform(low, high, 80)
    velocity = rng.uniform(-6.0, 6.0, 80)
    acceleration = rng.uniform(-40.0, 40.0, 80)
    expected = bridge.inverse_dynamics(pose, angle, velocity, acceleration)
    got = model.inverse_dynamics(
        torch.tensor(angle), torch.tensor(velocity), torch.tensor(acceleration), load_mass=load
    ).numpy()
    assert np.abs(got - expected).max() < 0.05


def test_inverse_dynamics_closed_form(elbow):
    # elbow.osim (SOURCE.md): forearm+hand 1.534315 kg, COM 0.181479 m distal, Izz 0.020062;
    # load 0.30 m distal. The elbow axis is tilted by ~3 degrees, so allow 0.5%.
    g, mass, com, izz, load_arm = 9.80665, 1.534315, 0.181479, 0.020062, 0.30
    zero = torch.tensor(0.0, dtype=torch.float64)
    right = torch.tensor(np.pi / 2, dtype=torch.float64)
    for load in LOADS:
        holding = float(elbow.inverse_dynamics(right, zero, zero, load))
        assert holding == pytest.approx(g * (mass * com + load * load_arm), rel=5e-3)
        inertial = float(elbow.inverse_dynamics(zero, zero, torch.tensor(1.0).double(), load))
        assert inertial == pytest.approx(izz + mass * com**2 + load * load_arm**2, rel=5e-3)


def test_load_mass_per_frame_broadcasts(elbow):
    angle, velocity, acceleration = (torch.tensor(a) for a in flexion_extension(11))
    masses = torch.linspace(0, 6, 11, dtype=torch.float64)
    per_frame = elbow.inverse_dynamics(angle, velocity, acceleration, masses)
    one_by_one = torch.stack(
        [
            elbow.inverse_dynamics(angle[i], velocity[i], acceleration[i], float(masses[i]))
            for i in range(11)
        ]
    )
    np.testing.assert_allclose(per_frame.numpy(), one_by_one.numpy(), rtol=1e-12)


def test_float32_and_batched_shapes(elbow):
    angle = torch.full((4, 25), 1.0)
    velocity = torch.zeros(4, 25)
    activation = torch.full((4, 25, 7), 0.3)
    torque = elbow.joint_torque(activation, angle, velocity)
    assert torque.shape == (4, 25)
    assert torque.dtype == torch.float32
    reference = elbow.joint_torque(
        activation[0, 0].double(), angle[0, 0].double(), velocity[0, 0].double()
    )
    assert abs(float(torque[2, 7]) - float(reference)) < 1e-3 * abs(float(reference))
