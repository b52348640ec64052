"""Accuracy and speed of NMMRegressor on simulated subjects with known deep-muscle EMG.

Data: ``make_elbow_lifting(n_subjects=5, random_state=0)`` (5 subjects x 12 trials x 5 s at
100 Hz; BRA and TRImed are unmeasured, their truth is known).

* Within subject: train on trials 1-8 (2/3), test on trials 9-12. Deep-muscle EMG (BRA,
  TRImed): Pearson r and NRMSE (RMSE over the truth's range); torque of the muscle model
  (``predict_torque``) against OpenSim inverse dynamics: NRMSE (RMSE over the torque range).
  Targets: r >= 0.90, NRMSE <= 0.12, torque NRMSE <= 5%.
* Ablation: the same network with ``physics_weight=0`` (data term only).
* Leave one subject out: fit on 4 subjects, ``personalize`` on the held-out subject's
  kinematics, load, torque and surface EMG, then score its deep muscles. Target: BRA r >= 0.85.
* Muscle synergy extrapolation (MSE, ``baselines.SynergyExtrapolationRegressor``) on the same
  splits. MSE needs surface EMG at prediction time: within subject it is fitted on the 8
  training trials and predicts the 4 test trials from their surface EMG; across subjects it is
  fitted on the held-out subject's own surface EMG and torque (no deep labels), as MSE is used.
* Speed: fit time for one subject (12 trials), prediction throughput, peak memory.

Run: ``python benchmarks/bench_nmm.py`` (about 20 minutes on 2 cores; ``--quick`` for 2
subjects and fewer epochs, ``--no-loso`` to skip leave-one-subject-out).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numpy as np

from baselines import SynergyExtrapolationRegressor
from deepemg import NMMRegressor
from deepemg.datasets import make_elbow_lifting

DEEP = ("BRA", "TRImed")


def metrics(truth, prediction):
    truth, prediction = truth.ravel(), prediction.ravel()
    r = np.corrcoef(truth, prediction)[0, 1] if truth.std() > 0 else np.nan
    nrmse = np.sqrt(np.mean((truth - prediction) ** 2)) / (truth.max() - truth.min())
    return r, nrmse


def evaluate(model, data, test, subject):
    prediction = model.predict(data.X[test])
    row = {}
    for muscle in DEEP:
        j = data.muscles.index(muscle)
        row[f"{muscle}_r"], row[f"{muscle}_nrmse"] = metrics(
            data.y_true[test][..., j], prediction[..., j]
        )
    torque = model.predict_torque(data.X[test], np.full(len(test), subject))
    tau_id = data.X[test][..., data.channels.index("elbow_torque")]
    row["torque_nrmse"] = np.sqrt(np.mean((torque - tau_id) ** 2)) / np.ptp(tau_id)
    return row


def summary(name, rows):
    keys = [k for k in rows[0] if k != "subject"]
    print(f"\n{name}")
    print("  subject " + " ".join(f"{k:>13}" for k in keys))
    for row in rows:
        print(f"  {row['subject']:>7} " + " ".join(f"{row[k]:13.3f}" for k in keys))
    values = {k: np.array([r[k] for r in rows], dtype=float) for k in keys}
    print(
        "  mean+-SD "
        + " ".join(f"{np.nanmean(v):6.3f}+-{np.nanstd(v):5.3f}" for v in values.values())
    )
    return {k: float(np.nanmean(v)) for k, v in values.items()}


def speed(data, subject, epochs) -> None:
    """Fit one subject's 12 trials; predict all trials with and without window overlap."""
    one = np.flatnonzero(data.groups == subject)
    start = time.perf_counter()
    model = NMMRegressor(max_epochs=epochs, random_state=0).fit(data.X[one], data.y[one])
    fit_one = time.perf_counter() - start
    steps = data.X.shape[0] * data.X.shape[1]
    throughput = {}
    for overlap in (0.5, 0.0):
        model.set_params(predict_overlap=overlap)
        model.predict(data.X)  # warm-up
        start = time.perf_counter()
        model.predict(data.X)
        throughput[overlap] = steps / (time.perf_counter() - start)
    print(
        f"\nspeed: fit one subject (12 trials x 5 s) {fit_one:.1f} s (target < 60 s); predict "
        f"{throughput[0.5]:,.0f} steps/s with predict_overlap=0.5 (default), "
        f"{throughput[0.0]:,.0f} with 0 (target >= 200,000); peak memory "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 subjects, 20 epochs")
    parser.add_argument("--no-loso", action="store_true", help="skip leave one subject out")
    parser.add_argument("--speed-only", action="store_true", help="only the speed figures")
    args = parser.parse_args()
    epochs = 20 if args.quick else 60
    data = make_elbow_lifting(n_subjects=5, random_state=0, progress=False)
    subjects = np.unique(data.groups)[: 2 if args.quick else 5]
    print(
        f"data: {data.X.shape[0]} trials x {data.X.shape[1]} steps, subjects {list(subjects)}, "
        f"max_epochs={epochs}; machine {platform.machine()}, {os.cpu_count()} CPUs"
    )

    if args.speed_only:
        speed(data, subjects[0], epochs)
        return
    variants = {
        "NMM (physics_weight=1)": dict(physics_weight=1.0),
        "NMM, physics driven by measured EMG": dict(physics_weight=1.0, physics_drive="measured"),
        "ablation: data term only (physics_weight=0)": dict(physics_weight=0.0),
    }
    fit_times = []
    for name, params in variants.items():
        rows = []
        for subject in subjects:
            index = np.flatnonzero(data.groups == subject)
            train, test = index[:8], index[8:]
            start = time.perf_counter()
            model = NMMRegressor(max_epochs=epochs, random_state=0, **params)
            model.fit(data.X[train], data.y[train], subject_ids=data.groups[train])
            elapsed = time.perf_counter() - start
            if name.startswith("NMM (physics"):
                fit_times.append(elapsed)
            rows.append(
                {"subject": subject, **evaluate(model, data, test, subject), "fit_s": elapsed}
            )
        summary(f"within subject (8 train / 4 test trials): {name}", rows)

    rows = []
    for subject in subjects:
        index = np.flatnonzero(data.groups == subject)
        train, test = index[:8], index[8:]
        start = time.perf_counter()
        mse = SynergyExtrapolationRegressor(random_state=0)
        mse.fit(data.X[train], subject_ids=data.groups[train])
        elapsed = time.perf_counter() - start
        rows.append({"subject": subject, **evaluate(mse, data, test, subject), "fit_s": elapsed})
    summary("within subject: MSE (3 synergies, fitted on the 8 training trials)", rows)

    speed(data, subjects[0], epochs)

    if not args.no_loso:
        rows = []
        for held_out in subjects:
            train = data.groups != held_out
            test = np.flatnonzero(~train)
            start = time.perf_counter()
            model = NMMRegressor(max_epochs=epochs, random_state=0)
            model.fit(data.X[train], data.y[train], subject_ids=data.groups[train])
            model.personalize(data.X[test], data.y[test], subject_ids=data.groups[test])
            rows.append(
                {
                    "subject": held_out,
                    **evaluate(model, data, test, held_out),
                    "fit_s": time.perf_counter() - start,
                }
            )
        summary("leave one subject out, after personalize (target BRA r >= 0.85)", rows)
        rows = []
        for held_out in subjects:
            test = np.flatnonzero(data.groups == held_out)
            start = time.perf_counter()
            mse = SynergyExtrapolationRegressor(random_state=0)
            mse.fit(data.X[test], subject_ids=data.groups[test])
            rows.append(
                {
                    "subject": held_out,
                    **evaluate(mse, data, test, held_out),
                    "fit_s": time.perf_counter() - start,
                }
            )
        summary("new subject: MSE fitted on that subject's surface EMG and torque", rows)


if __name__ == "__main__":
    main()
