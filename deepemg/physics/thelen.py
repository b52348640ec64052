"""OpenSim's Thelen2003Muscle as torch muscle laws (rigid and compliant tendon).

The curves, the force-velocity inversion, the minimum activation and the fixed-width pennation
of ``OpenSim::Thelen2003Muscle`` (OpenSim 4.6, ``Thelen2003Muscle.cpp``,
``MuscleFixedWidthPennationModel.cpp``, ``MuscleFirstOrderActivationDynamicModel.cpp``):

- active force-length ``fL = exp(-(l~ - 1)^2 / KshapeActive)``;
- passive force-length ``fPE = (exp(KshapePassive (l~ - 1) / FmaxMuscleStrain) - 1) /
  (exp(KshapePassive) - 1)`` for ``l~ > 1``, else 0;
- tendon ``fSE``: 0 when slack, an exponential toe (``kToe = 3``, ``Ftoe = 0.33``) up to OpenSim's
  exact ``eToe = 99 e0 e^3 / (166 e^3 - 67)``, then linear with slope ``0.67 / (e0 - eToe)``
  (``e0 = FmaxTendonStrain``);
- force-velocity: OpenSim computes ``fV`` by inverting Thelen's equations 6-7 (``calcdlceN``) with
  Newton steps (``calcfvInv``); :func:`thelen_force_velocity` is that inverse in closed form,
  including the linear extrapolation beyond ``fv_linear_extrap_threshold`` and the lower bound
  ``fV >= 0``. It depends on the activation (the curve is scaled by ``0.25 + 0.75 a``), so
  neither law is affine in the activation;
- activation clamped to ``[minimum_activation, 1]`` (OpenSim's ``clampActivation``; no gradient
  below the minimum);
- fixed-width pennation ``w = l_opt sin(phi0)``, fibre length at least
  ``w / sin(maximum_pennation_angle)``.

OpenSim 4.6 refuses ``ignore_tendon_compliance`` on a Thelen2003Muscle ("not currently
implemented"); its rigid-tendon forces are those of ``calcInextensibleTendonActiveFiberForce``
(what static optimisation uses) plus the passive fibre force along the tendon:
:func:`rigid_tendon_thelen_force`. :func:`compliant_tendon_thelen_force` is the elastic tendon at
fibre-tendon equilibrium, OpenSim's ``Model.equilibrateMuscles`` (with a velocity, the
fibre's share of it as OpenSim's ``initMuscleState`` gives it).

References
----------
Thelen DG (2003). Adjustment of muscle mechanics model parameters to simulate dynamic
contractions in older adults. J Biomech Eng 125:70-77.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import TypeAlias

import torch

from .from_model import register_from_model_law
from .muscle import MuscleLaw, register_muscle_law

__all__ = [
    "CompliantTendonThelen2003",
    "RigidTendonThelen2003",
    "compliant_tendon_thelen_force",
    "rigid_tendon_thelen_force",
    "thelen_active_force_length",
    "thelen_force_velocity",
    "thelen_passive_force_length",
    "thelen_tendon_force_length",
]

Tensorish: TypeAlias = torch.Tensor | float

_E3 = math.exp(3.0)
_TOE_SHAPE = 3.0
_TOE_FORCE = 0.33
_SIGNIFICANT_REAL = 2.0**-40  # about SimTK::SignificantReal (1e-12 here is what matters)
DEFAULTS = MappingProxyType(
    {
        "max_contraction_velocity": 10.0,
        "minimum_activation": 0.01,
        "passive_fiber_strain": 0.6,
        "active_force_shape": 0.45,
        "passive_force_shape": 5.0,
        "force_velocity_shape": 0.25,
        "max_lengthening_force": 1.4,
        "fv_extrapolation_threshold": 0.95,
        "maximum_pennation_angle": math.acos(0.1),
        "tendon_strain": 0.04,
    }
)
"""OpenSim 4.6's defaults of a new Thelen2003Muscle, by deepemg's parameter names."""
_REQUIRED = (
    "max_isometric_force",
    "optimal_fiber_length",
    "tendon_slack_length",
    "pennation_angle",
)


def thelen_active_force_length(norm_fiber_length: torch.Tensor, shape: Tensorish = 0.45):
    """Thelen's active force-length multiplier ``exp(-(l~ - 1)^2 / shape)`` (dimensionless).

    Parameters
    ----------
    norm_fiber_length : torch.Tensor
        Fibre length over the optimal fibre length.
    shape : float or torch.Tensor, default=0.45
        OpenSim's ``KshapeActive``.

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> import torch
    >>> round(float(thelen_active_force_length(torch.tensor(1.3), 0.45)), 4)
    0.8187
    """
    return torch.exp(-((norm_fiber_length - 1.0) ** 2) / shape)


def thelen_passive_force_length(
    norm_fiber_length: torch.Tensor, strain: Tensorish = 0.6, shape: Tensorish = 5.0
) -> torch.Tensor:
    """Thelen's passive fibre force over F0: 0 up to the optimal length, then exponential.

    Parameters
    ----------
    norm_fiber_length : torch.Tensor
        Fibre length over the optimal fibre length.
    strain : float or torch.Tensor, default=0.6
        OpenSim's ``FmaxMuscleStrain`` (fibre strain at which the passive force is F0).
    shape : float or torch.Tensor, default=5.0
        OpenSim's ``KshapePassive``.

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> import torch
    >>> [float(thelen_passive_force_length(torch.tensor(x), 0.6, 4.0)) for x in (0.9, 1.6)]
    [0.0, 1.0]
    """
    stretch = torch.clamp_min(norm_fiber_length - 1.0, 0.0)
    shape = torch.as_tensor(shape, dtype=stretch.dtype, device=stretch.device)
    return torch.expm1(shape * stretch / strain) / torch.expm1(shape)


def thelen_tendon_force_length(norm_tendon_length: torch.Tensor, strain: Tensorish = 0.04):
    """Thelen's tendon force over F0: 0 when slack, exponential toe, then linear.

    OpenSim's exact toe strain ``eToe = 99 e0 e^3 / (166 e^3 - 67)`` and linear stiffness
    ``0.67 / (e0 - eToe)``, with ``e0`` the strain at F0 (``FmaxTendonStrain``).

    Parameters
    ----------
    norm_tendon_length : torch.Tensor
        Tendon length over the tendon slack length.
    strain : float or torch.Tensor, default=0.04
        OpenSim's ``FmaxTendonStrain``.

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> import torch
    >>> round(float(thelen_tendon_force_length(torch.tensor(1.033), 0.033)), 6)
    1.0
    """
    x = norm_tendon_length - 1.0
    toe = 99.0 * strain * _E3 / (166.0 * _E3 - 67.0)
    stiffness = 0.67 / (strain - toe)
    in_toe = torch.clamp(x, min=0.0)
    in_toe = torch.minimum(in_toe, torch.as_tensor(toe, dtype=x.dtype, device=x.device))
    curved = _TOE_FORCE / (_E3 - 1.0) * torch.expm1(_TOE_SHAPE * in_toe / toe)
    return torch.where(x > toe, stiffness * (x - toe) + _TOE_FORCE, curved)


def thelen_force_velocity(
    norm_fiber_velocity: torch.Tensor,
    activation: torch.Tensor,
    shape: Tensorish = 0.25,
    max_lengthening_force: Tensorish = 1.4,
    threshold: Tensorish = 0.95,
) -> torch.Tensor:
    """Thelen's force-velocity multiplier of a normalised fibre velocity (lengthening > 0).

    The closed-form inverse of Thelen's equations 6-7 as OpenSim writes them (``calcdlceN``;
    OpenSim inverts them with Newton steps in ``calcfvInv``), with ``c = 0.25 + 0.75 a``,
    ``k = (2 + 2 / Af) / (Flen - 1)``:

    - ``v <= -c``: 0 (OpenSim's ``max(0, fV)`` of the extrapolated line);
    - ``-c < v <= 0``: ``(c + v) / (c - v / Af)``;
    - ``0 < v < v_t``: ``(c + v k Flen) / (c + v k)``, with ``fV(v_t) = threshold Flen``;
    - beyond ``v_t``: the line of slope ``k Flen^2 (1 - threshold)^2 / (c (Flen - 1))``.

    Parameters
    ----------
    norm_fiber_velocity : torch.Tensor
        Fibre velocity over ``v_max l_opt`` (lengthening positive).
    activation : torch.Tensor
        Activation (already clamped to OpenSim's range).
    shape, max_lengthening_force, threshold : float or torch.Tensor
        OpenSim's ``Af``, ``Flen`` and ``fv_linear_extrap_threshold``.

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> import torch
    >>> v = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0])
    >>> [round(float(f), 4) for f in thelen_force_velocity(v, torch.tensor(1.0))]
    [0.0, 0.1667, 1.0, 1.4254, 2.191]
    """
    v = norm_fiber_velocity
    af, flen, threshold, activation = (
        torch.as_tensor(x, dtype=v.dtype, device=v.device)
        for x in (shape, max_lengthening_force, threshold, activation)
    )
    c = 0.25 + 0.75 * activation
    k = (2.0 + 2.0 / af) / (flen - 1.0)
    v_top = c * (threshold * flen - 1.0) / (k * flen * (1.0 - threshold))
    shortening = torch.minimum(torch.maximum(v, -c), torch.zeros_like(v))
    concentric = (c + shortening) / (c - shortening / af)
    lengthening = torch.minimum(torch.clamp_min(v, 0.0), v_top)
    eccentric = (c + lengthening * k * flen) / (c + lengthening * k)
    slope = k * flen * flen * (1.0 - threshold) ** 2 / (c * (flen - 1.0))
    extrapolated = threshold * flen + (v - v_top) * slope
    return torch.where(v <= 0, concentric, torch.where(v < v_top, eccentric, extrapolated))


def _fiber(along, l_opt, phi0, max_pennation):
    """Fibre length, cos(pennation) and the lower bound of ``along`` (fixed-width model).

    ``along`` (the fibre's length along the tendon, m) is clamped to the minimum
    ``l_min cos(max_pennation)``, ``l_min = w / sin(max_pennation)`` (``0.01 l_opt`` without a
    maximum angle), as OpenSim clamps the fibre length.
    """
    width = l_opt * torch.sin(phi0)
    max_sin = torch.sin(max_pennation)
    has_max = max_pennation > _SIGNIFICANT_REAL
    min_length = torch.where(has_max, width / torch.where(has_max, max_sin, 1.0), 0.01 * l_opt)
    min_along = min_length * torch.cos(max_pennation)
    clamped = torch.maximum(along, min_along)
    length = torch.sqrt(clamped * clamped + width * width)
    cos_pennation = clamped / torch.clamp_min(length, torch.finfo(length.dtype).tiny)
    return length, cos_pennation, min_along


def _fiber_force(along, activation, v_mt, p):
    """Fibre force along the tendon over F0, with the rigid-tendon fibre velocity.

    ``p`` holds the law's parameters (activation already clamped); the active force is 0 where
    the fibre is at its minimum length, as in ``calcInextensibleTendonActiveFiberForce``.
    """
    l_opt = p["optimal_fiber_length"]
    length, cos_pennation, min_along = _fiber(
        along, l_opt, p["pennation_angle"], p["maximum_pennation_angle"]
    )
    norm_length = length / l_opt
    norm_velocity = v_mt * cos_pennation / (p["max_contraction_velocity"] * l_opt)
    fv = thelen_force_velocity(
        norm_velocity,
        activation,
        p["force_velocity_shape"],
        p["max_lengthening_force"],
        p["fv_extrapolation_threshold"],
    )
    active = activation * thelen_active_force_length(norm_length, p["active_force_shape"]) * fv
    active = torch.where(along > min_along, active, torch.zeros_like(active))
    passive = thelen_passive_force_length(
        norm_length, p["passive_fiber_strain"], p["passive_force_shape"]
    )
    return (active + passive) * cos_pennation


def _prepare(activation, musculotendon_length, musculotendon_velocity, parameters):
    """Tensors of one dtype and device; the activation clamped to ``[minimum_activation, 1]``."""
    like = activation if torch.is_tensor(activation) else torch.as_tensor(activation)
    if not like.is_floating_point():
        like = like.to(torch.get_default_dtype())

    def tensor(value):
        return torch.as_tensor(value, dtype=like.dtype, device=like.device)

    unknown = sorted(set(parameters) - set(DEFAULTS) - set(_REQUIRED))
    if unknown:
        raise TypeError(
            f"Unknown Thelen2003 parameters {unknown}; known: {[*_REQUIRED, *DEFAULTS]}."
        )
    p = {name: tensor(parameters.get(name, default)) for name, default in DEFAULTS.items()}
    for name in _REQUIRED:
        p[name] = tensor(parameters[name])
    a = torch.minimum(torch.maximum(tensor(activation), p["minimum_activation"]), tensor(1.0))
    return a, tensor(musculotendon_length), tensor(musculotendon_velocity), p


def rigid_tendon_thelen_force(
    activation: torch.Tensor,
    musculotendon_length: torch.Tensor,
    musculotendon_velocity: torch.Tensor,
    max_isometric_force: Tensorish,
    optimal_fiber_length: Tensorish,
    tendon_slack_length: Tensorish,
    pennation_angle: Tensorish,
    **parameters: Tensorish,
) -> torch.Tensor:
    """Tendon force (N) of a rigid-tendon Thelen2003Muscle, as OpenSim computes it.

    The tendon keeps its slack length: the fibre's length along the tendon is
    ``l_mt - l_ts``, its velocity ``v_mt cos phi``, and
    ``F = F0 (a fL(l~) fV(v~, a) + fPE(l~)) cos phi`` with ``a`` clamped to
    ``[minimum_activation, 1]``: OpenSim's ``calcInextensibleTendonActiveFiberForce`` plus
    its passive fibre force along the tendon.

    Parameters
    ----------
    activation : torch.Tensor
        Activation in [0, 1], shape ``(..., n_muscles)``.
    musculotendon_length : torch.Tensor
        Length (m), same shape.
    musculotendon_velocity : torch.Tensor
        Lengthening velocity (m/s), same shape.
    max_isometric_force, optimal_fiber_length, tendon_slack_length, pennation_angle
        Per-muscle parameters (N, m, m, rad at the optimal fibre length), broadcastable.
    **parameters : float or torch.Tensor
        Any of ``max_contraction_velocity`` (optimal lengths per second),
        ``minimum_activation``, ``passive_fiber_strain`` (``FmaxMuscleStrain``),
        ``active_force_shape`` (``KshapeActive``), ``passive_force_shape``
        (``KshapePassive``), ``force_velocity_shape`` (``Af``), ``max_lengthening_force``
        (``Flen``), ``fv_extrapolation_threshold``, ``maximum_pennation_angle`` (rad); OpenSim
        4.6's defaults (:data:`DEFAULTS`) for those not given.

    Returns
    -------
    torch.Tensor
        Force along the tendon (N), shape of ``activation``.

    Examples
    --------
    >>> import torch
    >>> f = rigid_tendon_thelen_force(torch.tensor(1.0), torch.tensor(0.3), torch.tensor(0.0),
    ...                               100.0, 0.1, 0.2, 0.0)
    >>> round(float(f), 2)  # optimal length, isometric: F0
    100.0
    """
    parameters = dict(
        parameters,
        max_isometric_force=max_isometric_force,
        optimal_fiber_length=optimal_fiber_length,
        tendon_slack_length=tendon_slack_length,
        pennation_angle=pennation_angle,
    )
    a, l_mt, v_mt, p = _prepare(
        activation, musculotendon_length, musculotendon_velocity, parameters
    )
    along = l_mt - p["tendon_slack_length"]
    return p["max_isometric_force"] * _fiber_force(along, a, v_mt, p)


EQUILIBRIUM_BISECTIONS = 12
"""Bisection steps of :func:`compliant_tendon_thelen_force` before its Illinois steps."""
EQUILIBRIUM_ITERATIONS = 8
"""Illinois steps of :func:`compliant_tendon_thelen_force` after its bisection steps."""
FORCE_VELOCITY_ITERATIONS = 2
"""Fixed-point steps of the fibre's force-velocity multiplier at each point of the search."""


def compliant_tendon_thelen_force(
    activation: torch.Tensor,
    musculotendon_length: torch.Tensor,
    musculotendon_velocity: torch.Tensor,
    max_isometric_force: Tensorish,
    optimal_fiber_length: Tensorish,
    tendon_slack_length: Tensorish,
    pennation_angle: Tensorish,
    **parameters: Tensorish,
) -> torch.Tensor:
    """Tendon force (N) of a compliant-tendon Thelen2003Muscle at fibre-tendon equilibrium.

    The fibre's length along the tendon ``x`` and its force-velocity multiplier ``fV`` solve
    ``(a fL(l~) fV + fPE(l~)) cos phi = fSE((l_mt - x) / l_ts)`` (fixed-width pennation,
    ``l = sqrt(x^2 + w^2)``, ``x`` at least OpenSim's minimum) and
    ``fV = fV(v~, a)`` with the fibre velocity OpenSim's ``initMuscleState`` gives it: the
    musculotendon velocity shared by the fibre's and the tendon's stiffnesses in series,
    ``v_fibre = k_T / (k_F + k_T) v_mt cos phi`` (none while the tendon is slack). This is
    ``Model.equilibrateMuscles`` with the muscle's lengthening speed; with zero velocity,
    ``fV = 1``: static equilibrium.

    Solved by 12 vectorised bisection steps in ``[x_min, l_mt - 0.9 l_ts]`` (``1e-6 l_opt``
    when ``x_min`` is 0) and 8 Illinois steps, ``fV`` settled by 2 fixed-point steps at each
    point, without autograd; then one Newton step on both equations with autograd on, which
    carries the exact implicit-function gradient to the activation, the lengths, the velocity
    and every parameter.

    Parameters
    ----------
    activation, musculotendon_length, musculotendon_velocity, max_isometric_force,
    optimal_fiber_length, tendon_slack_length, pennation_angle
        As :func:`rigid_tendon_thelen_force`.
    **parameters : float or torch.Tensor
        As :func:`rigid_tendon_thelen_force`, and ``tendon_strain`` (``FmaxTendonStrain``).

    Returns
    -------
    torch.Tensor
        Force along the tendon (N), shape of ``activation``.

    Examples
    --------
    >>> import torch
    >>> args = [torch.tensor(v, dtype=torch.float64) for v in (1.0, 0.3, 0.0)]
    >>> rigid = rigid_tendon_thelen_force(*args, 100.0, 0.1, 0.2, 0.0)
    >>> compliant = compliant_tendon_thelen_force(*args, 100.0, 0.1, 0.2, 0.0)
    >>> round(float(rigid), 2), round(float(compliant), 2)  # the tendon stretches
    (100.0, 98.61)
    """
    parameters = dict(
        parameters,
        max_isometric_force=max_isometric_force,
        optimal_fiber_length=optimal_fiber_length,
        tendon_slack_length=tendon_slack_length,
        pennation_angle=pennation_angle,
    )
    a, l_mt, v_mt, p = _prepare(
        activation, musculotendon_length, musculotendon_velocity, parameters
    )
    x, fv = _equilibrium_projection(a, l_mt, v_mt, p)
    return p["max_isometric_force"] * _equilibrium(x, fv, a, l_mt, v_mt, p)[2]


def _slopes(norm_length, norm_tendon_length, p):
    """The slopes of fL and fPE in l~ and of fSE in l_t / l_ts.

    OpenSim's ``calcDfalDlceN``, ``calcDfpeDlceN`` and ``calcDfseDtlN``.
    """
    shape, strain, k_pe = (
        p["active_force_shape"],
        p["passive_fiber_strain"],
        p["passive_force_shape"],
    )
    d_active = -2.0 * (norm_length - 1.0) / shape * thelen_active_force_length(norm_length, shape)
    stretch = torch.clamp_min(norm_length - 1.0, 0.0)
    d_passive = torch.where(
        norm_length > 1.0,
        k_pe / strain * torch.exp(k_pe * stretch / strain) / torch.expm1(k_pe),
        torch.zeros_like(stretch),
    )
    tendon_strain = p["tendon_strain"]
    x = norm_tendon_length - 1.0
    toe = 99.0 * tendon_strain * _E3 / (166.0 * _E3 - 67.0)
    in_toe = torch.minimum(torch.clamp_min(x, 0.0), toe)
    curved = _TOE_FORCE / (_E3 - 1.0) * _TOE_SHAPE / toe * torch.exp(_TOE_SHAPE * in_toe / toe)
    d_tendon = torch.where(
        x > toe, 0.67 / (tendon_strain - toe), torch.where(x > 0, curved, torch.zeros_like(x))
    )
    return d_active, d_passive, d_tendon


def _equilibrium(x, fv, a, l_mt, v_mt, p):
    """Residuals of the compliant muscle at fibre projection ``x`` (m) and multiplier ``fv``.

    Returns ``(g, fv - F, fSE)``: the fibre force along the tendon minus the tendon force (over
    F0); ``fv`` minus the force-velocity multiplier of the fibre velocity OpenSim's
    ``initMuscleState`` gives the fibre there (the musculotendon velocity shared by the fibre's
    and the tendon's stiffnesses in series, all of it to the tendon when the tendon is slack);
    and the tendon force over F0.
    """
    l_opt, l_ts = p["optimal_fiber_length"], p["tendon_slack_length"]
    length, cos_pennation, _ = _fiber(x, l_opt, p["pennation_angle"], p["maximum_pennation_angle"])
    norm_length = length / l_opt
    norm_tendon = (l_mt - x) / l_ts
    fal = thelen_active_force_length(norm_length, p["active_force_shape"])
    fpe = thelen_passive_force_length(
        norm_length, p["passive_fiber_strain"], p["passive_force_shape"]
    )
    tendon = thelen_tendon_force_length(norm_tendon, p["tendon_strain"])
    fiber = a * fal * fv + fpe
    d_active, d_passive, d_tendon = _slopes(norm_length, norm_tendon, p)
    along = length * cos_pennation  # x, at least OpenSim's minimum
    width = l_opt * torch.sin(p["pennation_angle"])
    d_cos = width * width / (length * length * along)  # d cos(phi) / d l
    fiber_stiffness = (a * fv * d_active + d_passive) / l_opt * cos_pennation + fiber * d_cos
    fiber_stiffness = fiber_stiffness * cos_pennation  # along the tendon, over F0
    tendon_stiffness = d_tendon / l_ts
    total = fiber_stiffness + tendon_stiffness
    shared = (total.abs() > _SIGNIFICANT_REAL) & (norm_tendon > 1.0)
    fiber_share = torch.where(shared, tendon_stiffness / torch.where(shared, total, 1.0), 0.0)
    norm_velocity = fiber_share * v_mt * cos_pennation / (p["max_contraction_velocity"] * l_opt)
    target = thelen_force_velocity(
        norm_velocity,
        a,
        p["force_velocity_shape"],
        p["max_lengthening_force"],
        p["fv_extrapolation_threshold"],
    )
    return fiber * cos_pennation - tendon, fv - target, tendon


def _settle(x, fv, held, n: int = FORCE_VELOCITY_ITERATIONS):
    """``g`` and ``fv`` after ``n`` fixed-point steps ``fv <- F(x, fv)`` (no autograd).

    ``g`` is that of the last step's start (``fv`` one step behind, as in OpenSim's search).
    """
    g = fv
    for _ in range(n):
        g, h, _ = _equilibrium(x, fv, *held)
        fv = fv - h
    return g, fv


def _equilibrium_projection(a, l_mt, v_mt, p):
    """The fibre length along the tendon at equilibrium, differentiable in every input."""
    inputs = (a, l_mt, v_mt, *p.values())
    shape = torch.broadcast_shapes(*(v.shape for v in inputs))
    frozen = {k: v.detach() for k, v in p.items()}
    held = (a.detach(), l_mt.detach(), v_mt.detach(), frozen)
    _, _, min_along = _fiber(
        l_mt.detach(),
        frozen["optimal_fiber_length"],
        frozen["pennation_angle"],
        frozen["maximum_pennation_angle"],
    )
    l_opt, l_ts = frozen["optimal_fiber_length"], frozen["tendon_slack_length"]
    bottom = torch.broadcast_to(torch.maximum(min_along, 1e-6 * l_opt), shape)
    top = torch.broadcast_to(torch.maximum(l_mt.detach() - 0.9 * l_ts, 2.0 * bottom), shape)
    with torch.no_grad():
        low, high = bottom, top
        fv = torch.ones(shape, dtype=bottom.dtype, device=bottom.device)
        for _ in range(EQUILIBRIUM_BISECTIONS):
            middle = 0.5 * (low + high)
            g, fv = _settle(middle, fv, held)
            above = g > 0
            high, low = torch.where(above, middle, high), torch.where(above, low, middle)
        root, fv = _illinois(held, low, high, fv)
    return _newton_step(root, fv, (a, l_mt, v_mt, p), held, bottom, top)


def _newton_step(root, fv, attached, held, bottom, top):
    """One Newton step on both residuals with autograd on: the implicit-function gradient.

    The 2 x 2 Jacobian of ``(g, fv - F)`` in ``(x, fv)`` is taken without autograd at the
    root; the step ``-J^-1 r`` with ``r`` computed with autograd on carries the exact
    derivative of the root to the activation, the lengths, the velocity and every parameter.
    """
    with torch.enable_grad():
        x_probe = root.clone().requires_grad_(True)
        fv_probe = fv.clone().requires_grad_(True)
        g, h, _ = _equilibrium(x_probe, fv_probe, *held)
        g_x, g_fv = torch.autograd.grad(g.sum(), (x_probe, fv_probe), retain_graph=True)
        h_x, h_fv = torch.autograd.grad(h.sum(), (x_probe, fv_probe))
    determinant = g_x * h_fv - g_fv * h_x
    determinant = torch.where(determinant.abs() > 1e-12, determinant, 1e-12)
    g, h, _ = _equilibrium(root, fv, *attached)
    x = root - (h_fv * g - g_fv * h) / determinant
    return torch.minimum(torch.maximum(x, bottom), top), fv


def _illinois(held, low, high, fv):
    """The root in ``[low, high]`` by Illinois steps (safeguarded regula falsi; g rises).

    ``fv`` is settled at each new point; returns the root and its ``fv``.
    """
    g_low = _settle(low, fv, held)[0]
    g_high = _settle(high, fv, held)[0]
    side = torch.zeros(low.shape, dtype=torch.int8, device=low.device)
    root = 0.5 * (low + high)
    for _ in range(EQUILIBRIUM_ITERATIONS):
        gap = g_high - g_low
        secant = (low * g_high - high * g_low) / torch.where(gap > 0, gap, 1.0)
        root = torch.where(gap > 0, secant, 0.5 * (low + high))
        root = torch.minimum(torch.maximum(root, low), high)
        g, fv = _settle(root, fv, held)
        above = g > 0
        g_low = torch.where(above & (side == 1), 0.5 * g_low, g_low)
        g_high = torch.where(~above & (side == -1), 0.5 * g_high, g_high)
        high, g_high = torch.where(above, root, high), torch.where(above, g, g_high)
        low, g_low = torch.where(above, low, root), torch.where(above, g_low, g)
        side = torch.where(above, 1, -1).to(torch.int8)
    return root, _settle(root, fv, held)[1]


_RIGID_GETTERS = {
    "max_isometric_force": "get_max_isometric_force",
    "optimal_fiber_length": "get_optimal_fiber_length",
    "tendon_slack_length": "get_tendon_slack_length",
    "pennation_angle": "get_pennation_angle_at_optimal",
    "max_contraction_velocity": "get_max_contraction_velocity",
    "minimum_activation": "get_minimum_activation",
    "passive_fiber_strain": "get_FmaxMuscleStrain",
    "active_force_shape": "get_KshapeActive",
    "passive_force_shape": "get_KshapePassive",
    "force_velocity_shape": "get_Af",
    "max_lengthening_force": "get_Flen",
    "fv_extrapolation_threshold": "get_fv_linear_extrap_threshold",
    "maximum_pennation_angle": "get_maximum_pennation_angle",
}


class RigidTendonThelen2003(MuscleLaw):
    """Rigid-tendon Thelen2003Muscle: :func:`rigid_tendon_thelen_force`.

    Its thirteen parameters are read from each ``Thelen2003Muscle`` of the file as it is
    (``opensim_conversion`` only clears ``ignore_tendon_compliance``, which OpenSim 4.6 does not
    implement for this class, so that OpenSim can initialise the model). Not affine in the
    activation: Thelen's force-velocity curve depends on it.

    Examples
    --------
    >>> from deepemg.physics import get_muscle_law
    >>> law = get_muscle_law("rigid_tendon_thelen2003")
    >>> law.opensim_getters["force_velocity_shape"], law.affine_in_activation
    ('get_Af', False)
    """

    name = "rigid_tendon_thelen2003"
    parameter_names: tuple[str, ...] = tuple(_RIGID_GETTERS)
    opensim_class = "Thelen2003Muscle"
    opensim_getters = MappingProxyType(dict(_RIGID_GETTERS))
    opensim_conversion = "use_thelen_law_muscles"
    curve_shape_parameters = MappingProxyType(
        {  # KshapeActive is the width squared: the DGF law's width scales 0.75-1.5, squared
            "active_force_shape": (0.5625, 2.25),
            "passive_fiber_strain": (0.5, 1.5),
            "max_contraction_velocity": (0.5, 1.5),
        }
    )
    affine_in_activation = False  # fV depends on the activation (0.25 + 0.75 a)
    tendon_force = staticmethod(rigid_tendon_thelen_force)
    """The function of the law's parameters that gives the tendon force."""


class CompliantTendonThelen2003(RigidTendonThelen2003):
    """Compliant-tendon Thelen2003Muscle at static equilibrium.

    :func:`compliant_tendon_thelen_force`: the rigid law's parameters plus ``tendon_strain``
    (``FmaxTendonStrain``).

    The rigid law's parameters plus ``tendon_strain`` (``FmaxTendonStrain``).

    Examples
    --------
    >>> from deepemg.physics import get_muscle_law
    >>> get_muscle_law("compliant_tendon_thelen2003").opensim_getters["tendon_strain"]
    'get_FmaxTendonStrain'
    """

    name = "compliant_tendon_thelen2003"
    parameter_names = (*RigidTendonThelen2003.parameter_names, "tendon_strain")
    opensim_getters = MappingProxyType({**_RIGID_GETTERS, "tendon_strain": "get_FmaxTendonStrain"})
    curve_shape_parameters = MappingProxyType(
        {**RigidTendonThelen2003.curve_shape_parameters, "tendon_strain": (0.6, 2.0)}
    )
    tendon_force = staticmethod(compliant_tendon_thelen_force)


register_muscle_law(RigidTendonThelen2003())
register_muscle_law(CompliantTendonThelen2003())
register_from_model_law("Thelen2003Muscle", True, "rigid_tendon_thelen2003")
register_from_model_law("Thelen2003Muscle", False, "compliant_tendon_thelen2003")
