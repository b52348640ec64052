"""Model adequacy (deepemg.adequacy) where the muscle model holds and where it does not.

Each case: subjects of ``make_scenario(name, n_subjects=5, n_trials=12, random_state=0)``
(``--subjects``, 0-based; default the first three), 12 trials each (5 s, 100 Hz), one
NMMRegressor fitted on them (``max_epochs`` given, default settings otherwise), then
:func:`deepemg.adequacy.assess_fit` on the fit's data. Cases: ``default`` (deepemg's own
rigid-tendon law: the model holds); ``strength_x2``, ``strength_x0.5``, ``strength_x10`` (the
default data with the ID torque channel scaled by 2, 0.5 or 10: the model's strength, or the
torque's units, wrong by that factor); ``compliant_tendons`` and ``off_simulator`` (OpenSim
Thelen2003 compliant-tendon truth). Prints, per subject, ``torque_residual_ratio``,
``noise_ratio``, ``unreachable_ratio``, ``surface_pull``, the range of the per-trial ratios
and the verdict (:func:`~deepemg.adequacy.assess_fit`'s, whatever the fit's length).

``--personalize``: fit on the default scenario's ``--subjects`` instead, then personalise
(5 and 30 epochs) subjects S04-S05 of each case on that network and print their records.

    python benchmarks/bench_adequacy.py [--epochs 20] [--cases default ...] [--subjects 0 1 2]
    python benchmarks/bench_adequacy.py --personalize --cases default compliant_tendons
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

CASES = (
    "default",
    "strength_x2",
    "strength_x0.5",
    "strength_x10",
    "compliant_tendons",
    "off_simulator",
)


def _data(case: str, subjects=(0, 1, 2)):
    from deepemg.datasets import make_scenario

    name = case if not case.startswith("strength") else "default"
    data = make_scenario(name, n_subjects=5, n_trials=12, random_state=0, progress=False)
    rows = np.isin(data.groups, np.unique(data.groups)[list(subjects)])
    X, y, groups = data.X[rows].copy(), data.y[rows], data.groups[rows]
    if case.startswith("strength"):
        X[..., list(data.channels).index("elbow_torque")] *= float(case.split("_x")[1])
    return X, y, groups


def _personalize(args) -> None:
    """Fit on default subjects ``--subjects``, personalise S04-S05 of each case, print."""
    import copy

    from deepemg import NMMRegressor
    from deepemg.adequacy import training_steps

    X, y, groups = _data("default", args.subjects)
    model = NMMRegressor(max_epochs=args.epochs, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y, subject_ids=groups)
        for case in args.cases:
            Xn, yn, gn = _data(case, (3, 4))
            for epochs in (5, 30):
                new = copy.deepcopy(model).personalize(Xn, yn, subject_ids=gn, max_epochs=epochs)
                steps = training_steps(new.personalize_history_)
                for subject in np.unique(gn):
                    a = new.model_adequacy_[subject]
                    print(
                        f"{case:18s} {subject} epochs={epochs:2d} steps={steps:4d} "
                        f"residual={a.torque_residual_ratio:.4f} noise_r={a.noise_ratio:.2f} "
                        f"unreach={a.unreachable_ratio:.4f} pull={a.surface_pull:.3f} "
                        f"{a.verdict}",
                        flush=True,
                    )


def main() -> None:
    """Run the cases and print the table."""
    from deepemg import NMMRegressor
    from deepemg.adequacy import assess_fit, training_steps

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--subjects", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--personalize", action="store_true")
    args = parser.parse_args()
    if args.personalize:
        return _personalize(args)
    print(f"max_epochs={args.epochs}, subjects {args.subjects} (0-based) of 5")
    print(
        f"{'case':18s} {'subject':>7s} {'residual':>9s} {'noise_r':>8s} {'unreach':>8s} "
        f"{'pull':>6s} {'trials min-max':>15s}  verdict"
    )
    for case in args.cases:
        X, y, groups = _data(case, args.subjects)
        start = time.perf_counter()
        model = NMMRegressor(max_epochs=args.epochs, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the verdicts are printed below
            model.fit(X, y, subject_ids=groups)
        adequacy = assess_fit(model, X, y, groups)
        seconds = time.perf_counter() - start
        for subject, a in adequacy.items():
            trials = np.asarray(a.trial_residual_ratios)
            print(
                f"{case:18s} {subject!s:>7s} {a.torque_residual_ratio:9.4f} "
                f"{a.noise_ratio:8.2f} {a.unreachable_ratio:8.4f} {a.surface_pull:6.3f} "
                f"{trials.min():7.4f}-{trials.max():.4f}  {a.verdict}",
                flush=True,
            )
        steps = training_steps(model.history_)
        print(f"# {case}: {steps} training steps; fit + assessment {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
