"""The Millard2012EquilibriumMuscle laws against OpenSim 4.6 itself: curves, forces, gradients."""

from __future__ import annotations

import numpy as np
import opensim as osim
import pytest
import torch

from deepemg import opensim as bridge
from deepemg.opensim import ELBOW_MODEL_PATH, build_model
from deepemg.physics import (
    MUSCLE_LAWS,
    CompliantTendonMillard2012,
    RigidTendonMillard2012,
    compliant_tendon_millard_force,
    from_model_law,
    millard,
    rigid_tendon_millard_force,
)

from ._laws import MUSCLE_RANGES, assert_gradients, random_inputs

RIGID, COMPLIANT = "rigid_tendon_millard2012", "compliant_tendon_millard2012"
ACTIVATIONS = (0.0, 0.05, 0.5, 1.0)  # 0: below OpenSim's minimum activation (0.01)


# ---------------------------------------------------------------- the curves
CURVES = [  # (OpenSim curve, torch curve, x from, x to): past both ends of each curve
    (osim.ActiveForceLengthCurve(), millard.active_force_length_curve(), 0.2, 2.2),
    (
        osim.ActiveForceLengthCurve(0.3, 0.6, 2.2, 0.5, 0.05),
        millard.active_force_length_curve(0.3, 0.6, 2.2, 0.5, 0.05),
        0.1,
        2.5,
    ),
    (osim.ForceVelocityCurve(), millard.force_velocity_curve(), -1.5, 1.5),
    (
        osim.ForceVelocityCurve(0.1, 0.3, 4.0, 0.07, 0.2, 1.8, 0.3, 0.5),
        millard.force_velocity_curve(0.1, 0.3, 4.0, 0.07, 0.2, 1.8, 0.3, 0.5),
        -1.5,
        1.5,
    ),
    (osim.FiberForceLengthCurve(), millard.fiber_force_length_curve(), 0.8, 2.0),
    (
        osim.FiberForceLengthCurve(0.05, 0.5, 0.3, 4.0, 0.6),
        millard.fiber_force_length_curve(0.05, 0.5, 0.3, 4.0, 0.6),
        0.8,
        2.0,
    ),
    (  # curviness 0 and 1: the least and most curved corners
        osim.ForceVelocityCurve(0.0, 0.05, 5.0, 0.0, 0.05, 1.4, 0.0, 1.0),
        millard.force_velocity_curve(0.0, 0.05, 5.0, 0.0, 0.05, 1.4, 0.0, 1.0),
        -1.5,
        1.5,
    ),
    (
        osim.FiberForceLengthCurve(0.0, 0.7, 0.2, 2.0 / 0.7, 1.0),
        millard.fiber_force_length_curve(0.0, 0.7, 0.2, 2.0 / 0.7, 1.0),
        0.8,
        2.0,
    ),
    (
        osim.TendonForceLengthCurve(0.049, 28.0, 0.6, 0.0),
        millard.tendon_force_length_curve(0.049, 28.0, 0.6, 0.0),
        0.95,
        1.1,
    ),
    (osim.TendonForceLengthCurve(), millard.tendon_force_length_curve(), 0.95, 1.1),
    (
        osim.TendonForceLengthCurve(0.1, 20.0, 0.5, 0.7),
        millard.tendon_force_length_curve(0.1, 20.0, 0.5, 0.7),
        0.95,
        1.2,
    ),
]


@pytest.mark.parametrize(("reference", "curve", "low", "high"), CURVES)
def test_curve_and_its_slope_match_opensim(reference, curve, low, high):
    x = torch.linspace(low, high, 2001, dtype=torch.float64, requires_grad=True)
    domain = reference.getCurveDomain()
    assert low < domain.get(0)  # beyond both ends too
    assert domain.get(1) < high
    value = curve(x)
    (slope,) = torch.autograd.grad(value.sum(), x)
    points = x.detach().tolist()
    expected = np.array([reference.calcValue(v) for v in points])
    expected_slope = np.array([reference.calcDerivative(v, 1) for v in points])
    np.testing.assert_allclose(value.detach().numpy(), expected, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(slope.numpy(), expected_slope, rtol=1e-8, atol=1e-9)
    still_value, still_slope = curve.value_and_slope(x)
    np.testing.assert_allclose(still_value.numpy(), expected, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(still_slope.numpy(), expected_slope, rtol=1e-8, atol=1e-9)


def test_curves_of_a_batch_of_muscles_and_float32():
    """One curve per muscle (a parameter per muscle), evaluated over leading axes."""
    widths = torch.tensor([1.6, 1.8123, 2.1], dtype=torch.float64)
    curve = millard.active_force_length_curve(max_length=widths)
    x = torch.linspace(0.3, 2.2, 40, dtype=torch.float64).reshape(40, 1).expand(40, 3)
    got = curve(x.reshape(4, 10, 3))
    for j, width in enumerate(widths.tolist()):
        reference = osim.ActiveForceLengthCurve(0.47 - 0.0259, 0.73, width, 0.8616, 0.1)
        expected = [reference.calcValue(v) for v in x[:, j].tolist()]
        np.testing.assert_allclose(got[..., j].flatten().numpy(), expected, atol=1e-11)
    single = millard.active_force_length_curve(max_length=widths.float())(x.float())
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single.numpy(), got.reshape(40, 3).numpy(), atol=1e-5)


# ---------------------------------------------------------------- the muscles in OpenSim
def _customised(tmp_path, rigid_tendon: bool):
    """The elbow with Millard muscles, several with non-default properties, in a file."""
    model = bridge.load_model(ELBOW_MODEL_PATH)
    bridge.use_millard_muscles(model, rigid_tendon=rigid_tendon)
    muscles = model.getMuscles()
    cast = osim.Millard2012EquilibriumMuscle.safeDownCast
    biceps, brachialis, triceps = (cast(muscles.get(n)) for n in ("BIClong", "BRA", "TRIlong"))
    biceps.set_fiber_damping(0.0)  # undamped: OpenSim adjusts its curves
    biceps.upd_ActiveForceLengthCurve().setActiveFiberLengths(0.5, 0.75, 1.6, 0.7)
    brachialis.upd_ForceVelocityCurve().set_max_eccentric_velocity_force_multiplier(1.6)
    brachialis.upd_ForceVelocityCurve().set_concentric_curviness(0.3)
    brachialis.set_pennation_angle_at_optimal(0.3)
    brachialis.set_maximum_pennation_angle(1.2)
    triceps.upd_FiberForceLengthCurve().setOptionalProperties(0.3, 4.0, 0.6)
    triceps.upd_TendonForceLengthCurve().setOptionalProperties(30.0, 0.6, 0.4)
    triceps.upd_TendonForceLengthCurve().setStrainAtOneNormForce(0.06)
    triceps.set_minimum_activation(0.1)
    triceps.setMinControl(0.1)
    path = tmp_path / f"millard_{'rigid' if rigid_tendon else 'compliant'}.osim"
    assert model.printToXML(str(path))
    return path


def _opensim_forces(path, muscles, equilibrate: bool):
    """OpenSim's tendon forces, lengths and speeds over angles, speeds and activations."""
    model = bridge.load_model(path)
    bridge.use_millard_muscles(model, rigid_tendon=not equilibrate)
    pose = bridge.ModelPose(model, "r_elbow_flex", {})
    handles = bridge.muscle_handles(model, muscles)
    low, high = pose.range
    speeds = (0.0,) if equilibrate else (-2.0, 0.0, 2.0)  # rad/s: lengthening and shortening
    rows = []
    for angle in np.linspace(low + 0.05, high - 0.05, 5):
        for speed in speeds:
            for a in ACTIVATIONS:
                pose.set(float(angle), speed)
                for h in handles:
                    h.setActivation(pose.state, a)
                if equilibrate:
                    model.equilibrateMuscles(pose.state)
                model.realizeDynamics(pose.state)
                rows.append(
                    [
                        [a] * len(handles),
                        [h.getLength(pose.state) for h in handles],
                        [h.getLengtheningSpeed(pose.state) for h in handles],
                        [h.getTendonForce(pose.state) for h in handles],
                    ]
                )
    return torch.tensor(rows, dtype=torch.float64).unbind(1)


@pytest.fixture(scope="module")
def rigid_file(tmp_path_factory):
    return _customised(tmp_path_factory.mktemp("millard"), rigid_tendon=True)


@pytest.fixture(scope="module")
def compliant_file(tmp_path_factory):
    return _customised(tmp_path_factory.mktemp("millard"), rigid_tendon=False)


def test_rigid_law_matches_opensim(rigid_file):
    model = build_model(rigid_file, "r_elbow_flex", muscle_law=RIGID)
    values = {n: getattr(model, n) for n in model.muscle_law.parameter_names}
    assert values["fiber_damping"][0] == 0
    assert values["active_max_fiber_length"][0] == 1.6
    assert values["passive_fitted_curve"].tolist() == [1, 1, 1, 1, 0, 1, 1]
    activation, length, speed, expected = _opensim_forces(rigid_file, model.muscles, False)
    got = rigid_tendon_millard_force(activation, length, speed, **values)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert (expected[activation == 0.0] > 0).any()  # the activation floor, not zero force
    # the model uses the law: its forces are the law's at its own lengths and speeds
    angle = torch.tensor([1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(
        model.muscle_force(torch.full((2, 7), 0.5, dtype=torch.float64), angle, angle),
        rigid_tendon_millard_force(
            torch.full((2, 7), 0.5, dtype=torch.float64),
            model.musculotendon_length(angle),
            -model.moment_arm(angle) * angle.unsqueeze(-1),
            **values,
        ),
    )


def test_compliant_law_matches_opensim_equilibrium(compliant_file):
    model = build_model(compliant_file, "r_elbow_flex", muscle_law=COMPLIANT)
    values = {n: getattr(model, n) for n in model.muscle_law.parameter_names}
    assert values["tendon_strain"][4] == 0.06
    assert values["tendon_fitted_curve"][4] == 0
    activation, length, speed, expected = _opensim_forces(compliant_file, model.muscles, True)
    got = compliant_tendon_millard_force(activation, length, speed, **values)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-3)
    rigid_values = {n: v for n, v in values.items() if n in RigidTendonMillard2012.parameter_names}
    rigid = rigid_tendon_millard_force(activation, length, speed, **rigid_values)
    assert ((rigid - got).abs() / got.clamp_min(1.0)).max() > 0.05  # no silent rigid tendon


def test_compliant_equilibrium_starts_near_the_root(compliant_file):
    """The start (the tendon stretched by the fibre's force at slack) leaves one Newton step."""
    model = build_model(compliant_file, "r_elbow_flex", muscle_law=COMPLIANT)
    values = {n: getattr(model, n) for n in model.muscle_law.parameter_names}
    activation, length, speed, expected = _opensim_forces(compliant_file, model.muscles, True)
    got = compliant_tendon_millard_force(activation, length, speed, n_iterations=1, **values)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-3)


def test_defaults_are_opensims_muscle():
    """Only the anatomy given: OpenSim's default Millard muscle, with its finalised curves."""
    muscle = osim.Millard2012EquilibriumMuscle("m", 500.0, 0.1, 0.2, 0.2)
    muscle.set_ignore_tendon_compliance(True)
    muscle.finalizeFromProperties()
    active = muscle.getActiveForceLengthCurve()
    assert active.getMinValue() == 0.0  # OpenSim's damped muscle: 0.1 set to 0
    # below the minimum fibre length, on the first segment (0.5 l_opt), about l_opt, beyond 1.81
    lengths = torch.tensor([0.23, 0.2459, 0.27, 0.3, 0.31, 0.389], dtype=torch.float64)
    height = 0.1 * np.sin(0.2)
    fiber = torch.sqrt((lengths - 0.2) ** 2 + height**2)
    expected = 500.0 * torch.tensor(
        [
            active.calcValue(v) + muscle.getFiberForceLengthCurve().calcValue(v)
            for v in (fiber / 0.1).tolist()
        ],
        dtype=torch.float64,
    )
    expected = expected * (lengths - 0.2) / fiber  # along the tendon
    got = rigid_tendon_millard_force(
        torch.ones(6, dtype=torch.float64),
        lengths,
        torch.zeros(6, dtype=torch.float64),
        max_isometric_force=500.0,
        optimal_fiber_length=0.1,
        tendon_slack_length=0.2,
        pennation_angle=0.2,
    )
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- registry, conversion
def test_laws_are_registered_and_declared_for_from_model(rigid_file, compliant_file):
    assert isinstance(MUSCLE_LAWS[RIGID], RigidTendonMillard2012)
    assert isinstance(MUSCLE_LAWS[COMPLIANT], CompliantTendonMillard2012)
    assert from_model_law("Millard2012EquilibriumMuscle", True).name == RIGID
    assert from_model_law("Millard2012EquilibriumMuscle", False).name == COMPLIANT
    for path, name in ((rigid_file, RIGID), (compliant_file, COMPLIANT)):
        assert build_model(path, "r_elbow_flex", muscle_law="from_model").muscle_law.name == name
    law = MUSCLE_LAWS[COMPLIANT]
    assert set(law.opensim_getters) == set(law.parameter_names)
    assert not law.affine_in_activation
    assert not MUSCLE_LAWS[RIGID].affine_in_activation
    with pytest.raises(TypeError, match=r"missing.*pennation_angle"):
        rigid_tendon_millard_force(1.0, 0.3, 0.0, max_isometric_force=1.0)


def test_conversion_keeps_the_anatomy():
    original = bridge.load_model(ELBOW_MODEL_PATH)
    converted = bridge.load_model(ELBOW_MODEL_PATH)
    assert len(bridge.use_compliant_tendon_millard_muscles(converted)) == 7
    names = bridge.muscle_names(original)
    assert sorted(bridge.muscle_names(converted)) == sorted(names)
    poses = [bridge.ModelPose(m, "r_elbow_flex", {}) for m in (original, converted)]
    for pose in poses:
        pose.set(1.2)
        pose.model.realizePosition(pose.state)
    for name in names:
        old, new = (p.model.getMuscles().get(name) for p in poses)
        assert new.getConcreteClassName() == "Millard2012EquilibriumMuscle"
        assert not new.get_ignore_tendon_compliance()
        for getter in (
            "getMaxIsometricForce",
            "getOptimalFiberLength",
            "getTendonSlackLength",
            "getPennationAngleAtOptimalFiberLength",
            "getMaxContractionVelocity",
        ):
            assert getattr(old, getter)() == getattr(new, getter)()
        assert old.getLength(poses[0].state) == pytest.approx(new.getLength(poses[1].state))
    assert bridge.use_rigid_tendon_millard_muscles(converted) == names  # every tendon changed
    with pytest.raises(ValueError, match="fiber_damping"):
        bridge.use_millard_muscles(converted, fiber_damping=-1.0)


# ---------------------------------------------------------------- gradients
def _inputs(seed, n=2):
    """A muscle's inputs and three curve properties, random (float64, requiring grad)."""
    curves = ((1.6, 2.0), (0.5, 0.9), (0.03, 0.06))  # active max fibre length, strains
    return random_inputs(torch.Generator().manual_seed(seed), n, MUSCLE_RANGES + curves)


NAMES = (
    "max_isometric_force",
    "optimal_fiber_length",
    "tendon_slack_length",
    "pennation_angle",
    "active_max_fiber_length",
    "passive_fiber_strain",
)


def test_rigid_law_gradients():
    def force(a, length, speed, *values):
        return rigid_tendon_millard_force(
            a, length, speed, **dict(zip(NAMES, values[:-1], strict=True))
        )

    assert_gradients(force, _inputs(0, 3))


def test_compliant_law_gradients():
    def force(a, length, speed, *values):
        parameters = dict(zip(NAMES, values[:-1], strict=True), tendon_strain=values[-1])
        return compliant_tendon_millard_force(a, length, torch.zeros_like(speed), **parameters)

    assert_gradients(force, _inputs(1), fast_mode=True)


# ---------------------------------------------------------------- speed-ups, still OpenSim's
@pytest.mark.parametrize(("reference", "curve", "low", "high"), CURVES)
def test_tabulated_curve_follows_opensim_inside_and_beyond(reference, curve, low, high):
    """The equilibrium search's table: near OpenSim's curve, its lines beyond the ends."""
    x = torch.linspace(low, high, 2001, dtype=torch.float64)
    value, slope = millard.TabulatedCurve(curve).value_and_slope(x)
    points = x.tolist()
    expected = np.array([reference.calcValue(v) for v in points])
    expected_slope = np.array([reference.calcDerivative(v, 1) for v in points])
    scale = np.abs(expected_slope).max()
    np.testing.assert_allclose(value.numpy(), expected, atol=2e-4 * scale * (high - low))
    np.testing.assert_allclose(slope.numpy(), expected_slope, atol=5e-2 * scale)
    domain = reference.getCurveDomain()
    beyond = (x < domain.get(0)) | (x > domain.get(1))
    np.testing.assert_allclose(value[beyond].numpy(), expected[beyond.numpy()], atol=1e-9)


def _tendon_forces(**tendon):
    length = torch.linspace(0.27, 0.31, 9, dtype=torch.float64)
    muscle = dict(max_isometric_force=100.0, optimal_fiber_length=0.1, pennation_angle=0.1)
    return compliant_tendon_millard_force(
        torch.full_like(length, 0.6),
        length,
        torch.zeros_like(length),
        tendon_slack_length=0.2,
        **muscle,
        **tendon,
    )


def test_curves_are_reused_for_the_same_values_only():
    """A fit calls the law with unchanged curve parameters: built once, rebuilt on a change."""
    millard._CURVE_CACHE.clear()
    stiff = _tendon_forces(tendon_strain=0.04)
    (key,) = millard._CURVE_CACHE
    curves = millard._CURVE_CACHE[key]
    torch.testing.assert_close(_tendon_forces(tendon_strain=0.04), stiff, rtol=0, atol=0)
    assert millard._CURVE_CACHE[key] is curves
    assert len(millard._CURVE_CACHE) == 1
    compliant = _tendon_forces(tendon_strain=0.08)
    assert len(millard._CURVE_CACHE) == 2
    millard._CURVE_CACHE.clear()
    torch.testing.assert_close(compliant, _tendon_forces(tendon_strain=0.08), rtol=0, atol=0)
    assert (compliant - stiff).abs().max() > 1.0  # N: the strain changed the force


def test_curve_parameters_with_gradients_and_inference_mode_bypass_the_cache():
    """A learnt curve keeps its gradient; curves made in inference mode are not kept."""
    strain = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    (gradient,) = torch.autograd.grad(_tendon_forces(tendon_strain=strain).sum(), strain)
    step = 1e-6
    difference = (
        _tendon_forces(tendon_strain=0.05 + step) - _tendon_forces(tendon_strain=0.05 - step)
    ).sum() / (2 * step)
    torch.testing.assert_close(gradient, difference, rtol=1e-5, atol=1e-6)
    millard._CURVE_CACHE.clear()
    with torch.inference_mode():
        _tendon_forces(tendon_strain=0.05)
    assert not millard._CURVE_CACHE  # inference tensors would break a later backward
