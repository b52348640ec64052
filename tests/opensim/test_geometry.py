"""Musculotendon length and moment arm against OpenSim over the whole coordinate range."""

import numpy as np
import pytest
import torch

from deepemg import opensim as bridge
from deepemg.opensim import ELBOW_MODEL_PATH

from ..conftest import ARM26_LOCKED, opensim_pose

ONE_MM = 1e-3


@pytest.mark.parametrize("which", ["elbow", "arm26"])
def test_length_and_moment_arm_within_1mm_of_opensim(which, elbow, arm26, arm26_with_load):
    model = elbow if which == "elbow" else arm26
    path = ELBOW_MODEL_PATH if which == "elbow" else arm26_with_load
    locked = None if which == "elbow" else ARM26_LOCKED
    pose = opensim_pose(path, locked=locked)
    low, high = model.coordinate_range
    # a dense grid that is not the knot grid, plus random points
    angles = np.concatenate(
        [
            np.linspace(low, high, 1001),
            np.random.default_rng(0).uniform(low, high, 500),
        ]
    )
    lengths, arms = bridge.sample_path_geometry(pose, model.muscles, angles)
    q = torch.tensor(angles, dtype=torch.float64)
    got_l = model.musculotendon_length(q).numpy()
    got_r = model.moment_arm(q).numpy()
    assert np.abs(got_l - lengths).max() < ONE_MM
    assert np.abs(got_r - arms).max() < ONE_MM


def test_expected_muscles_and_published_moment_arms(elbow, arm26):
    assert elbow.muscles == ["BIClong", "BICshort", "BRA", "BRD", "TRIlong", "TRIlat", "TRImed"]
    assert sorted(arm26.muscles) == sorted(
        ["TRIlong", "TRIlat", "TRImed", "BIClong", "BICshort", "BRA"]
    )
    # Arm26 at 90 degrees (shared/data README): BIC 4.88 cm, BRA 2.27 cm, TRI -1.99 cm
    arm = dict(zip(arm26.muscles, arm26.moment_arm(torch.tensor(np.pi / 2)).numpy(), strict=True))
    assert arm["BIClong"] == pytest.approx(0.0488, abs=2e-4)
    assert arm["BRA"] == pytest.approx(0.0227, abs=2e-4)
    assert arm["TRIlong"] == pytest.approx(-0.0199, abs=2e-4)


def test_moment_arm_is_minus_length_derivative(elbow):
    q = torch.linspace(0.1, 2.5, 200, dtype=torch.float64, requires_grad=True)
    length = elbow.musculotendon_length(q)
    slope = torch.stack(
        [
            torch.autograd.grad(length[:, j].sum(), q, retain_graph=True)[0]
            for j in range(elbow.n_muscles)
        ],
        dim=-1,
    )
    np.testing.assert_allclose(
        -slope.detach().numpy(), elbow.moment_arm(q).detach().numpy(), atol=1e-12
    )


def test_fit_report_gives_errors(elbow):
    report = elbow.fit_report
    assert set(report["max_moment_arm_error"]) == set(elbow.muscles)
    assert max(report["max_moment_arm_error"].values()) < ONE_MM
    assert max(report["max_length_error"].values()) < 1e-4
    assert report["dynamics_max_residual"] < 1e-8


def test_moment_arm_scale_scales_moment_arm_and_length(elbow):
    q = torch.tensor([0.3, 1.2, 2.0], dtype=torch.float64)
    params = {"moment_arm_scale": torch.tensor(1.1, dtype=torch.float64)}
    np.testing.assert_allclose(
        elbow.moment_arm(q, params).numpy(), 1.1 * elbow.moment_arm(q).numpy(), rtol=1e-12
    )
    q0 = elbow.reference_angle
    np.testing.assert_allclose(
        elbow.musculotendon_length(q0, params).numpy(),
        elbow.musculotendon_length(q0).numpy(),
        rtol=1e-12,
    )
