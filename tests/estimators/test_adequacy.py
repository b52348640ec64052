"""Model adequacy (deepemg.adequacy): known truth in closed form, the estimator's check and warning.

Every residual is checked against torques computed independently with the muscle model's
public ``joint_torque`` (validated against OpenSim in tests/physics), the warning on data whose
torque the model cannot produce, its absence after tiny fits of data the model follows.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from deepemg import ModelAdequacyWarning, NMMRegressor
from deepemg.adequacy import (
    MIN_STEPS,
    NOISE_FLOOR_FRACTION,
    PERSONALIZED_RESIDUAL_THRESHOLD,
    RESIDUAL_THRESHOLD,
    SubjectAdequacy,
    adequacy_from_rows,
    adequacy_rows,
    assess_fit,
    measured_drive_residual,
    subject_adequacy,
    surface_drive_residual,
    torque_noise_level,
    training_steps,
)
from deepemg.datasets import make_elbow_lifting
from deepemg.nmm_module import NeuralMusculoskeletalModule
from deepemg.opensim import elbow_model
from deepemg.persistence import load_model

from ..conftest import TINY_NMM

BRA, TRIMED = 2, 6
RATE = 100.0


@pytest.fixture(scope="module")
def module():
    """An untrained module with the elbow and one subject's nominal parameters."""
    return NeuralMusculoskeletalModule.nominal(elbow_model(), rate=RATE)


@pytest.fixture(scope="module")
def lifts(tmp_path_factory):
    """One simulated subject (deepemg's own muscle law), three 2 s lifts."""
    return make_elbow_lifting(
        n_subjects=1,
        n_trials=3,
        duration=2.0,
        random_state=0,
        progress=False,
        data_home=tmp_path_factory.mktemp("adequacy"),
    )


def _samples(n_steps: int = 80):
    angle = np.linspace(0.4, 2.0, n_steps)[None]
    return angle, np.zeros_like(angle), np.zeros(1, dtype=int)


def _params(module) -> dict:
    """The module's one subject's parameters (nominal), detached."""
    params = module.subject_parameters(torch.zeros(1, dtype=torch.long))
    return {k: v[0].detach() for k, v in params.items()}


def _joint_torque(module, activation, angle, velocity) -> np.ndarray:
    """The model's joint torque of an activation ``(1, T, 7)``, its public API."""
    params = _params(module)
    return module.physics.joint_torque(activation[0], angle[0], velocity[0], params).numpy()[None]


def _surface_activation(module, measured) -> np.ndarray:
    """Activation of the measured EMG through the subject's dynamics (deep columns 0)."""
    params = _params(module)
    drive = np.nan_to_num(measured)[0]
    activation = module.physics.activation(drive, RATE, params).numpy()[None]
    activation[..., [BRA, TRIMED]] = 0.0
    return activation


def test_unreachable_torque_is_the_distance_to_what_the_free_muscles_reach(module):
    angle, velocity, subject = _samples()
    measured = np.full((1, angle.shape[1], 7), 0.2)
    measured[..., [BRA, TRIMED]] = np.nan
    active = _surface_activation(module, measured)
    reachable = active.copy()
    reachable[..., BRA], reachable[..., TRIMED] = 0.6, 0.3
    strongest, weakest = active.copy(), active.copy()
    strongest[..., BRA], weakest[..., TRIMED] = 1.0, 1.0
    flexion = _joint_torque(module, strongest, angle, velocity)
    extension = _joint_torque(module, weakest, angle, velocity)
    cases = {
        "reachable": (_joint_torque(module, reachable, angle, velocity), 0.0),
        "beyond flexion": (flexion + 5.0, 5.0),
        "beyond extension": (extension - 3.0, -3.0),
    }
    for name, (torque, expected) in cases.items():
        residual = surface_drive_residual(module, measured, angle, velocity, torque, subject)
        np.testing.assert_allclose(residual, expected, atol=1e-8, err_msg=name)


def test_measured_drive_residual_is_zero_for_the_models_own_torque(module):
    angle, velocity, subject = _samples()
    emg = np.full((1, angle.shape[1], 7), 0.15)
    emg[..., BRA] = np.linspace(0.05, 0.6, angle.shape[1])
    params = _params(module)
    activation = module.physics.activation(emg[0], RATE, params).numpy()[None]
    torque = _joint_torque(module, activation, angle, velocity)
    measured = emg.copy()
    measured[..., [BRA, TRIMED]] = np.nan
    holds = measured_drive_residual(module, measured, emg, angle, velocity, torque, subject)
    np.testing.assert_allclose(holds, 0.0, atol=1e-8)
    stronger = measured_drive_residual(
        module, measured, emg, angle, velocity, 2.5 * torque, subject
    )
    np.testing.assert_allclose(stronger, 1.5 * torque, atol=1e-8)  # the model 2.5x too weak
    nothing = np.full_like(measured, np.nan)
    assert np.isnan(
        measured_drive_residual(module, nothing, emg, angle, velocity, torque, subject)
    ).all()


def test_torque_noise_level_of_white_noise_and_its_floor():
    t = np.arange(2000) / RATE
    smooth = 10.0 * np.sin(2 * np.pi * 0.4 * t) + 5.0 * np.sin(2 * np.pi * 1.3 * t)
    noise = np.random.default_rng(1).normal(0.0, 0.5, t.size)
    level = torque_noise_level(np.stack([smooth, smooth + noise]), RATE)
    assert level[0] == pytest.approx(NOISE_FLOOR_FRACTION * np.sqrt((smooth**2).mean()))
    assert level[1] == pytest.approx(0.5, rel=0.05)
    # too slow a rate to see above the movement band: the floor only
    low = torque_noise_level((smooth + noise)[None, ::10], 10.0)
    assert low[0] == pytest.approx(
        NOISE_FLOOR_FRACTION * np.sqrt(((smooth + noise)[::10] ** 2).mean())
    )


@pytest.mark.parametrize(
    ("torque", "rate", "match"),
    [
        (np.zeros(5), 100.0, "shaped"),
        (np.array([[1.0, np.nan, 2.0]]), 100.0, "finite"),
        (np.ones((1, 5)), 0.0, "rate"),
    ],
)
def test_torque_noise_level_refuses_bad_input(torque, rate, match):
    with pytest.raises(ValueError, match=match):
        torque_noise_level(torque, rate)


def test_surface_drive_residual_refuses_mismatched_shapes(module):
    angle, velocity, subject = _samples()
    with pytest.raises(ValueError, match="measured must be shaped"):
        surface_drive_residual(module, np.zeros((1, 5, 7)), angle, velocity, angle, subject)
    with pytest.raises(ValueError, match="torque must be shaped"):
        surface_drive_residual(
            module, np.zeros((1, angle.shape[1], 7)), angle, velocity, angle[:, :5], subject
        )


def test_verdicts_follow_the_thresholds():
    torque, measured = np.full((2, 10), 10.0), np.full((2, 10, 3), 0.2)
    noise = np.full(2, 0.1)  # 1 % of the torque: a residual counts beyond 0.7 N·m

    def verdict(residual_fraction, unreachable_fraction=0.0, noise=noise):
        a = subject_adequacy(
            torque * residual_fraction, torque * unreachable_fraction, torque, noise, None, measured
        )
        return a.verdict

    assert verdict(0.9 * RESIDUAL_THRESHOLD) == "adequate"
    assert verdict(1.1 * RESIDUAL_THRESHOLD) == "poor"
    assert verdict(1.1 * RESIDUAL_THRESHOLD, noise=np.full(2, 5.0)) == "adequate"  # in the noise
    assert verdict(0.0, unreachable_fraction=0.05) == "adequate"  # within a parameters' misfit
    assert verdict(0.0, unreachable_fraction=0.15) == "poor"
    personalised = subject_adequacy(
        torque * 0.9 * PERSONALIZED_RESIDUAL_THRESHOLD,
        torque * 0,
        torque,
        noise,
        None,
        measured,
        PERSONALIZED_RESIDUAL_THRESHOLD,
    )
    assert personalised.verdict == "adequate"
    lenient = subject_adequacy(torque * 0.15, torque * 0, torque, noise, None, measured, 0.2)
    assert lenient.verdict == "adequate"  # the threshold given is the one applied
    nothing = subject_adequacy(
        np.full((2, 10), np.nan), np.full((2, 10), np.nan), torque, noise, None, measured
    )
    assert nothing.verdict == "not assessed"


def test_records_round_trip_through_json_rows_and_refuse_damage():
    a = SubjectAdequacy(0.03, 1.5, 0.0, math.nan, (0.02, math.nan), "adequate")
    rows = adequacy_rows({"S2": a}, ["S1", "S2"])
    back = adequacy_from_rows(rows, ["S1", "S2"])["S2"]
    assert back.torque_residual_ratio == 0.03
    assert math.isnan(back.surface_pull)
    assert back.trial_residual_ratios[0] == 0.02
    assert math.isnan(back.trial_residual_ratios[1])
    for damaged in (
        [{**rows[0], "subject": 5}],
        [{**rows[0], "verdict": "fine"}],
        [{k: v for k, v in rows[0].items() if k != "noise_ratio"}],
        {"S2": rows[0]},
    ):
        with pytest.raises(ValueError, match="model adequacy"):
            adequacy_from_rows(damaged, ["S1", "S2"])


def test_training_steps_counts_training_batches_only():
    history = [{"batches": [{"train_loss": 1.0}] * 3 + [{"valid_loss": 1.0}]}, {"epoch": 2}]
    assert training_steps(history) == 3


def _fit(lifts, torque_factor: float = 1.0, **params):
    X = lifts.X.copy()
    X[..., lifts.channels.index("elbow_torque")] *= torque_factor
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = NMMRegressor(**{**TINY_NMM, **params}).fit(X, lifts.y, subject_ids=lifts.groups)
    adequacy = [w for w in caught if issubclass(w.category, ModelAdequacyWarning)]
    return model, X, adequacy


def test_a_tiny_fit_of_data_the_model_follows_is_measured_and_not_judged(lifts):
    model, _, warned = _fit(lifts)
    assert not warned
    assert training_steps(model.history_) < MIN_STEPS
    ((subject, record),) = model.model_adequacy_.items()
    assert subject == lifts.groups[0]
    assert record.verdict == "not assessed"
    assert record.unreachable_ratio == 0.0  # the free BRA and TRImed close every sample
    assert 0.0 < record.torque_residual_ratio < 1.0
    assert len(record.trial_residual_ratios) == 3


def test_a_torque_the_muscles_cannot_produce_warns(lifts):
    # the ID torque 10x what the simulated muscles made: wrong units, or a model 10x too weak
    model, _, warned = _fit(lifts, torque_factor=10.0)
    assert len(warned) == 1
    message = str(warned[0].message)
    assert "unreachable_ratio" in message
    assert "predict_physics='none'" in message
    record = model.model_adequacy_[lifts.groups[0]]
    assert record.verdict == "poor"
    assert record.unreachable_ratio > 0.3  # most of the torque is out of the muscles' reach


def test_adequacy_survives_save_and_load_and_personalize_adds_a_subject(lifts, tmp_path):
    model, X, _ = _fit(lifts, torque_factor=10.0)
    path = model.save(tmp_path / "model.zip")
    loaded = load_model(path)
    assert loaded.model_adequacy_ == model.model_adequacy_
    with pytest.warns(ModelAdequacyWarning, match="'new'"):
        loaded.personalize(X[:2], None, subject_ids=["new", "new"], max_epochs=1)
    assert set(loaded.model_adequacy_) == {lifts.groups[0], "new"}
    assert math.isnan(loaded.model_adequacy_["new"].surface_pull)  # no surface EMG given
    assert loaded.model_adequacy_[lifts.groups[0]] == model.model_adequacy_[lifts.groups[0]]
    # a fresh fit forgets the old subjects' records
    refit = loaded.fit(lifts.X, lifts.y, subject_ids=["other"] * 3)
    assert list(refit.model_adequacy_) == ["other"]


def test_assess_fit_needs_a_fitted_estimator_and_known_subjects(lifts):
    with pytest.raises(NotFittedError):
        assess_fit(NMMRegressor(), lifts.X, lifts.y)
    model, _, _ = _fit(lifts)
    with pytest.raises(ValueError, match="y must be shaped"):
        assess_fit(model, lifts.X, lifts.y[..., :3], lifts.groups)
    population = assess_fit(model, lifts.X, None)
    assert list(population) == [None]
    assert math.isnan(population[None].surface_pull)


def test_the_benchmark_report_lists_each_subjects_adequacy():
    from deepemg.adequacy import adequacy_table
    from deepemg.benchmark import BenchmarkResult
    from deepemg.report import markdown

    poor = SubjectAdequacy(0.0612, 3.06, 0.0, 0.0871, (0.05, 0.07), "poor")
    rows = [{**row, "subject": "S01"} for row in adequacy_table({0: poor})]
    row = {"evaluation": "within subject", "subject": "S01", "BRA_r": 0.5, "BRA_nrmse": 0.2}
    result = BenchmarkResult(
        rows=[{**row, "method": "NMM, network alone"}],
        deep_muscles=["BRA"],
        examples={},
        histories={},
        parameters=[],
        true_parameters=None,
        settings={},
        adequacy=rows,
    )
    text = markdown(result)
    assert "## Model adequacy" in text
    assert "| S01 | 0.0612 | 3.06 | 0.0 | 0.0871 | poor |" in text
    result.adequacy = []  # results of older versions: no section
    assert "Model adequacy" not in markdown(result)


def test_the_residual_is_judged_only_after_enough_training_steps(lifts):
    from deepemg.adequacy import record_adequacy

    # the model twice too strong for its torque: a residual no tiny fit removes
    model, X, warned = _fit(lifts, torque_factor=0.5)
    assert not warned  # one epoch: not judged
    record = model.model_adequacy_[lifts.groups[0]]
    assert record.torque_residual_ratio > 2 * RESIDUAL_THRESHOLD
    assert record.verdict == "not assessed"
    trained = [{"batches": [{"train_loss": 1.0}] * MIN_STEPS}]  # as if trained long enough
    with pytest.warns(ModelAdequacyWarning, match="torque_residual_ratio"):
        record_adequacy(model, X, lifts.y, lifts.groups, history=trained)
    assert model.model_adequacy_[lifts.groups[0]].verdict == "poor"


def test_auto_physics_corrects_only_where_the_subjects_model_is_adequate(lifts):
    from dataclasses import replace

    from deepemg import StreamingPredictor

    model = NMMRegressor(**TINY_NMM).fit(lifts.X, lifts.y, subject_ids=["a", "a", "b"])
    assert model.predict_physics == "auto"  # the default
    record = model.model_adequacy_["a"]
    model.model_adequacy_ = {
        "a": replace(record, verdict="poor"),
        "b": replace(record, verdict="adequate"),
    }
    subjects = ["a", "b", "b"]
    auto = model.predict(lifts.X, subjects)
    network = model.predict(lifts.X, subjects, predict_physics="none")
    corrected = model.predict(lifts.X[1:], subjects[1:], predict_physics="torque")
    np.testing.assert_array_equal(auto[0], network[0])  # "a" is poor: the network alone
    levelled = model.predict(lifts.X[:1], subjects[:1], predict_physics="level")[0]
    deep = model.net_.module_.levelled
    assert np.abs(levelled - auto[0])[:, deep].min() > 1e-4  # without what the torque taught
    np.testing.assert_allclose(auto[1:], corrected, atol=1e-5)  # "b": corrected
    assert np.abs(corrected - network[1:]).max() > 1e-3  # the correction does change it
    # a subject not seen: trusted unless more than half of the assessed subjects are poor
    np.testing.assert_allclose(
        model.predict(lifts.X), model.predict(lifts.X, predict_physics="torque"), atol=1e-5
    )
    model.model_adequacy_["b"] = replace(record, verdict="poor")
    np.testing.assert_array_equal(
        model.predict(lifts.X), model.predict(lifts.X, predict_physics="none")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert StreamingPredictor(model, subject="a").predict_physics == "none"
        model.model_adequacy_["a"] = replace(record, verdict="not assessed")
        assert StreamingPredictor(model, subject="a").predict_physics == "torque"


def test_auto_physics_leaves_a_poor_fit_to_the_network(lifts):
    # known truth: an ID torque 10x what the simulated muscles made is flagged, and "auto"
    # then predicts the network's EMG alone
    model, X, warned = _fit(lifts, torque_factor=10.0)
    assert warned
    assert model.model_adequacy_[lifts.groups[0]].verdict == "poor"
    np.testing.assert_array_equal(model.predict(X), model.predict(X, predict_physics="none"))
    assert np.abs(model.predict(X, predict_physics="torque") - model.predict(X)).max() > 1e-2
