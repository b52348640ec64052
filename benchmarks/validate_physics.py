"""Accuracy of deepemg's torch physics against OpenSim 4.6, printed as a table.

Measures, for the built-in 7-muscle elbow and for Arm26 (shoulder locked at 0, a load body
welded 0.30 m distal of the elbow):

* the DeGroote-Fregly curves against ``DeGrooteFregly2016Muscle.calc*`` on random points;
* musculotendon length and moment arm against OpenSim on 2001 angles over the whole range;
* muscle torque, driven by the activations of a per-frame passive-aware static optimisation
  with OpenSim's own muscles, against OpenSim inverse dynamics (RMS over a 0-120 degree
  flexion-extension in 4 s at 0, 2, 4, 6 kg);
* rigid-body inverse dynamics against OpenSim's on random states.

Run: ``python benchmarks/validate_physics.py`` (about 20 s on a 2-core CPU).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import opensim as osim
import torch

from deepemg import opensim as bridge
from deepemg.physics import curves

ROOT = Path(__file__).resolve().parents[1]
ARM26 = ROOT / "tests" / "data" / "arm26.osim"
LOADS = (0.0, 2.0, 4.0, 6.0)


def curve_errors() -> dict[str, float]:
    rng = np.random.default_rng(0)
    muscle = osim.DeGrooteFregly2016Muscle()
    cases = {
        "fL": (curves.active_force_length, muscle.calcActiveForceLengthMultiplier, (0.3, 1.9)),
        "fPE": (curves.passive_force_length, muscle.calcPassiveForceMultiplier, (0.3, 1.9)),
        "fV": (curves.force_velocity, muscle.calcForceVelocityMultiplier, (-1.0, 1.0)),
        "fT": (curves.tendon_force_length, muscle.calcTendonForceMultiplier, (0.98, 1.08)),
    }
    errors = {}
    for name, (ours, theirs, (low, high)) in cases.items():
        x = rng.uniform(low, high, 1000)
        expected = np.array([theirs(float(v)) for v in x])
        errors[name] = float(np.abs(ours(torch.tensor(x)).numpy() - expected).max())
    return errors


def flexion_extension(n_frames=401, period=4.0, amplitude_deg=120.0):
    amplitude = np.radians(amplitude_deg)
    t = np.linspace(0.0, period, n_frames)
    w = 2 * np.pi / period
    return (
        amplitude / 2 * (1 - np.cos(w * t)),
        amplitude / 2 * w * np.sin(w * t),
        amplitude / 2 * w * w * np.cos(w * t),
    )


def pose_of(path, locked, load=None):
    model = bridge.load_model(path)
    bridge.use_rigid_tendon_degroote_muscles(model)
    if load is not None:
        bridge.set_load_mass(model, load)
    return bridge.ModelPose(model, "r_elbow_flex", locked)


def validate(name, path, locked) -> None:
    start = time.perf_counter()
    model = bridge.build_model(path, "r_elbow_flex", locked)
    built = time.perf_counter() - start
    pose = pose_of(path, locked)
    angles = np.linspace(*model.coordinate_range, 2001)
    lengths, arms = bridge.sample_path_geometry(pose, model.muscles, angles)
    q = torch.tensor(angles)
    length_error = np.abs(model.musculotendon_length(q).numpy() - lengths).max(axis=0)
    arm_error = np.abs(model.moment_arm(q).numpy() - arms).max(axis=0)
    print(
        f"\n== {name}: {model.n_muscles} muscles {model.muscles}, built in {built:.2f} s "
        f"({model.fit_report['n_knots']} knots)"
    )
    print(
        "  max |length - OpenSim| (mm):     "
        + "  ".join(f"{m} {1e3 * e:.4f}" for m, e in zip(model.muscles, length_error, strict=True))
    )
    print(
        "  max |moment arm - OpenSim| (mm): "
        + "  ".join(f"{m} {1e3 * e:.4f}" for m, e in zip(model.muscles, arm_error, strict=True))
    )
    angle, velocity, acceleration = flexion_extension()
    rng = np.random.default_rng(1)
    states = [
        rng.uniform(*model.coordinate_range, 200),
        rng.uniform(-6, 6, 200),
        rng.uniform(-40, 40, 200),
    ]
    for load in LOADS:
        pose = pose_of(path, locked, load)
        tau_id = bridge.inverse_dynamics(pose, angle, velocity, acceleration)
        activation, residual = bridge.static_optimization(
            pose, model.muscles, angle, velocity, tau_id
        )
        torque = model.joint_torque(
            torch.tensor(activation), torch.tensor(angle), torch.tensor(velocity)
        ).numpy()
        rms = np.sqrt(np.mean((torque - tau_id) ** 2))
        relative = rms / np.sqrt(np.mean(tau_id**2))
        id_expected = bridge.inverse_dynamics(pose, *states)
        id_error = np.abs(
            model.inverse_dynamics(*(torch.tensor(s) for s in states), load_mass=load).numpy()
            - id_expected
        ).max()
        print(
            f"  {load:.0f} kg: peak ID torque {tau_id.max():6.2f} N·m | muscle torque vs ID: "
            f"RMS {rms:.4f} N·m = {100 * relative:.3f}% (target < 2%), SO residual "
            f"{np.abs(residual).max():.1e} | inverse_dynamics max error {id_error:.1e} N·m "
            "(target < 0.05)"
        )


def main() -> None:
    print(f"deepemg physics vs OpenSim {osim.GetVersion()}, torch {torch.__version__}")
    print(
        "curve max |torch - OpenSim| on 1000 random points (target < 1e-10): "
        + ", ".join(f"{k} {v:.1e}" for k, v in curve_errors().items())
    )
    validate("elbow (built-in)", bridge.ELBOW_MODEL_PATH, None)
    with tempfile.TemporaryDirectory() as folder:
        model = bridge.load_model(ARM26)
        bridge.add_load_body(model, "r_ulna_radius_hand", (0.0, -0.30, 0.0))
        path = Path(folder) / "arm26_load.osim"
        model.printToXML(str(path))
        validate("Arm26 (shoulder locked at 0, load 0.30 m distal)", path, {"r_shoulder_elev": 0.0})


if __name__ == "__main__":
    main()
