"""Model selection that works: scorers, subjects in score, leave one muscle / subject out.

deepemg.metrics (scorers, LeaveOneMuscleOutRegressor, the refusal of scikit-learn's own
scorers) and deepemg.model_selection (LeaveOneSubjectOut, PersonalizedRegressor) inside
scikit-learn's cross_validate and GridSearchCV, on tiny simulated subjects.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import config_context
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, LeaveOneGroupOut, cross_validate

from baselines import SynergyExtrapolationRegressor
from deepemg import ELBOW_CHANNELS, NMMRegressor
from deepemg.metrics import (
    LeaveOneMuscleOutRegressor,
    UnseenSubjectWarning,
    deep_muscle_metrics,
    deep_muscle_r_scorer,
    leave_one_muscle_out_scorer,
    surface_r2_scorer,
    torque_nrmse,
    within_trial_r,
)
from deepemg.model_selection import LeaveOneSubjectOut, PersonalizedRegressor
from deepemg.validation import measured_r2

from ..conftest import TINY_NMM, simulated

TINY = TINY_NMM
"""A tiny NMM; its default prediction-time physics (the subject's muscle model) is kept."""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two simulated subjects, three 1 s trials each."""
    return simulated(tmp_path_factory, 2, 3, 1.0)


def nmm(**params) -> NMMRegressor:
    return NMMRegressor(**{**TINY, **params})


def subjects_out(data, scoring, **kwargs) -> dict:
    """scikit-learn's own cross_validate of the tiny NMM, each subject held out in turn."""
    return cross_validate(
        nmm(), data.X, data.y, groups=data.groups, cv=LeaveOneGroupOut(), scoring=scoring, **kwargs
    )


def routed_folds(data, **kwargs) -> dict:
    """scikit-learn's cross_validate of the tiny NMM over 3 folds, subject_ids routed to fit."""
    with config_context(enable_metadata_routing=True):
        return cross_validate(
            nmm().set_fit_request(subject_ids=True),
            data.X,
            data.y,
            cv=KFold(3),
            return_estimator=True,
            **kwargs,
        )


# ---------------------------------------------------------------------- sklearn's scorers
@pytest.mark.parametrize("scoring", ["r2", "neg_mean_squared_error", {"r2": "r2"}])
def test_sklearns_scorers_fail_loudly_in_cross_validate(data, scoring):
    # they scored NaN on every fold, with only warnings
    with pytest.raises(ValueError, match=r"All the 2 fits failed") as error:
        subjects_out(data, scoring)
    assert "takes 1-D or 2-D targets" in str(error.value)
    assert "deepemg.metrics" in str(error.value)
    with pytest.raises(ValueError, match=r"NMMRegressor cannot be scored as asked: scoring"):
        subjects_out(data, scoring, error_score="raise")


def test_sklearns_scorers_fail_loudly_in_grid_search(data):
    # the search used to score every candidate NaN and pick the first
    search = GridSearchCV(
        nmm(), {"physics_weight": [0.0, 1.0]}, cv=LeaveOneGroupOut(), scoring="r2"
    )
    with pytest.raises(ValueError, match=r"(?s)All the 4 fits failed.*r2_score"):
        search.fit(data.X, data.y, groups=data.groups)
    mse = GridSearchCV(
        SynergyExtrapolationRegressor(max_iter=2),
        {"n_synergies": [1, 2]},
        cv=LeaveOneGroupOut(),
        scoring="neg_mean_squared_error",
        error_score="raise",
    )
    with pytest.raises(ValueError, match="SynergyExtrapolationRegressor cannot be scored"):
        mse.fit(data.X, groups=data.groups)


def test_sklearns_scorer_of_an_outer_cross_validation_fails_loudly(data):
    inner = GridSearchCV(nmm(), {"physics_weight": [0.0, 1.0]}, cv=KFold(2))
    with pytest.raises(ValueError, match=r"(?s)All the 4 fits failed.*GridSearchCV cannot be"):
        cross_validate(inner, data.X, data.y, cv=KFold(2), scoring="r2", error_score="raise")


def test_a_scorer_missing_its_metadata_fails_loudly(data):
    # without routing, the truth cannot reach the scorer: an error before any training
    with pytest.raises(ValueError, match=r"(?s)All the 2 fits failed.*needs \['emg_truth'\]"):
        subjects_out(data, deep_muscle_r_scorer())


def test_deepemgs_scorers_score_every_fold(data):
    scores = routed_folds(
        data,
        scoring={"surface": surface_r2_scorer(), "deep": deep_muscle_r_scorer("BRA")},
        params={"subject_ids": data.groups, "emg_truth": data.y_true},
    )
    folds = list(KFold(3).split(data.X))
    for k, (_, test) in enumerate(folds):
        estimator = scores["estimator"][k]
        emg = estimator.predict(data.X[test], data.groups[test])
        assert scores["test_surface"][k] == pytest.approx(measured_r2(data.y[test], emg))
        bra = 2  # BRA, the third muscle
        r = np.corrcoef(data.y_true[test][..., bra].ravel(), emg[..., bra].ravel())[0, 1]
        assert scores["test_deep"][k] == pytest.approx(r)
    assert np.isfinite(scores["test_surface"]).all()
    assert np.isfinite(scores["test_deep"]).all()


# ---------------------------------------------------------------------- subjects in score
def test_score_takes_subject_ids(data):
    model = nmm().fit(data.X, data.y, subject_ids=data.groups)
    own = model.score(data.X, data.y, subject_ids=data.groups)
    assert own == pytest.approx(measured_r2(data.y, model.predict(data.X, data.groups)))
    assert own != model.score(data.X, data.y)  # the population's muscle model
    weights = np.arange(1.0, len(data.X) + 1)
    assert model.score(data.X, data.y, sample_weight=weights, subject_ids=data.groups) == (
        pytest.approx(
            measured_r2(data.y, model.predict(data.X, data.groups), sample_weight=weights)
        )
    )


def test_within_subject_folds_are_scored_with_the_subjects_parameters(data):
    scores = routed_folds(data, params={"subject_ids": data.groups})
    for k, (_, test) in enumerate(KFold(3).split(data.X)):
        estimator = scores["estimator"][k]
        own = estimator.score(data.X[test], data.y[test], subject_ids=data.groups[test])
        assert scores["test_score"][k] == own
        assert own != estimator.score(data.X[test], data.y[test])


def test_unseen_subjects_are_scored_with_the_population_and_warn(data):
    model = nmm().fit(data.X[:3], data.y[:3], subject_ids=data.groups[:3])  # S01 only
    with pytest.warns(UnseenSubjectWarning, match=r"\['S02'\] were not seen in fit"):
        mixed = model.score(data.X, data.y, subject_ids=data.groups)
    emg = np.concatenate([model.predict(data.X[:3], data.groups[:3]), model.predict(data.X[3:])])
    assert mixed == pytest.approx(measured_r2(data.y, emg))
    network_alone = nmm(predict_physics="none").fit(data.X[:3], data.y[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its EMG does not depend on the subject: no warning
        network_alone.score(data.X, data.y, subject_ids=data.groups)


def test_score_request_can_be_turned_off(data):
    with config_context(enable_metadata_routing=True):
        model = nmm().set_fit_request(subject_ids=True).set_score_request(subject_ids=False)
        assert model.get_metadata_routing().score.requests["subject_ids"] is False
        assert nmm().get_metadata_routing().score.requests["subject_ids"] is True


# ---------------------------------------------------------------------- leave one muscle out
def test_leave_one_muscle_out_hides_the_muscle_in_fit(data):
    hidden = LeaveOneMuscleOutRegressor(nmm(predict_physics="none"), muscles=["BRD"])
    hidden.fit(data.X, data.y)
    clone_without = hidden.estimators_["BRD"]
    assert "emg_BRD" not in clone_without.channels_
    assert len(clone_without.channels_) == 9
    assert hidden.n_features_in_ == 10
    assert list(hidden.feature_names_in_) == list(ELBOW_CHANNELS)
    brd = list(clone_without.muscles_).index("BRD")
    X_without = np.delete(data.X, ELBOW_CHANNELS.index("emg_BRD"), axis=2)
    expected = clone_without.predict(X_without)[..., brd]
    np.testing.assert_array_equal(hidden.predict(data.X)[..., 0], expected)
    assert hidden.score(data.X, data.y) == pytest.approx(
        measured_r2(data.y[..., [brd]], expected[..., None])
    )
    # the clone learnt without BRD's EMG: the same fit with it is another network
    seen = clone(nmm(predict_physics="none")).fit(data.X, data.y)
    assert not np.allclose(seen.predict(data.X)[..., brd], expected)


def test_leave_one_muscle_out_in_grid_search(data):
    with config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            LeaveOneMuscleOutRegressor(nmm(), muscles=["BIClong", "TRIlat"]),
            {"estimator__physics_weight": [0.0, 1.0]},
            cv=LeaveOneGroupOut(),
            scoring={"losmo": leave_one_muscle_out_scorer()},
            refit="losmo",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnseenSubjectWarning)  # the held-out subject
            search.fit(data.X, data.y, groups=data.groups, subject_ids=data.groups)
    assert np.isfinite(search.cv_results_["mean_test_losmo"]).all()
    assert len(set(search.cv_results_["mean_test_losmo"])) == 2  # the weight matters
    assert search.best_estimator_.hidden_ == ["BIClong", "TRIlat"]
    assert list(search.best_estimator_.estimators_["TRIlat"].subjects_) == ["S01", "S02"]


def test_leave_one_muscle_out_scorer_matches_the_synergy_baseline(data):
    mse = SynergyExtrapolationRegressor(n_synergies=2, max_iter=5, random_state=0)
    mse.fit(data.X)
    assert leave_one_muscle_out_scorer()(mse, data.X) == mse.score(data.X)
    hidden = LeaveOneMuscleOutRegressor(clone(mse), muscles="BRD").fit(data.X)
    # MSE without BRD's channel extrapolates it through its synergies and the torque
    assert "emg_BRD" not in hidden.estimators_["BRD"].measured_
    assert np.isfinite(hidden.score(data.X))


def test_scorers_refuse_what_they_cannot_score(data):
    with pytest.raises(ValueError, match="wrap it in LeaveOneMuscleOutRegressor"):
        cross_validate(
            nmm(),
            data.X,
            data.y,
            cv=KFold(2),
            scoring=leave_one_muscle_out_scorer(),
            error_score="raise",
        )
    with pytest.raises(ValueError, match="predict returns the hidden muscles only"):
        cross_validate(
            LeaveOneMuscleOutRegressor(nmm(), muscles="BRD"),
            data.X,
            data.y,
            cv=KFold(2),
            scoring=surface_r2_scorer(),
            error_score="raise",
        )


# ---------------------------------------------------------------------- leave one subject out
def test_leave_one_subject_out_keeps_calibration_sequences_for_training(data):
    cv = LeaveOneSubjectOut(n_calibration=1)
    splits = list(cv.split(data.X, data.y, data.groups))
    assert cv.get_n_splits(groups=data.groups) == len(splits) == 2
    for (train, test), subject in zip(splits, ["S01", "S02"], strict=True):
        own = np.flatnonzero(data.groups == subject)
        np.testing.assert_array_equal(test, own[1:])
        assert own[0] in train
        assert not set(own[1:]) & set(train)
    np.testing.assert_array_equal(
        cv.calibration(data.groups), [True, False, False, True, False, False]
    )
    with pytest.raises(ValueError, match="none left to test after n_calibration=3"):
        list(LeaveOneSubjectOut(3).split(data.X, groups=data.groups))


def test_personalize_on_the_held_out_subject_in_cross_validate(data):
    cv = LeaveOneSubjectOut(n_calibration=1)
    with config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("error", UnseenSubjectWarning)  # every subject is known
        scores = cross_validate(
            PersonalizedRegressor(nmm(), max_epochs=2),
            data.X,
            data.y,
            cv=cv,
            scoring={"surface": surface_r2_scorer(), "BRA": deep_muscle_r_scorer("BRA")},
            params={
                "groups": data.groups,
                "subject_ids": data.groups,
                "calibration": cv.calibration(data.groups),
                "emg_truth": data.y_true,
            },
            return_estimator=True,
        )
    for k, (held_out, (_, test)) in enumerate(
        zip(["S01", "S02"], cv.split(data.X, groups=data.groups), strict=True)
    ):
        model = scores["estimator"][k]
        assert list(model.new_subjects_) == [held_out]
        assert held_out in list(model.subjects_)  # personalised, with its own parameters
        assert len(model.estimator_.personalize_history_) == 2
        emg = model.predict(data.X[test], data.groups[test])
        assert scores["test_surface"][k] == pytest.approx(measured_r2(data.y[test], emg))
    assert np.isfinite(scores["test_BRA"]).all()


def test_personalize_false_is_the_same_split_without_personalisation(data):
    cv = LeaveOneSubjectOut(n_calibration=1)
    with config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            PersonalizedRegressor(nmm()),
            {"personalize": [False, True]},
            cv=cv,
            refit=False,
        )
        with pytest.warns(UnseenSubjectWarning):  # personalize=False: the population's
            search.fit(
                data.X,
                data.y,
                groups=data.groups,
                subject_ids=data.groups,
                calibration=cv.calibration(data.groups),
            )
    means = search.cv_results_["mean_test_score"]
    assert np.isfinite(means).all()
    assert means[0] != means[1]
    plain = PersonalizedRegressor(nmm(), personalize=False).fit(
        data.X, data.y, subject_ids=data.groups, calibration=[True] * 3 + [False] * 3
    )
    assert list(plain.new_subjects_) == []
    assert list(plain.subjects_) == ["S02"]


def test_personalized_regressor_errors(data):
    with pytest.raises(ValueError, match="needs subject_ids"):
        PersonalizedRegressor(nmm()).fit(data.X, data.y)
    with pytest.raises(ValueError, match="none is left to fit"):
        PersonalizedRegressor(nmm()).fit(
            data.X, data.y, subject_ids=data.groups, calibration=[True] * 6
        )
    with pytest.raises(ValueError, match="calibration must be a boolean array"):
        PersonalizedRegressor(nmm()).fit(
            data.X, data.y, subject_ids=data.groups, calibration=[1, 0, 0, 1, 0, 0]
        )
    with pytest.raises(ValueError, match="'estimator' parameter"):
        PersonalizedRegressor(SynergyExtrapolationRegressor()).fit(
            data.X, data.y, subject_ids=data.groups
        )


# ---------------------------------------------------------------------- benchmark scores
def test_deep_muscle_metrics_against_closed_forms():
    t = np.linspace(0, 2 * np.pi, 400)
    truth = 0.5 + 0.25 * np.sin(t)
    span = np.ptp(truth)  # about 0.5
    r, nrmse = deep_muscle_metrics(truth, truth + 0.05)  # an offset: r 1, RMSE 0.05
    assert r == pytest.approx(1.0)
    assert nrmse == pytest.approx(0.05 / span)
    r, nrmse = deep_muscle_metrics(truth, 2 * truth)  # a gain: r 1, RMSE the truth's RMS
    assert r == pytest.approx(1.0)
    assert nrmse == pytest.approx(np.sqrt(np.mean(truth**2)) / span)
    assert deep_muscle_metrics(truth, 1 - truth)[0] == pytest.approx(-1.0)
    # NaN steps of the truth are left out; 2-D inputs are flattened
    gappy = np.where(np.arange(400) % 3 == 0, np.nan, truth)
    assert deep_muscle_metrics(gappy.reshape(4, 100), (truth + 0.05).reshape(4, 100))[
        1
    ] == pytest.approx(0.05 / np.ptp(truth[np.arange(400) % 3 != 0]))
    # a constant prediction has no r but an NRMSE; a constant or missing truth has neither
    r, nrmse = deep_muscle_metrics(truth, np.full(400, 0.5))
    assert np.isnan(r)
    assert nrmse == pytest.approx(np.sqrt(np.mean((truth - 0.5) ** 2)) / span)
    assert np.isnan(deep_muscle_metrics(np.full(10, 0.2), np.arange(10.0))).all()
    assert np.isnan(deep_muscle_metrics(np.full(10, np.nan), np.arange(10.0))).all()


def test_within_trial_r_judges_the_shape_not_the_level():
    t = np.linspace(0, 1, 40)
    truth = np.stack([t, 3 + t, np.full(40, 0.2)])  # the flat trial has no r: left out
    prediction = np.stack([t, 3 - t, t])
    assert within_trial_r(truth, prediction) == pytest.approx(0.0)  # (1 + -1) / 2
    assert deep_muscle_metrics(truth[:2], prediction[:2])[0] > 0.9  # pooled r sees the level
    assert within_trial_r(t, t**2) == pytest.approx(deep_muscle_metrics(t, t**2)[0])  # 1-D
    assert np.isnan(within_trial_r(np.full((2, 5), 0.1), np.ones((2, 5))))


def test_torque_nrmse_is_the_rmse_over_the_inverse_dynamics_range():
    torque_id = np.stack([np.linspace(-2.0, 8.0, 50), np.linspace(0.0, 4.0, 50)])  # range 10
    assert torque_nrmse(torque_id, torque_id) == 0.0
    assert torque_nrmse(torque_id, torque_id + 0.3) == pytest.approx(0.03)
    error = np.where(np.arange(50) % 2 == 0, 1.0, -1.0)
    assert torque_nrmse(torque_id, torque_id + error) == pytest.approx(0.1)


def test_the_benchmark_scores_with_these_functions():
    import deepemg.benchmark

    assert deepemg.benchmark.deep_muscle_metrics is deep_muscle_metrics
    assert deepemg.benchmark.within_trial_r is within_trial_r
    assert deepemg.benchmark.torque_nrmse is torque_nrmse
