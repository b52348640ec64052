"""The benchmark protocol: splits, scores against closed forms, what runs, and its report."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from deepemg.benchmark import (
    BenchmarkSettings,
    deep_muscle_metrics,
    format_table,
    run_benchmark,
    within_subject_splits,
)
from deepemg.report import write_report

from .conftest import simulated

TINY = dict(
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
    return run_benchmark(data, BenchmarkSettings(**TINY, ablation=True), progress=False)


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


def test_without_truth_deep_scores_are_nan(data):
    unknown = {k: v for k, v in data.items() if k not in ("y_true", "deep_muscles")}
    settings = BenchmarkSettings(**TINY, loso=False, ablation=False)
    result = run_benchmark(unknown, settings, progress=False)
    assert result.deep_muscles == ["BRA", "TRImed"]  # never measured
    for row in result.rows:
        assert np.isnan(row["BRA_r"]) and np.isfinite(row["torque_nrmse"])


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
    assert [(r["evaluation"], r["method"], r["subject"]) for r in parallel.rows] == [
        (r["evaluation"], r["method"], r["subject"]) for r in result.rows
    ]
    columns = [c for c in result.columns if c != "fit_s"]
    serial = np.array([[r[c] for c in columns] for r in result.rows])
    spread = np.array([[r[c] for c in columns] for r in parallel.rows])
    np.testing.assert_allclose(spread, serial, rtol=1e-4, atol=1e-6, equal_nan=True)
