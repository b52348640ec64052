"""Bad inputs give errors that say what is wrong and what to do."""

import numpy as np
import pytest
import torch

from deepemg import opensim as bridge
from deepemg.opensim import ELBOW_MODEL_PATH, build_model

from ..conftest import ARM26_PATH


def test_nan_in_angle(elbow):
    angle = torch.tensor([0.5, float("nan"), 0.7])
    with pytest.raises(ValueError, match="NaN"):
        elbow.moment_arm(angle)


def test_nan_in_activation(elbow):
    activation = torch.full((3, 7), 0.2)
    activation[1, 4] = float("nan")
    with pytest.raises(ValueError, match="activation holds NaN"):
        elbow.joint_torque(activation, torch.ones(3), torch.zeros(3))


def test_angles_in_degrees_are_caught(elbow):
    with pytest.raises(ValueError, match="did you pass degrees"):
        elbow.musculotendon_length(torch.tensor([10.0, 90.0]))


def test_angle_below_range(elbow):
    with pytest.raises(ValueError, match=r"range of 'r_elbow_flex'"):
        elbow.moment_arm(torch.tensor([-0.2]))


def test_activation_shape_mismatch(elbow):
    with pytest.raises(ValueError, match="one column per muscle"):
        elbow.joint_torque(torch.full((5, 6), 0.1), torch.ones(5), torch.zeros(5))
    with pytest.raises(ValueError, match="does not match the angle"):
        elbow.joint_torque(torch.full((4, 7), 0.1), torch.ones(5), torch.zeros(5))


def test_velocity_shape_mismatch(elbow):
    with pytest.raises(ValueError, match="velocity has shape"):
        elbow.joint_torque(torch.full((5, 7), 0.1), torch.ones(5), torch.zeros(4))


def test_activation_outside_unit_interval(elbow):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        elbow.joint_torque(torch.full((5, 7), 1.5), torch.ones(5), torch.zeros(5))


def test_excitation_with_wrong_muscle_count(elbow):
    with pytest.raises(ValueError, match="n_timesteps, 7"):
        elbow.activation(torch.rand(2, 100, 5), rate=100.0)


def test_negative_load(elbow):
    with pytest.raises(ValueError, match="load_mass"):
        elbow.inverse_dynamics(torch.ones(3), torch.zeros(3), torch.zeros(3), -1.0)


def test_load_on_a_model_without_load_body():
    model = build_model(ARM26_PATH, "r_elbow_flex", {"r_shoulder_elev": 0.0})
    zero = torch.zeros(3)
    assert model.inverse_dynamics(torch.ones(3), zero, zero, 0.0).shape == (3,)
    with pytest.raises(ValueError, match="add_load_body"):
        model.inverse_dynamics(torch.ones(3), zero, zero, 2.0)


def test_missing_coordinate():
    with pytest.raises(ValueError, match=r"no coordinate 'elbow'.*r_elbow_flex"):
        build_model(ELBOW_MODEL_PATH, "elbow")


def test_unknown_locked_coordinate():
    with pytest.raises(ValueError, match="not in the model"):
        build_model(ARM26_PATH, "r_elbow_flex", {"shoulder": 0.0})


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No OpenSim model file"):
        build_model(tmp_path / "missing.osim", "r_elbow_flex")


def test_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "notes.osim"
    path.write_text("this is not XML\n")
    with pytest.raises(ValueError, match="not an OpenSim model"):
        build_model(path, "r_elbow_flex")


def test_missing_muscle_name_in_the_bridge():
    pose = bridge.ModelPose(bridge.load_model(ELBOW_MODEL_PATH), "r_elbow_flex")
    with pytest.raises(ValueError, match="no muscle named 'BRACH'"):
        bridge.sample_path_geometry(pose, ["BIClong", "BRACH"], np.array([0.5]))


def test_missing_load_body():
    model = bridge.load_model(ELBOW_MODEL_PATH)
    with pytest.raises(ValueError, match="no body named 'box'"):
        bridge.set_load_mass(model, 2.0, body="box")


def test_nan_in_opensim_motion():
    pose = bridge.ModelPose(bridge.load_model(ELBOW_MODEL_PATH), "r_elbow_flex")
    with pytest.raises(ValueError, match=r"velocity holds NaN.*\[1\]"):
        bridge.inverse_dynamics(pose, [0.1, 0.2], [0.0, np.nan], [0.0, 0.0])
