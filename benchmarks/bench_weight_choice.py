"""Does leave one surface muscle out pick the physics weight that best reconstructs deep EMG?

Issue 17 item 4. On real recordings the deep EMG is unknown, so a weight such as
``physics_weight`` can only be chosen by a score that real data allow: hide a surface muscle's
EMG in fit and score its reconstruction (:class:`deepemg.metrics.LeaveOneMuscleOutRegressor`,
the protocol of MSE's ``score``). For each scenario and subject (within subject: the first 8
trials fit, the last 4 are scored), each weight is fitted twice: once as is (its brachialis r
against the simulated truth on the test trials) and once per hidden surface muscle (its
variance-weighted R² on the test trials' recorded EMG of the hidden muscles, and the mean
Pearson r of each hidden muscle's reconstruction, its shape). The script prints one JSON row
per subject and weight; the weight with the best R² is compared with the
one with the best brachialis r (docs/results/weight_choice.txt).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_weight_choice.py default 2 0,0.3,1
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
from deepemg.metrics import LeaveOneMuscleOutRegressor

HIDDEN = ["BRD", "TRIlat"]
"""Surface muscles hidden in turn: a synergist of each deep muscle."""


def _hidden_r(hidden, data, test) -> float:
    """Mean over the hidden muscles of the Pearson r of their reconstruction (the shape)."""
    predicted = hidden.predict(data.X[test], subject_ids=data.groups[test])
    rs = []
    for k, muscle in enumerate(hidden.hidden_):
        truth = data.y[test][..., list(data.muscles).index(muscle)].ravel()
        keep = np.isfinite(truth)
        rs.append(np.corrcoef(predicted[..., k].ravel()[keep], truth[keep])[0, 1])
    return float(np.mean(rs))


def main(argv: list[str]) -> None:
    scenario, n_subjects = argv[0], int(argv[1])
    weights = [float(w) for w in argv[2].split(",")] if len(argv) > 2 else [0.0, 0.3, 1.0]
    data = simulated_subjects(BenchmarkSettings(scenario=scenario), progress=False)
    bra = list(data.muscles).index("BRA")
    for subject, train, test in within_subject_splits(np.asarray(data.groups))[:n_subjects]:
        for weight in weights:
            start = time.perf_counter()
            fitted = NMMRegressor(random_state=0, physics_weight=weight).fit(
                data.X[train], data.y[train], subject_ids=data.groups[train]
            )
            predicted = fitted.predict(data.X[test], subject_ids=data.groups[test])[..., bra]
            truth = data.y_true[test][..., bra]
            r = float(np.corrcoef(predicted.ravel(), truth.ravel())[0, 1])
            hidden = LeaveOneMuscleOutRegressor(
                NMMRegressor(random_state=0, physics_weight=weight), muscles=HIDDEN
            ).fit(data.X[train], data.y[train], subject_ids=data.groups[train])
            score = hidden.score(data.X[test], data.y[test], subject_ids=data.groups[test])
            shape = _hidden_r(hidden, data, test)
            row = dict(
                scenario=scenario,
                subject=str(subject),
                weight=weight,
                bra_r=r,
                lomo_r2=score,
                lomo_r=shape,
            )
            print(json.dumps(row), f"{time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main(sys.argv[1:])
