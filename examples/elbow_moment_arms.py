"""Quickstart: the built-in elbow model, its moment arms, and the torque of lifting a load.

Builds deepemg's differentiable musculoskeletal model from the 7-muscle OpenSim elbow, prints
each muscle's moment arm over the range of motion, then lifts 0-6 kg through a 0-120 degree
flexion-extension and compares the torque that the muscles produce (with activations that
OpenSim's own muscles need) with OpenSim inverse dynamics.

Run: ``python examples/elbow_moment_arms.py`` (a few seconds). With ``--plot FILE.png`` it also
draws the moment arms (needs matplotlib).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from deepemg import opensim as bridge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="FILE.png", help="save a figure of the moment arms")
    args = parser.parse_args()

    model = bridge.elbow_model()
    print(
        f"Elbow model: {model.n_muscles} muscles, coordinate '{model.coordinate}' "
        f"{np.degrees(model.coordinate_range[0]):.0f}-{np.degrees(model.coordinate_range[1]):.0f}"
        " deg, geometry fitted to OpenSim "
        f"(max moment-arm error {1e3 * max(model.fit_report['max_moment_arm_error'].values()):.2f}"
        " mm)\n"
    )
    degrees = np.arange(0, 150, 15)
    arms = model.moment_arm(torch.tensor(np.radians(degrees))).numpy() * 100
    print("moment arm (cm)  " + " ".join(f"{m:>8}" for m in model.muscles))
    for deg, row in zip(degrees, arms, strict=True):
        print(f"  {deg:5.0f} deg     " + " ".join(f"{r:8.2f}" for r in row))

    t = np.linspace(0.0, 4.0, 201)
    w = 2 * np.pi / 4.0
    half = np.radians(60.0)
    angle, velocity, acceleration = (
        half * (1 - np.cos(w * t)),
        half * w * np.sin(w * t),
        half * w * w * np.cos(w * t),
    )
    print("\nLifting through 0-120 deg in 4 s: muscle torque vs OpenSim inverse dynamics")
    for load in (0.0, 2.0, 4.0, 6.0):
        opensim_model = bridge.load_model(bridge.ELBOW_MODEL_PATH)
        bridge.set_load_mass(opensim_model, load)
        pose = bridge.ModelPose(opensim_model, model.coordinate)
        tau_id = bridge.inverse_dynamics(pose, angle, velocity, acceleration)
        activation, _ = bridge.static_optimization(pose, model.muscles, angle, velocity, tau_id)
        torque = model.joint_torque(
            torch.tensor(activation), torch.tensor(angle), torch.tensor(velocity)
        ).numpy()
        torch_id = model.inverse_dynamics(
            *(torch.tensor(a) for a in (angle, velocity, acceleration)), load
        )
        bra = activation[:, model.muscles.index("BRA")].max()
        print(
            f"  {load:.0f} kg: peak torque {tau_id.max():5.2f} N·m, muscle torque RMS error "
            f"{np.sqrt(np.mean((torque - tau_id) ** 2)):.4f} N·m, torch inverse dynamics "
            f"error {np.abs(torch_id.numpy() - tau_id).max():.1e} N·m, peak BRA activation "
            f"{bra:.2f}"
        )

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        grid = np.linspace(*model.coordinate_range, 300)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(np.degrees(grid), model.moment_arm(torch.tensor(grid)).numpy() * 100)
        ax.legend(model.muscles, ncol=2, fontsize=8)
        ax.set(
            xlabel="elbow flexion (deg)",
            ylabel="moment arm (cm)",
            title="Elbow moment arms (fitted to OpenSim)",
        )
        ax.axhline(0, color="k", lw=0.5)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"\nfigure written to {args.plot}")


if __name__ == "__main__":
    main()
