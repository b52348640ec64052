"""``NMMEnsemble``: a deep ensemble of :class:`~deepemg.NMMRegressor` with a calibrated spread."""

from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from ._state import same_value, snapshot, unchanged_on_failure
from .metrics import _predict_emg, _refuse_unusable_scoring
from .nmm_module import NMMCheckpoint
from .persistence import ModelFileMixin
from .threads import plan_workers
from .validation import check_subject_ids, measured_r2, sequence_array, unique_subjects

__all__ = ["NMMEnsemble"]

_Z90 = 1.6448536269514722
"""The standard normal quantile of 0.95: a 90 % band is mean ± 1.645 std."""

_NOT_FORWARDED = ("random_state", "callbacks", "deep_start")
"""The template's parameters each member keeps its own of."""


def _fit_member(member, X, y, subject_ids):
    """One member fitted (a joblib task)."""
    return member.fit(X, y, subject_ids=subject_ids)


def _member_callbacks(callbacks, k: int):
    """Member ``k``'s callbacks: each :class:`NMMCheckpoint` writes a file of its own."""
    if not callbacks:
        return callbacks
    out = []
    for item in callbacks:
        if isinstance(item, NMMCheckpoint):
            item = item.for_member(k)
        elif isinstance(item, tuple | list) and len(item) == 2:
            if isinstance(item[1], NMMCheckpoint):
                item = (item[0], item[1].for_member(k))
        out.append(item)
    return out


def _folds(labels: np.ndarray, n_members: int) -> np.ndarray:
    """The round-robin folds of the members.

    The member that leaves each sequence out (-1: none), round robin within each subject;
    every member keeps at least one sequence of every subject.
    """
    fold = np.full(len(labels), -1)
    for subject in unique_subjects(labels):
        rows = np.flatnonzero(labels == subject)
        if len(rows) >= 2:
            fold[rows] = np.arange(len(rows)) % n_members
    return fold


def calibrate_spread(runs: np.ndarray, own: np.ndarray, y: np.ndarray) -> float | None:
    """The factor that makes a 90 % band of ``runs``' spread cover 90 % of ``y``.

    Parameters
    ----------
    runs : array of shape (n_members, n_sequences, n_timesteps, n_muscles)
        Every member's prediction of held-out sequences.
    own : array of shape (n_sequences, n_timesteps, n_muscles)
        Each sequence predicted by the member that did not train on it.
    y : array of shape (n_sequences, n_timesteps, n_muscles)
        Measured EMG, NaN where not measured.

    Returns
    -------
    float or None
        The 90th percentile of ``|y - own| / std(runs)`` over the measured samples, divided
        by 1.645; None where nothing is measured.

    Examples
    --------
    >>> runs = np.stack([np.zeros((1, 4, 1)), np.ones((1, 4, 1))])  # std 0.707
    >>> round(calibrate_spread(runs, np.zeros((1, 4, 1)), np.full((1, 4, 1), 1.0)), 3)
    0.86
    """
    spread = np.maximum(runs.std(axis=0, ddof=1), 1e-4)
    measured = ~np.isnan(y)
    ratios = (np.abs(y - own) / spread)[measured]
    if ratios.size == 0:
        return None
    return float(np.quantile(ratios, 0.9) / _Z90)


class NMMEnsemble(ModelFileMixin, RegressorMixin, BaseEstimator):
    """A deep ensemble of neural musculoskeletal models with a calibrated uncertainty band.

    ``n_members`` clones of ``estimator`` are fitted, each leaving out a round-robin share of
    every subject's sequences and with its own seed; the spread of their predictions is
    calibrated on the sequences each member left out, so that ``mean ± 1.645 std`` covers 90 %
    of the measured EMG (Lakshminarayanan et al., 2017; docs/uncertainty.md).

    The ensemble holds its members in ``estimators_``, as scikit-learn's bagging does, and
    forwards the template's parameters to them: ``set_params(estimator__predict_physics=...)``
    after fit changes every member's prediction. Parameters a fitted network is built for
    (``window``, ``model`` ...) cannot change after fit (fit again).

    Parameters
    ----------
    estimator : NMMRegressor, default=None
        The template of every member (``NMMRegressor()`` when None); its ``random_state`` is
        replaced by one seed per member and its ``callbacks`` cloned per member (each
        :class:`~deepemg.nmm_module.NMMCheckpoint` writes ``<stem>.member<k><suffix>``). With
        ``warm_start=True`` a fitted ensemble's members continue their training.
    n_members : int, default=5
        Networks in the ensemble (at least 2).
    deep_start_spread : float, default=0.35
        The members' ``deep_start`` (where the network's output for the muscles without EMG
        starts, and how far from their synergists' level the synergist terms hold it, in
        logits) spread evenly over the template's ± this: neither the torque (co-contraction)
        nor the synergists (a deep muscle's own share) pin that level, so members that start
        and are held apart show it in their spread (docs/uncertainty.md). 0: every member
        starts at the template's.
    n_jobs : int, default=None
        Members fitted at once (joblib); None: as many as cores, one thread each, so the
        cores are never oversubscribed (:func:`deepemg.threads.plan_workers`).
    random_state : int, default=None
        Seeds the members' seeds.

    Attributes
    ----------
    estimators_ : list of NMMRegressor
        The fitted members.
    uncertainty_scale_ : float
        The calibration factor of the members' standard deviation (1 where no subject had two
        sequences to hold out).
    fitted_with_ : dict
        The template's parameters the members' fitted state is built for, at fit.

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=1, n_trials=3, duration=1.0, random_state=0,
    ...                           progress=False, cache=False)
    >>> template = NMMRegressor(max_epochs=2, window=50, predict_physics="none")
    >>> ensemble = NMMEnsemble(template, n_members=2, n_jobs=1, random_state=0)
    >>> mean, std = ensemble.fit(data.X, data.y).predict(data.X, return_std=True)
    >>> len(ensemble.estimators_), mean.shape == std.shape == data.y.shape
    (2, True)
    """

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [HasMethods(["fit", "predict", "personalize"]), None],
        "n_members": [Interval(Integral, 2, None, closed="left")],
        "deep_start_spread": [Interval(Real, 0, None, closed="left")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        n_members=5,
        deep_start_spread=0.35,
        n_jobs=None,
        random_state=None,
    ):
        self.estimator = estimator
        self.n_members = n_members
        self.deep_start_spread = deep_start_spread
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------ members
    def _template(self):
        from .regressor import NMMRegressor

        return NMMRegressor() if self.estimator is None else self.estimator

    def fitted_members(self) -> list:
        """The fitted members, each given the template's parameters as they are now.

        What :meth:`predict` and the other methods run, and what a caller that runs the members
        itself (:class:`deepemg.streaming.StreamingPredictor`) takes: the template's current
        prediction parameters (``predict_physics``, ``n_threads`` ...) are set on every member.

        Returns
        -------
        list of NMMRegressor
            :attr:`estimators_` (the members themselves, not copies).

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        ValueError
            Where a parameter the fitted networks are built for (``fitted_with_``) has changed
            since fit.

        Examples
        --------
        >>> from deepemg import NMMRegressor
        >>> from deepemg.datasets import make_elbow_lifting
        >>> from deepemg.ensemble import NMMEnsemble
        >>> data = make_elbow_lifting(n_subjects=1, n_trials=3, duration=1.0, random_state=0,
        ...                           progress=False, cache=False)
        >>> template = NMMRegressor(max_epochs=1, window=50, predict_physics="none")
        >>> ensemble = NMMEnsemble(template, n_members=2, n_jobs=1, random_state=0)
        >>> ensemble = ensemble.fit(data.X, data.y)
        >>> _ = ensemble.set_params(estimator__predict_physics="torque")
        >>> [m.predict_physics for m in ensemble.fitted_members()]
        ['torque', 'torque']
        """
        check_is_fitted(self, "estimators_")
        self._validate_params()
        params = self._template().get_params(deep=False)
        for name, value in self.fitted_with_.items():
            if not same_value(params[name], value):
                raise ValueError(
                    f"estimator__{name}={params[name]!r} now, but this NMMEnsemble was fitted "
                    f"with {name}={value!r}, which its members are built for: fit again, or "
                    f"set it back (set_params(estimator__{name}={value!r}))."
                )
        forwarded = {
            k: v
            for k, v in params.items()
            if k not in self.fitted_with_ and k not in _NOT_FORWARDED
        }
        for member in self.estimators_:
            member.set_params(**forwarded)
        return self.estimators_

    @property
    def subjects_(self) -> np.ndarray:
        """Subjects seen in fit or personalised (every member knows the same)."""
        check_is_fitted(self, "estimators_")
        return self.estimators_[0].subjects_

    @property
    def muscles_(self) -> list[str]:
        """The muscles, in the order of the EMG's last axis."""
        check_is_fitted(self, "estimators_")
        return self.estimators_[0].muscles_

    @property
    def physics_(self):
        """The members' musculoskeletal model (:class:`~deepemg.physics.MusculoskeletalModel`)."""
        check_is_fitted(self, "estimators_")
        return self.estimators_[0].physics_

    @property
    def channels_(self) -> list[str]:
        """``X``'s channel names in fit."""
        check_is_fitted(self, "estimators_")
        return self.estimators_[0].channels_

    @property
    def n_features_in_(self) -> int:
        """Number of ``X``'s channels in fit."""
        check_is_fitted(self, "estimators_")
        return self.estimators_[0].n_features_in_

    @property
    def feature_names_in_(self) -> np.ndarray:
        """Names of ``X``'s channels in fit."""
        check_is_fitted(self, "estimators_")
        return self.estimators_[0].feature_names_in_

    # ------------------------------------------------------------------ fit
    @unchanged_on_failure
    def fit(self, X, y, subject_ids=None):
        """Fit ``n_members`` members in parallel and calibrate their spread.

        Parameters
        ----------
        X : array of shape (n_sequences, n_timesteps, n_channels)
            Kinematics, load and surface EMG channels (:class:`~deepemg.NMMRegressor`).
        y : array of shape (n_sequences, n_timesteps, n_muscles)
            EMG envelopes (0..1), NaN where not measured.
        subject_ids : array of shape (n_sequences,), optional
            Each sequence's subject; all one subject when None.

        Returns
        -------
        self
        """
        self._validate_params()
        _refuse_unusable_scoring(self)
        if y is None:
            raise ValueError(
                "NMMEnsemble requires y to be passed, but the target y is None: give the EMG "
                "envelopes (NaN for muscles not measured)."
            )
        X = sequence_array(X)  # sparse, complex, other shapes: the members' messages, now
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 3 or y.shape[:2] != X.shape[:2]:
            raise ValueError(
                f"y must be shaped (n_sequences, n_timesteps, n_muscles) with X's "
                f"{X.shape[:2]} first (NaN where a muscle is not measured), got {y.shape}."
            )
        n, k = len(X), int(self.n_members)
        labels = (
            np.zeros(n, dtype=int) if subject_ids is None else check_subject_ids(subject_ids, n)
        )
        fold = _folds(labels, k)
        members = self._new_members(k)
        jobs, _ = plan_workers(self.n_jobs, k)
        members = Parallel(n_jobs=jobs)(
            delayed(_fit_member)(
                member,
                X[fold != m],
                y[fold != m],
                None if subject_ids is None else labels[fold != m],
            )
            for m, member in enumerate(members)
        )
        scale = self._calibrate(members, X, y, None if subject_ids is None else labels, fold)
        return self.set_fitted_state({"estimators_": members, "uncertainty_scale_": scale})

    def _new_members(self, k: int) -> list:
        """The members a fit starts from.

        Unfitted clones of the template with their own seeds (with ``warm_start``, copies
        of the fitted members with the template's parameters, to continue).
        """
        template = self._template()
        seeds = np.random.SeedSequence(self.random_state).generate_state(k)
        if getattr(template, "warm_start", False) and hasattr(self, "estimators_"):
            if len(self.estimators_) != k:
                raise ValueError(
                    f"warm_start=True continues the {len(self.estimators_)} fitted members, but "
                    f"n_members={k} now: set it back, or fit with warm_start=False."
                )
            params = template.get_params(deep=False)
            members = [copy.deepcopy(m) for m in self.estimators_]
            for m, member in enumerate(members):
                member.set_params(
                    **{n: v for n, v in params.items() if n not in _NOT_FORWARDED},
                    random_state=int(seeds[m]),
                    callbacks=_member_callbacks(template.callbacks, m),
                )
            return members
        own = {}  # each member's start of the muscles without EMG, where the template has one
        if "deep_start" in template.get_params(deep=False):
            spread = float(self.deep_start_spread) * np.linspace(-1.0, 1.0, k)
            own = {m: {"deep_start": float(template.deep_start + spread[m])} for m in range(k)}
        return [
            clone(template).set_params(
                random_state=int(seeds[m]),
                callbacks=_member_callbacks(template.callbacks, m),
                **own.get(m, {}),
            )
            for m in range(k)
        ]

    @staticmethod
    def _calibrate(members, X, y, labels, fold) -> float:
        """The out-of-bag calibration factor of the spread.

        The out-of-bag calibration factor: each held-out sequence predicted with its own
        subject's parameters.
        """
        held = np.flatnonzero(fold >= 0)
        scale = None
        if held.size:
            subjects = None if labels is None else labels[held]
            runs = np.stack([member.predict(X[held], subjects) for member in members])
            own = runs[fold[held], np.arange(held.size)]
            scale = calibrate_spread(runs, own, y[held])
        if scale is None:
            warnings.warn(
                "no subject has 2 sequences with measured EMG: the ensemble's spread is not "
                "calibrated (uncertainty_scale_ = 1).",
                stacklevel=3,
            )
            return 1.0
        return scale

    # ------------------------------------------------------------------ predictions
    def predict(self, X, subject_ids=None, return_std: bool = False, *, predict_physics=None):
        """The members' mean EMG, ``(n_sequences, n_timesteps, n_muscles)``.

        Parameters
        ----------
        X : array of shape (n_sequences, n_timesteps, n_channels)
        subject_ids : array of shape (n_sequences,), optional
            As :meth:`deepemg.NMMRegressor.predict`.
        return_std : bool, default=False
            Also return the calibrated standard deviation (same shape); the 90 % band is
            mean ± 1.645 std, as scikit-learn's ``GaussianProcessRegressor`` returns it.
        predict_physics : {"auto", "torque", "level", "none", "emg"}, default=None
            Prediction-time physics for this call (None: the template's); ``"auto"`` is
            resolved by each member's own ``model_adequacy_``.

        Returns
        -------
        mean : ndarray
        std : ndarray, only with ``return_std=True``
        """
        members = self.fitted_members()
        runs = np.stack(
            [m.predict(X, subject_ids, predict_physics=predict_physics) for m in members]
        )
        mean = runs.mean(axis=0)
        if not return_std:
            return mean
        return mean, self.uncertainty_scale_ * runs.std(axis=0, ddof=1)

    def predict_torque(self, X, subject_ids=None) -> np.ndarray:
        """The members' mean joint torque (N·m), ``(n_sequences, n_timesteps)``."""
        return np.mean([m.predict_torque(X, subject_ids) for m in self.fitted_members()], axis=0)

    def predict_activation(self, X, subject_ids=None) -> np.ndarray:
        """The members' mean muscle activation, ``(n_sequences, n_timesteps, n_muscles)``."""
        return np.mean(
            [m.predict_activation(X, subject_ids) for m in self.fitted_members()], axis=0
        )

    __metadata_request__score: ClassVar[dict] = {"subject_ids": True}
    """With metadata routing, ``score`` receives the test fold's ``subject_ids``."""

    def score(self, X, y, sample_weight=None, subject_ids=None) -> float:
        """Variance-weighted R² of the mean EMG over the measured channels.

        Variance-weighted R² of the mean EMG over the measured channels
        (:meth:`deepemg.NMMRegressor.score`).
        """
        emg = _predict_emg(self, X, subject_ids)
        return measured_r2(y, emg, sample_weight=sample_weight)

    # ------------------------------------------------------------------ subjects and files
    @unchanged_on_failure
    def personalize(self, X, y=None, subject_ids=None, max_epochs=None, lr=2e-2):
        """Personalise every member (:meth:`deepemg.NMMRegressor.personalize`); all or none.

        Returns
        -------
        self
        """
        members = [copy.deepcopy(m) for m in self.fitted_members()]
        for member in members:
            member.personalize(X, y, subject_ids, max_epochs=max_epochs, lr=lr)
        self.estimators_ = members
        return self

    def get_fitted_state(self) -> dict:
        """The fitted state: the members and their calibration.

        The fitted members and their calibration, ``estimators_`` and
        ``uncertainty_scale_`` (:func:`deepemg.persistence.save_model` writes them).
        """
        members = self.fitted_members()
        return {"estimators_": list(members), "uncertainty_scale_": self.uncertainty_scale_}

    def set_fitted_state(self, state: dict) -> NMMEnsemble:
        """Take a fitted state (:meth:`get_fitted_state`).

        Take fitted members and their calibration (:meth:`get_fitted_state`); the
        template's parameters now are those they are built for.
        """
        members = list(state["estimators_"])
        params = self._template().get_params(deep=False)
        self.estimators_ = members
        self.uncertainty_scale_ = float(state["uncertainty_scale_"])
        self.fitted_with_ = {k: snapshot(params[k]) for k in members[0].fitted_with_}
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        template = self._template().__sklearn_tags__()
        tags.input_tags = template.input_tags
        tags.target_tags = template.target_tags
        return tags
