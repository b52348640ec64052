"""SynergyExtrapolationRegressor on data built from known synergies, and sklearn behaviour."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut
from sklearn.pipeline import Pipeline

from baselines import SynergyExtrapolationRegressor
from deepemg import ELBOW_CHANNELS
from deepemg.datasets.trajectories import minimum_jerk_trial
from deepemg.metrics import UnseenSubjectWarning
from deepemg.physics import MusculoskeletalModel
from deepemg.validation import EMGSaturationWarning, measured_r2

SURFACE = ["BIClong", "BICshort", "BRD", "TRIlong", "TRIlat"]


@pytest.fixture(scope="module")
def synergy_data(elbow):
    """Surface and deep muscles mix the same 3 activation patterns; torque from the physics."""
    rng = np.random.default_rng(0)
    n_trials, rate = 4, 100.0
    t = np.arange(300) / rate
    kinematics = np.stack(
        [np.stack(minimum_jerk_trial(rng, 3.0, rate, (0.0, 110.0))[1:]) for _ in range(n_trials)]
    )  # (trials, 3, T)
    patterns = np.stack(
        [
            0.25
            + 0.2 * np.sin(2 * np.pi * (0.4 + 0.1 * k) * t[None] + rng.uniform(0, 6, (n_trials, 1)))
            for k in range(3)
        ],
        axis=-1,
    )  # (trials, T, 3) smooth, positive
    weights = rng.uniform(0.1, 1.0, (3, 7))
    emg = np.clip(patterns @ weights / 1.5, 0, 1)
    angle, velocity, _acceleration = (torch.tensor(kinematics[:, i]) for i in range(3))
    with torch.no_grad():
        activation = elbow.activation(torch.tensor(emg), rate)
        torque = elbow.joint_torque(activation, angle, velocity).numpy()
    surface = emg[..., [elbow.muscles.index(m) for m in SURFACE]]
    X = np.concatenate(
        [kinematics.transpose(0, 2, 1), np.zeros((n_trials, 300, 1)), torque[..., None], surface],
        axis=-1,
    )
    groups = np.array(["A", "A", "B", "B"])
    return X, emg, groups


def test_recovers_deep_channels_of_known_synergies(synergy_data, elbow):
    X, emg, _ = synergy_data
    model = SynergyExtrapolationRegressor(n_synergies=3, random_state=0).fit(X)
    assert model.unmeasured_ == ["BRA", "TRImed"]
    prediction = model.predict(X)
    for muscle in ("BRA", "TRImed"):
        j = elbow.muscles.index(muscle)
        r = np.corrcoef(prediction[..., j].ravel(), emg[..., j].ravel())[0, 1]
        assert r >= 0.95, (muscle, r)
    fit = model.synergies_["__population__"]
    assert fit["vaf"] > 0.999  # the surface EMG is exactly rank 3
    assert fit["torque_rmse"] < 0.05 * np.ptp(X[..., 4])
    np.testing.assert_array_equal(prediction[..., 0], X[..., ELBOW_CHANNELS.index("emg_BIClong")])
    torque = model.predict_torque(X)
    assert np.sqrt(np.mean((torque - X[..., 4]) ** 2)) < 0.05 * np.ptp(X[..., 4])


def test_auto_synergies_by_vaf(synergy_data):
    X, _, _ = synergy_data
    model = SynergyExtrapolationRegressor(
        n_synergies="auto", vaf_threshold=0.999, max_iter=20, random_state=0
    ).fit(X)
    assert model.synergies_["__population__"]["n_synergies"] <= 3


def test_deterministic_and_per_subject(synergy_data):
    X, _, groups = synergy_data
    a = SynergyExtrapolationRegressor(max_iter=30, random_state=0).fit(X, subject_ids=groups)
    b = SynergyExtrapolationRegressor(max_iter=30, random_state=0).fit(X, subject_ids=groups)
    for key in ("A", "B", "__population__"):
        np.testing.assert_array_equal(a.synergies_[key]["weights"], b.synergies_[key]["weights"])
    np.testing.assert_array_equal(a.predict(X, groups), b.predict(X, groups))
    with pytest.warns(UnseenSubjectWarning, match=r"\['C'\] were not seen in fit") as caught:
        pooled = a.predict(X[:1], np.array(["C"]))
    assert caught[0].filename == __file__  # it points at the caller, not at deepemg
    np.testing.assert_array_equal(pooled, a.predict(X[:1]))  # the pooled synergies
    with pytest.warns(UnseenSubjectWarning, match="pooled synergies"):
        a.score(X[:1], subject_ids=["C"])


def test_calibrate_fits_hill_parameters(synergy_data):
    X, _, _ = synergy_data
    model = SynergyExtrapolationRegressor(calibrate=True, max_iter=30, random_state=0).fit(X)
    scales = model.synergies_["__population__"]["params"]["max_isometric_force_scale"]
    assert scales.shape == (7,)
    assert np.all((scales >= 0.5) & (scales <= 2.0))


def test_sklearn_integration(synergy_data):
    X, emg, groups = synergy_data
    y = emg.copy()
    y[..., [2, 6]] = np.nan
    estimator = SynergyExtrapolationRegressor(max_iter=20, random_state=0)
    assert clone(estimator).get_params() == estimator.get_params()
    fitted = clone(estimator).fit(X, y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    assert Pipeline([("mse", clone(estimator))]).fit(X, y).predict(X).shape == emg.shape
    search = GridSearchCV(estimator, {"n_synergies": [2, 3]}, cv=LeaveOneGroupOut())
    search.fit(X, y, groups=groups)
    assert search.best_params_["n_synergies"] in (2, 3)


def test_missing_and_negative_surface_emg(synergy_data):
    X, _, _ = synergy_data
    model = SynergyExtrapolationRegressor(max_iter=5, random_state=0).fit(X)
    channels = list(ELBOW_CHANNELS)[:-1]
    with pytest.raises(ValueError, match="emg_TRIlat"):
        model.set_params(channels=channels).predict(X[..., :-1])
    model.set_params(channels=None)
    negative = X.copy()
    negative[0, 5, 6] = -0.1
    with pytest.raises(ValueError, match=r"negative EMG .* in 'emg_BICshort'"):
        model.predict(negative)
    no_emg = SynergyExtrapolationRegressor(channels=list(ELBOW_CHANNELS)[:5])
    with pytest.raises(ValueError, match="no surface EMG"):
        no_emg.fit(X[..., :5])


EMG = slice(5, None)  # the surface channels of ELBOW_CHANNELS


@pytest.fixture(scope="module")
def noisy_synergy_data(synergy_data):
    """The 3-synergy data with 1 % multiplicative noise on the surface EMG, as recordings have."""
    X, emg, groups = synergy_data
    rng = np.random.default_rng(1)
    X = X.copy()
    X[..., EMG] = np.clip(X[..., EMG] * (1 + 0.01 * rng.standard_normal(X[..., EMG].shape)), 0, 1)
    return X, emg, groups


# ---------------------------------------------------------------- score ranks n_synergies
def test_score_is_leave_one_muscle_out_and_peaks_at_the_true_number(noisy_synergy_data):
    X, _, groups = noisy_synergy_data
    train, test = groups == "A", groups == "B"
    scores = []
    for k in range(1, 6):
        model = SynergyExtrapolationRegressor(n_synergies=k, max_iter=1, random_state=0)
        scores.append(model.fit(X[train]).score(X[test]))
    assert all(s < 1 for s in scores), scores
    assert np.ptp(scores) > 0.05, scores  # not constant across n_synergies
    assert int(np.argmax(scores)) + 1 == 3, scores  # the data have 3 synergies
    assert scores[2] > scores[0] + 0.05, scores
    assert scores[2] > scores[4] + 0.05, scores


def test_grid_search_picks_the_true_number_of_synergies(noisy_synergy_data):
    X, _, groups = noisy_synergy_data
    search = GridSearchCV(
        SynergyExtrapolationRegressor(max_iter=1, random_state=0),
        {"n_synergies": [1, 2, 3, 4]},
        cv=LeaveOneGroupOut(),
    )
    search.fit(X, groups=groups)  # no y: MSE scores its synergies on X's surface EMG
    assert search.best_params_ == {"n_synergies": 3}
    assert len(set(np.round(search.cv_results_["mean_test_score"], 6))) == 4


def test_score_definition_y_ignored_and_sample_weight(synergy_data, noisy_synergy_data):
    X, emg, _groups = noisy_synergy_data
    model = SynergyExtrapolationRegressor(n_synergies=3, max_iter=1, random_state=0).fit(X)
    surface = X[..., EMG]
    reconstruction = model.reconstruct_surface(X)
    assert reconstruction.shape == surface.shape
    assert model.score(X) == pytest.approx(measured_r2(surface, reconstruction))
    assert model.score(X, emg) == model.score(X)  # y is not used
    weights = np.array([0.0, 1.0, 2.0, 0.0])
    assert model.score(X, sample_weight=weights) == pytest.approx(
        measured_r2(surface[1:3], reconstruction[1:3], sample_weight=weights[1:3])
    )
    assert model.score(X, sample_weight=weights) != pytest.approx(model.score(X))
    # the hidden channel comes from the others: on exactly rank-3 EMG it is recovered
    clean, _, _ = synergy_data
    exact = SynergyExtrapolationRegressor(n_synergies=3, max_iter=1, random_state=0).fit(clean)
    np.testing.assert_allclose(exact.reconstruct_surface(clean), clean[..., EMG], atol=0.01)
    # one surface channel leaves nothing to reconstruct it from
    one = SynergyExtrapolationRegressor(
        channels=list(ELBOW_CHANNELS)[:6], n_synergies=1, max_iter=1
    )
    with pytest.raises(ValueError, match="at least two"):
        one.fit(X[..., :6]).score(X[..., :6])


def _assert_same_state(model, state):
    """``model`` holds exactly the attributes of ``state``, the very same objects."""
    assert model.__dict__.keys() == state.keys()
    changed = [k for k, v in state.items() if model.__dict__[k] is not v]
    assert not changed, changed


# ---------------------------------------------------------------- a diverging solver
def _nan_torque(monkeypatch, finite_calls):
    """The model's torque is NaN in the optimisation (grad enabled) except on the call numbers
    in ``finite_calls``; evaluations after fit (no grad) are untouched."""
    original = MusculoskeletalModel.joint_torque
    calls = []

    def joint_torque(self, *args, **kwargs):
        torque = original(self, *args, **kwargs)
        if torch.is_grad_enabled():
            calls.append(1)
            if not finite_calls(len(calls) - 1):
                return torque * float("nan")
        return torque

    monkeypatch.setattr(MusculoskeletalModel, "joint_torque", joint_torque)
    return calls


def test_runaway_lbfgs_step_is_bounded(synergy_data, monkeypatch):
    """A first L-BFGS step a thousand times too long overflowed exp(log-weights) into NaN
    excitation, reported as bad input; the bounded log-weights keep it finite."""
    X, _, _ = synergy_data
    original = torch.optim.LBFGS
    made = []

    class Runaway(original):
        def __init__(self, params, **kwargs):
            if not made:
                kwargs["lr"] = 1e3
            made.append(1)
            super().__init__(params, **kwargs)

    monkeypatch.setattr(torch.optim, "LBFGS", Runaway)
    model = SynergyExtrapolationRegressor(max_iter=50, random_state=0).fit(X)
    fit = model.synergies_["__population__"]
    assert np.isfinite(fit["weights"]).all()
    assert fit["torque_rmse"] < 0.05 * np.ptp(X[..., 4])
    assert np.isfinite(model.predict_torque(X)).all()


@pytest.mark.parametrize(
    ("nan_calls", "solver"),
    [({2}, "lbfgs_cautious"), ({1, 2}, "adam")],
    ids=["lbfgs-diverges", "both-lbfgs-diverge"],
)
def test_diverging_solver_restarts(synergy_data, monkeypatch, nan_calls, solver):
    """L-BFGS meets a NaN loss after finite ones; the fit restarts from the initial point."""
    X, _, _ = synergy_data
    calls = _nan_torque(monkeypatch, lambda call: call not in nan_calls)
    model = SynergyExtrapolationRegressor(max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a recovered fit needs no warning
        model.fit(X)
    fit = model.synergies_["__population__"]
    assert len(calls) > 10
    assert fit["solver"] == solver
    assert fit["torque_rmse"] < 0.05 * np.ptp(X[..., 4]), fit["torque_rmse"]


def test_solver_diverging_everywhere_keeps_best_finite_iterate(synergy_data, monkeypatch):
    X, _, _ = synergy_data
    _nan_torque(monkeypatch, lambda call: call == 0)  # only the initial point is finite
    with pytest.warns(ConvergenceWarning, match="diverged for the pooled model.*best finite"):
        model = SynergyExtrapolationRegressor(max_iter=5, random_state=0).fit(X)
    fit = model.synergies_["__population__"]
    assert fit["solver"] == "best_finite_iterate"
    np.testing.assert_allclose(fit["weights"], np.exp(-2.0))  # the initial point
    assert np.isfinite(model.predict(X)).all()


def test_solver_without_finite_iterate_raises_and_keeps_the_fit(synergy_data, monkeypatch):
    X, _, groups = synergy_data
    model = SynergyExtrapolationRegressor(max_iter=5, random_state=0).fit(X, subject_ids=groups)
    before = model.predict(X, groups)
    state = dict(model.__dict__)
    _nan_torque(monkeypatch, lambda call: False)
    with pytest.raises(RuntimeError, match="torque-tracking optimisation failed for subject 'A'"):
        model.fit(X, subject_ids=groups)
    _assert_same_state(model, state)
    np.testing.assert_array_equal(model.predict(X, groups), before)


# ---------------------------------------------------------------- EMG above 1
def test_emg_above_one_is_saturated_where_it_drives_the_muscles(synergy_data):
    X, _, _ = synergy_data
    X = X.copy()
    X[..., EMG] *= 1.02 / X[..., EMG].max()
    model = SynergyExtrapolationRegressor(max_iter=5, random_state=0)
    with pytest.warns(EMGSaturationWarning, match="X's EMG channels"):
        model.fit(X)
    prediction = model.predict(X)
    np.testing.assert_array_equal(prediction[..., model._measured_index], X[..., EMG])
    assert prediction.max() == pytest.approx(1.02)  # predict returns them as given
    with pytest.warns(EMGSaturationWarning, match="X's EMG channels"):
        torque = model.predict_torque(X)
    assert np.isfinite(torque).all()
    assert model.score(X) < 1
    X[0, 7, 9] = 1.6
    for method in (model.fit, model.predict, model.predict_torque, model.score):
        with pytest.raises(ValueError, match=r"up to 1\.6 in 'emg_TRIlat'"):
            method(X)


# ---------------------------------------------------------------- messages and state
def test_subject_ids_need_one_label_per_sequence(synergy_data):
    X, _, groups = synergy_data
    model = SynergyExtrapolationRegressor(max_iter=5, random_state=0).fit(X, subject_ids=groups)
    before = model.predict(X, groups)
    state = dict(model.__dict__)
    for method in (model.fit, model.predict, model.predict_torque, model.score):
        with pytest.raises(ValueError, match="one label per sequence of X \\(4\\)"):
            method(X, subject_ids=groups[:3])
    _assert_same_state(model, state)
    np.testing.assert_array_equal(model.predict(X, groups), before)


def test_failed_refit_leaves_the_fitted_estimator_as_it_was(synergy_data):
    X, _, _ = synergy_data
    model = SynergyExtrapolationRegressor(n_synergies=4, max_iter=5, random_state=0).fit(X)
    before = model.predict(X)
    state = dict(model.__dict__)
    # fails after the channels are resolved: 4 synergies for 2 surface muscles
    channels = list(ELBOW_CHANNELS)[:7]
    with pytest.raises(ValueError, match="n_synergies must be"):
        model.set_params(channels=channels).fit(X[..., :7])
    model.set_params(channels=None)
    _assert_same_state(model, state)
    np.testing.assert_array_equal(model.predict(X), before)


def test_every_muscle_measured(synergy_data, elbow):
    """Nothing to extrapolate: the fit is the NMF alone (it used to crash inside L-BFGS)."""
    X, emg, _ = synergy_data
    channels = list(ELBOW_CHANNELS)[:5] + [f"emg_{m}" for m in elbow.muscles]
    X = np.concatenate([X[..., :5], emg], axis=-1)
    model = SynergyExtrapolationRegressor(channels=channels, max_iter=5, random_state=0).fit(X)
    assert model.unmeasured_ == []
    assert model.synergies_["__population__"]["solver"] == "none"
    np.testing.assert_array_equal(model.predict(X), emg)
    assert np.sqrt(np.mean((model.predict_torque(X) - X[..., 4]) ** 2)) < 1e-6
    calibrated = clone(model).set_params(calibrate=True).fit(X)
    assert calibrated.synergies_["__population__"]["solver"] == "lbfgs"


def test_the_muscle_law_is_the_one_given_and_the_benchmark_gives_the_nmms(synergy_data):
    """MSE tracks the torque with the law it is given; the benchmark gives it the NMM's."""
    from deepemg.benchmark import BenchmarkSettings
    from deepemg.benchmark.methods import METHODS

    X, _, groups = synergy_data
    law = "compliant_tendon_degroote_fregly"
    rigid = SynergyExtrapolationRegressor(max_iter=20, random_state=0).fit(X, subject_ids=groups)
    compliant = SynergyExtrapolationRegressor(max_iter=20, random_state=0, muscle_law=law)
    compliant.fit(X, subject_ids=groups)
    assert rigid.physics_.muscle_law.name == "rigid_tendon_degroote_fregly"
    assert compliant.physics_.muscle_law.name == law
    deep = [rigid.muscles_.index(m) for m in ("BRA", "TRImed")]
    difference = np.abs(rigid.predict(X, groups) - compliant.predict(X, groups))[..., deep]
    assert difference.max() > 1e-3  # the torque tracking saw the other law
    settings = BenchmarkSettings(nmm_params={"muscle_law": law})
    assert METHODS["mse"].params(settings, {}, "within")["muscle_law"] == law
    assert "muscle_law" not in METHODS["mse"].params(BenchmarkSettings(), {}, "within")
