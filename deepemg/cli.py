"""The ``deepemg`` command: ``benchmark``, ``fit`` and ``predict``.

``deepemg benchmark`` fits the NMM and muscle synergy extrapolation on the built-in simulated
subjects (or on a folder of trial files), evaluates them within subject and leave one subject
out, prints the table and writes a report folder (markdown, csv, PNG figures). With
``--quick`` it ends with a self-check of its numbers against
:data:`deepemg.benchmark.QUICK_FLOORS` (exit status 3 when one fails).
``deepemg fit`` trains an :class:`~deepemg.NMMRegressor` on a folder of trial files and saves
it; ``deepemg predict`` reconstructs every muscle's EMG (and the muscle torque) for a folder of
trial files with a saved model, one csv per trial.

A data folder holds the trial files and a ``trials.csv`` manifest (see
:func:`deepemg.io.read_manifest`); ``deepemg <command> --help`` lists the options.

``benchmark --out`` and ``predict --out`` are folders the command replaces whole. Each
command leaves a marker file (:data:`MARKER`) in the folders it writes, listing what it wrote,
and replaces an existing folder only when it carries the marker of the same command and holds
nothing else; its own unfinished folders (``.<name>.*.partial`` beside ``--out``) are removed
when it ends, on SIGTERM too, or by its next run when it was killed.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main"]

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""
TERMINATED = 143
"""Exit status after SIGTERM (128 + 15), as shells report it."""
CHECK_FAILED = 3
"""Exit status of ``deepemg benchmark --quick`` when its self-check fails."""
RATE = 100.0
"""Sampling rate (Hz) at which the commands read trials."""
WINDOW_SECONDS = 1.0
"""The network's window of ``deepemg fit`` by default (s; shorter sequences: their length)."""
MARKER = ".deepemg-output"
"""The file a command leaves in each folder it writes: JSON with the command, the files it
wrote (paths relative to the folder) and deepemg's version. An existing ``--out`` folder is
replaced only when it carries the marker of the same command and holds nothing else."""
QUICK_CHECKED = (
    "n_subjects",
    "n_trials",
    "duration",
    "train_fraction",
    "max_epochs",
    "random_state",
    "ablation",
    "nmm_params",
    "scenario",
)
"""Settings the ``--quick`` floors were measured with: changing one skips the self-check."""


class CommandError(Exception):
    """A problem with the user's input: printed without a traceback, exit status 1."""


_published: list[Path] = []
"""The output folders the running command has put in place (for the message on a signal)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM while a command runs, raised in the main thread.

    Raised there so that the command's clean-up runs; a KeyboardInterrupt, so that training
    stops as it does on Ctrl-C.
    """


def main(argv: list[str] | None = None) -> int:
    """Run the ``deepemg`` command line; returns the exit status.

    Examples
    --------
    >>> main(["--version"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    SystemExit: 0
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _published.clear()
    try:
        with _sigterm_raises():
            return args.run(args, parser)
    except KeyboardInterrupt as interrupt:
        outputs = "earlier outputs were left as they were"
        if _published:  # the signal came as the command ended
            outputs = f"{', '.join(map(str, _published))} had been written whole"
        if isinstance(interrupt, Terminated):  # SIGTERM
            print(f"deepemg {args.command}: terminated; {outputs}", file=sys.stderr)
            return TERMINATED
        print(f"\ndeepemg {args.command}: interrupted; {outputs}", file=sys.stderr)  # Ctrl-C
        return INTERRUPTED
    except CommandError as error:
        print(f"deepemg {args.command}: error: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError, KeyError, TypeError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"deepemg {args.command}: error: {message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="deepemg",
        description="Deep-muscle EMG from kinematics and load with a neural musculoskeletal model.",
    )
    parser.add_argument("--version", action="version", version=f"deepemg {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _benchmark_parser(commands)
    _fit_parser(commands)
    _predict_parser(commands)
    return parser


def _benchmark_parser(commands) -> None:
    """The options of ``deepemg benchmark``."""
    bench = commands.add_parser(
        "benchmark",
        help="NMM against muscle synergy extrapolation, within and across subjects",
        description="Fit the NMM and muscle synergy extrapolation (MSE), evaluate them within "
        "subject and leave one subject out, print the table and write a report folder.",
        epilog="Self-check: --quick ends by checking its own numbers against "
        "deepemg.benchmark.QUICK_FLOORS and prints each check: the NMM's within-subject "
        "deep-muscle (BRA) r mean must reach a floor, and its BRA NRMSE mean must not be worse "
        "than that of the NMM with physics_weight=0 (the physics term must help). A failed "
        "check exits with status 3 and a one-line message naming it. The check is skipped "
        "with --data, --no-check, or options that change the quick within-subject fits "
        "(--subjects, --trials, --epochs, --random-state, --no-ablation). Exit status: 0 "
        "success, 1 bad files, 2 bad arguments, 3 self-check failed.",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="the quick benchmark for a first look and for CI (its size and time: docs/cli.md), "
        "then the self-check (exit status 3 when a floor fails; see below)",
    )
    bench.add_argument("--no-check", action="store_true", help="skip the self-check of --quick")
    bench.add_argument(
        "--out",
        type=Path,
        default=Path("deepemg-report"),
        help="report folder (default: %(default)s): new, empty, or written by 'deepemg "
        "benchmark' (replaced whole)",
    )
    _data_arguments(bench, required=False)
    bench.add_argument("--subjects", type=_positive_int, help="simulated subjects (default 5)")
    bench.add_argument(
        "--trials", type=_positive_int, help="simulated trials per subject (default 12)"
    )
    bench.add_argument("--epochs", type=_positive_int, help="NMM epochs within subject")
    bench.add_argument("--loso-epochs", type=_positive_int, help="NMM epochs leave one subject out")
    bench.add_argument("--no-loso", action="store_true", help="skip leave one subject out")
    bench.add_argument(
        "--no-ablation", action="store_true", help="skip the NMM with physics_weight=0"
    )
    bench.add_argument(
        "--scenario",
        default="default",
        metavar="NAME",
        help="simulated subjects: 'default' (make_elbow_lifting), a harder scenario "
        "(compliant_tendons, motions, heavy_loads, strategies, off_simulator, ballistic, "
        "personal_curves; docs/scenarios.md) or 'all' (each in its own subfolder, one table "
        "per scenario in results.md); not with --data",
    )
    bench.add_argument(
        "--pretrained",
        action="store_true",
        help="also fit, within subject, the NMM pretrained on the other subjects and "
        "personalised on the subject's own training trials",
    )
    bench.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="fits in parallel (joblib processes, one thread each; default: one per core)",
    )
    _run_arguments(bench)
    bench.set_defaults(run=_benchmark)


def _fit_parser(commands) -> None:
    """The options of ``deepemg fit``."""
    fit = commands.add_parser(
        "fit",
        help="train an NMM on a folder of trial files and save it",
        description="Train an NMMRegressor on every trial of a data folder and save it "
        "(weights and settings in a zip; loading it runs no code) for 'deepemg predict'. The "
        "file is written whole when training has finished; an existing file is replaced only "
        "with --force, and Ctrl-C (exit status 130) leaves it as it was.",
    )
    _data_arguments(fit, required=True)
    fit.add_argument(
        "--out",
        type=Path,
        required=True,
        help="model file to write (deepemg's zip format, no pickle; e.g. nmm.deepemg)",
    )
    fit.add_argument("--force", action="store_true", help="replace an existing --out file")
    fit.add_argument("--epochs", type=_positive_int, default=30, help="epochs (default 30)")
    fit.add_argument(
        "--physics-weight", type=float, default=1.0, help="weight of the torque term (default 1)"
    )
    fit.add_argument(
        "--window-seconds",
        type=_positive_float,
        default=None,
        help=f"the network's window (s; default {WINDOW_SECONDS:g}, or --sequence-seconds if "
        "shorter): at most --sequence-seconds; 'deepemg predict' needs trials at least this long",
    )
    fit.add_argument(
        "--kinematics-only",
        action="store_true",
        help="the network reads the kinematics and load only, not the trials' surface EMG "
        "(0.5's NMM), for predicting trials recorded without EMG",
    )
    _run_arguments(fit)
    fit.set_defaults(run=_fit)


def _predict_parser(commands) -> None:
    """The options of ``deepemg predict``."""
    predict = commands.add_parser(
        "predict",
        help="every muscle's EMG for a folder of trial files, with a saved model",
        description="Predict every muscle's EMG envelope and the muscle torque for each trial "
        "of a data folder with a model saved by 'deepemg fit'; one csv per trial, each "
        "subject's EMG and torque with its own muscle model. Subjects the model has not seen "
        "are personalised on their trials first. --out is replaced whole, so it must be a new "
        "or empty folder, or one that 'deepemg predict' wrote (SIGTERM: exit status 143).",
    )
    predict.add_argument("model_file", type=Path, help="a model saved by 'deepemg fit'")
    predict.add_argument(
        "--data", type=Path, required=True, help="folder with trials.csv and the trial files"
    )
    predict.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for the csv files: new, empty, or written by 'deepemg predict' (replaced "
        "whole); not the current folder, nor one holding the data or the model file",
    )
    predict.add_argument(
        "--no-personalize",
        action="store_true",
        help="use population parameters for subjects not seen in fit",
    )
    predict.add_argument(
        "--format",
        choices=("csv", "sto"),
        default="csv",
        help="csv: one table per trial (time, every muscle's EMG, muscle and inverse-dynamics "
        "torque); sto: OpenSim storage files per trial, written with OpenSim's file adapter: "
        "the excitations as a controls file (columns named by muscle), the activations as a "
        "states file (/forceset/<muscle>/activation) and the torques (default: csv)",
    )
    predict.set_defaults(run=_predict)


def _data_arguments(parser, required: bool) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        required=required,
        help="folder with trials.csv and the trial files"
        + ("" if required else " (default: simulated subjects)"),
    )
    parser.add_argument(
        "--model",
        default="elbow",
        help="'elbow' (built in) or an OpenSim .osim file (default: elbow)",
    )
    parser.add_argument(
        "--coordinate",
        default="r_elbow_flex",
        help="the model's joint coordinate, which names a model file's channels "
        "(default: r_elbow_flex)",
    )
    parser.add_argument(
        "--locked",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="hold another coordinate at VALUE rad (repeatable)",
    )
    parser.add_argument(
        "--sequence-seconds",
        type=_positive_float,
        default=2.0,
        help="cut trials into sequences of this length (s; default 2)",
    )


def _run_arguments(parser) -> None:
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _locked(items: list[str]) -> dict | None:
    locked = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            locked[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise CommandError(
                f"--locked takes NAME=VALUE (radians), e.g. r_shoulder_elev=0, got {item!r}."
            )
    return locked or None


def _writable_folder(folder: Path, what: str) -> None:
    """Fail before any work when ``folder`` cannot take new files."""
    if not folder.is_dir():
        raise CommandError(f"{what}: the folder {folder} does not exist; create it first.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CommandError(f"{what}: the folder {folder} is not writable.")


# ---------------------------------------------------------------------------- signals
def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _sigterm_raises():
    """While the block runs, SIGTERM raises :class:`Terminated`.

    In the main thread only, and once, so that a second SIGTERM does not cut the clean-up
    short; the previous handler is put back after it.
    """
    if not _main_thread():
        yield
        return
    raised = []

    def terminated(signum, frame):
        if not raised:
            raised.append(signum)
            raise Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextlib.contextmanager
def _signals_held():
    """SIGINT and SIGTERM that arrive while the block runs take effect after it.

    So a folder swap is never cut in two (main thread only).
    """
    if not _main_thread():
        yield
        return
    pending = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, lambda n, f: pending.append(n)) for number in held}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        if pending:
            signal.raise_signal(pending[0])  # its handler runs now (and raises)


# ---------------------------------------------------------------------------- output folders
def _few(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _read_marker(folder: Path) -> dict | None:
    """The :data:`MARKER` of ``folder``, or None when it has none that deepemg wrote."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("command"), str):
        return None
    return marker


def _write_marker(folder: Path, command: str, out: Path, **fields) -> None:
    """Write ``folder``'s :data:`MARKER` (to a temporary file, then moved into place)."""
    from ._files import write_whole
    from ._version import __version__

    marker = {"command": command, "deepemg": __version__, "out": out.name, "files": [], **fields}
    text = json.dumps(marker, indent=1)
    write_whole(folder / MARKER, lambda temporary: Path(temporary).write_text(text, "utf-8"))


def _foreign(folder: Path, marker: dict) -> list[str]:
    """What ``folder`` holds besides the files its marker lists (paths relative to it)."""
    listed = {f for f in marker.get("files", ()) if isinstance(f, str)}
    parents = {p.as_posix() for f in listed for p in Path(f).parents}  # folders it made
    foreign = []

    def unreadable(error: OSError) -> None:
        foreign.append(str(Path(error.filename).relative_to(folder)))

    for root, dirs, files in os.walk(folder, onerror=unreadable):
        here = Path(root).relative_to(folder)
        for name in list(dirs):
            path = (here / name).as_posix()
            if path not in parents or os.path.islink(os.path.join(root, name)):
                foreign.append(path)
                dirs.remove(name)  # named whole, not walked
        for name in files:
            path = (here / name).as_posix()
            if path == MARKER:
                continue
            if path not in listed or os.path.islink(os.path.join(root, name)):
                foreign.append(path)
    return sorted(foreign)


def _check_out_place(out: Path, command: str, data=None, model_file=None) -> None:
    """Refuse an ``--out`` folder whose replacement would take the inputs with it."""
    target = out.resolve()
    cwd = Path.cwd().resolve()
    instead = "predictions" if command == "predict" else "deepemg-report"

    def refuse(what: str):
        raise CommandError(
            f"--out {out} {what}; 'deepemg {command}' replaces its --out folder whole: give a "
            f"folder of its own, e.g. --out {instead}."
        )

    if target == cwd:
        refuse("is the current folder")
    if data is not None:
        folder = Path(data).resolve()
        if target == folder:
            refuse("is the data folder")
        if target in folder.parents:
            refuse(f"holds the data folder {data}")
    if model_file is not None and Path(model_file).exists():
        if target in Path(model_file).resolve().parents:
            refuse(f"holds the model file {model_file}")
    if target in cwd.parents:
        refuse("holds the current folder")


def _check_out_folder(out: Path, command: str) -> None:
    """Refuse an existing ``--out`` folder that this command may not replace.

    It may replace an empty folder, or one that carries the marker of this command and holds
    nothing but the files it lists: a command replaces only what it can prove it wrote.
    """
    whole = f"'deepemg {command}' replaces its --out folder whole"
    if out.is_symlink():
        raise CommandError(f"--out {out} is a symbolic link; {whole}: give the folder itself.")
    if not out.exists():
        return
    if not out.is_dir():
        raise CommandError(f"--out {out} is a file, not a folder; {whole}: give a folder.")
    try:
        entries = sorted(p.name for p in out.iterdir())
    except OSError as error:
        raise CommandError(f"--out {out} cannot be read: {error}") from None
    if not entries:
        return
    marker = _read_marker(out)
    if marker is not None and marker["command"] != command:
        raise CommandError(
            f"--out {out} was written by 'deepemg {marker['command']}'; {whole}: give "
            "another folder."
        )
    foreign = entries if marker is None or "state" in marker else _foreign(out, marker)
    if foreign:
        raise CommandError(
            f"--out {out} holds files that 'deepemg {command}' did not write "
            f"({_few(foreign)}); it replaces its --out folder whole: give a new or empty "
            "folder, or one it wrote (or move those files out)."
        )
    if not os.access(out, os.W_OK | os.X_OK):
        raise CommandError(f"--out {out} is not writable.")


def _process_gone(marker: dict) -> bool:
    """Whether the process that wrote ``marker`` has ended (never guessed for another host)."""
    pid = marker.get("pid")
    if os.name == "nt" or marker.get("host") != socket.gethostname():
        return False
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _remove_folder(folder: Path) -> None:
    """Remove ``folder``, its marker last (so that a removal cut short can be finished)."""
    if folder.is_symlink() or not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name == MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
    with contextlib.suppress(OSError):
        (folder / MARKER).unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def _remove_stale(out: Path) -> None:
    """Remove what interrupted runs left beside ``out``.

    Its ``.partial`` folders marked by a process that has ended, and its ``.old`` folders once
    ``out`` is in place.
    """
    prefix = glob.escape(f".{out.name}.")
    for folder in sorted(out.parent.glob(f"{prefix}*.partial")) + sorted(
        out.parent.glob(f"{prefix}*.old")
    ):
        marker = _read_marker(folder)
        if folder.is_symlink() or marker is None or marker.get("out") != out.name:
            continue
        if folder.suffix == ".partial":
            stale = marker.get("state") == "partial" and _process_gone(marker)
        else:  # until out is in place, an .old folder holds the only earlier output
            stale = out.is_dir() and "state" not in marker
        if stale:
            _remove_folder(folder)


def _new_output_folder(out: Path, command: str) -> Path:
    """A temporary folder beside ``out``, made and marked now.

    Made now so that an unwritable place fails before the work; :func:`_publish_folder` moves
    it into place when complete.
    """
    _check_out_folder(out, command)
    target = out.resolve()
    parent = target.parent
    if not parent.is_dir():
        try:
            parent.mkdir(parents=True)
        except OSError as error:
            raise CommandError(f"--out {out}: cannot create {parent}: {error}") from None
    _writable_folder(parent, f"--out {out}")
    _remove_stale(target)
    with _signals_held():  # never a partial folder without its marker
        partial = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.", suffix=".partial"))
        _write_marker(
            partial, command, target, state="partial", pid=os.getpid(), host=socket.gethostname()
        )
    return partial


def _publish_folder(partial: Path, out: Path, command: str) -> None:
    """Replace ``out`` by the complete ``partial`` folder, marked with the files in it.

    Nothing stale is left behind.
    """
    target = out.resolve()
    files = sorted(
        p.relative_to(partial).as_posix()
        for p in partial.rglob("*")
        if p.is_file() and p.relative_to(partial).as_posix() != MARKER
    )
    _write_marker(partial, command, target, files=files)
    old = None
    try:
        with _signals_held():  # out is never missing when the command ends
            _check_out_folder(out, command)  # nothing of the user's went in meanwhile
            if target.exists():
                old = Path(
                    tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old")
                )
                old.rmdir()
                os.replace(target, old)
            os.replace(partial, target)
            _published.append(out)
    finally:
        if old is not None and not target.exists():  # cut short: the earlier output back
            os.replace(old, target)
        elif old is not None:
            _remove_folder(old)


def _specification(args):
    """The model of ``--model``, ``--coordinate`` and ``--locked``.

    A :class:`~deepemg.specification.ModelSpecification` whose model is ``"elbow"`` or the
    absolute path of an existing file.
    """
    from dataclasses import replace

    from .specification import ModelSpecification

    spec = ModelSpecification(args.model, args.coordinate)
    if spec.path is not None:
        if not spec.path.is_file():
            raise CommandError(
                f"--model {args.model}: no such file; give 'elbow' or an .osim file."
            )
        spec = replace(spec, model=str(spec.path.resolve()))
    return replace(spec, locked=_locked(args.locked))


def _model_arguments(args) -> dict:
    """``model``, ``coordinate`` and ``locked`` of the estimators and readers, from the options."""
    spec = _specification(args)
    return {"model": spec.model, "coordinate": spec.coordinate, "locked": spec.locked}


def _sequence_steps(args, parser) -> int:
    """The samples of a sequence of --sequence-seconds at :data:`RATE`, at least 2."""
    steps = round(args.sequence_seconds * RATE)
    if steps < 2:
        parser.error(
            f"--sequence-seconds {args.sequence_seconds:g} gives sequences of {steps} samples "
            f"at {RATE:g} Hz; they need at least 2 ({2 / RATE:g} s): give a longer "
            "--sequence-seconds (default 2)"
        )
    return steps


def _in_command_words(text: str, args) -> str:
    """A message of :func:`deepemg.io.load_trials` with ``n_timesteps`` said as the option."""
    text = re.sub(
        r"(?:(?:a|one) window of )?n_timesteps=(\d+)(?: samples)?",
        lambda m: f"--sequence-seconds {args.sequence_seconds:g} ({m[1]} samples)",
        text,
    )
    text = text.replace("pass a smaller n_timesteps", "give a shorter --sequence-seconds")
    text = re.sub(
        r"the longest has (\d+)\)",
        lambda m: f"the longest has {m[1]} samples, {int(m[1]) / RATE:g} s)",
        text,
    )
    return text.replace("n_timesteps", "--sequence-seconds")


def _load_folder(args, steps: int | None, channels=None):
    """X, y from a data folder, cut into sequences of ``steps`` samples (--sequence-seconds)."""
    from .io import load_trials, read_manifest

    trials = read_manifest(args.data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            data = load_trials(
                trials,
                **_model_arguments(args),
                rate=RATE,
                n_timesteps=steps,
                channels=channels,
            )
        except ValueError as error:
            if "n_timesteps" not in str(error):
                raise
            raise CommandError(_in_command_words(str(error), args)) from None
    for warning in caught:
        print(f"warning: {_in_command_words(str(warning.message), args)}", file=sys.stderr)
    return data


# ---------------------------------------------------------------------------- benchmark
def _benchmark_settings(args, parser) -> tuple:
    """The :class:`~deepemg.benchmark.BenchmarkSettings` of the options, and the scenarios."""
    from .benchmark import BenchmarkSettings

    changes = {"random_state": args.random_state}
    for key, value in (
        ("n_subjects", args.subjects),
        ("n_trials", args.trials),
        ("max_epochs", args.epochs),
        ("loso_epochs", args.loso_epochs),
    ):
        if value is not None:
            changes[key] = value
    if args.no_loso:
        changes["loso"] = False
    if args.no_ablation:
        changes["ablation"] = False
    if args.pretrained:
        changes["pretrained"] = True
    scenarios = _scenarios(args, parser)
    changes["scenario"] = scenarios[0]
    settings = (BenchmarkSettings.quick if args.quick else BenchmarkSettings)(**changes)
    return settings, scenarios


def _check_benchmark_arguments(args, parser, settings) -> int | None:
    """Options that do not go together fail here; returns the steps of a sequence of --data."""
    from .specification import ModelSpecification

    if args.data is None and settings.n_trials < 2:
        parser.error(
            "--trials must be at least 2: the within-subject evaluation trains on some of a "
            "subject's trials and tests on the others"
        )
    if args.data is not None and (args.subjects or args.trials):
        parser.error("--subjects and --trials choose simulated data; not with --data")
    if args.data is None and (not ModelSpecification(args.model).is_builtin or args.locked):
        parser.error(
            "--model and --locked need --data (the simulated subjects use the built-in elbow model)"
        )
    if args.data is None:
        return None
    steps = _sequence_steps(args, parser)
    window = _benchmark_window(settings)
    if steps < window:
        parser.error(
            f"--sequence-seconds {args.sequence_seconds:g} is shorter than the window of "
            f"{window / RATE:g} s ({window} samples at {RATE:g} Hz) of the NMM the benchmark "
            f"fits: give --sequence-seconds {window / RATE:g} or longer"
        )
    return steps


def _benchmark(args, parser) -> int:
    from .specification import ModelSpecification

    settings, scenarios = _benchmark_settings(args, parser)
    steps = _check_benchmark_arguments(args, parser, settings)
    model_file = ModelSpecification(args.model).path  # None for the built-in elbow
    _check_out_place(args.out, "benchmark", data=args.data, model_file=model_file)
    start = time.perf_counter()
    # an --out that is not the benchmark's or cannot be written fails now, not after the run
    partial = _new_output_folder(args.out, "benchmark")
    try:
        if len(scenarios) > 1:
            result = _run_scenarios(args, settings, scenarios, partial, start)
        else:
            result = _run_and_report(args, settings, partial, start, steps)
        _publish_folder(partial, args.out, "benchmark")
    finally:
        _remove_folder(partial)
    print(f"report: {args.out / 'results.md'}")
    if args.quick:
        return _self_check(args, settings, result)
    return 0


def _benchmark_window(settings) -> int:
    """The window (samples) of the NMM that the benchmark fits."""
    from .regressor import NMMRegressor

    return int(settings.nmm_params.get("window", NMMRegressor().window))


def _scenarios(args, parser) -> list[str]:
    """The scenario names of ``--scenario`` (all of them for 'all'), checked."""
    from .datasets import SCENARIOS

    if args.scenario == "all":
        names = list(SCENARIOS)
    elif args.scenario in SCENARIOS:
        names = [args.scenario]
    else:
        parser.error(
            f"--scenario {args.scenario!r} is not a scenario; choose one of "
            f"{', '.join(SCENARIOS)} or 'all'"
        )
    if args.data is not None and names != ["default"]:
        parser.error("--scenario chooses simulated subjects; not with --data")
    return names


def _run_scenarios(args, settings, scenarios, folder: Path, start: float):
    """Run the benchmark on every scenario, print each table, write the scenarios' report.

    Every scenario's fits run in one pool (:func:`deepemg.benchmark.run_benchmarks`, the
    longest first), so no core idles at the end of each scenario. Returns the last result.
    """
    from dataclasses import replace

    from .benchmark import format_table, run_benchmarks
    from .report import write_scenarios_report

    print(
        f"\nscenarios {', '.join(scenarios)}: {settings.n_subjects} simulated subjects x "
        f"{settings.n_trials} trials x {settings.duration:g} s each "
        "(deepemg.datasets.make_scenario), all their fits in one pool",
        flush=True,
    )
    results = run_benchmarks(
        {name: replace(settings, scenario=name) for name in scenarios},
        n_jobs=args.n_jobs,
        progress=not args.quiet,
    )
    for name, result in results.items():
        print(f"\nscenario {name}:")
        print(format_table(result, subjects=False))
    written = write_scenarios_report(results, folder)
    print(
        f"\n{len(written)} report files in {len(results)} scenario folders; "
        f"{time.perf_counter() - start:.0f} s in all"
    )
    return results[scenarios[-1]]


def _run_and_report(args, settings, folder: Path, start: float, steps: int | None = None):
    """Run the benchmark, print its table, write the report into ``folder``; the result."""
    from .benchmark import format_table, run_benchmark
    from .report import write_report

    data = None
    if args.data is not None:
        print(f"reading {args.data} ...", flush=True)
        data = _load_folder(args, steps)
        print(
            f"{len(data.X)} sequences of {data.X.shape[1]} steps from "
            f"{len(set(data.groups))} subjects; channels {data.channels}"
        )
    else:
        source = (
            "make_elbow_lifting"
            if settings.scenario == "default"
            else f"make_scenario({settings.scenario!r})"
        )
        print(
            f"simulated subjects: {settings.n_subjects} x {settings.n_trials} trials "
            f"x {settings.duration:g} s at 100 Hz (deepemg.datasets.{source})",
            flush=True,
        )
    result = run_benchmark(
        data,
        settings,
        **_model_arguments(args),
        n_jobs=args.n_jobs,
        progress=not args.quiet,
    )
    print()
    print(format_table(result))
    if settings.n_trials < 2 or not any(r["evaluation"] == "within subject" for r in result.rows):
        print("no subject has 2 sequences: no within-subject evaluation, no figures of it")
    written = write_report(result, folder)
    print(
        f"\n{len(written)} report files ({', '.join(sorted(written))}); "
        f"{time.perf_counter() - start:.0f} s in all"
    )
    return result


def _self_check(args, settings, result) -> int:
    """Check the quick benchmark's numbers against ``QUICK_FLOORS``: 0, or 3 on a failure."""
    from .benchmark import QUICK_FLOORS, BenchmarkSettings, check_floors, floor_checks

    reference = BenchmarkSettings.quick()
    changed = [k for k in QUICK_CHECKED if getattr(settings, k) != getattr(reference, k)]
    reason = None
    if args.no_check:
        reason = "--no-check"
    elif args.data is not None:
        reason = "--data"
    elif args.scenario != "default":
        reason = f"--scenario {args.scenario}"
    elif changed:
        reason = f"settings changed: {', '.join(changed)}"
    if reason is not None:
        print(f"self-check skipped ({reason}): the floors hold for the simulated quick run only")
        return 0
    print("\nself-check (deepemg.benchmark.QUICK_FLOORS):")
    for name, text, ok in floor_checks(result, QUICK_FLOORS):
        print(f"  {'ok  ' if ok else 'FAIL'}  {name}: {text}")
    failures = check_floors(result, QUICK_FLOORS)
    if failures:
        print(f"deepemg benchmark: self-check failed: {'; '.join(failures)}", file=sys.stderr)
        return CHECK_FAILED
    print("self-check passed")
    return 0


# ---------------------------------------------------------------------------- fit
def _fit_window(args, parser, steps: int) -> int:
    """The network's window (samples), which must fit in a sequence.

    --window-seconds; by default :data:`WINDOW_SECONDS`, or the whole sequence if shorter.
    """
    if args.window_seconds is None:
        return min(round(WINDOW_SECONDS * RATE), steps)
    window = round(args.window_seconds * RATE)
    if window < 2:
        parser.error(
            f"--window-seconds {args.window_seconds:g} gives a window of {window} samples at "
            f"{RATE:g} Hz; it needs at least 2 ({2 / RATE:g} s): give a longer --window-seconds"
        )
    if window > steps:
        parser.error(
            f"--window-seconds {args.window_seconds:g} is longer than --sequence-seconds "
            f"{args.sequence_seconds:g}: the network's window must fit in a sequence; give a "
            "shorter --window-seconds or a longer --sequence-seconds"
        )
    return window


def _fit(args, parser) -> int:
    from .regressor import NMMRegressor

    steps = _sequence_steps(args, parser)
    window = _fit_window(args, parser, steps)
    if args.out.is_dir():
        raise CommandError(
            f"--out {args.out} is a folder; give the path of the model file to write, e.g. "
            f"--out {args.out / 'nmm.deepemg'}."
        )
    if args.out.exists() and not args.force:
        raise CommandError(f"--out {args.out} exists; pass --force to replace it.")
    if args.out.exists() and not args.out.is_file():
        raise CommandError(f"--out {args.out} is not a regular file; give a model file's path.")
    _writable_folder(args.out.resolve().parent, f"--out {args.out}")
    # the surface EMG recorded in every trial becomes X's emg_<muscle> channels, which the
    # network reads (emg_inputs); --kinematics-only leaves them out of X
    base = list(_specification(args).layout.base) if args.kinematics_only else None
    data = _load_folder(args, steps, channels=base)
    measured = [m for j, m in enumerate(data.muscles) if not np.isnan(data.y[..., j]).all()]
    print(
        f"{len(data.X)} sequences of {data.X.shape[1]} steps from {len(set(data.groups))} "
        f"subjects; surface EMG of {measured or 'no muscle'}; muscles {data.muscles}",
        flush=True,
    )
    nmm = NMMRegressor(
        **_model_arguments(args),
        channels=data.channels,
        rate=data.rate,
        window=window,
        max_epochs=args.epochs,
        physics_weight=args.physics_weight,
        emg_inputs=not args.kinematics_only and "auto",
        random_state=args.random_state,
        progress_bar=not args.quiet,
    )
    start = time.perf_counter()
    nmm.fit(data.X, data.y, subject_ids=data.groups)
    elapsed = time.perf_counter() - start
    nmm.save(args.out, overwrite=args.force)  # a temporary file, moved into place whole
    last = nmm.history_[-1]
    print(
        f"fitted in {elapsed:.0f} s; last epoch: data {last['train_data_loss']:.4f}, "
        f"physics {last['train_physics_loss']:.4f}; saved to {args.out}"
    )
    return 0


# ---------------------------------------------------------------------------- predict
def _predict(args, parser) -> int:
    from .io import read_manifest
    from .regressor import NMMRegressor
    from .specification import ModelSpecification

    # an --out that would take the inputs or the user's files with it fails before any work
    _check_out_place(args.out, "predict", data=args.data, model_file=args.model_file)
    _check_out_folder(args.out, "predict")
    import torch

    # deepemg's own format: nothing is executed; a model saved on a GPU runs on the CPU here
    device = None if torch.cuda.is_available() else "cpu"
    nmm = NMMRegressor.load(args.model_file, device=device)
    layout = ModelSpecification.from_params(nmm.get_params(deep=False)).layout
    trials = read_manifest(args.data)
    channels = _model_channels(args, nmm, layout, trials)
    partial = _new_output_folder(args.out, "predict")
    try:
        code = _predict_into(args, nmm, layout, channels, trials, partial)
        _publish_folder(partial, args.out, "predict")
    finally:
        _remove_folder(partial)
    files = "csv files" if args.format == "csv" else "trials as OpenSim .sto files"
    print(f"wrote {len(trials)} {files} to {args.out}")
    return code


def _model_channels(args, nmm, layout, trials) -> list[str]:
    """The channels the model file needs, or a clear error when the trials cannot give them.

    A surface muscle's EMG channel needs that muscle's EMG in every trial.
    """
    from .validation import channel_names

    needed = channel_names(nmm.channels, layout)
    measured = [m for m in nmm.muscles_ if all(m in t.get("emg_channels", {}) for t in trials)]
    gives = layout.default_channels(measured)
    missing = [c for c in needed if c not in gives]
    if missing or layout.torque not in needed:
        raise CommandError(
            f"the model file {args.model_file} needs the channels {needed}; the trials of "
            f"{args.data} give {gives}"
            + (f", without {missing}" if missing else "")
            + ". A muscle's EMG channel needs its EMG in every trial (the emg and emg_channels "
            "columns of trials.csv): give it, or predict with a model of 'deepemg fit', which "
            f"needs only {list(layout.base)}."
        )
    return needed


def _check_trial_lengths(args, nmm, trials, loaded) -> None:
    """Every trial must hold the model's window: fail naming those that do not."""
    window, rate = int(nmm.window), float(nmm.rate)
    short = [
        (k, trial, data.X.shape[1])
        for k, (trial, data) in enumerate(zip(trials, loaded, strict=True))
        if data.X.shape[1] < window
    ]
    if not short:
        return
    named = [
        f"'{Path(trial['kinematics']).name}' (subject {trial['subject']}, trial {k + 1} of "
        f"trials.csv) lasts {(n - 1) / rate:.3g} s ({n} samples)"
        for k, trial, n in short
    ]
    shortest = min(n for _, _, n in short)
    raise CommandError(
        f"{len(short)} trial(s) shorter than the model's window of {window / rate:g} s "
        f"({window} samples at {rate:g} Hz): {_few(named)}. Remove them from "
        f"{Path(args.data) / 'trials.csv'}, or fit a model with a shorter window ('deepemg "
        f"fit --window-seconds {max(shortest - 1, 2) / rate:g}')."
    )


def _model_subjects(nmm) -> dict:
    """The model's subject labels by their text (a trials.csv label is text).

    Each maps to the label as the model holds it, text labels first where two read alike.
    """
    labels = {}
    for label in np.asarray(nmm.subjects_, dtype=object).tolist():
        if isinstance(label, str) or str(label) not in labels:
            labels[str(label)] = label
    return labels


def _predict_into(args, nmm, layout, channels, trials, folder: Path) -> int:
    from .channels import emg_channel
    from .io import load_each_trial

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each trial is read whole: nothing is cropped
        # each trial whole, a subject's EMG normalised over all its trials (or to its MVC)
        loaded = load_each_trial(
            trials,
            model=nmm.model,
            coordinate=nmm.coordinate,
            locked=nmm.locked,
            rate=nmm.rate,
            channels=channels,
        )
    _check_trial_lengths(args, nmm, trials, loaded)
    given = list(dict.fromkeys(str(t["subject"]) for t in trials))
    known = _model_subjects(nmm)
    new = sorted(s for s in given if s not in known)
    seen = sorted(s for s in given if s in known)
    if seen:
        print(
            f"subjects seen in fit: {seen}; their fitted parameters are used (relabel the "
            "subjects in trials.csv if these are other people)",
            flush=True,
        )
    if new and not args.no_personalize:
        print(
            f"subjects not seen in fit: {new}; personalising their parameters on their "
            "trials (kinematics, load, torque, surface EMG)",
            flush=True,
        )
        for subject in new:
            own = [d for d, t in zip(loaded, trials, strict=True) if str(t["subject"]) == subject]
            steps = min(d.X.shape[1] for d in own)
            X = np.concatenate([d.X[:, :steps] for d in own])
            y = np.concatenate([d.y[:, :steps] for d in own])
            nmm.personalize(X, y, subject_ids=np.full(len(X), subject, dtype=object))
        known = _model_subjects(nmm)
    print(f"{'trial':<28}{'subject':>9}{'steps':>7}{'torque NRMSE':>14}{'surface EMG r':>15}")
    for k, (trial, data) in enumerate(zip(trials, loaded, strict=True)):
        subject = str(trial["subject"])
        # the subject's own muscle model for the EMG (predict_physics) and for the torque;
        # the population's for a subject not seen in fit and not personalised
        ids = [known[subject]] if subject in known else None
        emg = nmm.predict(data.X, ids)[0]
        torque = nmm.predict_torque(data.X, ids)[0]
        tau_id = data.X[0, :, data.channels.index(layout.torque)]
        name = f"{Path(trial['kinematics']).stem}_{k:03d}"
        if args.format == "sto":
            activation = nmm.predict_activation(data.X, ids)[0]
            _write_sto(folder, name, nmm, layout, data.time[0], emg, activation, torque, tau_id)
        else:
            columns = [
                "time",
                *(emg_channel(m) for m in nmm.muscles_),
                "torque_model",
                "torque_id",
            ]
            table = np.column_stack([data.time[0], emg, torque, tau_id])
            np.savetxt(
                folder / f"{name}.csv",
                table,
                delimiter=",",
                header=",".join(columns),
                comments="",
                fmt="%.6g",
            )
        nrmse = np.sqrt(np.mean((torque - tau_id) ** 2)) / max(np.ptp(tau_id), 1e-12)
        measured = ~np.isnan(data.y[0])
        r = np.corrcoef(data.y[0][measured], emg[measured])[0, 1] if measured.sum() > 1 else np.nan
        print(f"{name:<28}{subject:>9}{len(tau_id):>7}{nrmse:>13.1%}{r:>15.3f}")
    return 0


def _write_sto(folder: Path, name: str, nmm, layout, time, emg, activation, torque, tau_id):
    """One trial as OpenSim storage files.

    ``<name>_excitation.sto`` (a controls file), ``<name>_activation.sto`` (a states file)
    and ``<name>_torque.sto`` (N·m: the muscle model's ``<joint>_moment_model`` and inverse
    dynamics' ``<joint>_moment``).
    """
    from .io import write_muscle_storage, write_storage

    muscles = list(nmm.muscles_)
    # OpenSim's [0, 1] controls: EMG above 1 MVC (real data) is a fully excited muscle
    excitation = np.clip(emg, 0.0, 1.0)
    write_muscle_storage(folder / f"{name}_excitation.sto", time, excitation, muscles)
    write_muscle_storage(
        folder / f"{name}_activation.sto", time, activation, muscles, kind="activation"
    )
    joint = layout.torque.removesuffix("_torque")
    write_storage(
        folder / f"{name}_torque.sto",
        time,
        {f"{joint}_moment_model": torque, f"{joint}_moment": tau_id},
        name=f"{name}_torque",
    )


if __name__ == "__main__":
    sys.exit(main())
