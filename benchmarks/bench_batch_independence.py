"""Does a sequence's predicted EMG depend on the other sequences predicted with it?

Fits ``NMMRegressor(random_state=0, max_epochs=5)`` on simulated subjects
(``make_elbow_lifting(n_subjects=3, n_trials=4, duration=5.0, random_state=0)``) and, for each
prediction-time physics ("none", "torque", "emg", 100 correction steps), compares
``predict(X, ids)[i]`` with ``predict(X[i:i+1], ids[i:i+1])[0]`` for every sequence and with
the batch shuffled. Prints the largest absolute differences (EMG in 0..1) and the machine.

    python benchmarks/bench_batch_independence.py [--out docs/results/batch_independence.txt]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="also write the output to this file")
    args = parser.parse_args()

    from _report import Report

    from deepemg import NMMRegressor
    from deepemg.datasets import make_elbow_lifting

    report = Report()
    say = report.say
    report.machine()
    data = make_elbow_lifting(
        n_subjects=3, n_trials=4, duration=5.0, random_state=0, progress=False, cache=False
    )
    X, ids = data.X, data.groups
    nmm = NMMRegressor(random_state=0, max_epochs=5).fit(X, data.y, subject_ids=ids)
    order = np.random.default_rng(0).permutation(len(X))
    say(f"{len(X)} sequences x {X.shape[1]} steps, 3 subjects; max |difference| of the EMG")
    say(f"{'predict_physics':<16}{'alone vs batch':>16}{'shuffled batch':>16}")
    for mode in ("none", "torque", "emg"):
        full = nmm.predict(X, ids, predict_physics=mode)
        alone = np.concatenate(
            [nmm.predict(X[i : i + 1], ids[i : i + 1], predict_physics=mode) for i in range(len(X))]
        )
        shuffled = nmm.predict(X[order], ids[order], predict_physics=mode)
        say(
            f"{mode:<16}{np.abs(alone - full).max():>16.1e}"
            f"{np.abs(shuffled - full[order]).max():>16.1e}"
        )
    if args.out:
        report.write(args.out)


if __name__ == "__main__":
    main()
