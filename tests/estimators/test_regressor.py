"""NMMRegressor: sklearn behaviour, reproducibility, errors, personalisation, Arm26."""

import pickle

import numpy as np
import pytest
import torch
from sklearn import config_context
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut, cross_validate
from sklearn.pipeline import Pipeline

from deepemg import NMMRegressor
from deepemg.metrics import UnseenSubjectWarning

from ..conftest import ARM26_LOCKED, FAST_NMM, joint_channels


@pytest.fixture(scope="module")
def data(two_subjects):
    return two_subjects


def test_fit_predict_shapes_and_history(fitted, data):
    prediction = fitted.predict(data.X)
    assert prediction.shape == data.y.shape
    assert prediction.dtype == np.float64
    assert np.isfinite(prediction).all()
    assert prediction.min() >= 0
    assert prediction.max() <= 1
    assert fitted.predict_torque(data.X, data.groups).shape == data.X.shape[:2]
    activation = fitted.predict_activation(data.X, data.groups)
    assert activation.shape == data.y.shape
    assert activation.min() >= 0
    assert activation.max() <= 1
    for column in (
        "train_loss",
        "train_data_loss",
        "train_physics_loss",
        "train_effort_loss",
        "train_smoothness_loss",
        "train_synergy_loss",
        "train_prior_loss",
    ):
        assert len(fitted.history_[:, column]) == FAST_NMM["max_epochs"]
    rows = fitted.subject_params_
    assert len(rows) == 2 * 32
    assert {r["subject"] for r in rows} == {"S01", "S02"}
    assert all(r["lower"] <= r["value"] <= r["upper"] for r in rows)
    assert isinstance(fitted.score(data.X, data.y), float)


@pytest.mark.parametrize("drive", ["predicted", "measured", "both"])
def test_physics_drives(data, drive):
    model = NMMRegressor(random_state=0, physics_drive=drive, **FAST_NMM)
    model.fit(data.X, data.y, subject_ids=data.groups)
    physics = model.history_[:, "train_physics_loss"]
    assert np.isfinite(physics).all()
    assert physics[-1] > 0
    assert model.predict_torque(data.X, data.groups).shape == data.X.shape[:2]


def test_unknown_physics_drive(data):
    with pytest.raises(ValueError, match="'physics_drive' parameter of NMMRegressor"):
        NMMRegressor(physics_drive="surface", **FAST_NMM).fit(data.X, data.y)


def test_training_reduces_the_loss(data):
    model = NMMRegressor(random_state=0, **{**FAST_NMM, "max_epochs": 8}).fit(
        data.X, data.y, subject_ids=data.groups
    )
    loss = model.history_[:, "train_loss"]
    assert loss[-1] < loss[0]


def test_random_state_gives_identical_fits_and_leaves_global_rng(data):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = NMMRegressor(random_state=7, **FAST_NMM).fit(data.X, data.y, subject_ids=data.groups)
    after = torch.rand(1)
    assert torch.equal(before, after)  # the user's global torch RNG is untouched
    b = NMMRegressor(random_state=7, **FAST_NMM).fit(data.X, data.y, subject_ids=data.groups)
    np.testing.assert_array_equal(a.predict(data.X), b.predict(data.X))
    c = NMMRegressor(random_state=8, **FAST_NMM).fit(data.X, data.y, subject_ids=data.groups)
    assert not np.allclose(a.predict(data.X), c.predict(data.X))


def test_clone_and_pickle(fitted, data):
    assert clone(fitted).get_params() == fitted.get_params()
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(data.X), fitted.predict(data.X))
    np.testing.assert_array_equal(
        restored.predict_torque(data.X, data.groups), fitted.predict_torque(data.X, data.groups)
    )
    assert restored.subject_params_ == fitted.subject_params_


def test_pipeline_grid_search_and_leave_one_subject_out(data):
    pipe = Pipeline([("nmm", NMMRegressor(random_state=0, **FAST_NMM))])
    pipe.fit(data.X, data.y)
    assert pipe.predict(data.X).shape == data.y.shape
    search = GridSearchCV(
        NMMRegressor(random_state=0, **FAST_NMM),
        {"physics_weight": [0.0, 1.0]},
        cv=LeaveOneGroupOut(),
    )
    search.fit(data.X, data.y, groups=data.groups)
    assert search.best_params_["physics_weight"] in (0.0, 1.0)
    scores = cross_validate(
        NMMRegressor(random_state=0, **FAST_NMM),
        data.X,
        data.y,
        groups=data.groups,
        cv=LeaveOneGroupOut(),
    )
    assert len(scores["test_score"]) == 2


def test_metadata_routing_of_subject_ids(data):
    with config_context(enable_metadata_routing=True):
        estimator = NMMRegressor(random_state=0, **FAST_NMM).set_fit_request(subject_ids=True)
        search = GridSearchCV(estimator, {"physics_weight": [1.0]}, cv=LeaveOneGroupOut())
        search.fit(data.X, data.y, groups=data.groups, subject_ids=data.groups)
        assert len(search.best_estimator_.subjects_) == 2


def test_personalize_a_new_subject(data):
    first = data.groups == "S01"
    model = NMMRegressor(random_state=0, **FAST_NMM).fit(
        data.X[first], data.y[first], subject_ids=data.groups[first]
    )
    new = ~first
    # one rule for a subject not seen in fit: the population's parameters, with a warning
    with pytest.warns(UnseenSubjectWarning, match=r"\['S02'\] were not seen.*personalize"):
        unseen = model.predict_torque(data.X[new], data.groups[new])
    np.testing.assert_array_equal(unseen, model.predict_torque(data.X[new]))
    before = model.subject_params_
    network = {k: v.clone() for k, v in model.net_.module_.network.state_dict().items()}
    surface = data.y[new].copy()
    model.personalize(data.X[new], surface, subject_ids=data.groups[new], max_epochs=3)
    assert list(model.subjects_) == ["S01", "S02"]
    after = model.subject_params_
    assert after[:32] == before  # the known subject is left alone
    assert any(r["value"] != n["value"] for r, n in zip(after[32:], before, strict=True))
    assert model.predict_torque(data.X[new], data.groups[new]).shape == data.X[new].shape[:2]
    history = model.personalize_history_  # recorded through skorch, like fit's
    assert len(history) == 3
    assert len(history[:, "train_physics_loss"]) == 3
    for name, value in model.net_.module_.network.state_dict().items():
        assert torch.equal(value, network[name]), name  # the network is frozen


def test_failed_personalize_leaves_the_estimator_as_it_was(data):
    model = NMMRegressor(random_state=0, **FAST_NMM).fit(data.X, data.y, subject_ids=data.groups)
    before = (list(model.subjects_), model.subject_params_)
    bad_y = np.full((*data.y.shape[:2], 3), 0.1)  # wrong muscle count
    with pytest.raises(ValueError, match="one column per muscle"):
        model.personalize(data.X, bad_y, subject_ids=np.full(len(data.X), "S09"))
    with pytest.raises(ValueError, match="max_epochs"):
        model.personalize(data.X, subject_ids=np.full(len(data.X), "S09"), max_epochs=0)
    assert (list(model.subjects_), model.subject_params_) == before


def test_torque_channel_optional(data):
    channels = [c for c in data.channels if c != "elbow_torque"]
    X = np.delete(data.X, data.channels.index("elbow_torque"), axis=2)
    model = NMMRegressor(channels=channels, random_state=0, **FAST_NMM).fit(X, data.y)
    assert model.predict(X).shape == data.y.shape


def test_arm26_model(data, arm26_with_load):
    arm26 = ["TRIlong", "TRIlat", "TRImed", "BIClong", "BICshort", "BRA"]
    elbow = list(data.muscles)
    y = data.y[..., [elbow.index(m) for m in arm26]]
    channels = joint_channels(data.channels, "r_elbow_flex")  # named by Arm26's coordinate
    model = NMMRegressor(
        model=arm26_with_load, locked=ARM26_LOCKED, channels=channels, random_state=0, **FAST_NMM
    )
    model.fit(data.X, y, subject_ids=data.groups)
    assert model.muscles_ == arm26
    assert model.predict(data.X).shape == y.shape
    with pytest.raises(ValueError, match="r_elbow_flex_angle"):  # the elbow's names do not fit
        model.set_params(channels=data.channels).fit(data.X, y)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X: X[0], "3-D"),
        (lambda X: X[..., :7], "channels"),
        (lambda X: np.where(np.arange(X.shape[1])[None, :, None] == 3, np.nan, X), "NaN"),
        (lambda X: X[:, :20], "window"),
    ],
)
def test_bad_X(data, change, message):
    with pytest.raises(ValueError, match=message):
        NMMRegressor(**FAST_NMM).fit(change(data.X), data.y)


def test_bad_y(data):
    with pytest.raises(ValueError, match="one column per muscle"):
        NMMRegressor(**FAST_NMM).fit(data.X, data.y[..., :5])
