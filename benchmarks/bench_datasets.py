"""Time ``make_elbow_lifting``: the default call fresh, then from its cache.

Target (issue: simulated subjects): the default call (5 subjects x 12 trials x 5 s at 100 Hz,
static optimisation) in under 60 s on the 2-core development machine, and a second call in
under a second. Also prints what the data look like (activation ranges, BRA by load).

Run: ``python benchmarks/bench_datasets.py``.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time

import numpy as np

from deepemg.datasets import make_elbow_lifting


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        data = make_elbow_lifting(random_state=0, data_home=folder, progress=False)
        fresh = time.perf_counter() - start
        start = time.perf_counter()
        make_elbow_lifting(random_state=0, data_home=folder, progress=False)
        cached = time.perf_counter() - start
    n_sequences, n_steps, _ = data.X.shape
    print(
        f"make_elbow_lifting(random_state=0): {n_sequences} trials x {n_steps} steps, "
        f"{data.X.shape[-1]} channels, {len(data.muscles)} muscles"
    )
    print(
        f"  fresh call   : {fresh:6.2f} s ({1e3 * fresh / n_sequences:.0f} ms a trial; "
        f"target < 60 s)"
    )
    print(f"  cached call  : {cached:6.3f} s (target < 1 s); fresh/cached = {fresh / cached:.0f}x")
    print(f"  activation   : {data.activation.min():.3f} .. {data.activation.max():.3f}")
    bra = data.muscles.index("BRA")
    by_load = {
        load: data.y_true[data.loads == load][..., bra].mean() for load in np.unique(data.loads)
    }
    print(
        "  mean BRA envelope by load: "
        + ", ".join(f"{load:.0f} kg {value:.3f}" for load, value in by_load.items())
    )
    print(f"  machine      : {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    return 0 if fresh < 60 and cached < 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
