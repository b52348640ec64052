"""How fit time, prediction time and peak memory of NMMRegressor grow with the data.

Three sweeps over ``make_elbow_lifting(random_state=0)`` (100 Hz), each configuration fitted
and predicted on all of its sequences:

* subjects: 1, 2, 4 subjects at 6 trials of 5 s,
* trials: 3, 6, 12 trials of 5 s of 1 subject,
* length: 6 trials of 2.5, 5, 10 s of 1 subject.

For each configuration ``NMMRegressor(random_state=0, max_epochs=E)`` (``--epochs``, default
3; ``n_threads`` default, one thread for the fit) is fitted once, and the script measures

* fit s/epoch: the median epoch duration of skorch's history (``history_[:, "dur"]``),
* predict with the default prediction-time correction (``predict_physics="torque"``): best
  of 2,
* the network alone (``predict_physics="none"``): best of 5 after a warm-up,
* peak memory: the resident set size of the configuration's own fresh subprocess at its end
  (``ru_maxrss``), and after importing and loading the data, before the fit (``VmHWM``).

The data are simulated once per configuration, in this process, into a temporary folder
(``data_home``); each configuration runs in its own subprocess, one at a time, and loads them
from there. It prints the table, the slopes (s per 1,000 steps, least squares per sweep, and the
log-log exponent: 1 is linear), the reference measured in the same run (the smallest
configuration) with each configuration's ratios to it, and the machine; it writes the printed
output to ``docs/results/cost_curve.txt`` and the curves to ``docs/results/cost_curve.png``.

``--n-threads 1`` predicts on one thread too: on a machine another job shares, torch's two
threads wait on each other and the prediction times measure that contention, not the cost.

    python benchmarks/bench_cost.py [--epochs 3] [--n-threads 1] [--out docs/results]
                                    [--no-write]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SWEEPS = {
    "subjects": [(1, 6, 5.0), (2, 6, 5.0), (4, 6, 5.0)],
    "trials": [(1, 3, 5.0), (1, 6, 5.0), (1, 12, 5.0)],
    "length": [(1, 6, 2.5), (1, 6, 5.0), (1, 6, 10.0)],
}
"""sweep -> (n_subjects, n_trials, duration s) of its configurations."""

RATE = 100.0


def label(config) -> str:
    subjects, trials, duration = config
    return f"{subjects} subj x {trials} trials x {duration:g} s"


def vm_hwm_mb() -> float:
    """The process's peak resident set size so far (MB), from /proc/self/status."""
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def worker(spec: dict) -> dict:
    """One configuration, in a fresh process: load the data, fit, predict, memory."""
    import resource

    import torch

    from deepemg import NMMRegressor
    from deepemg.datasets import make_elbow_lifting

    subjects, trials, duration = spec["config"]
    start = time.perf_counter()
    data = make_elbow_lifting(
        subjects, trials, duration, random_state=0, progress=False, data_home=spec["data_home"]
    )
    load = time.perf_counter() - start
    before_fit = vm_hwm_mb()
    model = NMMRegressor(random_state=0, max_epochs=spec["epochs"])
    if spec["n_threads"] is not None:
        model.set_params(n_threads=spec["n_threads"])
    start = time.perf_counter()
    model.fit(data.X, data.y)
    fit = time.perf_counter() - start
    epochs = [float(d) for d in model.history_[:, "dur"]]
    correction = []
    for _ in range(2):  # the default, predict_physics="torque"; a fixed number of Adam steps
        start = time.perf_counter()
        model.predict(data.X)
        correction.append(time.perf_counter() - start)
    model.set_params(predict_physics="none")
    model.predict(data.X)  # warm-up
    network = []
    for _ in range(5):
        start = time.perf_counter()
        model.predict(data.X)
        network.append(time.perf_counter() - start)
    return {
        "config": spec["config"],
        "shape": list(data.X.shape),
        "steps": int(data.X.shape[0] * data.X.shape[1]),
        "load_s": load,
        "fit_s": fit,
        "epoch_s": float(np.median(epochs)),
        "epochs_s": epochs,
        "correction_s": min(correction),
        "network_s": min(network),
        "before_fit_mb": before_fit,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "predict_threads": spec["n_threads"] or torch.get_num_threads(),
    }


def run_config(config, epochs: int, n_threads, data_home: str, timeout: float) -> dict:
    spec = {"config": list(config), "epochs": epochs, "n_threads": n_threads}
    spec["data_home"] = data_home
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def slope(x, y) -> tuple[float, float]:
    """Least-squares slope of y on x, and the log-log exponent (1: linear)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(np.polyfit(x, y, 1)[0]), float(np.polyfit(np.log(x), np.log(y), 1)[0])


def plot(results: dict, rows: dict, path: Path, epochs: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    # markers of decreasing size: the sweeps share their middle configuration
    style = {"subjects": ("o", "C0", 10), "trials": ("s", "C1", 7), "length": ("^", "C2", 5)}
    panels = [
        ("epoch_s", "fit, s per epoch"),
        ("correction_s", 'predict, predict_physics="torque" (s)'),
        ("network_s", 'predict, network alone ("none") (s)'),
        ("peak_mb", "peak memory of the process (MB)"),
    ]
    figure, axes = plt.subplots(2, 2, figsize=(10, 8))
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        for sweep, configs in SWEEPS.items():
            marker, colour, size = style[sweep]
            points = [results[tuple(c)] for c in configs]
            ax.plot(
                [p["steps"] for p in points],
                [p[key] for p in points],
                marker=marker,
                color=colour,
                label=sweep,
                markersize=size,
                alpha=0.85,
            )
        steps = np.array(sorted({r["steps"] for r in rows.values()}), float)
        if key != "peak_mb":
            reference = min(rows.values(), key=lambda r: r["steps"])
            ax.plot(
                steps,
                reference[key] * steps / reference["steps"],
                "k:",
                label="linear from the smallest",
            )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            loaded = sorted(rows.values(), key=lambda r: r["steps"])
            ax.plot(
                [r["steps"] for r in loaded],
                [r["before_fit_mb"] for r in loaded],
                "--",
                color="grey",
                label="before the fit (imports, data)",
            )
        ax.set_xticks(steps, [f"{s:,.0f}" for s in steps])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("time steps (sequences x length)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle(
        f"NMMRegressor cost vs data size (max_epochs={epochs}; times log-log, memory linear)",
        fontsize=11,
    )
    figure.tight_layout()

    from _report import write_figure

    write_figure(figure, path)
    plt.close(figure)


def measure(args) -> tuple[dict, float]:
    """Every configuration's figures (each in its own subprocess) and the simulation time."""
    from deepemg.datasets import make_elbow_lifting

    configs = list(dict.fromkeys(tuple(c) for cs in SWEEPS.values() for c in cs))
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_cost_") as data_home:
        start = time.perf_counter()
        for subjects, trials, duration in configs:
            make_elbow_lifting(
                subjects, trials, duration, random_state=0, progress=False, data_home=data_home
            )
        simulated = time.perf_counter() - start
        for config in configs:
            results[config] = run_config(
                config, args.epochs, args.n_threads, data_home, args.timeout
            )
            r = results[config]
            print(f"  {label(config)}: {r['steps']} steps done", file=sys.stderr, flush=True)
    return results, simulated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="max_epochs of each fit")
    parser.add_argument(
        "--n-threads",
        type=int,
        default=None,
        help="NMMRegressor's n_threads (default None: one thread for the fit, the process's "
        "torch threads for predict); 1 also predicts on one thread, steadier on a shared machine",
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"), help="results folder")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--timeout", type=float, default=600, help="per configuration (s)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    from _report import Report

    report = Report()
    say = report.say
    info = report.machine()
    results, simulated = measure(args)
    configs = list(results)
    threads = {r["predict_threads"] for r in results.values()}
    say(
        f"NMMRegressor(random_state=0, max_epochs={args.epochs}, n_threads={args.n_threads}), "
        f"fit with one thread, predictions with {'/'.join(map(str, sorted(threads)))} torch "
        f"thread(s); each configuration in its own subprocess; data simulated in {simulated:.0f} s"
    )
    say()
    header = (
        f"{'sweep':<9} {'configuration':<28} {'steps':>6} {'fit s/epoch':>11} "
        f"{'predict s':>9} {'steps/s':>7} {'network s':>9} {'peak MB':>7} {'load MB':>7}"
    )
    say(header)
    say("-" * len(header))
    for sweep, cs in SWEEPS.items():
        for config in cs:
            r = results[tuple(config)]
            say(
                f"{sweep:<9} {label(config):<28} {r['steps']:>6,} {r['epoch_s']:>11.3f} "
                f"{r['correction_s']:>9.2f} {r['steps'] / r['correction_s']:>7,.0f} "
                f"{r['network_s']:>9.4f} {r['peak_mb']:>7.0f} {r['before_fit_mb']:>7.0f}"
            )
    say(
        '(predict s: predict_physics="torque", the default, best of 2; steps/s: its throughput; '
        'network s: predict_physics="none", best of 5; peak MB: ru_maxrss at the end of the '
        "subprocess; load MB: VmHWM after imports and loading the data, before the fit)"
    )
    say()
    say("slopes (least squares per sweep: per 1,000 steps; exponent: log-log slope, 1 = linear)")
    say(f"{'sweep':<9} {'fit s/epoch':>18} {'predict s':>18} {'network s':>18} {'peak MB':>18}")
    for sweep, cs in SWEEPS.items():
        points = [results[tuple(c)] for c in cs]
        steps = [p["steps"] for p in points]
        cells = []
        for key in ("epoch_s", "correction_s", "network_s", "peak_mb"):
            per_step, exponent = slope(steps, [p[key] for p in points])
            digits = 1 if key == "peak_mb" else 4 if key == "network_s" else 3
            cells.append(f"{per_step * 1000:>9.{digits}f} (^{exponent:.2f})")
        say(f"{sweep:<9} " + " ".join(f"{c:>18}" for c in cells))
    say()
    reference_config = min(configs, key=lambda c: results[c]["steps"])
    ref = results[reference_config]
    say(
        f"reference (the smallest configuration, measured in this run): {label(reference_config)}"
        f", {ref['steps']:,} steps: fit {ref['epoch_s']:.3f} s/epoch, predict "
        f"{ref['correction_s']:.2f} s, network {ref['network_s']:.4f} s, "
        f"peak {ref['peak_mb']:.0f} MB"
    )
    say(f"{'ratios to it':<38} {'steps':>6} {'fit':>6} {'predict':>7} {'network':>7} {'peak':>6}")
    for config in configs:
        r = results[config]
        say(
            f"{label(config):<38} {r['steps'] / ref['steps']:>6.2f} "
            f"{r['epoch_s'] / ref['epoch_s']:>6.2f} "
            f"{r['correction_s'] / ref['correction_s']:>7.2f} "
            f"{r['network_s'] / ref['network_s']:>7.2f} {r['peak_mb'] / ref['peak_mb']:>6.2f}"
        )
    say()
    report.footer(info)
    if not args.no_write:
        out = Path(args.out)
        report.write(out / "cost_curve.txt")
        plot(results, {c: results[c] for c in configs}, out / "cost_curve.png", args.epochs)
        print(f"wrote {out / 'cost_curve.txt'} and {out / 'cost_curve.png'}")


if __name__ == "__main__":
    main()
