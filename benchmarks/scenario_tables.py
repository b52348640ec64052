"""The markdown tables of docs/scenarios.md and the README from one scenario benchmark run.

Reads the results ``benchmarks/bench_scenarios.py`` keeps in its ``--work`` folder (one pickle
per scenario, written by that script) and prints, from those numbers only: the table of every
scenario (NMM, network alone, physics_weight=0 and kinematics only where run, MSE; within
subject and leave one subject out; mean ± SD over subjects), the targets table
(:func:`deepemg.benchmark.target_checks`) and the README's default-scenario table.

Usage::

    python benchmarks/scenario_tables.py --work /tmp/deepemg-scenarios
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
from pathlib import Path

import numpy as np

from deepemg.benchmark import target_checks
from deepemg.datasets import SCENARIOS

SHOWN = ("NMM", "NMM, network alone", "NMM, physics_weight=0", "NMM, kinematics only", "MSE")
EVALUATIONS = {"within subject": "within", "leave one subject out": "LOSO"}


def _stat(rows, column, percent=False):
    values = np.array([r.get(column, np.nan) for r in rows], dtype=float)
    if np.isnan(values).all():
        return "n/a"
    if percent:
        return f"{100 * np.nanmean(values):.1f} %"
    return f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"


def scenario_table(results: dict) -> list[str]:
    """One row per scenario, evaluation and shown method."""
    columns = ["BRA_r", "BRA_r_trial", "BRA_r_beyond", "BRA_nrmse", "TRImed_r", "torque_nrmse"]
    lines = [
        "| scenario | evaluation | method | BRA r | BRA r within trial | "
        "BRA r beyond training loads | BRA NRMSE | TRImed r | torque NRMSE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for evaluation in EVALUATIONS:
            for method in SHOWN:
                rows = [
                    r
                    for r in result.rows
                    if r["evaluation"] == evaluation and r["method"] == method
                ]
                if not rows:
                    continue
                cells = [_stat(rows, c, c == "torque_nrmse") for c in columns]
                lines.append(f"| {name} | {evaluation} | {method} | " + " | ".join(cells) + " |")
    return lines


def targets_table(results: dict) -> list[str]:
    """The targets of every scenario (✓ met, ✗ missed, n/a) and the counts."""
    mark = {True: "✓", False: "✗", None: "n/a"}
    header, lines, counts = None, [], {True: 0, False: 0, None: 0}
    for name, result in results.items():
        checks = target_checks(result)
        if header is None:
            names = list(dict.fromkeys(c["target"] for c in checks))
            header = ["| scenario | evaluation | " + " | ".join(names) + " |"]
            header.append("|---|---|" + "---|" * len(names))
        for evaluation in dict.fromkeys(c["evaluation"] for c in checks):
            cells = []
            for c in (c for c in checks if c["evaluation"] == evaluation):
                counts[c["met"]] += 1
                value = c["value"]
                text = "" if value is None or not np.isfinite(value) else f" {value:.2f}"
                if text and "torque" in c["target"]:
                    text = f" {100 * value:.1f} %"
                cells.append(mark[c["met"]] + (text if c["met"] is not None else ""))
            short = EVALUATIONS.get(evaluation, evaluation)
            lines.append(f"| {name} | {short} | " + " | ".join(cells) + " |")
    total = f"{counts[True]} met, {counts[False]} missed, {counts[None]} not applicable."
    return [*(header or []), *lines, "", total]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "deepemg-scenarios"
    )
    args = parser.parse_args(argv)
    results = {}
    for name in SCENARIOS:
        kept = args.work / f"{name}.pickle"
        if kept.is_file():
            with open(kept, "rb") as handle:  # written by bench_scenarios.py
                results[name] = pickle.load(handle)
    print("\n".join(scenario_table(results)))
    print()
    print("\n".join(targets_table(results)))


if __name__ == "__main__":
    main()
