"""Benchmark: the torch musculoskeletal model against OpenSim on one long elbow trajectory.

What it measures
----------------
On a smooth trajectory of ``--steps`` frames at 100 Hz (elbow angle between about 10 and 130
degrees, its analytic velocity, smooth random excitations in [0, 0.6] for the 7 muscles of
``deepemg.opensim.elbow_model()``):

* torch: wall time (median of ``--repeats`` runs after warm-up) of the forward pass
  ``model.joint_torque(model.activation(excitation, rate=100.0), angle, velocity)`` and the
  backward pass of ``torque.pow(2).mean()`` to the excitation, in float32 and float64;
* OpenSim 4.6 (through ``deepemg.opensim``): wall time, measured once, to compute the same
  torques from the torch activations, ``sum_j r_j(q) F_j(a, q, qdot)``, with muscle forces
  from ``muscle_tendon_forces`` and moment arms from ``sample_path_geometry``. OpenSim gives
  the forward pass only (no gradient).

It prints the speed-up (OpenSim time / torch time), the torch-vs-OpenSim torque difference as a
sanity check, peak memory, the machine and the versions, and exits with status 1 when the
float32 speed-up is below 100x.

Run it from the repository root::

    python benchmarks/bench_physics.py [--steps 10000] [--repeats 20] [--threads N]

Torch's multi-threaded kernels are sensitive to other load on the machine: when other processes
compete for the cores, ``--threads 1`` gives steadier torch timings.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np
import opensim
import torch
from scipy.signal import butter, filtfilt

import deepemg.opensim as bridge

RATE = 100.0  # Hz
TARGET_SPEEDUP = 100.0
WARMUP = 2


def make_trajectory(n_steps: int, n_muscles: int, seed: int = 0):
    """Angle (rad), analytic velocity (rad/s) and excitations in [0, 0.6], all float64."""
    t = np.arange(n_steps) / RATE
    mid, a1, a2 = np.radians(70.0), np.radians(40.0), np.radians(20.0)
    w1, w2 = 2 * np.pi * 0.25, 2 * np.pi * 0.9
    angle = mid + a1 * np.sin(w1 * t) + a2 * np.sin(w2 * t + 0.7)
    velocity = a1 * w1 * np.cos(w1 * t) + a2 * w2 * np.cos(w2 * t + 0.7)
    rng = np.random.default_rng(seed)
    b, a = butter(2, 2.0 / (RATE / 2))  # 2 Hz low-pass
    noise = filtfilt(b, a, rng.standard_normal((n_steps, n_muscles)), axis=0)
    low, high = noise.min(axis=0), noise.max(axis=0)
    excitation = 0.6 * (noise - low) / (high - low)
    return angle, velocity, np.clip(excitation, 0.0, 0.6)


def torch_run(model, excitation, angle, velocity):
    """One forward + backward pass; returns the torque (detached) and the activation."""
    excitation.grad = None
    activation = model.activation(excitation, rate=RATE)
    torque = model.joint_torque(activation, angle, velocity)
    torque.pow(2).mean().backward()
    return torque.detach(), activation.detach()


def time_torch(model, excitation_np, angle_np, velocity_np, dtype, repeats):
    excitation = torch.tensor(excitation_np, dtype=dtype, requires_grad=True)
    angle = torch.tensor(angle_np, dtype=dtype)
    velocity = torch.tensor(velocity_np, dtype=dtype)
    for _ in range(WARMUP):
        torch_run(model, excitation, angle, velocity)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torque, activation = torch_run(model, excitation, angle, velocity)
        times.append(time.perf_counter() - start)
    if not bool(torch.isfinite(excitation.grad).all()):
        raise RuntimeError(f"Non-finite gradient in {dtype}.")
    return statistics.median(times), min(times), torque, activation


def opensim_torque(muscles, activation, angle, velocity):
    """Torque from OpenSim (forward only); returns (torque, seconds) for forces + moment arms."""
    osim_model = bridge.load_model(bridge.ELBOW_MODEL_PATH)
    bridge.use_rigid_tendon_degroote_muscles(osim_model)  # no-op for the built-in elbow
    pose = bridge.ModelPose(osim_model, "r_elbow_flex")
    start = time.perf_counter()
    forces = bridge.muscle_tendon_forces(pose, muscles, activation, angle, velocity)
    _, moment_arms = bridge.sample_path_geometry(pose, muscles, angle)
    torque = (moment_arms * forces).sum(axis=1)
    return torque, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10000, help="trajectory frames (100 Hz)")
    parser.add_argument("--repeats", type=int, default=20, help="timed torch runs (median)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's own choice, left unchanged)",
    )
    args = parser.parse_args(argv)
    if args.steps < 2 or args.repeats < 1:
        parser.error("--steps must be >= 2 and --repeats >= 1")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    model = bridge.elbow_model()
    muscles = model.muscles
    angle, velocity, excitation = make_trajectory(args.steps, len(muscles))
    low, high = model.coordinate_range
    if angle.min() < low or angle.max() > high:
        raise RuntimeError("The trajectory leaves the coordinate range.")

    results = {}
    for dtype in (torch.float32, torch.float64):
        results[dtype] = time_torch(model, excitation, angle, velocity, dtype, args.repeats)
    torque64, activation64 = results[torch.float64][2], results[torch.float64][3]

    torque_os, seconds_os = opensim_torque(
        muscles, activation64.numpy().astype(np.float64), angle, velocity
    )
    diff = torque64.numpy() - torque_os
    torque_range = float(torque_os.max() - torque_os.min())
    max_diff = float(np.abs(diff).max())
    rms_diff = float(np.sqrt(np.mean(diff**2)))
    diff32 = results[torch.float32][2].numpy().astype(np.float64) - torque_os

    # ru_maxrss is in KiB on Linux, bytes on macOS
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10

    print("deepemg physics benchmark: torch model vs OpenSim, elbow")
    print(f"  steps x muscles          : {args.steps} x {len(muscles)} at {RATE:g} Hz")
    print(
        f"  trajectory               : angle {np.degrees(angle.min()):.1f}.."
        f"{np.degrees(angle.max()):.1f} deg, |velocity| <= {np.abs(velocity).max():.2f} rad/s, "
        f"excitation {excitation.min():.2f}..{excitation.max():.2f}"
    )
    print(f"  torch threads            : {torch.get_num_threads()}")
    print(f"  torch repeats            : {args.repeats} (after {WARMUP} warm-up runs)")
    for dtype, name in ((torch.float32, "float32"), (torch.float64, "float64")):
        median, best, _, _ = results[dtype]
        print(
            f"  torch fwd+bwd {name}    : {1e3 * median:8.2f} ms median ({1e3 * best:.2f} ms best)"
        )
    print(f"  OpenSim forward only     : {seconds_os:8.3f} s (forces + moment arms, no gradient)")
    ratios = {}
    for dtype, name in ((torch.float32, "float32"), (torch.float64, "float64")):
        ratios[dtype] = seconds_os / results[dtype][0]
        print(
            f"  speed-up OpenSim/{name} : {ratios[dtype]:8.0f} x "
            "(torch forward+backward vs OpenSim forward)"
        )
    print(
        f"  |torch64 - OpenSim|      : max {max_diff:.4g} N·m, RMS {rms_diff:.4g} N·m "
        f"(torque range {torque_range:.4g} N·m; max = {100 * max_diff / torque_range:.3g}%)"
    )
    print(
        f"  |torch32 - OpenSim|      : max {np.abs(diff32).max():.4g} N·m, "
        f"RMS {np.sqrt(np.mean(diff32**2)):.4g} N·m"
    )
    print(f"  peak memory (ru_maxrss)  : {peak_mb:.0f} MB")
    machine = platform.processor() or platform.machine()
    print(f"  machine                  : {machine}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(
        f"  versions                 : torch {torch.__version__}, opensim {opensim.__version__}, "
        f"numpy {np.__version__}, python {platform.python_version()}"
    )

    if ratios[torch.float32] < TARGET_SPEEDUP:
        print(
            f"FAIL: float32 speed-up {ratios[torch.float32]:.0f}x is below the "
            f"{TARGET_SPEEDUP:.0f}x target."
        )
        return 1
    print(f"OK: float32 speed-up >= {TARGET_SPEEDUP:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
