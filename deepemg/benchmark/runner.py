"""The benchmark's run: :func:`run_benchmark` fits every method on every fold and scores them.

Every fold is one :func:`joblib.delayed` task run by :class:`joblib.Parallel`, so ``n_jobs``
and any joblib backend (``joblib.parallel_backend("dask")`` for a Dask cluster) spread the
folds; each fit is seeded by ``random_state``, so the results do not depend on the backend or
on ``n_jobs``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
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

__all__ = ["run_benchmark", "run_benchmarks"]

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
    return run_benchmarks(
        {"": settings or BenchmarkSettings()},
        None if data is None else {"": data},
        model=model,
        coordinate=coordinate,
        locked=locked,
        n_jobs=n_jobs,
        progress=progress,
    )[""]


def run_benchmarks(
    settings: Mapping[str, BenchmarkSettings],
    data: Mapping[str, Bunch] | None = None,
    *,
    model="elbow",
    coordinate: str = "r_elbow_flex",
    locked: dict | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> dict[str, BenchmarkResult]:
    """:func:`run_benchmark` on several data sets (the scenarios), every fit in one pool.

    The fits of all runs go to one :class:`joblib.Parallel`, the longest first (expected cost:
    training sequences x epochs), so no core waits at the end of each run for its last fit:
    with ``n_jobs`` workers, one run after another leaves ``n_jobs - 1`` of them idle while the
    last leave-one-subject-out fit of each run ends. The results are those of separate
    :func:`run_benchmark` calls (each fit is seeded by its settings).

    Parameters
    ----------
    settings : mapping of str to BenchmarkSettings
        Name of each run (e.g. its scenario) -> its settings, in the order of the result.
    data : mapping of str to Bunch, optional
        Name -> its data, as :func:`run_benchmark` takes them; a name not given: the simulated
        subjects of its settings.
    model, coordinate, locked, n_jobs, progress
        As :func:`run_benchmark`; the progress bar counts the fits of all runs.

    Returns
    -------
    dict of str to BenchmarkResult
        One per name of ``settings``. Each ``elapsed_s`` is the wall time of the whole pooled
        run (the runs' fits are interleaved) and ``pooled`` names the runs that shared it.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from deepemg.benchmark import BenchmarkSettings, run_benchmarks
    >>> quick = BenchmarkSettings.quick(max_epochs=2, loso=False)
    >>> runs = {name: replace(quick, scenario=name) for name in ("default", "motions")}
    >>> results = run_benchmarks(runs, progress=False)  # doctest: +SKIP
    >>> sorted(results)  # doctest: +SKIP
    ['default', 'motions']
    """
    start = time.perf_counter()
    started_utc = datetime.now(UTC).isoformat(timespec="seconds")
    data = dict(data or {})
    common = dict(model=model, coordinate=coordinate, locked=locked)
    plans = {name: _plan(data.get(name), each, common, progress) for name, each in settings.items()}
    tasks = [(name, task) for name, plan in plans.items() for task in plan["tasks"]]
    order = sorted(range(len(tasks)), key=lambda k: -tasks[k][1][3])
    planned, threads_per_fit = plan_workers(n_jobs, len(tasks))
    n_jobs = planned if n_jobs is None else n_jobs
    outputs = Parallel(n_jobs=n_jobs, return_as="generator")(tasks[k][1][4] for k in order)
    done: dict[int, dict] = {}
    for k, output in zip(order, _progress(outputs, tasks, order, progress), strict=True):
        done[k] = output
    results, offset = {}, 0
    for name, plan in plans.items():
        count = len(plan["tasks"])
        own = [done[offset + k] for k in range(count)]
        offset += count
        results[name] = _result(plan, own, n_jobs)
    elapsed = time.perf_counter() - start
    pooled = tuple(results) if len(results) > 1 else ()
    for result in results.values():
        result.elapsed_s = elapsed
        result.n_jobs, result.threads_per_fit = n_jobs, threads_per_fit
        result.started_utc, result.pooled = started_utc, pooled
    return results


def _plan(data, settings: BenchmarkSettings, common: dict, progress: bool) -> dict:
    """Everything one run needs before its fits: checked data, folds, methods and fit tasks."""
    data, layout, deep = _checked(data, settings, common["model"], common["coordinate"], progress)
    common = {**common, "channels": data.channels}
    splits, folds = _planned_folds(data, settings)
    methods = [m for m in METHODS.values() if m.enabled(settings)]
    return dict(
        data=data,
        layout=layout,
        deep=deep,
        common=common,
        settings=settings,
        splits=splits,
        folds=folds,
        methods=methods,
        tasks=_tasks(folds, methods, settings, common, data, deep, layout),
    )


def _progress(outputs, tasks, order, progress: bool):
    """``outputs`` with a tqdm bar over the fits, naming the one that ended."""
    from tqdm.auto import tqdm

    bar = tqdm(outputs, total=len(tasks), desc="benchmark", unit="fit", disable=not progress)
    for k, output in zip(order, bar, strict=False):
        name, (evaluation, method, subject, *_) = tasks[k]
        where = f"{name}: " if name else ""
        bar.set_postfix_str(f"{where}{method.label}, {EVALUATIONS[evaluation]}, {subject}")
        yield output


def _result(plan: dict, outputs: list, n_jobs: int) -> BenchmarkResult:
    """The :class:`BenchmarkResult` of one run from its fits' outputs (in its tasks' order)."""
    data, layout, deep, splits = plan["data"], plan["layout"], plan["deep"], plan["splits"]
    settings, methods = plan["settings"], plan["methods"]
    first = splits[0][0] if splits else None
    rows, histories, parameters, examples, adequacy = _collect(
        plan["tasks"], outputs, methods, first
    )
    if splits:
        examples.update(_example_traces(data, splits[0][2], layout, deep))
    if splits and settings.band_members >= 2:
        params = METHODS[BAND_METHOD].params(settings, plan["common"], "within")
        examples.update(
            _band(data, plan["folds"][0][1:], params, settings.band_members, n_jobs, layout, deep)
        )
    return BenchmarkResult(
        rows=rows,
        deep_muscles=deep,
        examples=examples,
        histories=histories,
        parameters=parameters,
        true_parameters=getattr(data, "true_params", None),
        settings=settings.as_dict(),
        joint=layout.joint,
        machine=machine_info(),
        truth_range=_truth_ranges(data, deep),
        adequacy=adequacy,
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
    """``(evaluation, method, subject, expected cost, delayed call)`` of every fit.

    Each method with a fit of its own, on each fold it runs; the methods derived from it are
    scored in the same call. The expected cost orders the pool (:func:`_expected_cost`).
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
                cost = _expected_cost(params, len(train), len(data.groups))
                tasks.append((evaluation, method, subject, cost, call))
    return tasks


def _expected_cost(params: dict, n_train: int, n_sequences: int) -> float:
    """Training sequences x epochs of a fit: what orders the pool, longest first.

    ``loso_epochs`` (a pretrained fit) counts over every sequence; a fit without epochs (MSE)
    costs its sequences only, far below any network's.
    """
    epochs = params.get("max_epochs") or 1
    return float(n_train * epochs + n_sequences * (params.get("loso_epochs") or 0))


def _collect(tasks, outputs, methods, first) -> tuple[list, dict, list, dict, list]:
    """Rows, histories, learned parameters, example traces and adequacy of the folds' outputs.

    The rows within subject first, each evaluation's in the order of ``methods``; the examples
    are those of the within-subject fold of the subject ``first``; histories and parameters
    those of the first method with a ``record``, as are the adequacy rows (one per subject,
    :func:`deepemg.adequacy.adequacy_table`).
    """
    rows, histories, parameters = [], {}, []
    adequacy: list[dict] = []
    recorder = next((m.key for m in methods if m.record is not None), None)
    examples = {"subject": first}
    for (evaluation, method, subject, *_), output in zip(tasks, outputs, strict=True):
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
            adequacy.extend({**row, "subject": subject} for row in output.get("adequacy", []))
    order = {method.label: k for k, method in enumerate(methods)}
    rows.sort(key=lambda r: (r["evaluation"] != EVALUATIONS["within"], order[r["method"]]))
    return rows, histories, parameters, examples, adequacy


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
