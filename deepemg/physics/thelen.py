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
static fibre-tendon equilibrium, OpenSim's ``Model.equilibrateMuscles``.

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

    The fibre's length along the tendon ``x`` solves
    ``(a fL(l~) fV(v~, a) + fPE(l~)) cos phi = fSE((l_mt - x) / l_ts)`` (fixed-width
    pennation, ``l = sqrt(x^2 + w^2)``, ``x`` at least OpenSim's minimum): 12 vectorised
    bisection steps in ``[x_min, l_mt - 0.9 l_ts]`` (or ``1e-6 l_opt`` when ``x_min`` is 0),
    then 8 Illinois steps without autograd, then one Newton step with autograd on, which carries
    the exact implicit-function gradient to the activation, the lengths and every parameter.
    With zero velocity this is OpenSim's ``Model.equilibrateMuscles``. With a velocity the
    fibre takes the rigid-tendon share ``v_mt cos phi`` (OpenSim's ``initMuscleState`` instead
    shares it by the fibre and tendon stiffnesses, a heuristic of its initialisation).

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
    return p["max_isometric_force"] * _equilibrium(x, a, l_mt, v_mt, p)[1]


def _equilibrium(x, a, l_mt, v_mt, p):
    """Fibre force along the tendon minus tendon force (over F0), and the tendon force."""
    tendon = thelen_tendon_force_length((l_mt - x) / p["tendon_slack_length"], p["tendon_strain"])
    return _fiber_force(x, a, v_mt, p) - tendon, tendon


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
        for _ in range(EQUILIBRIUM_BISECTIONS):
            middle = 0.5 * (low + high)
            above = _equilibrium(middle, *held)[0] > 0
            high, low = torch.where(above, middle, high), torch.where(above, low, middle)
        root = _illinois(held, low, high)
    with torch.enable_grad():
        probe = root.clone().requires_grad_(True)
        (slope,) = torch.autograd.grad(_equilibrium(probe, *held)[0].sum(), probe)
    # one Newton step with autograd on: the implicit-function gradient at the root
    x = root - _equilibrium(root, a, l_mt, v_mt, p)[0] / slope.clamp_min(1e-6)
    return torch.minimum(torch.maximum(x, bottom), top)


def _illinois(held, low, high):
    """The root in ``[low, high]`` by Illinois steps (safeguarded regula falsi; g rises)."""
    g_low = _equilibrium(low, *held)[0]
    g_high = _equilibrium(high, *held)[0]
    side = torch.zeros(low.shape, dtype=torch.int8, device=low.device)
    root = 0.5 * (low + high)
    for _ in range(EQUILIBRIUM_ITERATIONS):
        gap = g_high - g_low
        secant = (low * g_high - high * g_low) / torch.where(gap > 0, gap, 1.0)
        root = torch.where(gap > 0, secant, 0.5 * (low + high))
        root = torch.minimum(torch.maximum(root, low), high)
        g = _equilibrium(root, *held)[0]
        above = g > 0
        g_low = torch.where(above & (side == 1), 0.5 * g_low, g_low)
        g_high = torch.where(~above & (side == -1), 0.5 * g_high, g_high)
        high, g_high = torch.where(above, root, high), torch.where(above, g, g_high)
        low, g_low = torch.where(above, low, root), torch.where(above, g_low, g)
        side = torch.where(above, 1, -1).to(torch.int8)
    return root


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
    opensim_conversion = "clear_thelen_ignore_tendon_compliance"
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

    def force(
        self,
        activation: torch.Tensor,
        musculotendon_length: torch.Tensor,
        musculotendon_velocity: torch.Tensor,
        **parameters: torch.Tensor,
    ) -> torch.Tensor:
        """Tendon force (N): :attr:`tendon_force` with the law's parameters."""
        return self.tendon_force(
            activation, musculotendon_length, musculotendon_velocity, **parameters
        )


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
