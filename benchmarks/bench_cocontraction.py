"""Why the NMM over-predicts the deep antagonist (triceps medial head): the loss terms, one by one.

Issue 17 item 5. Within subject (the first 8 trials fit, the last 4 predicted), the mean
predicted EMG of the triceps medial head (TRImed, never measured, an antagonist in lifting)
and of the brachialis (BRA) against their simulated truth, and the brachialis r, for the
default NMM and for variants that change one term of its loss:

* ``synergy0``: ``synergy_weight=0``; ``effort1``: ``effort_weight=1``;
  ``physics0``: ``physics_weight=0``; ``synergist0``: ``synergist_weight=0`` (deepemg before
  the synergist term, the default since 0.6);
* ``synergy_by_function``: the synergy term projects each deep muscle on the surface muscles
  of its own function only (the flexors BIClong, BICshort, BRD for BRA; the extensors
  TRIlong, TRIlat for TRImed) instead of on every surface muscle;
* ``synergy_surface_scale``: the synergy term's residual divided by the surface EMG's energy
  instead of the deep muscles' own (so it no longer rewards a larger deep EMG).

The two synergy variants replace :meth:`deepemg.nmm_module.NMMLoss.synergy` in this process
only (an experiment, not an option of the package). docs/results/cocontraction.txt.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_cocontraction.py off_simulator 2 default,synergy0
    OMP_NUM_THREADS=1 python benchmarks/bench_cocontraction.py default 5 default,synergist0
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import torch

from deepemg import NMMRegressor
from deepemg.benchmark import BenchmarkSettings
from deepemg.benchmark.protocol import simulated_subjects, within_subject_splits
from deepemg.nmm_module import NMMLoss

ELBOW = ["BIClong", "BICshort", "BRA", "BRD", "TRIlong", "TRIlat", "TRImed"]
FUNCTION = {2: [0, 1, 3], 6: [4, 5]}  # deep muscle -> the surface muscles of its function
WEIGHTS = {
    "default": {},
    "synergy0": {"synergy_weight": 0.0},
    "effort1": {"effort_weight": 1.0},
    "physics0": {"physics_weight": 0.0},
    "synergist0": {"synergist_weight": 0.0},
    "synergy_by_function": {},
    "synergy_surface_scale": {},
}


def _projection_residual(emg, target, deep, surface, ridge):
    """``(I - P) D`` of the deep columns on the surface columns, and the complete-window mask."""
    measured = ~torch.isnan(target).any(dim=1)
    complete = measured[:, surface].all(dim=1).to(emg.dtype)[:, None, None]
    S = torch.nan_to_num(target[..., surface]).to(emg.dtype)
    D = emg[..., deep]
    gram = S.transpose(1, 2) @ S + ridge * S.shape[1] * torch.eye(len(surface), dtype=emg.dtype)
    residual = D - S @ torch.linalg.solve(gram, S.transpose(1, 2) @ D)
    return residual, D, S, complete


def synergy_by_function(self, emg, target):
    """The synergy share with each deep muscle projected on its own function's surface EMG."""
    residual_energy, deep_energy = emg.sum() * 0, emg.sum() * 0
    for deep, surface in FUNCTION.items():
        residual, D, _, complete = _projection_residual(emg, target, [deep], surface, self.ridge)
        residual_energy = residual_energy + (residual**2 * complete).sum()
        deep_energy = deep_energy + (D**2 * complete).sum()
    return residual_energy / deep_energy.clamp(min=1e-12)


def synergy_surface_scale(self, emg, target):
    """The synergy residual over the surface EMG's energy (no reward for a larger deep EMG)."""
    surface = [j for j in range(target.shape[-1]) if j not in self.unmeasured]
    residual, D, S, complete = _projection_residual(
        emg, target, self.unmeasured, surface, self.ridge
    )
    share = D.shape[-1] / S.shape[-1]
    return (residual**2 * complete).sum() / (share * (S**2 * complete).sum()).clamp(min=1e-12)


def main(argv: list[str]) -> None:
    scenario, n_subjects = argv[0], int(argv[1])
    names = argv[2].split(",") if len(argv) > 2 else list(WEIGHTS)
    data = simulated_subjects(BenchmarkSettings(scenario=scenario), progress=False)
    assert list(data.muscles) == ELBOW
    original = NMMLoss.synergy
    for name in names:
        NMMLoss.synergy = {
            "synergy_by_function": synergy_by_function,
            "synergy_surface_scale": synergy_surface_scale,
        }.get(name, original)
        for subject, train, test in within_subject_splits(np.asarray(data.groups))[:n_subjects]:
            start = time.perf_counter()
            model = NMMRegressor(random_state=0, **WEIGHTS[name]).fit(
                data.X[train], data.y[train], subject_ids=data.groups[train]
            )
            predicted = model.predict(data.X[test], subject_ids=data.groups[test])
            truth = data.y_true[test]
            r = np.corrcoef(predicted[..., 2].ravel(), truth[..., 2].ravel())[0, 1]
            ratio = predicted[..., 6].mean() / truth[..., 6].mean()
            print(
                f"{scenario:14s} {name:22s} {subject}  TRImed {predicted[..., 6].mean():.3f} "
                f"truth {truth[..., 6].mean():.3f} ratio {ratio:.2f}"
                f"  BRA {predicted[..., 2].mean():.3f} truth {truth[..., 2].mean():.3f} r {r:.3f}"
                f"  ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    NMMLoss.synergy = original


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main(sys.argv[1:])
