"""skorch's tools through NMMRegressor: ``callbacks``, ``warm_start`` and checkpoints (issue 21,
item 5).

Each test breaks when its feature does: a user callback that is not run (or run on the user's
own object), a warm fit that starts anew or changes what it must keep, a failure that leaves a
half-trained estimator, a checkpoint that is not a complete deepemg model file.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback

from deepemg import NMMEnsemble, NMMRegressor
from deepemg.nmm_module import NMMCheckpoint
from deepemg.persistence import load_model

from ..conftest import FAST_NMM, simulated

EPOCHS = 3


@pytest.fixture(scope="module")
def data(two_subjects):
    return two_subjects


@pytest.fixture(scope="module")
def one_subject(tmp_path_factory):
    """One subject, four 1.5 s trials: two "sessions" of two trials."""
    return simulated(tmp_path_factory, 1, 4, 1.5, loads=(1, 5))


class Count(Callback):
    """Counts epochs and remembers what each epoch's history held when it ran."""

    def __init__(self, tag="count"):
        self.tag = tag

    def initialize(self):
        self.calls_ = 0
        self.columns_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.calls_ += 1
        self.columns_.append(sorted(net.history[-1]))


class FailAt(Callback):
    """Raises ``error`` at the end of epoch ``epoch`` of a fit."""

    def __init__(self, epoch=2, error="value"):
        self.epoch = epoch
        self.error = error

    def initialize(self):
        self.seen_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.seen_ += 1
        if self.seen_ == self.epoch:
            raise KeyboardInterrupt if self.error == "interrupt" else RuntimeError("midway")


class Unclonable(Callback):
    def __init__(self):
        self.calls = 0  # state under a parameter's name: clone cannot rebuild it


def nmm(**params) -> NMMRegressor:
    return NMMRegressor(random_state=0, **{**FAST_NMM, "max_epochs": EPOCHS, **params})


def state(model: NMMRegressor) -> dict:
    return {k: v.detach().clone() for k, v in model.net_.module_.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def fitted_callback(model: NMMRegressor, name: str):
    return dict(model.net_.callbacks_)[name]


# ---------------------------------------------------------------------------- callbacks
def test_a_user_callback_runs_every_epoch_on_a_clone_after_deepemgs_own(data):
    mine = Count()
    model = nmm(callbacks=[mine]).fit(data.X, data.y, subject_ids=data.groups)
    trained = fitted_callback(model, "Count")
    assert trained.calls_ == EPOCHS
    assert trained is not mine
    assert not hasattr(mine, "calls_")
    # run after deepemg's scoring callbacks: every loss term of the epoch is in the history
    assert all("train_physics_loss" in columns for columns in trained.columns_)
    assert model.get_params()["callbacks"] == [mine]
    # a second fit trains a fresh clone
    model.fit(data.X, data.y, subject_ids=data.groups)
    assert fitted_callback(model, "Count").calls_ == EPOCHS


def test_named_callbacks_and_clear_errors_before_any_work(data):
    model = nmm(max_epochs=1, callbacks=[("mine", Count()), Count(tag="other")])
    model.fit(data.X, data.y, subject_ids=data.groups)
    assert fitted_callback(model, "mine").calls_ == 1
    assert fitted_callback(model, "Count").tag == "other"
    bad = {
        "name taken": ([("lr_scheduler", Count())], ValueError, "one of the net's own"),
        "name twice": ([("a", Count()), ("a", Count())], ValueError, "named twice"),
        "a class": ([Count], TypeError, "not the class"),
        "no callback": ([print], TypeError, "not a skorch callback"),
        "unclonable": ([Unclonable()], TypeError, "attributes ending in '_'"),
    }
    for callbacks, error, message in bad.values():
        fresh = nmm(callbacks=callbacks)
        with pytest.raises(error, match=message):
            fresh.fit(data.X, data.y, subject_ids=data.groups)
        assert not hasattr(fresh, "net_")
    with pytest.raises(ValueError, match="'callbacks' parameter"):
        nmm(callbacks="Count").fit(data.X, data.y)


def test_clone_get_params_and_set_params_with_callbacks(data):
    mine = Count(tag="x")
    model = nmm(callbacks=[("mine", mine)], warm_start=True)
    copy = clone(model)
    ((name, cloned),) = copy.callbacks
    assert name == "mine"
    assert isinstance(cloned, Count)
    assert cloned is not mine
    assert cloned.get_params() == mine.get_params() == {"tag": "x"}
    assert copy.get_params()["warm_start"] is True
    other = Count(tag="y")
    copy.set_params(callbacks=[other], warm_start=False)
    assert copy.get_params()["callbacks"] == [other]
    assert copy.warm_start is False
    # a fitted clone is unfitted, so warm_start=True starts anew on it
    model.fit(data.X, data.y, subject_ids=data.groups)
    again = clone(model).fit(data.X, data.y, subject_ids=data.groups)
    assert len(again.history_) == EPOCHS


# ---------------------------------------------------------------------------- warm_start
def test_warm_start_continues_the_fitted_network(data):
    model = nmm().fit(data.X, data.y, subject_ids=data.groups)
    old = model.history_[:, "train_loss"]
    scale = (model.feature_mean_.copy(), model.feature_std_.copy(), model.torque_scale_)
    s02 = [r["value"] for r in model.subject_params_ if r["subject"] == "S02"]
    model.set_params(warm_start=True, max_epochs=2)
    # the new data are a part of the old (other standardisation, were it recomputed)
    part = data.groups == "S01"
    model.fit(data.X[part], data.y[part], subject_ids=data.groups[part])
    loss = model.history_[:, "train_loss"]
    assert len(loss) == EPOCHS + 2
    assert model.history_[:, "epoch"] == [1, 2, 3, 4, 5]
    assert loss[:EPOCHS] == old  # the history goes on
    # the first new epoch starts where the fit ended, far below the first epoch's loss
    assert abs(loss[EPOCHS] - old[-1]) < 0.25 * (old[0] - old[-1]), loss
    # a fresh cosine schedule: the first new epoch at the full learning rate again
    lr = model.history_[:, "event_lr"]
    assert lr[EPOCHS] == lr[0]
    assert lr[EPOCHS + 1] < lr[EPOCHS]
    np.testing.assert_array_equal(model.feature_mean_, scale[0])
    np.testing.assert_array_equal(model.feature_std_, scale[1])
    assert model.torque_scale_ == scale[2]
    # S02, absent from the new data, keeps its parameters (the prior alone would move them)
    assert [r["value"] for r in model.subject_params_ if r["subject"] == "S02"] == s02
    assert model.subjects_.tolist() == ["S01", "S02"]
    # not a fresh fit: a cold fit with the same seed on the same data ends elsewhere
    fresh = nmm(max_epochs=2).fit(data.X[part], data.y[part], subject_ids=data.groups[part])
    assert not same_state(state(fresh), state(model))


def test_a_warm_fit_at_a_tiny_learning_rate_keeps_the_saved_model(one_subject, tmp_path):
    """Loaded from a file, a warm fit starts from the fitted weights and subject parameters
    (a new subject from nominal ones), and subjects absent from the new data keep theirs."""
    X, y = one_subject.X, one_subject.y
    first = np.array(["S01", "S01"])
    model = nmm(subject_embedding=2).fit(X[:2], y[:2], subject_ids=first)
    loaded = NMMRegressor.load(model.save(tmp_path / "session1.deepemg"))
    before = loaded.predict(X[2:], ["S01", "S01"])
    params = {r["parameter"] + str(r["muscle"]): r["value"] for r in loaded.subject_params_}
    loaded.set_params(warm_start=True, max_epochs=1, lr=1e-12, dropout=0.0)
    loaded.fit(X[2:], y[2:], subject_ids=["S02", "S02"])  # a new subject only
    assert loaded.subjects_.tolist() == ["S01", "S02"]
    assert len(loaded.history_) == EPOCHS + 1
    np.testing.assert_allclose(loaded.predict(X[2:], ["S01", "S01"]), before, atol=1e-5)
    rows = loaded.subject_params_
    kept = {r["parameter"] + str(r["muscle"]): r["value"] for r in rows if r["subject"] == "S01"}
    assert kept == pytest.approx(params, rel=1e-9, abs=1e-9)  # absent: kept (lr 1e-12)
    nominal = NMMRegressor(**{**FAST_NMM, "max_epochs": 1}).fit(X[:1], y[:1]).subject_params_
    fresh = {r["parameter"] + str(r["muscle"]): r["value"] for r in nominal}
    new = {r["parameter"] + str(r["muscle"]): r["value"] for r in rows if r["subject"] == "S02"}
    assert new.keys() == fresh.keys()
    # the population default (nominal) for S02, not S01's fitted values
    assert any(new[k] != pytest.approx(params[k], rel=1e-3) for k in new)
    # subject_ids=None: the fitted subject of a one-subject model, an error with two
    single = nmm(max_epochs=1).fit(X[:2], y[:2], subject_ids=first).set_params(warm_start=True)
    single.fit(X[2:], y[2:])
    assert single.subjects_.tolist() == ["S01"]
    with pytest.raises(ValueError, match="needs subject_ids"):
        loaded.fit(X[2:], y[2:])


def test_warm_start_refuses_what_the_fitted_network_cannot_take(data):
    model = nmm(max_epochs=1).fit(data.X, data.y, subject_ids=data.groups)
    before = state(model)
    model.set_params(warm_start=True, d_model=8)
    with pytest.raises(ValueError, match=r"built for d_model=16.*warm_start=False"):
        model.fit(data.X, data.y, subject_ids=data.groups)
    model.set_params(d_model=16)
    with pytest.raises(ValueError, match="channels"):
        model.fit(data.X[..., :-1], data.y, subject_ids=data.groups)
    assert same_state(state(model), before)
    assert len(model.history_) == 1
    model.set_params(warm_start=False, d_model=8).fit(data.X, data.y, subject_ids=data.groups)
    assert len(model.history_) == 1  # warm_start=False starts anew


@pytest.mark.parametrize("error", ["value", "interrupt"])
def test_a_fit_that_fails_midway_leaves_the_estimator_as_it_was(data, error):
    model = nmm().fit(data.X, data.y, subject_ids=data.groups)
    before = (state(model), model.net_, model.history_, list(model.history_), model.predict(data.X))
    raised = KeyboardInterrupt if error == "interrupt" else RuntimeError
    model.set_params(warm_start=True, callbacks=[FailAt(2, error)])
    with pytest.raises(raised):
        model.fit(data.X, data.y, subject_ids=np.where(data.groups == "S01", "S01", "S03"))
    assert same_state(state(model), before[0])
    assert model.net_ is before[1]
    assert model.history_ is before[2]
    assert list(model.history_) == before[3]
    assert model.subjects_.tolist() == ["S01", "S02"]
    np.testing.assert_array_equal(model.predict(data.X), before[4])
    fresh = nmm(callbacks=[FailAt(2, error)])
    with pytest.raises(raised):
        fresh.fit(data.X, data.y, subject_ids=data.groups)
    assert not hasattr(fresh, "net_")


# ---------------------------------------------------------------------------- checkpoints
def test_checkpoints_are_complete_model_files_of_the_last_epoch(data, tmp_path):
    path = tmp_path / "fit.deepemg"
    model = nmm(subject_embedding=2, callbacks=[NMMCheckpoint(path)])
    model.fit(data.X, data.y, subject_ids=data.groups)
    assert fitted_callback(model, "NMMCheckpoint").saved_epochs_ == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["fit.deepemg"]  # no temporary left
    with zipfile.ZipFile(path) as archive:
        assert "callbacks" not in json.loads(archive.read("deepemg.json"))["params"]
    loaded = load_model(path)  # deepemg's own loader: no pickle
    assert loaded.callbacks is None
    assert len(loaded.history_) == EPOCHS
    # the last checkpoint is the fitted estimator (codes centred as fit leaves them)
    for subjects in (None, data.groups):
        np.testing.assert_allclose(
            loaded.predict(data.X, subjects), model.predict(data.X, subjects), atol=1e-6
        )


def test_a_checkpoint_keeps_the_best_epoch_and_a_fit_resumes_from_it(data, tmp_path):
    path = tmp_path / "best.deepemg"
    model = nmm(max_epochs=4, callbacks=[NMMCheckpoint(path, monitor="train_loss_best")])
    model.fit(data.X, data.y, subject_ids=data.groups)
    losses = model.history_[:, "train_loss"]
    best = int(np.argmin(losses)) + 1
    assert fitted_callback(model, "NMMCheckpoint").saved_epochs_[-1] == best
    assert load_model(path).history_[-1, "epoch"] == best
    # a function of the net as monitor: epoch 2 only; then resume training from that file
    middle = tmp_path / "epoch2.deepemg"
    monitor = NMMCheckpoint(middle, monitor=lambda net: net.history[-1, "epoch"] == 2)
    nmm(max_epochs=4, callbacks=[monitor]).fit(data.X, data.y, subject_ids=data.groups)
    resumed = load_model(middle)
    assert len(resumed.history_) == 2
    resumed.set_params(warm_start=True, max_epochs=2).fit(data.X, data.y, subject_ids=data.groups)
    assert resumed.history_[:, "epoch"] == [1, 2, 3, 4]


def test_checkpoint_errors(data, tmp_path):
    missing = nmm(callbacks=[NMMCheckpoint(tmp_path / "no" / "fit.deepemg")])
    with pytest.raises(FileNotFoundError, match="create it first"):
        missing.fit(data.X, data.y, subject_ids=data.groups)
    unknown = nmm(callbacks=[NMMCheckpoint(tmp_path / "fit.deepemg", monitor="valid_loss_best")])
    with pytest.raises(ValueError, match="early_stopping=True"):
        unknown.fit(data.X, data.y, subject_ids=data.groups)
    assert not hasattr(missing, "net_")
    assert not hasattr(unknown, "net_")


def test_save_leaves_callbacks_out_and_load_refuses_a_file_naming_some(data, tmp_path):
    model = nmm(max_epochs=1, callbacks=[Count()]).fit(data.X, data.y, subject_ids=data.groups)
    path = model.save(tmp_path / "nmm.deepemg")
    assert NMMRegressor.load(path).callbacks is None
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    header = json.loads(files["deepemg.json"])
    header["params"]["callbacks"] = ["Count"]
    files["deepemg.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    with pytest.raises(ValueError, match="setting 'callbacks' is invalid"):
        load_model(path)


# ---------------------------------------------------------------------------- ensembles
def test_ensemble_members_each_train_their_own_callbacks_and_checkpoints(data, tmp_path):
    mine = Count()
    path = tmp_path / "fit.deepemg"
    template = nmm(max_epochs=2, callbacks=[mine, NMMCheckpoint(path)])
    model = NMMEnsemble(template, n_members=2, n_jobs=1, random_state=0)
    model.fit(data.X, data.y, subject_ids=data.groups)
    counts = [fitted_callback(m, "Count") for m in model.estimators_]
    assert [c.calls_ for c in counts] == [2, 2]
    assert counts[0] is not counts[1]
    assert not hasattr(mine, "calls_")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fit.member0.deepemg",
        "fit.member1.deepemg",
    ]
    for k, member in enumerate(model.estimators_):
        loaded = load_model(tmp_path / f"fit.member{k}.deepemg")
        np.testing.assert_allclose(loaded.predict(data.X), member.predict(data.X), atol=1e-6)
    # warm_start: every member goes on from its own network
    before = [state(m) for m in model.estimators_]
    model.set_params(estimator__warm_start=True, estimator__max_epochs=1)
    model.set_params(estimator__callbacks=None)
    model.fit(data.X, data.y, subject_ids=data.groups)
    assert [len(m.history_) for m in model.estimators_] == [3, 3]
    model.set_params(n_members=3)
    with pytest.raises(ValueError, match="n_members=3 now"):
        model.fit(data.X, data.y, subject_ids=data.groups)
    model.set_params(n_members=2)
    assert not any(same_state(state(m), b) for m, b in zip(model.estimators_, before, strict=True))
    assert model.uncertainty_scale_ > 0
