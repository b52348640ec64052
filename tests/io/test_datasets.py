"""The simulated-subject generator: layout, determinism, cache, and physics checks with OpenSim."""

import time

import numpy as np
import pytest

from deepemg import ELBOW_CHANNELS
from deepemg import opensim as bridge
from deepemg.datasets import SimulatedSubject, excitation_from_activation, make_elbow_lifting
from deepemg.datasets.lifting import _simulate_subject
from deepemg.datasets.subjects import build_subject_model, draw_subject
from deepemg.datasets.trajectories import minimum_jerk_trial

from ..conftest import forward_activation

SMALL = dict(n_subjects=2, n_trials=3, duration=2.0, loads=(0, 3, 6), progress=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_elbow_lifting(random_state=3, data_home=tmp_path_factory.mktemp("cache"), **SMALL)


def test_layout(small):
    assert small.X.shape == (6, 200, len(ELBOW_CHANNELS))
    assert small.y.shape == small.y_true.shape == small.activation.shape == (6, 200, 7)
    assert small.channels == list(ELBOW_CHANNELS)
    assert small.deep_muscles == ["BRA", "TRImed"]
    deep = [small.muscles.index(m) for m in small.deep_muscles]
    assert np.isnan(small.y[..., deep]).all()
    surface = [j for j in range(7) if j not in deep]
    assert not np.isnan(small.y[..., surface]).any()
    assert not np.isnan(small.y_true).any()
    assert list(small.groups) == ["S01"] * 3 + ["S02"] * 3
    np.testing.assert_array_equal(small.X[:, :, 3], small.loads[:, None] * np.ones((1, 200)))
    emg = [small.channels.index(f"emg_{m}") for m in small.surface_muscles]
    np.testing.assert_array_equal(small.X[..., emg], small.y[..., surface])
    assert len(small.true_params) == 2
    assert "effort_exponent" in small.true_params[0]
    assert "Simulated elbow lifting" in small.DESCR


def test_values_are_physical(small):
    assert small.activation.min() >= 0
    assert small.activation.max() <= 1
    assert np.nanmin(small.y) >= 0
    assert np.nanmax(small.y) <= 1
    assert small.y_true.min() >= 0
    assert small.y_true.max() <= 1
    angle = np.degrees(small.X[..., 0])
    assert angle.min() >= 0
    assert angle.max() <= 140
    # exact derivatives: velocity is the time derivative of the angle
    velocity = np.gradient(small.X[..., 0], 1 / small.rate, axis=1)
    assert np.abs(velocity - small.X[..., 1])[:, 2:-2].max() < 0.05


def test_deterministic_and_cached(small, tmp_path):
    start = time.perf_counter()
    again = make_elbow_lifting(random_state=3, data_home=tmp_path, cache=False, **SMALL)
    fresh = time.perf_counter() - start
    for key in ("X", "y_true", "activation"):
        np.testing.assert_array_equal(again[key], small[key])
    cached_first = make_elbow_lifting(random_state=3, data_home=tmp_path, **SMALL)
    start = time.perf_counter()
    cached = make_elbow_lifting(random_state=3, data_home=tmp_path, **SMALL)
    assert time.perf_counter() - start < min(1.0, fresh)
    np.testing.assert_array_equal(cached.X, cached_first.X)
    other = make_elbow_lifting(random_state=4, data_home=tmp_path, **SMALL)
    assert not np.allclose(other.X, small.X)


def test_solved_activations_balance_inverse_dynamics(small):
    """Through OpenSim's own muscles, the activations produce the inverse-dynamics torque."""
    subject = SimulatedSubject(**small.true_params[1])
    model = build_subject_model(subject)
    for i in np.flatnonzero(small.groups == "S02"):
        bridge.set_load_mass(model, float(small.loads[i]))
        pose = bridge.ModelPose(model, "r_elbow_flex")
        angle, velocity, acceleration, _, torque = small.X[i, :, :5].T
        np.testing.assert_allclose(
            bridge.inverse_dynamics(pose, angle, velocity, acceleration), torque, atol=1e-9
        )
        forces = bridge.muscle_tendon_forces(
            pose, small.muscles, small.activation[i], angle, velocity
        )
        _, arms = bridge.sample_path_geometry(pose, small.muscles, angle)
        assert np.abs((arms * forces).sum(axis=1) - torque).max() < 1e-3


def test_brachialis_activity_rises_with_load():
    rng = np.random.default_rng(0)
    subject = draw_subject(rng, "S01", bridge.load_model(bridge.ELBOW_MODEL_PATH))
    trial = minimum_jerk_trial(rng, 3.0, 100.0, (0.0, 95.0))
    loads = [0.0, 2.0, 4.0, 6.0]
    result = _simulate_subject(
        subject, [trial] * 4, loads, 100.0, "static_optimization", (0.0, 0.0), 0
    )
    bra = result["activation"][..., subject.muscles.index("BRA")].mean(axis=1)
    assert np.all(np.diff(bra) > 0), bra


def test_excitation_inverts_first_order_activation_dynamics():
    rate = 1000.0
    t = np.arange(0, 1, 1 / rate)
    activation = 0.2 + 0.1 * np.sin(2 * np.pi * t)[:, None]
    excitation = excitation_from_activation(activation, rate)
    # integrate da/dt = (e - a) / tau(a, e) forward with the excitation: get back the activation
    rebuilt = forward_activation(excitation[:, 0], activation[0, 0], rate, 0.015, 0.060)
    assert np.abs(rebuilt - activation[:, 0]).max() < 2e-3


def test_static_optimization_agrees_with_moco_inverse():
    from deepemg.opensim.moco import moco_inverse

    model = bridge.load_model(bridge.ELBOW_MODEL_PATH)
    bridge.set_load_mass(model, 4.0)
    pose = bridge.ModelPose(model, "r_elbow_flex")
    t = np.linspace(0.0, 2.0, 201)
    half, w = np.radians(50.0), np.pi
    angle = half * (1 - np.cos(w * t))
    velocity, acceleration = half * w * np.sin(w * t), half * w * w * np.cos(w * t)
    torque = bridge.inverse_dynamics(pose, angle, velocity, acceleration)
    muscles = bridge.muscle_names(model)
    so, _ = bridge.static_optimization(pose, muscles, angle, velocity, torque)
    moco, _ = moco_inverse(pose, t, angle)
    keep = t > 0.15  # Moco's initial activations are free-ish
    rms = np.sqrt(np.mean((so[keep] - moco[keep]) ** 2, axis=0))
    assert rms.max() < 0.02, rms


def test_bad_arguments():
    with pytest.raises(ValueError, match="solver"):
        make_elbow_lifting(solver="cmc", progress=False)
    with pytest.raises(ValueError, match="loads"):
        make_elbow_lifting(loads=(-1,), progress=False)
    with pytest.raises(ValueError, match="n_subjects"):
        make_elbow_lifting(n_subjects=0, progress=False)


@pytest.mark.slow
def test_moco_solver_end_to_end(tmp_path):
    data = make_elbow_lifting(
        n_subjects=1,
        n_trials=1,
        duration=2.0,
        loads=(3,),
        solver="moco",
        random_state=0,
        data_home=tmp_path,
        progress=False,
    )
    floor = (
        data.true_params[0]["cocontraction_floor"] + 3 * data.true_params[0]["cocontraction_per_kg"]
    )
    assert data.activation.min() >= floor - 1e-6
    assert data.activation.max() <= 1
    assert data.solver == "moco"
    assert not np.isnan(data.y_true).any()
