"""Per-update latency of StreamingPredictor at 100 Hz, against the 10 ms real-time budget.

A default-size NMMRegressor (window 100, d_model 32, 2 layers, predict_overlap 0.25; trained
for 2 epochs only: the timing does not depend on training) streams a 60 s simulated trial
(6,000 samples) one sample per update (a 10 ms budget each) and in chunks of 5 (50 ms each),
on one torch/BLAS thread. Printed: per-update wall time (mean, p99, max) for all updates, for
the updates that ran the network and for the others, and the same in CPU time of the thread
(what the update costs when no other process takes the core; on a shared machine the wall
time's tail is other processes); throughput; the ratio of the wall time to the budget;
the largest difference from offline ``predict`` on the same trial; offline ``predict``'s
steps/s for reference; and the machine.

Run: ``python benchmarks/bench_streaming.py`` (about a minute; ``--model PATH`` loads a saved
estimator instead of fitting, ``--save PATH`` saves the fitted one).
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np
import torch

from deepemg import NMMRegressor
from deepemg.datasets import make_elbow_lifting
from deepemg.streaming import StreamingPredictor
from deepemg.threads import limit_threads, machine_info

BUDGET_MS = 10.0
"""One sample's period at 100 Hz."""


def estimator(args) -> NMMRegressor:
    if args.model:
        return NMMRegressor.load(args.model)
    data = make_elbow_lifting(
        n_subjects=1, n_trials=4, duration=5.0, random_state=0, cache=False, progress=False
    )
    start = time.perf_counter()
    nmm = NMMRegressor(max_epochs=args.epochs, predict_physics="none", random_state=0).fit(
        data.X, data.y
    )
    print(f"fit: {time.perf_counter() - start:.1f} s ({args.epochs} epochs, 4 x 5 s trials)")
    if args.save:
        nmm.save(args.save, overwrite=True)
    return nmm


def stream(predictor: StreamingPredictor, trial: np.ndarray, chunk: int):
    """Per-update wall and CPU times (ms), whether each ran the network, the EMG and
    finish's wall time."""
    predictor.reset()
    wall, cpu, ran, outputs = [], [], [], []
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for t in range(0, len(trial), chunk):
        samples = trial[t : t + chunk]
        windows = predictor.n_windows
        start, cpu_start = clock(), cpu_clock()
        out = predictor.update(samples)
        cpu.append((cpu_clock() - cpu_start) / 1e6)
        wall.append((clock() - start) / 1e6)
        ran.append(predictor.n_windows > windows)
        outputs.append(out.emg)
    start = clock()
    outputs.append(predictor.finish().emg)
    finish_ms = (clock() - start) / 1e6
    return np.asarray(wall), np.asarray(cpu), np.asarray(ran), np.concatenate(outputs), finish_ms


def summary(times: np.ndarray) -> str:
    if len(times) == 0:
        return "none"
    return (
        f"mean {times.mean():.3f}  p99 {np.percentile(times, 99):.3f}  max {times.max():.3f} ms"
        f"  (n={len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="load this saved NMMRegressor instead of fitting")
    parser.add_argument("--save", help="save the fitted NMMRegressor here")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--duration", type=float, default=60.0, help="streamed trial (s)")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the trial")
    args = parser.parse_args()

    with limit_threads(1):
        nmm = estimator(args)
        trial = make_elbow_lifting(
            n_subjects=1,
            n_trials=1,
            duration=args.duration,
            random_state=1,
            cache=False,
            progress=False,
        ).X[0]
        offline = nmm.predict(trial[None])[0]
        predictor = StreamingPredictor(nmm)
        print(
            f"\nmodel: window {predictor.window}, stride {predictor.stride} (predict_overlap "
            f"{nmm.predict_overlap}), d_model {nmm.d_model}, {nmm.n_layers} layers; latency "
            f"{predictor.latency} samples ({predictor.latency / nmm.rate:g} s)"
        )
        print(f"trial: {len(trial)} samples at {nmm.rate:g} Hz; {args.repeats} passes each")
        with predictor:  # limit_threads(1) again, held for the whole stream
            threads = torch.get_num_threads()
            stream(predictor, trial[:500], 1)  # warm-up
            for chunk in (1, 5):
                runs = [stream(predictor, trial, chunk) for _ in range(args.repeats)]
                times = np.concatenate([r[0] for r in runs])
                cpu = np.concatenate([r[1] for r in runs])
                ran = np.concatenate([r[2] for r in runs])
                difference = max(float(np.abs(r[3] - offline).max()) for r in runs)
                budget = chunk * BUDGET_MS
                throughput = len(trial) * args.repeats / (times.sum() / 1e3)
                print(f"\n{chunk} sample(s) per update (budget {budget:g} ms):")
                print(f"  wall  all updates      {summary(times)}")
                print(f"        network updates  {summary(times[ran])}")
                print(f"        other updates    {summary(times[~ran])}")
                print(f"  CPU   all updates      {summary(cpu)}")
                print(f"        network updates  {summary(cpu[ran])}")
                print(f"        other updates    {summary(cpu[~ran])}")
                print(f"  finish (wall)          {np.mean([r[4] for r in runs]):.3f} ms")
                print(
                    f"  throughput {throughput:,.0f} samples/s; budget used: mean "
                    f"{times.mean() / budget:.1%}, p99 {np.percentile(times, 99) / budget:.1%}, "
                    f"max {times.max() / budget:.1%}"
                )
                print(f"  max |streamed - offline predict| = {difference:.2e}")
        # offline predict, for reference
        rates = []
        for _ in range(args.repeats + 1):
            gc.collect()
            start = time.perf_counter()
            nmm.predict(trial[None])
            rates.append(len(trial) / (time.perf_counter() - start))
        print(
            f"\noffline predict: {np.median(rates[1:]):,.0f} steps/s (median of "
            f"{args.repeats}, one {len(trial)}-step sequence)"
        )
    info = machine_info()
    print(f"torch threads while streaming: {threads}")
    print("load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))


if __name__ == "__main__":
    main()
