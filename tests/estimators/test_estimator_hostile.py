"""Hostile but realistic calls of both estimators (issue 19): odd subject labels, empty
arrays, parameters changed after fit. Each case failed (a numpy error, a silent change)
before it was fixed."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from baselines import SynergyExtrapolationRegressor
from deepemg import NMMEnsemble, NMMRegressor

from ..conftest import FAST_NMM

FAST_MSE = dict(n_synergies=2, max_iter=20)


@pytest.fixture(scope="module")
def data(two_subjects):
    return two_subjects


@pytest.fixture(scope="module")
def nmm(data):
    """Fitted with integer subject labels 0 and 1, with the prediction-time physics."""
    labels = np.unique(data.groups, return_inverse=True)[1]
    params = {**FAST_NMM, "predict_physics": "torque", "correction_steps": 3}
    return NMMRegressor(random_state=0, **params).fit(data.X, data.y, subject_ids=labels)


@pytest.fixture(scope="module")
def mse(data):
    return SynergyExtrapolationRegressor(random_state=0, **FAST_MSE).fit(
        data.X, data.y, subject_ids=data.groups
    )


# ---------------------------------------------------------------- subject labels
def test_personalize_keeps_the_labels_types(nmm, data):
    """A new string subject beside integer ones: the integers stay integers."""
    fitted = copy.deepcopy(nmm)
    X = data.X[:2]
    fitted.personalize(X, subject_ids=["new", "new"], max_epochs=1)
    assert fitted.subjects_.tolist() == [0, 1, "new"]
    assert [type(s) for s in fitted.subjects_.tolist()] == [int, int, str]
    assert fitted.predict_torque(X[:1], [0]).shape == (1, X.shape[1])
    assert fitted.predict_torque(X[:1], ["new"]).shape == (1, X.shape[1])


@pytest.mark.parametrize("estimator", ["nmm", "mse"])
def test_mixed_labels_are_subjects_as_given(estimator, data, request):
    """Integers and strings in one fit: each label kept (numpy would make '0' of 0)."""
    labels = [0 if g == data.groups[0] else "S2" for g in data.groups]
    if estimator == "nmm":
        model = NMMRegressor(random_state=0, **FAST_NMM).fit(data.X, data.y, subject_ids=labels)
        assert model.subjects_.tolist() == [0, "S2"]
        model.predict(data.X, subject_ids=labels)
        model.predict_torque(data.X[:1], [0])
    else:
        model = SynergyExtrapolationRegressor(random_state=0, **FAST_MSE)
        model.fit(data.X, data.y, subject_ids=labels)
        assert model.subjects_.tolist() == [0, "S2"]
        model.predict(data.X, subject_ids=labels)


@pytest.mark.parametrize("bad", [np.nan, None, object()], ids=["nan", "none", "object"])
@pytest.mark.parametrize("estimator", ["nmm", "mse"])
def test_unusable_labels_are_named(estimator, bad, data):
    labels = np.array([*list(data.groups[:-1]), bad], dtype=object)
    model = (
        NMMRegressor(**FAST_NMM)
        if estimator == "nmm"
        else SynergyExtrapolationRegressor(**FAST_MSE)
    )
    with pytest.raises(ValueError, match="subject_ids holds"):
        model.fit(data.X, data.y, subject_ids=labels)


def test_nan_in_a_float_label_array_is_refused(data):
    labels = np.array([1.0] * (len(data.X) - 1) + [np.nan])
    with pytest.raises(ValueError, match="subject_ids holds NaN"):
        NMMRegressor(**FAST_NMM).fit(data.X, data.y, subject_ids=labels)


def test_booleans_beside_numbers_are_refused(nmm, data):
    """True == 1 in Python: True would silently be subject 1."""
    with pytest.raises(ValueError, match="booleans"):
        nmm.predict_torque(data.X[:1], [True])


# ---------------------------------------------------------------- empty arrays
@pytest.mark.parametrize("shape", [(0, 150, 10), (2, 0, 10)])
def test_empty_X_is_named(shape, nmm, mse, data):
    X = np.zeros(shape)
    for call in (
        lambda: NMMRegressor(**FAST_NMM).fit(X, np.zeros((*shape[:2], 7))),
        lambda: NMMEnsemble(NMMRegressor(**FAST_NMM), n_members=2).fit(
            X, np.zeros((*shape[:2], 7))
        ),
        lambda: nmm.predict(X),
        lambda: SynergyExtrapolationRegressor(**FAST_MSE).fit(X, np.zeros((*shape[:2], 7))),
        lambda: mse.predict(X),
    ):
        with pytest.raises(ValueError, match="X holds no data"):
            call()


# ---------------------------------------------------------------- parameters after fit
def test_invalid_parameter_after_fit_is_refused(nmm, data):
    fitted = copy.deepcopy(nmm).set_params(predict_physics="bogus")
    with pytest.raises(InvalidParameterError, match="predict_physics"):
        fitted.predict(data.X[:1])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("window", 40),
        ("rate", 50.0),
        ("d_model", 8),
        ("muscle_law", "compliant_tendon_degroote_fregly"),
    ],
)
def test_fitted_shape_parameters_cannot_change_silently(nmm, data, name, value):
    """set_params(window=40) after fit used to change predictions without a word."""
    fitted = copy.deepcopy(nmm)
    before = fitted.predict(data.X[:1], [0])
    fitted.set_params(**{name: value})
    for call in (fitted.predict, fitted.predict_torque, fitted.predict_activation):
        with pytest.raises(ValueError, match=f"fitted with {name}="):
            call(data.X[:1], [0])
    fitted.set_params(**{name: nmm.get_params()[name]})
    np.testing.assert_array_equal(fitted.predict(data.X[:1], [0]), before)


def test_prediction_settings_may_change_after_fit(nmm, data):
    fitted = copy.deepcopy(nmm)
    corrected = fitted.predict(data.X[:1], [0])
    alone = fitted.set_params(predict_physics="none").predict(data.X[:1], [0])
    assert np.abs(corrected - alone).max() > 1e-4


def test_ensemble_members_follow_set_params(data):
    """After fit with n_members=2, set_params(predict_physics=...) reached no member."""
    params = {**FAST_NMM, "predict_physics": "torque", "correction_steps": 3}
    ensemble = NMMEnsemble(NMMRegressor(**params), n_members=2, n_jobs=1, random_state=0)
    ensemble.fit(data.X, data.y, subject_ids=data.groups)
    corrected = ensemble.predict(data.X[:1])
    alone = ensemble.set_params(estimator__predict_physics="none").predict(data.X[:1])
    assert np.abs(corrected - alone).max() > 1e-4
    assert {m.predict_physics for m in ensemble.estimators_} == {"none"}
    ensemble.set_params(estimator__window=40)
    with pytest.raises(ValueError, match="fitted with window="):
        ensemble.predict(data.X[:1])


def test_mse_rate_cannot_change_after_fit(mse, data):
    fitted = copy.deepcopy(mse).set_params(rate=50.0)
    with pytest.raises(ValueError, match="fitted with rate="):
        fitted.predict_torque(data.X[:1], data.groups[:1])


def test_a_model_object_is_the_same_model_after_fit(data):
    """A MusculoskeletalModel given as ``model`` is compared by identity, not by a copy (a
    copy is never equal to a torch module): predictions must run."""
    from deepemg.opensim import elbow_model

    model = elbow_model()
    nmm = NMMRegressor(model=model, random_state=0, **FAST_NMM).fit(data.X, data.y)
    assert nmm.predict(data.X[:1]).shape == data.y[:1].shape
    nmm.set_params(model=elbow_model())
    with pytest.raises(ValueError, match="fitted with model="):
        nmm.predict(data.X[:1])


# ---------------------------------------------------------------- issue 18's defects
def test_a_muscle_law_registered_after_import_or_given_as_a_law_is_accepted(data, tmp_path):
    """The options were frozen at import, and a MuscleLaw instance was refused."""
    from deepemg.physics import MUSCLE_LAWS, register_muscle_law
    from deepemg.physics.muscle import RigidTendonDeGrooteFregly

    class Renamed(RigidTendonDeGrooteFregly):
        name = "rigid_copy_registered_by_a_test"

    law = register_muscle_law(Renamed())
    try:
        for muscle_law in (law.name, law):
            nmm = NMMRegressor(muscle_law=muscle_law, random_state=0, **FAST_NMM)
            nmm.fit(data.X[:2], data.y[:2])
            assert nmm.physics_.muscle_law is law
        path = nmm.save(tmp_path / "law.deepemg")  # a registered law is saved by its name
        assert NMMRegressor.load(path).physics_.muscle_law is law
    finally:
        MUSCLE_LAWS.pop(law.name)
    with pytest.raises(ValueError, match="not a registered muscle law"):
        NMMRegressor(muscle_law="thelen", **FAST_NMM).fit(data.X[:2], data.y[:2])


def test_personalize_honours_physics_weight(nmm, data):
    """personalize used physics_weight=1.0 whatever the estimator's: with the subject
    parameters held still (a tiny lr), its torque term scales with physics_weight (the effort
    on the deep muscles' level, the rest of its loss, does not)."""
    from deepemg.training import resolved_params

    losses = []
    for weight in (1.0, 3.0):
        fitted = copy.deepcopy(nmm).set_params(physics_weight=weight)
        fitted.personalize(data.X[:2], subject_ids=["new", "new"], max_epochs=1, lr=1e-12)
        last = fitted.personalize_history_[-1]
        effort = resolved_params(fitted.get_params(), len(fitted.feature_mean_))["effort_weight"]
        losses.append(last["train_loss"] - effort * last["train_effort_loss"])
    assert losses[1] == pytest.approx(3 * losses[0], rel=1e-3)


def test_the_loss_defaults_are_the_estimators():
    """NMMLoss's own defaults disagreed with NMMRegressor's (effort 0.01 vs 0.1, synergy 0
    vs 1)."""
    import inspect

    from deepemg.nmm_module import NMMLoss
    from deepemg.training import resolved_params

    # "auto" resolved for the default data's network: kinematics, load and 5 surface EMG
    estimator = resolved_params(NMMRegressor().get_params(), 9)
    loss = inspect.signature(NMMLoss).parameters
    for name in ("data_weight", "physics_weight", "effort_weight", "smoothness_weight"):
        assert loss[name].default == estimator[name], name
    assert loss["synergy_weight"].default == estimator["synergy_weight"]


def test_ensemble_calibration_uses_each_subjects_own_parameters(data, monkeypatch):
    """The out-of-bag calibration predicted with subject_ids=None (population muscle
    parameters) for a multi-subject fit."""
    calls = []
    predict = NMMRegressor.predict

    def spy(self, X, subject_ids=None, **kwargs):
        calls.append(None if subject_ids is None else list(np.asarray(subject_ids)))
        return predict(self, X, subject_ids, **kwargs)

    monkeypatch.setattr(NMMRegressor, "predict", spy)
    params = {**FAST_NMM, "predict_physics": "torque", "correction_steps": 2}
    NMMEnsemble(NMMRegressor(**params), n_members=2, n_jobs=1, random_state=0).fit(
        data.X, data.y, subject_ids=data.groups
    )
    assert calls
    assert all(c is not None and set(c) <= set(data.groups) for c in calls)


def test_an_ensemble_of_a_model_object_predicts(data):
    """Members fitted in other processes (or copied by personalize) hold copies of a model
    object: the ensemble's fitted_with_ must be its own parameters, not member 0's, or every
    prediction after fit and personalize was refused."""
    from deepemg.opensim import elbow_model

    model = elbow_model()
    template = NMMRegressor(model=model, **FAST_NMM)
    ensemble = NMMEnsemble(template, n_members=2, n_jobs=2, random_state=0)
    ensemble.fit(data.X, data.y, subject_ids=data.groups)
    assert ensemble.predict(data.X[:1]).shape == data.y[:1].shape
    ensemble.personalize(data.X[:2], subject_ids=["new", "new"], max_epochs=1)
    assert ensemble.predict(data.X[:1], ["new"]).shape == data.y[:1].shape


def test_personalize_with_nothing_to_fit_is_refused(nmm, data):
    """With physics_weight=0 and no subject code the loss has only the prior: the new subject
    would silently keep nominal parameters."""
    fitted = copy.deepcopy(nmm).set_params(physics_weight=0.0)
    with pytest.raises(ValueError, match="nothing to fit"):
        fitted.personalize(data.X[:2], subject_ids=["new", "new"], max_epochs=1)
