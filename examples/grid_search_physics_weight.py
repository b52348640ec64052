"""Choose the physics weight of the NMM by leave-one-subject-out grid search.

Runs ``GridSearchCV`` over ``physics_weight`` (default: 0 = data term only, and 1) with
``LeaveOneGroupOut`` on simulated subjects (the subject is the group), routing ``subject_ids``
to ``NMMRegressor.fit`` through scikit-learn's metadata routing so every training fold learns
one parameter set per subject. Each setting is scored two ways on the held-out subject:

- ``surface_r2``: ``deepemg.metrics.surface_r2_scorer()``, the R² of the predicted EMG on the
  measured (surface) channels, variance-weighted over channels (what ``NMMRegressor.score``
  returns); this is all that real recordings allow, and the search refits on it;
- ``BRA_r``: ``deepemg.metrics.deep_muscle_r_scorer("BRA")``, the Pearson r of the predicted
  brachialis (a deep muscle, never in ``y``) against its simulated truth ``y_true``, routed to
  the scorer as the metadata ``emg_truth``; only simulations have it.

(scikit-learn's own scorers, ``scoring="r2"`` and the like, cannot score 3-D EMG with NaN:
deepemg refuses them with an error instead of scoring every fold NaN.) The held-out subject is
not personalised here, so it is predicted with the population's musculoskeletal parameters;
``examples/leave_one_subject_out_personalize.py`` personalises it first.

The script ends with the same search for the baseline, muscle synergy extrapolation, over
``n_synergies``: ``SynergyExtrapolationRegressor.score`` hides each surface muscle in turn and
reconstructs it from the others through the synergies (leave one surface muscle out), so it
peaks near the number of synergies in the data instead of being 1 for every setting.

Run: ``python examples/grid_search_physics_weight.py`` (about 45 s on one core, plus about 10 s
to simulate the subjects the first time; they are cached). ``--weights 0 0.3 1 3`` searches
more settings; ``--epochs`` and ``--n-jobs`` trade
time for accuracy.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import sklearn
from _small_nmm import SMALL_NMM
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut

from baselines import SynergyExtrapolationRegressor
from deepemg import NMMRegressor
from deepemg.datasets import make_elbow_lifting
from deepemg.metrics import UnseenSubjectWarning, deep_muscle_r_scorer, surface_r2_scorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-jobs", type=int, default=None, help="folds fitted in parallel")
    args = parser.parse_args()
    start = time.perf_counter()

    data = make_elbow_lifting(n_subjects=args.subjects, n_trials=6, duration=3.0, random_state=0)
    print(
        f"{len(np.unique(data.groups))} subjects x 6 trials of {len(data.time) / data.rate:g} s; "
        f"y measures {data.surface_muscles}, deep {data.deep_muscles} are NaN"
    )

    # The scorers request subject_ids: each test fold's subjects reach predict. The held-out
    # subject was not in fit, so its EMG is corrected (predict_physics="auto", the default,
    # unless most fitted subjects' model adequacy is poor) with the population's muscle
    # parameters; deepemg says so with an UnseenSubjectWarning,
    # silenced here (personalising it: examples/leave_one_subject_out_personalize.py).
    warnings.simplefilter("ignore", UnseenSubjectWarning)
    with sklearn.config_context(enable_metadata_routing=True):
        scoring = {"surface_r2": surface_r2_scorer(), "BRA_r": deep_muscle_r_scorer("BRA")}
        nmm = NMMRegressor(
            max_epochs=args.epochs,
            **SMALL_NMM,
        ).set_fit_request(subject_ids=True)
        search = GridSearchCV(
            nmm,
            {"physics_weight": args.weights},
            scoring=scoring,
            refit="surface_r2",  # the criterion available on real data
            cv=LeaveOneGroupOut(),
            n_jobs=args.n_jobs,
        )
        # groups -> the splitter, subject_ids -> NMMRegressor.fit (each training fold's rows)
        # and the scorers, emg_truth -> the BRA_r scorer (each test fold's rows)
        search.fit(
            data.X, data.y, groups=data.groups, subject_ids=data.groups, emg_truth=data.y_true
        )

    results = search.cv_results_
    splits = LeaveOneGroupOut().split(data.X, groups=data.groups)
    held_out = [str(data.groups[test][0]) for _, test in splits]
    print(f"\ncv_results_ (held-out subject of split 0, 1, ...: {', '.join(held_out)})")
    header = f"{'physics_weight':>14} {'fit (s)':>8} {'surface R² mean ± SD':>21} {'rank':>4}"
    header += f" {'BRA r mean ± SD':>16} " + " ".join(f"{f'r {s}':>7}" for s in held_out)
    print(header)
    for i, weight in enumerate(results["param_physics_weight"]):
        per_subject = [results[f"split{k}_test_BRA_r"][i] for k in range(len(held_out))]
        print(
            f"{weight:14g} {results['mean_fit_time'][i]:8.1f} "
            f"{results['mean_test_surface_r2'][i]:12.3f} ± {results['std_test_surface_r2'][i]:6.3f}"
            f" {results['rank_test_surface_r2'][i]:4d} "
            f"{results['mean_test_BRA_r'][i]:7.2f} ± {results['std_test_BRA_r'][i]:5.2f} "
            + " ".join(f"{r:7.2f}" for r in per_subject)
        )
    by_truth = results["param_physics_weight"][np.argmax(results["mean_test_BRA_r"])]
    print(
        f"\nbest physics_weight by surface R² (refitted on all subjects): "
        f"{search.best_params_['physics_weight']:g}"
    )
    print(f"best physics_weight by the deep-muscle truth (simulation only): {by_truth:g}")

    # the baseline: n_synergies by leave-one-surface-muscle-out R² on held-out subjects. The
    # simulated subjects share one effort-minimising drive (flexors rise together with the
    # torque, the triceps sit at a co-contraction floor), so one synergy extrapolates best
    # across subjects here; more synergies fit one subject's channels and extrapolate badly.
    mse = GridSearchCV(
        SynergyExtrapolationRegressor(max_iter=50, random_state=0),
        {"n_synergies": [1, 2, 3, 4]},
        cv=LeaveOneGroupOut(),
        n_jobs=args.n_jobs,
    ).fit(data.X, groups=data.groups)
    scores = ", ".join(
        f"{k}: {v:.3f}"
        for k, v in zip(
            mse.cv_results_["param_n_synergies"], mse.cv_results_["mean_test_score"], strict=True
        )
    )
    print(
        f"\nMSE, held-out surface muscles reconstructed from the others (R²) by n_synergies: "
        f"{scores}; best {mse.best_params_['n_synergies']}"
    )
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
