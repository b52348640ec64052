"""Deep ensembles (NMMEnsemble): predict(X, return_std=True), its calibration, saving,
personalising, parameters forwarded to the members."""

from __future__ import annotations

import numpy as np
import pytest

from deepemg import NMMEnsemble, NMMRegressor

from ..conftest import FAST_NMM, simulated

TEMPLATE = {**FAST_NMM, "max_epochs": 10}


def make_ensemble():
    return NMMEnsemble(NMMRegressor(**TEMPLATE), n_members=3, n_jobs=1, random_state=0)


@pytest.fixture(scope="module")
def lifting(tmp_path_factory):
    return simulated(tmp_path_factory, 1, 6, 3.0)


@pytest.fixture(scope="module")
def ensemble(lifting):
    return make_ensemble().fit(lifting.X[:4], lifting.y[:4], lifting.groups[:4])


def test_ensemble_mean_and_std(ensemble, lifting):
    X = lifting.X[4:]
    mean, std = ensemble.predict(X, return_std=True)
    runs = np.stack([member.predict(X) for member in ensemble.estimators_])
    assert len(ensemble.estimators_) == 3
    np.testing.assert_allclose(mean, runs.mean(axis=0))
    np.testing.assert_allclose(std, ensemble.uncertainty_scale_ * runs.std(axis=0, ddof=1))
    np.testing.assert_array_equal(ensemble.predict(X), mean)
    assert std.shape == mean.shape
    assert (std > 0).all()
    # members differ by seed and by the sequences they leave out
    assert not np.allclose(runs[0], runs[1])
    torque = np.mean([m.predict_torque(X) for m in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(ensemble.predict_torque(X), torque)


def test_calibrated_band_covers_held_out_emg(ensemble, lifting):
    """Out-of-bag calibration: the raw spread of 3 members covers a fifth of the held-out EMG
    at 90 %; the calibrated band most of it (measured: 0.92 BIClong, 0.81 BRA, 0.98 BRD)."""
    mean, std = ensemble.predict(lifting.X[4:], return_std=True)
    truth = lifting.y_true[4:]
    error = np.abs(truth - mean)
    calibrated = (error <= 1.645 * std).mean()
    raw = (error <= 1.645 * std / ensemble.uncertainty_scale_).mean()
    assert ensemble.uncertainty_scale_ > 1.5
    assert calibrated > 0.7, (calibrated, raw)
    assert raw < calibrated - 0.3, (calibrated, raw)
    flexors = [lifting.muscles.index(m) for m in ("BIClong", "BICshort", "BRA", "BRD")]
    assert (error[..., flexors] <= 1.645 * std[..., flexors]).mean() > 0.8


def test_same_seed_same_ensemble(ensemble, lifting):
    again = make_ensemble().fit(lifting.X[:4], lifting.y[:4], lifting.groups[:4])
    np.testing.assert_array_equal(again.predict(lifting.X), ensemble.predict(lifting.X))
    assert again.uncertainty_scale_ == ensemble.uncertainty_scale_


def test_single_network_has_no_std(lifting):
    model = NMMRegressor(random_state=0, **FAST_NMM).fit(lifting.X[:2], lifting.y[:2])
    with pytest.raises(TypeError, match="return_std"):
        model.predict(lifting.X, return_std=True)


def test_an_ensemble_needs_two_members():
    with pytest.raises(ValueError, match="n_members"):
        NMMEnsemble(n_members=1).fit(np.zeros((2, 100, 10)), np.zeros((2, 100, 7)))


def test_members_follow_the_template_after_fit(ensemble, lifting):
    """set_params(estimator__...) after fit reaches every member; a parameter the networks
    are built for is refused until set back."""
    import copy

    fitted = copy.deepcopy(ensemble)
    X = lifting.X[4:5]
    alone = fitted.predict(X)
    fitted.set_params(estimator__predict_physics="torque", estimator__correction_steps=3)
    corrected = fitted.predict(X)
    assert {m.predict_physics for m in fitted.estimators_} == {"torque"}
    assert np.abs(corrected - alone).max() > 1e-4
    np.testing.assert_array_equal(fitted.predict(X, predict_physics="none"), alone)
    fitted.set_params(estimator__window=40)
    with pytest.raises(ValueError, match="fitted with window="):
        fitted.predict(X)


def test_members_start_the_deep_muscles_apart(ensemble, lifting, tmp_path):
    """Each member's deep_start spreads evenly over the template's ± deep_start_spread (the
    muscles without EMG start elsewhere in each), stays its own when the template's
    parameters are forwarded, and is kept in the model file; a file written before keeps all
    members at the template's start."""
    import json
    import zipfile

    assert ensemble.deep_start_spread == 0.35
    assert ensemble.estimator.deep_start == 0.0
    starts = [m.deep_start for m in ensemble.fitted_members()]
    np.testing.assert_allclose(starts, [-0.35, 0.0, 0.35])
    # each member's criterion holds its deep muscles that far from their synergists' level
    offsets = [m.net_.criterion_.synergist_offset for m in ensemble.fitted_members()]
    np.testing.assert_allclose(offsets, starts)
    path = ensemble.save(tmp_path / "ensemble.deepemg")
    loaded = NMMEnsemble.load(path)
    assert loaded.deep_start_spread == 0.35
    assert loaded.estimator.deep_start == 0.0
    np.testing.assert_allclose([m.deep_start for m in loaded.fitted_members()], starts)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    header = json.loads(files["deepemg.json"])
    del header["params"]["deep_start_spread"], header["estimator_deep_start"]
    files["deepemg.json"] = json.dumps(header).encode()
    old = tmp_path / "old.deepemg"
    with zipfile.ZipFile(old, "w") as archive:
        for name, blob in files.items():
            archive.writestr(name, blob)
    assert NMMEnsemble.load(old).deep_start_spread == 0.0


def test_a_regressor_file_is_no_ensemble(lifting, tmp_path):
    model = NMMRegressor(random_state=0, **FAST_NMM).fit(lifting.X[:2], lifting.y[:2])
    path = model.save(tmp_path / "one.deepemg")
    with pytest.raises(ValueError, match="not an NMMEnsemble"):
        NMMEnsemble.load(path)


def test_ensemble_saves_and_personalizes(ensemble, lifting, tmp_path):
    path = ensemble.save(tmp_path / "ensemble.deepemg")
    with pytest.raises(ValueError, match="not an NMMRegressor"):
        NMMRegressor.load(path)
    loaded = NMMEnsemble.load(path)
    for a, b in zip(
        loaded.predict(lifting.X, return_std=True),
        ensemble.predict(lifting.X, return_std=True),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    X, y = lifting.X[4:], lifting.y[4:]
    new = np.full(len(X), "P1")
    loaded.personalize(X, y, subject_ids=new, max_epochs=2)
    assert all(list(m.subjects_) == ["S01", "P1"] for m in loaded.estimators_)
    assert list(loaded.subjects_) == ["S01", "P1"]
    assert loaded.predict_torque(X, new).shape == X.shape[:2]
