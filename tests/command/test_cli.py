"""The deepemg command: benchmark, fit and predict, and clear failures on bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from deepemg.benchmark import QUICK_FLOORS, BenchmarkResult, BenchmarkSettings
from deepemg.cli import main
from deepemg.datasets import export_trials

from ..conftest import simulated

TINY = ["--epochs", "2", "--loso-epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two simulated subjects written as trial files, one folder per subject."""
    data = simulated(tmp_path_factory, 2, 2, 3.0)
    out = {}
    for subject in ("S01", "S02"):
        keep = data.groups == subject
        part = {**data, "X": data.X[keep], "y": data.y[keep], "groups": data.groups[keep]}
        out[subject] = tmp_path_factory.mktemp(subject)
        export_trials(type(data)(**part), out[subject])
    return out


def test_benchmark_on_simulated_subjects(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEEPEMG_DATA", str(tmp_path / "cache"))
    out = tmp_path / "report"
    status = main(
        [
            "benchmark",
            "--quick",
            "--subjects",
            "2",
            "--trials",
            "3",
            "--no-loso",
            "--out",
            str(out),
            *TINY,
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "within subject (2 subjects)" in printed
    assert "mean±SD" in printed
    # --quick runs the ablation; its floors hold for the quick settings only: skipped here
    assert "self-check skipped (settings changed: n_subjects, n_trials, max_epochs)" in printed
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["method"] for r in rows} == {
        "NMM",
        "NMM, always corrected",
        "NMM, network alone",
        "NMM, physics_weight=0",
        "NMM, kinematics only",
        "NMM, EMG-assisted physics",
        "MSE",
    }
    assert {r["subject"] for r in rows} == {"S01", "S02"}
    for name in ("deep_emg.png", "torque.png", "subject_parameters.png", "training_curves.png"):
        assert (out / name).stat().st_size > 1000


def test_benchmark_on_every_scenario(tmp_path, monkeypatch, capsys):
    """--scenario all: a subfolder per scenario, one table each, the hardest's figure."""
    import deepemg.datasets
    from deepemg.datasets import SCENARIOS

    two = {name: SCENARIOS[name] for name in ("default", "heavy_loads")}  # cheap ones for all
    monkeypatch.setattr(deepemg.datasets, "SCENARIOS", two)
    monkeypatch.setenv("DEEPEMG_DATA", str(tmp_path / "cache"))
    out = tmp_path / "report"
    argv = ["benchmark", "--scenario", "all", "--subjects", "2", "--trials", "3", "--no-loso"]
    status = main([*argv, "--no-ablation", "--out", str(out), *TINY])
    assert status == 0
    printed = capsys.readouterr().out
    assert "scenario default:" in printed
    assert "scenario heavy_loads:" in printed
    text = (out / "results.md").read_text()
    assert "## default" in text
    assert "## heavy_loads" in text
    assert "The hardest scenario" in text
    for name in ("default", "heavy_loads"):
        assert (out / name / "results.md").is_file()
        assert (out / name / "deep_emg.png").is_file()
    with open(out / "heavy_loads" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # the heavy scenario's last test trial lies beyond its training loads: scored apart
    assert all(np.isfinite(float(r["BRA_r_beyond"])) for r in rows)
    settings = json.loads((out / "heavy_loads" / "settings.json").read_text())
    assert settings["scenario"] == "heavy_loads"


def _hand_made(nmm_r: float, nmm_nrmse: float, ablation_nrmse: float):
    """A result of the quick benchmark's shape, with chosen BRA scores (no fit)."""
    rows = [
        {
            "method": method,
            "evaluation": "within subject",
            "subject": subject,
            "BRA_r": r,
            "BRA_nrmse": nrmse,
            "torque_nrmse": 0.1,
            "fit_s": 1.0,
        }
        for method, r, nrmse in (
            ("NMM", nmm_r, nmm_nrmse),
            ("NMM, network alone", 0.9, ablation_nrmse),
            ("MSE", 0.5, 0.3),
        )
        for subject in ("S01", "S02", "S03")
    ]
    return BenchmarkResult(rows, ["BRA"], {}, {}, [], None, {})


@pytest.mark.parametrize(
    ("scores", "status", "message"),
    [
        ((0.95, 0.10, 0.12), 0, "self-check passed"),
        (
            (0.20, 0.10, 0.12),
            3,
            "self-check failed: r_floor: NMM within-subject BRA r mean 0.200",
        ),
        (
            (0.88, 0.10, 0.12),  # r below the network alone's 0.9 (since the synergist term)
            3,
            "self-check failed: physics_helps: NMM within-subject BRA r mean 0.880",
        ),
    ],
)
def test_quick_benchmark_self_check(scores, status, message, monkeypatch, tmp_path, capsys):
    import deepemg.benchmark

    seen = {}

    def run_benchmark(data, settings, **kwargs):
        seen["settings"] = settings
        return _hand_made(*scores)

    monkeypatch.setattr(deepemg.benchmark, "run_benchmark", run_benchmark)
    assert main(["benchmark", "--quick", "--quiet", "--out", str(tmp_path)]) == status
    assert seen["settings"] == BenchmarkSettings.quick()  # ablation included
    out, err = capsys.readouterr()
    assert "self-check (deepemg.benchmark.QUICK_FLOORS)" in out
    assert f"floor {QUICK_FLOORS.min_r:.3f}" in out  # the floors are printed
    assert message in (err if status else out)
    if status:
        assert err.count("\n") == 1
        assert err.startswith("deepemg benchmark: self-check failed")
    assert main(["benchmark", "--quick", "--no-check", "--quiet", "--out", str(tmp_path)]) == 0
    assert "self-check skipped (--no-check)" in capsys.readouterr().out


def test_fit_then_predict_a_new_subject(folders, tmp_path, capsys):
    model = tmp_path / "nmm.deepemg"
    assert (
        main(
            ["fit", "--data", str(folders["S01"]), "--out", str(model), "--epochs", "2", "--quiet"]
        )
        == 0
    )
    assert "saved to" in capsys.readouterr().out
    predictions = tmp_path / "predictions"
    assert (
        main(["predict", str(model), "--data", str(folders["S02"]), "--out", str(predictions)]) == 0
    )
    printed = capsys.readouterr().out
    assert "subjects not seen in fit: ['S02']; personalising" in printed
    files = sorted(predictions.glob("*.csv"))
    assert len(files) == 2
    with open(files[0], newline="") as handle:
        header = next(csv.reader(handle))
    table = np.loadtxt(files[0], delimiter=",", skiprows=1)
    assert header[0] == "time"
    assert header[-2:] == ["torque_model", "torque_id"]
    assert "emg_BRA" in header
    assert "emg_TRImed" in header
    assert table.shape == (300, len(header))  # the whole 3 s trial at 100 Hz: nothing cropped
    assert np.all((table[:, 1:8] >= 0) & (table[:, 1:8] <= 1))
    # the network reads the trials' surface EMG; --kinematics-only: the kinematics and load only
    from deepemg import NMMRegressor

    assert NMMRegressor.load(model).emg_inputs_ == [
        f"emg_{m}" for m in ("BIClong", "BICshort", "BRD", "TRIlong", "TRIlat")
    ]
    kinematic = tmp_path / "kinematic.deepemg"
    argv = ["fit", "--data", str(folders["S01"]), "--out", str(kinematic), "--epochs", "2"]
    assert main([*argv, "--quiet", "--kinematics-only"]) == 0
    assert NMMRegressor.load(kinematic).emg_inputs_ == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["benchmark", "--epochs", "0"], "expected a positive integer, got 0"),
        (["benchmark", "--subjects", "many"], "expected a positive integer, got 'many'"),
        (["benchmark", "--model", "arm26.osim"], "--model and --locked need --data"),
        (["fit", "--out", "m.deepemg"], "the following arguments are required: --data"),
        (["predict", "m.deepemg", "--out", "x"], "the following arguments are required: --data"),
        (["train"], "invalid choice: 'train'"),
        (["benchmark", "--scenario", "mars"], "--scenario 'mars' is not a scenario; choose"),
        (
            ["benchmark", "--scenario", "motions", "--data", "lab"],
            "--scenario chooses simulated subjects; not with --data",
        ),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_and_wrong_files_exit_1(folders, tmp_path, capsys):
    cases = [
        (["benchmark", "--data", str(tmp_path / "nowhere")], "does not exist"),
        (["fit", "--data", str(tmp_path), "--out", "m.deepemg"], "no trials.csv in"),
        (
            ["fit", "--data", str(folders["S01"]), "--out", "m.deepemg", "--model", "no.osim"],
            "--model no.osim: no such file",
        ),
        (
            ["fit", "--data", str(folders["S01"]), "--out", "m.deepemg", "--locked", "r_shoulder"],
            "--locked takes NAME=VALUE",
        ),
        (
            [
                "predict",
                str(tmp_path / "none.deepemg"),
                "--data",
                str(folders["S01"]),
                "--out",
                str(tmp_path),
            ],
            "no such model file; save one with 'deepemg fit'",
        ),
        (
            [
                "predict",
                str(folders["S01"] / "trials.csv"),
                "--data",
                str(folders["S01"]),
                "--out",
                str(tmp_path),
            ],
            "is not a model saved by deepemg",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith(f"deepemg {argv[0]}: error:"), err
        assert message in err, err


def test_console_script():
    done = subprocess.run(
        [sys.executable, "-m", "deepemg.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    for command in ("benchmark", "fit", "predict"):
        assert command in done.stdout
    bench = subprocess.run(
        [sys.executable, "-m", "deepemg.cli", "benchmark", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    text = " ".join(bench.stdout.split())
    assert "QUICK_FLOORS" in text
    assert "exits with status 3" in text


# ---------------------------------------------------------------------------- reliability
def test_fit_never_replaces_a_model_silently(folders, tmp_path, capsys):
    model = tmp_path / "nmm.deepemg"
    model.write_bytes(b"an earlier model")
    argv = ["fit", "--data", str(folders["S01"]), "--out", str(model), "--epochs", "1", "--quiet"]
    assert main(argv) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert model.read_bytes() == b"an earlier model"
    nowhere = tmp_path / "no" / "such" / "folder" / "nmm.deepemg"
    assert main([*argv[:4], str(nowhere), "--epochs", "1"]) == 1  # before any training
    assert "does not exist" in capsys.readouterr().err


def test_predict_refuses_a_pickle_without_running_it(folders, tmp_path, capsys):
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.joblib"
    evil.write_bytes(
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    )  # a pickle that runs a shell command
    argv = ["predict", str(evil), "--data", str(folders["S01"]), "--out", str(tmp_path / "p")]
    assert main(argv) == 1
    assert "never loads pickles" in capsys.readouterr().err
    assert not marker.exists()
    assert not (tmp_path / "p").exists()


def test_ctrl_c_in_fit_exits_130_and_keeps_the_old_model(folders, tmp_path):
    """A real SIGINT to a running ``deepemg fit --force``: the earlier model survives."""
    import os
    import signal
    import time

    model = tmp_path / "nmm.deepemg"
    model.write_bytes(b"an earlier, fully trained model")
    command = [sys.executable, "-m", "deepemg.cli", "fit", "--data", str(folders["S01"])]
    command += ["--out", str(model), "--force", "--epochs", "100000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    for line in process.stdout:  # wait until training has started
        if b"sequences of" in line or time.monotonic() > deadline:
            break
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err.decode()
    assert b"interrupted" in err
    assert b"Traceback" not in err
    assert model.read_bytes() == b"an earlier, fully trained model"
    assert [p.name for p in tmp_path.iterdir()] == ["nmm.deepemg"]  # no partial file


def test_benchmark_report_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch, capsys):
    import deepemg.benchmark

    out = tmp_path / "report"
    monkeypatch.setattr(
        deepemg.benchmark, "run_benchmark", lambda *a, **k: _hand_made(0.95, 0.1, 0.3)
    )
    argv = ["benchmark", "--quick", "--no-check", "--quiet", "--out", str(out)]
    assert main(argv) == 0  # an earlier report, marked as the benchmark's
    for path in out.iterdir():
        if path.name != ".deepemg-output":
            path.unlink()
    (out / "stale_figure.png").write_bytes(b"from an older run")
    (out / "results.md").write_text("old results")
    marker = json.loads((out / ".deepemg-output").read_text())
    marker["files"] = ["results.md", "stale_figure.png"]
    (out / ".deepemg-output").write_text(json.dumps(marker))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(deepemg.benchmark, "run_benchmark", interrupted)
        assert main(argv) == 130
    assert sorted(p.name for p in out.iterdir()) == [
        ".deepemg-output",
        "results.md",
        "stale_figure.png",
    ]
    assert (out / "results.md").read_text() == "old results"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # nothing partial left
    assert main(argv) == 0
    assert not (out / "stale_figure.png").exists()  # the new report replaced the old whole
    assert "old results" not in (out / "results.md").read_text()
    (out / "my_notes.txt").write_text("mine")
    assert main(argv) == 1
    assert "did not write" in capsys.readouterr().err
    assert (out / "my_notes.txt").read_text() == "mine"


def test_benchmark_with_one_trial_says_why_it_cannot(capsys):
    with pytest.raises(SystemExit) as info:
        main(["benchmark", "--trials", "1"])
    assert info.value.code == 2
    assert "--trials must be at least 2" in capsys.readouterr().err
