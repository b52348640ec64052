"""Scorers for scikit-learn's model selection on deepemg's sequences, and the benchmark's scores.

scikit-learn's metrics (``scoring="r2"``, ``"neg_mean_squared_error"``, ...) take 1-D or 2-D
targets without NaN. deepemg's ``y`` and predictions are 3-D, ``(n_sequences, n_timesteps,
n_muscles)``, with NaN for the muscles no electrode records, so those metrics fail on every
fold. scikit-learn would turn each failure into a NaN score with a warning, and a search would
then pick its first candidate: instead, deepemg's estimators refuse such a scorer as soon as
scikit-learn's cross-validation fits them (``cross_validate``, ``GridSearchCV``, ...), with an
error that names it and says what to use. What to use:

* ``scoring=None``: the estimator's own ``score``;
* :func:`surface_r2_scorer`: the R² of the predicted EMG on the measured (surface) channels;
* :func:`leave_one_muscle_out_scorer` with :class:`LeaveOneMuscleOutRegressor` (or the
  synergy baseline): each surface muscle hidden in fit and reconstructed;
* :func:`deep_muscle_r_scorer`: the Pearson r of the deep muscles against a simulated truth
  passed as metadata.

Each scorer requests ``subject_ids`` by default, so that with metadata routing enabled
(``sklearn.set_config(enable_metadata_routing=True)``) the test fold's subjects reach
``predict``: the subject's own muscle model (``predict_physics``) and code
(``subject_embedding``). A subject the fitted estimator does not know (the held-out one of
leave one subject out) is predicted with the population's parameters, with an
:class:`UnseenSubjectWarning` where that changes its EMG;
:class:`deepemg.model_selection.PersonalizedRegressor` personalises it first.

The scores of ``deepemg benchmark`` (:func:`deepemg.benchmark.run_benchmark`) are plain
functions of arrays, here too: :func:`deep_muscle_metrics` (a deep muscle's Pearson r and
NRMSE against its truth), :func:`within_trial_r` (the mean of each trial's own r: the shape over
time, not the load level) and :func:`torque_nrmse` (a muscle torque against inverse dynamics).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from types import FrameType
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metadata_routing import MetadataRequest
from sklearn.utils.validation import check_is_fitted

from .channels import emg_channel, layout_for
from .validation import channel_names, measured_r2

__all__ = [
    "LeaveOneMuscleOutRegressor",
    "SequenceScorer",
    "UnseenSubjectWarning",
    "deep_muscle_metrics",
    "deep_muscle_r_scorer",
    "leave_one_muscle_out_scorer",
    "level_error",
    "surface_r2_scorer",
    "torque_nrmse",
    "within_trial_r",
]

_USE_INSTEAD = (
    "Use scoring=None (the estimator's own score) or a scorer of deepemg.metrics: "
    "surface_r2_scorer(), leave_one_muscle_out_scorer() (with LeaveOneMuscleOutRegressor), "
    "deep_muscle_r_scorer(...)."
)


class UnseenSubjectWarning(UserWarning):
    """Sequences of subjects the fitted estimator does not know were scored as the population.

    They were scored with the population's parameters; personalise them first to score them
    with their own.
    """


# ---------------------------------------------------------------------- predictions
def _subject_matters(estimator) -> bool:
    """Whether an estimator's EMG depends on the subject's fitted parameters."""
    inner = getattr(estimator, "estimator_", estimator)
    params = inner.get_params(deep=False) if hasattr(inner, "get_params") else {}
    if "predict_physics" in params:  # the NMM: its muscle model, EMG level or subject code
        return params["predict_physics"] != "none" or bool(params.get("subject_embedding"))
    return True


def _predict_emg(estimator, X, subject_ids=None) -> np.ndarray:
    """``estimator.predict(X, subject_ids)``, unknown subjects predicted as the population.

    The sequences of subjects it does not know are predicted with the population's parameters
    (``subject_ids=None``), with an :class:`UnseenSubjectWarning` when that changes their EMG.
    """
    if subject_ids is None:
        return estimator.predict(X)
    fitted = getattr(estimator, "subjects_", None)
    if fitted is None:  # not fitted: predict says so
        return estimator.predict(X, subject_ids=subject_ids)
    labels = np.asarray(subject_ids, dtype=object)
    known = set(np.asarray(fitted, dtype=object).tolist())
    unseen = np.array([label not in known for label in labels.tolist()], dtype=bool)
    if not unseen.any():
        return estimator.predict(X, subject_ids=subject_ids)
    if _subject_matters(estimator):
        names = list(dict.fromkeys(labels[unseen].tolist()))
        warnings.warn(
            f"subjects {names} were not seen in fit: their sequences are scored with the "
            f"population's parameters (the only subject's, when {type(estimator).__name__} "
            "was fitted on one). To score them with their own, personalise them first "
            "(deepemg.model_selection.PersonalizedRegressor).",
            UnseenSubjectWarning,
            stacklevel=3,
        )
    X = np.asarray(X)
    parts = {}
    for rows, labels_of_rows in ((unseen, None), (~unseen, labels[~unseen])):
        if rows.any():
            parts[id(rows)] = (rows, estimator.predict(X[rows], subject_ids=labels_of_rows))
    first = next(iter(parts.values()))[1]
    out = np.empty((len(X), *first.shape[1:]))
    for rows, part in parts.values():
        out[rows] = part
    return out


# ---------------------------------------------------------------------- scorers
class SequenceScorer:
    """A scorer for scikit-learn's ``scoring=``: ``scorer(estimator, X, y, **metadata)``.

    Build one with :func:`surface_r2_scorer`, :func:`leave_one_muscle_out_scorer` or
    :func:`deep_muscle_r_scorer`. Greater is better. With metadata routing enabled, the
    metadata named in ``requests`` (``True``) reach the scorer from ``GridSearchCV.fit``'s or
    ``cross_validate``'s ``params``, split with the test fold; change them with
    :meth:`set_score_request`.

    Parameters
    ----------
    score_func : callable
        ``score_func(estimator, X, y, **metadata) -> float``.
    name : str
        What the scorer computes, for its repr and its messages.
    requests : dict, optional
        Metadata requests of its ``score``: name -> ``True`` (routed when passed), ``False``
        (never), ``None`` (an error when passed), or an alias.
    required : sequence of str, default=()
        Metadata it cannot score without.
    applies : callable, optional
        ``applies(estimator) -> str | None``: why the scorer cannot score that estimator
        (None: it can).

    Examples
    --------
    >>> scorer = surface_r2_scorer()
    >>> scorer
    surface_r2_scorer()
    >>> scorer.get_metadata_routing()
    {'score': {'subject_ids': True, 'sample_weight': None}}
    """

    def __init__(
        self,
        score_func: Callable,
        name: str,
        requests: dict | None = None,
        required: Sequence[str] = (),
        applies: Callable | None = None,
    ) -> None:
        self._score_func = score_func
        self._name = name
        self._requests = dict(requests or {})
        self._required = tuple(required)
        self._applies = applies

    def __repr__(self) -> str:
        return self._name

    def __call__(self, estimator, X, y=None, **metadata) -> float:
        """The score of a fitted ``estimator`` on ``X`` and ``y``, with the routed metadata."""
        problem = self._problem(estimator, metadata)
        if problem:
            raise ValueError(problem)
        return float(self._score_func(estimator, X, y, **metadata))

    def _problem(self, estimator, metadata: dict) -> str | None:
        """Why this scorer cannot score ``estimator`` with ``metadata`` (None: it can)."""
        reason = self._applies(estimator) if self._applies is not None else None
        if reason:
            return f"{self._name} cannot score {type(estimator).__name__}: {reason}"
        missing = [k for k in self._required if metadata.get(k) is None]
        if missing:
            return (
                f"{self._name} needs {missing} as metadata of the test fold: enable metadata "
                "routing (sklearn.set_config(enable_metadata_routing=True)) and pass "
                f"{', '.join(f'{k}=...' for k in missing)} to GridSearchCV.fit, or in "
                "cross_validate's params."
            )
        return None

    def set_score_request(self, **requests) -> SequenceScorer:
        """Change which metadata reach the scorer, as scikit-learn's scorers do.

        Each request is ``name=True``, ``False``, ``None`` or an alias. Returns the scorer.
        """
        self._requests.update(requests)
        return self

    def get_metadata_routing(self) -> MetadataRequest:
        """The scorer's metadata requests, for scikit-learn's routing."""
        request = MetadataRequest(owner=self)
        for name, alias in self._requests.items():
            request.score.add_request(param=name, alias=alias)
        return request

    def _accept_sample_weight(self) -> bool:
        # scikit-learn asks a scorer of a dict this when routing is off
        return "sample_weight" in self._requests


def _full_emg(estimator) -> str | None:
    if isinstance(estimator, LeaveOneMuscleOutRegressor):
        return (
            "its predict returns the hidden muscles only; use leave_one_muscle_out_scorer() "
            "(or scoring=None)."
        )
    return None


def _surface_r2(estimator, X, y, *, subject_ids=None, sample_weight=None) -> float:
    if y is None:
        raise ValueError("surface_r2_scorer compares the predicted EMG with y: pass y.")
    return measured_r2(y, _predict_emg(estimator, X, subject_ids), sample_weight=sample_weight)


def surface_r2_scorer() -> SequenceScorer:
    """The R² of the predicted EMG on the channels ``y`` measures (the surface muscles).

    :func:`deepemg.validation.measured_r2` of ``predict(X, subject_ids)`` against ``y``:
    variance-weighted over the measured channels, time flattened, ``sample_weight`` one
    weight per sequence; what ``NMMRegressor.score`` returns. Requests ``subject_ids``
    (routing), so the test fold's subjects are predicted with their own parameters; subjects
    the estimator does not know with the population's (:class:`UnseenSubjectWarning`).

    Returns
    -------
    SequenceScorer

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=2, n_trials=2, duration=1.0, random_state=0,
    ...                           progress=False, cache=False)
    >>> nmm = NMMRegressor(max_epochs=1, window=50, d_model=8, n_heads=2, n_layers=1,
    ...                    predict_physics="none", random_state=0).fit(data.X, data.y)
    >>> score = surface_r2_scorer()(nmm, data.X, data.y)
    >>> score == nmm.score(data.X, data.y)
    True
    """
    return SequenceScorer(
        _surface_r2,
        "surface_r2_scorer()",
        requests={"subject_ids": True, "sample_weight": None},
        applies=_full_emg,
    )


def _leave_one_muscle_out(estimator, X, y, *, subject_ids=None, sample_weight=None) -> float:
    return estimator.score(X, y, sample_weight=sample_weight, subject_ids=subject_ids)


def _hides_muscles(estimator) -> str | None:
    if isinstance(estimator, LeaveOneMuscleOutRegressor) or hasattr(
        estimator, "reconstruct_surface"
    ):
        return None
    return (
        "a fitted estimator has seen every surface muscle; wrap it in "
        "LeaveOneMuscleOutRegressor(estimator), which hides each one in fit "
        "(GridSearchCV's parameters become estimator__<name>)."
    )


def leave_one_muscle_out_scorer() -> SequenceScorer:
    """How well each surface muscle, hidden in fit, is reconstructed: leave one muscle out.

    The ``score`` of a :class:`LeaveOneMuscleOutRegressor` (the NMM fitted once per hidden
    surface muscle, without its EMG) or of ``baselines.SynergyExtrapolationRegressor``
    (each surface channel reconstructed from the others through the synergies): the
    variance-weighted R² of the hidden muscles' reconstructions against their recorded
    envelopes. Real recordings allow it: it scores how the model extrapolates to a muscle it
    has no EMG of, as it must for the deep ones. Requests ``subject_ids`` (routing).

    Returns
    -------
    SequenceScorer

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=2, n_trials=2, duration=1.0, random_state=0,
    ...                           progress=False, cache=False)
    >>> nmm = NMMRegressor(max_epochs=1, window=50, d_model=8, n_heads=2, n_layers=1,
    ...                    predict_physics="none", random_state=0)
    >>> hidden = LeaveOneMuscleOutRegressor(nmm, muscles="BRD").fit(data.X, data.y)
    >>> score = leave_one_muscle_out_scorer()(hidden, data.X, data.y)
    >>> score == hidden.score(data.X, data.y)
    True
    """
    return SequenceScorer(
        _leave_one_muscle_out,
        "leave_one_muscle_out_scorer()",
        requests={"subject_ids": True, "sample_weight": None},
        applies=_hides_muscles,
    )


def _pearson(truth: np.ndarray, prediction: np.ndarray, weight: np.ndarray) -> float:
    """Weighted Pearson r over the finite steps of ``truth``."""
    keep = np.isfinite(truth) & (weight > 0)
    t, p, w = truth[keep], prediction[keep], weight[keep]
    t, p = t - np.average(t, weights=w), p - np.average(p, weights=w)
    denominator = np.sqrt(np.sum(w * t * t) * np.sum(w * p * p))
    if not denominator > 0:
        return 0.0  # a constant truth or prediction: no linear relation to score
    return float(np.sum(w * t * p) / denominator)


def _deep_muscle_r(
    estimator, X, y, *, muscles, emg_truth=None, subject_ids=None, sample_weight=None
) -> float:
    prediction = _predict_emg(estimator, X, subject_ids)
    truth = np.asarray(emg_truth, dtype=np.float64)
    if truth.shape != prediction.shape:
        raise ValueError(
            f"emg_truth must be shaped like the predicted EMG {prediction.shape} (every "
            f"muscle, in the order {list(estimator.muscles_)}), got {truth.shape}."
        )
    names = list(estimator.muscles_)
    if muscles is None:
        if y is None:
            raise ValueError("deep_muscle_r_scorer() without muscles= needs y to find them.")
        y = np.asarray(y, dtype=np.float64)
        chosen = [j for j in range(y.shape[2]) if np.isnan(y[..., j]).all()]
        if not chosen:
            raise ValueError("y measures every muscle: name the muscles to score (muscles=).")
    else:
        unknown = [m for m in muscles if m not in names]
        if unknown:
            raise ValueError(f"muscles {unknown} are not the model's; its muscles: {names}.")
        chosen = [names.index(m) for m in muscles]
    weight = np.ones(prediction.shape[:2])
    if sample_weight is not None:
        weight = weight * np.asarray(sample_weight, dtype=np.float64)[:, None]
    return float(np.mean([_pearson(truth[..., j], prediction[..., j], weight) for j in chosen]))


def deep_muscle_r_scorer(muscles: str | Sequence[str] | None = None) -> SequenceScorer:
    """The Pearson r of muscles' predicted EMG against a truth passed as metadata.

    For deep muscles on simulated data.

    Real recordings have no deep-muscle truth; simulations do
    (``make_elbow_lifting(...).y_true``). The truth reaches the scorer as the metadata
    ``emg_truth`` (an array shaped like ``y``, every muscle), which needs metadata routing:
    ``GridSearchCV(...).fit(X, y, ..., emg_truth=data.y_true)`` or ``cross_validate(...,
    params={..., "emg_truth": data.y_true})``. r is taken over all steps of all sequences of
    the fold (``sample_weight`` weighting sequences) and averaged over the muscles.

    Parameters
    ----------
    muscles : str or sequence of str, optional
        The muscles to score; by default those ``y`` never measures (the deep ones).

    Returns
    -------
    SequenceScorer

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=2, n_trials=2, duration=1.0, random_state=0,
    ...                           progress=False, cache=False)
    >>> nmm = NMMRegressor(max_epochs=1, window=50, d_model=8, n_heads=2, n_layers=1,
    ...                    predict_physics="none", random_state=0).fit(data.X, data.y)
    >>> r = deep_muscle_r_scorer("BRA")(nmm, data.X, data.y, emg_truth=data.y_true)
    >>> -1.0 <= r <= 1.0
    True
    """
    chosen = [muscles] if isinstance(muscles, str) else muscles
    chosen = None if chosen is None else list(chosen)
    arguments = "" if muscles is None else repr(muscles)
    return SequenceScorer(
        partial(_deep_muscle_r, muscles=chosen),  # picklable, for joblib's workers
        f"deep_muscle_r_scorer({arguments})",
        requests={"emg_truth": True, "subject_ids": True, "sample_weight": None},
        required=("emg_truth",),
        applies=_full_emg,
    )


# ---------------------------------------------------------------------- benchmark scores
_MUSCLE_PAIR = """truth, prediction : array-like
        The muscle's true and predicted EMG, any shape (flattened), the same size; steps where
        the truth is NaN are left out."""
"""The parameters of a score of one muscle's flattened EMG, as its docstring gives them."""


def _scores_muscle_pair(score):
    """``score`` with :data:`_MUSCLE_PAIR` in its docstring's ``{muscle_pair}`` (one text)."""
    score.__doc__ = score.__doc__.replace("{muscle_pair}", _MUSCLE_PAIR)
    return score


def _where_known(truth, prediction) -> tuple[np.ndarray, np.ndarray]:
    """Both flattened to floats, at the steps where the truth is finite."""
    truth, prediction = np.ravel(truth).astype(float), np.ravel(prediction).astype(float)
    keep = np.isfinite(truth)
    return truth[keep], prediction[keep]


@_scores_muscle_pair
def deep_muscle_metrics(truth, prediction) -> tuple[float, float]:
    """Pearson r and NRMSE (RMSE over the truth's range) of one muscle, time flattened.

    The scores of :func:`deepemg.benchmark.run_benchmark`'s columns ``<muscle>_r`` and
    ``<muscle>_nrmse`` (and, on the test trials beyond the training loads,
    ``<muscle>_r_beyond``).

    Parameters
    ----------
    {muscle_pair}

    Returns
    -------
    r : float
        Pearson r; NaN where the truth is missing or constant, or the prediction constant.
    nrmse : float
        RMSE over the truth's range (max - min); NaN where the truth is missing or constant.

    Examples
    --------
    >>> t = np.linspace(0, 1, 101)
    >>> r, nrmse = deep_muscle_metrics(t, t + 0.1)
    >>> round(r, 6), round(nrmse, 6)
    (1.0, 0.1)
    """
    truth, prediction = _where_known(truth, prediction)
    if truth.size < 2 or np.ptp(truth) == 0:
        return np.nan, np.nan
    r = float(np.corrcoef(truth, prediction)[0, 1]) if prediction.std() > 0 else np.nan
    return r, float(np.sqrt(np.mean((truth - prediction) ** 2)) / np.ptp(truth))


@_scores_muscle_pair
def level_error(truth, prediction) -> float:
    """How far a muscle's mean predicted EMG is from its truth's: ``|ln(mean pred / mean truth)|``.

    0 when the mean level is right, ``ln 1.5 = 0.405`` at 1.5 times (or 1 / 1.5 times) the
    truth's mean: the co-contraction of a deep antagonist, which r and NRMSE of a nearly flat
    truth barely see. The score of :func:`deepemg.benchmark.run_benchmark`'s column
    ``<muscle>_level_error``.

    Parameters
    ----------
    {muscle_pair}

    Returns
    -------
    float
        NaN where the truth is missing or either mean is not positive.

    Examples
    --------
    >>> t = np.linspace(0.1, 0.3, 11)
    >>> round(level_error(t, 1.5 * t), 6), round(level_error(t, t / 1.5), 6)
    (0.405465, 0.405465)
    """
    truth, prediction = _where_known(truth, prediction)
    if not truth.size:
        return np.nan
    mean_truth, mean_prediction = truth.mean(), prediction.mean()
    if not (mean_truth > 0 and mean_prediction > 0):
        return np.nan
    return float(abs(np.log(mean_prediction / mean_truth)))


def within_trial_r(truth, prediction) -> float:
    """Mean over sequences of each sequence's own Pearson r.

    The shape of the EMG over time, not the level that differs between loads (pooled r, the
    first value of :func:`deep_muscle_metrics`, rewards getting the level right): the
    benchmark's column ``<muscle>_r_trial``.

    Parameters
    ----------
    truth, prediction : array-like of shape (n_sequences, n_timesteps)
        One muscle's true and predicted EMG. Sequences whose truth is missing or constant are
        left out.

    Returns
    -------
    float
        The mean r; NaN when no sequence is left.

    Examples
    --------
    >>> t = np.linspace(0, 1, 50)
    >>> truth = np.stack([t, 2 + t])  # two trials at different levels
    >>> round(within_trial_r(truth, np.stack([t**2, 5 + t**2])), 3)
    0.967
    """
    truth, prediction = np.atleast_2d(truth), np.atleast_2d(prediction)
    values = [deep_muscle_metrics(t, p)[0] for t, p in zip(truth, prediction, strict=True)]
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else np.nan


def torque_nrmse(torque_id, torque) -> float:
    """RMSE of a muscle torque against inverse dynamics, over the inverse-dynamics torque's range.

    The benchmark's column ``torque_nrmse``: how far the torque of a method's muscle model
    (``predict_torque``) is from the joint torque it must produce.

    Parameters
    ----------
    torque_id : ndarray
        Inverse-dynamics torque (N·m), e.g. (n_sequences, n_timesteps).
    torque : ndarray
        The muscle torque (N·m), shaped like ``torque_id``.

    Returns
    -------
    float
        RMSE over all steps divided by ``max - min`` of ``torque_id`` (no NaN handling).

    Examples
    --------
    >>> torque_id = np.linspace(0.0, 10.0, 11)
    >>> round(torque_nrmse(torque_id, torque_id + 0.5), 6)
    0.05
    """
    return float(np.sqrt(np.mean((torque - torque_id) ** 2)) / np.ptp(torque_id))


# ---------------------------------------------------------------------- leave one muscle out
class _WrapsSequences(MetaEstimatorMixin):
    """A meta-estimator over one of deepemg's estimators, with that estimator's tags.

    Its input and target tags (3-D sequences, NaN where allowed) are those of the estimator it
    wraps.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.input_tags = inner.input_tags
        tags.target_tags = inner.target_tags
        return tags


class LeaveOneMuscleOutRegressor(_WrapsSequences, RegressorMixin, BaseEstimator):
    """Leave one surface muscle out: how well each hidden surface muscle is reconstructed.

    Leave one surface muscle out: a clone of ``estimator`` fitted without each surface
    muscle's EMG, scored on how it reconstructs that muscle.

    The deep muscles' EMG is extrapolated from what a model learns without their EMG; a
    surface muscle hidden from it is a check real recordings allow. For each muscle in
    ``muscles``, ``fit`` fits a clone of ``estimator`` with that muscle's ``y`` column set
    to NaN and its ``emg_<muscle>`` channel removed from ``X`` (where ``X`` has it), and
    ``score`` is the variance-weighted R² (:func:`~deepemg.validation.measured_r2`) of each
    hidden muscle's predicted EMG, from the clone that never saw it, against its envelope in
    ``y`` (or, where ``y`` lacks it, in ``X``): the same score as
    ``baselines.SynergyExtrapolationRegressor.score``. It costs one fit per hidden muscle.
    In ``GridSearchCV`` the estimator's parameters are ``estimator__<name>``.

    Parameters
    ----------
    estimator : estimator
        An unfitted ``NMMRegressor`` or ``SynergyExtrapolationRegressor`` (anything with the
        parameters ``model``, ``coordinate``, ``locked`` and ``channels``).
    muscles : str or sequence of str, optional
        The surface muscles to hide, each in turn; by default every muscle whose EMG fit's
        ``y`` measures (or, without ``y``, that has a channel in ``X``).

    Attributes
    ----------
    estimators_ : dict
        Hidden muscle -> the clone fitted without it.
    hidden_ : list of str
        The hidden muscles, the columns of :meth:`predict`.
    muscles_ : list of str
        The model's muscles.
    n_features_in_ : int
        ``X``'s channels in fit.
    feature_names_in_ : ndarray of str
        Their names.

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=2, n_trials=2, duration=1.0, random_state=0,
    ...                           progress=False, cache=False)
    >>> nmm = NMMRegressor(max_epochs=1, window=50, d_model=8, n_heads=2, n_layers=1,
    ...                    predict_physics="none", random_state=0)
    >>> hidden = LeaveOneMuscleOutRegressor(nmm, muscles=["BIClong", "BRD"])
    >>> hidden.fit(data.X, data.y).predict(data.X).shape  # the two hidden muscles
    (4, 100, 2)
    >>> "emg_BRD" in hidden.estimators_["BRD"].channels_
    False
    >>> float(hidden.score(data.X, data.y)) < 1.0
    True
    """

    __metadata_request__fit: ClassVar[dict] = {"subject_ids": True}
    __metadata_request__score: ClassVar[dict] = {"subject_ids": True}

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [HasMethods(["fit", "predict", "get_params"])],
        "muscles": [str, "array-like", None],
    }

    def __init__(self, estimator, *, muscles: str | Sequence[str] | None = None) -> None:
        self.estimator = estimator
        self.muscles = muscles

    def _layout(self):
        """The model's muscles and ``X``'s channel names for ``estimator``'s parameters."""
        from .specification import ModelSpecification

        params = self.estimator.get_params(deep=False)
        physics = ModelSpecification.from_params(params).resolve()
        return list(physics.muscles), channel_names(params.get("channels"), layout_for(physics))

    def _hidden(self, muscles: list, names: list, y) -> list:
        measured = [
            m
            for j, m in enumerate(muscles)
            if (y is not None and not np.isnan(y[..., j]).all())
            or (y is None and emg_channel(m) in names)
        ]
        if self.muscles is None:
            chosen = measured
        else:
            chosen = [self.muscles] if isinstance(self.muscles, str) else list(self.muscles)
            wrong = [m for m in chosen if m not in measured]
            if wrong:
                raise ValueError(
                    f"muscles {wrong} cannot be hidden: only muscles whose EMG fit is given "
                    f"can ({measured})."
                )
        if not chosen:
            raise ValueError(
                "no surface muscle to hide: y measures none (and X has no emg_<muscle> channel)."
            )
        return chosen

    @staticmethod
    def _without(X: np.ndarray, names: list, muscle: str):
        """``X`` without ``muscle``'s EMG channel, and the channel names left."""
        channel = emg_channel(muscle)
        if channel not in names:
            return X, names
        k = names.index(channel)
        return np.delete(X, k, axis=2), names[:k] + names[k + 1 :]

    def fit(self, X, y=None, subject_ids=None) -> LeaveOneMuscleOutRegressor:
        """Fit a clone of ``estimator`` without each hidden muscle's EMG.

        Parameters
        ----------
        X : array (n_sequences, n_timesteps, n_channels)
        y : array (n_sequences, n_timesteps, n_muscles), optional
            EMG envelopes, NaN where not measured (the synergy baseline takes none).
        subject_ids : array (n_sequences,), optional
            Passed to each clone's ``fit`` (requested by default with metadata routing).

        Returns
        -------
        self
        """
        self._validate_params()
        muscles, names = self._layout()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3 or X.shape[2] != len(names):
            raise ValueError(
                f"X must be (n_sequences, n_timesteps, {len(names)}) with the channels "
                f"{names}, got shape {X.shape}."
            )
        y = None if y is None else np.asarray(y, dtype=np.float64)
        if y is not None and (y.ndim != 3 or y.shape[2] != len(muscles)):
            raise ValueError(
                f"y must be (n_sequences, n_timesteps, {len(muscles)}), one column per muscle "
                f"{muscles}, got shape {y.shape}."
            )
        hidden = self._hidden(muscles, names, y)
        fitted = {}
        for muscle in hidden:
            X_m, names_m = self._without(X, names, muscle)
            estimator = clone(self.estimator)
            if names_m != names:
                estimator.set_params(channels=names_m)
            y_m = None
            if y is not None:
                y_m = y.copy()
                y_m[..., muscles.index(muscle)] = np.nan
            kwargs = {} if subject_ids is None else {"subject_ids": subject_ids}
            fitted[muscle] = estimator.fit(X_m, y_m, **kwargs)
        self.estimators_ = fitted
        self.hidden_ = hidden
        self.muscles_ = muscles
        self.n_features_in_ = len(names)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        return self

    def _reconstruct(self, X, subject_ids, predict) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        X = np.asarray(X, dtype=np.float64)
        names = self.feature_names_in_.tolist()
        if X.ndim != 3 or X.shape[2] != len(names):
            raise ValueError(
                f"X must be (n_sequences, n_timesteps, {len(names)}) with the channels fit "
                f"saw ({names}), got shape {X.shape}."
            )
        columns = []
        for muscle in self.hidden_:
            X_m, _ = self._without(X, names, muscle)
            emg = predict(self.estimators_[muscle], X_m, subject_ids)
            columns.append(emg[..., self.muscles_.index(muscle)])
        return np.stack(columns, axis=-1)

    def predict(self, X, subject_ids=None) -> np.ndarray:
        """Each hidden muscle's EMG from the clone fitted without it.

        Each hidden muscle's EMG from the clone fitted without it,
        ``(n_sequences, n_timesteps, len(hidden_))``.
        """
        return self._reconstruct(
            X, subject_ids, lambda est, X_m, ids: est.predict(X_m, subject_ids=ids)
        )

    def score(self, X, y=None, sample_weight=None, subject_ids=None) -> float:
        """Variance-weighted R² of the hidden muscles' reconstructions.

        Variance-weighted R² of the hidden muscles' reconstructions against their
        envelopes in ``y`` (or in ``X``'s ``emg_<muscle>`` channels where ``y`` lacks them).

        Subjects the clones do not know are predicted with the population's parameters
        (:class:`UnseenSubjectWarning`). ``subject_ids`` is requested by default with
        metadata routing.
        """
        prediction = self._reconstruct(X, subject_ids, _predict_emg)
        X = np.asarray(X, dtype=np.float64)
        names = self.feature_names_in_.tolist()
        truth = np.full(prediction.shape, np.nan)
        for k, muscle in enumerate(self.hidden_):
            j = self.muscles_.index(muscle)
            if y is not None and not np.isnan(np.asarray(y, dtype=np.float64)[..., j]).all():
                truth[..., k] = np.asarray(y, dtype=np.float64)[..., j]
            elif emg_channel(muscle) in names:
                truth[..., k] = X[..., names.index(emg_channel(muscle))]
        return measured_r2(truth, prediction, sample_weight=sample_weight)


# ---------------------------------------------------------------------- the fit-time guard
def _unusable(scorer, estimator, y, score_params) -> list[str]:
    """What in a cross-validation's ``scorer`` cannot score ``estimator``."""
    scorers = getattr(scorer, "_scorers", None)
    scorers = scorers if isinstance(scorers, dict) else {None: scorer}
    problems = []
    for name, each in scorers.items():
        label = repr(each) if name is None else f"{name!r} ({each!r})"
        func = getattr(each, "_score_func", None)
        module = getattr(func, "__module__", None) or ""
        if isinstance(each, SequenceScorer):
            problem = each._problem(estimator, score_params or {})
            if problem:
                problems.append(problem)
        elif module.startswith("sklearn.") and (y is None or np.ndim(y) >= 3):
            problems.append(
                f"scoring {label}: scikit-learn's {getattr(func, '__name__', func)} takes 1-D "
                "or 2-D targets without NaN, but deepemg's y and predictions are 3-D "
                "(n_sequences, n_timesteps, n_muscles) with NaN for muscles not measured, so "
                f"every fold would score NaN. {_USE_INSTEAD}"
            )
    return problems


def _refuse_unusable_scoring(estimator) -> None:
    """Raise in ``fit`` when scikit-learn's cross-validation will score with an unusable scorer.

    That is, a scorer that cannot score deepemg's sequences.

    scikit-learn turns a scorer's error into a NaN score with a warning on every fold, and a
    search then picks its first candidate. The scorer is only known to scikit-learn's
    ``_fit_and_score``, which fits then scores: this looks it up in the frames of the calls to
    it on the stack (each with its ``scorer``, ``estimator``, ``y`` and ``score_params``) and
    refuses before any training. Outside scikit-learn's cross-validation it does nothing.
    """
    frame: FrameType | None = sys._getframe(1)
    try:
        for _ in range(64):
            if frame is None:
                return
            code = frame.f_code
            if code.co_name == "_fit_and_score" and str(
                frame.f_globals.get("__name__", "")
            ).startswith("sklearn.model_selection"):
                local = frame.f_locals
                problems = _unusable(
                    local.get("scorer"),
                    local.get("estimator", estimator),
                    local.get("y"),
                    local.get("score_params"),
                )
                if problems:
                    raise ValueError(
                        f"{type(local.get('estimator', estimator)).__name__} cannot be scored "
                        f"as asked: {' '.join(problems)}"
                    )
            frame = frame.f_back  # on: a search nested in a cross-validation scores twice
    finally:
        del frame
