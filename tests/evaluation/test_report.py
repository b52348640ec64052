"""The report of a hand-made benchmark result: metadata, caveats and figures (no fit)."""

from __future__ import annotations

import json
from datetime import datetime

import matplotlib
import numpy as np
import pytest

from deepemg.benchmark import BenchmarkResult
from deepemg.report import (
    FLAT_TRUTH_RANGE,
    Z90,
    flat_truths,
    markdown,
    plot_deep_emg,
    plot_subject_parameters,
    plot_torque,
    plot_training_curves,
    report_version,
    run_info,
    write_report,
)

matplotlib.use("Agg")

MACHINE = {
    "cores": 2,
    "cpu": "Test CPU @ 2.0GHz",
    "deepemg": "9.9.9",
    "machine": "x86_64",
    "numpy": "1.2.3",
    "opensim": "4.5-test",
    "platform": "Linux-test",
    "python": "3.11.0",
    "scikit-learn": "1.4.0",
    "torch": "2.9.0",
    "torch_threads": 2,
}
PARAMETERS = {  # name -> (unit, lower, upper, per muscle, learned value of subject k)
    "max_isometric_force_scale": ("1", 0.5, 2.0, True, lambda k, m: 1.0 + 0.05 * m - 0.1 * k),
    "shape_factor": ("1", -3.0, 0.0, True, lambda k, m: -0.08 - 0.01 * m + 0.02 * k),
    "g1": ("1", -0.95, 0.0, False, lambda k, m: -0.75 + 0.03 * k),
    "delay": ("s", 0.005, 0.1, False, lambda k, m: 0.03 + 0.002 * k),
    "moment_arm_scale": ("1", 0.8, 1.2, False, lambda k, m: 0.97),  # equal for all: flat
}
MUSCLES = ["BIClong", "BRA", "TRImed"]


def _rows(subjects=("S01", "S02")) -> list[dict]:
    rows = []
    for evaluation in ("within subject", "leave one subject out"):
        for method, r in (("NMM, network alone", 0.9), ("MSE", 0.8)):
            for k, subject in enumerate(subjects):
                rows.append(
                    {
                        "method": method,
                        "evaluation": evaluation,
                        "subject": subject,
                        "BRA_r": r - 0.01 * k,
                        "BRA_nrmse": 0.15,
                        "TRImed_r": 0.4,
                        "TRImed_nrmse": 2.5,
                        "torque_nrmse": 0.06 if method.startswith("NMM") else np.nan,
                        "fit_s": 12.0,
                    }
                )
    return rows


def _parameters(subjects=("S01", "S02")) -> list[dict]:
    rows = []
    for k, subject in enumerate(subjects):
        for name, (unit, lower, upper, per_muscle, value) in PARAMETERS.items():
            for m, muscle in enumerate(MUSCLES if per_muscle else [None]):
                rows.append(
                    {
                        "subject": subject,
                        "parameter": name,
                        "muscle": muscle,
                        "value": value(k, m),
                        "unit": unit,
                        "lower": lower,
                        "upper": upper,
                    }
                )
    return rows


def _true_parameters(subjects=("S01", "S02")) -> list[dict]:
    return [
        {
            "name": subject,
            "muscles": MUSCLES,
            "max_isometric_force_scale": [1.1, 0.9, 1.0],
            "optimal_fiber_length_scale": [1.0, 1.0, 1.0],
            "tendon_slack_length_scale": [1.0, 1.0, 1.0],
            "electromechanical_delay": 0.04 + 0.005 * k,
        }
        for k, subject in enumerate(subjects)
    ]


def hand_made(std: bool = False, metadata: bool = True) -> BenchmarkResult:
    """A result shaped like run_benchmark's: BRA moves 0.25-0.55, TRImed's truth is flat."""
    time = np.arange(200) / 100.0
    bra = 0.4 + 0.15 * np.sin(2 * np.pi * time / 2)
    truth = np.column_stack([bra, np.full_like(time, 0.02)])
    nmm = np.column_stack([bra + 0.02, 0.02 + 0.01 * np.sin(3 * time)])
    examples = {
        "subject": "S01",
        "time": time,
        "truth": truth,
        "nmm": nmm,
        "mse": np.column_stack([bra - 0.05, np.full_like(time, 0.03)]),
        "torque_id": 10 + 5 * np.sin(time),
        "torque_nmm": 10.2 + 5 * np.sin(time),
        "load_kg": 6.0,
    }
    if std:
        examples["nmm_std"] = np.column_stack([np.full_like(time, 0.05), np.full_like(time, 0.01)])
    epochs = range(1, 11)
    histories = {
        s: [
            {"epoch": e, "data": 0.1 / e, "physics": 0.05 / e, "effort": 0.02, "loss": 0.2 / e}
            for e in epochs
        ]
        for s in ("S01", "S02")
    }
    extra = {}
    if metadata:
        extra = dict(
            machine=MACHINE,
            n_jobs=2,
            threads_per_fit=1,
            started_utc="2025-01-02T03:04:05+00:00",
            truth_range={"BRA": 0.42, "TRImed": 0.046},
        )
    return BenchmarkResult(
        rows=_rows(),
        deep_muscles=["BRA", "TRImed"],
        examples=examples,
        histories=histories,
        parameters=_parameters(),
        true_parameters=_true_parameters(),
        settings={"n_subjects": 2, "max_epochs": 10, "nmm_params": {}},
        elapsed_s=125.0,
        **extra,
    )


@pytest.fixture
def close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def _drawn(figure):
    figure.canvas.draw()
    return figure


def _legends(figure):
    found = [ax.get_legend() for ax in figure.axes if ax.get_legend() is not None]
    return found + list(figure.legends)


def _assert_legends_off_the_data(figure):
    """No legend overlaps the data area of any visible axes."""
    legends = _legends(_drawn(figure))
    assert legends
    for legend in legends:
        box = legend.get_window_extent()
        for ax in figure.axes:
            if ax.axison:
                assert not box.overlaps(ax.get_window_extent()), (legend, ax.get_title())


# ---------------------------------------------------------------------------- metadata
def test_settings_json_and_markdown_hold_the_run_metadata(tmp_path, close_figures):
    result = hand_made()
    written = write_report(result, tmp_path / "report")
    settings = json.loads(written["settings.json"].read_text())
    assert settings["n_subjects"] == 2  # the settings stay at the top
    run = settings["run"]
    assert run["n_jobs"] == 2
    assert run["threads_per_fit"] == 1
    assert run["elapsed_s"] == pytest.approx(125.0)
    assert datetime.fromisoformat(run["started_utc"]).utcoffset().total_seconds() == 0
    for key in ("deepemg", "torch", "opensim", "numpy", "scikit-learn", "cpu", "cores"):
        assert run["machine"][key] == MACHINE[key], key

    text = written["results.md"].read_text()
    for expected in (
        "started (UTC): 2025-01-02T03:04:05+00:00",
        "wall time: 2.1 min (125 s)",
        "n_jobs: 2 (folds at once); threads per fit: 1",
        "CPU: Test CPU @ 2.0GHz, 2 cores",
        "deepemg 9.9.9",
        "torch 2.9.0",
        "OpenSim 4.5-test",
        "numpy 1.2.3",
        "scikit-learn 1.4.0",
        "fit (s)",
    ):
        assert expected in text, expected


def test_a_result_without_metadata_still_reports():
    result = hand_made(metadata=False)
    info = run_info(result)
    assert info["started_utc"] is None
    assert info["n_jobs"] is None
    assert info["machine"] == {}
    text = markdown(result)
    assert "wall time: 2.1 min" in text
    assert "CPU" not in text
    assert "†" not in text


# ---------------------------------------------------------------------------- caveats
def test_a_flat_truth_gets_a_caveat_under_every_table():
    result = hand_made()
    assert flat_truths(result) == {"TRImed": 0.046}
    text = markdown(result)
    assert "| TRImed r † | TRImed nrmse † |" in text
    assert "BRA nrmse †" not in text
    caveats = [line for line in text.splitlines() if line.startswith("† TRImed")]
    assert len(caveats) == 2  # one under each table
    assert "nearly flat" in caveats[0]
    assert "0.046" in caveats[0]
    assert "BRA 0.420" in caveats[0]
    assert "gravity always flexes the elbow" in caveats[0]
    assert "NRMSE (RMSE over that tiny range) is therefore large" in caveats[0]
    assert "weak evidence" in caveats[0]
    # each table's last row is followed by its caveat
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("† "):
            assert lines[k - 1] == ""
            assert lines[k - 2].startswith("| **MSE** | **mean ± SD**")


def test_caveat_threshold_and_other_joints():
    result = hand_made()
    result.truth_range = {"BRA": FLAT_TRUTH_RANGE / 2, "TRImed": 0.046}
    assert set(flat_truths(result)) == {"BRA", "TRImed"}
    result.truth_range = {"BRA": 0.42, "TRImed": FLAT_TRUTH_RANGE}
    assert flat_truths(result) == {}
    result.truth_range = {"BRA": 0.42, "TRImed": 0.01}
    result.joint = "knee"
    text = markdown(result)
    assert "co-contraction floor" in text
    assert "elbow" not in text


# ---------------------------------------------------------------------------- figures
def test_deep_emg_title_has_the_load_and_panels_their_own_range(close_figures):
    figure = _drawn(plot_deep_emg(hand_made()))
    top, bottom = figure.axes
    assert "load 6 kg" in top.get_title()
    low, high = bottom.get_ylim()  # TRImed: 0.01-0.03, not 0-0.6
    assert 0.0 < low < 0.01 + 1e-9
    assert 0.03 < high < 0.05
    low, high = top.get_ylim()
    assert 0.15 < low < 0.2
    assert 0.57 < high < 0.65
    assert not figure.axes[0].collections  # no band without nmm_std
    _assert_legends_off_the_data(figure)


def test_deep_emg_draws_the_90_percent_band(close_figures):
    from matplotlib.collections import PolyCollection

    result = hand_made(std=True)
    figure = _drawn(plot_deep_emg(result))
    for k, ax in enumerate(figure.axes):
        (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert band.get_label() == "NMM, network alone 90 % band"
        vertices = band.get_paths()[0].vertices
        mean = result.examples["nmm"][:, k]
        spread = Z90 * result.examples["nmm_std"][:, k]
        assert vertices[:, 1].min() == pytest.approx(np.clip(mean - spread, 0, 1).min())
        assert vertices[:, 1].max() == pytest.approx(np.clip(mean + spread, 0, 1).max())
        low, high = ax.get_ylim()  # the band is in view
        assert low <= vertices[:, 1].min()
        assert vertices[:, 1].max() <= high
    # TRImed: mean 0.01-0.03 minus 1.645 x 0.01 is clipped at 0
    assert figure.axes[1].collections[0].get_paths()[0].vertices[:, 1].min() == 0.0
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert labels[:3] == ["truth", "NMM, network alone", "NMM, network alone 90 % band"]
    _assert_legends_off_the_data(figure)


def test_torque_legend_is_off_the_data(close_figures):
    figure = plot_torque(hand_made())
    assert "load 6 kg" in figure.axes[0].get_title()
    _assert_legends_off_the_data(figure)


def test_every_subject_parameter_panel_has_tick_labels_and_its_own_range(close_figures):
    result = hand_made()
    figure = _drawn(plot_subject_parameters(result))
    used = [ax for ax in figure.axes if ax.axison]
    assert len(used) == len(PARAMETERS)
    for ax in used:
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            assert any(t.get_text().strip() for t in labels if t.get_visible()), ax.get_title()
        assert "bounds [" in ax.get_title()
    shape = next(ax for ax in used if ax.get_title().startswith("shape_factor"))
    low, high = shape.get_ylim()  # the values (-0.1..-0.04), not the bounds (-3..0)
    assert high - low < 0.2
    flat = next(ax for ax in used if ax.get_title().startswith("moment_arm_scale"))
    assert flat.get_ylim()[0] < 0.97 < flat.get_ylim()[1]
    _assert_legends_off_the_data(figure)


def test_training_curves_have_y_labels(close_figures):
    figure = _drawn(plot_training_curves(hand_made()))
    assert len(figure.axes) == 3  # data, physics, effort (no synergy term)
    for ax in figure.axes:
        assert ax.get_ylabel()
        assert ax.get_xlabel() == "epoch"
    _assert_legends_off_the_data(figure)


def test_report_folder_of_a_hand_made_result(tmp_path, close_figures):
    written = write_report(hand_made(std=True), tmp_path)
    for name in ("deep_emg.png", "torque.png", "subject_parameters.png", "training_curves.png"):
        assert written[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![deep emg](deep_emg.png)" in written["results.md"].read_text()


def test_report_version_is_the_one_that_ran_it(tmp_path, close_figures):
    """settings.json records the deepemg version, which says which labels the rows carry."""
    from pathlib import Path

    from deepemg.benchmark import current_label

    write_report(hand_made(), tmp_path / "made")
    assert report_version(tmp_path / "made") == MACHINE["deepemg"]
    write_report(hand_made(metadata=False), tmp_path / "bare")
    assert report_version(tmp_path / "bare") is None
    old = Path(__file__).parents[2] / "docs" / "results" / "benchmark"  # written by 0.1.0.dev0
    version = report_version(old)
    assert version == "0.1.0.dev0"
    assert current_label("NMM", version) == "NMM, network alone"
    with pytest.raises(FileNotFoundError):
        report_version(tmp_path)
