"""Methods that either succeed or leave their estimator exactly as it was."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import numpy as np

__all__ = ["FittedWith", "same_value", "snapshot", "unchanged_on_failure"]


def unchanged_on_failure(method):
    """Decorate a method so that a failure leaves its estimator as it was.

    Decorate an estimator method so that an exception (Ctrl-C included) restores the
    estimator's attributes as they were before the call, then propagates.

    The method must replace attributes rather than change their objects in place (a fitted
    net is swapped for a new one, not retrained in place) until it has succeeded.

    Examples
    --------
    >>> class Counter:
    ...     n = 0
    ...     @unchanged_on_failure
    ...     def bump(self, fail):
    ...         self.n = self.n + 1
    ...         if fail:
    ...             raise ValueError("no")
    >>> c = Counter(); c.bump(False)
    >>> try:
    ...     c.bump(True)
    ... except ValueError:
    ...     pass
    >>> c.n
    1
    """

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        before = dict(self.__dict__)
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    return guarded


def snapshot(value):
    """A parameter's value as fit saw it.

    A container copied (so that a change in place shows), any other object as it is (a
    model object is the same model only as itself).
    """
    return copy.deepcopy(value) if isinstance(value, list | dict | np.ndarray) else value


def same_value(a, b) -> bool:
    """Whether two parameter values are the same (arrays and lists by their items)."""
    if a is b:
        return True
    try:
        if isinstance(a, np.ndarray | list | tuple) or isinstance(b, np.ndarray | list | tuple):
            return np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
        return bool(a == b)
    except (TypeError, ValueError):
        return False


class FittedWith:
    """Mixin: the parameters a fitted state is built for, checked before use.

    Mixin for estimators whose fitted state is built for some of their parameters (and
    that name ``X``'s channels: ``n_features_in_``, ``feature_names_in_``).

    ``fit`` (and loading a saved estimator) records the parameters named in
    ``_FITTED_WITH`` as ``fitted_with_``; :meth:`_check_unchanged`, called by every method
    that uses the fitted state, validates the parameters (``set_params`` checks nothing) and
    refuses to go on when one of those has been changed since, instead of silently
    predicting with a network, muscle model or sampling rate they no longer describe.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> class Smoother(FittedWith, BaseEstimator):
    ...     _FITTED_WITH = ("window",)
    ...     _parameter_constraints = {"window": [int]}
    ...     def __init__(self, window=3):
    ...         self.window = window
    ...     def fit(self):
    ...         self._record_fitted_with()
    ...         return self
    >>> est = Smoother().fit().set_params(window=5)
    >>> est._check_unchanged()
    Traceback (most recent call last):
    ...
    ValueError: window=5 now, but this Smoother was fitted with window=3, ...
    """

    _FITTED_WITH: tuple = ()
    n_channels_: int
    channels_: list[str]
    _validate_params: Callable[[], None]  # scikit-learn's BaseEstimator

    @property
    def n_features_in_(self) -> int:
        """Number of ``X``'s channels (the last axis) in fit: ``n_channels_``."""
        if "n_channels_" not in self.__dict__:
            raise AttributeError(f"This {type(self).__name__} is not fitted: no n_features_in_.")
        return int(self.n_channels_)

    @property
    def feature_names_in_(self) -> np.ndarray:
        """Names of ``X``'s channels in fit (``channels_``), an array of str."""
        if "channels_" not in self.__dict__:
            raise AttributeError(f"This {type(self).__name__} is not fitted: no feature_names_in_.")
        return np.asarray(self.channels_, dtype=object)

    def _record_fitted_with(self) -> None:
        """Remember the values of the parameters in ``_FITTED_WITH``."""
        self.fitted_with_ = {k: snapshot(getattr(self, k)) for k in self._FITTED_WITH}

    def _changed_since_fit(self) -> tuple[str, object] | None:
        """The first fitted-shape parameter changed since fit, or None.

        The first parameter of ``fitted_with_`` that differs now, with its fitted value;
        None when none does.
        """
        for name, value in getattr(self, "fitted_with_", {}).items():
            if not same_value(getattr(self, name), value):
                return name, value
        return None

    def _check_unchanged(self) -> None:
        """Valid parameters, the fitted-shape ones as they were in fit, or a clear error."""
        self._validate_params()
        changed = self._changed_since_fit()
        if changed is not None:
            name, value = changed
            raise ValueError(
                f"{name}={getattr(self, name)!r} now, but this {type(self).__name__} was "
                f"fitted with {name}={value!r}, which its fitted state is built for: fit "
                f"again, or set it back (set_params({name}={value!r}))."
            )
