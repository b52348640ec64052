"""Leave one subject out with ``personalize`` on the held-out subject, in scikit-learn's tools.

A new subject is met with a few calibration trials: ``NMMRegressor.personalize`` fits its
musculoskeletal parameters (and its code, with ``subject_embedding``) from them, the network
frozen, and the model then predicts its other trials. Two pieces run this protocol inside
``cross_validate`` or ``GridSearchCV``:

* :class:`LeaveOneSubjectOut`, a splitter: each subject is held out in turn, but its first
  ``n_calibration`` sequences stay in the training fold, and :meth:`~LeaveOneSubjectOut.calibration`
  marks every subject's calibration sequences;
* :class:`PersonalizedRegressor`, a meta-estimator whose ``fit`` takes that mark
  (``calibration``, routed as metadata with ``subject_ids``): the subjects whose sequences in
  the training fold are all calibration sequences (the held-out one) are new; the estimator is
  fitted on the others, then personalised on the new subjects' calibration sequences.

The test fold holds the held-out subject's other sequences only, so every scorer
(``scoring=None``, :mod:`deepemg.metrics`) scores sequences that neither the fit nor the
personalisation saw, with the subject's own parameters.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from .metrics import _predict_emg, _WrapsSequences
from .validation import check_subject_ids, measured_r2, unique_subjects

__all__ = ["LeaveOneSubjectOut", "PersonalizedRegressor", "leave_one_subject_out"]


class LeaveOneSubjectOut(LeaveOneGroupOut):
    """Leave one subject out, keeping the held-out subject's first sequences for calibration.

    A :class:`~sklearn.model_selection.LeaveOneGroupOut` (``groups`` are the subjects; one
    split per subject, in sorted order) whose test fold leaves out the held-out subject's
    first ``n_calibration`` sequences (in the order of ``X``): they stay in the training fold,
    where :class:`PersonalizedRegressor` personalises the subject on them. ``n_calibration=0``
    is plain leave one subject out.

    Parameters
    ----------
    n_calibration : int, default=1
        Sequences of each held-out subject used to personalise it (and not scored).

    Examples
    --------
    >>> import numpy as np
    >>> groups = np.array(["S1", "S1", "S1", "S2", "S2", "S2"])
    >>> cv = LeaveOneSubjectOut(n_calibration=1)
    >>> for train, test in cv.split(np.zeros((6, 5, 2)), groups=groups):
    ...     print(train, test)
    [0 3 4 5] [1 2]
    [0 1 2 3] [4 5]
    >>> cv.calibration(groups)
    array([ True, False, False,  True, False, False])
    """

    def __init__(self, n_calibration: int = 1) -> None:
        self.n_calibration = n_calibration

    def _check(self) -> int:
        n = self.n_calibration
        if not isinstance(n, Integral) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n_calibration must be an int >= 0, got {n!r}.")
        return int(n)

    def _iter_test_masks(self, X, y, groups):
        n = self._check()
        for mask in super()._iter_test_masks(X, y, groups):
            rows = np.flatnonzero(mask)
            if len(rows) <= n:
                subject = np.asarray(groups)[rows[0]]
                raise ValueError(
                    f"subject {subject!r} has {len(rows)} sequence(s), none left to test after "
                    f"n_calibration={n}: lower n_calibration, or give it more sequences."
                )
            mask = mask.copy()
            mask[rows[:n]] = False
            yield mask

    def calibration(self, groups) -> np.ndarray:
        """The calibration mark: True for each subject's first ``n_calibration`` sequences.

        Pass it to :class:`PersonalizedRegressor`'s ``fit`` as ``calibration`` (in
        ``cross_validate``'s ``params``, or to ``GridSearchCV.fit``), split with the folds.

        Parameters
        ----------
        groups : array (n_sequences,)
            The subject of each sequence (as for :meth:`split`).

        Returns
        -------
        ndarray of bool (n_sequences,)
        """
        n = self._check()
        labels = check_subject_ids(groups, len(groups), what="groups")
        mark = np.zeros(len(labels), dtype=bool)
        for subject in unique_subjects(labels):
            mark[np.flatnonzero(labels == subject)[:n]] = True
        return mark


class PersonalizedRegressor(_WrapsSequences, RegressorMixin, BaseEstimator):
    """Fit on the known subjects, then personalise the new ones on their calibration sequences.

    ``fit(X, y, subject_ids, calibration)`` takes the sequences of every subject of the
    training fold and a mark of the calibration sequences (:meth:`LeaveOneSubjectOut.calibration`).
    A subject whose sequences here are all calibration sequences is new: a clone of
    ``estimator`` is fitted on the other subjects' sequences (all of them), then
    ``personalize`` fits the new subjects' parameters on their calibration sequences, with
    their surface EMG from ``y``, the network frozen. ``predict`` and ``score`` are the fitted
    estimator's, with each subject's own parameters. With :class:`LeaveOneSubjectOut` in
    ``cross_validate`` or ``GridSearchCV`` this is leave one subject out with calibration.

    With metadata routing enabled, ``subject_ids`` and ``calibration`` are requested by
    ``fit`` and ``subject_ids`` by ``score`` by default; without it, pass both to ``fit`` as
    fit parameters (``cross_validate(..., params=...)``), and ``score`` predicts each subject
    with the population's parameters.

    Parameters
    ----------
    estimator : NMMRegressor
        An unfitted estimator with a ``personalize`` method; in ``GridSearchCV`` its
        parameters are ``estimator__<name>``.
    personalize : bool, default=True
        False leaves the calibration sequences of new subjects out (a fit on the known
        subjects only, new ones predicted with the population's parameters): the same split
        without personalisation, to compare.
    max_epochs : int, optional
        Epochs of ``personalize`` (the estimator's ``max_epochs`` by default).
    lr : float, default=0.02
        Learning rate of ``personalize``.

    Attributes
    ----------
    estimator_ : estimator
        The fitted (and personalised) clone.
    new_subjects_ : ndarray
        The subjects personalised (not in the estimator's fit).
    subjects_ : ndarray
        Every subject the fitted estimator knows.
    muscles_ : list of str
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.model_selection import cross_validate
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=2, n_trials=2, duration=1.0, random_state=0,
    ...                           progress=False, cache=False)
    >>> nmm = NMMRegressor(max_epochs=1, window=50, d_model=8, n_heads=2, n_layers=1,
    ...                    predict_physics="none", random_state=0)
    >>> cv = LeaveOneSubjectOut(n_calibration=1)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     scores = cross_validate(
    ...         PersonalizedRegressor(nmm), data.X, data.y, cv=cv, return_estimator=True,
    ...         params={"groups": data.groups, "subject_ids": data.groups,
    ...                 "calibration": cv.calibration(data.groups)})
    >>> scores["test_score"].shape  # one surface-EMG R² per held-out subject
    (2,)
    >>> [list(e.new_subjects_) for e in scores["estimator"]]
    [['S01'], ['S02']]
    """

    __metadata_request__fit: ClassVar[dict] = {"subject_ids": True, "calibration": True}
    __metadata_request__score: ClassVar[dict] = {"subject_ids": True}

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [HasMethods(["fit", "personalize", "predict"])],
        "personalize": ["boolean"],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "lr": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        estimator,
        *,
        personalize: bool = True,
        max_epochs: int | None = None,
        lr: float = 2e-2,
    ) -> None:
        self.estimator = estimator
        self.personalize = personalize
        self.max_epochs = max_epochs
        self.lr = lr

    def fit(self, X, y, subject_ids=None, calibration=None) -> PersonalizedRegressor:
        """Fit on the known subjects, then personalise the new ones.

        Parameters
        ----------
        X : array (n_sequences, n_timesteps, n_channels)
        y : array (n_sequences, n_timesteps, n_muscles)
            EMG envelopes, NaN where not measured; the new subjects' surface EMG drives
            their personalisation.
        subject_ids : array (n_sequences,)
            The subject of each sequence.
        calibration : array of bool (n_sequences,), optional
            True for calibration sequences; a subject with nothing else is new. None: no
            new subject (a plain fit).

        Returns
        -------
        self
        """
        self._validate_params()
        X = np.asarray(X)
        if X.ndim < 1 or len(X) == 0:
            raise ValueError(f"X holds no sequence (shape {X.shape}).")
        if subject_ids is None:
            raise ValueError(
                "PersonalizedRegressor needs subject_ids (the subject of each sequence): pass "
                "them to fit, with metadata routing in params / GridSearchCV.fit."
            )
        labels = check_subject_ids(subject_ids, len(X))
        mark = np.zeros(len(X), dtype=bool)
        if calibration is not None:
            mark = np.asarray(calibration)
            if mark.shape != (len(X),) or mark.dtype != bool:
                raise ValueError(
                    f"calibration must be a boolean array with one value per sequence "
                    f"({len(X)}), got {mark.dtype} of shape {mark.shape}: use "
                    "LeaveOneSubjectOut.calibration(groups)."
                )
        new = [s for s in unique_subjects(labels).tolist() if mark[labels == s].all()]
        is_new = np.isin(np.asarray(labels, dtype=object), np.asarray(new, dtype=object))
        if is_new.all():
            raise ValueError(
                "every subject's sequences are all calibration sequences: none is left to fit "
                "the estimator on. Mark only each subject's first sequences "
                "(LeaveOneSubjectOut.calibration)."
            )
        y = np.asarray(y, dtype=np.float64)
        estimator = clone(self.estimator)
        estimator.fit(X[~is_new], y[~is_new], subject_ids=labels[~is_new])
        if new and self.personalize:
            estimator.personalize(
                X[is_new],
                y[is_new],
                subject_ids=labels[is_new],
                max_epochs=self.max_epochs,
                lr=self.lr,
            )
        self.estimator_ = estimator
        self.new_subjects_ = np.asarray(new if self.personalize else [], dtype=object)
        return self

    @property
    def subjects_(self) -> np.ndarray:
        """Every subject the fitted estimator knows (fitted and personalised)."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.subjects_

    @property
    def muscles_(self) -> list:
        """The model's muscles, the columns of ``y``."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.muscles_

    @property
    def n_features_in_(self) -> int:
        """Number of ``X``'s channels in fit."""
        if "estimator_" not in self.__dict__:
            raise AttributeError("This PersonalizedRegressor is not fitted: no n_features_in_.")
        return self.estimator_.n_features_in_

    @property
    def feature_names_in_(self) -> np.ndarray:
        """Names of ``X``'s channels in fit."""
        if "estimator_" not in self.__dict__:
            raise AttributeError("This PersonalizedRegressor is not fitted: no feature_names_in_.")
        return self.estimator_.feature_names_in_

    def predict(self, X, subject_ids=None) -> np.ndarray:
        """The fitted estimator's ``predict(X, subject_ids)``."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X, subject_ids=subject_ids)

    def score(self, X, y, sample_weight=None, subject_ids=None) -> float:
        """Variance-weighted R² of the predicted EMG over the measured channels of ``y``.

        Each sequence is predicted with its subject's parameters (the population's, with an
        :class:`~deepemg.metrics.UnseenSubjectWarning`, for a subject the estimator does not
        know).
        """
        check_is_fitted(self, "estimator_")
        emg = _predict_emg(self.estimator_, X, subject_ids)
        return measured_r2(y, emg, sample_weight=sample_weight)


def leave_one_subject_out(
    estimator, X, y, subject_ids, *, n_jobs: int | None = None, return_estimator: bool = False
) -> dict:
    """Cross-validate ``estimator`` holding each subject out in turn; scikit-learn's result.

    ``cross_validate`` with ``LeaveOneGroupOut`` over ``subject_ids``, metadata routing on, and
    ``subject_ids`` routed to a clone's ``fit`` and to its ``score`` (the held-out subject is
    scored with the population's model, with an
    :class:`~deepemg.metrics.UnseenSubjectWarning`). Runs on any joblib backend, Dask's
    included (docs/scaling.md).

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> import warnings
    >>> data = make_elbow_lifting(n_subjects=2, n_trials=2, duration=1.0, random_state=0,
    ...                           progress=False, cache=False)
    >>> nmm = NMMRegressor(max_epochs=1, window=50, predict_physics="none", random_state=0)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     scores = leave_one_subject_out(nmm, data.X, data.y, data.groups)["test_score"]
    >>> len(scores)
    2
    """
    from sklearn import config_context
    from sklearn.model_selection import cross_validate

    with config_context(enable_metadata_routing=True):
        return cross_validate(
            clone(estimator).set_fit_request(subject_ids=True),
            X,
            y,
            cv=LeaveOneGroupOut(),
            params={"groups": subject_ids, "subject_ids": subject_ids},
            return_estimator=return_estimator,
            n_jobs=n_jobs,
        )
