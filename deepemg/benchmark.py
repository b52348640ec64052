"""The paper-style benchmark: NMM against muscle synergy extrapolation, within and across subjects.

:func:`run_benchmark` fits :class:`deepemg.NMMRegressor` and
:class:`baselines.SynergyExtrapolationRegressor` (MSE) on the same splits and scores the deep
muscles against their truth (where one exists) and the NMM's muscle torque against inverse
dynamics:

* **within subject**: each subject's first ``train_fraction`` of the sequences train, the rest
  test. The NMM predicts the test sequences from kinematics and load only; MSE is fitted on the
  training sequences and reads the test sequences' surface EMG, as MSE is used.
* **leave one subject out**: the NMM is fitted on the other subjects, then
  :meth:`~deepemg.NMMRegressor.personalize`\\ d on the held-out subject's kinematics, load,
  torque and surface EMG (no deep labels); MSE is fitted on the held-out subject's own surface
  EMG and torque.

Every fold is one :func:`joblib.delayed` task run by :class:`joblib.Parallel`, so
``n_jobs`` and any joblib backend (``joblib.parallel_backend("dask")`` for a Dask cluster)
spread the folds; each fit is seeded by ``random_state``, so the results do not depend on the
backend or on ``n_jobs``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
from joblib import Parallel, delayed
from sklearn.utils import Bunch

from .validation import TORQUE_CHANNEL

__all__ = [
    "BenchmarkResult",
    "BenchmarkSettings",
    "deep_muscle_metrics",
    "format_score",
    "format_table",
    "run_benchmark",
    "simulated_subjects",
    "within_subject_splits",
]

METHODS = {"nmm": "NMM", "nmm_no_physics": "NMM, physics_weight=0", "mse": "MSE"}
EVALUATIONS = {"within": "within subject", "loso": "leave one subject out"}


@dataclass
class BenchmarkSettings:
    """What :func:`run_benchmark` fits and on which simulated data.

    Parameters
    ----------
    n_subjects, n_trials : int, default=5, 12
        Simulated subjects and trials per subject (:func:`deepemg.datasets.make_elbow_lifting`).
    duration : float, default=5.0
        Trial length (s).
    train_fraction : float, default=2/3
        Fraction of each subject's sequences that train within subject.
    max_epochs : int, default=60
        NMM epochs within subject.
    loso_epochs : int, default=30
        NMM epochs across subjects (each epoch sees all the other subjects' sequences).
    loso : bool, default=True
        Run leave one subject out.
    ablation : bool, default=True
        Also fit the NMM with ``physics_weight=0`` within subject.
    random_state : int, default=0
        Seed of the data and of every fit.
    nmm_params : dict
        Further :class:`~deepemg.NMMRegressor` parameters.
    mse_params : dict
        Further :class:`~baselines.SynergyExtrapolationRegressor` parameters.
    """

    n_subjects: int = 5
    n_trials: int = 12
    duration: float = 5.0
    train_fraction: float = 2 / 3
    max_epochs: int = 60
    loso_epochs: int = 30
    loso: bool = True
    ablation: bool = True
    random_state: int = 0
    nmm_params: dict = field(default_factory=dict)
    mse_params: dict = field(default_factory=dict)

    @classmethod
    def quick(cls, **changes) -> BenchmarkSettings:
        """Small settings for a first look (3 subjects x 9 trials, no ablation; 2-3 minutes)."""
        settings = dict(n_subjects=3, n_trials=9, loso_epochs=20, ablation=False)
        return cls(**{**settings, **changes})

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class BenchmarkResult:
    """Scores, example traces, training curves and learned parameters of a benchmark run.

    Attributes
    ----------
    rows : list of dict
        One row per method, evaluation and subject: ``method``, ``evaluation``, ``subject``,
        ``<muscle>_r`` and ``<muscle>_nrmse`` for each deep muscle (NaN without a truth),
        ``torque_nrmse`` (NaN for methods without a torque) and ``fit_s`` (s).
    deep_muscles : list of str
        Muscles scored.
    examples : dict
        ``time`` (s), ``truth`` (n_timesteps, n_deep or None), ``nmm`` / ``mse`` predictions of
        the deep muscles, ``torque_id`` and ``torque_nmm`` (N·m) on the first subject's test
        sequence with the heaviest load, within subject; ``subject``.
    histories : dict
        Subject -> list of per-epoch dicts (``epoch``, ``data``, ``physics``, ``effort``,
        ``loss``) of the NMM's within-subject fit.
    parameters : list of dict
        The NMM's learned subject parameters (within subject), rows of
        :meth:`deepemg.physics.SubjectParameters.table`.
    true_parameters : list of dict or None
        The simulated subjects' true parameters (``true_params`` of the data), if known.
    settings : dict
    elapsed_s : float
        Wall time of the run (s).
    """

    rows: list
    deep_muscles: list
    examples: dict
    histories: dict
    parameters: list
    true_parameters: list | None
    settings: dict
    elapsed_s: float = 0.0

    @property
    def columns(self) -> list[str]:
        """Score columns, in table order."""
        deep = [f"{m}_{k}" for m in self.deep_muscles for k in ("r", "nrmse")]
        return [*deep, "torque_nrmse", "fit_s"]

    def summary(self) -> list[dict]:
        """Mean and SD over subjects of every score, one row per method and evaluation."""
        out = []
        for key in dict.fromkeys((r["evaluation"], r["method"]) for r in self.rows):
            rows = [r for r in self.rows if (r["evaluation"], r["method"]) == key]
            row = {"evaluation": key[0], "method": key[1], "n_subjects": len(rows)}
            for column in self.columns:
                values = np.array([r[column] for r in rows], dtype=float)
                finite = values[np.isfinite(values)]
                row[f"{column}_mean"] = float(finite.mean()) if finite.size else np.nan
                row[f"{column}_sd"] = float(finite.std()) if finite.size else np.nan
            out.append(row)
        return out


def simulated_subjects(settings: BenchmarkSettings, progress: bool = True) -> Bunch:
    """The simulated subjects of ``settings`` (:func:`~deepemg.datasets.make_elbow_lifting`).

    Examples
    --------
    >>> data = simulated_subjects(BenchmarkSettings.quick(), progress=False)  # doctest: +SKIP
    """
    from .datasets import make_elbow_lifting

    return make_elbow_lifting(
        n_subjects=settings.n_subjects,
        n_trials=settings.n_trials,
        duration=settings.duration,
        random_state=settings.random_state,
        progress=progress,
    )


def within_subject_splits(groups, train_fraction: float = 2 / 3) -> list[tuple]:
    """``(subject, train, test)`` index arrays: each subject's first sequences train.

    Parameters
    ----------
    groups : array-like of shape (n_sequences,)
        Subject of each sequence.
    train_fraction : float, default=2/3
        Fraction of a subject's sequences (rounded, at least one, at most all but one) that
        train.

    Returns
    -------
    list of (label, ndarray, ndarray)
        Subjects with fewer than 2 sequences are left out.

    Examples
    --------
    >>> within_subject_splits(["a", "a", "a", "b", "b", "b"])
    [('a', array([0, 1]), array([2])), ('b', array([3, 4]), array([5]))]
    """
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}.")
    groups = np.asarray(groups)
    splits = []
    for subject in dict.fromkeys(groups.tolist()):
        index = np.flatnonzero(groups == subject)
        if len(index) < 2:
            continue
        n_train = int(np.clip(round(train_fraction * len(index)), 1, len(index) - 1))
        splits.append((subject, index[:n_train], index[n_train:]))
    return splits


def deep_muscle_metrics(truth, prediction) -> tuple[float, float]:
    """Pearson r and NRMSE (RMSE over the truth's range) of one muscle, time flattened.

    NaN where the truth is missing or constant.

    Examples
    --------
    >>> t = np.linspace(0, 1, 101)
    >>> r, nrmse = deep_muscle_metrics(t, t + 0.1)
    >>> round(r, 6), round(nrmse, 6)
    (1.0, 0.1)
    """
    truth, prediction = np.ravel(truth).astype(float), np.ravel(prediction).astype(float)
    keep = np.isfinite(truth)
    truth, prediction = truth[keep], prediction[keep]
    if truth.size < 2 or np.ptp(truth) == 0:
        return np.nan, np.nan
    r = float(np.corrcoef(truth, prediction)[0, 1]) if prediction.std() > 0 else np.nan
    return r, float(np.sqrt(np.mean((truth - prediction) ** 2)) / np.ptp(truth))


def _scores(model, X, truth, muscles, deep, subject, channels) -> dict:
    prediction = model.predict(X)
    row = {}
    for muscle in deep:
        j = muscles.index(muscle)
        values = truth[..., j] if truth is not None else np.full(X.shape[:2], np.nan)
        row[f"{muscle}_r"], row[f"{muscle}_nrmse"] = deep_muscle_metrics(values, prediction[..., j])
    tau_id = X[..., channels.index(TORQUE_CHANNEL)]
    torque = model.predict_torque(X, np.full(len(X), subject))
    row["torque_nrmse"] = float(np.sqrt(np.mean((torque - tau_id) ** 2)) / np.ptp(tau_id))
    return row


def _history(net) -> list[dict]:
    keys = {
        "data": "train_data_loss",
        "physics": "train_physics_loss",
        "effort": "train_effort_loss",
        "synergy": "train_synergy_loss",
        "loss": "train_loss",
    }
    return [
        {"epoch": int(h["epoch"]), **{k: float(h[v]) for k, v in keys.items() if v in h}}
        for h in net.history
    ]


def _fit_nmm_within(data, subject, train, test, params, deep) -> dict:
    from . import NMMRegressor

    start = time.perf_counter()
    model = NMMRegressor(**params)
    model.fit(data.X[train], data.y[train], subject_ids=data.groups[train])
    fit_s = time.perf_counter() - start
    row = _scores(
        model, data.X[test], _truth(data, test), data.muscles, deep, subject, data.channels
    )
    shown = data.X[[_example(data, test)]]
    columns = [data.muscles.index(m) for m in deep]
    example = {
        "nmm": model.predict(shown)[0][:, columns],
        "torque_nmm": model.predict_torque(shown, [subject])[0],
    }
    return {
        "row": {**row, "fit_s": fit_s},
        "example": example,
        "history": _history(model.net_),
        "parameters": model.subject_params_,
    }


def _fit_mse(data, subject, train, test, params, deep) -> dict:
    from baselines import SynergyExtrapolationRegressor

    start = time.perf_counter()
    model = SynergyExtrapolationRegressor(**params)
    model.fit(data.X[train], subject_ids=data.groups[train])
    fit_s = time.perf_counter() - start
    row = _scores(
        model, data.X[test], _truth(data, test), data.muscles, deep, subject, data.channels
    )
    shown = data.X[[_example(data, test)]]
    example = model.predict(shown)[0][:, [data.muscles.index(m) for m in deep]]
    return {"row": {**row, "fit_s": fit_s}, "example": {"mse": example}}


def _fit_nmm_loso(data, held_out, params, deep) -> dict:
    from . import NMMRegressor

    train = np.flatnonzero(data.groups != held_out)
    test = np.flatnonzero(data.groups == held_out)
    start = time.perf_counter()
    model = NMMRegressor(**params)
    model.fit(data.X[train], data.y[train], subject_ids=data.groups[train])
    model.personalize(data.X[test], data.y[test], subject_ids=data.groups[test])
    fit_s = time.perf_counter() - start
    row = _scores(
        model, data.X[test], _truth(data, test), data.muscles, deep, held_out, data.channels
    )
    return {"row": {**row, "fit_s": fit_s}}


def _example(data, test) -> int:
    """The test sequence shown in the figures: the heaviest load (the deep muscles work most)."""
    load = data.X[test, 0, data.channels.index("load_mass")]
    return int(test[np.argmax(load)])


def _truth(data, index):
    truth = getattr(data, "y_true", None)
    return None if truth is None else truth[index]


def _deep_muscles(data) -> list[str]:
    deep = getattr(data, "deep_muscles", None)
    if deep:
        return list(deep)
    measured = ~np.isnan(data.y).all(axis=(0, 1))
    return [m for m, seen in zip(data.muscles, measured, strict=True) if not seen]


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
    """Fit the NMM and MSE within subject and leave one subject out; score the deep muscles.

    Parameters
    ----------
    data : Bunch, optional
        ``X`` (n_sequences, n_timesteps, n_channels) with ``channels``, ``y`` (NaN where a
        muscle was not measured), ``muscles``, ``groups``; optionally ``y_true`` (the deep
        muscles' truth), ``deep_muscles`` and ``true_params``, as
        :func:`~deepemg.datasets.make_elbow_lifting` and :func:`~deepemg.io.load_trials`
        return. Default: :func:`simulated_subjects` of ``settings``. Without ``y_true`` the
        deep muscles (those never measured) have no truth and their scores are NaN.
    settings : BenchmarkSettings, optional
        Epochs, splits, what to run. Default: ``BenchmarkSettings()``.
    model, coordinate, locked
        The musculoskeletal model of both estimators (see :class:`~deepemg.NMMRegressor`).
    n_jobs : int, optional
        Folds run in parallel by :class:`joblib.Parallel` (any joblib backend).
    progress : bool, default=True
        Show a progress bar over the folds (tqdm).

    Returns
    -------
    BenchmarkResult

    Raises
    ------
    ValueError
        When no subject has 2 sequences (nothing to split) and leave one subject out is off
        or there is only one subject.

    Examples
    --------
    >>> from deepemg.benchmark import BenchmarkSettings, run_benchmark
    >>> settings = BenchmarkSettings.quick(max_epochs=2, loso=False)
    >>> result = run_benchmark(settings=settings, progress=False)  # doctest: +SKIP
    >>> result.summary()[0]["BRA_r_mean"]  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    settings = settings or BenchmarkSettings()
    start = time.perf_counter()
    if data is None:
        data = simulated_subjects(settings, progress=progress)
    data = Bunch(**data)
    deep = _deep_muscles(data)
    if not deep:
        raise ValueError(
            "every muscle of y is measured in some sequence: there is no deep muscle to "
            "reconstruct. Leave the deep muscles' columns NaN (unmeasured)."
        )
    groups = data.groups = np.asarray(data.groups)
    common = dict(model=model, coordinate=coordinate, locked=locked, channels=data.channels)
    seed = settings.random_state
    nmm = {**common, "random_state": seed, "max_epochs": settings.max_epochs, **settings.nmm_params}
    mse = {**common, "random_state": seed, **settings.mse_params}
    splits = within_subject_splits(groups, settings.train_fraction)
    subjects = list(dict.fromkeys(groups.tolist()))
    if not splits and not (settings.loso and len(subjects) > 1):
        raise ValueError(
            "nothing to evaluate: no subject has 2 sequences to split, and leave one subject "
            "out needs 2 subjects. Cut long trials into sequences (load_trials(n_timesteps=...)) "
            "or add trials."
        )

    tasks = []  # (evaluation, method, subject, delayed call)
    for subject, train, test in splits:
        tasks.append(
            (
                "within",
                "nmm",
                subject,
                delayed(_fit_nmm_within)(data, subject, train, test, nmm, deep),
            )
        )
        if settings.ablation:
            ablated = {**nmm, "physics_weight": 0.0}
            tasks.append(
                (
                    "within",
                    "nmm_no_physics",
                    subject,
                    delayed(_fit_nmm_within)(data, subject, train, test, ablated, deep),
                )
            )
        tasks.append(
            ("within", "mse", subject, delayed(_fit_mse)(data, subject, train, test, mse, deep))
        )
    if settings.loso and len(subjects) > 1:
        across = {**nmm, "max_epochs": settings.loso_epochs}
        for subject in subjects:
            own = np.flatnonzero(groups == subject)
            tasks.append(
                ("loso", "nmm", subject, delayed(_fit_nmm_loso)(data, subject, across, deep))
            )
            tasks.append(
                ("loso", "mse", subject, delayed(_fit_mse)(data, subject, own, own, mse, deep))
            )

    outputs = Parallel(n_jobs=n_jobs, return_as="generator")(call for *_, call in tasks)
    bar = tqdm(outputs, total=len(tasks), desc="benchmark", unit="fit", disable=not progress)
    rows, histories, parameters = [], {}, []
    examples = {"subject": splits[0][0] if splits else None}
    for (evaluation, method, subject, _), output in zip(tasks, bar, strict=True):
        bar.set_postfix_str(f"{METHODS[method]}, {EVALUATIONS[evaluation]}, {subject}")
        rows.append(
            {
                "method": METHODS[method],
                "evaluation": EVALUATIONS[evaluation],
                "subject": subject,
                **output["row"],
            }
        )
        if evaluation == "within" and method == "nmm":
            histories[subject] = output["history"]
            parameters.extend(output["parameters"])
        if evaluation == "within" and subject == examples["subject"] and method != "nmm_no_physics":
            examples.update(output["example"])
    if splits:
        first = _example(data, splits[0][2])
        truth = _truth(data, [first])
        examples["time"] = np.arange(data.X.shape[1]) / float(getattr(data, "rate", 100.0))
        examples["truth"] = (
            None if truth is None else truth[0][:, [data.muscles.index(m) for m in deep]]
        )
        examples["torque_id"] = data.X[first, :, data.channels.index(TORQUE_CHANNEL)]
    order = {name: k for k, name in enumerate(METHODS.values())}
    rows.sort(key=lambda r: (r["evaluation"] != EVALUATIONS["within"], order[r["method"]]))
    return BenchmarkResult(
        rows=rows,
        deep_muscles=deep,
        examples=examples,
        histories=histories,
        parameters=parameters,
        true_parameters=getattr(data, "true_params", None),
        settings=settings.as_dict(),
        elapsed_s=time.perf_counter() - start,
    )


def format_table(result: BenchmarkResult, subjects: bool = True) -> str:
    """The results as a plain-text table, per subject and mean ± SD.

    Parameters
    ----------
    result : BenchmarkResult
    subjects : bool, default=True
        Include one line per subject, not only mean ± SD.
    """
    columns = result.columns
    header = f"{'method':<24}{'subject':<9}" + "".join(f"{c:>16}" for c in columns)
    summaries = result.summary()
    lines = []
    for evaluation in dict.fromkeys(s["evaluation"] for s in summaries):
        block = [s for s in summaries if s["evaluation"] == evaluation]
        lines += ["", f"{evaluation} ({block[0]['n_subjects']} subjects)", header]
        for summary in block:
            if subjects:
                lines += [
                    f"{row['method']:<24}{str(row['subject']):<9}"
                    + "".join(format_score(row[c], c) for c in columns)
                    for row in result.rows
                    if (row["evaluation"], row["method"]) == (evaluation, summary["method"])
                ]
            lines.append(
                f"{summary['method']:<24}{'mean±SD':<9}"
                + "".join(
                    format_score(summary[f"{c}_mean"], c, summary[f"{c}_sd"]) for c in columns
                )
            )
    return "\n".join(lines[1:])


def format_score(value, column: str, sd=None) -> str:
    """One table cell, right-aligned in 16 characters: r and NRMSE to 3 decimals, torque
    NRMSE in per cent, fit time in s, ``n/a`` for NaN.

    Examples
    --------
    >>> format_score(0.1234, "torque_nrmse", 0.01).strip()
    '12.3%±1.0'
    """
    if value is None or not np.isfinite(value):
        return f"{'n/a':>16}"
    scale, digits = (100.0, 1) if column == "torque_nrmse" else (1.0, 1 if column == "fit_s" else 3)
    unit = "%" if column == "torque_nrmse" else ""
    text = f"{value * scale:.{digits}f}{unit}"
    if sd is not None and np.isfinite(sd):
        text += f"±{sd * scale:.{digits}f}"
    return f"{text:>16}"
