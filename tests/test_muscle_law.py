"""The muscle-law seam: the model takes tendon force from the law it is given, and only from it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from deepemg.opensim import ELBOW_MODEL_PATH, build_model
from deepemg.physics import (
    MUSCLE_LAWS,
    MuscleLaw,
    MusculoskeletalModel,
    RigidTendonDeGrooteFregly,
    get_muscle_law,
    rigid_tendon_force,
)
from deepemg.physics.model import _DYNAMICS

from .conftest import ARM26_LOCKED


class DoubledRigidTendon(RigidTendonDeGrooteFregly):
    """The default law with twice the force: a law the model class has never seen."""

    name = "doubled_rigid_tendon"

    def force(self, activation, musculotendon_length, musculotendon_velocity, **parameters):
        return 2.0 * super().force(
            activation, musculotendon_length, musculotendon_velocity, **parameters
        )


class LinearLaw(MuscleLaw):
    """``F = a F0``: one parameter, no tendon, no curves."""

    name = "linear"
    parameter_names = ("max_isometric_force",)
    opensim_class = "Muscle"
    opensim_getters = {"max_isometric_force": "get_max_isometric_force"}

    def force(self, activation, musculotendon_length, musculotendon_velocity, max_isometric_force):
        return activation * max_isometric_force


def _states(model, n=50, seed=0):
    generator = torch.Generator().manual_seed(seed)
    low, high = model.coordinate_range
    angle = low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)
    velocity = 4 * torch.rand(n, generator=generator, dtype=torch.float64) - 2
    activation = torch.rand(n, model.n_muscles, generator=generator, dtype=torch.float64)
    return activation, angle, velocity


# ---------------------------------------------------------------- (a) the registry
def test_registry_returns_the_rigid_tendon_law():
    law = get_muscle_law("rigid_tendon_degroote_fregly")
    assert isinstance(law, RigidTendonDeGrooteFregly)
    assert MUSCLE_LAWS["rigid_tendon_degroote_fregly"] is law
    assert law.opensim_class == "DeGrooteFregly2016Muscle"
    assert set(law.opensim_getters) == set(law.parameter_names)
    assert len(law.parameter_names) == 8
    custom = LinearLaw()
    assert get_muscle_law(custom) is custom


def test_registry_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="thelen.*rigid_tendon_degroote_fregly"):
        get_muscle_law("thelen")
    with pytest.raises(TypeError, match="muscle_law"):
        get_muscle_law(3)


def test_the_default_law_is_rigid_tendon_force(elbow):
    activation, angle, velocity = _states(elbow)
    values = {n: getattr(elbow, n) for n in elbow.muscle_law.parameter_names}
    arm = elbow.moment_arm(angle)
    expected = rigid_tendon_force(
        activation, elbow.musculotendon_length(angle), -arm * velocity.unsqueeze(-1), **values
    )
    assert elbow.muscle_law.name == "rigid_tendon_degroote_fregly"
    torch.testing.assert_close(elbow.muscle_force(activation, angle, velocity), expected)


# ---------------------------------------------------------------- (b) the model uses the law
def _with_law(model, law):
    """``model``'s geometry, parameters and dynamics under another muscle law."""
    return MusculoskeletalModel(
        model.muscles,
        {n: getattr(model, n).numpy() for n in law.parameter_names},
        model.geometry,
        {**{n: float(getattr(model, n)) for n in _DYNAMICS}, "has_load": model.has_load},
        model.coordinate,
        model.coordinate_range,
        model.fit_report,
        muscle_law=law,
        joint=model.joint,
    )


def test_a_custom_law_doubles_the_torque(elbow):
    doubled = _with_law(elbow, DoubledRigidTendon())
    assert doubled.muscle_law.name == "doubled_rigid_tendon"
    activation, angle, velocity = _states(elbow)
    params = {"max_isometric_force_scale": torch.full((7,), 1.3, dtype=torch.float64)}
    for p in (None, params):
        torch.testing.assert_close(
            doubled.joint_torque(activation, angle, velocity, p),
            2.0 * elbow.joint_torque(activation, angle, velocity, p),
            rtol=0,
            atol=0,
        )


def test_a_linear_law_gives_its_closed_form_torque(elbow):
    linear = _with_law(elbow, LinearLaw())
    assert "pennation_angle" not in dict(linear.named_buffers())
    activation, angle, velocity = _states(elbow)
    f0 = elbow.max_isometric_force
    expected = (elbow.moment_arm(angle) * activation * f0).sum(-1)
    torch.testing.assert_close(linear.joint_torque(activation, angle, velocity), expected)
    # the subject scales apply to the parameters the law has and leave the others alone
    scales = {
        "max_isometric_force_scale": torch.full((7,), 1.5, dtype=torch.float64),
        "optimal_fiber_length_scale": torch.full((7,), 1.1, dtype=torch.float64),
    }
    torch.testing.assert_close(
        linear.joint_torque(activation, angle, velocity, scales), 1.5 * expected
    )
    # torque is independent of velocity under this law, not under the default one
    still = torch.zeros_like(velocity)
    torch.testing.assert_close(
        linear.joint_torque(activation, angle, still),
        linear.joint_torque(activation, angle, velocity),
    )


def test_a_law_missing_a_parameter_is_rejected(elbow):
    with pytest.raises(ValueError, match="pennation_angle"):
        MusculoskeletalModel(
            elbow.muscles,
            {"max_isometric_force": np.ones(7)},
            elbow.geometry,
            {},
            elbow.coordinate,
            elbow.coordinate_range,
        )


def test_build_model_reads_a_law_through_its_getters(elbow):
    linear = build_model(ELBOW_MODEL_PATH, "r_elbow_flex", joint="elbow", muscle_law=LinearLaw())
    assert linear.muscle_law.name == "linear"
    assert dict(linear.named_buffers()).keys().isdisjoint({"tendon_slack_length"})
    torch.testing.assert_close(linear.max_isometric_force, elbow.max_isometric_force)
    with pytest.raises(ValueError, match="Unknown muscle law 'thelen'"):
        build_model(ELBOW_MODEL_PATH, "r_elbow_flex", muscle_law="thelen")


# ---------------------------------------------------------------- (c) the joint
def test_joint_names(elbow, arm26, arm26_with_load):
    assert elbow.joint == "elbow"
    assert MusculoskeletalModel.elbow().joint == "elbow"
    assert arm26.joint == "r_elbow_flex"
    arm = MusculoskeletalModel.from_opensim(
        arm26_with_load, "r_elbow_flex", ARM26_LOCKED, joint="arm"
    )
    assert arm.joint == "arm"
    assert arm.muscles == arm26.muscles
    torch.testing.assert_close(arm.max_isometric_force, arm26.max_isometric_force)


# ---------------------------------------------------------------- (d) no OpenSim in physics
def test_physics_imports_no_opensim():
    code = (
        "import sys, deepemg.physics; "
        "print(sorted(m for m in sys.modules if 'opensim' in m.lower()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
