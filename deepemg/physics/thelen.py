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
_TOE_SCALE = _TOE_FORCE / (_E3 - 1.0)  # the toe's force over expm1(3 e / eToe)
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
    return _force_velocity(v, _force_velocity_constants(activation, af, flen, threshold))[0]


def _force_velocity_constants(activation, af, flen, threshold):
    """The constants of :func:`thelen_force_velocity` (one per activation)."""
    c = 0.25 + 0.75 * activation
    k = (2.0 + 2.0 / af) / (flen - 1.0)
    return {
        "c": c,
        "inv_af": 1.0 / af,
        "k": k,
        "k_flen": k * flen,
        "v_top": c * (threshold * flen - 1.0) / (k * flen * (1.0 - threshold)),
        "slope": k * flen * flen * (1.0 - threshold) ** 2 / (c * (flen - 1.0)),
        "f_top": threshold * flen,
    }


def _force_velocity(v, q, with_slope: bool = False):
    """Thelen's fV of ``v`` with the constants ``q``, and its slope ``dfV/dv`` if asked.

    The three branches are added rather than selected (clamps, no ``torch.where``: several
    times faster on a CPU): each is 1, its value at the joint, outside its own range.
    """
    c, v_top = q["c"], q["v_top"]
    shortening = torch.maximum(v, -c).clamp_max(0.0)  # fV(0) = 1: concentric is 1 for v > 0
    below = c - shortening * q["inv_af"]
    concentric = (c + shortening) / below
    lengthening = torch.minimum(v.clamp_min(0.0), v_top)  # eccentric is 1 for v <= 0
    above = c + lengthening * q["k"]
    eccentric = (c + lengthening * q["k_flen"]) / above  # threshold Flen at v_top
    beyond = (v - v_top).clamp_min(0.0)
    fv = concentric + (eccentric - 1.0) + beyond * q["slope"]
    if not with_slope:
        return fv, None
    # each branch's slope where v is inside it (the signs are 0 or 1)
    d_concentric = c * (1.0 + q["inv_af"]) / (below * below)
    d_concentric = d_concentric * torch.sign(shortening + c) * torch.sign(-shortening)
    d_eccentric = c * (q["k_flen"] - q["k"]) / (above * above)
    d_eccentric = d_eccentric * torch.sign(lengthening) * torch.sign(v_top - lengthening)
    return fv, d_concentric + d_eccentric + torch.sign(beyond) * q["slope"]


def _fiber_bounds(l_opt, phi0, max_pennation):
    """The fixed fibre width ``l_opt sin(phi0)`` (m) and the least fibre length along the tendon."""
    width = l_opt * torch.sin(phi0)
    max_sin = torch.sin(max_pennation)
    has_max = max_pennation > _SIGNIFICANT_REAL
    min_length = torch.where(has_max, width / torch.where(has_max, max_sin, 1.0), 0.01 * l_opt)
    return width, min_length * torch.cos(max_pennation)


def _fiber(along, l_opt, phi0, max_pennation):
    """Fibre length, cos(pennation) and the lower bound of ``along`` (fixed-width model).

    ``along`` (the fibre's length along the tendon, m) is clamped to the minimum
    ``l_min cos(max_pennation)``, ``l_min = w / sin(max_pennation)`` (``0.01 l_opt`` without a
    maximum angle), as OpenSim clamps the fibre length.
    """
    width, min_along = _fiber_bounds(l_opt, phi0, max_pennation)
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


EQUILIBRIUM_ITERATIONS = 8
"""Newton steps on both equilibrium equations of :func:`compliant_tendon_thelen_force`.

Chosen by measurement (float64, against 30 steps): on the elbow's motions 6 steps give the
force to 1e-13 F0; on 10 corners of the subject scales' and curve shapes' bounds 8 give it to
5e-7 F0 (a stiff passive fibre with a compliant tendon is the slowest: 6 steps, 0.1 F0).
"""
_SLACK_MARGIN = 64.0
"""The search's fibre stays this many machine epsilons of tendon strain short of slack."""


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

    The force equation is solved as ``x = l_mt - l_ts (1 + e(F(x, fV)))``, ``e`` the inverse
    of the tendon curve (closed form) and ``F`` the fibre force along the tendon: nearly linear
    in ``x``, as the tendon is stiffer than the fibre. From the rigid-tendon fibre (and its
    ``fV``), :data:`EQUILIBRIUM_ITERATIONS` (8) Newton steps on both equations with their
    Jacobian in closed form (the fibre length's step taken where the passive force is linear),
    without autograd, in ``[x_min, l_mt - l_ts]`` (``1e-6 l_opt`` when ``x_min`` is 0); then
    one more Newton step with autograd on, which
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
    x = _equilibrium_projection(a, l_mt, v_mt, p)
    norm_tendon = (l_mt - x) / p["tendon_slack_length"]
    return p["max_isometric_force"] * thelen_tendon_force_length(norm_tendon, p["tendon_strain"])


def _constants(a, l_mt, v_mt, p):
    """What the equilibrium's terms need of the inputs, computed once (``a`` clamped)."""
    l_opt, l_ts, e0 = p["optimal_fiber_length"], p["tendon_slack_length"], p["tendon_strain"]
    width, min_along = _fiber_bounds(l_opt, p["pennation_angle"], p["maximum_pennation_angle"])
    toe = 99.0 * e0 * _E3 / (166.0 * _E3 - 67.0)
    k_pe = p["passive_force_shape"]
    q = _force_velocity_constants(
        a, p["force_velocity_shape"], p["max_lengthening_force"], p["fv_extrapolation_threshold"]
    )
    return q | {
        "a": a,
        "l_mt": l_mt,
        "l_ts": l_ts,
        "inv_l_opt": 1.0 / l_opt,
        "inv_l_ts": 1.0 / l_ts,
        "width2": width * width,
        "min_along": min_along,
        "inv_active_shape": 1.0 / p["active_force_shape"],
        "passive_rate": k_pe / p["passive_fiber_strain"],
        "passive_scale": 1.0 / torch.expm1(k_pe),
        "passive_rate_x": k_pe / (p["passive_fiber_strain"] * l_opt),
        "optimal_along": l_opt * torch.cos(p["pennation_angle"]),
        "toe": toe,
        "toe_rate": _TOE_SHAPE / toe,
        "tendon_stiffness": 0.67 / (e0 - toe),
        "velocity_scale": v_mt / (p["max_contraction_velocity"] * l_opt),
    }


def _residuals(x, fv, k):
    """The equilibrium's residuals at fibre projection ``x`` (m) and multiplier ``fv``.

    ``phi = x - l_mt + l_ts (1 + e(F))`` (m), with ``F`` the fibre force along the tendon over
    F0 and ``e`` the tendon strain at which the tendon's force is ``F``; and ``h = fv - fV(v~)``
    with the fibre's share ``k_T / (k_F + k_T)`` of the velocity, ``k_T`` the tendon's
    stiffness at that strain (at equilibrium, the tendon's own). Returns ``phi``, ``h`` and the
    intermediate terms (a dict) that :func:`_jacobian` reuses.
    """
    along = torch.maximum(x, k["min_along"])  # x is never below it (the bracket's bottom)
    length2 = along * along + k["width2"]
    length = torch.sqrt(length2)
    cos = along / length
    stretch = length * k["inv_l_opt"] - 1.0
    active = torch.exp(-(stretch * stretch) * k["inv_active_shape"])
    d_active = -2.0 * k["inv_active_shape"] * stretch * active  # dfL / dl~
    over = stretch.clamp_min(0.0)
    passive_exp = torch.expm1(k["passive_rate"] * over)
    passive = passive_exp * k["passive_scale"]
    d_passive = k["passive_rate"] * k["passive_scale"] * (passive_exp + 1.0) * torch.sign(over)
    a_fv = k["a"] * fv
    fiber = a_fv * active + passive
    d_cos = k["width2"] / (length2 * along)  # d cos(phi) / dl
    d_fiber = (a_fv * d_active + d_passive) * k["inv_l_opt"]  # dfiber / dl
    d_force = d_fiber * cos + fiber * d_cos  # dF / dl
    fiber_stiffness = d_force * cos  # dF / dx
    force = fiber * cos
    # the inverse tendon curve: the toe up to 0.33 F0 (where its strain is eToe), then linear;
    # its slope is the toe's, 0.33 F0 at most (equal to the line's there: OpenSim's eToe)
    toe_force = force.clamp_max(_TOE_FORCE)
    strain = torch.log1p(toe_force / _TOE_SCALE) / k["toe_rate"]
    strain = strain + (force - _TOE_FORCE).clamp_min(0.0) / k["tendon_stiffness"]
    tendon_stiffness = k["toe_rate"] * (toe_force + _TOE_SCALE) * k["inv_l_ts"]
    total = fiber_stiffness + tendon_stiffness
    inv_total = total / (total * total + _SIGNIFICANT_REAL**2)  # 1 / total, 0 at 0
    share = tendon_stiffness * inv_total
    velocity = share * cos * k["velocity_scale"]
    target, _ = _force_velocity(velocity, k)
    terms = {
        **{"along": along, "length": length, "length2": length2, "cos": cos},
        **{"stretch": stretch, "active": active, "d_active": d_active, "d_passive": d_passive},
        **{"a_fv": a_fv, "fiber": fiber, "d_cos": d_cos, "d_fiber": d_fiber},
        **{"d_force": d_force, "k_f": fiber_stiffness, "k_t": tendon_stiffness, "force": force},
        **{"inv_total": inv_total, "share": share, "velocity": velocity},
    }
    phi = x - k["l_mt"] + (1.0 + strain) * k["l_ts"]
    return phi, fv - target, terms


def _jacobian(t, k):
    """``(phi_x, phi_fv, h_x, h_fv)``: :func:`_residuals`' Jacobian from its terms ``t``."""
    a, cos, d_cos, k_f, k_t = k["a"], t["cos"], t["d_cos"], t["k_f"], t["k_t"]
    d_force_d_fv = a * t["active"] * cos
    phi_x = 1.0 + k_f / k_t
    phi_fv = d_force_d_fv / k_t
    # the share k_t / (k_f + k_t): k_t follows the force, k_f the fibre's length and fv
    toe = torch.sign((_TOE_FORCE - t["force"]).clamp_min(0.0))
    d_k_t = k["toe_rate"] * k["inv_l_ts"] * toe  # dk_t / dF
    d_k_f_d_fv = (a * t["d_active"] * k["inv_l_opt"] * cos + a * t["active"] * d_cos) * cos
    squared = t["inv_total"] * t["inv_total"]
    d_share_d_fv = (d_k_t * d_force_d_fv * k_f - k_t * d_k_f_d_fv) * squared
    stretch, active, d_active = t["stretch"], t["active"], t["d_active"]
    dd_active = -2.0 * k["inv_active_shape"] * (active + stretch * d_active)
    dd_passive = k["passive_rate"] * t["d_passive"]
    dd_fiber = (t["a_fv"] * dd_active + dd_passive) * k["inv_l_opt"] * k["inv_l_opt"]
    length, along = t["length"], t["along"]
    dd_cos = -d_cos * (2.0 / length + length / (along * along))
    dd_force = dd_fiber * cos + 2.0 * t["d_fiber"] * d_cos + t["fiber"] * dd_cos
    d_k_f_d_x = cos * (dd_force * cos + t["d_force"] * d_cos)
    d_cos_d_x = d_cos * cos
    d_share_d_x = (d_k_t * k_f * k_f - k_t * d_k_f_d_x) * squared
    _, slope = _force_velocity(t["velocity"], k, with_slope=True)
    slope = slope * k["velocity_scale"]
    h_x = -slope * (cos * d_share_d_x + t["share"] * d_cos_d_x)
    h_fv = 1.0 - slope * cos * d_share_d_fv
    return phi_x, phi_fv, h_x, h_fv


def _newton_step(x, fv, jacobian, phi, h):
    """``(x, fv) - J^-1 (phi, h)`` for the 2 x 2 Jacobian ``J`` given by its entries."""
    phi_x, phi_fv, h_x, h_fv = jacobian
    determinant = phi_x * h_fv - phi_fv * h_x
    determinant = torch.where(determinant.abs() > 1e-12, determinant, 1e-12)
    return x - (h_fv * phi - phi_fv * h) / determinant, fv - (phi_x * h - h_x * phi) / determinant


def _passive_step(x, step, k):
    """``x`` moved by the Newton ``step`` taken in ``y``, where the passive force is linear.

    Above the optimal fibre length the passive force grows as ``exp(r x)``
    (``r = KshapePassive / (FmaxMuscleStrain l_opt)``): Newton's steps in ``x`` would shrink
    to ``1 / r`` there. In ``y = x_opt + expm1(r (x - x_opt)) / r`` (``y = x`` below ``x_opt``)
    it is linear.
    """
    rate, x_opt = k["passive_rate_x"], k["optimal_along"]
    over = (x - x_opt).clamp_min(0.0)
    growth = torch.exp(rate * over)
    y = (growth - 1.0) / rate + (x - x_opt).clamp_max(0.0)  # y - x_opt
    y = y + step * growth
    return x_opt + torch.log1p(rate * y.clamp_min(0.0)) / rate + y.clamp_max(0.0)


def _equilibrium_projection(a, l_mt, v_mt, p):
    """The fibre length along the tendon at equilibrium, differentiable in every input."""
    attached = _constants(a, l_mt, v_mt, p)
    shape = torch.broadcast_shapes(*(v.shape for v in (a, l_mt, v_mt, *p.values())))
    # every constant at full size: broadcasting a per-muscle one costs about 3 full-size ops
    k = {name: value.detach().expand(shape).contiguous() for name, value in attached.items()}
    l_mt, l_opt, l_ts = k["l_mt"], p["optimal_fiber_length"].detach(), k["l_ts"]
    bottom = torch.broadcast_to(torch.maximum(k["min_along"], 1e-6 * l_opt), shape)
    top = torch.broadcast_to(torch.maximum(l_mt - 0.9 * l_ts, 2.0 * bottom), shape)
    with torch.no_grad():
        # the tendon is never slack at equilibrium (the fibre's force is at least 0): start at
        # the rigid-tendon fibre, just short of slack, with its fV
        margin = _SLACK_MARGIN * torch.finfo(l_mt.dtype).eps
        high = torch.minimum(torch.maximum(l_mt - l_ts * (1.0 + margin), bottom), top)
        x = high
        along = torch.maximum(x, k["min_along"])
        cos = along / torch.sqrt(along * along + k["width2"])
        fv = _force_velocity(cos * k["velocity_scale"], k)[0]
        for _ in range(EQUILIBRIUM_ITERATIONS):
            phi, h, terms = _residuals(x, fv, k)
            x_new, fv = _newton_step(x, fv, _jacobian(terms, k), phi, h)
            x = _passive_step(x, x_new - x, k)
            x = torch.minimum(torch.maximum(x, bottom), high)
            fv = torch.clamp_min(fv, 0.0)
        jacobian = _jacobian(_residuals(x, fv, k)[2], k)
    # one Newton step with autograd on: the implicit-function gradient at the root
    phi, h, _ = _residuals(x, fv, attached)
    x = _newton_step(x, fv, jacobian, phi, h)[0]
    return torch.minimum(torch.maximum(x, bottom), top)


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
