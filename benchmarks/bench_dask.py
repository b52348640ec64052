"""Leave-one-subject-out folds on a Dask LocalCluster against one process, in the same run.

The same evaluation four ways, on ``make_elbow_lifting(random_state=0)`` (default 4 subjects x
6 trials of 5 s, simulated into a temporary ``data_home``): scikit-learn's ``cross_validate``
of ``NMMRegressor(random_state=0, max_epochs=E, n_threads=1)`` with ``LeaveOneGroupOut`` over
the subjects, ``subject_ids`` routed to ``fit``, ``scoring=None`` (the estimator's ``score``,
the variance-weighted R² of the predicted EMG of the held-out subject):

* serial: one process, ``n_jobs=1`` (the reference),
* joblib's processes on this machine: the default ``loky`` backend, ``n_jobs=2``,
* Dask: ``distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` and a
  ``Client``, inside ``joblib.parallel_config(backend="dask")``, ``n_jobs=-1``,
* the same cluster with ``MALLOC_TRIM_THRESHOLD_`` unset in the workers
  (``dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})``).
  Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` to give memory back
  to the system sooner; setting it also stops glibc from raising its mmap threshold, so each
  of torch's large temporary tensors is mapped and unmapped again, and the fits and above all
  the prediction-time correction of ``score`` run slower.

Each parallel way is timed (wall clock) in two parts: its start-up (for Dask the cluster and
the client, for both the workers importing torch, OpenSim and deepemg: one warm-up task per
worker) and the folds themselves. The script checks that every way gives the serial fold
scores, network weights and subject parameters (bit-identical with one torch thread, as
``tests/estimators/test_dask.py`` checks; otherwise it prints by how much they differ), and
prints the wall times, the speed-ups against the serial run, the CPU time, system time and
minor page faults of the processes that ran the folds, each fold's fit and score times, the
peak memory of the serial process and of each Dask worker, the load average of the machine
before and after each way (another job on the machine slows the parallel ways most) and the
machine. It writes the printed output to ``docs/results/dask_folds.txt``.

    python benchmarks/bench_dask.py [--subjects 4] [--trials 6] [--duration 5] [--epochs 10]
                                    [--workers 2] [--out docs/results] [--no-write]

The cluster's worker processes are started with ``spawn`` and import this script again: its
work stays under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def peak_mb() -> float:
    """This process's peak resident set size so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def usage(pids) -> np.ndarray:
    """What the processes ``pids`` have used so far, summed.

    Their CPU time (user + system, all threads, s), the system part of it (s) and their minor
    page faults (from ``/proc/<pid>/stat``; NaN where it cannot be read).
    """
    import psutil

    total = np.zeros(3)
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
                faults = float(handle.read().rsplit(")", 1)[1].split()[7])
        except (OSError, IndexError, ValueError):
            faults = float("nan")
        total += (times.user + times.system, times.system, faults)
    return total


def warm_up() -> tuple[int, float]:
    """In a worker: import what a fit needs; its process id and the seconds it took."""
    start = time.perf_counter()
    for module in ("torch", "opensim", "deepemg", "deepemg.regressor"):
        importlib.import_module(module)
    return os.getpid(), time.perf_counter() - start


def timed_folds(data, epochs: int, n_jobs: int) -> dict:
    """Leave one subject out of the NMM, with its wall time (``"wall_s"``)."""
    from deepemg import NMMRegressor
    from deepemg.model_selection import leave_one_subject_out

    model = NMMRegressor(random_state=0, max_epochs=epochs, n_threads=1)
    start = time.perf_counter()
    result = leave_one_subject_out(
        model, data.X, data.y, data.groups, n_jobs=n_jobs, return_estimator=True
    )
    result["wall_s"] = time.perf_counter() - start
    return result


def run_serial(data, epochs: int) -> dict:
    """The reference: every fold in this process, one after the other."""
    before = usage([os.getpid()])
    result = timed_folds(data, epochs, n_jobs=1)
    result["usage"] = usage([os.getpid()]) - before
    result["startup_s"] = 0.0
    result["peak_mb"] = [peak_mb()]
    return result


def run_loky(data, epochs: int, workers: int) -> dict:
    """joblib's default backend: ``workers`` processes of this machine."""
    import joblib

    start = time.perf_counter()
    warmed = joblib.Parallel(n_jobs=workers)(joblib.delayed(warm_up)() for _ in range(workers))
    startup = time.perf_counter() - start
    pids = sorted({pid for pid, _ in warmed})
    before = usage(pids)
    result = timed_folds(data, epochs, n_jobs=workers)
    result["usage"] = usage(pids) - before
    after = joblib.Parallel(n_jobs=workers)(joblib.delayed(os.getpid)() for _ in range(workers))
    result.update(startup_s=startup, warm_up=warmed)
    result["reused"] = set(after) <= {pid for pid, _ in warmed}
    return result


def run_dask(data, epochs: int, workers: int, trim: bool = True) -> dict:
    """Dask: a LocalCluster of ``workers`` single-threaded processes, through joblib.

    ``trim=False`` starts the workers without the ``MALLOC_TRIM_THRESHOLD_=65536`` that
    Dask's nanny sets by default (``distributed.nanny.pre-spawn-environ``).
    """
    import dask
    import joblib
    from distributed import Client, LocalCluster

    environ = dict(os.environ)  # the nanny, here in this process, sets its variables here
    unset = {} if trim else {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    start = time.perf_counter()
    with (
        dask.config.set(unset),
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        cluster_s = time.perf_counter() - start
        warmed = list(client.run(warm_up).values())
        startup = time.perf_counter() - start
        pids = [pid for pid, _ in warmed]
        before = usage(pids)
        with joblib.parallel_config(backend="dask"):
            result = timed_folds(data, epochs, n_jobs=-1)
        result["usage"] = usage(pids) - before
        result["peak_mb"] = list(client.run(peak_mb).values())
        result["threads"] = sorted(set(client.run(_torch_threads).values()))
        result["trim"] = sorted(set(client.run(_trim_threshold).values()), key=str)
    os.environ.clear()
    os.environ.update(environ)
    result.update(startup_s=startup, cluster_s=cluster_s, warm_up=warmed)
    return result


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _trim_threshold() -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def largest_difference(reference: dict, other: dict) -> dict:
    """The largest absolute differences from the reference: scores, weights, subjects."""
    scores = np.max(np.abs(np.asarray(other["test_score"]) - reference["test_score"]))
    weights = subjects = 0.0
    for a, b in zip(reference["estimator"], other["estimator"], strict=True):
        mine, theirs = a.net_.module_.state_dict(), b.net_.module_.state_dict()
        for name, tensor in mine.items():
            gap = (tensor.double() - theirs[name].double()).abs().max().item()
            weights = max(weights, gap)
        if list(a.subjects_) != list(b.subjects_):
            subjects = float("inf")
            continue
        for mine_params, their_params in zip(a.subject_params_, b.subject_params_, strict=True):
            for key, value in mine_params.items():
                if isinstance(value, float | int) and not isinstance(value, bool):
                    subjects = max(subjects, abs(value - their_params[key]))
    return {"scores": float(scores), "weights": weights, "subjects": subjects}


def agreement(gaps: dict) -> str:
    if not any(gaps.values()):
        return "bit-identical to the serial run (scores, network weights, subject parameters)"
    return (
        f"differs from the serial run by at most {gaps['scores']:.3g} in the scores, "
        f"{gaps['weights']:.3g} in the network weights, {gaps['subjects']:.3g} in the subject "
        "parameters"
    )


def simulate(args):
    """The data set, simulated into a temporary folder, with the seconds it took."""
    from deepemg.datasets import make_elbow_lifting

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_dask_") as data_home:
        data = make_elbow_lifting(
            args.subjects,
            args.trials,
            args.duration,
            random_state=0,
            progress=False,
            data_home=data_home,
        )
    return data, time.perf_counter() - start


def measure(args, data) -> dict:
    """The ways, one after the other, with the load average before and after each."""
    sizes = (args.epochs, args.workers)
    ways = {
        "serial (1 process)": lambda: run_serial(data, args.epochs),
        f"joblib loky ({args.workers} processes)": lambda: run_loky(data, *sizes),
        f"Dask ({args.workers} workers)": lambda: run_dask(data, *sizes),
        f"Dask, trim unset ({args.workers} workers)": lambda: run_dask(data, *sizes, trim=False),
    }
    runs = {}
    for name, run in ways.items():
        print(f"  {name} ...", file=sys.stderr, flush=True)
        load = os.getloadavg()[0]
        runs[name] = run()
        runs[name]["load_before"], runs[name]["load_after"] = load, os.getloadavg()[0]
    return runs


def table(runs: dict, say) -> None:
    """Every way's wall times, speed-ups, CPU use and the machine's load."""
    reference = next(iter(runs.values()))["wall_s"]
    header = (
        f"{'way':<30} {'start-up s':>10} {'folds s':>7} {'total s':>7} {'speed-up':>8} "
        f"{'with start-up':>13} {'CPU s':>6} {'system s':>8} {'cores':>5} {'page faults':>11} "
        f"{'load 1 min':>11}"
    )
    say(header)
    say("-" * len(header))
    for name, r in runs.items():
        total = r["startup_s"] + r["wall_s"]
        cpu, system, faults = r["usage"]
        say(
            f"{name:<30} {r['startup_s']:>10.1f} {r['wall_s']:>7.1f} {total:>7.1f} "
            f"{reference / r['wall_s']:>8.2f} {reference / total:>13.2f} {cpu:>6.1f} "
            f"{system:>8.1f} {cpu / r['wall_s']:>5.2f} {faults:>11,.0f} "
            f"{r['load_before']:>5.2f}-{r['load_after']:<5.2f}"
        )
    say(
        "(start-up: the workers started and importing torch, OpenSim and deepemg, one warm-up "
        "task each; folds: cross_validate's wall time; speed-up: the serial folds' wall time "
        "over this way's, without and with its start-up; CPU s: the CPU time of the processes "
        "that ran the folds, during the folds, system s the kernel's part of it; cores: CPU s "
        "/ folds s, the cores they had on average; page faults: their minor page faults during "
        "the folds; load 1 min: the machine's load average before-after)"
    )


def say_runs(runs: dict, say) -> None:
    """The table, each fold's times and the agreement of the scores with the serial ones."""
    names = list(runs)
    reference = runs[names[0]]
    table(runs, say)
    say()
    for name in names:
        r = runs[name]
        fits = " ".join(f"{t:.1f}" for t in r["fit_time"])
        scores = " ".join(f"{t:.1f}" for t in r["score_time"])
        say(f"{name}: fold fit s {fits}; fold score s {scores}")
    say()
    say(f"fold scores (R², serial): {' '.join(f'{s:.6f}' for s in reference['test_score'])}")
    for name in names[1:]:
        say(f"{name}: {agreement(largest_difference(reference, runs[name]))}")


def details(runs: dict, say) -> None:
    """The start-ups, the workers' imports, threads and environment, the peak memory."""
    names = list(runs)
    loky = runs[names[1]]
    for name in names[2:]:
        dask = runs[name]
        imports = ", ".join(f"{s:.1f}" for _, s in dask["warm_up"])
        workers_mb = ", ".join(f"{m:.0f}" for m in dask["peak_mb"])
        say(
            f"{name}: start-up {dask['startup_s']:.1f} s (LocalCluster and Client "
            f"{dask['cluster_s']:.1f} s, then the workers' imports, {imports} s, at the same "
            f"time); torch threads per worker {dask['threads']}; MALLOC_TRIM_THRESHOLD_ in the "
            f"workers {dask['trim']}; peak memory of each worker {workers_mb} MB"
        )
    imports = ", ".join(f"{s:.1f}" for _, s in loky["warm_up"])
    workers = len({pid for pid, _ in loky["warm_up"]})
    say(
        f"loky start-up {loky['startup_s']:.1f} s: {workers} worker process(es) importing "
        f"({imports} s); the folds ran in the same warmed workers: {loky['reused']}"
    )
    say(
        f"peak memory of the serial process {runs[names[0]]['peak_mb'][0]:.0f} MB (the data and "
        f"the serial folds); MALLOC_TRIM_THRESHOLD_ here {_trim_threshold()}"
    )


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4, help="subjects (folds)")
    parser.add_argument("--trials", type=int, default=6, help="trials per subject")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per trial")
    parser.add_argument("--epochs", type=int, default=10, help="max_epochs of each fit")
    parser.add_argument("--workers", type=int, default=2, help="loky processes, Dask workers")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"), help="results folder")
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from deepemg.metrics import UnseenSubjectWarning

    warnings.simplefilter("ignore", UnseenSubjectWarning)  # the held-out subject, by design
    from _report import Report

    report = Report()
    say = report.say
    info = report.machine()
    data, simulated = simulate(args)
    say(
        f"make_elbow_lifting({args.subjects} subjects x {args.trials} trials x "
        f"{args.duration:g} s, random_state=0): X {data.X.shape}, simulated in {simulated:.0f} s;"
        f" leave one subject out: {args.subjects} folds; NMMRegressor(random_state=0, "
        f"max_epochs={args.epochs}, n_threads=1), scoring=None (its score, R² of the EMG)"
    )
    say()
    runs = measure(args, data)
    say_runs(runs, say)
    details(runs, say)
    say()
    report.footer(info, f", dask/distributed {_dask_version()}")
    if not args.no_write:
        path = report.write(Path(args.out) / "dask_folds.txt")
        print(f"wrote {path}")


def _dask_version() -> str:
    import distributed

    return distributed.__version__


if __name__ == "__main__":
    main()
