"""Curve-shape parameters on or off: deep-muscle EMG, torque and fit time, within subject.

On simulated subjects (:func:`deepemg.benchmark.simulated_subjects`: 3 subjects x 12 trials x
5 s, seed 0) of the scenario ``personal_curves`` when :data:`deepemg.datasets.SCENARIOS` has
it, else of ``compliant_tendons`` and ``default``, each subject's first 8 trials fit an
:class:`~deepemg.NMMRegressor` (default settings) and its last 4 score it: brachialis r and
NRMSE against the truth (the default prediction-time physics), torque NRMSE of the subject's
muscle model against inverse dynamics, fit time. Three variants: ``curve_parameters=False``;
``True``; ``True`` with the curve scales held at 1 for the first half of the epochs (staged, as
CEINMS and the NMSM Pipeline calibrate in stages). Where the truth records curve shapes
(``true_params``), the learned scales are correlated with the true ones. Writes
docs/results/curve_parameters.txt.

    OMP_NUM_THREADS=1 python benchmarks/bench_curve_parameters.py [--scenarios ...]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np
from skorch.callbacks import Callback

from deepemg import NMMRegressor
from deepemg.benchmark import BenchmarkSettings
from deepemg.benchmark.protocol import (
    _layout,
    _scores,
    _truth,
    simulated_subjects,
    within_subject_splits,
)
from deepemg.datasets import SCENARIOS
from deepemg.metrics import torque_nrmse
from deepemg.opensim import elbow_model


class HoldCurvesFirst(Callback):
    """Hold the curve-shape scales (specs ``<p>_scale`` of the law's curves) for ``epochs``."""

    def __init__(self, epochs: int = 15) -> None:
        self.epochs = epochs

    def on_grad_computed(self, net, named_parameters, X=None, y=None, training=None, **kwargs):
        if len(net.history) > self.epochs:
            return
        law = net.module_.physics.muscle_law
        held = {f"unconstrained.{name}_scale" for name in law.curve_shape_parameters}
        for name, parameter in named_parameters:
            if parameter.grad is not None and any(name.endswith(h) for h in held):
                parameter.grad.zero_()


COMPLIANT = "compliant_tendon_degroote_fregly"
VARIANTS = {
    "off": dict(curve_parameters=False),
    "on": dict(curve_parameters=True),
    "staged": dict(curve_parameters=True, callbacks=[HoldCurvesFirst(15)]),
    "c_off": dict(curve_parameters=False, muscle_law=COMPLIANT),
    "c_on": dict(curve_parameters=True, muscle_law=COMPLIANT),
}
"""The variants: rigid-tendon law (the default) or compliant (``c_``), curve scales or not."""


def _true_scale(true: dict, name: str, law, nominal: np.ndarray) -> np.ndarray | None:
    """The truth's scale of the law parameter ``name`` per muscle, or None if not recorded.

    The truth records the value under the law parameter's name or its OpenSim property's
    (``passive_fiber_strain_at_one_norm_force``); the scale is that over the generic model's.
    """
    opensim_name = law.opensim_getters.get(name, "")[len("get_") :]
    for key in (name, opensim_name):
        if key and np.size(true.get(key, ())) == len(nominal):
            return np.asarray(true[key], dtype=float) / nominal
    return None


def _network_torque_nrmse(nmm, data, test, layout, subject) -> float:
    """Torque NRMSE of the subject's muscle model driven by the network's EMG alone."""
    X = data.X[test]
    tau_id = X[..., data.channels.index(layout.torque)]
    nmm.set_params(predict_physics="none")
    try:
        return torque_nrmse(tau_id, nmm.predict_torque(X, np.full(len(X), subject)))
    finally:
        nmm.set_params(predict_physics="torque")


def _curve_values(nmm, name: str) -> np.ndarray:
    """The learned scale of the law parameter ``name``, per muscle (the only subject's)."""
    return np.array([r["value"] for r in nmm.subject_params_ if r["parameter"] == f"{name}_scale"])


def _correlations(scenario: str, learned: dict) -> list[str]:
    """Per (variant, law parameter): r of the learned scales against the truth's."""
    notes = []
    for (variant, name), pairs in learned.items():
        if not all(true is not None for _, true in pairs):
            values = np.concatenate([v for v, _ in pairs])
            notes.append(
                f"{scenario} '{variant}': the truth records no {name} (the file's, scale 1): "
                f"learned {values.min():.3f}-{values.max():.3f}, mean |scale - 1| "
                f"{np.abs(values - 1).mean():.3f} over {len(values)} subject-muscle fits"
            )
            continue
        values = np.concatenate([v for v, _ in pairs])
        truth = np.concatenate([t for _, t in pairs])
        r = np.corrcoef(values, truth)[0, 1] if truth.std() > 0 and values.std() > 0 else np.nan
        notes.append(
            f"{scenario} '{variant}': {name} learned vs true scale, r = {r:.3f} over "
            f"{len(values)} subject-muscle fits (true {truth.min():.2f}-{truth.max():.2f}, "
            f"learned {values.min():.3f}-{values.max():.3f}; BRA only: true "
            + " ".join(f"{t[2]:.2f}" for _, t in pairs)
            + ", learned "
            + " ".join(f"{v[2]:.3f}" for v, _ in pairs)
            + ")"
        )
    return notes


def run(scenario: str, n_subjects: int, variants: list[str], seeds: list[int]) -> tuple:
    """The rows (one per subject, variant and seed) and notes of one scenario."""
    settings = BenchmarkSettings(scenario=scenario, n_subjects=n_subjects, n_trials=12)
    data = simulated_subjects(settings, progress=False)
    layout = _layout(data, "elbow", "r_elbow_flex")
    physics = elbow_model()
    subjects = list(dict.fromkeys(data.groups.tolist()))
    rows: list[dict] = []
    learned: dict[tuple, list] = {}
    for subject, train, test in within_subject_splits(data.groups, settings.train_fraction):
        for variant, seed in ((v, s) for v in variants for s in seeds):
            nmm = NMMRegressor(random_state=seed, **VARIANTS[variant])
            start = time.perf_counter()
            nmm.fit(data.X[train], data.y[train], subject_ids=data.groups[train])
            fit_s = time.perf_counter() - start
            test_data = (data.X[test], _truth(data, test), data.muscles, ["BRA"], subject)
            row = _scores(nmm, *test_data, layout, data.channels)
            rows.append(
                dict(
                    scenario=scenario,
                    subject=subject,
                    variant=variant,
                    seed=seed,
                    bra_r=row["BRA_r"],
                    bra_nrmse=row["BRA_nrmse"],
                    torque_nrmse=row["torque_nrmse"],
                    torque_nrmse_net=_network_torque_nrmse(nmm, data, test, layout, subject),
                    fit_s=fit_s,
                    at_bounds=len(nmm.parameters_at_bounds_),
                )
            )
            print(rows[-1], flush=True)
            law = nmm.physics_.muscle_law
            for name in law.curve_shape_parameters if nmm.curve_parameters else ():
                true = data.true_params[subjects.index(subject)]
                nominal = getattr(physics, name, None)
                if nominal is None:  # the compliant law's tendon strain: the file's 0.049
                    nominal = getattr(nmm.physics_, name)
                truth = _true_scale(true, name, law, nominal.numpy())
                learned.setdefault((variant, name), []).append((_curve_values(nmm, name), truth))
    return rows, _correlations(scenario, learned)


def _table(rows: list[dict]) -> list[str]:
    lines = [
        f"{'scenario':<18} {'variant':<7} {'BRA r':>6} {'BRA NRMSE':>9} {'torque NRMSE':>12} "
        f"{'(network)':>10} {'fit s':>6} {'on bounds':>9}"
    ]
    keys = dict.fromkeys((r["scenario"], r["variant"]) for r in rows)
    for scenario, variant in keys:
        some = [r for r in rows if r["scenario"] == scenario and r["variant"] == variant]
        mean = {
            k: np.mean([r[k] for r in some])
            for k in some[0]
            if k not in ("scenario", "subject", "variant")
        }
        lines.append(
            f"{scenario:<18} {variant:<7} {mean['bra_r']:6.3f} {mean['bra_nrmse']:9.3f} "
            f"{mean['torque_nrmse']:12.4f} {mean['torque_nrmse_net']:10.4f} {mean['fit_s']:6.1f} "
            f"{mean['at_bounds']:9.1f}"
        )
    return lines


PAIRS = {"on": "off", "staged": "off", "c_on": "c_off", "c_off": "off"}
"""Each variant compared with: curve scales on against off, for the same law."""


def _paired(rows: list[dict]) -> list[str]:
    """Mean (SD) of the paired differences variant - reference over subjects and seeds."""
    lines = [
        "Paired differences, variant minus reference (same subject and seed): mean (SD)",
        f"{'scenario':<18} {'variant':<15} {'n':>2} {'BRA r':>15} {'BRA NRMSE':>15} "
        f"{'torque (network)':>17}",
    ]
    index = {(r["scenario"], r["variant"], r["subject"], r["seed"]): r for r in rows}
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        for variant, reference in PAIRS.items():
            pairs = [
                (r, index[(scenario, reference, r["subject"], r["seed"])])
                for r in rows
                if r["scenario"] == scenario
                and r["variant"] == variant
                and (scenario, reference, r["subject"], r["seed"]) in index
            ]
            if not pairs:
                continue
            cells = []
            for key, digits in (("bra_r", 3), ("bra_nrmse", 3), ("torque_nrmse_net", 4)):
                d = np.array([a[key] - b[key] for a, b in pairs])
                cells.append(
                    f"{d.mean():+.{digits}f} ({d.std(ddof=1) if len(d) > 1 else 0:.{digits}f})"
                )
            lines.append(
                f"{scenario:<18} {variant + ' - ' + reference:<15} {len(pairs):>2} "
                f"{cells[0]:>15} {cells[1]:>15} {cells[2]:>17}"
            )
    return lines


def main(argv=None) -> None:
    default = (
        ["personal_curves"] if "personal_curves" in SCENARIOS else ["compliant_tendons", "default"]
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=default, choices=SCENARIOS)
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="network seeds")
    parser.add_argument("--out", type=Path, default=Path("docs/results/curve_parameters.txt"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows, notes = [], []
    for scenario in args.scenarios:
        more_rows, more_notes = run(scenario, args.subjects, args.variants, args.seeds)
        rows += more_rows
        notes += more_notes
    per_subject = [
        f"{r['scenario']:<18} {r['subject']!s:<4} {r['variant']:<7} {r['seed']:<4} "
        f"{r['bra_r']:6.3f} {r['bra_nrmse']:9.3f} {r['torque_nrmse']:12.4f} "
        f"{r['torque_nrmse_net']:10.4f} {r['fit_s']:6.1f} {r['at_bounds']:3d}"
        for r in rows
    ]
    now = datetime.datetime.now(datetime.UTC)
    header = [
        "Curve-shape parameters (NMMRegressor(curve_parameters=...)), within subject",
        f"benchmarks/bench_curve_parameters.py, {now:%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()} ({os.cpu_count()} CPUs, shared with other sessions; load average "
        f"{os.getloadavg()[0]:.1f}), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
        f"total {time.perf_counter() - start:.0f} s",
        f"Scenarios {args.scenarios}, {args.subjects} subjects x 12 trials x 5 s (data seed 0); "
        "each subject's first 8 trials fit an NMMRegressor (default settings, network seeds "
        f"random_state={args.seeds}), its last 4 score it. BRA: brachialis (deep) r and NRMSE "
        "against the truth, default prediction-time physics; torque NRMSE: the subject's "
        "muscle model driven by the corrected EMG, and (network) by the network's EMG alone. "
        "Variants: off/on = curve_parameters False/True with the rigid-tendon law (default); "
        "staged = on with the curve scales held at 1 for the first 15 of 30 epochs; c_off/c_on "
        "= the same with muscle_law='compliant_tendon_degroote_fregly' (adds tendon strain).",
        "",
        "Means over subjects and seeds:",
    ]
    text = "\n".join(
        header
        + _table(rows)
        + [""]
        + _paired(rows)
        + ["", "Per subject and seed:"]
        + per_subject
        + ["", "Learned against true curve scales:"]
        + notes
    )
    print(text)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
