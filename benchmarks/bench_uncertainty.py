"""Calibration of the NMM's uncertainty band on simulated subjects with known deep EMG.

For each subject of ``make_elbow_lifting(n_subjects=5, random_state=0)`` (12 lifts of 0-6 kg),
an ``NMMEnsemble(NMMRegressor(), n_members=K)`` deep ensemble is fitted on the first 8
trials and predicts the other 4 with ``return_std=True``. Printed per subject and muscle:
the share of the true EMG inside the 90 % band (target 0.85-0.95; the deep muscles' truth
is never seen in fit),
the band's mean half-width, r of the ensemble mean, with the default prediction-time physics
(``predict_physics="auto"``, with which the spread is also calibrated); then the coverage of
each muscle with the network's EMG and its subject's level uncorrected (``"level"``) and with
the network alone (``"none"``), the same ensemble and scale; then the ensemble's fit time
against one network's, measured in the same run.

    python benchmarks/bench_uncertainty.py [--members 5] [--subjects 5] [--epochs 60] [--spread S]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

Z90 = 1.6448536269514722


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--subjects", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument(
        "--spread", type=float, default=None, help="NMMEnsemble's deep_start_spread (its default)"
    )
    args = parser.parse_args()

    from deepemg import NMMEnsemble, NMMRegressor
    from deepemg.benchmark import deep_muscle_metrics
    from deepemg.datasets import make_elbow_lifting
    from deepemg.threads import machine_info, plan_workers

    print(json.dumps(machine_info()))
    data = make_elbow_lifting(n_subjects=args.subjects, random_state=0, progress=False)
    jobs, _ = plan_workers(None, args.members)
    print(
        f"{args.members} members ({jobs} at a time), {args.epochs} epochs; 8 trials train, "
        "4 test per subject; coverage of the true EMG by the 90 % band"
    )
    modes = ("auto", "level", "none")
    coverage = {mode: {m: [] for m in data.muscles} for mode in modes}
    single_s, ensemble_s = [], []
    print(f"{'subject':<8}{'muscle':<9}{'coverage':>9}{'half-width':>11}{'r':>7}")
    for subject in np.unique(data.groups):
        rows = np.flatnonzero(data.groups == subject)
        train, test = rows[:8], rows[8:]
        start = time.perf_counter()
        NMMRegressor(max_epochs=args.epochs, random_state=0).fit(data.X[train], data.y[train])
        single_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        template = NMMRegressor(max_epochs=args.epochs)
        spread = {} if args.spread is None else {"deep_start_spread": args.spread}
        model = NMMEnsemble(template, n_members=args.members, random_state=0, **spread)
        model.fit(data.X[train], data.y[train])
        ensemble_s.append(time.perf_counter() - start)
        truth = data.y_true[test]
        for mode in modes[1:]:
            other, spread = model.predict(data.X[test], return_std=True, predict_physics=mode)
            for j, muscle in enumerate(data.muscles):
                inside = np.abs(truth[..., j] - other[..., j]) <= Z90 * spread[..., j]
                coverage[mode][muscle].append(float(inside.mean()))
        mean, std = model.predict(data.X[test], return_std=True)
        for j, muscle in enumerate(data.muscles):
            inside = float((np.abs(truth[..., j] - mean[..., j]) <= Z90 * std[..., j]).mean())
            coverage["auto"][muscle].append(inside)
            r, _ = deep_muscle_metrics(truth[..., j], mean[..., j])
            deep = " (deep)" if muscle in data.deep_muscles else ""
            print(
                f"{subject:<8}{muscle + deep:<16}{inside:>5.2f}{Z90 * std[..., j].mean():>11.3f}"
                f"{r:>7.2f}"
            )
        print(f"{'':<8}uncertainty_scale_ = {model.uncertainty_scale_:.2f}", flush=True)
    print("\nmean ± SD over subjects of the 90 % band's coverage (target 0.85-0.95):")
    print(f"  {'muscle':<16}" + "".join(f"{f'predict_physics={m!r}':>27}" for m in modes))
    for muscle in data.muscles:
        deep = " (deep)" if muscle in data.deep_muscles else ""
        cells = [coverage[m][muscle] for m in modes]
        print(
            f"  {muscle + deep:<16}"
            + "".join(f"{f'{np.mean(v):.2f} ± {np.std(v):.2f}':>27}" for v in cells)
        )
    surface = [
        np.mean([np.mean(coverage[m][j]) for j in data.muscles if j not in data.deep_muscles])
        for m in modes
    ]
    print(f"  {'all surface':<16}" + "".join(f"{v:>27.2f}" for v in surface))
    print(
        f"\nfit per subject: one network {np.mean(single_s):.1f} s, ensemble of {args.members} "
        f"{np.mean(ensemble_s):.1f} s (x{np.mean(ensemble_s) / np.mean(single_s):.1f}, "
        f"{jobs} members at a time)"
    )


if __name__ == "__main__":
    main()
