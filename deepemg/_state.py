"""Methods that either succeed or leave their estimator exactly as it was."""

from __future__ import annotations

import functools

__all__ = ["unchanged_on_failure"]


def unchanged_on_failure(method):
    """Decorate an estimator method so that an exception (Ctrl-C included) restores the
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
