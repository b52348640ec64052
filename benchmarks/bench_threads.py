"""Fit time with deepemg's thread settings, idle and while another process holds a core.

torch's default is one intra-op thread per core; when another process already holds a core
(or folds run in parallel) those threads wait on each other and a fit slows down many times.
deepemg runs each fit and prediction with ``n_threads`` threads (None: 1). This script fits
the same NMMRegressor

* with the package's settings (``n_threads=None``),
* with one thread (``n_threads=1``, the reference of the target),
* with torch's default, one thread per core (what deepemg did before),

first on an idle machine, then while a busy process holds one core, and prints each time and
the ratio of the package's settings to one thread under load (target <= 1.25). With
``--quick-benchmark`` it also times ``deepemg benchmark --quick`` idle and under load.

    python benchmarks/bench_threads.py [--epochs 20] [--repeats 2] [--quick-benchmark]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def _busy(stop) -> None:
    """Hold one core until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


class OneCoreBusy:
    """A context in which another process keeps one core busy."""

    def __enter__(self):
        self.stop = multiprocessing.Event()
        self.process = multiprocessing.Process(target=_busy, args=(self.stop,), daemon=True)
        self.process.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()


def fit_seconds(data, n_threads, epochs: int, repeats: int) -> float:
    """Best of ``repeats`` wall times (s) of one NMM fit; ``n_threads="torch"``: torch's
    default thread count (one per core), set for the fit and restored."""
    import torch

    from deepemg import NMMRegressor
    from deepemg.threads import available_cores, limit_threads

    times = []
    for _ in range(repeats):
        model = NMMRegressor(max_epochs=epochs, random_state=0)
        if n_threads == "torch":
            # what a fit did before deepemg chose its threads: torch's one thread per core
            model.set_params(n_threads=available_cores())
        else:
            model.set_params(n_threads=n_threads)
        with limit_threads(torch.get_num_threads()):
            start = time.perf_counter()
            model.fit(data.X, data.y)
            times.append(time.perf_counter() - start)
    return min(times)


def quick_benchmark_seconds() -> float:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "deepemg.cli",
                "benchmark",
                "--quick",
                "--no-check",
                "--quiet",
                "--out",
                os.path.join(folder, "report"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--quick-benchmark", action="store_true")
    args = parser.parse_args()

    from deepemg.datasets import make_elbow_lifting
    from deepemg.threads import machine_info

    info = machine_info()
    print(json.dumps(info))
    data = make_elbow_lifting(n_subjects=1, n_trials=args.trials, random_state=0, progress=False)
    print(
        f"NMM fit: {len(data.X)} trials x {data.X.shape[1] / 100:g} s, {args.epochs} epochs, "
        f"best of {args.repeats}"
    )
    settings = {
        "package (n_threads=None)": None,
        "one thread": 1,
        f"torch default ({info['cores']} threads)": "torch",
    }
    results = {}
    for load in ("idle", "one core busy"):
        context = OneCoreBusy() if load != "idle" else _Nothing()
        with context:
            for label, n_threads in settings.items():
                seconds = fit_seconds(data, n_threads, args.epochs, args.repeats)
                results[(load, label)] = seconds
                print(f"  {load:<14} {label:<26} {seconds:7.1f} s", flush=True)
    package = results[("one core busy", "package (n_threads=None)")]
    one = results[("one core busy", "one thread")]
    torch_default = results[("one core busy", f"torch default ({info['cores']} threads)")]
    print(
        f"under load: package / one thread = {package / one:.2f} (target <= 1.25); "
        f"torch default / one thread = {torch_default / one:.2f}"
    )
    if args.quick_benchmark:
        idle = quick_benchmark_seconds()
        with OneCoreBusy():
            busy = quick_benchmark_seconds()
        print(
            f"deepemg benchmark --quick: {idle:.0f} s idle, {busy:.0f} s with one core busy "
            f"(ratio {busy / idle:.2f})"
        )
    print(f"(numpy {np.__version__}; {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())})")


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


if __name__ == "__main__":
    main()
