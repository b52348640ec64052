"""Real recordings: raw EMG of a box lift to envelopes, and the trial to deepemg's X and y.

Reads the pyomeca box-lifting trial kept in ``tests/data/box-lift`` (Apache-2.0; 51 markers at
100 Hz, Delsys EMG at 2000 Hz, OpenSim inverse kinematics and dynamics of the lift): the biceps
and triceps EMG become envelopes (band-pass 20-450 Hz, rectify, 6 Hz low-pass, normalised to
the trial's maximum), the elbow angle and the box's weight are read from the OpenSim files,
and :func:`deepemg.io.load_trials` turns the whole trial into ``X`` and ``y`` for the elbow.

Run: ``python examples/real_emg_box_lift.py`` (a few seconds). With ``--plot FILE.png`` it also
draws the raw EMG, its envelope and the elbow angle (needs matplotlib).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from deepemg.io import load_trials, read_c3d_analogs, read_storage
from deepemg.preprocessing import EMGEnvelope

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "box-lift"
CHANNELS = {"Biceps": "Biceps.EMG4", "Triceps": "Triceps.EMG5"}
MUSCLES = {"BIClong": "Biceps.EMG4", "TRIlong": "Triceps.EMG5"}  # model muscle -> channel
GRAVITY = 9.80665


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the trial's files")
    parser.add_argument("--plot", metavar="FILE.png", help="save a figure of EMG and envelopes")
    args = parser.parse_args()
    c3d, ik_path, id_path = (
        args.data / name for name in ("markers_analogs.c3d", "inverse_kin.mot", "inverse_dyn.sto")
    )

    raw = read_c3d_analogs(c3d, channels=list(CHANNELS.values()))
    print(
        f"{c3d.name}: analogs at {raw.rate:g} Hz (markers at {raw.point_rate:g} Hz), "
        f"{raw.time[-1] + 1 / raw.rate:.1f} s; reading {raw.labels} ({', '.join(raw.units)})"
    )
    envelope = EMGEnvelope(rate=raw.rate)
    envelopes = envelope.fit_transform(raw.data)
    for k, name in enumerate(CHANNELS):
        print(
            f"  {name:8s} raw {1e6 * np.abs(raw.data[:, k]).max():6.0f} uV peak, envelope max "
            f"{1e6 * envelope.max_[k]:5.1f} uV -> normalised mean {envelopes[:, k].mean():.2f}, "
            f"median {np.median(envelopes[:, k]):.2f}"
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the files are truncated: their headers say 250 rows
        ik = read_storage(ik_path)
        dynamics = read_storage(id_path)
    elbow = np.degrees(ik.column("elbow_flexion"))
    force = dynamics.column("box_transZ_force")
    print(
        f"{ik_path.name}: {ik.time.size} frames at {ik.rate:g} Hz, t = {ik.time[0]:.2f}-"
        f"{ik.time[-1]:.2f} s; elbow flexion {elbow.min():.1f}-{elbow.max():.1f} deg"
    )
    print(
        f"{id_path.name}: box held up with {force[0]:.1f} N at rest "
        f"({force[0] / GRAVITY:.2f} kg), {force.min():.1f}-{force.max():.1f} N while lifted"
    )

    trial = {
        "kinematics": ik_path,
        "load_mass": round(force[0] / GRAVITY, 2),
        "subject": "pyomeca",
        "angle_column": "elbow_flexion",
        "torque": id_path,
        "torque_column": "elbow_flexion_moment",
        "emg": c3d,
        "emg_channels": MUSCLES,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_trials([trial])
    print(f"load_trials: X {data.X.shape} with channels {data.channels}")
    print(f"             y {data.y.shape} for {data.muscles} (NaN where no EMG was recorded)")
    for k, name in enumerate(data.channels):
        values = data.X[0, :, k]
        print(f"  {name:20s} {values.min():9.3f} to {values.max():9.3f}")

    if args.plot:
        plot(args.plot, raw, envelopes, ik, elbow)
        print(f"figure saved to {args.plot}")


def plot(path: str, raw, envelopes, ik, elbow) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True, constrained_layout=True)
    for ax, (k, name) in zip(axes, enumerate(CHANNELS), strict=False):
        ax.plot(raw.time, 1e3 * raw.data[:, k], color="0.7", lw=0.4)
        ax.set_ylabel(f"{name} raw EMG (mV)", color="0.4")
        ax.axvspan(ik.time[0], ik.time[-1], color="C0", alpha=0.1, lw=0)
        right = ax.twinx()
        right.plot(raw.time, envelopes[:, k], color="C3", lw=1.5)
        right.set_ylim(0, 1.05)
        right.set_ylabel("envelope (0-1)", color="C3")
    axes[2].plot(ik.time, elbow, color="C0")
    axes[2].set_ylabel("elbow flexion\n(deg)")
    axes[2].set_xlabel("time (s); shaded: frames with inverse kinematics")
    fig.suptitle("pyomeca box lift: raw EMG and its envelope (EMGEnvelope)")
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
