"""A fit's time with each muscle law, against the rigid-tendon law's in the same run.

Issue 17's target: a compliant-tendon fit at most 2x a rigid-tendon fit's time. One subject's
12 lifts of 5 s (``make_elbow_lifting(n_subjects=1, random_state=0)``), ``NMMRegressor``'s
defaults but the law, one thread, each law fitted ``--repeats`` times alternately with the
rigid law; prints the median wall time of each and the ratio.

Usage::

    python benchmarks/bench_law_fit.py --laws compliant_tendon_degroote_fregly
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from deepemg import NMMRegressor
from deepemg.datasets import make_elbow_lifting
from deepemg.threads import machine_info

RIGID = "rigid_tendon_degroote_fregly"


def _fit_seconds(data, law: str) -> float:
    start = time.perf_counter()
    NMMRegressor(muscle_law=law, random_state=0, n_threads=1).fit(
        data.X, data.y, subject_ids=data.groups
    )
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", nargs="+", default=["compliant_tendon_degroote_fregly"])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    data = make_elbow_lifting(n_subjects=1, random_state=0, progress=False)
    _fit_seconds(data, RIGID)  # warm-up: imports, the model's fit, the first allocations
    print(machine_info())
    for law in args.laws:
        rigid, other = [], []
        for _ in range(args.repeats):
            rigid.append(_fit_seconds(data, RIGID))
            other.append(_fit_seconds(data, law))
        r, o = statistics.median(rigid), statistics.median(other)
        print(f"{law}: fit {o:.1f} s against {RIGID} {r:.1f} s: {o / r:.2f}x", flush=True)


if __name__ == "__main__":
    main()
