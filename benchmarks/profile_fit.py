"""Where a fit's time goes, before and after: one NMMRegressor fit, old and new settings.

Fits ``NMMRegressor(random_state=0)`` (its default network, one thread) on one simulated
subject's 12 lifts of 5 s (``make_elbow_lifting(n_subjects=1, n_trials=12, duration=5.0,
random_state=0)``) under ``cProfile``, once with the settings of deepemg 0.5 (``--old``) and
once with today's (``--new``), in the same run, and prints each fit's wall time, the ratio, and
the time of its parts: the network's forward pass and its attention kernel, the muscle
model's torque, the backward pass, the optimiser's own work, the Python between the batches
(the skorch loop, the data loader, the loss bookkeeping). Issue 20, item 3 ("profile first,
say where the time went before and after").

A settings string is ``name=value`` pairs joined by commas: ``NMMRegressor`` parameters
(``max_epochs``, ``batch_size``, ``lr``, ``dropout`` ...) and two settings of the training
that are no estimator parameter: ``attention_dropout`` (dropout on the attention weights,
0.1 up to 0.5, none since) and ``foreach`` (the optimiser's one call for all parameters
per step, 0 up to 0.5, 1 since). A warm-up fit first pays the one-time imports (PyTorch's
``torch._dynamo``, which the first optimiser of a process imports), printed apart.

    python benchmarks/profile_fit.py [--old SETTINGS] [--new SETTINGS] [--repeats 1]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import time

OLD = "attention_dropout=0.1,foreach=0,max_epochs=60,batch_size=8,lr=0.003"
"""deepemg 0.5's training (its defaults, attention dropout as its dropout)."""

NEW = "attention_dropout=0,foreach=1"
"""Today's: the estimator's defaults and the network's."""

PARTS = {
    "network forward (nmm_module.emg)": [("nmm_module.py", "emg")],
    "  of which attention kernel": [
        ("~", "<built-in method torch._C._nn.scaled_dot_product_attention>")
    ],
    "muscle model torque (nmm_module.torque)": [("nmm_module.py", "torque")],
    "loss (NMMNet.get_loss)": [("nmm_module.py", "get_loss")],
    "backward pass (autograd engine)": [
        ("~", "<method 'run_backward' of 'torch._C._EngineBase' objects>")
    ],
    "optimiser update (adam)": [
        ("adam.py", "_single_tensor_adam"),
        ("adam.py", "_multi_tensor_adam"),
    ],
    "training steps (forward, loss, backward, update)": [("net.py", "train_step")],
    "epochs (the steps and the Python between them)": [("net.py", "run_single_epoch")],
}


def _settings(text: str) -> dict:
    """``{"name": value}`` of ``"name=value,..."`` (numbers as int or float)."""
    out: dict = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, value = item.split("=", 1)
        number = float(value)
        out[name.strip()] = int(number) if number.is_integer() and "." not in value else number
    return out


@contextlib.contextmanager
def _training(attention_dropout: float, foreach: bool):
    """Fits in the block build their network with this attention dropout and this optimiser."""
    import torch

    from deepemg import training

    build, optimizer = training.build_module, training.optimizer_params

    def built(*args, **kwargs):
        module = build(*args, **kwargs)
        for layer in module.modules():
            if isinstance(layer, torch.nn.MultiheadAttention):
                layer.dropout = float(attention_dropout)
        return module

    def optimised(params):
        return {**optimizer(params), "optimizer__foreach": bool(foreach)}

    training.build_module, training.optimizer_params = built, optimised
    try:
        yield
    finally:
        training.build_module, training.optimizer_params = build, optimizer


def _cumulative(stats: pstats.Stats, places) -> float:
    """Cumulative seconds of the functions ``(file_end, name)`` of ``places``."""
    total = 0.0
    for (file, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
        if any(function == name and file.endswith(end) for end, name in places):
            total += row[3]
    return total


def _fit(data, settings: dict):
    """``(wall seconds, pstats.Stats, steps)`` of one profiled fit under ``settings``."""
    from deepemg import NMMRegressor

    settings = dict(settings)
    attention = settings.pop("attention_dropout", 0.0)
    foreach = settings.pop("foreach", 1)
    nmm = NMMRegressor(random_state=0, n_threads=1, **settings)
    profile = cProfile.Profile()
    with _training(attention, bool(foreach)):
        start = time.perf_counter()
        profile.enable()
        nmm.fit(data.X, data.y, subject_ids=data.groups)
        profile.disable()
        wall = time.perf_counter() - start
    steps = sum(len(epoch["batches"]) for epoch in nmm.history_)
    return wall, pstats.Stats(profile), steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default=OLD, help=f"settings before (default {OLD!r})")
    parser.add_argument("--new", default=NEW, help=f"settings after (default {NEW!r})")
    parser.add_argument("--repeats", type=int, default=1, help="fits of each, alternating")
    args = parser.parse_args()

    import torch

    from deepemg import NMMRegressor
    from deepemg.datasets import make_elbow_lifting
    from deepemg.threads import machine_info

    torch.set_num_threads(1)
    print(json.dumps(machine_info()))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    data = make_elbow_lifting(
        n_subjects=1, n_trials=12, duration=5.0, random_state=0, progress=False, cache=False
    )
    start = time.perf_counter()
    NMMRegressor(random_state=0, n_threads=1, max_epochs=1).fit(data.X, data.y)
    warm_up = time.perf_counter() - start
    print(f"warm-up fit of 1 epoch (the process's one-time imports): {warm_up:.1f} s")
    runs: dict = {"old": [], "new": []}
    for _ in range(max(args.repeats, 1)):
        for name in runs:
            runs[name].append(_fit(data, _settings(getattr(args, name))))
    best = {name: min(fits, key=lambda fit: fit[0]) for name, fits in runs.items()}
    for name, (wall, stats, steps) in best.items():
        walls = ", ".join(f"{fit[0]:.1f}" for fit in runs[name])
        print(
            f"\n{name} ({getattr(args, name)}): fit {wall:.1f} s wall (best of {walls}), "
            f"{steps} steps, {1e3 * wall / steps:.1f} ms a step"
        )
        for label, places in PARTS.items():
            seconds = _cumulative(stats, places)
            print(f"  {label:<52}{seconds:>7.1f} s {100 * seconds / wall:>5.0f} %")
    ratio = best["new"][0] / best["old"][0]
    print(f"\nnew / old fit wall: {ratio:.2f} ({1 / ratio:.1f}x faster)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
