"""Personalise the NMM to a subject it was not trained on, without deep-muscle labels.

Fits ``NMMRegressor`` on every simulated subject but one, then calls ``personalize`` on half of
the held-out subject's trials with what a lab records from a new subject: kinematics, load,
inverse-dynamics torque (the channels of ``X``) and surface EMG (``y``, the deep muscles NaN).
Only that subject's 32 parameters are fitted; the network is frozen. The other half of its
trials is then predicted and compared with the simulated truth before (population, i.e.
nominal, parameters: ``subject_ids=None``) and after personalisation:

- the EMG of the deep muscles BRA and TRImed (``predict``): the network is frozen, but by
  default (``predict_physics="auto"``) its EMG is corrected through the subject's own muscle
  model, so ``personalize`` changes it (the script prints by how much);
- their activation (``predict_activation``, through the subject's activation dynamics) against
  the activations of the simulation;
- the muscle torque (``predict_torque``) against OpenSim inverse dynamics.

(In these lifts gravity always flexes the elbow, so TRImed's truth is a nearly constant
co-contraction floor and its r and NRMSE say little; see docs/nmm.md.)

It prints the held-out subject's learned parameters (``subject_params_``) next to the values
the simulation drew where it has them (force, fibre and tendon length scales, delay).

Run: ``python examples/personalize_new_subject.py`` (about 20 s on 2 cores, plus about 10 s
to simulate the subjects the first time; they are cached). ``--epochs`` and
``--personalize-epochs`` trade time for accuracy; ``--no-surface-emg`` personalises from the
kinematics, load and torque alone (``y=None``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _small_nmm import SMALL_NMM

from deepemg import NMMRegressor
from deepemg.datasets import make_elbow_lifting

TRUE_VALUE = {  # subject_params_ parameter -> key of make_elbow_lifting's true_params
    "max_isometric_force_scale": "max_isometric_force_scale",
    "optimal_fiber_length_scale": "optimal_fiber_length_scale",
    "tendon_slack_length_scale": "tendon_slack_length_scale",
    "delay": "electromechanical_delay",
}


def r_and_nrmse(truth: np.ndarray, guess: np.ndarray) -> tuple[float, float]:
    truth, guess = truth.ravel(), guess.ravel()
    r = float(np.corrcoef(truth, guess)[0, 1])
    return r, float(np.sqrt(np.mean((truth - guess) ** 2)) / np.ptp(truth))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--personalize-epochs", type=int, default=30)
    parser.add_argument(
        "--no-surface-emg",
        action="store_true",
        help="personalize from kinematics, load and torque only (y=None)",
    )
    args = parser.parse_args()
    start = time.perf_counter()

    data = make_elbow_lifting(n_subjects=args.subjects, n_trials=6, duration=3.0, random_state=0)
    new_subject = str(data.groups[-1])
    train = np.flatnonzero(data.groups != new_subject)
    own = np.flatnonzero(data.groups == new_subject)
    calibration, test = own[: len(own) // 2], own[len(own) // 2 :]
    print(
        f"fit on {', '.join(sorted(set(data.groups[train].tolist())))} ({len(train)} trials); "
        f"{new_subject}: "
        f"personalize on {len(calibration)} trials, evaluate on {len(test)}"
    )

    nmm = NMMRegressor(
        max_epochs=args.epochs,
        **SMALL_NMM,
    )
    nmm.fit(data.X[train], data.y[train], subject_ids=data.groups[train])
    fit_seconds = time.perf_counter() - start

    X_test = data.X[test]
    torque_id = X_test[..., data.channels.index("elbow_torque")]
    before = {
        "emg": nmm.predict(X_test),
        "activation": nmm.predict_activation(X_test),  # population parameters
        "torque": nmm.predict_torque(X_test),
    }
    tick = time.perf_counter()
    # surface EMG in, deep muscles NaN: no deep-muscle label is needed. Where y has EMG, the
    # measured EMG drives those muscles while the parameters are fitted; predict_torque and
    # predict_activation are always driven by the network's EMG.
    nmm.personalize(
        data.X[calibration],
        None if args.no_surface_emg else data.y[calibration],
        subject_ids=data.groups[calibration],
        max_epochs=args.personalize_epochs,
    )
    personalize_seconds = time.perf_counter() - tick
    ids = data.groups[test]
    after = {
        "emg": nmm.predict(X_test, ids),
        "activation": nmm.predict_activation(X_test, ids),
        "torque": nmm.predict_torque(X_test, ids),
    }
    emg_change = float(np.abs(after["emg"] - before["emg"]).max())
    print(f"fit {fit_seconds:.1f} s, personalize {personalize_seconds:.1f} s\n")

    truth = data.true_params[list(np.unique(data.groups)).index(new_subject)]
    print(f"{new_subject}'s learned parameters (subject_params_), truth where simulated:")
    print(f"  {'parameter':27s} {'muscle':9s} {'value':>8} {'truth':>8} {'unit':>4}  bounds")
    for row in nmm.subject_params_:
        if row["subject"] != new_subject:
            continue
        true = ""
        if row["parameter"] in TRUE_VALUE:
            value = np.asarray(truth[TRUE_VALUE[row["parameter"]]])
            if row["muscle"] is not None:
                value = value[truth["muscles"].index(row["muscle"])]
            true = f"{float(value):8.3f}"
        print(
            f"  {row['parameter']:27s} {row['muscle'] or '-':9s} {row['value']:8.3f} "
            f"{true:>8} {row['unit']:>4}  [{row['lower']:g}, {row['upper']:g}]"
        )

    print(f"\n{new_subject}'s {len(test)} evaluation trials: r, NRMSE against the truth")
    print(f"  {'':26s} {'before (population)':>20} {'after personalize':>20}")
    for muscle in data.deep_muscles:
        j = data.muscles.index(muscle)
        for key, truth_array in (("emg", data.y_true), ("activation", data.activation)):
            reference = truth_array[test][..., j]
            cells = [r_and_nrmse(reference, p[key][..., j]) for p in (before, after)]
            print(
                f"  {muscle:7s} {key.replace('emg', 'EMG'):18s} "
                + " ".join(f"{f'{r:.2f}, {e:.2f}':>20}" for r, e in cells)
            )
    cells = [r_and_nrmse(torque_id, p["torque"]) for p in (before, after)]
    print(
        f"  {'torque vs inverse dynamics':26s} "
        + " ".join(f"{f'{r:.3f}, {e:.3f}':>20}" for r, e in cells)
    )
    print(
        "\nlargest change of the predicted EMG by personalize (the network is frozen; the "
        f"correction uses the subject's own muscle model): {emg_change:.3f}"
    )
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
