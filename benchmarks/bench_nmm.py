"""Accuracy and speed of NMMRegressor on simulated subjects with known deep-muscle EMG.

Data: ``make_elbow_lifting(n_subjects=5, random_state=0)`` (5 subjects x 12 trials x 5 s at
100 Hz; BRA and TRImed are unmeasured, their truth is known). The protocol is
:func:`deepemg.benchmark.run_benchmark`, the one ``deepemg benchmark`` runs:

* Within subject: train on trials 1-8 (2/3), test on trials 9-12. Deep-muscle EMG (BRA,
  TRImed): Pearson r and NRMSE (RMSE over the truth's range); torque of the muscle model
  (``predict_torque``) against OpenSim inverse dynamics: NRMSE (RMSE over the torque range).
  Targets: r >= 0.90, NRMSE <= 0.12, torque NRMSE <= 5%.
* Ablation: the same network with ``physics_weight=0`` (data term only).
* Leave one subject out: fit on 4 subjects, ``personalize`` on the held-out subject's
  kinematics, load, torque and surface EMG, then score its deep muscles. Target: BRA r >= 0.85.
* Muscle synergy extrapolation (MSE, ``baselines.SynergyExtrapolationRegressor``) on the same
  splits.
* ``--variant NAME=VALUE`` (repeatable) fits further NMM variants within subject, e.g.
  ``--variant synergy_weight=0 --variant physics_drive=measured``.
* Speed: fit time for one subject (12 trials), prediction throughput, peak memory.

Run: ``python benchmarks/bench_nmm.py`` (about 20 minutes on 2 cores; ``--quick`` for 3
subjects, ``--no-loso`` to skip leave one subject out, ``--speed-only`` for the speed figures).
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import resource
import time

import numpy as np
import torch

from deepemg import NMMRegressor
from deepemg.benchmark import (
    METHODS,
    BenchmarkSettings,
    format_table,
    run_benchmark,
    simulated_subjects,
)


def speed(data, subject, epochs) -> None:
    """Fit one subject's 12 trials; predict all trials with and without window overlap."""
    one = np.flatnonzero(data.groups == subject)
    start = time.perf_counter()
    model = NMMRegressor(max_epochs=epochs, predict_physics="none", random_state=0).fit(
        data.X[one], data.y[one]
    )
    fit_one = time.perf_counter() - start
    steps = data.X.shape[0] * data.X.shape[1]
    throughput = {}
    for overlap in (0.5, 0.25, 0.0):
        model.set_params(predict_overlap=overlap)
        model.predict(data.X)  # warm-up
        times = []
        for _ in range(5):  # best of 5: one call is at the mercy of anything else running
            start = time.perf_counter()
            model.predict(data.X)
            times.append(time.perf_counter() - start)
        throughput[overlap] = steps / min(times)
    print(
        f"\nspeed: fit one subject ({len(one)} trials x {data.X.shape[1] / 100:g} s) "
        f"{fit_one:.1f} s (target < 60 s); predict {throughput[0.25]:,.0f} steps/s with "
        f"predict_overlap=0.25 (default; target >= 200,000), {throughput[0.5]:,.0f} with 0.5, "
        f"{throughput[0.0]:,.0f} with 0 (best of 5, {torch.get_num_threads()} torch threads); "
        f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 subjects x 6 trials")
    parser.add_argument("--no-loso", action="store_true", help="skip leave one subject out")
    parser.add_argument("--speed-only", action="store_true", help="only the speed figures")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an NMM variant fitted within subject (repeatable)",
    )
    args = parser.parse_args()
    settings = BenchmarkSettings.quick() if args.quick else BenchmarkSettings()
    settings.loso = not args.no_loso
    data = simulated_subjects(settings, progress=False)
    print(
        f"data: {data.X.shape[0]} trials x {data.X.shape[1]} steps, subjects "
        f"{sorted(set(data.groups.tolist()))}, max_epochs={settings.max_epochs} (leave one "
        f"subject out {settings.loso_epochs}); machine {platform.machine()}, {os.cpu_count()} CPUs"
    )
    if not args.speed_only:
        result = run_benchmark(data, settings, progress=False)
        print(format_table(result))
        for variant in args.variant:
            name, _, text = variant.partition("=")
            value = ast.literal_eval(text) if text[:1].isdigit() or text[:1] == "-" else text
            changed = BenchmarkSettings(**{**settings.as_dict(), "loso": False, "ablation": False})
            changed.nmm_params = {**settings.nmm_params, name: value}
            other = run_benchmark(data, changed, progress=False)
            rows = [r for r in other.rows if r["method"] == METHODS["nmm"].label]
            other.rows = rows
            print(f"\nvariant {name}={value!r}")
            print(format_table(other))
    speed(data, sorted(set(data.groups))[0], settings.max_epochs)


if __name__ == "__main__":
    main()
