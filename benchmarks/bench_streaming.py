"""Per-update time of StreamingPredictor at 100 Hz, with and without the physics, one network and
an ensemble, against the 10 ms real-time budget.

A default-size NMMRegressor (window 100, d_model 32, 2 layers, predict_overlap 0.25; trained
for 2 epochs only: the timing does not depend on training) and an NMMEnsemble of 3 such
members stream a 60 s simulated trial (6,000 samples) one sample per update (a 10 ms budget
each), with ``predict_physics="none"`` (the networks alone) and ``"torque"`` (the correction,
spread over the updates by the stream's queue), on one torch/BLAS thread; the single network
alone also in chunks of 5 (50 ms each). Printed, per stream: per-update wall time and CPU time
of the thread (mean, p99, max; the CPU time is what the update costs when no other process
takes the core: on a shared machine the wall time's tail is other processes) over all updates
and over the updates that ran a network, that ran only correction units, and that ran nothing;
the slowest 1 % of the updates; throughput; the ratio of the wall time to the budget; the
newest output's largest lag behind the input; the largest difference from the offline
reference: offline ``predict(X, predict_physics="none")`` for the networks alone, and, with
the physics, ``correct_emg`` of each sample's span of that network EMG (the stream's promise,
``deepemg.streaming``), and how far that is from offline ``predict`` of the whole trial.
Then the CPU time of each kind of unit of work, offline ``predict``'s steps/s for reference,
and the machine.

Run: ``python benchmarks/bench_streaming.py`` (about 2 minutes; ``--model PATH`` loads a saved
estimator instead of fitting, ``--save PATH`` saves the fitted one).
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections import defaultdict

import numpy as np
import torch

from deepemg import NMMEnsemble, NMMRegressor, streaming
from deepemg.datasets import make_elbow_lifting
from deepemg.streaming import StreamingPredictor, span_corrections
from deepemg.threads import limit_threads, machine_info

BUDGET_MS = 10.0
"""One sample's period at 100 Hz."""


def estimators(args) -> tuple[NMMRegressor, NMMEnsemble]:
    data = make_elbow_lifting(
        n_subjects=1, n_trials=4, duration=5.0, random_state=0, cache=False, progress=False
    )
    if args.model:
        nmm = NMMRegressor.load(args.model)
    else:
        start = time.perf_counter()
        nmm = NMMRegressor(max_epochs=args.epochs, random_state=0).fit(data.X, data.y)
        print(f"fit: {time.perf_counter() - start:.1f} s ({args.epochs} epochs, 4 x 5 s trials)")
        if args.save:
            nmm.save(args.save, overwrite=True)
    start = time.perf_counter()
    template = NMMRegressor(max_epochs=args.epochs)
    ensemble = NMMEnsemble(template, n_members=3, n_jobs=1, random_state=0).fit(data.X, data.y)
    print(f"ensemble fit: {time.perf_counter() - start:.1f} s (3 members, one after another)")
    return nmm, ensemble


def stream(predictor: StreamingPredictor, trial: np.ndarray, chunk: int) -> dict:
    """Per-update wall and CPU times (ms), what each ran, the lag, the EMG and finish's time."""
    predictor.reset()
    wall, cpu, network, units, lag, outputs = [], [], [], [], [], []
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for t in range(0, len(trial), chunk):
        samples = trial[t : t + chunk]
        windows, done = predictor.n_windows, predictor.n_units
        start, cpu_start = clock(), cpu_clock()
        out = predictor.update(samples)
        cpu.append((cpu_clock() - cpu_start) / 1e6)
        wall.append((clock() - start) / 1e6)
        network.append(predictor.n_windows > windows)
        units.append(predictor.n_units > done)
        if predictor.n_emitted:
            lag.append(predictor.pending)
        outputs.append(out.emg)
    start = clock()
    outputs.append(predictor.finish().emg)
    finish_ms = (clock() - start) / 1e6
    return {
        "wall": np.asarray(wall),
        "cpu": np.asarray(cpu),
        "network": np.asarray(network),
        "units": np.asarray(units),
        "lag": max(lag),
        "emg": np.concatenate(outputs),
        "finish": finish_ms,
    }


def summary(times: np.ndarray) -> str:
    if len(times) == 0:
        return "none"
    return (
        f"mean {times.mean():.3f}  p99 {np.percentile(times, 99):.3f}  max {times.max():.3f} ms"
        f"  (n={len(times)})"
    )


def report(predictor, trial, chunk: int, repeats: int, reference: np.ndarray, whole=None) -> None:
    """Stream ``trial`` ``repeats`` times in chunks of ``chunk`` and print the figures.

    ``whole``: offline predict of the whole trial with the physics, to say how far the spans'
    correction is from the whole trial's.
    """
    runs = [stream(predictor, trial, chunk) for _ in range(repeats)]
    joined = {k: np.concatenate([r[k] for r in runs]) for k in ("wall", "cpu", "network", "units")}
    network = joined["network"]
    correction = joined["units"] & ~network
    budget = chunk * BUDGET_MS
    for clock in ("wall", "cpu"):
        times = joined[clock]
        slowest = np.sort(times)[-max(1, len(times) // 100) :]
        rows = [("all updates", times), ("network updates", times[network])]
        if predictor.units_per_update:
            rows += [("correction updates", times[correction])] if predictor._physics else []
            rows += [("idle updates", times[~joined["units"]])]
        else:
            rows += [("other updates", times[~network])]
        rows += [("slowest 1 %", slowest)] if predictor.units_per_update else []
        for k, (label, values) in enumerate(rows):
            head = ("  wall  " if clock == "wall" else "  CPU   ") if k == 0 else "        "
            print(f"{head}{label:<20} {summary(values)}")
    throughput = len(trial) * repeats / (joined["wall"].sum() / 1e3)
    difference = max(float(np.abs(r["emg"] - reference).max()) for r in runs)
    print(f"  finish (wall)          {np.mean([r['finish'] for r in runs]):.3f} ms")
    print(
        f"  throughput {throughput:,.0f} samples/s; budget used: mean "
        f"{joined['wall'].mean() / budget:.1%}, p99 "
        f"{np.percentile(joined['wall'], 99) / budget:.1%}, max {joined['wall'].max() / budget:.1%}"
    )
    print(
        f"  lag: largest {max(r['lag'] for r in runs)} samples behind once outputs began "
        f"(latency {predictor.latency}, first output by {predictor.startup})"
    )
    print(f"  max |streamed - offline reference| = {difference:.2e}")
    if whole is not None:
        apart = np.abs(runs[0]["emg"] - whole)
        print(
            f"  |streamed - offline predict of the whole trial|: mean {apart.mean():.4f}, "
            f"p99 {np.percentile(apart, 99):.4f}, max {apart.max():.4f} (EMG 0..1)"
        )


def unit_costs(predictor, trial) -> None:
    """CPU time of each kind of unit (one pass, each unit timed on its own)."""
    times: dict[int, list[float]] = defaultdict(list)
    original = streaming._Task

    class Timed(original):  # type: ignore[misc, valid-type]
        def __init__(self, steps) -> None:
            super().__init__(self._timed(steps))

        @staticmethod
        def _timed(steps):
            cost = next(steps)
            while True:
                yield cost
                start = time.thread_time_ns()
                try:
                    following = next(steps)
                except StopIteration:
                    times[cost].append((time.thread_time_ns() - start) / 1e6)
                    return
                times[cost].append((time.thread_time_ns() - start) / 1e6)
                cost = following

    streaming._Task = Timed
    try:
        stream(predictor, trial, 1)
    finally:
        streaming._Task = original
    names = {
        3: "networks; the torque linearised",
        2: "Gauss-Newton units of cost 2",
        1: "Gauss-Newton and set-up, cost 1",
    }
    for cost in sorted(times, reverse=True):
        print(f"    cost {cost}: {names.get(cost, '?'):<32} CPU {summary(np.asarray(times[cost]))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="load this saved NMMRegressor instead of fitting")
    parser.add_argument("--save", help="save the fitted NMMRegressor here")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--duration", type=float, default=60.0, help="streamed trial (s)")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the trial")
    args = parser.parse_args()

    with limit_threads(1):
        nmm, ensemble = estimators(args)
        trial = make_elbow_lifting(
            n_subjects=1,
            n_trials=1,
            duration=args.duration,
            random_state=1,
            cache=False,
            progress=False,
        ).X[0]
        network_alone = nmm.predict(trial[None], predict_physics="none")[0]
        predictor = StreamingPredictor(nmm, predict_physics="none")
        print(
            f"\nmodel: window {predictor.window}, stride {predictor.stride} (predict_overlap "
            f"{nmm.predict_overlap}), d_model {nmm.d_model}, {nmm.n_layers} layers"
        )
        print(f"trial: {len(trial)} samples at {nmm.rate:g} Hz; {args.repeats} passes each")
        with predictor:  # limit_threads(1) again, held for the whole stream
            threads = torch.get_num_threads()
            stream(predictor, trial[:500], 1)  # warm-up
            print("\n[one network, predict_physics='none']")
            for chunk in (1, 5):
                print(f"\n{chunk} sample(s) per update (budget {chunk * BUDGET_MS:g} ms):")
                report(predictor, trial, chunk, args.repeats, network_alone)
        cases = [
            ("one network", nmm, "torque"),
            ("ensemble of 3", ensemble, "none"),
            ("ensemble of 3", ensemble, "torque"),
        ]
        for name, estimator, physics in cases:
            members = getattr(estimator, "estimators_", [estimator])
            whole = estimator.predict(trial[None], predict_physics=physics)[0]
            reference = whole if physics == "none" else span_corrections(members, trial)
            predictor = StreamingPredictor(estimator, predict_physics=physics)
            print(
                f"\n[{name}, predict_physics={physics!r}] 1 sample per update (budget 10 ms); "
                f"units_per_update {predictor.units_per_update}"
            )
            with predictor:
                stream(predictor, trial[:500], 1)  # warm-up
                report(
                    predictor,
                    trial,
                    1,
                    args.repeats,
                    reference,
                    whole if physics != "none" else None,
                )
                print("  units of work (one more pass):")
                unit_costs(predictor, trial)
        # offline predict, for reference
        for physics in ("none", "torque"):
            rates = []
            for _ in range(args.repeats + 1):
                gc.collect()
                start = time.perf_counter()
                nmm.predict(trial[None], predict_physics=physics)
                rates.append(len(trial) / (time.perf_counter() - start))
            print(
                f"\noffline predict ({physics!r}): {np.median(rates[1:]):,.0f} steps/s (median "
                f"of {args.repeats}, one {len(trial)}-step sequence, one thread)"
            )
    info = machine_info()
    print(f"torch threads while streaming: {threads}")
    print("load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))


if __name__ == "__main__":
    main()
