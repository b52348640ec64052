"""OpenSim's Millard2012EquilibriumMuscle as two torch muscle laws, rigid and compliant tendon.

The muscle's four curves are OpenSim's ``SmoothSegmentedFunction``: quintic Bezier segments
made by ``SmoothSegmentedFunctionFactory`` from a few curve properties, linear beyond their
ends. They are built here in torch from the same properties, with the same arithmetic
(:func:`active_force_length_curve`, :func:`force_velocity_curve`,
:func:`fiber_force_length_curve`, :func:`tendon_force_length_curve`), and evaluated as OpenSim
does: the Bezier parameter ``u`` of ``x`` by Newton's method to round-off, then ``y(u)``
(:class:`SmoothSegmentedCurve`). Nothing is tabulated, so the laws are exact (to round-off) for
any curve properties and differentiable in every one of them: each curve property is a
per-muscle parameter read from the model file (through dotted getters such as
``"get_ActiveForceLengthCurve.get_min_norm_active_fiber_length"``), and a subject may scale
some of them (:attr:`RigidTendonMillard2012.curve_shape_parameters`).

The muscle itself follows ``Millard2012EquilibriumMuscle.cpp`` (OpenSim 4.6): the constant-width
pennation model with its maximum pennation angle, the minimum fibre length, the activation
floor ``minimum_activation``, fibre damping, and the curve adjustments OpenSim makes when the
muscle is finalised (a damped or rigid-tendon muscle's active force-length minimum and
force-velocity end slopes set to 0; an undamped compliant one's raised). With a rigid tendon
(:func:`rigid_tendon_millard_force`) the force is OpenSim's at any length and velocity; with a
compliant tendon (:func:`compliant_tendon_millard_force`) the fibre length solves static
fibre-tendon equilibrium, OpenSim's ``Model.equilibrateMuscles``, at zero velocity.

References
----------
Millard M, Uchida T, Seth A, Delp SL (2013). Flexing computational muscle: modeling and
simulation of musculotendon dynamics. J Biomech Eng 135(2):021005.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

import torch

from .from_model import register_from_model_law
from .muscle import MuscleLaw, register_muscle_law

__all__ = [
    "MILLARD2012_DEFAULTS",
    "CompliantTendonMillard2012",
    "RigidTendonMillard2012",
    "SmoothSegmentedCurve",
    "TabulatedCurve",
    "active_force_length_curve",
    "compliant_tendon_millard_force",
    "fiber_force_length_curve",
    "force_velocity_curve",
    "rigid_tendon_millard_force",
    "tendon_force_length_curve",
]

_EPS = 2.220446049250313e-16
"""``SimTK::Eps``."""
_SQRT_EPS = math.sqrt(_EPS)
"""``sqrt(SimTK::Eps)``: the factory's test for two parallel corner slopes."""
_SIGNIFICANT_REAL = _EPS**0.875
"""``SimTK::SignificantReal``."""
_MIN_NONZERO_DAMPING = 0.001
"""Below this ``fiber_damping`` OpenSim uses the undamped muscle (damping 0)."""
U_ITERATIONS = 8
"""Newton steps for the Bezier parameter ``u`` from the straight-line guess (the points of a
:class:`SmoothSegmentedCurve`'s table of ``u``)."""
U_TABLE_POINTS = 128
"""Points per curve of a :class:`SmoothSegmentedCurve`'s table of starting ``u``."""
U_REFINEMENTS = 4
"""Newton steps of :class:`SmoothSegmentedCurve` for ``u`` from the table's start (one more
is taken with autograd on)."""
TENDON_INVERSION_STEPS = 4
"""Newton steps on the tendon curve for the start of :func:`compliant_tendon_millard_force`."""
EQUILIBRIUM_ITERATIONS = 5
"""Safeguarded Newton steps of :func:`compliant_tendon_millard_force` from its start."""
TABLE_POINTS = 256
"""Points per curve of the :class:`TabulatedCurve` the equilibrium search steps on."""

_MUSCLE = "max_isometric_force", "optimal_fiber_length", "tendon_slack_length", "pennation_angle"
_GETTERS = {
    "max_isometric_force": "get_max_isometric_force",
    "optimal_fiber_length": "get_optimal_fiber_length",
    "tendon_slack_length": "get_tendon_slack_length",
    "pennation_angle": "get_pennation_angle_at_optimal",
    "max_contraction_velocity": "get_max_contraction_velocity",
    "fiber_damping": "get_fiber_damping",
    "minimum_activation": "get_minimum_activation",
    "maximum_pennation_angle": "get_maximum_pennation_angle",
    # ActiveForceLengthCurve
    "active_min_fiber_length": "get_ActiveForceLengthCurve.get_min_norm_active_fiber_length",
    "active_transition_fiber_length": "get_ActiveForceLengthCurve.get_transition_norm_fiber_length",
    "active_max_fiber_length": "get_ActiveForceLengthCurve.get_max_norm_active_fiber_length",
    "active_shallow_slope": "get_ActiveForceLengthCurve.get_shallow_ascending_slope",
    "active_minimum_value": "get_ActiveForceLengthCurve.get_minimum_value",
    # ForceVelocityCurve
    "fv_concentric_slope_at_vmax": "get_ForceVelocityCurve.get_concentric_slope_at_vmax",
    "fv_concentric_slope_near_vmax": "get_ForceVelocityCurve.get_concentric_slope_near_vmax",
    "fv_isometric_slope": "get_ForceVelocityCurve.get_isometric_slope",
    "fv_eccentric_slope_at_vmax": "get_ForceVelocityCurve.get_eccentric_slope_at_vmax",
    "fv_eccentric_slope_near_vmax": "get_ForceVelocityCurve.get_eccentric_slope_near_vmax",
    "fv_max_eccentric_force": (
        "get_ForceVelocityCurve.get_max_eccentric_velocity_force_multiplier"
    ),
    "fv_concentric_curviness": "get_ForceVelocityCurve.get_concentric_curviness",
    "fv_eccentric_curviness": "get_ForceVelocityCurve.get_eccentric_curviness",
    # FiberForceLengthCurve (the optional properties as OpenSim uses them)
    "passive_strain_at_zero_force": "get_FiberForceLengthCurve.get_strain_at_zero_force",
    "passive_fiber_strain": "get_FiberForceLengthCurve.get_strain_at_one_norm_force",
    "passive_fitted_curve": "get_FiberForceLengthCurve.isFittedCurveBeingUsed",
    "passive_stiffness_at_low_force": "get_FiberForceLengthCurve.getStiffnessAtLowForceInUse",
    "passive_stiffness_at_one_norm_force": (
        "get_FiberForceLengthCurve.getStiffnessAtOneNormForceInUse"
    ),
    "passive_curviness": "get_FiberForceLengthCurve.getCurvinessInUse",
}
_TENDON_GETTERS = {
    "tendon_strain": "get_TendonForceLengthCurve.get_strain_at_one_norm_force",
    "tendon_fitted_curve": "get_TendonForceLengthCurve.isFittedCurveBeingUsed",
    "tendon_stiffness": "get_TendonForceLengthCurve.getStiffnessAtOneNormForceInUse",
    "tendon_toe_force": "get_TendonForceLengthCurve.getNormForceAtToeEndInUse",
    "tendon_curviness": "get_TendonForceLengthCurve.getCurvinessInUse",
}

MILLARD2012_DEFAULTS: Mapping[str, float] = MappingProxyType(
    {
        "max_contraction_velocity": 10.0,
        "fiber_damping": 0.1,
        "minimum_activation": 0.01,
        "maximum_pennation_angle": math.acos(0.1),
        "active_min_fiber_length": 0.47 - 0.0259,
        "active_transition_fiber_length": 0.73,
        "active_max_fiber_length": 1.8123,
        "active_shallow_slope": 0.8616,
        "active_minimum_value": 0.1,
        "fv_concentric_slope_at_vmax": 0.0,
        "fv_concentric_slope_near_vmax": 0.25,
        "fv_isometric_slope": 5.0,
        "fv_eccentric_slope_at_vmax": 0.0,
        "fv_eccentric_slope_near_vmax": 0.15,
        "fv_max_eccentric_force": 1.4,
        "fv_concentric_curviness": 0.6,
        "fv_eccentric_curviness": 0.9,
        "passive_strain_at_zero_force": 0.0,
        "passive_fiber_strain": 0.7,
        "passive_fitted_curve": 1.0,
        "passive_stiffness_at_low_force": 0.2,
        "passive_stiffness_at_one_norm_force": 2.0 / 0.7,
        "passive_curviness": 0.75,
        "tendon_strain": 0.049,
        "tendon_fitted_curve": 1.0,
        "tendon_stiffness": 1.375 / 0.049,
        "tendon_toe_force": 2.0 / 3.0,
        "tendon_curviness": 0.5,
    }
)
"""OpenSim 4.6's defaults of a Millard2012EquilibriumMuscle's properties (all but the first four
parameters: ``max_isometric_force``, ``optimal_fiber_length``, ``tendon_slack_length``,
``pennation_angle``). ``*_fitted_curve`` is 1.0 where the curve's optional properties are empty
(OpenSim then derives them from the strain: passive stiffness ``2 / (e1 - e0)``, 0.2 and
curviness 0.75; tendon stiffness ``1.375 / e0``, toe force 2/3, curviness 0.5)."""


# ------------------------------------------------------------------ quintic Bezier curves
def _corner(x0, y0, dydx0, x1, y1, dydx1, curviness):
    """``SegmentedQuinticBezierToolkit::calcQuinticBezierCornerControlPoints``: 6 x and 6 y."""
    slope_gap = dydx0 - dydx1
    apart = slope_gap.abs() > _SQRT_EPS
    safe_gap = torch.where(apart, slope_gap, torch.ones_like(slope_gap))
    x_c = torch.where(apart, (y1 - y0 - x1 * dydx1 + x0 * dydx0) / safe_gap, (x1 + x0) / 2)
    y_c = (x_c - x1) * dydx1 + y1
    x0_mid = x0 + curviness * (x_c - x0)
    y0_mid = y0 + curviness * (y_c - y0)
    x1_mid = x1 + curviness * (x_c - x1)
    y1_mid = y1 + curviness * (y_c - y1)
    return (x0, x0_mid, x0_mid, x1_mid, x1_mid, x1), (y0, y0_mid, y0_mid, y1_mid, y1_mid, y1)


def _power_basis(points: torch.Tensor) -> torch.Tensor:
    """Coefficients ``a_0..a_5`` of ``sum a_j u^j`` for quintic Bezier points ``(6, ...)``."""
    p0, p1, p2, p3, p4, p5 = points.unbind(0)
    return torch.stack(
        [
            p0,
            5 * (p1 - p0),
            10 * (p2 - 2 * p1 + p0),
            10 * (p3 - 3 * p2 + 3 * p1 - p0),
            5 * (p4 - 4 * p3 + 6 * p2 - 4 * p1 + p0),
            p5 - 5 * p4 + 10 * p3 - 10 * p2 + 5 * p1 - p0,
        ]
    )


def _polynomial(a: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``sum a_j u^j`` by Horner's rule (``a``: ``(6, ...)``)."""
    a = a.unbind(0)  # one backward node for all six rows (a[j] would zero-fill each)
    value = a[5]
    for j in (4, 3, 2, 1, 0):
        value = value * u + a[j]
    return value


def _slope(a: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``d/du sum a_j u^j``."""
    a = a.unbind(0)
    value = 5 * a[5]
    for j in (4, 3, 2, 1):
        value = value * u + j * a[j]
    return value


def _bezier_parameter(
    a_x: torch.Tensor, x: torch.Tensor, n_iterations: int, start: torch.Tensor | None = None
) -> torch.Tensor:
    """The ``u`` in [0, 1] with ``X(u) = x``, without autograd (``X`` rises with ``u``).

    OpenSim's ``calcU``: Newton steps, ``u`` clamped to [0, 1] after each, from ``start``
    (OpenSim's spline of ``u(x)``; :class:`SmoothSegmentedCurve` reads it off a table of ``u``)
    or else the straight-line guess.
    """
    if start is None:
        origin, width = a_x[0], a_x.sum(0) - a_x[0]
        start = ((x - origin) / torch.where(width > 0, width, torch.ones_like(width))).clamp(0, 1)
    u = start
    for _ in range(n_iterations):
        rate = _slope(a_x, u).clamp_min(_SIGNIFICANT_REAL)
        u = (u - (_polynomial(a_x, u) - x) / rate).clamp(0.0, 1.0)
    return u


def _start(ends: torch.Tensor, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """A start for ``u(x)`` from the ends of the table's interval holding ``x``.

    ``ends``: per point, ``x``, coefficient row, ``u`` and ``du/dx`` of the interval's left
    then right end. Where both ends lie in the segment of ``x``, the cubic matching ``u`` and
    ``du/dx`` at both; else the line from the end in it.
    """
    x_a, row_a, u_a, du_a, x_b, row_b, u_b, du_b = ends.unbind(-1)
    width = x_b - x_a
    t = (x - x_a) / width
    m_a, m_b = du_a * width, du_b * width
    cubic = u_a + t * (
        m_a + t * (3 * (u_b - u_a) - 2 * m_a - m_b + t * (2 * (u_a - u_b) + m_a + m_b))
    )
    left, right = row_a == rows, row_b == rows
    line = torch.where(left, u_a + (x - x_a) * du_a, u_b + (x - x_b) * du_b)
    return torch.where(left & right, cubic, line).clamp_(0.0, 1.0)


class SmoothSegmentedCurve:
    """OpenSim's ``SmoothSegmentedFunction`` in torch: quintic Bezier segments, lines beyond.

    Built by the factories (:func:`active_force_length_curve` ...) from control points that may
    carry a batch of curves (one per muscle) and gradients. Calling the curve evaluates it as
    OpenSim's ``calcValue`` does: below ``x0`` the line ``y0 + dydx0 (x - x0)``, above ``x1``
    the line ``y1 + dydx1 (x - x1)``, between them the segment holding ``x`` at the Bezier
    parameter ``u`` with ``X(u) = x``, found as OpenSim's ``calcU`` does by Newton's method to
    round-off (from the straight-line guess instead of OpenSim's spline of ``u(x)``). The last
    Newton step is taken with autograd on: the gradient is
    the curve's exact first derivative, in ``x`` and in every control point (a second
    derivative through ``u`` is not exact).

    Parameters
    ----------
    corners : sequence of (tuple, tuple)
        Per segment the 6 x and the 6 y control points (tensors broadcastable to one shape,
        that of the batch of curves).
    x0, x1, y0, y1, dydx0, dydx1 : torch.Tensor
        The ends of the curve, their values and the slopes of the lines beyond them.

    Examples
    --------
    >>> import torch
    >>> curve = fiber_force_length_curve(torch.tensor(0.0), torch.tensor(0.7))
    >>> x = torch.tensor([0.9, 1.0, 1.7, 1.8], dtype=torch.float64)
    >>> [round(v, 6) for v in curve(x).tolist()]  # 0 below slack, 1 at e1, linear above
    [0.0, 0.0, 1.0, 1.285714]
    """

    def __init__(
        self,
        corners: Sequence[tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]],
        x0: torch.Tensor,
        x1: torch.Tensor,
        y0: torch.Tensor,
        y1: torch.Tensor,
        dydx0: torch.Tensor,
        dydx1: torch.Tensor,
    ) -> None:
        flat = [p for xs, ys in corners for p in (*xs, *ys)]
        flat = list(torch.broadcast_tensors(*flat, x0, x1, y0, y1, dydx0, dydx1))
        self.x0, self.x1, self.y0, self.y1, self.dydx0, self.dydx1 = flat[-6:]
        n = len(corners)
        points = torch.stack(flat[:-6]).reshape(n, 2, 6, -1)  # (segment, x|y, point, curve)
        self.coefficients = torch.cat(
            [_power_basis(points[:, 0].movedim(0, -1)), _power_basis(points[:, 1].movedim(0, -1))]
        ).flatten(1)
        """Power-basis coefficients of ``X(u)`` then ``Y(u)``: ``(12, n_curves * n_segments)``,
        the segments of each curve in turn."""
        self.starts = points[:, 0, 0].T.reshape(*self.x0.shape, n).detach()
        """The x where each segment starts, ``(..., n_segments)``."""
        self._starts: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._table: TabulatedCurve | None = None

    def tabulated(self) -> TabulatedCurve:
        """The curve's :class:`TabulatedCurve` (of :data:`TABLE_POINTS`), built once."""
        if self._table is None:
            self._table = TabulatedCurve(self)
        return self._table

    def _segment_rows(self, target: torch.Tensor) -> torch.Tensor:
        """Per point of ``target`` (detached, inside the curve) its segment's coefficient row."""
        n = self.starts.shape[-1]
        segment = torch.zeros(target.shape, dtype=torch.long, device=target.device)
        for later in range(1, n):
            segment += target >= self.starts[..., later]
        curve = torch.arange(self.x0.numel(), device=target.device).reshape(self.x0.shape)
        return (curve * n + segment).flatten()

    def _start_table(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Bezier parameters at :data:`U_TABLE_POINTS` points of each curve, built once.

        Per curve and interval between two points, for both of its ends: the point's ``x``,
        its coefficient row, ``u`` and ``du/dx`` (``u`` found from the straight-line guess by
        :data:`U_ITERATIONS` Newton steps). :meth:`_locate` starts its Newton steps from the
        first-order guess of the end in the same segment.
        """
        if self._starts is None:
            n = U_TABLE_POINTS
            with torch.no_grad():
                x0, x1 = self.x0.detach(), self.x1.detach()
                fraction = torch.linspace(0.0, 1.0, n, dtype=x0.dtype, device=x0.device)
                nodes = x0 + (x1 - x0) * fraction.reshape(n, *([1] * x0.dim()))
                nodes = nodes.broadcast_to(n, *x0.shape)
                rows = self._segment_rows(nodes)
                a_x = self.coefficients[:6].detach().index_select(1, rows)
                u = _bezier_parameter(a_x, nodes.flatten(), U_ITERATIONS)
                rate = _slope(a_x, u).clamp_min(_SIGNIFICANT_REAL)
                node = torch.stack([nodes.flatten(), rows.to(x0.dtype), u, 1.0 / rate], dim=-1)
                node = node.reshape(n, -1, 4).transpose(0, 1)  # (curve, point, 4)
                ends = torch.cat([node[:, :-1], node[:, 1:]], dim=-1)  # (curve, interval, 8)
                self._starts = (ends.reshape(-1, 8), (n - 1) / (x1 - x0), x0)
        return self._starts

    def _locate(self, x: torch.Tensor):
        """``x`` clamped to the curve, its segment's coefficients, and its ``u`` (no autograd).

        All but the coefficients flattened over the shape of ``x`` and the curves broadcast.
        ``u`` is found by :data:`U_REFINEMENTS` Newton steps from a start read off
        :meth:`_start_table`.
        """
        inside = torch.where(x < self.x0, self.x0, torch.where(x > self.x1, self.x1, x))
        with torch.no_grad():
            target = inside.detach()
            rows = self._segment_rows(target)
            table, scale, x0 = self._start_table()
            intervals = table.shape[0] // self.x0.numel()
            position = ((target - x0) * scale).floor().clamp_(0, intervals - 1).long()
            curve = torch.arange(self.x0.numel(), device=target.device).reshape(self.x0.shape)
            ends = table.index_select(0, (curve * intervals + position).flatten())
            guess = _start(ends, target.flatten(), rows.to(ends.dtype))
        # two gathers, not slices of one: a slice's backward zero-fills the whole gather
        a_x = self.coefficients[:6].index_select(1, rows)
        a_y = self.coefficients[6:].index_select(1, rows)
        with torch.no_grad():
            u = _bezier_parameter(a_x.detach(), target.flatten(), U_REFINEMENTS, guess)
        return inside.flatten(), a_x, a_y, u

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The curve at ``x`` (any shape broadcastable with the batch of curves)."""
        return self.value_with_slope(x)[0]

    def value_with_slope(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The curve at ``x`` with autograd and its derivative ``dy/dx`` without, in one pass.

        Examples
        --------
        >>> import torch
        >>> strain = torch.tensor(0.049, requires_grad=True)
        >>> value, slope = tendon_force_length_curve(strain).value_with_slope(torch.tensor(1.03))
        >>> value.requires_grad, slope.requires_grad  # a gradient to the strain, none for dy/dx
        (True, False)
        """
        inside, a_x, a_y, u = self._locate(x)
        shape = torch.broadcast_shapes(x.shape, self.x0.shape)
        # one Newton step with autograd on: at the root, the exact du = (dx - dX) / X'(u)
        rate = _slope(a_x.detach(), u).clamp_min(_SIGNIFICANT_REAL)
        y = _polynomial(a_y, u - (_polynomial(a_x, u) - inside) / rate).reshape(shape)
        with torch.no_grad():
            slope = (_slope(a_y.detach(), u) / rate).reshape(shape)
            x_still = x.detach()
            below, above = x_still < self.x0.detach(), x_still > self.x1.detach()
            slope = torch.where(
                below, self.dydx0.detach(), torch.where(above, self.dydx1.detach(), slope)
            )
        value = torch.where(
            below,
            self.y0 + self.dydx0 * (x - self.x0),
            torch.where(above, self.y1 + self.dydx1 * (x - self.x1), y),
        )
        return value, slope

    def value_and_slope(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The curve and its derivative ``dy/dx`` at ``x``, without autograd.

        Examples
        --------
        >>> import torch
        >>> curve = tendon_force_length_curve(0.049)
        >>> value, slope = curve.value_and_slope(torch.tensor([1.049, 2.0]))
        >>> [round(v, 4) for v in value.tolist()], [round(v, 4) for v in slope.tolist()]
        ([1.0, 27.6862], [28.0612, 28.0612])
        """
        with torch.no_grad():
            return self.value_with_slope(x.detach())


class TabulatedCurve:
    """A :class:`SmoothSegmentedCurve` sampled once, then read by cubic Hermite interpolation.

    The curve's value and slope at ``n_points`` evenly spaced points of its Bezier domain
    ``[x0, x1]`` (per curve of a batch), the lines beyond it as the curve has them. Between
    two points the cubic that matches both values and slopes: its error is of order
    ``h^4`` times the curve's fourth derivative (``h`` the spacing), ``h^2`` near a joint
    of two Bezier segments, whose second derivatives differ. Reading it costs a handful of
    tensor operations where the curve itself needs Newton's method for its Bezier parameter,
    so an iterative solver takes its steps on the table and finishes with the exact curve
    (:func:`compliant_tendon_millard_force`). No autograd: the table is of detached values.

    Parameters
    ----------
    curve : SmoothSegmentedCurve
        The curve (or batch of curves) to sample.
    n_points : int, default=TABLE_POINTS
        Points per curve, at least 2.

    Examples
    --------
    >>> import torch
    >>> curve = tendon_force_length_curve(0.049)
    >>> table = TabulatedCurve(curve)
    >>> x = torch.tensor([1.01, 1.03, 1.049, 2.0], dtype=torch.float64)
    >>> exact, _ = curve.value_and_slope(x)
    >>> read, _ = table.value_and_slope(x)
    >>> bool((read - exact).abs().max() < 1e-6)
    True
    """

    def __init__(self, curve: SmoothSegmentedCurve, n_points: int = 0) -> None:
        n = int(n_points or TABLE_POINTS)
        if n < 2:
            raise ValueError(f"A table needs at least 2 points, got n_points={n_points}.")
        with torch.no_grad():
            self.x0 = curve.x0.detach()
            spacing = (curve.x1.detach() - self.x0) / (n - 1)
            self.scale = 1.0 / spacing
            fraction = torch.linspace(0.0, 1.0, n, dtype=self.x0.dtype, device=self.x0.device)
            nodes = self.x0 + spacing * (n - 1) * fraction.reshape(n, *([1] * self.x0.dim()))
            value, slope = curve.value_and_slope(nodes)  # (n, *curves)
            y, m = value.reshape(n, -1).T, (slope * spacing).reshape(n, -1).T  # m = dy/dt
            y_a, y_b, m_a, m_b = y[:, :-1], y[:, 1:], m[:, :-1], m[:, 1:]
            # per interval, y(t) = c0 + c1 t + c2 t^2 + c3 t^3 on t in [0, 1]
            c2 = 3 * (y_b - y_a) - 2 * m_a - m_b
            c3 = 2 * (y_a - y_b) + m_a + m_b
            self.table = torch.stack([y_a, m_a, c2, c3, 2 * c2, 3 * c3], dim=-1).reshape(-1, 6)
        self.n_points = n
        self.rows = torch.arange(self.x0.numel(), device=self.x0.device).reshape(self.x0.shape)
        self.rows = self.rows * (n - 1)

    def value_and_slope(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The interpolated curve and its derivative ``dy/dx`` at ``x``, without autograd.

        Beyond the domain the value continues along the end's slope (the curve's line there).
        """
        with torch.no_grad():
            position = (x.detach() - self.x0) * self.scale
            inside = position.clamp(0.0, self.n_points - 1.0)
            interval = inside.floor().clamp_(max=self.n_points - 2)
            shape = position.shape
            rows = (self.rows + interval.long()).reshape(-1)
            c0, c1, c2, c3, d2, d3 = self.table.index_select(0, rows).unbind(-1)
            t = (inside - interval).reshape(-1)
            value = c0 + t * (c1 + t * (c2 + t * c3))
            slope_t = c1 + t * (d2 + t * d3)  # dy/dt
            value = value.reshape(shape) + (position - inside) * slope_t.reshape(shape)
            slope = slope_t.reshape(shape) * self.scale
        return value, slope

    value_with_slope = value_and_slope
    """No autograd either: :meth:`value_and_slope`."""


def _tensors(*values):
    """The values as tensors of one dtype and device (the first tensor's, else float64)."""
    like = next((v for v in values if torch.is_tensor(v)), None)
    dtype = like.dtype if like is not None else torch.float64
    device = like.device if like is not None else None
    return [torch.as_tensor(v, dtype=dtype, device=device) for v in values]


def _curviness(c):
    """``SmoothSegmentedFunctionFactory::scaleCurviness``."""
    return 0.1 + 0.8 * c


def active_force_length_curve(
    min_length: torch.Tensor | float = MILLARD2012_DEFAULTS["active_min_fiber_length"],
    transition_length: torch.Tensor | float = MILLARD2012_DEFAULTS[
        "active_transition_fiber_length"
    ],
    max_length: torch.Tensor | float = MILLARD2012_DEFAULTS["active_max_fiber_length"],
    shallow_slope: torch.Tensor | float = MILLARD2012_DEFAULTS["active_shallow_slope"],
    minimum_value: torch.Tensor | float = MILLARD2012_DEFAULTS["active_minimum_value"],
) -> SmoothSegmentedCurve:
    """OpenSim's ``ActiveForceLengthCurve`` of normalised fibre length.

    ``createFiberActiveForceLengthCurve(min, transition, 1, max, minimum_value, shallow_slope,
    curviness 1)``: five segments, ``minimum_value`` below ``min_length`` and above
    ``max_length``, 1 at the optimal length.

    Parameters
    ----------
    min_length, transition_length, max_length : float or torch.Tensor
        ``min_norm_active_fiber_length``, ``transition_norm_fiber_length``,
        ``max_norm_active_fiber_length`` (optimal fibre lengths).
    shallow_slope, minimum_value : float or torch.Tensor
        ``shallow_ascending_slope`` and ``minimum_value`` (a damped or rigid-tendon muscle uses
        0 for the latter: see :func:`rigid_tendon_millard_force`).

    Returns
    -------
    SmoothSegmentedCurve

    Examples
    --------
    >>> import torch
    >>> curve = active_force_length_curve(minimum_value=0.0)
    >>> [round(v, 4) for v in curve(torch.tensor([0.3, 1.0, 1.5, 2.0])).tolist()]
    [0.0, 1.0, 0.4033, 0.0]
    """
    x0, x1, x3, dydx, y_low = _tensors(
        min_length, transition_length, max_length, shallow_slope, minimum_value
    )
    zero, one = torch.zeros_like(x0), torch.ones_like(x0)
    c = 0.9 * one  # scaleCurviness(1.0)
    x2 = one
    x_delta = 0.05 * x2
    x_s = x2 - x_delta
    y1 = 1 - dydx * (x_s - x1)
    dydx01 = 1.25 * (y1 - zero) / (x1 - x0)
    x01, y01 = x0 + 0.5 * (x1 - x0), zero + 0.5 * (y1 - zero)
    x1s, y1s = x1 + 0.5 * (x_s - x1), y1 + 0.5 * (1 - y1)
    x23 = (x2 + x_delta) + 0.5 * (x3 - (x2 + x_delta))
    y23 = one + 0.5 * (zero - one)
    dydx23 = (zero - one) / ((x3 - x_delta) - (x2 + x_delta))
    corners = [
        _corner(x0, y_low, zero, x01, y01, dydx01, c),
        _corner(x01, y01, dydx01, x1s, y1s, dydx, c),
        _corner(x1s, y1s, dydx, x2, one, zero, c),
        _corner(x2, one, zero, x23, y23, dydx23, c),
        _corner(x23, y23, dydx23, x3, y_low, zero, c),
    ]
    return SmoothSegmentedCurve(corners, x0, x3, y_low, y_low, zero, zero)


def force_velocity_curve(
    concentric_slope_at_vmax: torch.Tensor | float = 0.0,
    concentric_slope_near_vmax: torch.Tensor | float = 0.25,
    isometric_slope: torch.Tensor | float = 5.0,
    eccentric_slope_at_vmax: torch.Tensor | float = 0.0,
    eccentric_slope_near_vmax: torch.Tensor | float = 0.15,
    max_eccentric_force: torch.Tensor | float = 1.4,
    concentric_curviness: torch.Tensor | float = 0.6,
    eccentric_curviness: torch.Tensor | float = 0.9,
) -> SmoothSegmentedCurve:
    """OpenSim's ``ForceVelocityCurve`` of normalised fibre velocity (lengthening > 0).

    ``createFiberForceVelocityCurve``: four segments from -1 (``v_max`` shortening, force 0) to
    1 (lengthening, ``max_eccentric_force``), 1 at rest; lines beyond with the slopes at
    ``v_max``. The defaults are OpenSim's.

    Parameters
    ----------
    concentric_slope_at_vmax, concentric_slope_near_vmax, isometric_slope : float or Tensor
        The curve's slopes at -1, near -1 (at -0.9) and at 0.
    eccentric_slope_at_vmax, eccentric_slope_near_vmax : float or torch.Tensor
        Its slopes at 1 and near 1 (at 0.9).
    max_eccentric_force : float or torch.Tensor
        ``max_eccentric_velocity_force_multiplier``, the value at 1.
    concentric_curviness, eccentric_curviness : float or torch.Tensor
        In [0, 1].

    Returns
    -------
    SmoothSegmentedCurve

    Examples
    --------
    >>> import torch
    >>> curve = force_velocity_curve()
    >>> [round(v, 4) for v in curve(torch.tensor([-1.0, 0.0, 1.0, 2.0])).tolist()]
    [0.0, 1.0, 1.4, 1.4]
    """
    dydx_c, dydx_near_c, dydx_iso, dydx_e, dydx_near_e, y_e, curv_c, curv_e = _tensors(
        concentric_slope_at_vmax,
        concentric_slope_near_vmax,
        isometric_slope,
        eccentric_slope_at_vmax,
        eccentric_slope_near_vmax,
        max_eccentric_force,
        concentric_curviness,
        eccentric_curviness,
    )
    c_c, c_e = _curviness(curv_c), _curviness(curv_e)
    zero = torch.zeros_like(y_e)
    x_c, x_near_c, x_iso, x_e, x_near_e = zero - 1, zero - 0.9, zero, zero + 1, zero + 0.9
    y_near_c = zero + 0.5 * dydx_near_c * (x_near_c - x_c) + 0.5 * dydx_c * (x_near_c - x_c)
    y_iso = zero + 1
    y_near_e = y_e + 0.5 * dydx_near_e * (x_near_e - x_e) + 0.5 * dydx_e * (x_near_e - x_e)
    corners = [
        _corner(x_c, zero, dydx_c, x_near_c, y_near_c, dydx_near_c, c_c),
        _corner(x_near_c, y_near_c, dydx_near_c, x_iso, y_iso, dydx_iso, c_c),
        _corner(x_iso, y_iso, dydx_iso, x_near_e, y_near_e, dydx_near_e, c_e),
        _corner(x_near_e, y_near_e, dydx_near_e, x_e, y_e, dydx_e, c_e),
    ]
    return SmoothSegmentedCurve(corners, x_c, x_e, zero, y_e, dydx_c, dydx_e)


def fiber_force_length_curve(
    strain_at_zero_force: torch.Tensor | float = 0.0,
    strain_at_one_norm_force: torch.Tensor | float = 0.7,
    stiffness_at_low_force: torch.Tensor | float | None = None,
    stiffness_at_one_norm_force: torch.Tensor | float | None = None,
    curviness: torch.Tensor | float | None = None,
) -> SmoothSegmentedCurve:
    """OpenSim's ``FiberForceLengthCurve`` (passive fibre force) of normalised fibre length.

    ``createFiberForceLength``: 0 up to ``1 + strain_at_zero_force``, 1 at
    ``1 + strain_at_one_norm_force``, linear beyond. Without the three optional properties
    OpenSim's fitted curve is used (stiffness ``2 / (e1 - e0)`` at one, 0.2 at low force,
    curviness 0.75).

    Parameters
    ----------
    strain_at_zero_force, strain_at_one_norm_force : float or torch.Tensor
        ``e0`` and ``e1``.
    stiffness_at_low_force, stiffness_at_one_norm_force, curviness : float or Tensor, optional
        All three or none.

    Returns
    -------
    SmoothSegmentedCurve

    Examples
    --------
    >>> import torch
    >>> curve = fiber_force_length_curve(0.0, 0.7)
    >>> round(float(curve(torch.tensor(1.35))), 4)
    0.1872
    """
    e0, e1 = _tensors(strain_at_zero_force, strain_at_one_norm_force)
    optional = (stiffness_at_low_force, stiffness_at_one_norm_force, curviness)
    if all(v is None for v in optional):
        k_low, k_iso, curv = 0.2 + 0 * e1, 2.0 / (e1 - e0), 0.75 + 0 * e1
    elif any(v is None for v in optional):
        raise ValueError(
            "Give all three of stiffness_at_low_force, stiffness_at_one_norm_force and "
            "curviness, or none of them (OpenSim's fitted curve)."
        )
    else:
        k_low, k_iso, curv = _tensors(*optional, e1)[:3]
    return _fiber_force_length(e0, e1, k_low, k_iso, curv)


def _fiber_force_length(e0, e1, k_low, k_iso, curviness) -> SmoothSegmentedCurve:
    c = _curviness(curviness)
    zero = torch.zeros_like(e1)
    x_zero, x_iso = 1 + e0, 1 + e1
    delta_x = torch.minimum(0.1 * (1.0 / k_iso), 0.1 * (x_iso - x_zero))
    x_low = x_zero + delta_x
    x_foot = x_zero + 0.5 * (x_low - x_zero)
    y_low = zero + k_low * (x_low - x_foot)
    corners = [
        _corner(x_zero, zero, zero, x_low, y_low, k_low, c),
        _corner(x_low, y_low, k_low, x_iso, zero + 1, k_iso, c),
    ]
    return SmoothSegmentedCurve(corners, x_zero, x_iso, zero, zero + 1, zero, k_iso)


def tendon_force_length_curve(
    strain_at_one_norm_force: torch.Tensor | float = 0.049,
    stiffness_at_one_norm_force: torch.Tensor | float | None = None,
    norm_force_at_toe_end: torch.Tensor | float | None = None,
    curviness: torch.Tensor | float | None = None,
) -> SmoothSegmentedCurve:
    """OpenSim's ``TendonForceLengthCurve`` of normalised tendon length.

    ``createTendonForceLengthCurve``: 0 up to the slack length (1), a toe region, then linear
    with ``stiffness_at_one_norm_force``. Without the three optional properties OpenSim's fitted
    curve is used (stiffness ``1.375 / strain``, toe force 2/3, curviness 0.5).

    Parameters
    ----------
    strain_at_one_norm_force : float or torch.Tensor
        Tendon strain at maximum isometric force.
    stiffness_at_one_norm_force, norm_force_at_toe_end, curviness : float or Tensor, optional
        All three or none.

    Returns
    -------
    SmoothSegmentedCurve

    Examples
    --------
    >>> import torch
    >>> curve = tendon_force_length_curve(0.049)
    >>> [round(v, 4) for v in curve(torch.tensor([0.99, 1.0, 1.049])).tolist()]
    [0.0, 0.0, 1.0]
    """
    (strain,) = _tensors(strain_at_one_norm_force)
    optional = (stiffness_at_one_norm_force, norm_force_at_toe_end, curviness)
    if all(v is None for v in optional):
        k_iso, f_toe, curv = 1.375 / strain, 2.0 / 3.0 + 0 * strain, 0.5 + 0 * strain
    elif any(v is None for v in optional):
        raise ValueError(
            "Give all three of stiffness_at_one_norm_force, norm_force_at_toe_end and "
            "curviness, or none of them (OpenSim's fitted curve)."
        )
    else:
        k_iso, f_toe, curv = _tensors(*optional, strain)[:3]
    return _tendon_force_length(strain, k_iso, f_toe, curv)


def _tendon_force_length(e_iso, k_iso, f_toe, curviness) -> SmoothSegmentedCurve:
    c = _curviness(curviness)
    zero = torch.zeros_like(e_iso)
    x0, x_iso = zero + 1, 1 + e_iso
    x_toe = (f_toe - 1) / k_iso + x_iso
    x_foot = 1.0 + (x_toe - 1.0) / 10.0
    y_toe_mid = f_toe * 0.5
    x_toe_mid = (y_toe_mid - 1) / k_iso + x_iso
    dydx_toe_mid = (y_toe_mid - zero) / (x_toe_mid - x_foot)
    x_toe_ctrl = x_foot + 0.5 * (x_toe_mid - x_foot)
    y_toe_ctrl = zero + dydx_toe_mid * (x_toe_ctrl - x_foot)
    corners = [
        _corner(x0, zero, zero, x_toe_ctrl, y_toe_ctrl, dydx_toe_mid, c),
        _corner(x_toe_ctrl, y_toe_ctrl, dydx_toe_mid, x_toe, f_toe, k_iso, c),
    ]
    return SmoothSegmentedCurve(corners, x0, x_toe, zero, f_toe, zero, k_iso)


# ------------------------------------------------------------------ the muscle
class _Muscle(NamedTuple):
    """A Millard muscle's curves and constants as OpenSim uses them once finalised."""

    active: SmoothSegmentedCurve
    passive: SmoothSegmentedCurve
    velocity: SmoothSegmentedCurve
    tendon: SmoothSegmentedCurve | None
    damping: torch.Tensor
    minimum_activation: torch.Tensor
    height: torch.Tensor  # l_opt sin(phi0), m
    pennation_minimum: torch.Tensor  # the pennation model's minimum fibre length, m
    max_pennation: torch.Tensor  # maximum_pennation_angle, rad
    min_fiber_length: torch.Tensor  # the muscle's minimum fibre length, m
    pennated: torch.Tensor  # phi0 > Eps


def _parameters(parameters: Mapping[str, torch.Tensor], like: torch.Tensor):
    """Every parameter as a tensor like ``like``: the given ones, OpenSim's defaults for others."""
    allowed = set(_MUSCLE) | set(MILLARD2012_DEFAULTS)
    unknown = sorted(set(parameters) - allowed)
    missing = [n for n in _MUSCLE if n not in parameters]
    if unknown or missing:
        raise TypeError(
            f"A Millard2012 muscle takes the parameters {list(_MUSCLE)} and optionally "
            f"{sorted(MILLARD2012_DEFAULTS)}; missing {missing}, unknown {unknown}."
        )
    values = {**MILLARD2012_DEFAULTS, **parameters}
    return {n: torch.as_tensor(v, dtype=like.dtype, device=like.device) for n, v in values.items()}


_CURVE_PARAMETERS = (
    "fiber_damping",
    *(n for n in MILLARD2012_DEFAULTS if n.split("_")[0] in ("active", "fv", "passive", "tendon")),
)
"""The parameters a Millard muscle's four curves are built from."""
CURVE_CACHE_SIZE = 8
"""Sets of curves :func:`_cached_curves` keeps (built from parameters without gradients)."""
_CURVE_CACHE: OrderedDict[tuple, tuple] = OrderedDict()
_CURVE_CACHE_LOCK = threading.Lock()


def _cached_curves(p: Mapping[str, torch.Tensor], rigid_tendon: bool):
    """:func:`_curves`, built once per distinct set of parameter values that need no gradient.

    A fit that does not learn the curve shapes calls the law with the same curve parameters
    at every step; the curves, their tables of ``u`` and their :class:`TabulatedCurve` are then
    built once (the cache keeps the last :data:`CURVE_CACHE_SIZE` sets, keyed by the values).
    """
    values = [p[n] for n in _CURVE_PARAMETERS if n in p]
    if any(v.requires_grad for v in values) or torch.is_inference_mode_enabled():
        return _curves(p, rigid_tendon)  # inference tensors cannot serve a later backward
    like = values[0]
    flat = torch.cat([v.reshape(-1) for v in values]).cpu().numpy().tobytes()
    key = (rigid_tendon, like.dtype, like.device, tuple(v.shape for v in values), flat)
    with _CURVE_CACHE_LOCK:
        curves = _CURVE_CACHE.get(key)
        if curves is not None:
            _CURVE_CACHE.move_to_end(key)
            return curves
    curves = _curves(p, rigid_tendon)
    with _CURVE_CACHE_LOCK:
        _CURVE_CACHE[key] = curves
        while len(_CURVE_CACHE) > CURVE_CACHE_SIZE:
            _CURVE_CACHE.popitem(last=False)
    return curves


def _curves(p: Mapping[str, torch.Tensor], rigid_tendon: bool):
    """The active, passive, velocity and (compliant) tendon curves as OpenSim finalises them.

    A damped or rigid-tendon muscle uses an active force-length minimum of 0 and
    force-velocity slopes 0 at ``v_max``; an undamped compliant one at least 0.1 and half the
    slopes near ``v_max``.
    """
    damped = p["fiber_damping"] >= _MIN_NONZERO_DAMPING
    classic = ~damped & (not rigid_tendon)  # OpenSim's undamped, compliant "classic Hill" muscle
    zero = torch.zeros_like(p["fiber_damping"])
    active = active_force_length_curve(
        p["active_min_fiber_length"],
        p["active_transition_fiber_length"],
        p["active_max_fiber_length"],
        p["active_shallow_slope"],
        torch.where(classic, p["active_minimum_value"].clamp_min(0.1), zero),
    )
    near_c, near_e = p["fv_concentric_slope_near_vmax"], p["fv_eccentric_slope_near_vmax"]
    velocity = force_velocity_curve(
        torch.where(classic, torch.maximum(p["fv_concentric_slope_at_vmax"], 0.5 * near_c), zero),
        near_c,
        p["fv_isometric_slope"],
        torch.where(classic, torch.maximum(p["fv_eccentric_slope_at_vmax"], 0.5 * near_e), zero),
        near_e,
        p["fv_max_eccentric_force"],
        p["fv_concentric_curviness"],
        p["fv_eccentric_curviness"],
    )
    e0, e1 = p["passive_strain_at_zero_force"], p["passive_fiber_strain"]
    fitted = p["passive_fitted_curve"] > 0.5
    passive = _fiber_force_length(
        e0,
        e1,
        torch.where(fitted, 0.2 + zero, p["passive_stiffness_at_low_force"]),
        torch.where(fitted, 2.0 / (e1 - e0), p["passive_stiffness_at_one_norm_force"]),
        torch.where(fitted, 0.75 + zero, p["passive_curviness"]),
    )
    tendon = None
    if not rigid_tendon:
        strain, fitted = p["tendon_strain"], p["tendon_fitted_curve"] > 0.5
        tendon = _tendon_force_length(
            strain,
            torch.where(fitted, 1.375 / strain, p["tendon_stiffness"]),
            torch.where(fitted, 2.0 / 3.0 + zero, p["tendon_toe_force"]),
            torch.where(fitted, 0.5 + zero, p["tendon_curviness"]),
        )
    return active, passive, velocity, tendon


def _muscle(p: Mapping[str, torch.Tensor], rigid_tendon: bool) -> _Muscle:
    """The curves and constants of ``Millard2012EquilibriumMuscle::extendFinalizeFromProperties``.

    A muscle with ``fiber_damping`` below 0.001 is undamped (damping 0). Its curves are
    :func:`_curves`', from :func:`_cached_curves` when none of their parameters needs a
    gradient.
    """
    damped = p["fiber_damping"] >= _MIN_NONZERO_DAMPING
    damping = torch.where(damped, p["fiber_damping"], torch.zeros_like(p["fiber_damping"]))
    active, passive, velocity, tendon = _cached_curves(p, rigid_tendon)
    # MuscleFixedWidthPennationModel and the muscle's minimum fibre length
    l_opt, phi_max = p["optimal_fiber_length"], p["maximum_pennation_angle"]
    height = l_opt * torch.sin(p["pennation_angle"])
    pennation_minimum = torch.where(
        phi_max > _SIGNIFICANT_REAL, height / torch.sin(phi_max), 0.01 * l_opt
    )
    active_minimum = p["active_min_fiber_length"] * l_opt
    min_fiber_length = torch.maximum(active_minimum, pennation_minimum).clamp_min(_SIGNIFICANT_REAL)
    return _Muscle(
        active,
        passive,
        velocity,
        tendon,
        damping,
        p["minimum_activation"].clamp(0.0, 1.0),
        height,
        pennation_minimum,
        phi_max,
        min_fiber_length,
        p["pennation_angle"] > _EPS,
    )


def _cos_pennation(m: _Muscle, fiber_length: torch.Tensor) -> torch.Tensor:
    """``cos(MuscleFixedWidthPennationModel::calcPennationAngle(fiber_length))``."""
    sine = m.height / fiber_length
    inside = m.pennated & (fiber_length > m.pennation_minimum) & (sine < torch.sin(m.max_pennation))
    cosine = torch.sqrt((1 - sine * sine).clamp_min(_EPS))
    at_limit = torch.where(m.pennated, torch.cos(m.max_pennation), torch.ones_like(cosine))
    return torch.where(inside, cosine, at_limit)


def _like(*values) -> torch.Tensor:
    """A tensor with the dtype and device of the first tensor among ``values`` (else float64)."""
    return next((v for v in values if torch.is_tensor(v)), torch.zeros((), dtype=torch.float64))


def rigid_tendon_millard_force(
    activation: torch.Tensor,
    musculotendon_length: torch.Tensor,
    musculotendon_velocity: torch.Tensor,
    **parameters: torch.Tensor | float,
) -> torch.Tensor:
    """Tendon force (N) of a rigid-tendon Millard2012EquilibriumMuscle, as OpenSim computes it.

    The fibre length is the pennation model's ``sqrt((l_mt - l_ts)^2 + (l_opt sin phi0)^2)``,
    at least the muscle's minimum fibre length (that of the active force-length curve and of
    the maximum pennation angle); the fibre velocity ``v_mt cos phi``, normalised by
    ``v_max l_opt``. With the activation held in ``[minimum_activation, 1]``::

        F = F0 max(0, a fL(l~) fV(v~) + fPE(l~) + damping v~) cos phi

    and 0 where the fibre sits at its minimum length and is not lengthening; where the tendon
    would be slack (the fibre at its minimum length) the fibre is still (``fV = 1``, ``v~ = 0``).

    Parameters
    ----------
    activation : torch.Tensor
        Activation in [0, 1], shape ``(..., n_muscles)``.
    musculotendon_length : torch.Tensor
        Length (m), same shape.
    musculotendon_velocity : torch.Tensor
        Lengthening velocity (m/s), same shape.
    **parameters : torch.Tensor or float
        ``max_isometric_force`` (N), ``optimal_fiber_length`` (m), ``tendon_slack_length`` (m),
        ``pennation_angle`` (rad, at the optimal fibre length), each broadcastable to
        ``activation``, and optionally any of :data:`MILLARD2012_DEFAULTS` (OpenSim's default
        where not given; ``max_contraction_velocity`` in optimal fibre lengths per second).

    Returns
    -------
    torch.Tensor
        Force along the tendon (N).

    Examples
    --------
    >>> import torch
    >>> f = rigid_tendon_millard_force(torch.tensor(1.0), torch.tensor(0.3), torch.tensor(0.0),
    ...     max_isometric_force=100.0, optimal_fiber_length=0.1, tendon_slack_length=0.2,
    ...     pennation_angle=0.0)
    >>> round(float(f), 2)  # optimal length, isometric: F0
    100.0
    """
    like = _like(activation, musculotendon_length, musculotendon_velocity)
    p = _parameters(parameters, like)
    m = _muscle(p, True)
    activation, l_mt, v_mt = _tensors(activation, musculotendon_length, musculotendon_velocity)
    l_opt, l_ts = p["optimal_fiber_length"], p["tendon_slack_length"]
    along = l_mt - l_ts
    fiber = torch.where(
        along >= m.pennation_minimum * torch.cos(m.max_pennation),
        torch.sqrt((m.height * m.height + along * along).clamp_min(_EPS)),
        m.pennation_minimum,
    )
    fiber = torch.maximum(fiber, m.min_fiber_length)
    cos_phi = _cos_pennation(m, fiber)
    buckled = l_mt - fiber * cos_phi < l_ts - _SIGNIFICANT_REAL
    fiber_velocity = torch.where(buckled, torch.zeros_like(v_mt), v_mt * cos_phi)
    norm_velocity = fiber_velocity / (l_opt * p["max_contraction_velocity"])
    f_v = torch.where(buckled, torch.ones_like(norm_velocity), m.velocity(norm_velocity))
    a = torch.minimum(torch.maximum(activation, m.minimum_activation), torch.ones_like(activation))
    norm_length = fiber / l_opt
    force = a * m.active(norm_length) * f_v + m.passive(norm_length) + m.damping * norm_velocity
    at_minimum = (fiber < m.min_fiber_length) | (
        (fiber <= m.min_fiber_length) & (fiber_velocity <= 0)
    )
    force = torch.where(at_minimum, torch.zeros_like(force), force.clamp_min(0.0))
    return p["max_isometric_force"] * force * cos_phi


def compliant_tendon_millard_force(
    activation: torch.Tensor,
    musculotendon_length: torch.Tensor,
    musculotendon_velocity: torch.Tensor,
    n_iterations: int = EQUILIBRIUM_ITERATIONS,
    **parameters: torch.Tensor | float,
) -> torch.Tensor:
    """Tendon force (N) of a compliant-tendon Millard2012EquilibriumMuscle at fibre equilibrium.

    The fibre's length along the tendon ``x`` (fibre length ``sqrt(x^2 + (l_opt sin phi0)^2)``,
    tendon length ``l_mt - x``) is the root of

    ``(a fL(l~) fV(v~) + fPE(l~) + damping v~) cos phi = fT((l_mt - x) / l_ts)``

    with the muscle's curves (:func:`rigid_tendon_millard_force`) and its
    ``TendonForceLengthCurve``, between the minimum fibre length and a slack tendon. It is found
    by 8 vectorised bisection steps, then ``n_iterations`` safeguarded Newton steps with the
    curves' exact slopes (no autograd), then one Newton step with autograd on, which carries
    the exact implicit-function gradient to the activation, the lengths and every parameter.
    The fibre velocity is the rigid-tendon split ``v_mt cos phi`` (the tendon does not stretch
    over time); at zero velocity this is OpenSim's static equilibrium
    (``Model.equilibrateMuscles``). Where no root lies in the bracket the force is that at the
    nearer end.

    Parameters
    ----------
    activation, musculotendon_length, musculotendon_velocity : torch.Tensor
        As :func:`rigid_tendon_millard_force`.
    n_iterations : int, default=6
        Safeguarded Newton steps before the final Newton step.
    **parameters : torch.Tensor or float
        As :func:`rigid_tendon_millard_force`, with the tendon curve's ``tendon_strain``,
        ``tendon_fitted_curve``, ``tendon_stiffness``, ``tendon_toe_force`` and
        ``tendon_curviness``.

    Returns
    -------
    torch.Tensor
        Force along the tendon (N), shape of ``activation``.

    Examples
    --------
    >>> import torch
    >>> args = [torch.tensor(v, dtype=torch.float64) for v in (1.0, 0.3, 0.0)]
    >>> muscle = dict(max_isometric_force=100.0, optimal_fiber_length=0.1,
    ...               tendon_slack_length=0.2, pennation_angle=0.0)
    >>> rigid = rigid_tendon_millard_force(*args, **muscle)
    >>> compliant = compliant_tendon_millard_force(*args, **muscle)
    >>> round(float(rigid), 2), round(float(compliant), 2)  # the tendon stretches, fibre shortens
    (100.0, 96.08)
    """
    like = _like(activation, musculotendon_length, musculotendon_velocity)
    p = _parameters(parameters, like)
    state = _tensors(activation, musculotendon_length, musculotendon_velocity)
    fixed_p = {n: v.detach() for n, v in p.items()}
    fixed_state = [v.detach() for v in state]
    fixed = _muscle(fixed_p, False)
    shape = torch.broadcast_shapes(*(v.shape for v in (*fixed_state, *fixed_p.values())))
    h, l_mt = fixed.height, fixed_state[1]
    bottom = torch.sqrt((fixed.min_fiber_length**2 - h * h).clamp_min(0.0))
    top = torch.maximum(l_mt - 0.9 * fixed_p["tendon_slack_length"], bottom + _SQRT_EPS)
    bottom, top = torch.broadcast_to(bottom, shape), torch.broadcast_to(top, shape)

    tabulated = fixed._replace(
        **{
            name: getattr(fixed, name).tabulated()
            for name in ("active", "passive", "velocity", "tendon")
        }
    )

    def residual(x):
        return _equilibrium(x, tabulated, fixed_p, *fixed_state)

    with torch.no_grad():
        start = _start_fiber(tabulated, fixed_p, fixed_state[1], residual, bottom, top)
        root = _solve(residual, start, bottom, top, int(n_iterations))
    # one Newton step with autograd on and the exact curves' slope at the root: the exact
    # implicit-function gradient
    g, tendon, slope, tendon_slope = _equilibrium(root, _muscle(p, False), p, *state)
    x = root - g / slope.clamp_min(1e-6)
    x = torch.minimum(torch.maximum(x, bottom), top)
    assert fixed.tendon is not None  # a compliant muscle
    # the tendon force at x, to first order about the root (x - root is round-off)
    tendon = tendon + tendon_slope * (x - root)
    return p["max_isometric_force"] * tendon


def _equilibrium(x, m: _Muscle, p, activation, l_mt, v_mt):
    """Fibre force along the tendon minus tendon force (over F0), and more.

    Returns the residual, the tendon force (over F0), and the derivatives in ``x`` (1/m,
    without autograd) of the residual and of the tendon force.
    """
    assert m.tendon is not None  # a compliant muscle
    l_opt, l_ts = p["optimal_fiber_length"], p["tendon_slack_length"]
    fiber = torch.sqrt(x * x + m.height * m.height)
    cos_phi = torch.where(m.pennated, x / fiber, torch.ones_like(fiber))
    velocity_scale = v_mt / (p["max_contraction_velocity"] * l_opt)
    norm_velocity = velocity_scale * cos_phi
    a = torch.minimum(torch.maximum(activation, m.minimum_activation), torch.ones_like(activation))
    f_l, d_f_l = m.active.value_with_slope(fiber / l_opt)
    f_v, d_f_v = m.velocity.value_with_slope(norm_velocity)
    f_pe, d_f_pe = m.passive.value_with_slope(fiber / l_opt)
    f_t, d_f_t = m.tendon.value_with_slope((l_mt - x) / l_ts)
    force = a * f_l * f_v + f_pe + m.damping * norm_velocity
    with torch.no_grad():
        d_cos = torch.where(m.pennated, m.height**2 / fiber**3, torch.zeros_like(fiber))
        d_length, d_velocity = cos_phi / l_opt, velocity_scale * d_cos
        d_force = (
            a * (d_f_l * f_v * d_length + f_l * d_f_v * d_velocity)
            + d_f_pe * d_length
            + m.damping * d_velocity
        )
        slope = d_force * cos_phi + force * d_cos + d_f_t / l_ts
    return force * cos_phi - f_t, f_t, slope, -d_f_t / l_ts


def _start_fiber(m: _Muscle, p, l_mt, residual, low, high):
    """A start for the equilibrium: the tendon stretched as far as the fibre pulls at slack.

    The fibre's force ``F`` (over F0) with the tendon at its slack length, then the tendon
    strain ``e`` with ``fT(1 + e) = F`` by :data:`TENDON_INVERSION_STEPS` Newton steps from
    the chord ``e = strain_at_F0 * F``; the fibre length along the tendon that leaves. The
    tendon is stiff against the fibre, so this is near the root, with the tendon's toe (where
    Newton's method on the equilibrium overshoots) already crossed.
    """
    assert m.tendon is not None  # a compliant muscle
    l_ts = p["tendon_slack_length"]
    slack = torch.minimum(torch.maximum(l_mt - l_ts, low), high)
    g, tendon, _, _ = residual(slack)
    force = (g + tendon).clamp_min(0.0)  # the fibre's, along the tendon
    strain = p["tendon_strain"] * force
    for _ in range(TENDON_INVERSION_STEPS):
        value, slope = m.tendon.value_and_slope(1.0 + strain)
        strain = (strain - (value - force) / slope.clamp_min(1e-3)).clamp_min(0.0)
    return torch.minimum(torch.maximum(l_mt - l_ts * (1.0 + strain), low), high)


def _solve(residual, x, low, high, n_iterations: int):
    """The root of a rising ``residual`` in ``[low, high]``, from ``x``.

    Safeguarded Newton steps: a bisection step where Newton would leave the bracket, which
    each step narrows.
    """
    for _ in range(n_iterations):
        g, _, slope, _ = residual(x)
        above = g > 0
        high = torch.where(above, x, high)
        low = torch.where(above, low, x)
        step = x - g / torch.where(slope > 0, slope, torch.ones_like(slope))
        newton = (slope > 0) & (step >= low) & (step <= high)
        x = torch.where(newton, step, 0.5 * (low + high))
    return x


# ------------------------------------------------------------------ the laws
class RigidTendonMillard2012(MuscleLaw):
    """Rigid-tendon Millard2012EquilibriumMuscle: :func:`rigid_tendon_millard_force`.

    Its 27 per-muscle parameters are those of OpenSim's ``Millard2012EquilibriumMuscle``
    (maximum isometric force, optimal fibre length, tendon slack length, pennation, maximum
    contraction velocity, fibre damping, minimum activation, maximum pennation angle) and of its
    active force-length, force-velocity and passive fibre force-length curves, read from the
    file by dotted getters. The OpenSim builder makes every muscle a rigid-tendon
    ``Millard2012EquilibriumMuscle`` (``use_rigid_tendon_millard_muscles``: other muscle types
    are replaced, keeping the anatomy, with OpenSim's default curves and damping 0.1).
    ``affine_in_activation`` is False: the activation is floored at ``minimum_activation`` and the
    fibre force at 0.

    Examples
    --------
    >>> from deepemg.physics import get_muscle_law
    >>> law = get_muscle_law("rigid_tendon_millard2012")
    >>> len(law.parameter_names), law.opensim_class
    (27, 'Millard2012EquilibriumMuscle')
    >>> law.opensim_getters["active_max_fiber_length"]
    'get_ActiveForceLengthCurve.get_max_norm_active_fiber_length'
    """

    name = "rigid_tendon_millard2012"
    parameter_names: tuple[str, ...] = tuple(_GETTERS)
    opensim_class = "Millard2012EquilibriumMuscle"
    opensim_getters = MappingProxyType(dict(_GETTERS))
    opensim_conversion = "use_rigid_tendon_millard_muscles"
    curve_shape_parameters = MappingProxyType(
        {  # scales of the descending limb's end, the passive strain at F0 and v_max
            "active_max_fiber_length": (0.85, 1.25),
            "passive_fiber_strain": (0.5, 1.5),
            "max_contraction_velocity": (0.5, 1.5),
        }
    )
    affine_in_activation = False  # activation floor and fibre force floor at 0
    tendon_force: Callable[..., torch.Tensor] = staticmethod(rigid_tendon_millard_force)
    """The function of the law's parameters that gives the tendon force."""


class CompliantTendonMillard2012(RigidTendonMillard2012):
    """Compliant-tendon Millard2012EquilibriumMuscle at static fibre equilibrium.

    :func:`compliant_tendon_millard_force`: the rigid law's parameters plus the five of the
    ``TendonForceLengthCurve`` (32). The OpenSim builder makes every muscle a compliant-tendon
    ``Millard2012EquilibriumMuscle`` (``use_compliant_tendon_millard_muscles``). The fibre
    velocity is the rigid-tendon split of the musculotendon velocity.

    Examples
    --------
    >>> from deepemg.physics import get_muscle_law
    >>> law = get_muscle_law("compliant_tendon_millard2012")
    >>> len(law.parameter_names), law.opensim_getters["tendon_strain"]
    (32, 'get_TendonForceLengthCurve.get_strain_at_one_norm_force')
    """

    name = "compliant_tendon_millard2012"
    parameter_names = (*RigidTendonMillard2012.parameter_names, *_TENDON_GETTERS)
    opensim_getters = MappingProxyType({**_GETTERS, **_TENDON_GETTERS})
    opensim_conversion = "use_compliant_tendon_millard_muscles"
    curve_shape_parameters = MappingProxyType(
        {**RigidTendonMillard2012.curve_shape_parameters, "tendon_strain": (0.6, 2.0)}
    )
    affine_in_activation = False  # the fibre-tendon equilibrium depends on the activation
    tendon_force = staticmethod(compliant_tendon_millard_force)


register_muscle_law(RigidTendonMillard2012())
register_muscle_law(CompliantTendonMillard2012())
register_from_model_law("Millard2012EquilibriumMuscle", True, "rigid_tendon_millard2012")
register_from_model_law("Millard2012EquilibriumMuscle", False, "compliant_tendon_millard2012")
