"""Subject parameters that end on their bounds: the report and its warning.

A calibrated musculoskeletal model whose parameters sit on the bounds of their ranges is a known
sign of a misfit (CEINMS and the NMSM Pipeline report such parameters as the first thing to look
at): the data asked for a value the model's range forbids, so some other parameter, or the
network's EMG, absorbs the rest. :func:`parameters_at_bounds` lists them from
:meth:`deepemg.physics.SubjectParameters.table`; :func:`warn_at_bounds` warns with
:class:`ParameterBoundWarning` when there are any.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

__all__ = ["BOUND_TOLERANCE", "ParameterBoundWarning", "parameters_at_bounds", "warn_at_bounds"]

BOUND_TOLERANCE = 0.01
"""A parameter is on a bound within this fraction of its range (1 %) from it."""


class ParameterBoundWarning(UserWarning):
    """Subject parameters ended within 1 % of their range from a bound after a fit.

    Calibrated models that sit on their bounds are a known sign of a misfit: the data asked
    for a value the range forbids. Look at ``parameters_at_bounds_`` (the subjects, parameters
    and muscles) and at the data of those subjects (units, EMG normalisation, torque sign).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_at_bounds([{"subject": "S1", "parameter": "delay", "muscle": None,
    ...                      "value": 0.1, "bound": "upper"}], "fit")
    >>> caught[0].category.__name__
    'ParameterBoundWarning'
    """


def parameters_at_bounds(rows: Iterable[Mapping], tolerance: float = BOUND_TOLERANCE) -> list[dict]:
    """The rows of a parameter table whose value lies within ``tolerance`` of the range of a bound.

    Parameters
    ----------
    rows : iterable of dict
        Rows with ``subject``, ``parameter``, ``muscle``, ``value``, ``lower`` and ``upper``
        (:meth:`deepemg.physics.SubjectParameters.table`, ``NMMRegressor.subject_params_``).
    tolerance : float, default=0.01
        Fraction of the range ``upper - lower``.

    Returns
    -------
    list of dict
        One dict per parameter on a bound: ``subject``, ``parameter``, ``muscle`` (None for
        per-subject parameters), ``value`` (physical units) and ``bound`` ("lower" or "upper").

    Examples
    --------
    >>> rows = [{"subject": 0, "parameter": "delay", "muscle": None, "value": 0.0995,
    ...          "lower": 0.01, "upper": 0.1},
    ...         {"subject": 0, "parameter": "g1", "muscle": None, "value": -0.5,
    ...          "lower": -0.95, "upper": 0.0}]
    >>> parameters_at_bounds(rows)
    [{'subject': 0, 'parameter': 'delay', 'muscle': None, 'value': 0.0995, 'bound': 'upper'}]
    """
    if not 0 <= float(tolerance) < 0.5:
        raise ValueError(
            f"tolerance must be in [0, 0.5) (a fraction of the range), got {tolerance}."
        )
    out = []
    for row in rows:
        lower, upper, value = float(row["lower"]), float(row["upper"]), float(row["value"])
        margin = float(tolerance) * (upper - lower)
        bound = "lower" if value <= lower + margin else "upper" if value >= upper - margin else None
        if bound is not None:
            keys = ("subject", "parameter", "muscle", "value")
            out.append({**{k: row[k] for k in keys}, "bound": bound})
    return out


def warn_at_bounds(at_bounds: list[dict], when: str) -> None:
    """Warn (:class:`ParameterBoundWarning`) when ``at_bounds`` lists any parameter.

    ``when`` names the call ("fit", "personalize") in the message.
    """
    if not at_bounds:
        return
    shown = ", ".join(
        f"{r['subject']!r} {r['parameter']}"
        + (f"[{r['muscle']}]" if r["muscle"] is not None else "")
        + f" = {r['value']:.4g} ({r['bound']})"
        for r in at_bounds[:6]
    )
    more = f" and {len(at_bounds) - 6} more" if len(at_bounds) > 6 else ""
    warnings.warn(
        f"after {when}, {len(at_bounds)} subject parameter(s) ended on their bounds (within 1 % "
        f"of the range): {shown}{more}. Calibrated models that sit on their bounds are a known "
        "sign of a misfit: the data asked for values the ranges forbid. See "
        "parameters_at_bounds_, and check those subjects' data (units, EMG normalisation, "
        "torque sign).",
        ParameterBoundWarning,
        stacklevel=3,
    )
