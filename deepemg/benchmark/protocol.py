"""The benchmark's protocol: its settings, data and splits, and the fit of one fold.

* **within subject** (:func:`within_subject_splits`): each subject's first ``train_fraction``
  of the sequences train, the rest test;
* **leave one subject out**: each subject is tested on a fit to the others (personalised on
  its own sequences where the method says so).

Loads beyond the training range (``data.beyond_training``) are only ever tested. Every fold
is one call of :func:`_run_fold`: the method's fit (or ``adapt``) timed, then its scores on the
test sequences (:mod:`deepemg.metrics`: :func:`~deepemg.metrics.deep_muscle_metrics`,
:func:`~deepemg.metrics.within_trial_r`, :func:`~deepemg.metrics.torque_nrmse`) and, within
subject, the example traces the report draws.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.utils import Bunch

from ..channels import ChannelLayout, joint_name
from ..metrics import deep_muscle_metrics, level_error, torque_nrmse, within_trial_r

__all__ = ["EVALUATIONS", "BenchmarkSettings", "simulated_subjects", "within_subject_splits"]

EVALUATIONS = {"within": "within subject", "loso": "leave one subject out"}
"""Evaluation key -> its name in the rows and tables."""


@dataclass
class BenchmarkSettings:
    """What :func:`~deepemg.benchmark.run_benchmark` fits and on which simulated data.

    Parameters
    ----------
    n_subjects, n_trials : int, default=5, 12
        Simulated subjects and trials per subject (:func:`deepemg.datasets.make_elbow_lifting`).
    duration : float, default=5.0
        Trial length (s).
    train_fraction : float, default=2/3
        Fraction of each subject's sequences that train within subject.
    max_epochs : int, default=30
        NMM epochs within subject (the estimator's default; 60 until 0.6).
    loso_epochs : int, default=30
        NMM epochs across subjects (each epoch sees all the other subjects' sequences).
    loso : bool, default=True
        Run leave one subject out.
    ablation : bool, default=True
        Also fit the NMM with ``physics_weight=0`` within subject.
    random_state : int, default=0
        Seed of the data and of every fit.
    scenario : str, default="default"
        The simulated data: a key of :data:`deepemg.datasets.SCENARIOS`
        (:func:`deepemg.datasets.make_scenario`); "default" is
        :func:`~deepemg.datasets.make_elbow_lifting`'s subjects.
    pretrained : bool, default=False
        Also fit, within subject, the NMM pretrained on the other subjects (their training-range
        sequences) and personalised on the subject's own training sequences
        (``"nmm_pretrained"``).
    band_members : int, default=5
        Members of the NMM ensemble fitted on the first subject's training sequences for the
        deep-EMG figure's 90 % band (its coverage of the truth on that subject's test
        sequences is recorded); 0 or 1: no band.
    nmm_params : dict
        Further :class:`~deepemg.NMMRegressor` parameters.
    mse_params : dict
        Further :class:`~baselines.SynergyExtrapolationRegressor` parameters.
    """

    n_subjects: int = 5
    n_trials: int = 12
    duration: float = 5.0
    train_fraction: float = 2 / 3
    max_epochs: int = 30
    loso_epochs: int = 30
    loso: bool = True
    ablation: bool = True
    random_state: int = 0
    scenario: str = "default"
    pretrained: bool = False
    band_members: int = 5
    nmm_params: dict = field(default_factory=dict)
    mse_params: dict = field(default_factory=dict)

    @classmethod
    def quick(cls, **changes) -> BenchmarkSettings:
        """Small settings for a first look and for CI (3 subjects x 9 trials, ablation included).

        ``deepemg benchmark --quick`` runs them and checks its numbers against
        :data:`~deepemg.benchmark.QUICK_FLOORS`.
        """
        settings = dict(n_subjects=3, n_trials=9, loso_epochs=15, band_members=3)
        return cls(**{**settings, **changes})

    def as_dict(self) -> dict:
        """The settings as a plain dict (``BenchmarkResult.settings``, ``settings.json``)."""
        return asdict(self)


def simulated_subjects(settings: BenchmarkSettings, progress: bool = True) -> Bunch:
    """The simulated subjects of ``settings`` (cached after the first call).

    :func:`~deepemg.datasets.make_scenario` of ``settings.scenario`` with the settings' size,
    duration and seed.

    Examples
    --------
    >>> data = simulated_subjects(BenchmarkSettings.quick(), progress=False)  # doctest: +SKIP
    """
    from ..datasets import make_scenario

    return make_scenario(
        settings.scenario,
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


def _folds(data, splits, loso: bool) -> list[tuple]:
    """``(evaluation, subject, train, test)`` of every fold.

    The within-subject splits, then (with ``loso``) each subject left out; loads beyond the
    training range never train.
    """
    groups, beyond = data.groups, _beyond(data)
    folds = [("within", subject, train[~beyond[train]], test) for subject, train, test in splits]
    if loso:
        folds += [
            ("loso", s, np.flatnonzero((groups != s) & ~beyond), np.flatnonzero(groups == s))
            for s in dict.fromkeys(groups.tolist())
        ]
    return folds


# ---------------------------------------------------------------------------- data
def _beyond(data) -> np.ndarray:
    """Per sequence: its load lies beyond the training loads.

    ``data.beyond_training``; all False when the data do not say.
    """
    flags = getattr(data, "beyond_training", None)
    if flags is None:
        return np.zeros(len(data.X), dtype=bool)
    return np.asarray(flags, dtype=bool)


def _example(data, test, layout: ChannelLayout) -> int:
    """The test sequence shown in the figures: the heaviest load (the deep muscles work most)."""
    load = data.X[test, 0, data.channels.index(layout.load)]
    return int(test[np.argmax(load)])


def _truth(data, index):
    """The deep muscles' truth (``data.y_true``) of the sequences ``index``; None without one."""
    truth = getattr(data, "y_true", None)
    return None if truth is None else truth[index]


def _deep_muscles(data) -> list[str]:
    """The muscles scored: ``data.deep_muscles``, else those never measured in ``y``."""
    deep = getattr(data, "deep_muscles", None)
    if deep:
        return list(deep)
    measured = ~np.isnan(data.y).all(axis=(0, 1))
    return [m for m, seen in zip(data.muscles, measured, strict=True) if not seen]


def _layout(data, model, coordinate) -> ChannelLayout:
    """The data's channel layout, checked against the model's joint and for the channels used."""
    layout = ChannelLayout.infer(data.channels)
    joint = joint_name(model, coordinate)
    if layout.joint != joint:
        raise ValueError(
            f"the data's channels are those of the joint '{layout.joint}' ({layout.angle}, ...) "
            f"but the model's joint is '{joint}' (channels {joint}_angle, ...): load the data "
            "with the same model and coordinate (deepemg.io.load_trials(model=..., "
            "coordinate=...))."
        )
    missing = [c for c in (layout.load, layout.torque) if c not in data.channels]
    if missing:
        raise ValueError(
            f"the benchmark needs X's channels {missing} (the load picks the example sequence, "
            f"the torque is scored); the data's channels are {list(data.channels)}."
        )
    return layout


# ---------------------------------------------------------------------------- folds
def _predict(model, X, subject) -> np.ndarray:
    """``model.predict(X)``, given the subject when it takes ``subject_ids``.

    The NMM's prediction-time physics uses the subject's own parameters.
    """
    if "subject_ids" in inspect.signature(model.predict).parameters:
        return model.predict(X, subject_ids=np.full(len(X), subject))
    return model.predict(X)


def _scores(
    model, X, truth, muscles, deep, subject, layout: ChannelLayout, channels, beyond=None
) -> dict:
    """The row of scores of a fitted ``model`` on the test sequences ``X``.

    The columns of :data:`~deepemg.benchmark.SCORES` per deep muscle and ``torque_nrmse``;
    ``beyond`` flags the sequences whose load lies beyond the training loads.
    """
    prediction = _predict(model, X, subject)
    beyond = np.zeros(len(X), dtype=bool) if beyond is None else np.asarray(beyond, dtype=bool)
    row = {}
    for muscle in deep:
        j = muscles.index(muscle)
        values = truth[..., j] if truth is not None else np.full(X.shape[:2], np.nan)
        row[f"{muscle}_r"], row[f"{muscle}_nrmse"] = deep_muscle_metrics(values, prediction[..., j])
        row[f"{muscle}_r_trial"] = within_trial_r(values, prediction[..., j])
        row[f"{muscle}_level_error"] = level_error(values, prediction[..., j])
        row[f"{muscle}_r_beyond"] = (
            deep_muscle_metrics(values[beyond], prediction[beyond, :, j])[0]
            if beyond.any()
            else np.nan
        )
    row["torque_nrmse"] = np.nan
    if hasattr(model, "predict_torque"):
        tau_id = X[..., channels.index(layout.torque)]
        torque = model.predict_torque(X, np.full(len(X), subject))
        row["torque_nrmse"] = torque_nrmse(tau_id, torque)
    return row


def _run_fold(method, evaluation, data, subject, train, test, params, deep, layout, derived=()):
    """Fit ``method`` on one fold; score it and the methods derived from it.

    Within subject it is fitted on ``train``, else ``test``'s subject is left out. The
    ``derived`` methods predict with the same fitted estimator.
    """
    start = time.perf_counter()
    if evaluation == "within":
        model = method.fit(data, train, params)
    else:
        model = method.adapt(data, train, test, params)
    fit_s = time.perf_counter() - start
    output = _fold_output(method, evaluation, data, subject, test, deep, layout, model, fit_s)
    output["derived"] = {}
    for other in derived:
        original = {k: v for k, v in model.get_params().items() if k in other.predict_params}
        model.set_params(**other.predict_params)
        try:
            output["derived"][other.key] = _fold_output(
                other, evaluation, data, subject, test, deep, layout, model, fit_s
            )
        finally:
            model.set_params(**original)
    return output


def _fold_output(method, evaluation, data, subject, test, deep, layout, model, fit_s) -> dict:
    """The row (and, within subject, the example traces and records) of a fitted model."""
    row = _scores(
        model,
        data.X[test],
        _truth(data, test),
        data.muscles,
        deep,
        subject,
        layout,
        data.channels,
        beyond=_beyond(data)[test],
    )
    output = {"row": {**row, "fit_s": fit_s}, "example": {}}
    if evaluation != "within":
        return output
    shown = data.X[[_example(data, test, layout)]]
    if method.legend is not None:
        columns = [data.muscles.index(m) for m in deep]
        output["example"][method.key] = _predict(model, shown, subject)[0][:, columns]
    if method.torque_legend is not None:
        output["example"][f"torque_{method.key}"] = model.predict_torque(shown, [subject])[0]
    if method.record is not None:
        output.update(method.record(model))
    return output
