"""The benchmark protocol: splits, scores against closed forms, what runs, and its report."""

from __future__ import annotations

import csv
import json
from datetime import datetime

import numpy as np
import pytest

from deepemg.benchmark import (
    METHODS,
    QUICK_FLOORS,
    BenchmarkResult,
    BenchmarkSettings,
    Floors,
    Method,
    check_floors,
    deep_muscle_metrics,
    floor_checks,
    format_table,
    run_benchmark,
    within_subject_splits,
)
from deepemg.report import FLAT_TRUTH_RANGE, markdown, write_report
from deepemg.threads import plan_workers

from .conftest import simulated

TINY = dict(
    band_members=2,
    max_epochs=2,
    loso_epochs=1,
    nmm_params={"window": 50, "d_model": 16},
    mse_params={"max_iter": 15},
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return simulated(tmp_path_factory, 2, 3, 2.0)


@pytest.fixture(scope="module")
def result(data):
    return run_benchmark(data, BenchmarkSettings(**TINY, ablation=True), n_jobs=1, progress=False)


def test_the_figure_band_comes_from_an_ensemble(result, tmp_path):
    examples = result.examples
    assert examples["band_members"] == 2 and examples["uncertainty_scale"] > 0
    assert examples["nmm_std"].shape == examples["nmm"].shape and (examples["nmm_std"] > 0).all()
    assert set(examples["band_coverage"]) == set(result.deep_muscles)
    assert all(0 <= v <= 1 for v in examples["band_coverage"].values())
    text = write_report(result, tmp_path / "report")["results.md"].read_text()
    assert "ensemble of 2 networks" in text and "90 % band" in text


def test_within_subject_splits():
    groups = ["a"] * 6 + ["b"] * 3 + ["c"]
    splits = within_subject_splits(groups)
    assert [s for s, *_ in splits] == ["a", "b"]  # c has one sequence: nothing to test on
    np.testing.assert_array_equal(splits[0][1], [0, 1, 2, 3])
    np.testing.assert_array_equal(splits[0][2], [4, 5])
    np.testing.assert_array_equal(splits[1][1], [6, 7])
    with pytest.raises(ValueError, match="train_fraction"):
        within_subject_splits(groups, 1.0)


def test_deep_muscle_metrics_closed_form():
    t = np.linspace(0, 2 * np.pi, 400)
    truth = 0.5 + 0.25 * np.sin(t)
    r, nrmse = deep_muscle_metrics(truth, truth + 0.05)
    assert r == pytest.approx(1.0) and nrmse == pytest.approx(0.05 / np.ptp(truth))
    r, _ = deep_muscle_metrics(truth, 1 - truth)
    assert r == pytest.approx(-1.0)
    assert np.isnan(deep_muscle_metrics(np.full(10, 0.2), np.arange(10.0))).all()
    assert np.isnan(deep_muscle_metrics(np.full(10, np.nan), np.arange(10.0))).all()


def test_rows_cover_methods_evaluations_and_subjects(result):
    keys = {(r["evaluation"], r["method"], r["subject"]) for r in result.rows}
    within = {
        ("within subject", m, s)
        for m in ("NMM", "NMM, physics_weight=0", "MSE")
        for s in ("S01", "S02")
    }
    loso = {("leave one subject out", m, s) for m in ("NMM", "MSE") for s in ("S01", "S02")}
    assert keys == within | loso
    assert result.deep_muscles == ["BRA", "TRImed"]
    for row in result.rows:
        assert row["fit_s"] > 0
        assert 0 < row["torque_nrmse"] < np.inf
        assert -1 <= row["BRA_r"] <= 1
    assert set(result.histories) == {"S01", "S02"}
    assert len(result.histories["S01"]) == TINY["max_epochs"]
    assert len(result.parameters) == 2 * 32  # 32 learned parameters per subject


def test_result_records_the_run(data, result):
    n_fits = len(result.rows)
    assert result.n_jobs == 1 and result.threads_per_fit == plan_workers(1, n_fits)[1]
    for key in ("deepemg", "torch", "opensim", "numpy", "scikit-learn", "cpu", "cores"):
        assert result.machine[key], key
    started = datetime.fromisoformat(result.started_utc)
    assert started.utcoffset().total_seconds() == 0
    assert result.elapsed_s > max(r["fit_s"] for r in result.rows)
    # the example is S01's heaviest test sequence; its load is recorded
    load = data.X[data.groups == "S01", 0, list(data.channels).index("load_mass")]
    assert result.examples["load_kg"] == pytest.approx(load[2:].max())
    # TRImed's truth is a co-contraction floor: nearly flat; BRA's moves
    assert result.truth_range["TRImed"] < FLAT_TRUTH_RANGE < result.truth_range["BRA"]


def test_summary_is_mean_and_sd_over_subjects(result):
    rows = [r for r in result.rows if (r["evaluation"], r["method"]) == ("within subject", "MSE")]
    summary = next(
        s for s in result.summary() if (s["evaluation"], s["method"]) == ("within subject", "MSE")
    )
    values = [r["BRA_nrmse"] for r in rows]
    assert summary["BRA_nrmse_mean"] == pytest.approx(np.mean(values))
    assert summary["BRA_nrmse_sd"] == pytest.approx(np.std(values))
    table = format_table(result)
    assert "within subject (2 subjects)" in table and "mean±SD" in table


def test_report_folder(result, tmp_path):
    written = write_report(result, tmp_path / "report")
    for name in (
        "results.md",
        "results.csv",
        "summary.csv",
        "subject_parameters.csv",
        "deep_emg.png",
        "torque.png",
        "subject_parameters.png",
        "training_curves.png",
    ):
        assert written[name].is_file() and written[name].stat().st_size > 0, name
        if name.endswith(".png"):
            assert written[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(written["results.csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(result.rows)
    assert float(rows[0]["BRA_r"]) == pytest.approx(result.rows[0]["BRA_r"])
    with open(written["subject_parameters.csv"], newline="") as handle:
        parameters = list(csv.DictReader(handle))
    true_f0 = [p for p in parameters if p["parameter"] == "max_isometric_force_scale"]
    assert all(p["true_value"] for p in true_f0)  # the simulated truth is written alongside
    markdown = written["results.md"].read_text()
    assert "| **MSE** | **mean ± SD** |" in markdown and "![deep emg](deep_emg.png)" in markdown
    assert (
        "n_jobs: 1 (folds at once)" in markdown and "† TRImed: the truth is nearly flat" in markdown
    )
    run = json.loads(written["settings.json"].read_text())["run"]
    assert run["n_jobs"] == 1 and run["machine"]["torch"] and run["started_utc"]


def test_without_truth_deep_scores_are_nan(data):
    unknown = {k: v for k, v in data.items() if k not in ("y_true", "deep_muscles")}
    settings = BenchmarkSettings(**TINY, loso=False, ablation=False)
    result = run_benchmark(unknown, settings, progress=False)
    assert result.deep_muscles == ["BRA", "TRImed"]  # never measured
    for row in result.rows:
        assert np.isnan(row["BRA_r"]) and np.isfinite(row["torque_nrmse"])
    assert result.truth_range == {}  # no truth, no caveat


def test_nothing_to_evaluate(data):
    one = {**data, "X": data.X[:1], "y": data.y[:1], "groups": data.groups[:1]}
    with pytest.raises(ValueError, match="nothing to evaluate"):
        run_benchmark(one, BenchmarkSettings(**TINY), progress=False)


def test_same_results_in_parallel(data, result):
    """Folds in 2 worker processes give the serial run's scores.

    Not bit for bit: joblib's workers run torch with one thread each, and a different thread
    count changes the order of float32 sums (differences ~1e-7).
    """
    settings = BenchmarkSettings(**TINY, ablation=True)
    parallel = run_benchmark(data, settings, n_jobs=2, progress=False)
    assert (parallel.n_jobs, parallel.threads_per_fit) == plan_workers(2, len(parallel.rows))
    assert [(r["evaluation"], r["method"], r["subject"]) for r in parallel.rows] == [
        (r["evaluation"], r["method"], r["subject"]) for r in result.rows
    ]
    columns = [c for c in result.columns if c != "fit_s"]
    serial = np.array([[r[c] for c in columns] for r in result.rows])
    spread = np.array([[r[c] for c in columns] for r in parallel.rows])
    np.testing.assert_allclose(spread, serial, rtol=1e-4, atol=1e-6, equal_nan=True)


# ---------------------------------------------------------------------- the method registry
class _TrainingMean:
    """Predicts each muscle's mean training EMG (0 where never measured); no torque."""

    def __init__(self, level):
        self.level = level

    def predict(self, X):
        return np.broadcast_to(self.level, (*X.shape[:2], len(self.level))).copy()


def _fit_training_mean(data, train, params):
    y = data.y[train]
    seen = ~np.isnan(y).all(axis=(0, 1))
    level = np.zeros(y.shape[-1])
    level[seen] = np.nanmean(y[..., seen], axis=(0, 1))
    return _TrainingMean(level + params["offset"])


def test_registry_holds_the_three_methods_in_table_order():
    assert [(k, m.label) for k, m in METHODS.items()] == [
        ("nmm", "NMM"),
        ("nmm_no_physics", "NMM, physics_weight=0"),
        ("mse", "MSE"),
    ]
    assert METHODS["nmm"].evaluations == ("within", "loso")
    assert METHODS["nmm_no_physics"].evaluations == ("within",)
    off = BenchmarkSettings(ablation=False)
    assert [m.key for m in METHODS.values() if m.enabled(off)] == ["nmm", "mse"]
    ablated = METHODS["nmm_no_physics"].params(BenchmarkSettings(), {}, "within")
    assert ablated["physics_weight"] == 0.0
    assert METHODS["nmm"].params(BenchmarkSettings(loso_epochs=7), {}, "loso")["max_epochs"] == 7


def test_a_registered_method_reaches_rows_table_and_report(data, monkeypatch, tmp_path):
    """One registry entry, no edit of benchmark.py or report.py: rows, table, csv, figure."""
    mean = Method(
        key="mean",
        label="training mean",
        color="tab:gray",
        params=lambda settings, common, evaluation: {"offset": 0.0},
        fit=_fit_training_mean,
        legend="training mean",
    )
    monkeypatch.setitem(METHODS, "mean", mean)
    planned = []

    def plan(n_jobs, n_tasks):  # n_jobs=None: run_benchmark asks plan_workers
        planned.append((n_jobs, n_tasks))
        return 1, 3

    monkeypatch.setattr("deepemg.benchmark.plan_workers", plan)
    settings = BenchmarkSettings(**{**TINY, "band_members": 0}, loso=False, ablation=False)
    result = run_benchmark(data, settings, progress=False)
    assert planned == [(None, 6)] and (result.n_jobs, result.threads_per_fit) == (1, 3)
    labels = list(dict.fromkeys(r["method"] for r in result.rows))
    assert labels == ["NMM", "MSE", "training mean"]  # registry order
    own = [r for r in result.rows if r["method"] == "training mean"]
    assert [r["subject"] for r in own] == ["S01", "S02"]
    assert all(np.isnan(r["torque_nrmse"]) and np.isfinite(r["BRA_nrmse"]) for r in own)
    assert "mean" in result.examples and result.examples["mean"].shape[1] == 2
    table = format_table(result)
    assert table.count("training mean") == 3  # two subjects and mean±SD
    written = write_report(result, tmp_path / "report")
    assert "| **training mean** | **mean ± SD** |" in written["results.md"].read_text()
    with open(written["results.csv"], newline="") as handle:
        assert sum(r["method"] == "training mean" for r in csv.DictReader(handle)) == 2
    import matplotlib.pyplot as plt

    from deepemg.report import plot_deep_emg

    figure = plot_deep_emg(result)
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend == ["truth", "NMM (kinematics + load)", "MSE (surface EMG)", "training mean"]
    colors = {line.get_label(): line.get_color() for line in figure.axes[0].get_lines()}
    assert colors["training mean"] == "tab:gray" and colors["NMM (kinematics + load)"] == "tab:blue"
    plt.close(figure)


def test_channels_of_another_joint_than_the_model_are_refused(data):
    with pytest.raises(ValueError, match="joint 'elbow'.*model's joint is 'r_elbow_flex'"):
        run_benchmark(data, BenchmarkSettings(**TINY), model="arm26.osim", progress=False)
    lacking = {**data, "X": data.X[..., :4], "channels": list(data.channels[:4])}
    with pytest.raises(ValueError, match=r"needs X's channels \['elbow_torque'\]"):
        run_benchmark(lacking, BenchmarkSettings(**TINY), progress=False)


# ---------------------------------------------------------------------- the quick self-check
def _scored(nmm: tuple, ablation: tuple | None) -> BenchmarkResult:
    """A hand-made result: (BRA r, BRA NRMSE) per subject of the NMM and its ablation."""
    rows = []
    for label, scores in (("NMM", nmm), ("NMM, physics_weight=0", ablation)):
        for k, (r, nrmse) in enumerate(scores or ()):
            rows.append(
                {
                    "method": label,
                    "evaluation": "within subject",
                    "subject": f"S0{k + 1}",
                    "BRA_r": r,
                    "BRA_nrmse": nrmse,
                    "torque_nrmse": np.nan,
                    "fit_s": 1.0,
                }
            )
    rows.append({**rows[0], "evaluation": "leave one subject out", "BRA_r": -1.0})  # ignored
    return BenchmarkResult(rows, ["BRA"], {}, {}, [], None, {})


def test_check_floors_on_hand_made_results():
    floors = Floors(muscle="BRA", min_r=0.8)
    good = _scored(((0.9, 0.10), (0.8, 0.12)), ((0.9, 0.12), (0.7, 0.11)))
    assert check_floors(good, floors) == []  # r mean 0.85; NRMSE 0.11 <= 0.115
    assert [ok for *_, ok in floor_checks(good, floors)] == [True, True]

    low = _scored(((0.9, 0.10), (0.6, 0.12)), ((0.9, 0.12), (0.7, 0.11)))
    assert check_floors(low, floors) == [
        "r_floor: NMM within-subject BRA r mean 0.750 < floor 0.800"
    ]
    no_help = _scored(((0.9, 0.12), (0.8, 0.12)), ((0.9, 0.10), (0.7, 0.12)))
    (failure,) = check_floors(no_help, floors)
    assert failure == (
        "physics_helps: NMM within-subject BRA NRMSE mean 0.120 > NMM, physics_weight=0's 0.110"
    )
    assert check_floors(no_help, Floors(min_r=0.8, nrmse_tolerance=0.02)) == []
    both = _scored(((0.5, 0.3), (0.5, 0.3)), ((0.9, 0.1), (0.9, 0.1)))
    assert [f.split(":")[0] for f in check_floors(both, floors)] == ["r_floor", "physics_helps"]
    # missing numbers fail: no ablation run, NaN scores
    assert [f.split(":")[0] for f in check_floors(_scored(((0.9, 0.1),), None), floors)] == [
        "physics_helps"
    ]
    nan = _scored(((np.nan, 0.1),), ((0.9, 0.2),))
    assert [f.split(":")[0] for f in check_floors(nan, floors)] == ["r_floor"]


def test_quick_floors_are_the_documented_ones():
    assert QUICK_FLOORS.muscle == "BRA" and QUICK_FLOORS.method == "nmm"
    assert QUICK_FLOORS.ablation == "nmm_no_physics" and 0.5 < QUICK_FLOORS.min_r < 0.93
    assert BenchmarkSettings.quick().ablation  # --quick runs the ablation it is checked against


def test_markdown_of_a_hand_made_result_needs_no_method_names():
    text = markdown(_scored(((0.9, 0.1),), ((0.8, 0.2),)))
    assert "| NMM, physics_weight=0 | S01 |" in text
