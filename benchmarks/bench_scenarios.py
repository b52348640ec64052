"""The benchmark on every scenario: tables, targets and the report in docs/results/scenarios.

Runs :func:`deepemg.benchmark.run_benchmark` on the simulated subjects of each scenario of
:data:`deepemg.datasets.SCENARIOS` (5 subjects x 12 trials x 5 s, seed 0, the default
settings of both estimators), within subject and leave one subject out. The scenarios named
in ``--ablations`` also fit the ablations (``physics_weight=0``, ``subject_embedding=0``) and
the NMM pretrained on the other subjects and personalised; every scenario scores the NMM with
and without prediction-time physics (the same fitted networks). The report (one table per
scenario, the targets, the hardest scenario's deep-EMG figure) is written whole into ``--out``
(``deepemg.report.write_scenarios_report``). Every scenario's fits run in one pool, the longest
first (``deepemg.benchmark.run_benchmarks``), and the wall time of the whole pool is printed.

Usage::

    python benchmarks/bench_scenarios.py                       # all scenarios
    python benchmarks/bench_scenarios.py --scenarios default off_simulator \\
        --ablations default off_simulator --out docs/results/scenarios
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from deepemg.benchmark import BenchmarkSettings, format_table, run_benchmarks
from deepemg.datasets import SCENARIOS
from deepemg.report import write_scenarios_report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument(
        "--ablations",
        nargs="*",
        default=["default", "off_simulator"],
        help="scenarios that also fit the ablations and the pretrained NMM",
    )
    parser.add_argument("--subjects", type=int, default=5)
    parser.add_argument("--band", type=int, default=0, help="ensemble members of the band")
    parser.add_argument(
        "--nmm",
        type=json.loads,
        default={},
        help='further NMMRegressor parameters as JSON, e.g. \'{"muscle_law": "..."}\'',
    )
    parser.add_argument("--out", type=Path, default=Path("docs/results/scenarios"))
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "deepemg-scenarios",
        help="each scenario's result is kept here (a pickle this script writes) as it ends",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the results kept in --work by an earlier run"
    )
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)

    base = BenchmarkSettings(n_subjects=args.subjects, band_members=args.band, nmm_params=args.nmm)
    start = time.perf_counter()
    results, runs = {}, {}
    for name in args.scenarios:
        kept = args.work / f"{name}.pickle"
        if args.reuse and kept.is_file():
            with open(kept, "rb") as handle:  # written by this script, below
                results[name] = pickle.load(handle)
        else:
            full = name in args.ablations
            runs[name] = replace(base, scenario=name, ablation=full, pretrained=full)
    if runs:  # every scenario's fits in one pool, the longest first
        for name, result in run_benchmarks(runs, progress=False).items():
            results[name] = result
            kept = args.work / f"{name}.pickle"
            with open(kept.with_suffix(".partial"), "wb") as handle:
                pickle.dump(result, handle)
            kept.with_suffix(".partial").replace(kept)
    print(f"wall time of the scenarios' fits: {time.perf_counter() - start:.0f} s", flush=True)
    results = {name: results[name] for name in args.scenarios}
    for name, result in results.items():
        print(f"\n=== {name}", flush=True)
        print(format_table(result, subjects=False), flush=True)
    partial = Path(tempfile.mkdtemp(dir=args.out.resolve().parent, prefix=".scenarios."))
    try:
        write_scenarios_report(results, partial)
        if args.out.exists():
            shutil.rmtree(args.out)
        partial.rename(args.out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f"\nreport: {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
