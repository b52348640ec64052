"""Nothing lost, nothing silently wrong: interrupts, untrusted files, units, EMG above 1, state.

Each test reproduces a failure reported against an earlier version (issue 13) and checks the
behaviour that replaced it.
"""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest
import torch

from baselines import SynergyExtrapolationRegressor
from deepemg import NMMRegressor
from deepemg.nmm_module import NMMLoss
from deepemg.persistence import load_model, save_model
from deepemg.validation import EMGSaturationWarning

from ..conftest import FAST_NMM, simulated


@pytest.fixture(scope="module")
def data(two_subjects):
    return two_subjects


class Marker:
    """A pickle payload that would create a file when unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


# ---------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_during_fit_propagates_and_leaves_the_estimator_as_it_was(fitted, data, monkeypatch):
    before = fitted.predict(data.X)
    epochs = len(fitted.history_)
    calls = {"n": 0}
    forward = NMMLoss.forward

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # Ctrl-C in the middle of the first epoch
            raise KeyboardInterrupt
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(NMMLoss, "forward", interrupted)
    with pytest.raises(KeyboardInterrupt):  # skorch alone would return a half-trained net
        fitted.fit(data.X, data.y, subject_ids=data.groups)
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        fitted.personalize(data.X, subject_ids=np.full(len(data.X), "S09"), max_epochs=2)
    monkeypatch.undo()
    np.testing.assert_array_equal(fitted.predict(data.X), before)
    assert len(fitted.history_) == epochs
    assert list(fitted.subjects_) == ["S01", "S02"]


# ---------------------------------------------------------------------------- model files
def test_saved_model_round_trips_without_pickle(fitted, data, tmp_path):
    path = fitted.save(tmp_path / "nmm.deepemg")
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        assert names == ["deepemg.json", "history.json", "model_adequacy.json", "module.pt"]
    loaded = NMMRegressor.load(path)
    np.testing.assert_array_equal(loaded.predict(data.X), fitted.predict(data.X))
    np.testing.assert_array_equal(
        loaded.predict_torque(data.X, data.groups), fitted.predict_torque(data.X, data.groups)
    )
    assert list(loaded.subjects_) == list(fitted.subjects_)
    assert loaded.get_params() == fitted.get_params()
    assert len(loaded.history_) == len(fitted.history_)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fitted.save(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.joblib"
    evil.write_bytes(pickle.dumps(Marker(marker)))
    with pytest.raises(ValueError, match="never loads pickles"):
        load_model(evil)
    assert not marker.exists()
    # a zip with deepemg's names but pickled (not tensor-only) weights: refused by torch
    fake = tmp_path / "fake.deepemg"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("deepemg.json", '{"format": "deepemg-model", "format_version": 1}')
        archive.writestr("history.json", "[]")
        archive.writestr("module.pt", pickle.dumps(Marker(marker)))
    with pytest.raises(ValueError, match="weights do not load"):
        load_model(fake)
    assert not marker.exists()


def test_weights_that_do_not_fit_are_refused(fitted, tmp_path):
    path = save_model(fitted, tmp_path / "nmm.deepemg")
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["deepemg.json"] = files["deepemg.json"].replace(b'"d_model": 16', b'"d_model": 32')
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    with pytest.raises(ValueError, match="do not fit the estimator"):
        load_model(path)


def test_an_interrupted_save_leaves_the_old_file(fitted, tmp_path, monkeypatch):
    path = fitted.save(tmp_path / "nmm.deepemg")
    old = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fitted.save(path, overwrite=True)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["nmm.deepemg"]  # no temporary left


# ---------------------------------------------------------------------------- units
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X: np.concatenate([np.degrees(X[..., :1]), X[..., 1:]], -1), "degrees"),
        (lambda X: np.concatenate([X[..., :3], X[..., 3:4] * 0 - 5, X[..., 4:]], -1), "in kg"),
        (lambda X: np.concatenate([X[..., :3], X[..., 3:4] * 0 + 6000, X[..., 4:]], -1), "kg"),
        (lambda X: np.concatenate([X[..., :1], np.degrees(X[..., 1:2]), X[..., 2:]], -1), "rad/s"),
    ],
    ids=["angle in degrees", "negative load", "6000 kg", "velocity in deg/s"],
)
def test_implausible_inputs_are_refused_by_every_method(fitted, data, change, message):
    X = change(data.X)
    for method in (fitted.predict, fitted.predict_torque, fitted.predict_activation):
        with pytest.raises(ValueError, match=message):
            method(X)
    with pytest.raises(ValueError, match=message):
        NMMRegressor(**FAST_NMM).fit(X, data.y)
    with pytest.raises(ValueError, match=message):
        SynergyExtrapolationRegressor(max_iter=2).fit(X)


def test_a_wrong_rate_is_caught(fitted, data):
    with pytest.raises(ValueError, match="sampling rate"):
        NMMRegressor(rate=1000.0, **FAST_NMM).fit(data.X, data.y)


@pytest.mark.parametrize("declared", [50.0, 200.0], ids=["half", "twice"])
def test_a_rate_off_by_a_factor_of_two_is_caught(data, declared):
    """100 Hz data declared as 50 or 200 Hz (a factor of exactly 2 used to pass); the rate
    also sets the activation dynamics."""
    for model in (NMMRegressor(**FAST_NMM), SynergyExtrapolationRegressor(max_iter=2)):
        with pytest.raises(ValueError, match="sampling rate"):
            model.set_params(rate=declared).fit(data.X, data.y)


@pytest.mark.parametrize(
    "params",
    [
        {"rate": 0.0},
        {"overlap": 1.0},
        {"physics_weight": -1.0},
        {"window": 0},
        {"max_epochs": 0},
        {"physics_drive": "surface"},
    ],
)
def test_bad_parameters_fail_before_any_work(data, params):
    with pytest.raises(ValueError, match=f"'{next(iter(params))}' parameter"):
        NMMRegressor(**{**FAST_NMM, **params}).fit(data.X[:, :0], data.y)  # X never read


def test_y_without_any_measured_emg(data):
    with pytest.raises(ValueError, match="no measured EMG"):
        NMMRegressor(**FAST_NMM).fit(data.X, np.full_like(data.y, np.nan))


# ---------------------------------------------------------------------------- EMG above 1
def test_emg_a_little_above_the_mvc_is_real_data(data):
    y = data.y.copy()
    y[0, 10:20, 0] = 1.022  # noise on top of a near-maximal contraction
    model = NMMRegressor(random_state=0, **FAST_NMM)
    with pytest.warns(EMGSaturationWarning, match="BIClong"):
        model.fit(data.X, y, subject_ids=data.groups)
    with pytest.warns(EMGSaturationWarning):
        model.personalize(data.X, y, subject_ids=np.full(len(y), "S09"), max_epochs=1)
    assert np.isfinite(model.predict_torque(data.X, np.full(len(y), "S09"))).all()
    y[0, 10:20, 0] = 1.6
    with pytest.raises(ValueError, match=r"up to 1.6 in 'BIClong'.*maximal voluntary"):
        NMMRegressor(**FAST_NMM).fit(data.X, y)


# ---------------------------------------------------------------------------- files = arrays
def test_a_data_set_fitted_from_files_matches_the_arrays(tmp_path_factory):
    """Simulated subjects exported to trial files and read back are in the arrays' units
    (MVC): the same fit gives the same deep muscle (reported: BRA r 0.52 from files against
    0.80 from the arrays when files were normalised to their own maximum)."""
    from deepemg.benchmark import deep_muscle_metrics
    from deepemg.datasets import export_trials
    from deepemg.io import load_trials

    data = simulated(tmp_path_factory, 1, 9, 3.0)
    files = load_trials(export_trials(data, tmp_path_factory.mktemp("lab")))
    assert files.channels == list(data.channels)
    bra = data.muscles.index("BRA")
    truth = data.y_true[6:][..., bra]
    predicted, scores = [], []
    for source in (data, files):
        model = NMMRegressor(max_epochs=40, random_state=0).fit(source.X[:6], source.y[:6])
        predicted.append(model.predict(source.X[6:])[..., bra])
        scores.append(deep_muscle_metrics(truth, predicted[-1]))
    (r_arrays, nrmse_arrays), (r_files, nrmse_files) = scores  # measured 0.41/0.30, 0.47/0.27
    assert np.corrcoef(predicted[0].ravel(), predicted[1].ravel())[0, 1] > 0.95  # 0.985
    assert abs(r_arrays - r_files) < 0.15
    assert abs(nrmse_arrays - nrmse_files) < 0.1


def test_files_are_written_with_the_permissions_of_a_new_file(fitted, tmp_path):
    """Every file deepemg writes goes through one writer (deepemg._files.write_whole); model
    files used to be written with tempfile.mkstemp, readable by their owner only (0600)."""
    import stat

    reference = tmp_path / "plain.txt"
    reference.write_text("")
    mode = stat.S_IMODE(reference.stat().st_mode)
    path = fitted.save(tmp_path / "nmm.deepemg")
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nmm.deepemg", "plain.txt"]
