"""Harder simulated scenarios (make_scenario): truth checked against OpenSim, motions, loads,
sensors, and the default scenario identical to make_elbow_lifting."""

import dataclasses
import time

import numpy as np
import opensim as osim
import pytest

from deepemg import opensim as bridge
from deepemg.datasets import (
    SCENARIOS,
    ScenarioSubject,
    excitation_from_activation,
    make_elbow_lifting,
    make_scenario,
)
from deepemg.datasets.lifting import _top_angle
from deepemg.datasets.subjects import build_subject_model
from deepemg.datasets.trajectories import MOTIONS, minimum_jerk_trial, motion_trial

from ..conftest import forward_activation

TINY = dict(n_subjects=1, n_trials=3, duration=1.5, random_state=5, cache=False, progress=False)


@pytest.fixture(scope="module")
def compliant():
    return make_scenario("compliant_tendons", **TINY)


HEAVY = dict(n_subjects=2, n_trials=6, duration=1.0, random_state=2, cache=False, progress=False)


@pytest.fixture(scope="module")
def heavy():
    return make_scenario("heavy_loads", **HEAVY)


def fresh(name: str, n_subjects: int, n_trials: int, duration: float):
    """``make_scenario(name)`` of this size and seed 0, simulated afresh (no cache, no bar)."""
    return make_scenario(
        name,
        n_subjects=n_subjects,
        n_trials=n_trials,
        duration=duration,
        random_state=0,
        cache=False,
        progress=False,
    )


def _same(a, b) -> bool:
    """Equal values, arrays (NaN equal to NaN), lists and dicts compared all the way down."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return a == b


def _opensim_muscle_torque(model, muscles, load, angle, velocity, activation):
    """Sum of equilibrium tendon force x moment arm, straight from OpenSim (no deepemg code);
    NaN where OpenSim's equilibrium solver fails."""
    bridge.set_load_mass(model, load)
    state = model.initSystem()
    coordinate = model.getCoordinateSet().get("r_elbow_flex")
    handles = [model.getMuscles().get(m) for m in muscles]
    torque = np.full(angle.size, np.nan)
    for k in range(angle.size):
        coordinate.setValue(state, float(angle[k]), False)
        coordinate.setSpeedValue(state, float(velocity[k]))
        for j, muscle in enumerate(handles):
            muscle.setActivation(state, float(activation[k, j]))
        try:
            model.equilibrateMuscles(state)
        except RuntimeError:
            continue
        model.realizeDynamics(state)
        torque[k] = sum(
            m.getTendonForce(state) * m.computeMomentArm(state, coordinate) for m in handles
        )
    return torque


def test_compliant_truth_is_consistent_with_opensim(compliant):
    subject = ScenarioSubject(**compliant.true_params[0])
    assert subject.muscle_model == "thelen_compliant"
    model = build_subject_model(subject)
    assert {
        model.getMuscles().get(i).getConcreteClassName()
        for i in range(model.getMuscles().getSize())
    } == {"Thelen2003Muscle"}
    for i in range(len(compliant.loads)):
        angle, velocity, acceleration, load, torque = compliant.X[i, :, :5].T
        pose = bridge.ModelPose(build_subject_model(subject), "r_elbow_flex")
        bridge.set_load_mass(pose.model, float(load[0]))
        pose.reinitialize()
        inverse = bridge.inverse_dynamics(pose, angle, velocity, acceleration)
        np.testing.assert_allclose(inverse, torque, atol=1e-9)
        muscle = _opensim_muscle_torque(
            model, compliant.muscles, float(load[0]), angle, velocity, compliant.activation[i]
        )
        solved = np.isfinite(muscle) & ~compliant.saturated[i]
        assert solved.mean() > 0.95
        miss = muscle[solved] - inverse[solved]
        assert np.abs(miss).max() < 0.05, np.abs(miss).max()
        assert np.sqrt(np.mean(miss**2)) < 0.01 * max(np.ptp(inverse), 1.0)
    assert compliant.truth_residual < 0.05
    assert compliant.activation.min() >= 0.01 - 1e-12  # Thelen's lowest activation


PERSONAL = dict(n_subjects=2, n_trials=1, duration=1.0, random_state=0, cache=False, progress=False)

# the literature ranges (docstring of draw_muscle_curves), written out rather than imported
CURVE_RANGES = {
    "active_force_width_scale": (1.0, 1.4),
    "passive_fiber_strain_at_one_norm_force": (0.45, 0.75),
    "max_contraction_velocity": (6.0, 14.0),  # optimal fibre lengths per second
    "tendon_strain_at_one_norm_force": (0.033, 0.06),
}
# DeGrooteFregly2016Muscle's defaults, those of the generic elbow model
GENERIC_CURVES = {
    "active_force_width_scale": 1.0,
    "passive_fiber_strain_at_one_norm_force": 0.6,
    "max_contraction_velocity": 10.0,
    "tendon_strain_at_one_norm_force": 0.049,
}


@pytest.fixture(scope="module")
def personal():
    return make_scenario("personal_curves", **PERSONAL)


def _compliant_degroote(subject, curves):
    """The subject's anatomy (rigid model) made compliant DeGrooteFregly2016 with ``curves``
    (name -> per-muscle values), with plain OpenSim calls only."""
    model = build_subject_model(subject, muscle_model="degroote_rigid")
    for j, name in enumerate(subject.muscles):
        muscle = osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(name))
        muscle.set_ignore_tendon_compliance(False)
        for key, values in curves.items():
            getattr(muscle, f"set_{key}")(float(np.broadcast_to(values, (7,))[j]))
    return model


def test_personal_curves_are_drawn_within_ranges_and_differ(personal):
    drawn = {key: np.array([p[key] for p in personal.true_params]) for key in CURVE_RANGES}
    for key, (low, high) in CURVE_RANGES.items():
        values = drawn[key]
        assert values.shape == (2, 7), key
        assert values.min() >= low, key
        assert values.max() <= high, key
        assert (np.ptp(values, axis=1) > 0.1 * (high - low)).all(), key  # between muscles
        assert np.abs(values[0] - values[1]).max() > 0.1 * (high - low), key  # subjects
    assert {p["muscle_model"] for p in personal.true_params} == {"degroote_compliant_personal"}
    # the other scenarios' subjects have no curves of their own
    other = fresh("strategies", 1, 1, 0.3)
    assert not set(CURVE_RANGES) & set(other.true_params[0])


def test_personal_truth_is_consistent_with_opensim(personal):
    assert personal.scenario == "personal_curves"
    assert not personal.saturated.any()  # feasible: no muscle fully active anywhere
    assert personal.truth_residual < 0.01
    assert personal.activation.min() >= 0.005 - 1e-12  # default's co-contraction floor
    for params in personal.true_params:
        subject = ScenarioSubject(**params)
        curves = {key: params[key] for key in CURVE_RANGES}
        reference = _compliant_degroote(subject, curves)
        built = build_subject_model(subject)  # the model the truth was solved with
        for j, name in enumerate(personal.muscles):
            muscle = osim.DeGrooteFregly2016Muscle.safeDownCast(built.getMuscles().get(name))
            assert not muscle.get_ignore_tendon_compliance()
            for key, values in curves.items():
                assert getattr(muscle, f"get_{key}")() == values[j], (name, key)
        for i in np.flatnonzero(personal.groups == subject.name):
            angle, velocity, _, load, torque = personal.X[i, :, :5].T
            frames = np.arange(0, angle.size, 10)  # a few states per trial
            at = angle[frames], velocity[frames], personal.activation[i][frames]
            muscle = _opensim_muscle_torque(reference, personal.muscles, float(load[0]), *at)
            assert np.isfinite(muscle).all()
            np.testing.assert_allclose(muscle, torque[frames], atol=2e-3)
            # with the generic curves, the same activations miss the torque (by 1-10 %)
            generic = _compliant_degroote(subject, GENERIC_CURVES)
            miss = _opensim_muscle_torque(generic, personal.muscles, float(load[0]), *at)
            relative = np.abs(miss - torque[frames]) / np.maximum(np.abs(torque[frames]), 1.0)
            assert relative.max() > 0.01, relative


def test_estimators_get_the_generic_model(personal):
    from deepemg.opensim import elbow_model

    model = bridge.load_model(bridge.ELBOW_MODEL_PATH)  # the file the estimators read
    for i in range(model.getMuscles().getSize()):
        muscle = osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(i))
        assert muscle.get_ignore_tendon_compliance()
        for key, value in GENERIC_CURVES.items():
            assert getattr(muscle, f"get_{key}")() == value, key
    physics = elbow_model()
    np.testing.assert_array_equal(physics.max_contraction_velocity, 10.0)
    np.testing.assert_array_equal(physics.passive_fiber_strain, 0.6)
    np.testing.assert_array_equal(physics.active_force_width_scale, 1.0)
    assert physics.muscle_law.name == "rigid_tendon_degroote_fregly"
    # and nothing of the curves reaches X: its channels are the default scenario's
    assert personal.channels == fresh("default", 1, 1, 0.3).channels


def test_personal_curves_cache_key_and_errors(monkeypatch):
    from deepemg.datasets import scenarios, subjects

    key = scenarios._scenario_cache_path
    names = [key(name, 5, 12, 5.0, 100.0, 0, "/tmp").name for name in SCENARIOS]
    assert len(set(names)) == len(SCENARIOS)
    personal = names[list(SCENARIOS).index("personal_curves")]
    wider = {**subjects.MUSCLE_CURVE_RANGES, "max_contraction_velocity": (5.0, 15.0)}
    monkeypatch.setattr(scenarios, "MUSCLE_CURVE_RANGES", wider)
    assert key("personal_curves", 5, 12, 5.0, 100.0, 0, "/tmp").name != personal
    assert key("default", 5, 12, 5.0, 100.0, 0, "/tmp").name == names[0]
    generic = fresh("default", 1, 1, 0.3).true_params[0]
    subject = ScenarioSubject(**generic)
    with pytest.raises(ValueError, match="draw_muscle_curves"):
        build_subject_model(subject, muscle_model="degroote_compliant_personal")


def test_thelen_forces_are_not_the_rigid_degroote_law(compliant):
    """At the truth's activations, deepemg's own muscle law would not make the torque."""
    subject = ScenarioSubject(**compliant.true_params[0])
    rigid = build_subject_model(subject, muscle_model="degroote_rigid")
    i = int(np.argmax(compliant.loads))
    angle, velocity, _, load, torque = compliant.X[i, :, :5].T
    bridge.set_load_mass(rigid, float(load[0]))
    pose = bridge.ModelPose(rigid, "r_elbow_flex")
    forces = bridge.muscle_tendon_forces(
        pose, compliant.muscles, compliant.activation[i], angle, velocity
    )
    _, arms = bridge.sample_path_geometry(pose, compliant.muscles, angle)
    assert np.abs((arms * forces).sum(axis=1) - torque).max() > 0.5
    # and muscle by muscle, at one activation and pose
    thelen = bridge.ModelPose(build_subject_model(subject), "r_elbow_flex")
    a = np.full(len(compliant.muscles), 0.5)
    at = [np.radians(60.0)], [1.0]
    f_thelen = bridge.equilibrium_tendon_forces(thelen, compliant.muscles, a, *at)[0]
    f_rigid = bridge.muscle_tendon_forces(pose, compliant.muscles, a, *at)[0]
    assert np.abs(f_thelen / f_rigid - 1).max() > 0.05


def test_equilibrium_forces_equal_rigid_forces_for_degroote():
    model = bridge.load_model(bridge.ELBOW_MODEL_PATH)
    pose = bridge.ModelPose(model, "r_elbow_flex")
    muscles = bridge.muscle_names(model)
    angle, velocity = np.radians([20.0, 70.0, 110.0]), np.array([-2.0, 0.0, 3.0])
    a = np.linspace(0.1, 0.9, len(muscles))
    np.testing.assert_allclose(
        bridge.equilibrium_tendon_forces(pose, muscles, a, angle, velocity),
        bridge.muscle_tendon_forces(pose, muscles, a, angle, velocity),
        rtol=1e-10,
    )


@pytest.mark.parametrize("kind", sorted(MOTIONS))
def test_motion_derivatives_and_range(kind):
    rate = 100.0
    for seed in range(4):
        load = [0.0, 2.0, 5.0, 7.0][seed]
        top = _top_angle(load)
        t, q, qd, qdd = motion_trial(kind, np.random.default_rng(seed), 5.0, rate, (5.0, top))
        assert t.shape == q.shape == qd.shape == qdd.shape == (500,)
        assert np.degrees(q).min() >= 5.0 - 1e-9
        assert np.degrees(q).max() <= top + 1e-9
        velocity_error = np.abs(np.gradient(q, 1 / rate) - qd)[1:-1]
        assert velocity_error.max() < 0.02 * max(np.abs(qd).max(), 1.0), velocity_error.max()
        acceleration_error = np.abs(np.gradient(qd, 1 / rate) - qdd)[1:-1]
        scale = max(np.abs(qdd).max(), 1.0)
        # a half-cosine's acceleration jumps where a move starts or stops: one or two samples
        assert np.quantile(acceleration_error, 0.9) < 0.03 * scale
        if kind != "sinusoid_holds":
            assert acceleration_error.max() < 0.1 * scale, acceleration_error.max() / scale
        assert np.ptp(np.degrees(q)) > 20.0  # it moves


def test_ballistic_is_fast_and_braked():
    rng = np.random.default_rng(0)
    ballistic = [motion_trial("ballistic", rng, 5.0, 100.0, (5.0, 120.0)) for _ in range(5)]
    default = [minimum_jerk_trial(rng, 5.0, 100.0, (0.0, 120.0)) for _ in range(5)]
    fast = np.median([np.abs(tr[2]).max() for tr in ballistic])
    slow = np.median([np.abs(tr[2]).max() for tr in default])
    assert fast > 2.5 * slow, (fast, slow)
    # a cap on acceleration (heavy loads) slows the moves down
    capped = motion_trial(
        "ballistic", np.random.default_rng(1), 5.0, 100.0, (5.0, 92.0), max_acceleration=30.0
    )
    assert np.abs(capped[3]).max() <= 30.0 + 1e-9


def test_motions_scenario_deals_kinds_and_passes_estimator_checks():
    from deepemg import NMMRegressor

    data = fresh("motions", 1, 6, 2.0)
    assert sorted(set(data.motion)) == ["ballistic", "random", "sinusoid_holds"]
    assert all(list(data.motion).count(k) == 2 for k in set(data.motion))
    assert np.abs(np.gradient(data.X[..., 0], 0.01, axis=1) - data.X[..., 1])[:, 1:-1].max() < 0.2
    NMMRegressor(max_epochs=1, window=50).fit(data.X[:2], data.y[:2], subject_ids=data.groups[:2])


def test_beyond_training_loads_only_in_the_last_third(heavy):
    train = heavy.train_loads
    assert train == [0.0, 1.0, 2.0, 3.0, 4.0]
    np.testing.assert_array_equal(heavy.beyond_training, heavy.loads > max(train))
    for subject in ("S01", "S02"):
        index = np.flatnonzero(heavy.groups == subject)
        np.testing.assert_array_equal(index, index[0] + np.arange(6))  # contiguous
        loads = heavy.loads[index]
        assert set(loads[:4]) <= set(train)  # training: round(2/3 * 6) = 4 trials
        assert not heavy.beyond_training[index[:4]].any()
        assert heavy.beyond_training[index[4:]].sum() == 1  # half of the 2 test trials
        assert set(loads[heavy.beyond_training[index]]) <= {5.0, 6.0, 7.0}
    np.testing.assert_array_equal(heavy.X[:, :, 3], heavy.loads[:, None] * np.ones((1, 100)))
    assert heavy.truth_residual < 1e-6
    assert heavy.scenario == "heavy_loads"


def test_gain_errors_only_on_the_measured_channels():
    kwargs = dict(
        n_subjects=1, n_trials=3, duration=2.0, random_state=1, cache=False, progress=False
    )
    for name in ("default", "strategies"):
        data = make_scenario(name, **kwargs)
        surface = [data.muscles.index(m) for m in data.surface_muscles]
        ratios = []
        for j in surface:
            active = data.y_true[..., j] > 0.03
            ratios.append(np.median(data.y[..., j][active] / data.y_true[..., j][active]))
        ratios = np.array(ratios)
        emg = [data.channels.index(f"emg_{m}") for m in data.surface_muscles]
        np.testing.assert_array_equal(data.X[..., emg], data.y[..., surface])
        if name == "default":
            np.testing.assert_allclose(ratios, 1.0, atol=0.1)
        else:
            gain = np.asarray(data.true_params[0]["emg_gain"])[surface]
            assert np.ptp(gain) > 0.2
            np.testing.assert_allclose(ratios, gain, rtol=0.12)
            assert np.nanmax(data.y) <= 1.5
        # y_true is the noise-free, gain-free envelope of the solved activations
        params = data.true_params[0]
        taus = (
            params.get("activation_time_constant", 0.015),
            params.get("deactivation_time_constant", 0.060),
        )
        for i in range(3):
            excitation = excitation_from_activation(data.activation[i], data.rate, *taus)
            delay = params["electromechanical_delay"]
            envelope = np.stack(
                [np.interp(data.time + delay, data.time, excitation[:, j]) for j in range(7)],
                axis=1,
            )
            np.testing.assert_allclose(data.y_true[i], envelope, atol=1e-12)


def test_strategy_settings_are_drawn_from_the_scenario():
    data = fresh("strategies", 3, 1, 1.0)
    for i, params in enumerate(data.true_params):  # one sequence per subject
        assert 0.010 <= params["activation_time_constant"] <= 0.025
        assert 0.040 <= params["deactivation_time_constant"] <= 0.090
        assert 0.010 <= params["electromechanical_delay"] <= 0.100
        assert 0.02 <= params["cocontraction_floor"] <= 0.08
        volume = np.asarray(params["max_isometric_force"]) * params["optimal_fiber_length"]
        # volume-weighted effort: weights follow volume, up to the log-normal scatter
        assert np.corrcoef(np.log(params["effort_weights"]), np.log(volume))[0, 1] > 0.5
        floor = params["cocontraction_floor"] + params["cocontraction_per_kg"] * data.loads[i]
        assert data.activation[i].min() >= floor - 1e-9


def test_default_scenario_is_make_elbow_lifting(tmp_path):
    kwargs = dict(n_subjects=1, n_trials=3, duration=1.0, random_state=4, progress=False)
    lifting = make_elbow_lifting(cache=False, **kwargs)
    data = make_scenario("default", cache=False, **kwargs)
    for key, value in lifting.items():
        assert key == "simulation_seconds" or _same(data[key], value), key
    assert not data.beyond_training.any()
    assert data.train_loads == [0, 1, 2, 3, 4, 5, 6]
    assert list(data.motion) == ["minimum_jerk"] * 3
    assert data.scenario == "default"
    assert data.truth_residual < 1e-6


def test_unknown_scenario_names_the_scenarios():
    with pytest.raises(ValueError, match="compliant_tendons") as error:
        make_scenario("nope", progress=False)
    assert all(name in str(error.value) for name in SCENARIOS)


def test_same_seed_same_data_and_cache_round_trip(heavy, tmp_path):
    again = make_scenario("heavy_loads", **HEAVY)
    for key in ("X", "y", "y_true", "activation", "loads", "beyond_training"):
        np.testing.assert_array_equal(again[key], heavy[key], err_msg=key)
    kwargs = dict(n_subjects=1, n_trials=3, duration=1.0, progress=False, data_home=tmp_path)
    other = make_scenario("heavy_loads", random_state=3, cache=False, **kwargs)
    first = make_scenario("heavy_loads", random_state=3, **kwargs)
    assert len(list(tmp_path.glob("scenario_heavy_loads-*.npz"))) == 1
    start = time.perf_counter()
    cached = make_scenario("heavy_loads", random_state=3, **kwargs)
    assert time.perf_counter() - start < 1.0
    assert cached.keys() == first.keys()
    for key in first:
        assert _same(cached[key], first[key]), key
    assert cached.truth_residual == first.truth_residual
    assert cached.motion.dtype.kind == "U"
    np.testing.assert_array_equal(other.X, first.X)
    different = make_scenario("heavy_loads", random_state=4, cache=False, **kwargs)
    assert not np.allclose(different.X, first.X)


def test_scenario_definitions():
    assert list(SCENARIOS) == [
        "default",
        "compliant_tendons",
        "motions",
        "heavy_loads",
        "strategies",
        "off_simulator",
        "ballistic",
        "personal_curves",
    ]
    hardest = SCENARIOS["off_simulator"]
    assert hardest.muscle == "thelen_compliant"
    assert hardest.emg_gain_sd == 0.25
    assert set(hardest.motions) == {"random", "sinusoid_holds"}
    assert hardest.beyond_loads == (5.0, 6.0, 7.0)
    assert SCENARIOS["ballistic"].motions.count("ballistic") == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        hardest.name = "x"


def test_excitation_time_constants():
    rate = 1000.0
    t = np.arange(0, 1, 1 / rate)
    activation = 0.2 + 0.1 * np.sin(2 * np.pi * t)[:, None]
    slow = excitation_from_activation(activation, rate, 0.025, 0.090)
    fast = excitation_from_activation(activation, rate, 0.010, 0.040)
    assert np.abs(slow - activation).max() > 1.5 * np.abs(fast - activation).max()
    np.testing.assert_array_equal(
        excitation_from_activation(activation, rate),
        excitation_from_activation(activation, rate, 0.015, 0.060),
    )
    # forward first-order dynamics with the slow constants gives the activation back
    rebuilt = forward_activation(slow[:, 0], activation[0, 0], rate, 0.025, 0.090)
    assert np.abs(rebuilt - activation[:, 0]).max() < 2e-3


def test_thelen_replacement_keeps_anatomy():
    model = bridge.load_model(bridge.ELBOW_MODEL_PATH)
    before = [
        (
            m.getMaxIsometricForce(),
            m.getOptimalFiberLength(),
            m.getTendonSlackLength(),
            m.getPennationAngleAtOptimalFiberLength(),
        )
        for m in (model.getMuscles().get(i) for i in range(7))
    ]
    state = model.initSystem()
    lengths = [model.getMuscles().get(i).getLength(state) for i in range(7)]
    bridge.use_thelen_muscles(model)
    state = model.initSystem()
    for i in range(7):
        muscle = osim.Thelen2003Muscle.safeDownCast(model.getMuscles().get(i))
        assert muscle is not None
        assert (
            muscle.getMaxIsometricForce(),
            muscle.getOptimalFiberLength(),
            muscle.getTendonSlackLength(),
            muscle.getPennationAngleAtOptimalFiberLength(),
        ) == before[i]
        assert muscle.getLength(state) == pytest.approx(lengths[i], rel=1e-12)
