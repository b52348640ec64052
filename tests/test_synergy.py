"""SynergyExtrapolationRegressor on data built from known synergies, and sklearn behaviour."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut
from sklearn.pipeline import Pipeline

from baselines import SynergyExtrapolationRegressor
from deepemg import ELBOW_CHANNELS
from deepemg.datasets.trajectories import minimum_jerk_trial

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
    angle, velocity, acceleration = (torch.tensor(kinematics[:, i]) for i in range(3))
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
    with pytest.warns(UserWarning, match="not seen in fit"):
        a.predict(X[:1], np.array(["C"]))


def test_calibrate_fits_hill_parameters(synergy_data):
    X, _, _ = synergy_data
    model = SynergyExtrapolationRegressor(calibrate=True, max_iter=30, random_state=0).fit(X)
    scales = model.synergies_["__population__"]["params"]["max_isometric_force_scale"]
    assert scales.shape == (7,) and np.all((scales >= 0.5) & (scales <= 2.0))


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
    with pytest.raises(ValueError, match="Rectify and low-pass"):
        model.predict(negative)
    no_emg = SynergyExtrapolationRegressor(channels=list(ELBOW_CHANNELS)[:5])
    with pytest.raises(ValueError, match="no surface EMG"):
        no_emg.fit(X[..., :5])
