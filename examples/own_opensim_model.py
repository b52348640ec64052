"""Use your own OpenSim model: build deepemg's torch model from it and fit the NMM on its data.

By default the model is OpenSim's Arm26 kept in ``tests/data/arm26.osim`` (6 muscles across the
elbow, ``r_shoulder_elev`` held at 0). The script

1. welds a ``load`` body at the hand if the model has none (``deepemg.opensim.add_load_body``;
   set where with ``--load-parent`` and ``--load-location``), so that a lifted load enters the
   dynamics, and saves that copy to a temporary folder;
2. builds ``deepemg.opensim.build_model(path, coordinate, locked)``: the muscles crossing
   the coordinate, their geometry fitted to OpenSim, the joint's rigid-body dynamics, and
   prints the fit errors it reports, plus its moment arms checked against OpenSim's at angles
   between the fit's knots;
3. simulates lifting trials with OpenSim and that same model (``make_elbow_lifting`` builds
   only the built-in elbow): 12 minimum-jerk flexion-extensions holding 0-5 kg, OpenSim inverse
   dynamics for the torque, a passive-aware static optimisation with OpenSim's muscles for the
   activations, and EMG envelopes as the excitations that produce them, leading by 40 ms. The
   ``--deep`` muscles (default BRA and TRImed) are NaN in ``y``;
4. fits ``NMMRegressor(model=<that MusculoskeletalModel>)`` on 9 trials and compares the deep
   muscles' predicted EMG on the other 3 with the simulation's, and the muscle torque with
   OpenSim inverse dynamics.

The data are noise-free and from one subject whose anatomy is the model's own, so they test
the plumbing more than the method. ``X``'s channels are named after the model's coordinate
(:mod:`deepemg.channels`): for Arm26's ``r_elbow_flex`` they are ``r_elbow_flex_angle``,
``r_elbow_flex_velocity``, ``r_elbow_flex_acceleration``, ``load_mass`` and
``r_elbow_flex_torque``; a knee's ``knee_angle_r`` gives ``knee_angle_r_angle`` and so on.

Run: ``python examples/own_opensim_model.py`` (about 30 s on 2 cores), or with your model:
``python examples/own_opensim_model.py --model my.osim --coordinate r_elbow_flex
--locked r_shoulder_elev=0 --deep BRA``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _small_nmm import SMALL_NMM

from deepemg import NMMRegressor
from deepemg import opensim as bridge
from deepemg.channels import layout_for
from deepemg.datasets import excitation_from_activation
from deepemg.datasets.trajectories import minimum_jerk_trial

ARM26 = Path(__file__).resolve().parents[1] / "tests" / "data" / "arm26.osim"
RATE = 100.0
DELAY = 0.040  # s by which the EMG envelope leads the excitation


def parse_locked(items: list[str]) -> dict[str, float]:
    locked = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--locked takes name=value (rad or m), got {item!r}")
        locked[name.strip()] = float(value)
    return locked


def simulate(path, coordinate, locked, muscles, n_trials, duration, seed):
    """Kinematics, torque and EMG envelopes of lifting trials, by OpenSim with the model."""
    rng = np.random.default_rng(seed)
    model = bridge.load_model(path)
    bridge.use_rigid_tendon_degroote_muscles(model)  # the muscles deepemg's torch model has
    pose = bridge.ModelPose(model, coordinate, locked)
    low, high = np.degrees(pose.range)
    loads = rng.permutation(np.resize(np.arange(6.0), n_trials))
    X, envelopes, worst = [], [], 0.0
    for load in loads:
        top = min(high - 5.0, 120.0 - 4.0 * load)  # heavier loads are lifted less high
        t, q, qd, qdd = minimum_jerk_trial(rng, duration, RATE, (max(low, 0.0), top))
        bridge.set_load_mass(model, float(load))
        pose.reinitialize()
        torque = bridge.inverse_dynamics(pose, q, qd, qdd)
        activation, residual = bridge.static_optimization(
            pose, muscles, q, qd, torque, min_activation=0.01 + 0.004 * load
        )
        worst = max(worst, float(np.abs(residual).max()))
        excitation = excitation_from_activation(activation, RATE)
        envelopes.append(np.stack([np.interp(t + DELAY, t, e) for e in excitation.T], axis=1))
        X.append(np.stack([q, qd, qdd, np.full_like(q, load), torque], axis=1))
    return np.stack(X), np.stack(envelopes), loads, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ARM26, help="an OpenSim .osim file")
    parser.add_argument("--coordinate", default="r_elbow_flex")
    parser.add_argument(
        "--locked",
        action="append",
        metavar="NAME=VALUE",
        help="hold another coordinate (repeatable); Arm26 default: r_shoulder_elev=0",
    )
    parser.add_argument("--load-parent", default="r_ulna_radius_hand")
    parser.add_argument(
        "--load-location", type=float, nargs=3, default=(0.0, -0.30, 0.0), metavar=("X", "Y", "Z")
    )
    parser.add_argument("--deep", nargs="*", default=["BRA", "TRImed"], help="muscles NaN in y")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    start = time.perf_counter()
    if args.locked is None:
        args.locked = ["r_shoulder_elev=0"] if args.model == ARM26 else []
    locked = parse_locked(args.locked)

    with tempfile.TemporaryDirectory() as folder:
        opensim_model = bridge.load_model(args.model)
        path = args.model
        if not opensim_model.getBodySet().contains("load"):
            bridge.add_load_body(opensim_model, args.load_parent, tuple(args.load_location))
            path = Path(folder) / f"{args.model.stem}_load.osim"
            opensim_model.printToXML(str(path))
            print(
                f"{args.model.name}: welded a 'load' body to {args.load_parent} at "
                f"{tuple(args.load_location)} m"
            )

        physics = bridge.build_model(path, args.coordinate, locked)
        report = physics.fit_report
        low, high = np.degrees(physics.coordinate_range)
        print(
            f"MusculoskeletalModel: {physics.n_muscles} muscles cross '{physics.coordinate}' "
            f"({low:.0f}-{high:.0f} deg): {physics.muscles}"
        )
        if report["converted_muscles"]:
            print(f"  made rigid-tendon DeGrooteFregly2016: {report['converted_muscles']}")
        print(
            f"  fit to OpenSim ({report['n_knots']} knots): max moment-arm error "
            f"{1e3 * max(report['max_moment_arm_error'].values()):.3f} mm, max length error "
            f"{1e3 * max(report['max_length_error'].values()):.3f} mm, rigid-body dynamics "
            f"residual {report['dynamics_max_residual']:.1e} N·m"
        )
        # an independent check: OpenSim's own moment arms at 97 angles, most between the knots
        check = bridge.ModelPose(bridge.load_model(path), args.coordinate, locked)
        angles = np.linspace(*physics.coordinate_range, 97)
        _, arms = bridge.sample_path_geometry(check, physics.muscles, angles)
        error = np.abs(physics.moment_arm(torch.tensor(angles)).numpy() - arms).max(axis=0)
        print(
            "  moment-arm error vs OpenSim at 97 angles (mm): "
            + ", ".join(f"{m} {1e3 * e:.3f}" for m, e in zip(physics.muscles, error, strict=True))
        )

        deep = [m for m in args.deep if m in physics.muscles]
        if not deep or len(deep) == physics.n_muscles:
            raise SystemExit(f"--deep must name some, not all, of {physics.muscles}")
        X, envelope, loads, worst = simulate(
            path, args.coordinate, locked, physics.muscles, args.trials, args.duration, seed=0
        )
    print(
        f"\nsimulated {len(X)} trials of {args.duration:g} s with OpenSim, loads "
        f"{sorted(set(loads.tolist()))} kg (largest unbalanced torque {worst:.1e} N·m); "
        f"y: {physics.muscles}, NaN for {deep}"
    )
    y = envelope.copy()
    y[..., [physics.muscles.index(m) for m in deep]] = np.nan
    n_train = max(1, len(X) - max(1, len(X) // 4))
    train, test = np.arange(n_train), np.arange(n_train, len(X))

    layout = layout_for(physics)  # the channel names of this model's joint
    nmm = NMMRegressor(
        model=physics,
        channels=list(layout.base),
        max_epochs=args.epochs,
        **SMALL_NMM,
    )
    tick = time.perf_counter()
    nmm.fit(X[train], y[train])
    print(
        f"NMMRegressor(model=...) fit on {len(train)} trials in {time.perf_counter() - tick:.1f} "
        f"s; muscles_ = {nmm.muscles_}; channels_ = {nmm.channels_}"
    )
    emg = nmm.predict(X[test])
    for muscle in deep:
        j = physics.muscles.index(muscle)
        truth, guess = envelope[test][..., j].ravel(), emg[..., j].ravel()
        label = f"  {muscle:8s} (never measured) on {len(test)} held-out trials:"
        if np.ptp(truth) < 1e-6:  # e.g. a muscle held at its co-contraction floor throughout
            print(f"{label} truth constant at {truth[0]:.3f}, prediction mean {guess.mean():.3f}")
            continue
        r = np.corrcoef(truth, guess)[0, 1]
        nrmse = np.sqrt(np.mean((truth - guess) ** 2)) / np.ptp(truth)
        print(f"{label} r = {r:.2f}, NRMSE = {nrmse:.2f}")
    torque = nmm.predict_torque(X[test])
    tau = X[test][..., list(layout.base).index(layout.torque)]
    print(
        f"  torque vs OpenSim inverse dynamics: NRMSE = "
        f"{np.sqrt(np.mean((torque - tau) ** 2)) / np.ptp(tau):.3f}"
    )
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
