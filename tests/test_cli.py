"""The deepemg command: benchmark, fit and predict, and clear failures on bad input."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from deepemg.cli import main
from deepemg.datasets import export_trials

from .conftest import simulated

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
    assert "within subject (2 subjects)" in printed and "mean±SD" in printed
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["method"] for r in rows} == {"NMM", "MSE"}
    assert {r["subject"] for r in rows} == {"S01", "S02"}
    for name in ("deep_emg.png", "torque.png", "subject_parameters.png", "training_curves.png"):
        assert (out / name).stat().st_size > 1000


def test_fit_then_predict_a_new_subject(folders, tmp_path, capsys):
    model = tmp_path / "nmm.joblib"
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
    assert header[0] == "time" and header[-2:] == ["torque_model", "torque_id"]
    assert "emg_BRA" in header and "emg_TRImed" in header
    assert table.shape == (300, len(header))  # the whole 3 s trial at 100 Hz: nothing cropped
    assert np.all((table[:, 1:8] >= 0) & (table[:, 1:8] <= 1))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["benchmark", "--epochs", "0"], "expected a positive integer, got 0"),
        (["benchmark", "--subjects", "many"], "expected a positive integer, got 'many'"),
        (["benchmark", "--model", "arm26.osim"], "--model and --locked need --data"),
        (["fit", "--out", "m.joblib"], "the following arguments are required: --data"),
        (["predict", "m.joblib", "--out", "x"], "the following arguments are required: --data"),
        (["train"], "invalid choice: 'train'"),
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
        (["fit", "--data", str(tmp_path), "--out", "m.joblib"], "no trials.csv in"),
        (
            ["fit", "--data", str(folders["S01"]), "--out", "m.joblib", "--model", "no.osim"],
            "--model no.osim: no such file",
        ),
        (
            ["fit", "--data", str(folders["S01"]), "--out", "m.joblib", "--locked", "r_shoulder"],
            "--locked takes NAME=VALUE",
        ),
        (
            [
                "predict",
                str(tmp_path / "none.joblib"),
                "--data",
                str(folders["S01"]),
                "--out",
                str(tmp_path),
            ],
            "no such file; save one with 'deepemg fit'",
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
            "is not a model saved by 'deepemg fit'",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith(f"deepemg {argv[0]}: error:") and message in err, err


def test_console_script():
    done = subprocess.run(
        [sys.executable, "-m", "deepemg.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    for command in ("benchmark", "fit", "predict"):
        assert command in done.stdout
