"""The benchmark protocol: splits, scores against closed forms, what runs, and its report."""

from __future__ import annotations

import csv
import json
from datetime import datetime

import numpy as np
import pytest

from deepemg.benchmark import (
    EVALUATIONS,
    LEGACY_LABELS,
    METHODS,
    QUICK_FLOORS,
    ROLES,
    BenchmarkResult,
    BenchmarkSettings,
    Floors,
    Method,
    check_floors,
    current_label,
    deep_muscle_metrics,
    floor_checks,
    format_table,
    level_error,
    method_of,
    method_of_role,
    run_benchmark,
    run_benchmarks,
    target_checks,
    within_subject_splits,
    within_trial_r,
)
from deepemg.benchmark.runner import _expected_cost
from deepemg.report import (
    FLAT_TRUTH_RANGE,
    hardest_scenario,
    markdown,
    methods_line,
    write_report,
    write_scenarios_report,
)
from deepemg.threads import plan_workers

from ..conftest import simulated

NMM_DEFAULT = METHODS["nmm_physics"].label  # the NMM as it predicts by default
TINY = dict(
    band_members=2,
    max_epochs=2,
    loso_epochs=1,
    nmm_params={"window": 50, "d_model": 16},
    mse_params={"max_iter": 15},
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    data = simulated(tmp_path_factory, 2, 3, 2.0)
    # each subject's last trial counts as heavier than any training trial
    data["beyond_training"] = np.tile([False, False, True], 2)
    return data


@pytest.fixture(scope="module")
def result(data):
    return run_benchmark(data, BenchmarkSettings(**TINY, ablation=True), n_jobs=1, progress=False)


def test_the_figure_band_comes_from_an_ensemble(result, tmp_path):
    examples = result.examples
    assert examples["band_members"] == 2
    assert examples["uncertainty_scale"] > 0
    assert examples["nmm_std"].shape == examples["nmm"].shape
    assert (examples["nmm_std"] > 0).all()
    assert set(examples["band_coverage"]) == set(result.deep_muscles)
    assert all(0 <= v <= 1 for v in examples["band_coverage"].values())
    text = write_report(result, tmp_path / "report")["results.md"].read_text()
    assert "ensemble of 2 networks" in text
    assert "90 % band" in text


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
    assert r == pytest.approx(1.0)
    assert nrmse == pytest.approx(0.05 / np.ptp(truth))
    r, _ = deep_muscle_metrics(truth, 1 - truth)
    assert r == pytest.approx(-1.0)
    assert np.isnan(deep_muscle_metrics(np.full(10, 0.2), np.arange(10.0))).all()
    assert np.isnan(deep_muscle_metrics(np.full(10, np.nan), np.arange(10.0))).all()


def test_rows_cover_methods_evaluations_and_subjects(result):
    keys = {(r["evaluation"], r["method"], r["subject"]) for r in result.rows}
    predictions = ("NMM", "NMM, always corrected", "NMM, EMG-assisted physics")
    within = {
        ("within subject", m, s)
        for m in (
            "NMM, network alone",
            *predictions,
            "NMM, physics_weight=0",
            "NMM, kinematics only",
            "MSE",
        )
        for s in ("S01", "S02")
    }
    loso = {
        ("leave one subject out", m, s)
        for m in ("NMM, network alone", *predictions, "NMM, subject_embedding=4", "MSE")
        for s in ("S01", "S02")
    }
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
    assert result.n_jobs == 1
    assert result.threads_per_fit == plan_workers(1, n_fits)[1]
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
    assert "within subject (2 subjects)" in table
    assert "mean±SD" in table


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
        assert written[name].is_file(), name
        assert written[name].stat().st_size > 0, name
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
    assert "| **MSE** | **mean ± SD** |" in markdown
    assert "![deep emg](deep_emg.png)" in markdown
    assert "n_jobs: 1 (folds at once)" in markdown
    assert "† TRImed: the truth is nearly flat" in markdown
    run = json.loads(written["settings.json"].read_text())["run"]
    assert run["n_jobs"] == 1
    assert run["machine"]["torch"]
    assert run["started_utc"]


def test_without_truth_deep_scores_are_nan(data):
    unknown = {k: v for k, v in data.items() if k not in ("y_true", "deep_muscles")}
    settings = BenchmarkSettings(**TINY, loso=False, ablation=False)
    result = run_benchmark(unknown, settings, progress=False)
    assert result.deep_muscles == ["BRA", "TRImed"]  # never measured
    for row in result.rows:
        assert np.isnan(row["BRA_r"])
        assert np.isfinite(row["torque_nrmse"])
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


def test_runs_pooled_give_the_separate_runs_results_longest_fits_first(data, result):
    """run_benchmarks: the fits of two runs in one pool, the longest first, each run's own rows."""
    within = BenchmarkSettings(**TINY, loso=False, ablation=False)
    runs = {"full": BenchmarkSettings(**TINY, ablation=True), "within": within}
    pooled = run_benchmarks(runs, {"full": data, "within": data}, n_jobs=1, progress=False)
    assert list(pooled) == ["full", "within"]
    columns = [c for c in result.columns if c != "fit_s"]
    for name, alone in (("full", result), ("within", None)):
        own = pooled[name]
        assert own.pooled == ("full", "within")
        assert "2 runs whose fits shared one pool (full, within)" in markdown(own)
        if alone is None:
            assert {r["evaluation"] for r in own.rows} == {EVALUATIONS["within"]}
            continue
        assert [(r["method"], r["subject"]) for r in own.rows] == [
            (r["method"], r["subject"]) for r in alone.rows
        ]
        got = np.array([[r[c] for c in columns] for r in own.rows])
        expected = np.array([[r[c] for c in columns] for r in alone.rows])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    # the longest first: a leave-one-subject-out NMM fit (every other subject's sequences)
    # before a within-subject one, and any network before MSE
    nmm, mse = METHODS["nmm"], METHODS["mse"]
    settings = runs["full"]
    loso_nmm = _expected_cost(nmm.params(settings, {}, "loso"), 24, 30)
    within_nmm = _expected_cost(nmm.params(settings, {}, "within"), 8, 30)
    within_mse = _expected_cost(mse.params(settings, {}, "within"), 8, 30)
    assert loso_nmm > within_nmm > within_mse


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


def test_registry_holds_the_methods_in_table_order():
    assert [(k, m.label) for k, m in METHODS.items()] == [
        ("nmm_physics", "NMM"),  # the proposed method first
        ("nmm_torque", "NMM, always corrected"),
        ("nmm", "NMM, network alone"),
        ("nmm_no_physics", "NMM, physics_weight=0"),
        ("nmm_kinematics", "NMM, kinematics only"),  # 0.5's NMM
        ("nmm_emg_physics", "NMM, EMG-assisted physics"),
        ("nmm_pretrained", "NMM, pretrained + personalised"),
        ("nmm_personal", "NMM, subject_embedding=4"),
        ("mse", "MSE"),
    ]
    assert METHODS["nmm"].evaluations == ("within", "loso")
    assert METHODS["nmm_no_physics"].evaluations == ("within",)
    assert METHODS["nmm_kinematics"].evaluations == ("within",)
    assert METHODS["nmm_physics"].evaluations == ("within", "loso")  # the NMM's own fits
    assert METHODS["nmm_personal"].evaluations == ("loso",)
    assert METHODS["nmm_pretrained"].evaluations == ("within",)
    off = BenchmarkSettings(ablation=False)
    assert [m.key for m in METHODS.values() if m.enabled(off)] == [
        "nmm_physics",
        "nmm_torque",
        "nmm",
        "nmm_emg_physics",
        "mse",
    ]
    pretrained = BenchmarkSettings(pretrained=True)
    assert METHODS["nmm_pretrained"].enabled(pretrained)
    ablated = METHODS["nmm_no_physics"].params(BenchmarkSettings(), {}, "within")
    assert ablated["physics_weight"] == 0.0
    old = METHODS["nmm_kinematics"].params(BenchmarkSettings(), {}, "within")
    assert (old["emg_inputs"], old["physics_trains"], old["effort_weight"]) == (False, "all", 0.1)
    assert old["predict_physics"] == "torque"
    assert METHODS["nmm_physics"].predict_params == {"predict_physics": "auto"}  # the default
    assert METHODS["nmm_torque"].predict_params == {"predict_physics": "torque"}
    assert METHODS["nmm_personal"].params(BenchmarkSettings(), {}, "loso")["subject_embedding"] == 4
    assert METHODS["nmm"].params(BenchmarkSettings(loso_epochs=7), {}, "loso")["max_epochs"] == 7


def test_every_method_has_a_role_and_a_description():
    assert {key: method.role for key, method in METHODS.items()} == {
        "nmm": "ablation",  # the network alone: the prediction-time physics taken away
        "nmm_no_physics": "ablation",
        "nmm_kinematics": "ablation",  # 0.5's NMM: no EMG input, the torque trains the network
        "nmm_physics": "proposed",  # the NMM as it predicts by default
        "nmm_torque": "variant",  # the same fit, always corrected
        "nmm_emg_physics": "variant",
        "nmm_pretrained": "variant",
        "nmm_personal": "variant",
        "mse": "baseline",
    }
    assert all(m.role in ROLES and m.description for m in METHODS.values())
    assert method_of_role("proposed") is METHODS["nmm_physics"]
    assert method_of_role("baseline") is METHODS["mse"]
    with pytest.raises(KeyError, match="no method"):
        method_of_role("reference")
    with pytest.raises(ValueError, match="role 'competitor' of the method 'x'"):
        Method("x", "x", "tab:gray", lambda *_: {}, None, role="competitor")
    line = methods_line(["MSE", "NMM, network alone", "not registered"])
    assert line.startswith("Methods: 'NMM, network alone' (ablation): the same fit as 'NMM'")
    assert "; 'MSE' (baseline): muscle synergy extrapolation" in line


def test_the_report_finds_the_proposed_method_and_the_baseline_by_role(monkeypatch):
    """Another proposed method and baseline, registered: targets and report follow the roles."""
    from dataclasses import replace

    for key in ("nmm_physics", "mse"):
        monkeypatch.setitem(METHODS, key, replace(METHODS[key], role="variant"))
    mine = replace(METHODS["nmm"], key="mine", label="my NMM", role="proposed")
    other = replace(METHODS["mse"], key="other", label="other baseline", role="baseline")
    monkeypatch.setitem(METHODS, "mine", mine)
    monkeypatch.setitem(METHODS, "other", other)

    def row(method, r):
        return {"evaluation": "within subject", "subject": "S01", "method": method, "BRA_r": r}

    rows = [row("my NMM", 0.95), row("other baseline", 0.97), row(NMM_DEFAULT, 0.5)]
    result = BenchmarkResult(rows, ["BRA"], {}, {}, [], None, {})
    checks = {c["target"]: c for c in target_checks(result)}
    assert checks["BRA r >= 0.92"]["value"] == pytest.approx(0.95)
    assert checks["BRA r >= MSE's"]["reference"] == pytest.approx(0.97)
    text = markdown(result)
    assert "| evaluation | target | my NMM | bound | other baseline | |" in text
    assert "'my NMM' (proposed)" in text
    harder = BenchmarkResult([row("my NMM", 0.1), *rows[1:]], ["BRA"], {}, {}, [], None, {})
    assert hardest_scenario({"default": result, "motions": harder}) == "motions"


def test_labels_of_reports_before_0_5_are_translated_by_the_version_that_wrote_them():
    """Before 0.5 "NMM" was the network alone and the default "NMM + prediction-time physics"."""
    assert method_of("NMM") is method_of_role("proposed")
    assert method_of("NMM, network alone") is METHODS["nmm"]
    for old, new in LEGACY_LABELS.items():
        assert method_of(new) is not None, new
        for version in ("0.1.0.dev0", "0.4.2", "0.4"):
            assert current_label(old, version) == new
        for version in ("0.5.0.dev0", "0.5.0", "1.0.0rc1", None):  # today's labels
            assert current_label(old, version) == old
    assert current_label("NMM + prediction-time physics", "0.1.0.dev0") == "NMM"
    assert current_label("NMM", "0.1.0.dev0") == "NMM, network alone"
    assert current_label("MSE", "0.1.0.dev0") == "MSE"  # unchanged labels stay
    assert current_label("NMM, physics_weight=0", "0.1.0.dev0") == "NMM, physics_weight=0"
    old = ("NMM", "NMM + prediction-time physics", "NMM + EMG-assisted physics", "MSE")
    assert len({current_label(label, "0.1.0.dev0") for label in old}) == len(old)
    with pytest.raises(ValueError, match="not a deepemg version"):
        current_label("NMM", "dev")


def test_within_trial_r_is_the_mean_of_each_trials_r():
    t = np.linspace(0, 1, 40)
    truth = np.stack([t, 3 + t, np.full(40, 0.2)])  # the flat trial has no r: left out
    prediction = np.stack([t, 3 - t, t])
    assert within_trial_r(truth, prediction) == pytest.approx(0.0)  # (1 + -1) / 2
    # pooled r sees the level (trial 2 is high) and is near 1; within-trial r is not fooled
    assert deep_muscle_metrics(truth[:2], prediction[:2])[0] > 0.9
    assert np.isnan(within_trial_r(np.full((2, 5), 0.1), np.ones((2, 5))))


def test_level_error_is_the_log_ratio_of_the_means_and_is_a_column(result):
    truth = np.array([[0.1, 0.3], [0.2, np.nan]])  # mean 0.2 where measured
    assert level_error(truth, np.array([[0.3, 0.3], [0.3, 9.0]])) == pytest.approx(np.log(1.5))
    assert level_error(truth, np.full((2, 2), 0.2 / 1.5)) == pytest.approx(np.log(1.5))
    assert np.isnan(level_error(truth, np.zeros((2, 2))))
    assert all(np.isfinite(row["BRA_level_error"]) for row in result.rows)


def test_beyond_training_loads_are_scored_and_never_trained_on(data, result, monkeypatch):
    beyond = data["beyond_training"]
    for row in result.rows:  # every fold's test set holds one trial beyond the training loads
        assert np.isfinite(row["BRA_r_beyond"])
        assert np.isfinite(row["BRA_r_trial"])
    assert "BRA_r_beyond" in result.columns
    assert "BRA_r_trial" in result.columns
    within = [r for r in result.rows if r["evaluation"] == "within subject"]
    for row in within:  # within subject the only test trial is the heavy one
        assert row["BRA_r_beyond"] == pytest.approx(row["BRA_r"])
    seen = []

    def record(method, evaluation, data, subject, train, test, *args, **kwargs):
        seen.append((evaluation, set(train.tolist()), set(test.tolist())))
        return {"row": {}, "example": {}, "derived": {}, "history": [], "parameters": []}

    monkeypatch.setattr("deepemg.benchmark.runner._run_fold", record)
    run_benchmark(data, BenchmarkSettings(**{**TINY, "band_members": 0}), n_jobs=1, progress=False)
    heavy = set(np.flatnonzero(beyond).tolist())
    assert {evaluation for evaluation, *_ in seen} == {"within", "loso"}
    for evaluation, train, test in seen:  # tested, never trained on, in every fold
        assert not train & heavy, evaluation
        assert test & heavy, evaluation


def test_prediction_time_physics_rows_reuse_the_nmm_fit(result):
    rows = {(r["evaluation"], r["method"], r["subject"]): r for r in result.rows}
    for evaluation in ("within subject", "leave one subject out"):
        for subject in ("S01", "S02"):
            nmm = rows[(evaluation, "NMM, network alone", subject)]
            physics = rows[(evaluation, "NMM", subject)]
            assert physics["fit_s"] == nmm["fit_s"]  # same fitted estimator, no fit of its own
            # the correction makes the subject's muscle model reproduce the torque
            assert physics["torque_nrmse"] < nmm["torque_nrmse"]
            assert physics["BRA_r"] != nmm["BRA_r"]


def test_targets_against_closed_form_rows():
    def row(method, evaluation, **scores):
        return {"method": method, "evaluation": evaluation, "subject": "S01", **scores}

    within, loso = "within subject", "leave one subject out"
    rows = [
        row(
            NMM_DEFAULT,
            within,
            BRA_r=0.95,
            BRA_r_trial=0.8,
            BRA_nrmse=0.1,
            TRImed_r=0.5,
            torque_nrmse=0.04,
        ),
        row(
            "MSE",
            within,
            BRA_r=0.97,
            BRA_r_trial=0.9,
            BRA_nrmse=0.3,
            TRImed_r=0.9,
            torque_nrmse=np.nan,
        ),
        row(NMM_DEFAULT, loso, BRA_r=0.90, BRA_r_beyond=0.9, BRA_nrmse=0.2, torque_nrmse=0.06),
        row("MSE", loso, BRA_r=0.80, BRA_r_beyond=0.5, BRA_nrmse=0.3),
    ]
    result = BenchmarkResult(
        rows, ["BRA", "TRImed"], {}, {}, [], None, {}, truth_range={"BRA": 0.4, "TRImed": 0.05}
    )
    met = {(c["evaluation"], c["target"]): c["met"] for c in target_checks(result)}
    assert met[(within, "BRA r >= 0.92")] is True
    assert met[(within, "BRA r >= MSE's")] is False  # 0.95 < 0.97
    assert met[(within, "BRA r within trial >= 0.85")] is False
    assert met[(within, "BRA r beyond the training loads >= 0.85")] is None  # none beyond
    assert met[(within, "BRA NRMSE <= 0.5 x MSE's")] is True  # 0.1 <= 0.15
    assert met[(within, "TRImed r >= 0.80 (where the triceps work)")] is None  # flat truth
    assert met[(within, "muscle torque NRMSE <= 5 %")] is True
    assert met[(loso, "BRA r >= 0.92")] is False
    assert met[(loso, "BRA r >= MSE's")] is True
    assert met[(loso, "BRA NRMSE <= 0.5 x MSE's")] is False  # 0.2 > 0.15
    assert met[(loso, "BRA r beyond the training loads >= 0.85")] is True
    assert met[(loso, "muscle torque NRMSE <= 5 %")] is False
    working = BenchmarkResult(
        rows, ["BRA", "TRImed"], {}, {}, [], None, {}, truth_range={"BRA": 0.4, "TRImed": 0.3}
    )
    checks = target_checks(working)
    assert {(c["evaluation"], c["target"]): c["met"] for c in checks}[
        (within, "TRImed r >= 0.80 (where the triceps work)")
    ] is False
    text = markdown(result)
    assert "## Targets" in text
    assert "| within subject | BRA r >= MSE's | 0.950 | 0.970 |" in text


def test_scenarios_report_has_a_table_per_scenario_and_the_hardest_figure(result, tmp_path):
    from dataclasses import replace as copy

    harder = copy(result, rows=[{**r, "BRA_r_trial": r["BRA_r_trial"] - 2.0} for r in result.rows])
    written = write_scenarios_report({"default": result, "motions": harder}, tmp_path / "all")
    assert written["default/results.md"].is_file()
    assert written["motions/deep_emg.png"].is_file()
    text = written["results.md"].read_text()
    assert "## default" in text
    assert "## motions" in text
    assert "## The hardest scenario: motions" in text
    assert "(motions/deep_emg.png)" in text
    assert text.count("### Targets") == 2
    assert hardest_scenario({"default": result, "motions": harder}) == "motions"


def test_a_registered_method_reaches_rows_table_and_report(data, monkeypatch, tmp_path):
    """One registry entry, no edit of deepemg.benchmark or report.py: rows, table, csv, figure."""
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

    monkeypatch.setattr("deepemg.benchmark.runner.plan_workers", plan)
    settings = BenchmarkSettings(**{**TINY, "band_members": 0}, loso=False, ablation=False)
    result = run_benchmark(data, settings, progress=False)
    assert planned == [(None, 6)]
    assert (result.n_jobs, result.threads_per_fit) == (1, 3)
    labels = list(dict.fromkeys(r["method"] for r in result.rows))
    assert labels == [
        "NMM",
        "NMM, always corrected",
        "NMM, network alone",
        "NMM, EMG-assisted physics",
        "MSE",
        "training mean",
    ]  # registry order
    own = [r for r in result.rows if r["method"] == "training mean"]
    assert [r["subject"] for r in own] == ["S01", "S02"]
    assert all(np.isnan(r["torque_nrmse"]) and np.isfinite(r["BRA_nrmse"]) for r in own)
    assert "mean" in result.examples
    assert result.examples["mean"].shape[1] == 2
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
    assert legend == [
        "truth",
        "NMM",
        "NMM, network alone",
        "MSE (surface EMG)",
        "training mean",
    ]
    colors = {line.get_label(): line.get_color() for line in figure.axes[0].get_lines()}
    assert colors["training mean"] == "tab:gray"
    assert colors["NMM, network alone"] == "tab:blue"
    plt.close(figure)


def test_channels_of_another_joint_than_the_model_are_refused(data):
    with pytest.raises(ValueError, match=r"joint 'elbow'.*model's joint is 'r_elbow_flex'"):
        run_benchmark(data, BenchmarkSettings(**TINY), model="arm26.osim", progress=False)
    lacking = {**data, "X": data.X[..., :4], "channels": list(data.channels[:4])}
    with pytest.raises(ValueError, match=r"needs X's channels \['elbow_torque'\]"):
        run_benchmark(lacking, BenchmarkSettings(**TINY), progress=False)


# ---------------------------------------------------------------------- the quick self-check
def _scored(nmm: tuple, ablation: tuple | None) -> BenchmarkResult:
    """A hand-made result: (BRA r, BRA NRMSE) per subject of the NMM and its ablation."""
    rows = []
    for label, scores in (("NMM, network alone", nmm), ("NMM, physics_weight=0", ablation)):
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
        "r_floor: NMM, network alone within-subject BRA r mean 0.750 < floor 0.800"
    ]
    no_help = _scored(((0.9, 0.12), (0.8, 0.12)), ((0.9, 0.10), (0.7, 0.12)))
    (failure,) = check_floors(no_help, floors)
    assert failure == (
        "physics_helps: NMM, network alone within-subject BRA NRMSE mean 0.120 > "
        "NMM, physics_weight=0's 0.110"
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
    # comparing r instead (the quick benchmark's, since the synergist term)
    by_r = Floors(muscle="BRA", min_r=0.8, score="r")
    assert check_floors(no_help, by_r) == []  # r 0.85 >= 0.80 though its NRMSE is worse
    assert [f.split(":")[0] for f in check_floors(low, by_r)] == ["r_floor", "physics_helps"]
    worse_r = _scored(((0.85, 0.1), (0.85, 0.1)), ((0.9, 0.2), (0.9, 0.2)))
    assert check_floors(worse_r, by_r) == [
        "physics_helps: NMM, network alone within-subject BRA r mean 0.850 < "
        "NMM, physics_weight=0's 0.900"
    ]


def test_quick_floors_are_the_documented_ones():
    assert QUICK_FLOORS.muscle == "BRA"
    # the NMM as it predicts by default, against the same fitted network alone
    assert QUICK_FLOORS.method == "nmm_physics"
    assert METHODS[QUICK_FLOORS.method].label == "NMM"
    assert METHODS[QUICK_FLOORS.method].predict_params == {"predict_physics": "auto"}
    assert QUICK_FLOORS.ablation == "nmm"
    assert QUICK_FLOORS.score == "r"
    assert (
        METHODS[QUICK_FLOORS.ablation].params(BenchmarkSettings(), {}, "within")["predict_physics"]
        == "none"
    )
    assert 0.5 < QUICK_FLOORS.min_r < 0.93
    assert BenchmarkSettings.quick().ablation  # --quick runs the ablation it is checked against


def test_markdown_of_a_hand_made_result_needs_no_method_names():
    text = markdown(_scored(((0.9, 0.1),), ((0.8, 0.2),)))
    assert "| NMM, physics_weight=0 | S01 |" in text
