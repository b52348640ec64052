"""Where a fit's time goes: a profile of one NMMRegressor fit, attention with and without dropout.

Fits ``NMMRegressor(random_state=0, n_threads=1)`` (default network, 60 epochs) on one simulated
subject's 12 lifts of 5 s (``make_elbow_lifting(n_subjects=1, n_trials=12, duration=5.0,
random_state=0)``) under ``cProfile`` and prints the fit's wall time and the time of its parts
(the network's forward pass, its attention kernel, the muscle model's torque, the backward
pass, the optimiser's step, the net's initialisation), then times
``scaled_dot_product_attention`` at the fit's shapes (batch 8, 4 heads, window 100, 8 per head)
with the training's attention dropout (0.1) and without, in the same run. Issue 20, item 3
("profile first").

    python benchmarks/profile_fit.py [--epochs 60]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time

PARTS = {
    "network forward (nmm_module.emg)": ("nmm_module.py", "emg"),
    "  of which attention kernel (scaled_dot_product_attention)": (
        "~",
        "<built-in method torch._C._nn.scaled_dot_product_attention>",
    ),
    "muscle model torque (nmm_module.torque)": ("nmm_module.py", "torque"),
    "backward pass (autograd engine)": (
        "~",
        "<method 'run_backward' of 'torch._C._EngineBase' objects>",
    ),
    "train steps (skorch runs forward, loss and backward inside Adam's step)": ("adam.py", "step"),
    "net initialisation (imports, optimiser)": ("net.py", "initialize"),
}


def _cumulative(stats: pstats.Stats, file_end: str, name: str) -> float:
    """Cumulative seconds of the functions called ``name`` in files ending with ``file_end``."""
    total = 0.0
    for (file, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
        if function == name and file.endswith(file_end):
            total += row[3]
    return total


def _attention_ms(dropout: float, repeats: int = 200) -> float:
    import torch

    torch.manual_seed(0)
    q, k, v = (torch.randn(8, 4, 100, 8, requires_grad=True) for _ in range(3))
    attention = torch.nn.functional.scaled_dot_product_attention

    def step():
        attention(q, k, v, dropout_p=dropout).sum().backward()

    for _ in range(10):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()

    import torch

    from deepemg import NMMRegressor
    from deepemg.datasets import make_elbow_lifting
    from deepemg.threads import machine_info

    torch.set_num_threads(1)
    print(json.dumps(machine_info()))
    data = make_elbow_lifting(
        n_subjects=1, n_trials=12, duration=5.0, random_state=0, progress=False, cache=False
    )
    nmm = NMMRegressor(random_state=0, n_threads=1, max_epochs=args.epochs)
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    nmm.fit(data.X, data.y, subject_ids=data.groups)
    profile.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(profile)
    print(f"fit: {wall:.1f} s wall ({args.epochs} epochs, 12 lifts of 5 s, one thread)")
    for label, (file_end, name) in PARTS.items():
        seconds = _cumulative(stats, file_end, name)
        print(f"  {label:<72}{seconds:>7.1f} s {100 * seconds / wall:>5.0f} %")
    with_dropout, without = _attention_ms(0.1), _attention_ms(0.0)
    print(
        f"attention forward + backward at the fit's shapes: {with_dropout:.2f} ms with dropout "
        f"0.1, {without:.2f} ms without ({with_dropout / without:.1f}x): drawing the dropout "
        "mask of every attention weight is most of it"
    )


if __name__ == "__main__":
    main()
