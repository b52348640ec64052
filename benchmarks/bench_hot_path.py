"""Training and correction time before and after "physics checked once" (issue 18, item 4).

Times, in one run, with the old code (a git worktree of ``--old``, default cd628a7, the commit
before the change) and the new code (``--new``, default this checkout), each imported in its
own subprocess through ``PYTHONPATH``, alternating, ``OMP_NUM_THREADS=1``:

(a) one training epoch of ``NMMRegressor`` (default network, ``window=100``, ``random_state=0``)
    on simulated data (``make_elbow_lifting``: 2 subjects x 4 trials x 5 s at 100 Hz, seed 0),
    skorch's ``dur`` of the second epoch;
(b) the prediction-time correction, ``deepemg.correction.correct_emg`` with 100 steps, on 8
    sequences x 500 steps (the fitted module of (a), its network EMG as the prior).

Prints the medians over ``--repeats`` runs of each and the ratio new/old. To time this change
alone, give ``--new`` a worktree of cd628a7 with the physics commits cherry-picked (as for
``docs/results/hot_path.txt``); this checkout also holds whatever else changed since.

Usage::

    python benchmarks/bench_hot_path.py [--repeats 3] [--old cd628a7] [--new PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
torch.set_num_threads(1)
import deepemg
from deepemg import NMMRegressor
from deepemg.correction import correct_emg

data = np.load(sys.argv[2], allow_pickle=False)
X, y, groups = data["X"], data["y"], data["groups"]
channels = [str(c) for c in data["channels"]]
nmm = NMMRegressor(max_epochs=2, window=100, random_state=0, predict_physics="none",
                   channels=channels, verbose=0)
nmm.fit(X, y, subject_ids=groups)
epoch = float(nmm.history_[-1, "dur"])
prior = torch.as_tensor(nmm.predict(X, groups, predict_physics="none"))
angle, velocity, torque = (torch.as_tensor(X[..., channels.index(c)]) for c in
                           ("elbow_angle", "elbow_velocity", "elbow_torque"))
index = torch.as_tensor(np.searchsorted(nmm.subjects_, groups))
start = time.perf_counter()
correct_emg(nmm.net_.module_, prior, angle, velocity, torque, index,
            torque_scale=nmm.torque_scale_, weight=0.1, steps=100)
correction = time.perf_counter() - start
print(json.dumps({"epoch_s": epoch, "correction_s": correction,
                  "deepemg": deepemg.__file__}))
"""


def _worktree(ref: str) -> Path:
    """A detached git worktree of ``ref`` under the temporary folder (made once)."""
    path = Path(tempfile.gettempdir()) / f"deepemg-bench-{ref}"
    if not (path / "deepemg").is_dir():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(path), ref],
            check=True,
            capture_output=True,
        )
    return path


def _commit(code: Path) -> str:
    """The commit a code folder holds (``+changes`` when its tracked files differ)."""
    git = ["git", "-C", str(code)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode:
        return "not a git checkout"
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "deepemg"]).returncode
    return head.stdout.strip() + (" +changes" if dirty else "")


def _data(path: Path) -> None:
    """The simulated data, made once and read by every worker."""
    import numpy as np

    from deepemg.datasets import make_elbow_lifting

    data = make_elbow_lifting(
        n_subjects=2, n_trials=4, duration=5.0, random_state=0, progress=False, cache=False
    )
    np.savez(
        path,
        X=data.X,
        y=data.y,
        groups=np.asarray(data.groups, dtype=str),
        channels=np.asarray(data.channels, dtype=str),
    )


def _run(code: Path, data: Path, workdir: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(code)}
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(code), str(data)],
        env=env,
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["deepemg"].startswith(str(code)):
        raise RuntimeError(f"the worker imported {result['deepemg']}, not the code in {code}")
    return result


def main(argv=None) -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old", default="cd628a7", help="git commit of the old code")
    parser.add_argument("--new", default=str(ROOT), help="folder of the new code")
    args = parser.parse_args(argv)
    codes = {"old": _worktree(args.old), "new": Path(args.new).resolve()}
    times: dict[str, dict[str, list[float]]] = {
        side: {"epoch_s": [], "correction_s": []} for side in codes
    }
    with tempfile.TemporaryDirectory() as workdir:
        data = Path(workdir) / "data.npz"
        _data(data)
        for _ in range(args.repeats):
            for side, code in codes.items():  # alternating: old, new, old, new ...
                result = _run(code, data, workdir)
                for key in ("epoch_s", "correction_s"):
                    times[side][key].append(result[key])
    print(f"bench_hot_path  {time.strftime('%Y-%m-%d')}  {platform.node() or 'host'}")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, OMP_NUM_THREADS=1, "
        f"{args.repeats} alternating runs of each"
    )
    for side, code in codes.items():
        print(f"{side}: {code} (commit {_commit(code)})")
    print("(a) one training epoch: NMMRegressor, 2 subjects x 4 trials x 5 s, window 100")
    print("(b) correct_emg, 100 steps, 8 sequences x 500 steps")
    print(f"{'':14}{'old (s)':>10}{'new (s)':>10}{'new/old':>10}   runs old | new")
    for key, label in (("epoch_s", "(a) epoch"), ("correction_s", "(b) correction")):
        old, new = (statistics.median(times[side][key]) for side in ("old", "new"))
        runs = " ".join(f"{v:.3f}" for v in times["old"][key])
        runs += " | " + " ".join(f"{v:.3f}" for v in times["new"][key])
        print(f"{label:14}{old:10.3f}{new:10.3f}{new / old:10.2f}   {runs}")


if __name__ == "__main__":
    main()
