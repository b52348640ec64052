"""Physics at prediction time: what each ``predict_physics`` mode gives and costs.

On ``make_elbow_lifting(n_subjects=5, random_state=0)``, one NMMRegressor per subject is fitted
on its first 8 lifts (default settings); its 4 test lifts are then predicted with
``predict_physics`` "none" (the network alone), "torque" (the network's EMG corrected so the
subject's muscle model reproduces the inverse-dynamics torque) and "emg" (EMG-assisted: the
test lifts' surface EMG drives its muscles, the residual goes to the deep ones). Printed, mean ±
SD over subjects: BRA r (time and trials flattened), BRA r within each trial (the shape, not the
load level), BRA NRMSE, the muscle torque's NRMSE against inverse dynamics, and prediction
steps/s of each mode, measured in the same run. ``--loso`` adds leave one subject out (fit on
the other four, ``personalize`` on the held-out subject's lifts, predict them).

    python benchmarks/bench_predict_physics.py [--loso] [--weights 0.1 1]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from joblib import Parallel, delayed

MODES = ("none", "torque", "emg")


def _fit(data, train, subject_ids=None, personalize=None):
    from deepemg import NMMRegressor

    model = NMMRegressor(random_state=0)  # the default settings (30 epochs since 0.6)
    model.fit(data.X[train], data.y[train], subject_ids=subject_ids)
    if personalize is not None:
        rows, labels = personalize
        model.personalize(data.X[rows], data.y[rows], subject_ids=labels)
    return model


def _scores(model, data, test, subject, weight) -> dict:
    from deepemg.benchmark import deep_muscle_metrics

    bra = data.muscles.index("BRA")
    X, truth, tau = data.X[test], data.y_true[test][..., bra], data.X[test][..., 4]
    ids = np.full(len(test), subject)
    out = {}
    for mode in MODES:
        model.set_params(predict_physics=mode, correction_weight=weight)
        start = time.perf_counter()
        emg = model.predict(X, ids)
        seconds = time.perf_counter() - start
        torque = model.predict_torque(X, ids)
        r, nrmse = deep_muscle_metrics(truth, emg[..., bra])
        pairs = zip(truth, emg[..., bra], strict=True)
        within = np.nanmean([deep_muscle_metrics(t, e)[0] for t, e in pairs])
        out[mode] = {
            "r": r,
            "r_within_trial": within,
            "nrmse": nrmse,
            "torque_nrmse": float(np.sqrt(np.mean((torque - tau) ** 2)) / np.ptp(tau)),
            "steps_per_s": X.shape[0] * X.shape[1] / seconds,
        }
    return out


def _table(title, results) -> None:
    print(f"\n{title}")
    print(
        f"{'mode':<8}{'BRA r':>15}{'BRA r in trial':>16}{'BRA NRMSE':>15}{'torque NRMSE':>16}"
        f"{'steps/s':>10}"
    )

    def cell(rows, key, percent=False):
        values = np.array([row[key] for row in rows])
        scale = 100 if percent else 1
        return f"{scale * values.mean():.3f}±{scale * values.std():.3f}"

    for mode in MODES:
        rows = [r[mode] for r in results]
        speed = np.mean([row["steps_per_s"] for row in rows])
        print(
            f"{mode:<8}{cell(rows, 'r'):>15}{cell(rows, 'r_within_trial'):>16}"
            f"{cell(rows, 'nrmse'):>15}{cell(rows, 'torque_nrmse', True) + ' %':>16}{speed:>10,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loso", action="store_true")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.1])
    args = parser.parse_args()

    from deepemg.datasets import make_elbow_lifting
    from deepemg.threads import machine_info, plan_workers

    print(json.dumps(machine_info()))
    data = make_elbow_lifting(n_subjects=5, random_state=0, progress=False)
    subjects = list(dict.fromkeys(data.groups.tolist()))
    jobs, _ = plan_workers(None, len(subjects))
    splits = []
    for subject in subjects:
        rows = np.flatnonzero(data.groups == subject)
        splits.append((subject, rows[:8], rows[8:]))
    start = time.perf_counter()
    models = Parallel(n_jobs=jobs)(
        delayed(_fit)(data, train, data.groups[train]) for _, train, _ in splits
    )
    print(f"within subject: {len(models)} fits in {time.perf_counter() - start:.0f} s")
    for weight in args.weights:
        results = [
            _scores(model, data, test, subject, weight)
            for model, (subject, _, test) in zip(models, splits, strict=True)
        ]
        _table(f"within subject (8 lifts train, 4 test), correction_weight={weight}", results)
    if args.loso:
        tasks = []
        for subject in subjects:
            own = np.flatnonzero(data.groups == subject)
            others = np.flatnonzero(data.groups != subject)
            labels = np.full(len(own), subject)
            tasks.append(delayed(_fit)(data, others, data.groups[others], (own, labels)))
        start = time.perf_counter()
        models = Parallel(n_jobs=jobs)(tasks)
        print(
            f"\nleave one subject out: {len(models)} folds in {time.perf_counter() - start:.0f} s"
        )
        for weight in args.weights:
            results = [
                _scores(model, data, np.flatnonzero(data.groups == s), s, weight)
                for model, s in zip(models, subjects, strict=True)
            ]
            _table(f"leave one subject out, correction_weight={weight}", results)


if __name__ == "__main__":
    main()
