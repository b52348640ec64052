"""Reconstruct deep-muscle EMG with the neural musculoskeletal model on one simulated subject.

Fits ``NMMRegressor`` on 8 trials of a simulated subject (brachialis and triceps medial head
unmeasured), predicts the 4 held-out trials from kinematics and load only, and compares the deep
muscles with their known truth and the muscle torque with OpenSim inverse dynamics.

Run: ``python examples/nmm_quickstart.py`` (about 20 s on 2 cores; ``--plot FILE.png`` draws
the deep muscles over time, with matplotlib).
"""

from __future__ import annotations

import argparse

import numpy as np

from deepemg import NMMRegressor
from deepemg.datasets import make_elbow_lifting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="FILE.png")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

    data = make_elbow_lifting(n_subjects=1, n_trials=12, random_state=0)
    train, test = np.arange(8), np.arange(8, 12)
    nmm = NMMRegressor(max_epochs=args.epochs, random_state=0, progress_bar=False)
    nmm.fit(data.X[train], data.y[train], subject_ids=data.groups[train])
    emg = nmm.predict(data.X[test])
    torque = nmm.predict_torque(data.X[test], data.groups[test])
    tau_id = data.X[test][..., data.channels.index("elbow_torque")]
    print(
        f"fit {len(train)} trials in {nmm.history_[-1, 'dur'] * len(nmm.history_):.0f} s; "
        f"last epoch: data {nmm.history_[-1, 'train_data_loss']:.4f}, physics "
        f"{nmm.history_[-1, 'train_physics_loss']:.4f}"
    )
    for muscle in data.deep_muscles:
        j = data.muscles.index(muscle)
        truth, guess = data.y_true[test][..., j].ravel(), emg[..., j].ravel()
        r = np.corrcoef(truth, guess)[0, 1]
        nrmse = np.sqrt(np.mean((truth - guess) ** 2)) / np.ptp(truth)
        print(f"  {muscle:7s} (never measured): r = {r:.2f}, NRMSE = {nrmse:.2f}")
    print(
        f"  torque vs inverse dynamics: NRMSE = "
        f"{np.sqrt(np.mean((torque - tau_id) ** 2)) / np.ptp(tau_id):.3f}"
    )

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
        for ax, muscle in zip(axes, data.deep_muscles, strict=False):
            j = data.muscles.index(muscle)
            ax.plot(data.time, data.y_true[test[0]][:, j], "k", label="truth")
            ax.plot(data.time, emg[0][:, j], "C3", label="NMM")
            ax.set_ylabel(f"{muscle} EMG (0-1)")
            ax.legend(loc="upper right")
        axes[2].plot(data.time, tau_id[0], "k", label="OpenSim inverse dynamics")
        axes[2].plot(data.time, torque[0], "C0", label="NMM muscle torque")
        axes[2].set(xlabel="time (s)", ylabel="elbow torque (N·m)")
        axes[2].legend(loc="upper right")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"figure written to {args.plot}")


if __name__ == "__main__":
    main()
