"""What the network reads and what the torque trains: the NMM's settings on every scenario.

Issue 17 item 5. For each scenario and its first ``n`` subjects (benchmark data: 5 x 12 trials
x 5 s, seed 0; within subject, the first 8 trials fit, the last 4 scored), one
``NMMRegressor(random_state=0, **setting)`` per setting below, predicting as by default
(``predict_physics="torque"``): the brachialis r, r within trial and NRMSE against the
simulated truth (:func:`deepemg.metrics.deep_muscle_metrics`, :func:`within_trial_r`) and the
deep antagonist's (TRImed) mean predicted EMG over its truth's. One JSON row per fit, then a
table of the means (docs/results/emg_inputs.txt).

Settings (``emg_inputs``, ``physics_trains``, ``effort_weight``, ``physics_weight``):

* ``0.5``: False, "all", 0.1, 1 -- the NMM of 0.5 (kinematics only, the torque trains all);
* ``emg+all``: "auto", "all", 0.1, 1 -- the surface EMG read, the torque training all;
* ``emg+parameters, effort 0.1``: "auto", "parameters", 0.1, 1;
* ``default``: "auto", "parameters", 0.01, 1 -- the defaults since 0.6;
* ``kinematics+parameters``: False, "parameters", 0.01, 1;
* ``emg, physics_weight=0``: "auto", "parameters", 0.01, 0.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_emg_inputs.py 2 default off_simulator ...
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np

from deepemg import NMMRegressor
from deepemg.benchmark import BenchmarkSettings
from deepemg.benchmark.protocol import simulated_subjects, within_subject_splits
from deepemg.datasets import SCENARIOS
from deepemg.metrics import deep_muscle_metrics, within_trial_r

SETTINGS = {
    "0.5": dict(emg_inputs=False, physics_trains="all", effort_weight=0.1),
    "emg+all": dict(emg_inputs="auto", physics_trains="all", effort_weight=0.1),
    "emg+parameters, effort 0.1": dict(physics_trains="parameters", effort_weight=0.1),
    "default": {},
    "kinematics+parameters": dict(emg_inputs=False),
    "emg, physics_weight=0": dict(physics_weight=0.0),
}


def _scores(model, data, test) -> dict:
    muscles = list(data.muscles)
    bra, tri = muscles.index("BRA"), muscles.index("TRImed")
    predicted = model.predict(data.X[test], subject_ids=data.groups[test])
    truth = data.y_true[test]
    r, nrmse = deep_muscle_metrics(truth[..., bra], predicted[..., bra])
    return {
        "bra_r": float(r),
        "bra_r_trial": float(within_trial_r(truth[..., bra], predicted[..., bra])),
        "bra_nrmse": float(nrmse),
        "trimed_ratio": float(predicted[..., tri].mean() / truth[..., tri].mean()),
    }


def main(argv: list[str]) -> None:
    n = int(argv[0])
    scenarios = argv[1:] or list(SCENARIOS)
    rows = []
    for scenario in scenarios:
        data = simulated_subjects(BenchmarkSettings(scenario=scenario), progress=False)
        for subject, train, test in within_subject_splits(np.asarray(data.groups))[:n]:
            for name, setting in SETTINGS.items():
                start = time.perf_counter()
                model = NMMRegressor(random_state=0, **setting).fit(
                    data.X[train], data.y[train], subject_ids=data.groups[train]
                )
                row = dict(scenario=scenario, subject=str(subject), setting=name)
                row.update(_scores(model, data, test), fit_s=round(time.perf_counter() - start, 1))
                rows.append(row)
                print(json.dumps(row), flush=True)
    print()
    print(f"{'setting':28s} {'BRA r':>7s} {'r trial':>8s} {'NRMSE':>7s}  TRImed/truth (median)")
    for name in SETTINGS:
        mine = [r for r in rows if r["setting"] == name]
        means = [np.mean([r[k] for r in mine]) for k in ("bra_r", "bra_r_trial", "bra_nrmse")]
        ratio = np.median([r["trimed_ratio"] for r in mine])
        print(f"{name:28s} {means[0]:7.3f} {means[1]:8.3f} {means[2]:7.3f}  {ratio:.2f}")


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main(sys.argv[1:])
