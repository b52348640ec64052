"""The Thelen2003 muscle laws against OpenSim's Thelen2003Muscle, and muscle_law="from_model"."""

from __future__ import annotations

import numpy as np
import opensim as osim
import pytest
import torch

from deepemg import NMMRegressor
from deepemg import opensim as bridge
from deepemg.opensim import ELBOW_MODEL_PATH, MuscleConversionWarning, build_model
from deepemg.opensim.builder import use_compliant_tendon_degroote_muscles
from deepemg.physics import (
    FROM_MODEL_LAWS,
    CompliantTendonThelen2003,
    compliant_tendon_thelen_force,
    from_model_law,
    get_muscle_law,
    register_from_model_law,
    rigid_tendon_thelen_force,
)
from deepemg.physics.thelen import thelen_force_velocity
from deepemg.specification import ModelSpecification

from ..conftest import ARM26_LOCKED, ARM26_PATH, FAST_NMM, joint_channels
from ._laws import assert_gradients, random_inputs

RIGID = get_muscle_law("rigid_tendon_thelen2003")
COMPLIANT = get_muscle_law("compliant_tendon_thelen2003")
SPEEDS = (0.0, -60.0, -20.0, -3.0, 3.0, 20.0, 60.0)  # rad/s: every branch of Thelen's fV
ACTIVATIONS = (0.05, 0.5, 1.0)


@pytest.fixture(scope="module")
def thelen_elbow(tmp_path_factory):
    """The built-in elbow with its muscles made compliant Thelen2003Muscles, saved to disk."""
    model = bridge.load_model(ELBOW_MODEL_PATH)
    bridge.use_thelen_muscles(model)
    path = tmp_path_factory.mktemp("thelen") / "elbow_thelen.osim"
    model.printToXML(str(path))
    return path


@pytest.fixture(scope="module", params=["arm26", "elbow"])
def opensim_thelen(request, thelen_elbow):
    """(OpenSim pose, Thelen handles, the law's parameters as build_model reads them)."""
    path, locked = (ARM26_PATH, ARM26_LOCKED) if request.param == "arm26" else (thelen_elbow, {})
    built = build_model(path, "r_elbow_flex", locked, muscle_law="from_model")
    assert built.muscle_law is COMPLIANT
    model = bridge.load_model(path)
    pose = bridge.ModelPose(model, "r_elbow_flex", locked)
    handles = [
        osim.Thelen2003Muscle.safeDownCast(h) for h in bridge.muscle_handles(model, built.muscles)
    ]
    values = {n: getattr(built, n) for n in COMPLIANT.parameter_names}
    return model, pose, handles, values


def _kinematics(pose, handles, angle, speed):
    pose.set(float(angle), float(speed))
    pose.model.realizeVelocity(pose.state)
    length = torch.tensor([h.getLength(pose.state) for h in handles], dtype=torch.float64)
    velocity = torch.tensor([h.getLengtheningSpeed(pose.state) for h in handles])
    return length, velocity.to(torch.float64)


def _rigid_opensim(model, pose, handles, activation):
    """OpenSim's rigid-tendon force: calcInextensibleTendonActiveFiberForce + passive force
    along the tendon with the fibre at its rigid-tendon length."""
    active = [h.calcInextensibleTendonActiveFiberForce(pose.state, activation) for h in handles]
    for h in handles:
        along = h.getLength(pose.state) - h.get_tendon_slack_length()
        width = h.get_optimal_fiber_length() * np.sin(h.get_pennation_angle_at_optimal())
        h.setFiberLength(pose.state, float(np.hypot(along, width)))
    model.realizeVelocity(pose.state)
    passive = [h.getPassiveFiberForceAlongTendon(pose.state) for h in handles]
    return np.asarray(active) + np.asarray(passive)


def test_rigid_law_matches_opensim(opensim_thelen):
    """5 angles x 3 activations x 7 velocities (shortening past -c, lengthening past the
    extrapolation threshold), Arm26 and the Thelen elbow: rtol 1e-6."""
    model, pose, handles, values = opensim_thelen
    rigid_values = {n: values[n] for n in RIGID.parameter_names}
    low, high = pose.range
    velocities = []
    for angle in np.linspace(low + 0.05, high - 0.05, 5):
        for speed in SPEEDS:
            length, velocity = _kinematics(pose, handles, angle, speed)
            velocities.append(velocity)
            for a in ACTIVATIONS:
                expected = _rigid_opensim(model, pose, handles, a)
                activation = torch.full_like(length, a)
                got = rigid_tendon_thelen_force(activation, length, velocity, **rigid_values)
                np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-6)
    # the velocities reached every branch of fV at full and at low activation
    along = torch.stack(velocities) / (
        values["max_contraction_velocity"] * values["optimal_fiber_length"]
    )
    assert along.min() < -1.0  # past -c at a = 1
    assert along.max() > 0.8  # past the extrapolation threshold at a = 1


def test_compliant_law_matches_opensim_equilibrium(opensim_thelen):
    """Model.equilibrateMuscles, 5 angles x 3 activations x 5 velocities (0: static
    equilibrium; else the fibre's share of the velocity by stiffness, as OpenSim's
    initMuscleState gives it): rtol 1e-5 static, 1e-4 with a velocity, and 1 mN."""
    model, pose, handles, values = opensim_thelen
    low, high = pose.range
    rows = []  # (speed, activation, length, velocity, OpenSim's tendon force)
    for angle in np.linspace(low + 0.05, high - 0.05, 5):
        for speed in (0.0, -10.0, -3.0, 3.0, 10.0):
            length, velocity = _kinematics(pose, handles, angle, speed)
            for a in ACTIVATIONS:
                for h in handles:
                    h.setActivation(pose.state, a)
                model.equilibrateMuscles(pose.state)
                model.realizeDynamics(pose.state)
                forces = [h.getTendonForce(pose.state) for h in handles]
                rows.append((speed, a, length, velocity, forces))
    speed = np.array([r[0] for r in rows])
    activation = torch.tensor([r[1] for r in rows], dtype=torch.float64)[:, None]
    activation = activation.expand(-1, len(handles))
    length, velocity = (torch.stack([r[i] for r in rows]) for i in (2, 3))
    expected = np.array([r[4] for r in rows])
    got = compliant_tendon_thelen_force(activation, length, velocity, **values).numpy()
    # OpenSim stops at 1e-8 F0 of force error, and within 1e-6 of fV (calcfvInv)
    still = speed == 0.0
    np.testing.assert_allclose(got[still], expected[still], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(got[~still], expected[~still], rtol=1e-4, atol=1e-3)
    # not the rigid law (the tendon stretches), nor the rigid-tendon share of the velocity
    rigid_values = {n: values[n] for n in RIGID.parameter_names}
    rigid = rigid_tendon_thelen_force(activation, length, 0 * velocity, **rigid_values).numpy()
    static = compliant_tendon_thelen_force(activation, length, 0 * velocity, **values).numpy()
    scale = np.maximum(expected, 1.0)
    assert (np.abs(rigid - expected)[still] / scale[still]).max() > 0.02
    assert (np.abs(static - expected)[speed == 10.0] / scale[speed == 10.0]).max() > 0.02


def test_force_velocity_branches_in_closed_form():
    """Thelen 2003 eqs 6-7 as OpenSim writes them (calcdlceN), evaluated at fV, give v back."""
    af, flen, threshold = 0.25, 1.4, 0.95
    for a in (0.05, 1.0):
        c = 0.25 + 0.75 * a
        v = torch.linspace(-0.99 * c, 0.9, 41, dtype=torch.float64)
        fv = thelen_force_velocity(v, torch.tensor(a, dtype=torch.float64), af, flen, threshold)
        inside = fv < threshold * flen
        concentric = fv <= 1.0
        b = torch.where(concentric, 1.0 + fv / af, (2 + 2 / af) * (flen - fv) / (flen - 1))
        back = c * (fv - 1.0) / b  # a fL = 1: force Fm = fV
        torch.testing.assert_close(back[inside], v[inside], rtol=1e-12, atol=1e-12)
        assert (~inside).any()
        assert concentric.any()
        assert (inside & ~concentric).any()
        slow = torch.tensor([-2.0 * c], dtype=torch.float64)
        assert float(thelen_force_velocity(slow, torch.tensor(a), af, flen, threshold)) == 0.0


@pytest.mark.parametrize("law", [rigid_tendon_thelen_force, compliant_tendon_thelen_force])
def test_gradients_match_finite_differences(law):
    speed = 2.0 if law is rigid_tendon_thelen_force else 0.3  # rigid: every fV branch
    ranges = ((0.1, 1.0), (0.30, 0.34), (-speed, speed), (200.0, 800.0), (0.10, 0.13))
    ranges += ((0.18, 0.21), (0.05, 0.3))  # l_ts (m), pennation (rad)
    n = 4 if law is rigid_tendon_thelen_force else 3
    inputs = random_inputs(torch.Generator().manual_seed(3), n, ranges)

    shapes = {"active_force_shape": 0.5, "force_velocity_shape": 0.3}
    if law is compliant_tendon_thelen_force:
        shapes["tendon_strain"] = 0.033

    def force(*args):
        return law(*args, **shapes)

    assert_gradients(force, inputs)


def test_minimum_activation_is_opensims_clamp():
    args = [torch.tensor(v, dtype=torch.float64) for v in (0.3, 0.0, 500.0, 0.12, 0.19, 0.1)]
    zero = rigid_tendon_thelen_force(torch.tensor(0.0, dtype=torch.float64), *args)
    floor = rigid_tendon_thelen_force(torch.tensor(0.01, dtype=torch.float64), *args)
    assert float(zero) == float(floor) > 0.0
    with pytest.raises(TypeError, match="Unknown Thelen2003 parameters"):
        rigid_tendon_thelen_force(torch.tensor(0.5), *args, Flen=1.4)


def test_laws_are_registered_and_not_affine():
    assert not RIGID.affine_in_activation
    assert not COMPLIANT.affine_in_activation
    assert from_model_law("Thelen2003Muscle", True) is RIGID
    assert from_model_law("Thelen2003Muscle", False) is COMPLIANT
    assert set(COMPLIANT.parameter_names) - set(RIGID.parameter_names) == {"tendon_strain"}


# ------------------------------------------------------------------ muscle_law="from_model"
def _saved(model, tmp_path, name):
    path = tmp_path / name
    model.printToXML(str(path))
    return path


def test_from_model_picks_each_files_declared_law(thelen_elbow, tmp_path):
    elbow = build_model(ELBOW_MODEL_PATH, "r_elbow_flex", muscle_law="from_model")
    assert elbow.muscle_law.name == "rigid_tendon_degroote_fregly"
    model = bridge.load_model(ELBOW_MODEL_PATH)
    use_compliant_tendon_degroote_muscles(model)
    compliant = _saved(model, tmp_path, "compliant.osim")
    law = build_model(compliant, "r_elbow_flex", muscle_law="from_model").muscle_law
    assert law.name == "compliant_tendon_degroote_fregly"
    # Thelen muscles flagged rigid: OpenSim 4.6 cannot initialise them, the rigid law can
    model = bridge.load_model(thelen_elbow)
    for i in range(model.getMuscles().getSize()):
        model.getMuscles().get(i).set_ignore_tendon_compliance(True)
    rigid_path = _saved(model, tmp_path, "rigid_thelen.osim")
    rigid = build_model(rigid_path, "r_elbow_flex", muscle_law="from_model")
    assert rigid.muscle_law is RIGID
    assert rigid.fit_report["converted_muscles"] == rigid.muscles  # flags cleared for OpenSim
    compliant_thelen = build_model(thelen_elbow, "r_elbow_flex", muscle_law="from_model")
    for name in RIGID.parameter_names:  # the same parameters from both files
        torch.testing.assert_close(getattr(rigid, name), getattr(compliant_thelen, name))
    # an explicit law still converts the file as before
    explicit = build_model(ARM26_PATH, "r_elbow_flex", ARM26_LOCKED, muscle_law=None)
    assert explicit.muscle_law.name == "rigid_tendon_degroote_fregly"
    assert explicit.fit_report["converted_muscles"]


def test_a_conversion_of_the_files_muscles_is_said(recwarn):
    """Arm26's compliant Thelen muscles converted by the default law: a named warning."""
    with pytest.warns(MuscleConversionWarning, match="declared compliant-tendon Thelen2003") as w:
        build_model(ARM26_PATH, "r_elbow_flex", ARM26_LOCKED, muscle_law=None)
    assert "TRImed" in str(w[0].message)
    assert "muscle_law='from_model'" in str(w[0].message)
    recwarn.clear()
    build_model(ARM26_PATH, "r_elbow_flex", ARM26_LOCKED, muscle_law="from_model")
    build_model(ELBOW_MODEL_PATH, "r_elbow_flex")  # already rigid DeGrooteFregly2016
    assert not [r for r in recwarn if issubclass(r.category, MuscleConversionWarning)]


def test_from_model_refuses_mixed_or_unknown_muscles(thelen_elbow, tmp_path):
    model = bridge.load_model(thelen_elbow)
    model.getMuscles().get("BRA").set_ignore_tendon_compliance(True)
    mixed = _saved(model, tmp_path, "mixed.osim")
    with pytest.raises(ValueError, match=r"share one muscle class.*rigid-tendon Thelen2003Muscle"):
        build_model(mixed, "r_elbow_flex", muscle_law="from_model")
    key = ("Thelen2003Muscle", False)
    held = FROM_MODEL_LAWS.pop(key)  # a class no law reproduces (as Millard2012 once was)
    try:
        with pytest.raises(ValueError, match=r"no muscle law reproduces.*'from_model' works for"):
            build_model(thelen_elbow, "r_elbow_flex", muscle_law="from_model")
        with pytest.raises(ValueError, match="not registered"):
            register_from_model_law("Thelen2003Muscle", False, CompliantTendonThelen2003())
    finally:
        FROM_MODEL_LAWS[key] = held
    with pytest.raises(ValueError, match="reads Thelen2003Muscle muscles"):
        register_from_model_law("Millard2012EquilibriumMuscle", True, RIGID)


def test_from_model_estimator_saves_and_reloads_the_same_law(two_subjects, tmp_path):
    data = two_subjects
    arm26 = ["TRIlong", "TRIlat", "TRImed", "BIClong", "BICshort", "BRA"]
    y = data.y[:1][..., [list(data.muscles).index(m) for m in arm26]]
    estimator = NMMRegressor(
        model=str(ARM26_PATH),
        locked=ARM26_LOCKED,
        channels=joint_channels(data.channels, "r_elbow_flex"),
        muscle_law="from_model",
        **(FAST_NMM | {"max_epochs": 1, "d_model": 8, "random_state": 0}),
    ).fit(data.X[:1], y, subject_ids=data.groups[:1])
    assert estimator.physics_.muscle_law is COMPLIANT
    loaded = NMMRegressor.load(estimator.save(tmp_path / "thelen_nmm"))
    assert loaded.muscle_law == "from_model"
    assert loaded.physics_.muscle_law is COMPLIANT
    np.testing.assert_allclose(loaded.predict(data.X[:1]), estimator.predict(data.X[:1]))


def test_a_fibre_at_its_minimum_length_makes_no_active_force():
    """A tendon slack length beyond the musculotendon length: OpenSim clamps the fibre to its
    minimum length, where calcInextensibleTendonActiveFiberForce is 0; so is the law's force."""
    model = bridge.load_model(ARM26_PATH)
    muscle = osim.Thelen2003Muscle.safeDownCast(model.getMuscles().get("TRIlong"))
    muscle.set_tendon_slack_length(0.5)  # m, longer than the whole muscle
    pose = bridge.ModelPose(model, "r_elbow_flex", ARM26_LOCKED)
    length, velocity = _kinematics(pose, [muscle], 1.0, 0.0)
    assert float(length) < 0.5
    assert muscle.calcInextensibleTendonActiveFiberForce(pose.state, 1.0) == 0.0
    values = {
        n: torch.tensor([getattr(muscle, g)()], dtype=torch.float64)
        for n, g in RIGID.opensim_getters.items()
    }
    got = rigid_tendon_thelen_force(torch.ones(1, dtype=torch.float64), length, velocity, **values)
    assert float(got) == 0.0


def test_specification_resolves_from_model(thelen_elbow):
    spec = ModelSpecification(str(thelen_elbow), muscle_law="from_model")
    assert spec.law() is None  # a valid name, the file decides when built
    physics = spec.resolve()
    assert physics.muscle_law is COMPLIANT
    assert ModelSpecification(physics, muscle_law="from_model").resolve() is physics
    assert ModelSpecification(muscle_law="from_model").resolve().muscle_law.name == (
        "rigid_tendon_degroote_fregly"  # the built-in elbow's muscles
    )
