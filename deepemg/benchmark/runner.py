"""The benchmark's run: :func:`run_benchmark` fits every method on every fold and scores them.

Every fold is one :func:`joblib.delayed` task run by :class:`joblib.Parallel`, so ``n_jobs``
and any joblib backend (``joblib.parallel_backend("dask")`` for a Dask cluster) spread the
folds; each fit is seeded by ``random_state``, so the results do not depend on the backend or
on ``n_jobs``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
from joblib import Parallel, delayed
from sklearn.utils import Bunch

from ..channels import ChannelLayout
from ..threads import machine_info, plan_workers
from .methods import METHODS
from .protocol import (
    EVALUATIONS,
    BenchmarkSettings,
    _deep_muscles,
    _example,
    _folds,
    _layout,
    _run_fold,
    _truth,
    simulated_subjects,
    within_subject_splits,
)
from .results import BenchmarkResult

__all__ = ["run_benchmark"]

BAND_METHOD = "nmm"
"""Key of the method whose parameters the deep-EMG figure's ensemble band is fitted with."""


def run_benchmark(
    data: Bunch | None = None,
    settings: BenchmarkSettings | None = None,
    *,
    model="elbow",
    coordinate: str = "r_elbow_flex",
    locked: dict | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> BenchmarkResult:
    """Fit every method of :data:`METHODS` within subject and leave one subject out; score them.

    Parameters
    ----------
    data : Bunch, optional
        ``X`` (n_sequences, n_timesteps, n_channels) with ``channels``, ``y`` (NaN where a
        muscle was not measured), ``muscles``, ``groups``; optionally ``y_true`` (the deep
        muscles' truth), ``deep_muscles`` and ``true_params``, as
        :func:`~deepemg.datasets.make_elbow_lifting` and :func:`~deepemg.io.load_trials`
        return. Default: :func:`simulated_subjects` of ``settings``. Without ``y_true`` the
        deep muscles (those never measured) have no truth and their scores are NaN. X's
        columns are found by ``ChannelLayout.infer(data.channels)``
        (:mod:`deepemg.channels`); the load and torque channels are required.
    settings : BenchmarkSettings, optional
        Epochs, splits, what to run. Default: ``BenchmarkSettings()``.
    model, coordinate, locked
        The musculoskeletal model of the estimators (see :class:`~deepemg.NMMRegressor`). Its
        joint (:func:`deepemg.channels.joint_name`) must be the one that names the data's
        channels.
    n_jobs : int, optional
        Folds run in parallel by :class:`joblib.Parallel` (any joblib backend). Default: as
        many as this process's cores and the fits (:func:`deepemg.threads.plan_workers`).
    progress : bool, default=True
        Show a progress bar over the folds (tqdm).

    Returns
    -------
    BenchmarkResult

    Raises
    ------
    ValueError
        When no subject has 2 sequences (nothing to split) and leave one subject out is off
        or there is only one subject; when the data's channels name another joint than the
        model's, or lack the load or the torque.

    Examples
    --------
    >>> from deepemg.benchmark import BenchmarkSettings, run_benchmark
    >>> settings = BenchmarkSettings.quick(max_epochs=2, loso=False)
    >>> result = run_benchmark(settings=settings, progress=False)  # doctest: +SKIP
    >>> result.summary()[0]["BRA_r_mean"]  # doctest: +SKIP
    """
    settings = settings or BenchmarkSettings()
    start = time.perf_counter()
    started_utc = datetime.now(UTC).isoformat(timespec="seconds")
    data, layout, deep = _checked(data, settings, model, coordinate, progress)
    common = dict(model=model, coordinate=coordinate, locked=locked, channels=data.channels)
    splits, folds = _planned_folds(data, settings)
    methods = [m for m in METHODS.values() if m.enabled(settings)]
    tasks = _tasks(folds, methods, settings, common, data, deep, layout)
    planned, threads_per_fit = plan_workers(n_jobs, len(tasks))
    n_jobs = planned if n_jobs is None else n_jobs
    outputs = Parallel(n_jobs=n_jobs, return_as="generator")(call for *_, call in tasks)
    first = splits[0][0] if splits else None
    rows, histories, parameters, examples = _collect(tasks, outputs, methods, first, progress)
    if splits:
        examples.update(_example_traces(data, splits[0][2], layout, deep))
    if splits and settings.band_members >= 2:
        params = METHODS[BAND_METHOD].params(settings, common, "within")
        examples.update(
            _band(data, folds[0][1:], params, settings.band_members, n_jobs, layout, deep)
        )
    truth_range = _truth_ranges(data, deep)
    return BenchmarkResult(
        rows=rows,
        deep_muscles=deep,
        examples=examples,
        histories=histories,
        parameters=parameters,
        true_parameters=getattr(data, "true_params", None),
        settings=settings.as_dict(),
        elapsed_s=time.perf_counter() - start,
        joint=layout.joint,
        machine=machine_info(),
        n_jobs=n_jobs,
        threads_per_fit=threads_per_fit,
        started_utc=started_utc,
        truth_range=truth_range,
    )


def _checked(data, settings, model, coordinate, progress) -> tuple[Bunch, ChannelLayout, list[str]]:
    """``data`` as a Bunch with array ``groups``, its checked channel layout, its deep muscles.

    Without ``data``, the simulated subjects of ``settings``.
    """
    if data is None:
        data = simulated_subjects(settings, progress=progress)
    data = Bunch(**data)
    layout = _layout(data, model, coordinate)
    deep = _deep_muscles(data)
    if not deep:
        raise ValueError(
            "every muscle of y is measured in some sequence: there is no deep muscle to "
            "reconstruct. Leave the deep muscles' columns NaN (unmeasured)."
        )
    data.groups = np.asarray(data.groups)
    return data, layout, deep


def _planned_folds(data, settings: BenchmarkSettings) -> tuple[list, list]:
    """The within-subject splits and every fold (within subject, then each subject left out)."""
    splits = within_subject_splits(data.groups, settings.train_fraction)
    loso = settings.loso and len(dict.fromkeys(data.groups.tolist())) > 1
    if not splits and not loso:
        raise ValueError(
            "nothing to evaluate: no subject has 2 sequences to split, and leave one subject "
            "out needs 2 subjects. Cut long trials into sequences (load_trials(n_timesteps=...)) "
            "or add trials."
        )
    return splits, _folds(data, splits, loso)


def _tasks(folds, methods, settings, common, data, deep, layout) -> list[tuple]:
    """``(evaluation, method, subject, delayed call)`` of every fit.

    Each method with a fit of its own, on each fold it runs; the methods derived from it are
    scored in the same call.
    """
    tasks = []
    for evaluation, subject, train, test in folds:
        for method in methods:
            if evaluation in method.evaluations and method.derived_from is None:
                params = method.params(settings, common, evaluation)
                derived = [m for m in methods if m.derived_from == method.key]
                call = delayed(_run_fold)(
                    method, evaluation, data, subject, train, test, params, deep, layout, derived
                )
                tasks.append((evaluation, method, subject, call))
    return tasks


def _collect(tasks, outputs, methods, first, progress: bool) -> tuple[list, dict, list, dict]:
    """Rows, training histories, learned parameters and example traces of the folds' outputs.

    The rows within subject first, each evaluation's in the order of ``methods``; the examples
    are those of the within-subject fold of the subject ``first``; histories and parameters
    those of the first method with a ``record``.
    """
    from tqdm.auto import tqdm

    bar = tqdm(outputs, total=len(tasks), desc="benchmark", unit="fit", disable=not progress)
    rows, histories, parameters = [], {}, []
    recorder = next((m.key for m in methods if m.record is not None), None)
    examples = {"subject": first}
    for (evaluation, method, subject, _), output in zip(tasks, bar, strict=True):
        bar.set_postfix_str(f"{method.label}, {EVALUATIONS[evaluation]}, {subject}")
        derived = [(METHODS[key], out) for key, out in output["derived"].items()]
        for each, out in [(method, output), *derived]:
            rows.append(
                {
                    "method": each.label,
                    "evaluation": EVALUATIONS[evaluation],
                    "subject": subject,
                    **out["row"],
                }
            )
            if evaluation == "within" and subject == examples["subject"]:
                examples.update(out["example"])
        if evaluation == "within" and method.key == recorder:
            histories[subject] = output["history"]
            parameters.extend(output["parameters"])
    order = {method.label: k for k, method in enumerate(methods)}
    rows.sort(key=lambda r: (r["evaluation"] != EVALUATIONS["within"], order[r["method"]]))
    return rows, histories, parameters, examples


def _example_traces(data, test, layout, deep) -> dict:
    """Time, truth, inverse-dynamics torque and load of the example sequence among ``test``."""
    first = _example(data, test, layout)
    truth = _truth(data, [first])
    return {
        "time": np.arange(data.X.shape[1]) / float(getattr(data, "rate", 100.0)),
        "truth": None if truth is None else truth[0][:, [data.muscles.index(m) for m in deep]],
        "torque_id": data.X[first, :, data.channels.index(layout.torque)],
        "load_kg": float(data.X[first, 0, data.channels.index(layout.load)]),
    }


def _truth_ranges(data, deep) -> dict:
    """Deep muscle -> range of its truth over all sequences (empty without a truth).

    A deep muscle's NRMSE and r mean little where its truth barely moves.
    """
    truth_range = {}
    for muscle in deep if _truth(data, slice(None)) is not None else ():
        values = data.y_true[..., data.muscles.index(muscle)]
        if np.isfinite(values).any():
            truth_range[muscle] = float(np.nanmax(values) - np.nanmin(values))
    return truth_range


def _band(data, split, params, n_members, n_jobs, layout, deep) -> dict:
    """The NMM ensemble of the deep-EMG figure.

    Its mean and calibrated SD on the example sequence, and the share of the deep muscles'
    truth inside its 90 % band on all the subject's test sequences.
    """
    from ..ensemble import NMMEnsemble
    from ..regressor import NMMRegressor

    _, train, test = split
    seed = params.get("random_state")
    template = NMMRegressor(**{**params, "random_state": None})
    model = NMMEnsemble(template, n_members=n_members, n_jobs=n_jobs, random_state=seed)
    model.fit(data.X[train], data.y[train], subject_ids=data.groups[train])
    columns = [data.muscles.index(m) for m in deep]
    mean, std = model.predict(data.X[test], data.groups[test], return_std=True)
    shown = int(np.flatnonzero(test == _example(data, test, layout))[0])
    band = {
        "nmm": mean[shown][:, columns],
        "nmm_std": std[shown][:, columns],
        "band_members": n_members,
        "uncertainty_scale": model.uncertainty_scale_,
    }
    truth = _truth(data, test)
    if truth is not None:
        inside = np.abs(truth - mean) <= 1.6448536269514722 * std
        band["band_coverage"] = {
            m: float(inside[..., j].mean()) for m, j in zip(deep, columns, strict=True)
        }
    return band
