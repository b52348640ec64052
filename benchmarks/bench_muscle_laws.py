"""Benchmark: forward + backward time of every registered muscle law, against the rigid DGF law.

What it measures
----------------
For each law of ``deepemg.physics.MUSCLE_LAWS`` (the rigid-tendon DeGrooteFregly2016 law first,
as the reference, in the same run), on a batch shaped like training's (``--batch`` sequences x
``--frames`` frames x the 7 elbow muscles, float32 by default):

* forward: ``law.force(activation, length, velocity, **parameters)``;
* forward + backward: the same and ``force.sum().backward()`` to the activation, the lengths,
  the velocities and every per-muscle parameter (as the subject parameters need).

Each is the median of ``--repeats`` runs after two warm-up runs, each run of a law followed by
one of the rigid DeGrooteFregly law, whose median in that pairing is the ratio's denominator
(the ratio stays steady when other work on a shared machine comes and goes). The per-muscle
parameters are the built-in elbow's, read by ``deepemg.opensim.build_model`` from the elbow file
with its muscles made of the law's OpenSim class (``use_thelen_muscles`` for Thelen2003Muscle,
``use_millard_muscles`` for Millard2012EquilibriumMuscle when deepemg has it); a law whose
class cannot be made is reported as skipped. The lengths and velocities are the elbow's on a
flexion-extension motion (10-130 degrees, up to 3.3 rad/s), the activations uniform in
[0.02, 1].

Run it from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/bench_muscle_laws.py [--batch 32] [--frames 500]
        [--repeats 20] [--dtype float32] [--out docs/results/muscle_laws.txt]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Report

import deepemg.opensim as bridge
from deepemg.physics import MUSCLE_LAWS

REFERENCE = "rigid_tendon_degroote_fregly"
CONVERSIONS = {
    "Thelen2003Muscle": "use_thelen_muscles",
    "Millard2012EquilibriumMuscle": "use_millard_muscles",
}
"""OpenSim class -> the deepemg.opensim function that makes the elbow's muscles of it."""
WARMUP = 2


def elbow_file(opensim_class: str, folder: Path) -> Path | None:
    """The built-in elbow with muscles of ``opensim_class`` (None when deepemg cannot)."""
    if opensim_class == "DeGrooteFregly2016Muscle":
        return bridge.ELBOW_MODEL_PATH
    convert = getattr(bridge, CONVERSIONS.get(opensim_class, ""), None)
    if convert is None:
        return None
    model = bridge.load_model(bridge.ELBOW_MODEL_PATH)
    convert(model)
    path = folder / f"elbow_{opensim_class}.osim"
    model.printToXML(str(path))
    return path


def inputs(model, batch: int, frames: int, dtype, seed: int = 0):
    """Activation, musculotendon length (m) and lengthening velocity (m/s), (B, T, M)."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.linspace(0.0, 5.0, frames, dtype=torch.float64)
    phase = 2 * torch.pi * torch.rand(batch, 1, generator=generator, dtype=torch.float64)
    angle = np.radians(70.0) + np.radians(60.0) * torch.sin(2 * torch.pi * 0.5 * t + phase)
    velocity = np.radians(60.0) * 2 * torch.pi * 0.5 * torch.cos(2 * torch.pi * 0.5 * t + phase)
    with torch.no_grad():
        length = model.musculotendon_length(angle)
        lengthening = -model.moment_arm(angle) * velocity.unsqueeze(-1)
    activation = 0.02 + 0.98 * torch.rand(length.shape, generator=generator, dtype=torch.float64)
    return activation.to(dtype), length.to(dtype), lengthening.to(dtype)


def runner(law, model, tensors):
    """A function ``run(backward) -> ms`` of one forward (+ backward) pass of ``law``."""
    dtype = tensors[0].dtype
    parameters = {n: getattr(model, n).to(dtype) for n in law.parameter_names}

    def run(backward: bool) -> float:
        leaves = [x.detach().requires_grad_(backward) for x in tensors]
        values = {n: v.detach().requires_grad_(backward) for n, v in parameters.items()}
        start = time.perf_counter()
        force = law.force(*leaves, **values)
        if backward:
            force.sum().backward()
        return 1e3 * (time.perf_counter() - start)

    return run


def time_paired(run, reference, repeats: int) -> dict:
    """Median times (ms) of ``run`` and of the ``reference`` run alternately with it.

    Alternating the two makes their ratio steady when other work on the machine comes and goes.
    """
    times = {}
    for backward in (False, True):
        for _ in range(WARMUP):
            run(backward), reference(backward)
        pairs = [(run(backward), reference(backward)) for _ in range(repeats)]
        times[backward] = tuple(statistics.median(t) for t in zip(*pairs, strict=True))
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--out", default=None, help="results file (e.g. docs/results/...)")
    args = parser.parse_args(argv)
    report = Report()
    info = report.machine()
    dtype = getattr(torch, args.dtype)
    names = [REFERENCE, *sorted(set(MUSCLE_LAWS) - {REFERENCE})]
    report.say(
        f"muscle laws, forward and forward + backward, {args.batch} x {args.frames} x 7 "
        f"{args.dtype}, median of {args.repeats} (torch threads {torch.get_num_threads()})"
    )
    report.say(
        f"{'law':36s} {'forward ms':>11s} {'x rigid':>8s} {'fwd+bwd ms':>11s} {'x rigid':>8s}"
    )
    reference = None
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            law = MUSCLE_LAWS[name]
            path = elbow_file(law.opensim_class, Path(folder))
            if path is None:
                report.say(f"{name:36s} skipped: no conversion to {law.opensim_class}")
                continue
            model = bridge.build_model(path, "r_elbow_flex", joint="elbow", muscle_law=law)
            run = runner(law, model, inputs(model, args.batch, args.frames, dtype))
            reference = reference or run
            times = time_paired(run, reference, args.repeats)
            (forward, forward_ref), (both, both_ref) = times[False], times[True]
            report.say(
                f"{name:36s} {forward:11.2f} {forward / forward_ref:8.1f} {both:11.2f} "
                f"{both / both_ref:8.1f}"
            )
    report.say(
        "x rigid: median time over that of the rigid-tendon DeGrooteFregly2016 law, timed "
        "alternately with each law in the same run (the machine is shared)"
    )
    report.footer(info)
    if args.out:
        report.write(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
