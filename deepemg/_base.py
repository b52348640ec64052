"""What deepemg's sequence estimators share: model parameters, input checks and subjects.

:class:`MusculoskeletalEstimator` is the base of :class:`~deepemg.NMMRegressor` and
:class:`baselines.SynergyExtrapolationRegressor`: the constraints of the parameters that name
the model and ``X``'s channels (:data:`MODEL_CONSTRAINTS`), the model they name
(:class:`~deepemg.specification.ModelSpecification`), ``X`` checked and split once
(:func:`~deepemg.validation.prepare_sequences`), and the subject labels, with one rule for a
subject not seen in fit: its sequences are predicted with the population's (pooled) model, with
an :class:`~deepemg.metrics.UnseenSubjectWarning` that names the subjects and what to do.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Sequence
from numbers import Real
from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from ._state import FittedWith
from .metrics import UnseenSubjectWarning
from .physics import MuscleLaw, MusculoskeletalModel
from .specification import ModelSpecification
from .validation import (
    SequenceInputs,
    check_subject_ids,
    prepare_sequences,
    subject_array,
    unique_subjects,
)

__all__ = [
    "MODEL_CONSTRAINTS",
    "MUSCLE_LAW_CONSTRAINT",
    "POPULATION_CODE",
    "MusculoskeletalEstimator",
    "UnseenSubjectWarning",
]

MODEL_CONSTRAINTS: dict = {
    "model": [str, os.PathLike, MusculoskeletalModel],
    "coordinate": [str],
    "locked": [dict, None],
    "channels": ["array-like", None],
    "rate": [Interval(Real, 0, None, closed="neither")],
}
"""``_parameter_constraints`` of the parameters every estimator has: the model and ``X``'s
channels and sampling rate."""

MUSCLE_LAW_CONSTRAINT: dict = {"muscle_law": [str, MuscleLaw]}
"""``_parameter_constraints`` of ``muscle_law``, for an estimator that has it: a name (checked
against :data:`deepemg.physics.MUSCLE_LAWS` when the model is built, since laws may be
registered after import) or a law."""

POPULATION_CODE = -1
"""The subject code of the population's (pooled) model in :meth:`~MusculoskeletalEstimator.
_subject_codes`."""

_PACKAGE_FOLDERS = tuple(
    str(Path(__file__).resolve().parent.parent / name) + os.sep for name in ("deepemg", "baselines")
)


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside the packages.

    Counted from the function that calls this one (``stacklevel=1``) back past every frame of
    deepemg and baselines (the estimator's methods and their decorators).
    """
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _PACKAGE_FOLDERS
    ):
        frame = frame.f_back
        level += 1
    return level


class MusculoskeletalEstimator(FittedWith):
    """Mixin of the estimators that read sequences through a musculoskeletal model.

    A subclass has the parameters of :data:`MODEL_CONSTRAINTS` (``model``, ``coordinate``,
    ``locked``, ``channels``, ``rate``; ``muscle_law`` optionally), sets ``physics_`` and
    ``subjects_`` (the labels of the subjects fit saw) in fit, and says in
    ``_POPULATION_USE`` and ``_UNSEEN_ADVICE`` what its population model is and how a subject
    gets a model of its own. It may override :attr:`_min_timesteps`,
    :meth:`_check_prepared` and :meth:`_population_code`.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> class Mean(MusculoskeletalEstimator, BaseEstimator):
    ...     _POPULATION_USE = "their sequences get the overall mean."
    ...     _UNSEEN_ADVICE = "Refit with their sequences."
    ...     def __init__(self, model="elbow"):
    ...         self.model = model
    >>> est = Mean(); est.subjects_ = np.array(["S01", "S02"])
    >>> est._specification().joint
    'elbow'
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     est._subject_codes(["S02", "S09"], 2).tolist()
    [1, -1]
    >>> print(caught[0].message)  # doctest: +NORMALIZE_WHITESPACE
    subjects ['S09'] were not seen in fit (known: ['S01', 'S02']): their sequences get the
    overall mean. Refit with their sequences.
    """

    _POPULATION_USE: ClassVar[str] = "their sequences are predicted with the population's model."
    """What happens to the sequences of a subject not seen in fit (a sentence)."""
    _UNSEEN_ADVICE: ClassVar[str] = ""
    """What to do to give such a subject a model of its own (a sentence)."""
    # what a subclass has: scikit-learn's BaseEstimator, its parameters and fitted state
    get_params: Callable[..., dict]
    channels: Sequence[str] | None
    rate: float
    physics_: MusculoskeletalModel
    subjects_: np.ndarray

    @property
    def _min_timesteps(self) -> int:
        """Fewest steps a sequence may have (the NMM: its window)."""
        return 1

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()  # BaseEstimator's, after the mixin
        # X is (n_sequences, n_timesteps, n_channels); the EMG is one column per muscle
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags

    # ------------------------------------------------------------------ the model
    def _specification(self) -> ModelSpecification:
        """The :class:`~deepemg.specification.ModelSpecification` of the current parameters."""
        return ModelSpecification.from_params(self.get_params(deep=False))

    def _resolve_physics(self) -> MusculoskeletalModel:
        """The musculoskeletal model the parameters name, built now (the muscle law checked)."""
        return self._specification().resolve()

    # ------------------------------------------------------------------ input
    def _prepare(self, X, physics: MusculoskeletalModel | None = None) -> SequenceInputs:
        """``X`` checked against the model's channels and split once.

        With ``physics`` (in fit), against that model; with none (after fit), the parameters
        must be those of fit (:meth:`~deepemg._state.FittedWith._check_unchanged`) and ``X``
        is checked against the fitted ``physics_``. :meth:`_check_prepared` adds the
        estimator's own checks.
        """
        fitted = physics is None
        if physics is None:
            self._check_unchanged()
            physics = self.physics_
        sequences = prepare_sequences(
            X, self.channels, physics, int(self._min_timesteps), self.rate
        )
        self._check_prepared(sequences, fitted)
        return sequences

    def _check_prepared(self, sequences: SequenceInputs, fitted: bool) -> None:
        """The estimator's own checks of prepared ``sequences`` (none here).

        ``fitted`` says whether ``X`` is checked after fit (against the fitted model).
        """

    # ------------------------------------------------------------------ subjects
    @staticmethod
    def _subject_labels(subject_ids, n_sequences: int, default) -> np.ndarray:
        """One subject label per sequence: ``subject_ids`` checked, or ``default`` for all."""
        if subject_ids is None:
            return np.full(n_sequences, default)
        return check_subject_ids(subject_ids, n_sequences)

    def _population_code(self) -> int:
        """The code of the population's model: :data:`POPULATION_CODE`."""
        return POPULATION_CODE

    def subject_index(self, subject_ids, n_sequences: int) -> np.ndarray:
        """Each sequence's subject as its row in the fitted subjects' parameters.

        ``subject_ids`` (None: the population's model for every sequence; unseen subjects
        get it too, with an :class:`~deepemg.metrics.UnseenSubjectWarning`), as
        :meth:`predict` uses them; what :mod:`deepemg.adequacy` indexes the muscle model with.
        """
        return self._subject_codes(subject_ids, n_sequences)

    def _subject_codes(self, subject_ids, n_sequences: int) -> np.ndarray:
        """Each sequence's subject as its index in ``subjects_``, for prediction.

        None gives every sequence the population's model (:meth:`_population_code`); so do
        subjects not seen in fit, with an :class:`~deepemg.metrics.UnseenSubjectWarning`
        naming them, saying what their sequences get and what to do.

        Raises
        ------
        ValueError
            For labels :func:`~deepemg.validation.check_subject_ids` refuses, alone or beside
            fit's (booleans beside numbers).
        """
        population = self._population_code()
        if subject_ids is None:
            return np.full(n_sequences, population, dtype=int)
        known = self.subjects_.tolist()
        labels = check_subject_ids(subject_ids, n_sequences).tolist()
        check_subject_ids(subject_array(known + labels), len(known) + n_sequences)
        unseen = [s for s in labels if s not in known]
        if unseen:
            names = unique_subjects(subject_array(unseen)).tolist()
            warnings.warn(
                f"subjects {names} were not seen in fit (known: {known}): "
                f"{self._POPULATION_USE} {self._UNSEEN_ADVICE}".rstrip(),
                UnseenSubjectWarning,
                stacklevel=_user_stacklevel(),
            )
        return np.array([known.index(s) if s in known else population for s in labels], dtype=int)
