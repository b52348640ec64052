"""The deepemg command under hostile but realistic use: the subject's own EMG in predict, the
user's files never deleted, SIGTERM, --out in the wrong place, messages in the command's words.

Each test reproduces a defect found by probing the command and checks what replaced it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import deepemg.benchmark
import deepemg.io
from deepemg import NMMRegressor
from deepemg.cli import main
from deepemg.datasets import export_trials

from ..conftest import FAST_NMM, simulated
from .test_cli import _hand_made

BENCH = ["benchmark", "--quick", "--no-check", "--quiet"]
MARKER = ".deepemg-output"
"""The file that marks a folder as a command's output (what it wrote, which command)."""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Three simulated subjects (two 3 s trials each) as data folders: ``fit`` (S01, S02),
    ``new`` (S02, seen in fit, and S03, not seen) and ``S03`` alone; ``arrays`` the Bunch."""
    data = simulated(tmp_path_factory, 3, 2, 3.0)
    folders = {"arrays": data}
    for name, subjects in (("fit", ("S01", "S02")), ("new", ("S02", "S03")), ("S03", ("S03",))):
        keep = np.isin(data.groups, subjects)
        part = {**data, "X": data.X[keep], "y": data.y[keep], "groups": data.groups[keep]}
        folders[name] = tmp_path_factory.mktemp(name)
        export_trials(type(data)(**part), folders[name])
    return folders


@pytest.fixture(scope="module")
def model(lab, tmp_path_factory):
    """``deepemg fit`` on S01 and S02 (predict_physics="torque", the default)."""
    path = tmp_path_factory.mktemp("model") / "nmm.deepemg"
    argv = ["fit", "--data", str(lab["fit"]), "--out", str(path), "--epochs", "2", "--quiet"]
    assert main(argv) == 0
    return path


@pytest.fixture(scope="module")
def predicted(lab, model, tmp_path_factory):
    """``deepemg predict`` on S02 (seen in fit) and S03 (personalised): the output folder."""
    out = tmp_path_factory.mktemp("run") / "predictions"
    assert main(["predict", str(model), "--data", str(lab["new"]), "--out", str(out)]) == 0
    return out


def _no_work(*args, **kwargs):
    raise AssertionError("the command started working before refusing its arguments")


def _contents(folder):
    """Every file under ``folder`` (relative path -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"deepemg {command}: error: "), err
    assert err.count("\n") == 1, err
    return err


# ---------------------------------------------------------------------------- 1. subject's EMG
def test_predict_writes_the_emg_of_each_subjects_own_muscle_model(lab, model, predicted):
    """The EMG written is ``nmm.predict(X, [subject])``, as the torque is: for a subject seen
    in fit and for a new one personalised on its trials (it was the population's EMG)."""
    from deepemg.io import load_each_trial, read_manifest

    nmm = NMMRegressor.load(model)
    assert nmm.predict_physics == "auto"  # the default: corrected where adequate
    trials = read_manifest(lab["new"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = load_each_trial(
            trials, model=nmm.model, coordinate=nmm.coordinate, rate=nmm.rate,
            channels=list(nmm.channels_), locked=nmm.locked,
        )  # fmt: skip
    own = [d for d, t in zip(loaded, trials, strict=True) if t["subject"] == "S03"]
    X = np.concatenate([d.X for d in own])
    y = np.concatenate([d.y for d in own])
    nmm.personalize(X, y, subject_ids=np.full(len(X), "S03", dtype=object))  # as predict does
    for k, (trial, data) in enumerate(zip(trials, loaded, strict=True)):
        path = predicted / f"{trial['kinematics'].stem}_{k:03d}.csv"
        with open(path, newline="") as handle:
            header = next(csv.reader(handle))
        table = np.loadtxt(path, delimiter=",", skiprows=1)
        emg = [j for j, name in enumerate(header) if name.startswith("emg_")]
        expected = nmm.predict(data.X, [trial["subject"]])[0]
        population = nmm.predict(data.X)[0]
        assert np.abs(expected - population).max() > 1e-3  # the test tells the two apart
        np.testing.assert_allclose(table[:, emg], expected, rtol=1e-5, atol=2e-6)
        torque = nmm.predict_torque(data.X, [trial["subject"]])[0]
        np.testing.assert_allclose(table[:, header.index("torque_model")], torque, rtol=1e-5)


def test_a_subject_labelled_by_a_number_in_fit_is_known_by_its_text(lab, tmp_path, capsys):
    """A model fitted in Python on subjects 7 and 8 (ints): trials.csv's "7" is subject 7, its
    own muscle model writes its EMG; "07" is another label, personalised as a new subject."""
    data = lab["arrays"]
    keep = np.isin(data.groups, ["S01", "S02"])
    numbers = np.where(data.groups[keep] == "S01", 7, 8)
    nmm = NMMRegressor(random_state=0, **{**FAST_NMM, "predict_physics": "torque"})
    nmm.set_params(correction_steps=5, channels=list(data.channels[:5]))
    nmm.fit(data.X[keep][..., :5], data.y[keep], subject_ids=numbers)
    path = nmm.save(tmp_path / "numbers.deepemg")
    folder = tmp_path / "lab"
    part = {**data, "X": data.X[keep], "y": data.y[keep], "groups": data.groups[keep]}
    export_trials(type(data)(**part), folder, subjects={"S01": "7", "S02": "07"})
    out = tmp_path / "predictions"
    assert main(["predict", str(path), "--data", str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "subjects seen in fit: ['7']" in printed
    assert "not seen in fit: ['07']" in printed
    from deepemg.io import load_each_trial, read_manifest

    trials = read_manifest(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = load_each_trial(trials, channels=list(data.channels[:5]))
    model = NMMRegressor.load(path)
    for k, (trial, one) in enumerate(zip(trials, loaded, strict=True)):
        if trial["subject"] != "7":
            continue
        table = np.loadtxt(
            out / f"{trial['kinematics'].stem}_{k:03d}.csv", delimiter=",", skiprows=1
        )
        expected = model.predict(one.X, [7])[0]
        assert np.abs(expected - model.predict(one.X)[0]).max() > 1e-4
        np.testing.assert_allclose(
            table[:, 1 : 1 + len(model.muscles_)], expected, rtol=1e-5, atol=2e-6
        )


# ---------------------------------------------------------------------------- 2. user's files
def test_predict_never_deletes_the_users_files(lab, model, tmp_path, monkeypatch, capsys):
    """A folder of recordings whose names end in .csv is not predict's output: refused before
    any work, named, and left as it was (it was replaced whole, exit status 0)."""
    out = tmp_path / "recordings"
    out.mkdir()
    (out / "raw_emg_subject07.csv").write_text("time,EMG1\n0.000,0.12\n")
    (out / "session1.csv").mkdir()
    (out / "session1.csv" / "notes.txt").write_text("MVC at 10:32")
    before = _contents(out)
    monkeypatch.setattr(deepemg.io, "load_each_trial", _no_work)
    monkeypatch.setattr(NMMRegressor, "load", _no_work)
    assert main(["predict", str(model), "--data", str(lab["S03"]), "--out", str(out)]) == 1
    err = _error_line(capsys, "predict")
    assert "raw_emg_subject07.csv" in err
    assert "session1.csv" in err
    assert "did not write" in err
    assert _contents(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recordings"]  # nothing partial


def test_predict_replaces_its_own_earlier_output_whole(lab, model, predicted, tmp_path):
    out = tmp_path / "predictions"
    shutil.copytree(predicted, out)
    assert len(list(out.glob("*.csv"))) == 4  # S02's and S03's trials
    assert main(["predict", str(model), "--data", str(lab["S03"]), "--out", str(out)]) == 0
    written = ["S03_trial01_ik_000.csv", "S03_trial02_ik_001.csv"]
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, *written])  # none stale
    marker = json.loads((out / MARKER).read_text())
    assert marker["command"] == "predict"
    assert sorted(marker["files"]) == written
    assert marker["deepemg"] == deepemg.__version__
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions"]


def test_one_commands_folder_is_refused_by_the_other(
    lab, model, predicted, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "predictions"
    shutil.copytree(predicted, out)
    before = _contents(out)
    monkeypatch.setattr(deepemg.benchmark, "run_benchmark", _no_work)
    assert main([*BENCH, "--out", str(out)]) == 1
    err = _error_line(capsys, "benchmark")
    assert "written by 'deepemg predict'" in err
    assert _contents(out) == before
    report = tmp_path / "report"
    monkeypatch.setattr(deepemg.benchmark, "run_benchmark", lambda *a, **k: _hand_made(1, 1, 1))
    assert main([*BENCH, "--out", str(report)]) == 0
    capsys.readouterr()
    before = _contents(report)
    monkeypatch.setattr(deepemg.io, "load_each_trial", _no_work)
    monkeypatch.setattr(NMMRegressor, "load", _no_work)
    assert main(["predict", str(model), "--data", str(lab["S03"]), "--out", str(report)]) == 1
    assert "written by 'deepemg benchmark'" in _error_line(capsys, "predict")
    assert _contents(report) == before


def test_a_file_added_to_an_output_folder_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(deepemg.benchmark, "run_benchmark", lambda *a, **k: _hand_made(1, 1, 1))
    out = tmp_path / "report"
    out.mkdir()  # an empty folder may be used
    assert main([*BENCH, "--out", str(out)]) == 0
    assert main([*BENCH, "--out", str(out)]) == 0  # its own output: replaced
    capsys.readouterr()
    for added in ("my_analysis.csv", "figures_for_paper"):
        path = out / added
        path.mkdir() if "." not in added else path.write_text("mine")
        before = _contents(out)
        monkeypatch.setattr(deepemg.benchmark, "run_benchmark", _no_work)
        assert main([*BENCH, "--out", str(out)]) == 1
        err = _error_line(capsys, "benchmark")
        assert added in err
        assert "did not write" in err
        assert _contents(out) == before
        assert path.exists()
        path.rmdir() if path.is_dir() else path.unlink()


# ---------------------------------------------------------------------------- 3. SIGTERM
def _wait_for(process, text: bytes, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    for line in process.stdout:
        if text in line:
            return
        assert time.monotonic() < deadline, f"no {text!r} within {seconds} s"
    raise AssertionError(f"the command ended before printing {text!r}")


def _terminate(process, command: str) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    text = err.decode()
    assert process.returncode == 143, text
    assert "Traceback" not in text
    assert text.strip().splitlines()[-1].startswith(f"deepemg {command}: terminated"), text
    return text


def test_sigterm_during_predict_exits_143_and_leaves_nothing_partial(
    lab, model, predicted, tmp_path
):
    """A real SIGTERM while predict personalises (made endless): the earlier output stays,
    no hidden .partial folder is left (they piled up, one per interrupted run)."""
    slow = tmp_path / "slow.deepemg"
    nmm = NMMRegressor.load(model)
    nmm.set_params(max_epochs=100000).save(slow)  # personalising takes for ever
    out = tmp_path / "predictions"
    shutil.copytree(predicted, out)
    before = _contents(out)
    command = [sys.executable, "-m", "deepemg.cli", "predict", str(slow)]
    command += ["--data", str(lab["S03"]), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _wait_for(process, b"personalising")
    assert len(list(tmp_path.glob(".predictions.*.partial"))) == 1
    time.sleep(1.0)
    _terminate(process, "predict")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions", "slow.deepemg"]
    assert _contents(out) == before


SLOW_BENCHMARK = """
import sys, time
import deepemg.benchmark

def run_benchmark(*args, **kwargs):
    print("benchmark running", flush=True)
    time.sleep(300)

deepemg.benchmark.run_benchmark = run_benchmark
from deepemg.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_during_benchmark_exits_143_and_leaves_nothing_partial(tmp_path, monkeypatch):
    monkeypatch.setattr(deepemg.benchmark, "run_benchmark", lambda *a, **k: _hand_made(1, 1, 1))
    out = tmp_path / "report"
    assert main([*BENCH, "--out", str(out)]) == 0
    before = _contents(out)
    command = [sys.executable, "-c", SLOW_BENCHMARK, *BENCH, "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _wait_for(process, b"benchmark running")
    assert len(list(tmp_path.glob(".report.*.partial"))) == 1
    _terminate(process, "benchmark")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
    assert _contents(out) == before


def test_stale_partial_folders_of_interrupted_runs_are_removed(tmp_path, monkeypatch, capsys):
    """Folders left beside --out by a run that was killed are removed by the next run, but
    only those marked as deepemg's, of a process that is gone."""
    monkeypatch.setattr(deepemg.benchmark, "run_benchmark", lambda *a, **k: _hand_made(1, 1, 1))
    out = tmp_path / "report"
    assert main([*BENCH, "--out", str(out)]) == 0
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()

    def left(name: str, **marker) -> None:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "results.md").write_text("half written")
        if marker:
            (folder / MARKER).write_text(json.dumps(marker))

    mark = {"command": "benchmark", "deepemg": deepemg.__version__, "out": "report"}
    here = socket.gethostname()
    left(".report.k1ll3d00.partial", **mark, state="partial", pid=gone.pid, host=here, files=[])
    left(".report.sw4pp3d0.old", **mark, files=["results.md"])
    left(".report.runn1ng0.partial", **mark, state="partial", pid=os.getppid(), host=here)
    left(".report.n0tm1ne0.partial")  # no marker: not deepemg's
    left(".report.b.k1ll3d00.partial", **{**mark, "out": "report.b"}, pid=gone.pid, host=here)
    assert main([*BENCH, "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".report.b.k1ll3d00.partial",  # another --out's
        ".report.n0tm1ne0.partial",
        ".report.runn1ng0.partial",  # a run still going
        "report",
    ]


def test_a_signal_during_the_swap_never_leaves_out_missing(tmp_path, monkeypatch, capsys):
    """SIGTERM between the two renames that swap the new folder in: the swap completes, then
    the command exits 143 saying so; the previous SIGTERM handler is back afterwards."""
    monkeypatch.setattr(deepemg.benchmark, "run_benchmark", lambda *a, **k: _hand_made(1, 1, 1))
    out = tmp_path / "report"
    assert main([*BENCH, "--out", str(out)]) == 0
    (out / "results.md").write_text("the earlier report")
    replace = os.replace

    def interrupted(source, target):
        replace(source, target)
        if os.fspath(source) == os.fspath(out):  # out moved aside, the new one not yet in
            signal.raise_signal(signal.SIGTERM)

    handler = signal.getsignal(signal.SIGTERM)
    capsys.readouterr()
    monkeypatch.setattr(os, "replace", interrupted)
    assert main([*BENCH, "--out", str(out)]) == 143
    monkeypatch.setattr(os, "replace", replace)
    assert signal.getsignal(signal.SIGTERM) is handler
    assert "report had been written whole" in capsys.readouterr().err
    assert "# " in (out / "results.md").read_text()  # the new report, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


# ---------------------------------------------------------------------------- 4. --out place
@pytest.mark.parametrize(
    ("command", "where", "message"),
    [
        ("predict", "cwd", "is the current folder"),
        ("predict", "data", "is the data folder"),
        ("predict", "above data", "holds the data folder"),
        ("predict", "model's", "holds the model file"),
        ("benchmark", "cwd", "is the current folder"),
        ("benchmark", "data", "is the data folder"),
        ("benchmark", "above data", "holds the data folder"),
    ],
)
def test_out_that_would_replace_the_inputs_is_refused_before_any_work(
    command, where, message, lab, model, tmp_path, monkeypatch, capsys
):
    """--out is replaced whole: it may not be the current folder, the data folder, a folder
    holding it, or the model file's folder (--out . did all the work, then failed)."""
    data = tmp_path / "lab" / "S03"
    shutil.copytree(lab["S03"], data)
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(model, models / "nmm.deepemg")
    monkeypatch.chdir(tmp_path / "lab")
    for name in ("load_each_trial", "load_trials", "read_manifest"):
        monkeypatch.setattr(deepemg.io, name, _no_work)
    monkeypatch.setattr(NMMRegressor, "load", _no_work)
    monkeypatch.setattr(deepemg.benchmark, "run_benchmark", _no_work)
    out = {"cwd": ".", "data": "S03", "above data": str(tmp_path), "model's": str(models)}[where]
    if command == "predict":
        argv = ["predict", str(models / "nmm.deepemg"), "--data", "S03", "--out", out]
    else:
        argv = ["benchmark", "--data", "S03", "--quiet", "--out", out]
    before = _contents(tmp_path)
    assert main(argv) == 1
    err = _error_line(capsys, command)
    assert message in err
    assert "replaces its --out folder whole" in err
    assert "give" in err
    assert _contents(tmp_path) == before


# ---------------------------------------------------------------------------- 5. messages
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sequence-seconds", "1e-9"], "--sequence-seconds 1e-09 gives sequences of 0 samples"),
        (["--sequence-seconds", "0.5", "--window-seconds", "1"], "--window-seconds 1 is longer"),
        (["--window-seconds", "0.001"], "--window-seconds 0.001 gives a window of 0 samples"),
    ],
)
def test_fit_sequence_and_window_lengths_in_the_commands_words(
    argv, message, lab, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(deepemg.io, "load_trials", _no_work)
    with pytest.raises(SystemExit) as info:
        main(["fit", "--data", str(lab["S03"]), "--out", str(tmp_path / "m.deepemg"), *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "n_timesteps" not in err
    assert "window=" not in err


def test_benchmark_sequences_must_hold_the_nmms_window(lab, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(deepemg.io, "load_trials", _no_work)
    monkeypatch.setattr(deepemg.benchmark, "run_benchmark", _no_work)
    argv = ["benchmark", "--data", str(lab["S03"]), "--out", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--sequence-seconds", "0.5"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--sequence-seconds 0.5" in err
    assert "window of 1 s" in err


def test_fit_with_sequences_longer_than_every_trial(lab, tmp_path, capsys):
    out = tmp_path / "m.deepemg"
    argv = ["fit", "--data", str(lab["S03"]), "--out", str(out), "--sequence-seconds", "5"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "--sequence-seconds" in err
    assert "n_timesteps" not in err
    assert not out.exists()


def test_fit_out_that_is_a_folder(lab, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(deepemg.io, "load_trials", _no_work)
    for out, extra in (("/", []), (str(tmp_path), []), (str(tmp_path), ["--force"])):
        assert main(["fit", "--data", str(lab["S03"]), "--out", out, *extra]) == 1
        err = _error_line(capsys, "fit")
        assert "is a folder" in err
        assert "--force" not in err
        assert "nmm.deepemg" in err


def _truncate_kinematics(path, seconds: float) -> None:
    lines = path.read_text().splitlines()
    end = lines.index("endheader") + 2
    rows = [r for r in lines[end:] if float(r.split("\t")[0]) <= seconds + 1e-9]
    header = [f"nRows={len(rows)}" if h.startswith("nRows=") else h for h in lines[:end]]
    path.write_text("\n".join(header + rows) + "\n")


def test_predict_names_the_trials_shorter_than_the_models_window(
    lab, model, tmp_path, monkeypatch, capsys
):
    """One 0.3 s trial made all of predict fail with 'use a smaller window', naming neither
    the trial nor an option the command has."""
    data = tmp_path / "S03"
    shutil.copytree(lab["S03"], data)
    _truncate_kinematics(data / "S03_trial02_ik.mot", 0.3)
    monkeypatch.setattr(NMMRegressor, "personalize", _no_work)
    out = tmp_path / "predictions"
    assert main(["predict", str(model), "--data", str(data), "--out", str(out)]) == 1
    err = _error_line(capsys, "predict")
    assert "S03_trial02_ik.mot" in err
    assert "S03_trial01_ik.mot" not in err
    assert "0.3 s" in err
    assert "window of 1 s" in err
    assert "trials.csv" in err
    assert "--window-seconds" in err
    assert "window=" not in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["S03"]


@pytest.fixture(scope="module")
def ten_channel_model(lab, tmp_path_factory):
    """A model fitted in Python on the arrays' 10 channels (kinematics, load, torque and the
    surface EMG): what deepemg.NMMRegressor() takes by default."""
    data = lab["arrays"]
    nmm = NMMRegressor(random_state=0, **FAST_NMM)
    nmm.fit(data.X[:2], data.y[:2], subject_ids=data.groups[:2])
    assert nmm.n_channels_ == 10
    return nmm.save(tmp_path_factory.mktemp("ten") / "ten.deepemg")


def test_predict_with_a_model_that_needs_the_surface_emg(lab, ten_channel_model, tmp_path, capsys):
    """Its channels come from the folder's EMG when every trial gives it; a folder without
    EMG is refused in the command's words (it said "Pass channels=")."""
    data = tmp_path / "no_emg"
    shutil.copytree(lab["S03"], data)
    with open(data / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    keep = ["subject", "load_mass", "kinematics", "torque"]
    with open(data / "trials.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, keep, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "predictions"
    assert main(["predict", str(ten_channel_model), "--data", str(data), "--out", str(out)]) == 1
    err = _error_line(capsys, "predict")
    assert "channels=" not in err
    assert "emg_BIClong" in err
    assert "elbow_torque" in err
    assert "needs the channels" in err
    assert "give [" in err
    assert "emg_channels" in err
    assert not out.exists()
    argv = ["predict", str(ten_channel_model), "--data", str(lab["S03"]), "--out", str(out)]
    assert main(argv) == 0
    assert len(list(out.glob("*.csv"))) == 2


# ---------------------------------------------------------------- back into OpenSim (issue 21)
def test_predict_format_sto_writes_what_opensim_reads(lab, model, predicted, tmp_path):
    """``--format sto``: per trial a controls file (excitations, columns named by muscle), a
    states file (activations) and the torques, read back by OpenSim itself, equal to the csv
    output of the same model."""
    import opensim as osim

    out = tmp_path / "sto"
    assert main(["predict", str(model), "--data", str(lab["new"]), "--out", str(out),
                 "--format", "sto"]) == 0  # fmt: skip
    nmm = NMMRegressor.load(model)
    for csv_file in sorted(predicted.glob("*.csv")):
        with open(csv_file, newline="") as handle:
            header = next(csv.reader(handle))
        table = np.loadtxt(csv_file, delimiter=",", skiprows=1)
        stem = csv_file.stem
        excitation = osim.TimeSeriesTable(str(out / f"{stem}_excitation.sto"))
        assert list(excitation.getColumnLabels()) == list(nmm.muscles_)
        for j, muscle in enumerate(nmm.muscles_):
            column = excitation.getDependentColumnAtIndex(j).to_numpy()
            expected = np.clip(table[:, header.index(f"emg_{muscle}")], 0, 1)
            np.testing.assert_allclose(column, expected, atol=2e-6)
        np.testing.assert_allclose(
            np.asarray(excitation.getIndependentColumn()), table[:, 0], atol=1e-9
        )
        activation = osim.TimeSeriesTable(str(out / f"{stem}_activation.sto"))
        assert list(activation.getColumnLabels()) == [
            f"/forceset/{m}/activation" for m in nmm.muscles_
        ]
        torque = osim.TimeSeriesTable(str(out / f"{stem}_torque.sto"))
        labels = list(torque.getColumnLabels())
        model_torque = torque.getDependentColumnAtIndex(labels.index("elbow_moment_model"))
        np.testing.assert_allclose(
            model_torque.to_numpy(), table[:, header.index("torque_model")], rtol=1e-5
        )
    assert not list(out.glob("*.csv"))


def test_predict_runs_a_model_saved_for_cuda_on_the_cpu(lab, model, tmp_path, capsys):
    """A model file saved with device='cuda' (its settings say so): on a machine without a
    GPU, ``deepemg predict`` loads it onto the CPU."""
    import zipfile

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    cuda = tmp_path / "cuda.deepemg"
    with zipfile.ZipFile(model) as source, zipfile.ZipFile(cuda, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "deepemg.json":
                header = json.loads(content)
                header["params"]["device"] = "cuda"
                content = json.dumps(header)
            target.writestr(name, content)
    out = tmp_path / "predictions"
    assert main(["predict", str(cuda), "--data", str(lab["S03"]), "--out", str(out)]) == 0
    assert len(list(out.glob("*.csv"))) == 2
