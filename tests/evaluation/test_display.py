"""EMGDisplay: one trial's EMG and torque drawn from a tiny fit or from arrays."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.collections import PolyCollection
from sklearn.exceptions import NotFittedError

from deepemg.channels import layout_for
from deepemg.display import EMGDisplay
from deepemg.report import Z90

from ..conftest import FAST_NMM, simulated

MUSCLES = ["BIClong", "BRA", "TRIlat"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """One simulated subject, two 1 s trials (BRA and TRImed NaN in y)."""
    return simulated(tmp_path_factory, 1, 2, 1.0)


@pytest.fixture(scope="module")
def ensemble(data):
    from deepemg import NMMEnsemble, NMMRegressor

    template = NMMRegressor(**FAST_NMM)
    return NMMEnsemble(template, n_members=2, n_jobs=1, random_state=0).fit(
        data.X, data.y, subject_ids=data.groups
    )


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _arrays(n=2, steps=50, seed=0):
    rng = np.random.default_rng(seed)
    pred = rng.uniform(0.1, 0.9, (n, steps, len(MUSCLES)))
    true = np.clip(pred + rng.normal(0, 0.05, pred.shape), 0, 1)
    true[..., 1] = np.nan  # BRA never measured
    torque_id = rng.normal(10, 3, (n, steps))
    return pred, true, torque_id


def _title(ax) -> str:
    return ax.get_title(loc="left")


def _has_band(ax) -> bool:
    return any(isinstance(c, PolyCollection) for c in ax.collections)


def _torque_channel(estimator, data) -> np.ndarray:
    return data.X[..., list(estimator.channels_).index(layout_for(estimator.physics_).torque)]


# ---------------------------------------------------------------------- from_estimator
def test_from_estimator_draws_every_muscle_and_the_torque(fitted, data):
    display = EMGDisplay.from_estimator(fitted, data.X, data.y, subject_ids=data.groups, trial=1)
    muscles = fitted.muscles_
    assert len(display.ax_) == len(muscles) + 1
    assert display.figure_ is display.ax_[0].figure
    pred = fitted.predict(data.X[1:2], subject_ids=data.groups[1:2])[0]
    time = np.arange(data.X.shape[1]) / fitted.rate
    for k, muscle in enumerate(muscles):
        line = display.lines_[muscle]["predicted"]
        np.testing.assert_allclose(line.get_xdata(), time)
        np.testing.assert_allclose(line.get_ydata(), pred[:, k])
        if muscle in data.deep_muscles:  # NaN in y: no trace, labelled deep
            assert set(display.lines_[muscle]) == {"predicted"}
            assert _title(display.ax_[k]) == f"{muscle}, deep (not measured)"
        else:
            np.testing.assert_allclose(
                display.lines_[muscle]["measured"].get_ydata(), data.y[1, :, k]
            )
            assert _title(display.ax_[k]).startswith(f"{muscle}: NRMSE ")
            assert muscle in display.scores_
    assert display.bands_ == {}  # one network: no band
    assert not any(_has_band(ax) for ax in display.ax_)
    # the torque panel: muscle model against X's inverse-dynamics torque channel
    torque_ax = display.ax_[-1]
    assert torque_ax.get_ylabel() == "torque (N·m)"
    assert torque_ax.get_xlabel() == "time (s)"
    labels = {line.get_label() for line in torque_ax.get_lines()}
    assert labels == {"muscle model", "inverse dynamics"}
    np.testing.assert_allclose(
        display.torque_lines_["inverse dynamics"].get_ydata(), _torque_channel(fitted, data)[1]
    )
    np.testing.assert_allclose(
        display.torque_lines_["muscle model"].get_ydata(),
        fitted.predict_torque(data.X[1:2], data.groups[1:2])[0],
    )
    assert "torque" in display.scores_
    assert display.figure_.get_suptitle() == "NMMRegressor, trial 1, subject S01"


def test_from_estimator_ensemble_draws_the_90_band(ensemble, data):
    display = EMGDisplay.from_estimator(ensemble, data.X, data.y, subject_ids=data.groups)
    mean, std = ensemble.predict(data.X[:1], subject_ids=data.groups[:1], return_std=True)
    for k, muscle in enumerate(ensemble.muscles_):
        band = display.bands_[muscle]
        assert isinstance(band, PolyCollection)
        assert band in display.ax_[k].collections
        low = np.clip(mean[0, :, k] - Z90 * std[0, :, k], 0, 1)
        high = np.clip(mean[0, :, k] + Z90 * std[0, :, k], 0, 1)
        y = band.get_paths()[0].vertices[:, 1]
        np.testing.assert_allclose([y.min(), y.max()], [low.min(), high.max()], atol=1e-12)
        assert std[0, :, k].max() > 0
    assert all(_has_band(ax) for ax in display.ax_[:-1])
    assert "ensemble of 2" in display.figure_.get_suptitle()
    assert set(display.torque_lines_) == {"muscle model", "inverse dynamics"}


def test_from_estimator_with_the_truth_scores_the_deep_muscles(fitted, data):
    display = EMGDisplay.from_estimator(
        fitted, data.X, data.y_true, subject_ids=data.groups, muscles=["BRA", "BIClong"]
    )
    assert len(display.ax_) == 3
    assert list(display.lines_) == ["BRA", "BIClong"]
    assert "truth" in display.lines_["BRA"]  # deep (no surface channel), truth known
    assert "measured" in display.lines_["BIClong"]
    assert _title(display.ax_[0]).startswith("BRA, deep: NRMSE ")
    pred = fitted.predict(data.X[:1], subject_ids=data.groups[:1])[0]
    truth = data.y_true[0, :, fitted.muscles_.index("BRA")]
    pred = pred[:, fitted.muscles_.index("BRA")]
    nrmse = np.sqrt(np.mean((truth - pred) ** 2)) / np.ptp(truth)
    assert display.scores_["BRA"]["nrmse"] == pytest.approx(nrmse)
    assert display.scores_["BRA"]["r"] == pytest.approx(np.corrcoef(truth, pred)[0, 1])


def test_from_estimator_without_y_rate_and_user_axes(fitted, data):
    figure, axes = plt.subplots(2, 1)
    display = EMGDisplay.from_estimator(fitted, data.X, muscles=["BRA"], rate=50.0, ax=axes)
    assert display.figure_ is figure
    assert list(display.ax_) == list(axes)
    line = display.lines_["BRA"]["predicted"]
    assert line.get_xdata()[-1] == pytest.approx((data.X.shape[1] - 1) / 50.0)
    assert _title(axes[0]) == "BRA, deep (not measured)"
    assert display.scores_.keys() == {"torque"}


def test_from_estimator_baseline(data):
    from baselines import SynergyExtrapolationRegressor

    model = SynergyExtrapolationRegressor(max_iter=30, random_state=0)
    model.fit(data.X, subject_ids=data.groups)
    display = EMGDisplay.from_estimator(model, data.X, data.y, subject_ids=data.groups, trial=-1)
    assert len(display.ax_) == len(model.muscles_) + 1
    assert display.bands_ == {}
    assert set(display.deep_muscles) == set(model.unmeasured_)
    assert display.figure_.get_suptitle().startswith("SynergyExtrapolationRegressor, trial 1")
    assert set(display.torque_lines_) == {"muscle model", "inverse dynamics"}


def test_from_estimator_errors(fitted, data):
    from deepemg import NMMRegressor

    with pytest.raises(NotFittedError):
        EMGDisplay.from_estimator(NMMRegressor(), data.X)
    with pytest.raises(ValueError, match="trial=2 is out of range: there are 2 sequences"):
        EMGDisplay.from_estimator(fitted, data.X, trial=2)
    with pytest.raises(ValueError, match="trial=-3 is out of range"):
        EMGDisplay.from_estimator(fitted, data.X, trial=-3)
    with pytest.raises(TypeError, match="trial must be an integer"):
        EMGDisplay.from_estimator(fitted, data.X, trial=0.5)
    with pytest.raises(ValueError, match=r"unknown muscle\(s\) \['BRAX'\]; the estimator's"):
        EMGDisplay.from_estimator(fitted, data.X, muscles=["BRA", "BRAX"])
    with pytest.raises(ValueError, match="named twice"):
        EMGDisplay.from_estimator(fitted, data.X, muscles=["BRA", "BRA"])
    with pytest.raises(ValueError, match="X must have shape"):
        EMGDisplay.from_estimator(fitted, data.X[0])
    with pytest.raises(ValueError, match="y must have shape"):
        EMGDisplay.from_estimator(fitted, data.X, data.y[..., :3])
    with pytest.raises(ValueError, match="subject_ids has 1 labels for 2 sequences"):
        EMGDisplay.from_estimator(fitted, data.X, subject_ids=data.groups[:1])


# ---------------------------------------------------------------------- from_predictions
def test_from_predictions_without_truth_or_torque():
    pred, _, _ = _arrays()
    display = EMGDisplay.from_predictions(pred, muscles=MUSCLES, trial=1)
    assert len(display.ax_) == len(MUSCLES)  # no torque panel
    assert display.torque_lines_ == {}
    assert display.bands_ == {}
    assert display.scores_ == {}
    assert [_title(ax) for ax in display.ax_] == MUSCLES
    assert [set(lines) for lines in display.lines_.values()] == [{"predicted"}] * 3
    np.testing.assert_allclose(display.lines_["TRIlat"]["predicted"].get_ydata(), pred[1, :, 2])
    assert display.figure_.get_suptitle() == "Trial 1"
    labelled = EMGDisplay.from_predictions(pred, muscles=MUSCLES, deep_muscles=["BRA"])
    assert _title(labelled.ax_[1]) == "BRA, deep (not measured)"


def test_from_predictions_with_truth_std_and_torque():
    pred, true, torque_id = _arrays()
    std = np.full(pred.shape, 0.1)
    torque_pred = torque_id + 1.0
    display = EMGDisplay.from_predictions(
        pred,
        emg_true=true,
        emg_std=std,
        torque_pred=torque_pred,
        torque_id=torque_id,
        muscles=MUSCLES,
        rate=200.0,
        title="my trial",
    )
    assert len(display.ax_) == 4
    assert display.deep_muscles == ["BRA"]  # never measured in emg_true
    assert _title(display.ax_[1]) == "BRA, deep (not measured)"
    assert all(_has_band(ax) for ax in display.ax_[:3])
    assert not _has_band(display.ax_[3])
    for k, muscle in enumerate(MUSCLES):
        high = display.bands_[muscle].get_paths()[0].vertices[:, 1].max()
        assert high == pytest.approx(np.clip(pred[0, :, k] + Z90 * 0.1, 0, 1).max())
    truth, guess = true[0, :, 0], pred[0, :, 0]
    nrmse = np.sqrt(np.mean((truth - guess) ** 2)) / np.ptp(truth)
    assert display.scores_["BIClong"]["nrmse"] == pytest.approx(nrmse)
    assert _title(display.ax_[0]) == (
        f"BIClong: NRMSE {nrmse:.2f}, r {np.corrcoef(truth, guess)[0, 1]:.2f}"
    )
    torque_ax = display.ax_[3]
    assert {line.get_label() for line in torque_ax.get_lines()} == {
        "muscle model",
        "inverse dynamics",
    }
    np.testing.assert_allclose(display.torque_lines_["muscle model"].get_ydata(), torque_pred[0])
    np.testing.assert_allclose(display.torque_lines_["inverse dynamics"].get_xdata()[1], 1 / 200)
    assert display.scores_["torque"]["r"] == pytest.approx(1.0)
    assert _title(torque_ax).startswith("Joint torque: NRMSE ")
    assert display.figure_.get_suptitle() == "my trial"
    # every legend sits outside its axes, to the right
    for ax in display.ax_:
        assert ax.get_legend() is not None
        assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1


def test_from_predictions_only_one_torque_and_constant_truth():
    pred, true, torque_id = _arrays()
    true[0, :, 2] = 0.03  # a flat truth: r and NRMSE are undefined
    display = EMGDisplay.from_predictions(pred, emg_true=true, torque_id=torque_id, muscles=MUSCLES)
    assert set(display.torque_lines_) == {"inverse dynamics"}
    assert "torque" not in display.scores_
    assert _title(display.ax_[2]) == "TRIlat: NRMSE n/a, r n/a (constant truth)"


def test_plot_again_on_given_axes():
    pred, true, torque_id = _arrays()
    display = EMGDisplay.from_predictions(
        pred, emg_true=true, torque_id=torque_id, torque_pred=torque_id, muscles=MUSCLES
    )
    figure, axes = plt.subplots(2, 2)
    assert display.plot(ax=axes) is display
    assert display.figure_ is figure
    assert all(len(ax.get_lines()) >= 1 for ax in axes.ravel())
    with pytest.raises(ValueError, match="ax must hold 4 matplotlib Axes"):
        display.plot(ax=axes[0])
    single = EMGDisplay.from_predictions(pred[..., :1], muscles=["BIClong"])
    figure, ax = plt.subplots()
    assert single.plot(ax=ax).ax_[0] is ax


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(emg_pred=np.zeros((50, 3))), "emg_pred must have shape"),
        (dict(emg_true=np.zeros((2, 50, 2))), "emg_true must have emg_pred's shape"),
        (dict(emg_std=np.zeros((1, 50, 3))), "emg_std must have emg_pred's shape"),
        (dict(emg_std=np.full((2, 50, 3), -0.1)), "emg_std holds negative values"),
        (dict(torque_pred=np.zeros((2, 49))), r"torque_pred must have shape .* \(2, 50\)"),
        (dict(torque_id=np.zeros((2, 50, 1))), "torque_id must have shape"),
        (dict(muscles=["BIClong", "BRA"]), "muscles names the 3 columns"),
        (dict(muscles=["BIClong", "BRA", "BRA"]), "holds a name twice"),
        (dict(deep_muscles=["TRImed"]), r"unknown muscle\(s\) \['TRImed'\]; muscles are"),
        (dict(trial=2), "trial=2 is out of range: there are 2 sequences"),
        (dict(rate=0.0), "rate must be a positive number"),
        (dict(emg_pred=[["a"]]), "emg_pred must be an array of numbers"),
    ],
)
def test_from_predictions_errors(change, message):
    pred, _, _ = _arrays()
    kwargs = {"emg_pred": pred, "muscles": MUSCLES, **change}
    with pytest.raises(ValueError, match=message):
        EMGDisplay.from_predictions(kwargs.pop("emg_pred"), **kwargs)
    assert plt.get_fignums() == []  # nothing drawn before the input is checked
