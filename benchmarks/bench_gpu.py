"""Fit and prediction-time correction on a GPU against the CPU, in one run.

Two steps, because the machine with the GPU may have no OpenSim (deepemg builds its muscle
model and simulates subjects with OpenSim):

    python benchmarks/bench_gpu.py prepare --out .gpu     # here: data + muscle model
    python benchmarks/bench_gpu.py run --data .gpu        # there: times CPU and CUDA

``prepare`` simulates one subject (12 lifts of 5 s, ``make_elbow_lifting(random_state=0)``),
writes ``X``, ``y`` to ``data.npz`` and the built elbow model to ``physics.pt`` (a
``torch.save`` of the module: a pickle this script wrote itself, read back only by ``run``).

``run`` fits ``NMMRegressor(model=physics, random_state=0)`` with the default settings on
``device="cpu"`` (one thread, the package's default for a fit) and on ``device="cuda"``,
then predicts the 12 lifts with the default prediction-time correction
(``predict_physics="torque"``) and with the network alone on each device, and prints the
times, the ratios and how far the CUDA predictions are from the CPU ones. Where OpenSim is
not installed, ``run`` registers a placeholder ``opensim`` module that fails on any use (the
fit and prediction call no OpenSim function once the muscle model is built). Figures are
written to ``--json`` if given.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import types
from pathlib import Path

import numpy as np


def prepare(out: Path) -> None:
    import torch

    from deepemg.datasets import make_elbow_lifting
    from deepemg.opensim import elbow_model

    out.mkdir(parents=True, exist_ok=True)
    data = make_elbow_lifting(
        n_subjects=1, n_trials=12, duration=5.0, random_state=0, progress=False
    )
    np.savez(out / "data.npz", X=data.X, y=data.y)
    torch.save(elbow_model(), out / "physics.pt")
    print(f"wrote {out}/data.npz {data.X.shape} and {out}/physics.pt")


def _placeholder_opensim() -> None:
    try:
        import opensim  # noqa: F401
    except ImportError:
        module = types.ModuleType("opensim")

        def refuse(name):
            raise AttributeError(f"opensim.{name}: OpenSim is not installed on this machine")

        module.__getattr__ = refuse
        sys.modules["opensim"] = module


def _timed(function, device: str):
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = function()
    if device == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def run(folder: Path, epochs: int | None, json_path: Path | None) -> dict:
    _placeholder_opensim()
    import torch

    from deepemg import NMMRegressor

    arrays = np.load(folder / "data.npz")
    X, y = arrays["X"], arrays["y"]
    physics = torch.load(folder / "physics.pt", weights_only=False)  # written by prepare
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    settings = {} if epochs is None else {"max_epochs": epochs}
    figures = {
        "machine": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "data": f"1 subject, {X.shape[0]} lifts x {X.shape[1]} steps (100 Hz)",
        "steps": int(X.shape[0] * X.shape[1]),
    }
    predictions = {}
    for device in devices:
        nmm = NMMRegressor(model=physics, device=device, random_state=0, **settings)
        if device == "cuda":  # CUDA's start-up (context, kernels) is not the fit's cost
            NMMRegressor(model=physics, device=device, max_epochs=1, random_state=0).fit(
                X[:2], y[:2]
            )
        _, fit_s = _timed(lambda nmm=nmm: nmm.fit(X, y), device)
        for mode in ("torque", "none"):
            nmm.set_params(predict_physics=mode)
            nmm.predict(X[:1])  # warm-up
            emg, predict_s = _timed(lambda nmm=nmm: nmm.predict(X), device)
            predictions[device, mode] = emg
            figures[f"{device}_predict_{mode}_s"] = predict_s
            figures[f"{device}_predict_{mode}_steps_per_s"] = figures["steps"] / predict_s
        figures[f"{device}_fit_s"] = fit_s
        figures[f"{device}_epochs"] = len(nmm.history_)
        print(
            f"{device:>4}: fit {fit_s:7.1f} s ({len(nmm.history_)} epochs); predict with "
            f"correction {figures[f'{device}_predict_torque_s']:6.2f} s "
            f"({figures[f'{device}_predict_torque_steps_per_s']:,.0f} steps/s), network "
            f"alone {figures[f'{device}_predict_none_s']:6.3f} s",
            flush=True,
        )
    if "cuda" in devices:
        for key in ("fit_s", "predict_torque_s", "predict_none_s"):
            figures[f"cuda_over_cpu_{key}"] = figures[f"cuda_{key}"] / figures[f"cpu_{key}"]
        for mode in ("torque", "none"):
            gap = np.abs(predictions["cuda", mode] - predictions["cpu", mode]).max()
            figures[f"cuda_vs_cpu_max_abs_emg_{mode}"] = float(gap)
        print(
            "CUDA / CPU time: fit {cuda_over_cpu_fit_s:.2f}, correction "
            "{cuda_over_cpu_predict_torque_s:.2f}, network alone "
            "{cuda_over_cpu_predict_none_s:.2f}; largest EMG difference (separate fits: "
            "different float rounding) {cuda_vs_cpu_max_abs_emg_torque:.3f}".format(**figures)
        )
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=1))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    first = commands.add_parser("prepare", help="simulate the data and build the model")
    first.add_argument("--out", type=Path, default=Path(".gpu"))
    second = commands.add_parser("run", help="time fit and predict on the CPU and CUDA")
    second.add_argument("--data", type=Path, default=Path(".gpu"))
    second.add_argument("--epochs", type=int, default=None, help="default: the estimator's")
    second.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.out)
    else:
        run(args.data, args.epochs, args.json)


if __name__ == "__main__":
    main()
