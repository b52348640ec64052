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
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main"]

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""
CHECK_FAILED = 3
"""Exit status of ``deepemg benchmark --quick`` when its self-check fails."""
REPORT_FILES = ("*.md", "*.csv", "*.png", "*.json")
"""What ``deepemg benchmark`` writes into its report folder."""
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
    try:
        return args.run(args, parser)
    except KeyboardInterrupt:
        print(
            f"\ndeepemg {args.command}: interrupted; earlier outputs were left as they were",
            file=sys.stderr,
        )
        return INTERRUPTED
    except CommandError as error:
        print(f"deepemg {args.command}: error: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError, KeyError, TypeError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"deepemg {args.command}: error: {message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="deepemg",
        description="Deep-muscle EMG from kinematics and load with a neural musculoskeletal model.",
    )
    parser.add_argument("--version", action="version", version=f"deepemg {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

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
        help="report folder (default: %(default)s)",
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
        "(compliant_tendons, motions, heavy_loads, strategies, off_simulator, ballistic; "
        "docs/scenarios.md) or 'all' (each in its own subfolder, one table per scenario in "
        "results.md); not with --data",
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
    fit.add_argument("--epochs", type=_positive_int, default=60, help="epochs (default 60)")
    fit.add_argument(
        "--physics-weight", type=float, default=1.0, help="weight of the torque term (default 1)"
    )
    _run_arguments(fit)
    fit.set_defaults(run=_fit)

    predict = commands.add_parser(
        "predict",
        help="every muscle's EMG for a folder of trial files, with a saved model",
        description="Predict every muscle's EMG envelope and the muscle torque for each trial "
        "of a data folder with a model saved by 'deepemg fit'; one csv per trial. Subjects "
        "the model has not seen are personalised on their trials first.",
    )
    predict.add_argument("model_file", type=Path, help="a model saved by 'deepemg fit'")
    predict.add_argument(
        "--data", type=Path, required=True, help="folder with trials.csv and the trial files"
    )
    predict.add_argument("--out", type=Path, required=True, help="folder for the csv files")
    predict.add_argument(
        "--no-personalize",
        action="store_true",
        help="use population parameters for subjects not seen in fit",
    )
    predict.set_defaults(run=_predict)
    return parser


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


def _new_output_folder(out: Path, ours: tuple[str, ...]) -> Path:
    """A temporary folder beside ``out``, made now (so an unwritable place fails before the
    work); :func:`_publish_folder` moves it into place when complete, replacing ``out``. An
    existing ``out`` must hold only files this command writes (glob patterns ``ours``), so
    that nothing of the user's is ever replaced."""
    parent = out.resolve().parent
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file, not a folder.")
    if out.is_dir():
        foreign = [p.name for p in out.iterdir() if not any(p.match(g) for g in ours)]
        if foreign:
            raise CommandError(
                f"--out {out} holds files this command did not write ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); it replaces its --out folder whole, "
                "so give a new or an earlier output folder."
            )
    if not parent.is_dir():
        try:
            parent.mkdir(parents=True)
        except OSError as error:
            raise CommandError(f"--out {out}: cannot create {parent}: {error}") from None
    _writable_folder(parent, f"--out {out}")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise CommandError(f"--out {out} is not writable.")
    return Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".partial"))


def _publish_folder(partial: Path, out: Path) -> None:
    """Replace ``out`` by the complete ``partial`` folder (nothing stale is left behind)."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=partial.parent, prefix=f".{out.name}.", suffix=".old"))
        old.rmdir()
        os.replace(out, old)
    os.replace(partial, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _model(args):
    if args.model == "elbow":
        return "elbow"
    path = Path(args.model)
    if not path.is_file():
        raise CommandError(f"--model {args.model}: no such file; give 'elbow' or an .osim file.")
    return str(path.resolve())


def _layout(args):
    """The channel layout of ``--model``/``--coordinate`` (:func:`deepemg.channels.layout_for`)."""
    from .channels import layout_for

    return layout_for(_model(args), args.coordinate)


def _load_folder(args, channels=None):
    """X, y from a data folder, cut into sequences of --sequence-seconds."""
    from .io import load_trials, read_manifest

    trials = read_manifest(args.data)
    rate = 100.0
    steps = int(round(args.sequence_seconds * rate))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_trials(
            trials,
            model=_model(args),
            coordinate=args.coordinate,
            locked=_locked(args.locked),
            rate=rate,
            n_timesteps=steps,
            channels=channels,
        )
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return data


# ---------------------------------------------------------------------------- benchmark
def _benchmark(args, parser) -> int:
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
    if args.data is None and settings.n_trials < 2:
        parser.error(
            "--trials must be at least 2: the within-subject evaluation trains on some of a "
            "subject's trials and tests on the others"
        )
    if args.data is not None and (args.subjects or args.trials):
        parser.error("--subjects and --trials choose simulated data; not with --data")
    if args.data is None and (args.model != "elbow" or args.locked):
        parser.error(
            "--model and --locked need --data (the simulated subjects use the built-in elbow model)"
        )
    start = time.perf_counter()
    # an unwritable --out fails now, not after the run
    partial = _new_output_folder(args.out, REPORT_FILES + tuple(scenarios))
    try:
        if len(scenarios) > 1:
            result = _run_scenarios(args, settings, scenarios, partial, start)
        else:
            result = _run_and_report(args, settings, partial, start)
        _publish_folder(partial, args.out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f"report: {args.out / 'results.md'}")
    if args.quick:
        return _self_check(args, settings, result)
    return 0


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
    """Run the benchmark on every scenario, print each table, write the scenarios' report;
    the last result."""
    from dataclasses import replace

    from .benchmark import format_table, run_benchmark
    from .report import write_scenarios_report

    results = {}
    for name in scenarios:
        print(
            f"\nscenario {name}: {settings.n_subjects} simulated subjects x {settings.n_trials} "
            f"trials x {settings.duration:g} s (deepemg.datasets.make_scenario)",
            flush=True,
        )
        results[name] = run_benchmark(
            None,
            replace(settings, scenario=name),
            n_jobs=args.n_jobs,
            progress=not args.quiet,
        )
        print()
        print(format_table(results[name], subjects=False))
    written = write_scenarios_report(results, folder)
    print(
        f"\n{len(written)} report files in {len(results)} scenario folders; "
        f"{time.perf_counter() - start:.0f} s in all"
    )
    return results[scenarios[-1]]


def _run_and_report(args, settings, folder: Path, start: float):
    """Run the benchmark, print its table, write the report into ``folder``; the result."""
    from .benchmark import format_table, run_benchmark
    from .report import write_report

    data = None
    if args.data is not None:
        print(f"reading {args.data} ...", flush=True)
        data = _load_folder(args)
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
        model=_model(args),
        coordinate=args.coordinate,
        locked=_locked(args.locked),
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
def _fit(args, parser) -> int:
    from . import NMMRegressor

    if args.out.exists() and not args.force:
        raise CommandError(f"--out {args.out} exists; pass --force to replace it.")
    if args.out.exists() and not args.out.is_file():
        raise CommandError(f"--out {args.out} is not a file.")
    _writable_folder(args.out.resolve().parent, f"--out {args.out}")
    data = _load_folder(args, channels=list(_layout(args).base))
    measured = [m for j, m in enumerate(data.muscles) if not np.isnan(data.y[..., j]).all()]
    print(
        f"{len(data.X)} sequences of {data.X.shape[1]} steps from {len(set(data.groups))} "
        f"subjects; surface EMG of {measured or 'no muscle'}; muscles {data.muscles}",
        flush=True,
    )
    window = min(100, data.X.shape[1])
    nmm = NMMRegressor(
        model=_model(args),
        coordinate=args.coordinate,
        locked=_locked(args.locked),
        channels=data.channels,
        rate=data.rate,
        window=window,
        max_epochs=args.epochs,
        physics_weight=args.physics_weight,
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
    from . import NMMRegressor
    from .channels import layout_for
    from .io import read_manifest

    nmm = NMMRegressor.load(args.model_file)  # deepemg's own format: nothing is executed
    layout = layout_for(nmm.model, nmm.coordinate)
    trials = read_manifest(args.data)
    partial = _new_output_folder(args.out, ("*.csv",))
    try:
        code = _predict_into(args, nmm, layout, trials, partial)
        _publish_folder(partial, args.out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f"wrote {len(trials)} csv files to {args.out}")
    return code


def _predict_into(args, nmm, layout, trials, folder: Path) -> int:
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
            channels=list(layout.base),
        )
    known = set(np.asarray(nmm.subjects_).tolist())
    new = sorted({str(t["subject"]) for t in trials} - known)
    seen = sorted({str(t["subject"]) for t in trials} & known)
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
    print(f"{'trial':<28}{'subject':>9}{'steps':>7}{'torque NRMSE':>14}{'surface EMG r':>15}")
    for k, (trial, data) in enumerate(zip(trials, loaded, strict=True)):
        subject = str(trial["subject"])
        ids = None if (subject not in set(np.asarray(nmm.subjects_).tolist())) else [subject]
        emg = nmm.predict(data.X)[0]
        torque = nmm.predict_torque(data.X, ids)[0]
        tau_id = data.X[0, :, data.channels.index(layout.torque)]
        name = f"{Path(trial['kinematics']).stem}_{k:03d}"
        columns = ["time", *(emg_channel(m) for m in nmm.muscles_), "torque_model", "torque_id"]
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


if __name__ == "__main__":
    sys.exit(main())
