"""The muscle-law seam: the model takes tendon force from the law it is given, and only from it."""

from __future__ import annotations

import subprocess
import sys
from types import MappingProxyType

import numpy as np
import pytest
import torch

from deepemg import opensim as bridge
from deepemg.opensim import ELBOW_MODEL_PATH, build_model, elbow_model
from deepemg.opensim.builder import use_compliant_tendon_degroote_muscles
from deepemg.physics import (
    MUSCLE_LAWS,
    CompliantTendonDeGrooteFregly,
    MuscleLaw,
    MusculoskeletalModel,
    RigidTendonDeGrooteFregly,
    compliant_tendon_force,
    get_muscle_law,
    rigid_tendon_force,
)
from deepemg.physics.model import _DYNAMICS
from deepemg.specification import ModelSpecification

from ..conftest import ARM26_LOCKED, FAST_NMM
from ._laws import assert_gradients, random_inputs


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
    opensim_getters = MappingProxyType({"max_isometric_force": "get_max_isometric_force"})

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
    with pytest.raises(ValueError, match=r"thelen.*compliant_tendon.*rigid_tendon_degroote_fregly"):
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
    assert elbow_model().joint == "elbow"
    assert arm26.joint == "r_elbow_flex"
    arm = build_model(arm26_with_load, "r_elbow_flex", ARM26_LOCKED, joint="arm")
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


# ---------------------------------------------------------------- (e) the compliant tendon
COMPLIANT = "compliant_tendon_degroote_fregly"


@pytest.fixture(scope="module")
def compliant():
    return elbow_model(muscle_law=COMPLIANT)


def test_compliant_law_is_registered(compliant):
    law = get_muscle_law(COMPLIANT)
    assert isinstance(law, CompliantTendonDeGrooteFregly)
    assert MUSCLE_LAWS[COMPLIANT] is law
    assert law.parameter_names[-1] == "tendon_strain"
    assert compliant.muscle_law is law
    torch.testing.assert_close(
        compliant.tendon_strain, torch.full((7,), 0.049, dtype=torch.float64)
    )


def test_compliant_law_matches_opensim_equilibrium(compliant):
    """OpenSim's compliant DeGrooteFregly2016Muscle at static equilibrium is the oracle."""
    model = bridge.load_model(ELBOW_MODEL_PATH)
    use_compliant_tendon_degroote_muscles(model)
    pose = bridge.ModelPose(model, "r_elbow_flex", {})
    handles = bridge.muscle_handles(model, compliant.muscles)
    assert all(not h.get_ignore_tendon_compliance() for h in handles)
    values = {n: getattr(compliant, n) for n in compliant.muscle_law.parameter_names}
    rigid_values = {n: v for n, v in values.items() if n != "tendon_strain"}
    low, high = compliant.coordinate_range
    still = torch.zeros(7, dtype=torch.float64)
    for angle in np.linspace(low + 0.05, high - 0.05, 5):
        for a in (0.05, 0.5, 1.0):
            pose.set(float(angle), 0.0)
            for h in handles:
                h.setActivation(pose.state, a)
            model.equilibrateMuscles(pose.state)
            model.realizeDynamics(pose.state)
            expected = np.array([h.getTendonForce(pose.state) for h in handles])
            length = torch.tensor([h.getLength(pose.state) for h in handles], dtype=torch.float64)
            activation = torch.full((7,), a, dtype=torch.float64)
            got = compliant_tendon_force(activation, length, still, **values).numpy()
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
            if a == 1.0:  # (b) far from the rigid tendon: no silent fallback
                rigid = rigid_tendon_force(activation, length, still, **rigid_values).numpy()
                assert (np.abs(rigid - got) / np.maximum(got, 1.0)).max() > 0.05


def test_compliant_law_differs_from_rigid_in_the_model(elbow, compliant):
    activation = torch.ones(7, dtype=torch.float64)
    angle = torch.tensor(2.0, dtype=torch.float64)
    rigid = elbow.muscle_force(activation, angle, torch.tensor(0.0))
    ours = compliant.muscle_force(activation, angle, torch.tensor(0.0))
    assert (rigid - ours).abs().max() > 50.0  # N: BIClong is ~40 % weaker at 2 rad


def test_compliant_law_gradients():
    inputs = random_inputs(torch.Generator().manual_seed(1), 3)
    assert_gradients(compliant_tendon_force, inputs)


def test_resolve_with_a_law(elbow, compliant):
    by_name = ModelSpecification("elbow", muscle_law=COMPLIANT).resolve()
    assert by_name.muscle_law.name == COMPLIANT
    assert ModelSpecification(compliant).resolve() is compliant
    with pytest.raises(ValueError, match="muscle law 'rigid_tendon_degroote_fregly'"):
        ModelSpecification(elbow, muscle_law=COMPLIANT).resolve()


def test_nmm_with_the_compliant_law(tmp_path):
    from deepemg import NMMRegressor
    from deepemg.datasets import make_elbow_lifting
    from deepemg.persistence import load_model, save_model

    data = make_elbow_lifting(
        n_subjects=1, n_trials=2, duration=1.0, random_state=0, cache=False, progress=False
    )
    nmm = NMMRegressor(muscle_law=COMPLIANT, random_state=0, **FAST_NMM)
    nmm.fit(data.X, data.y, subject_ids=data.groups)
    assert nmm.physics_.muscle_law.name == COMPLIANT
    prediction = nmm.predict(data.X)
    assert prediction.shape == data.y.shape
    assert np.isfinite(prediction).all()
    path = tmp_path / "nmm.zip"
    save_model(nmm, path)
    loaded = load_model(path)
    assert loaded.muscle_law == COMPLIANT
    assert loaded.physics_.muscle_law.name == COMPLIANT
    np.testing.assert_allclose(loaded.predict(data.X), prediction, atol=1e-6)
    with pytest.raises(ValueError, match="muscle_law"):
        NMMRegressor(muscle_law="thelen", **FAST_NMM).fit(data.X, data.y)
