"""The DeGroote-Fregly curves against OpenSim's own DeGrooteFregly2016Muscle.calc* methods."""

import numpy as np
import opensim as osim
import pytest
import torch

from deepemg.physics import curves

RNG = np.random.default_rng(20261125)
LENGTHS = RNG.uniform(0.3, 1.9, 300)
VELOCITIES = RNG.uniform(-1.0, 1.0, 300)
TENDON_LENGTHS = RNG.uniform(0.98, 1.08, 300)


def _oracle(method, points):
    return np.array([method(float(x)) for x in points])


@pytest.mark.parametrize(
    ("name", "ours", "theirs", "points"),
    [
        ("fL", curves.active_force_length, "calcActiveForceLengthMultiplier", LENGTHS),
        ("fPE", curves.passive_force_length, "calcPassiveForceMultiplier", LENGTHS),
        ("fV", curves.force_velocity, "calcForceVelocityMultiplier", VELOCITIES),
        ("fT", curves.tendon_force_length, "calcTendonForceMultiplier", TENDON_LENGTHS),
    ],
)
def test_curve_matches_opensim(name, ours, theirs, points):
    muscle = osim.DeGrooteFregly2016Muscle()
    expected = _oracle(getattr(muscle, theirs), points)
    got = ours(torch.tensor(points, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10, err_msg=name)


def test_curve_parameters_match_opensim():
    muscle = osim.DeGrooteFregly2016Muscle()
    muscle.set_active_force_width_scale(1.4)
    muscle.set_passive_fiber_strain_at_one_norm_force(0.45)
    x = torch.tensor(LENGTHS, dtype=torch.float64)
    np.testing.assert_allclose(
        curves.active_force_length(x, 1.4).numpy(),
        _oracle(muscle.calcActiveForceLengthMultiplier, LENGTHS),
        atol=1e-10,
    )
    np.testing.assert_allclose(
        curves.passive_force_length(x, 0.45).numpy(),
        _oracle(muscle.calcPassiveForceMultiplier, LENGTHS),
        atol=1e-10,
    )


def test_curves_closed_form_landmarks():
    one = torch.tensor(1.0, dtype=torch.float64)
    assert abs(float(curves.force_velocity(torch.tensor(0.0, dtype=torch.float64))) - 1) < 1e-12
    assert abs(float(curves.force_velocity(-one))) < 1e-3  # no force at maximal shortening
    assert abs(float(curves.passive_force_length(torch.tensor(0.2, dtype=torch.float64)))) < 1e-15
    assert (
        abs(float(curves.passive_force_length(torch.tensor(1.6, dtype=torch.float64))) - 1) < 1e-12
    )
    assert abs(float(curves.tendon_force_length(one))) < 1e-15
    assert (
        abs(float(curves.tendon_force_length(torch.tensor(1.049, dtype=torch.float64))) - 1) < 1e-12
    )


def test_curves_keep_float32():
    x = torch.linspace(0.5, 1.5, 11, dtype=torch.float32)
    for f in (curves.active_force_length, curves.passive_force_length, curves.force_velocity):
        assert f(x).dtype == torch.float32
