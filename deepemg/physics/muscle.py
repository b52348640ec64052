"""Muscle force laws: the rigid-tendon DeGroote-Fregly 2016 muscle and the law registry.

The physics takes tendon force from one :class:`MuscleLaw`; the default law is
:class:`RigidTendonDeGrooteFregly` (:func:`rigid_tendon_force`, rigid tendon, constant-width
pennation). :class:`CompliantTendonDeGrooteFregly` (:func:`compliant_tendon_force`) adds an
elastic tendon, solved for static fibre equilibrium. Other laws (Thelen 2003) go beside them in
:data:`MUSCLE_LAWS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch

from .curves import (
    active_force_length,
    force_velocity,
    passive_force_length,
    tendon_force_length,
)

__all__ = [
    "MUSCLE_LAWS",
    "CompliantTendonDeGrooteFregly",
    "MuscleLaw",
    "RigidTendonDeGrooteFregly",
    "compliant_tendon_force",
    "get_muscle_law",
    "register_muscle_law",
    "rigid_tendon_force",
]


def rigid_tendon_force(
    activation: torch.Tensor,
    musculotendon_length: torch.Tensor,
    musculotendon_velocity: torch.Tensor,
    max_isometric_force: torch.Tensor,
    optimal_fiber_length: torch.Tensor,
    tendon_slack_length: torch.Tensor,
    pennation_angle: torch.Tensor,
    max_contraction_velocity: torch.Tensor | float = 10.0,
    fiber_damping: torch.Tensor | float = 0.01,
    passive_fiber_strain: torch.Tensor | float = 0.6,
    active_force_width_scale: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """Tendon force (N) of a rigid-tendon DeGrooteFregly2016 muscle, as OpenSim computes it.

    ``l_m = sqrt((l_mt - l_ts)^2 + (l_opt sin phi0)^2)``, ``cos phi = (l_mt - l_ts) / l_m``,
    ``v~ = v_mt cos phi / (v_max l_opt)`` and
    ``F = F0 (a fL(l_m / l_opt) fV(v~) + fPE(l_m / l_opt) + damping v~) cos phi``.

    Parameters
    ----------
    activation : torch.Tensor
        Activation in [0, 1], shape ``(..., n_muscles)``.
    musculotendon_length : torch.Tensor
        Length (m), same shape.
    musculotendon_velocity : torch.Tensor
        Lengthening velocity (m/s), same shape.
    max_isometric_force, optimal_fiber_length, tendon_slack_length, pennation_angle : torch.Tensor
        Per-muscle parameters (N, m, m, rad at optimal fibre length), broadcastable.
    max_contraction_velocity : float or torch.Tensor, default=10
        Optimal fibre lengths per second.
    fiber_damping, passive_fiber_strain, active_force_width_scale : float or torch.Tensor
        OpenSim's ``fiber_damping``, ``passive_fiber_strain_at_one_norm_force`` and
        ``active_force_width_scale``.

    Returns
    -------
    torch.Tensor
        Force along the tendon (N), shape of ``activation``.

    Examples
    --------
    >>> import torch
    >>> f = rigid_tendon_force(torch.tensor(1.0), torch.tensor(0.3), torch.tensor(0.0),
    ...                        torch.tensor(100.0), torch.tensor(0.1), torch.tensor(0.2),
    ...                        torch.tensor(0.0), fiber_damping=0.0)
    >>> round(float(f), 2)  # optimal length, isometric: F0 plus 1.8% passive force
    101.82
    """
    return max_isometric_force * _fiber_force_along_tendon(
        musculotendon_length - tendon_slack_length,
        activation,
        musculotendon_velocity,
        optimal_fiber_length,
        pennation_angle,
        max_contraction_velocity,
        fiber_damping,
        passive_fiber_strain,
        active_force_width_scale,
    )


def _fiber_force_along_tendon(
    along, activation, musculotendon_velocity, l_opt, phi0, v_max, damping, e0, width_scale
):
    """Fibre force along the tendon over ``F0``.

    With the fibre's projection on the tendon ``along`` (m; constant-width pennation
    ``w = l_opt sin phi0``, ``cos phi = along / l_m``) and the rigid-tendon velocity split
    ``v~ = v_mt cos phi / (v_max l_opt)``:
    ``(a fL(l_m / l_opt) fV(v~) + fPE(l_m / l_opt) + damping v~) cos phi``.
    """
    width = l_opt * torch.sin(phi0)
    fiber_length = torch.sqrt(along * along + width * width)
    cos_pennation = along / fiber_length
    norm_length = fiber_length / l_opt
    norm_velocity = musculotendon_velocity * cos_pennation / (v_max * l_opt)
    return (
        activation * active_force_length(norm_length, width_scale) * force_velocity(norm_velocity)
        + passive_force_length(norm_length, e0)
        + damping * norm_velocity
    ) * cos_pennation


EQUILIBRIUM_BISECTIONS = 10
"""Bisection steps of :func:`compliant_tendon_force` before its Illinois steps."""
EQUILIBRIUM_ITERATIONS = 6
"""Illinois steps of :func:`compliant_tendon_force` after its bisection steps."""


def compliant_tendon_force(
    activation: torch.Tensor,
    musculotendon_length: torch.Tensor,
    musculotendon_velocity: torch.Tensor,
    max_isometric_force: torch.Tensor,
    optimal_fiber_length: torch.Tensor,
    tendon_slack_length: torch.Tensor,
    pennation_angle: torch.Tensor,
    max_contraction_velocity: torch.Tensor | float = 10.0,
    fiber_damping: torch.Tensor | float = 0.01,
    passive_fiber_strain: torch.Tensor | float = 0.6,
    active_force_width_scale: torch.Tensor | float = 1.0,
    tendon_strain: torch.Tensor | float = 0.049,
    n_iterations: int = EQUILIBRIUM_ITERATIONS,
) -> torch.Tensor:
    """Tendon force (N) of a compliant-tendon DeGrooteFregly2016 muscle at fibre equilibrium.

    The fibre length ``l_m`` (constant-width pennation, ``w = l_opt sin phi0``; fibre length
    along the tendon ``x = l_m cos phi = sqrt(l_m^2 - w^2)``, tendon length ``l_t = l_mt - x``)
    is the root of

    ``F0 (a fL(l_m/l_opt) fV(v~) + fPE(l_m/l_opt) + damping v~) cos phi = F0 fT(l_t/l_ts)``

    with OpenSim's DeGrooteFregly2016 curves and tendon curve
    ``fT = 0.2 exp(kT (l~_t - 1)) - 0.2``, ``kT = ln(6) / tendon_strain``. It is found by
    10 vectorised bisection steps on ``x`` in the bracket ``[1e-6 l_opt, l_mt - 0.9 l_ts]``,
    then ``n_iterations`` Illinois (safeguarded regula falsi) steps (no autograd), then one
    Newton step taken with autograd on: at the root this step carries the exact
    implicit-function gradient ``dx/dtheta = -(dg/dtheta) / (dg/dx)`` to the
    activation, the lengths and every (subject-scaled) parameter, and it polishes the root.

    Velocity is split as for a rigid tendon: the fibre velocity is ``v_mt cos phi`` (the tendon
    does not stretch over time), ``v~ = v_mt cos phi / (v_max l_opt)``; with zero velocity this
    is OpenSim's static equilibrium (``Model.equilibrateMuscles``) exactly. Where no root lies in
    the bracket (e.g. a slack tendon under a shortening, damped fibre) the force is that at the
    nearer end.

    Parameters
    ----------
    activation, musculotendon_length, musculotendon_velocity, max_isometric_force,
    optimal_fiber_length, tendon_slack_length, pennation_angle, max_contraction_velocity,
    fiber_damping, passive_fiber_strain, active_force_width_scale
        As :func:`rigid_tendon_force`.
    tendon_strain : float or torch.Tensor, default=0.049
        OpenSim's ``tendon_strain_at_one_norm_force`` (tendon strain at ``F0``).
    n_iterations : int, default=6
        Illinois steps before the final Newton step.

    Returns
    -------
    torch.Tensor
        Force along the tendon (N), shape of ``activation``.

    Examples
    --------
    >>> import torch
    >>> args = [torch.tensor(v, dtype=torch.float64) for v in (1.0, 0.3, 0.0, 100.0, 0.1, 0.2,
    ...                                                           0.0)]
    >>> rigid = rigid_tendon_force(*args, fiber_damping=0.0)
    >>> compliant = compliant_tendon_force(*args, fiber_damping=0.0)
    >>> round(float(rigid), 2), round(float(compliant), 2)  # the tendon stretches, fibre shortens
    (101.82, 95.08)
    """
    like = activation if torch.is_tensor(activation) else torch.as_tensor(activation)
    values = [
        torch.as_tensor(v, dtype=like.dtype, device=like.device)
        for v in (
            activation,
            musculotendon_length,
            musculotendon_velocity,
            optimal_fiber_length,
            tendon_slack_length,
            pennation_angle,
            max_contraction_velocity,
            fiber_damping,
            passive_fiber_strain,
            active_force_width_scale,
            tendon_strain,
        )
    ]
    x = _equilibrium_projection(values, int(n_iterations))
    max_isometric_force = torch.as_tensor(max_isometric_force, dtype=like.dtype, device=like.device)
    return max_isometric_force * _equilibrium(x, *values)[1]


def _equilibrium_projection(values, n_iterations: int):
    """The fibre length along the tendon at equilibrium, differentiable in ``values``.

    :func:`compliant_tendon_force`'s root: bisection and Illinois steps without autograd,
    then one Newton step with autograd on.
    """
    shape = torch.broadcast_shapes(*(v.shape for v in values))
    detached = [v.detach() for v in values]
    l_mt, l_opt, l_ts = detached[1], detached[3], detached[4]
    # bracket: at the top the tendon is below slack (fT < 0, under any fibre force)
    bottom = torch.broadcast_to(1e-6 * l_opt, shape)
    top = torch.broadcast_to(torch.maximum(l_mt - 0.9 * l_ts, 2e-6 * l_opt), shape)
    with torch.no_grad():
        low, high = _bisect(detached, bottom, top)
        root = _illinois(detached, low, high, int(n_iterations))
    with torch.enable_grad():
        probe = root.clone().requires_grad_(True)
        (slope,) = torch.autograd.grad(_equilibrium(probe, *detached)[0].sum(), probe)
    # one Newton step with autograd on: the implicit-function gradient at the root
    x = root - _equilibrium(root, *values)[0] / slope.clamp_min(1e-6)
    x = torch.minimum(torch.maximum(x, bottom), top)
    return x


def _equilibrium(x, a, l_mt, v_mt, l_opt, l_ts, phi0, v_max, damping, e0, w_scale, strain):
    """Normalised fibre force along the tendon minus tendon force, and the tendon force."""
    fiber = _fiber_force_along_tendon(x, a, v_mt, l_opt, phi0, v_max, damping, e0, w_scale)
    tendon = tendon_force_length((l_mt - x) / l_ts, strain)
    return fiber - tendon, tendon


def _bisect(values, low, high):
    """The bracket ``[low, high]`` of the root narrowed by bisection (the residual is steep)."""
    for _ in range(EQUILIBRIUM_BISECTIONS):
        middle = 0.5 * (low + high)
        above = _equilibrium(middle, *values)[0] > 0
        high = torch.where(above, middle, high)
        low = torch.where(above, low, middle)
    return low, high


def _illinois(values, low, high, n_iterations: int):
    """The root in ``[low, high]`` by Illinois steps (safeguarded regula falsi; g rises with x)."""
    g_low = _equilibrium(low, *values)[0]
    g_high = _equilibrium(high, *values)[0]
    side = torch.zeros(low.shape, dtype=torch.int8, device=low.device)
    root = 0.5 * (low + high)
    for _ in range(n_iterations):
        gap = g_high - g_low
        secant = (low * g_high - high * g_low) / torch.where(gap > 0, gap, 1.0)
        root = torch.where(gap > 0, secant, 0.5 * (low + high))
        root = torch.minimum(torch.maximum(root, low), high)
        g = _equilibrium(root, *values)[0]
        above = g > 0
        # the same end moved twice: halve the value kept at the other end
        g_low = torch.where(above & (side == 1), 0.5 * g_low, g_low)
        g_high = torch.where(~above & (side == -1), 0.5 * g_high, g_high)
        high, g_high = torch.where(above, root, high), torch.where(above, g, g_high)
        low, g_low = torch.where(above, low, root), torch.where(above, g_low, g)
        side = torch.where(above, 1, -1).to(torch.int8)
    return root


class MuscleLaw:
    """A muscle force law: the one place the physics takes tendon force from.

    :class:`~deepemg.physics.MusculoskeletalModel` stores one buffer per name in
    :attr:`parameter_names` (one value per muscle, physical units) and calls :meth:`force`; the
    OpenSim builder (:func:`deepemg.opensim.build_model`) reads those values with
    :attr:`opensim_getters` from each muscle downcast to :attr:`opensim_class`. A new law
    (compliant tendon, Thelen 2003) is a subclass registered with :func:`register_muscle_law`;
    the model class needs no edit. Every attribute is plain data (strings), so the physics never
    imports OpenSim.

    Attributes
    ----------
    name : str
        Registry name of the law.
    parameter_names : tuple of str
        Per-muscle parameters that :meth:`force` takes as keyword arguments, in physical units.
        Each is scaled by the subject parameter of its name + ``_scale`` when the subject has
        one (``max_isometric_force``, ``optimal_fiber_length``, ``tendon_slack_length``
        always; those of :attr:`curve_shape_parameters` with ``curve_parameters=True``).
    opensim_class : str
        OpenSim muscle class the getters belong to (e.g. ``"DeGrooteFregly2016Muscle"``).
    opensim_getters : dict of str to str
        Parameter name -> name of the OpenSim getter on that class
        (e.g. ``"get_max_isometric_force"``); one entry per name in :attr:`parameter_names`.
    opensim_conversion : str or None
        Name of a function of :mod:`deepemg.opensim` that makes every muscle of an OpenSim model
        an :attr:`opensim_class` as this law assumes, returning the names it changed (e.g.
        ``"use_rigid_tendon_degroote_muscles"``); ``None`` to read the muscles as they are.

    Examples
    --------
    >>> import torch
    >>> class Linear(MuscleLaw):
    ...     name = "linear"
    ...     parameter_names = ("max_isometric_force",)
    ...     opensim_getters = {"max_isometric_force": "get_max_isometric_force"}
    ...     def force(self, activation, musculotendon_length, musculotendon_velocity,
    ...               max_isometric_force):
    ...         return activation * max_isometric_force
    >>> law = Linear()
    >>> law
    Linear(name='linear')
    >>> float(law.force(torch.tensor(0.5), torch.tensor(0.3), torch.tensor(0.0),
    ...                 max_isometric_force=torch.tensor(100.0)))
    50.0
    """

    name: str = ""
    parameter_names: tuple[str, ...] = ()
    opensim_class: str = "Muscle"
    opensim_getters: Mapping[str, str] = MappingProxyType({})
    opensim_conversion: str | None = None
    curve_shape_parameters: Mapping[str, tuple[float, float]] = MappingProxyType({})
    """Parameters of the law's curves a subject may have its own scale of: name -> the scale's
    (lower, upper) bounds (nominal 1, the model file's value). ``NMMRegressor(curve_parameters=
    True)`` learns one bounded scale per subject and muscle of each
    (:func:`~deepemg.physics.curve_parameter_specs`); empty: none."""
    tendon_force: Callable[..., torch.Tensor] | None = None
    """A function ``f(activation, musculotendon_length, musculotendon_velocity, **parameters)``
    of the tendon force (N) that :meth:`force` calls (set it with ``staticmethod``), or None
    for a law that overrides :meth:`force` itself."""
    affine_in_activation: bool = False
    """True when the tendon force is ``k + m * activation`` at a given length and velocity.

    A solver may then use the force's values at two activations instead of the law (the
    prediction-time correction does); leave it False when unsure (always correct, slower)."""

    def force(
        self,
        activation: torch.Tensor,
        musculotendon_length: torch.Tensor,
        musculotendon_velocity: torch.Tensor,
        **parameters: torch.Tensor,
    ) -> torch.Tensor:
        """Tendon force (N) of every muscle.

        Parameters
        ----------
        activation, musculotendon_length, musculotendon_velocity : torch.Tensor
            As :func:`rigid_tendon_force` takes them: activation in [0, 1], length (m) and
            lengthening velocity (m/s), each shaped ``(..., n_muscles)``.
        **parameters : torch.Tensor
            One tensor per name in :attr:`parameter_names`, broadcastable to ``activation``.

        Returns
        -------
        torch.Tensor
            Force along each tendon (N), shape of ``activation``.
        """
        if self.tendon_force is None:
            raise NotImplementedError(
                f"{type(self).__name__} defines neither force() nor tendon_force."
            )
        return self.tendon_force(
            activation, musculotendon_length, musculotendon_velocity, **parameters
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class RigidTendonDeGrooteFregly(MuscleLaw):
    """Rigid-tendon DeGrooteFregly2016 muscle, the default law: :func:`rigid_tendon_force`.

    Its parameters are those of OpenSim's ``DeGrooteFregly2016Muscle``; the OpenSim builder makes
    every muscle of a model one, with a rigid tendon (``use_rigid_tendon_degroote_muscles``).

    Examples
    --------
    >>> import torch
    >>> law = get_muscle_law("rigid_tendon_degroote_fregly")
    >>> law.parameter_names[:3]
    ('max_isometric_force', 'optimal_fiber_length', 'tendon_slack_length')
    >>> law.opensim_getters["pennation_angle"]
    'get_pennation_angle_at_optimal'
    >>> f = law.force(torch.tensor(1.0), torch.tensor(0.3), torch.tensor(0.0),
    ...               max_isometric_force=torch.tensor(100.0),
    ...               optimal_fiber_length=torch.tensor(0.1),
    ...               tendon_slack_length=torch.tensor(0.2), pennation_angle=torch.tensor(0.0),
    ...               max_contraction_velocity=torch.tensor(10.0),
    ...               fiber_damping=torch.tensor(0.0), passive_fiber_strain=torch.tensor(0.6),
    ...               active_force_width_scale=torch.tensor(1.0))
    >>> round(float(f), 2)
    101.82
    """

    name = "rigid_tendon_degroote_fregly"
    parameter_names: tuple[str, ...] = (
        "max_isometric_force",
        "optimal_fiber_length",
        "tendon_slack_length",
        "pennation_angle",
        "max_contraction_velocity",
        "fiber_damping",
        "passive_fiber_strain",
        "active_force_width_scale",
    )
    opensim_class = "DeGrooteFregly2016Muscle"
    opensim_getters = MappingProxyType(
        {
            "max_isometric_force": "get_max_isometric_force",
            "optimal_fiber_length": "get_optimal_fiber_length",
            "tendon_slack_length": "get_tendon_slack_length",
            "pennation_angle": "get_pennation_angle_at_optimal",
            "max_contraction_velocity": "get_max_contraction_velocity",
            "fiber_damping": "get_fiber_damping",
            "passive_fiber_strain": "get_passive_fiber_strain_at_one_norm_force",
            "active_force_width_scale": "get_active_force_width_scale",
        }
    )
    opensim_conversion = "use_rigid_tendon_degroote_muscles"
    curve_shape_parameters = MappingProxyType(
        {  # scales of the active force-length width, passive strain at F0 and v_max
            "active_force_width_scale": (0.75, 1.5),
            "passive_fiber_strain": (0.5, 1.5),
            "max_contraction_velocity": (0.5, 1.5),
        }
    )
    affine_in_activation = True  # active force a F0 fl fv plus passive and damping forces
    tendon_force = staticmethod(rigid_tendon_force)


class CompliantTendonDeGrooteFregly(RigidTendonDeGrooteFregly):
    """Compliant-tendon DeGrooteFregly2016 muscle at static fibre equilibrium.

    :func:`compliant_tendon_force`: the default law's eight parameters and curves plus the
    DeGroote-Fregly tendon curve with OpenSim's ``tendon_strain_at_one_norm_force`` (0.049 by
    default). The OpenSim builder makes every muscle a ``DeGrooteFregly2016Muscle`` with a
    compliant tendon (``use_compliant_tendon_degroote_muscles``). The fibre velocity is the
    rigid-tendon split of the musculotendon velocity (see :func:`compliant_tendon_force`).

    Examples
    --------
    >>> law = get_muscle_law("compliant_tendon_degroote_fregly")
    >>> law.parameter_names[-1], law.opensim_getters["tendon_strain"]
    ('tendon_strain', 'get_tendon_strain_at_one_norm_force')
    """

    name = "compliant_tendon_degroote_fregly"
    parameter_names = (*RigidTendonDeGrooteFregly.parameter_names, "tendon_strain")
    opensim_getters = MappingProxyType(
        {
            **RigidTendonDeGrooteFregly.opensim_getters,
            "tendon_strain": "get_tendon_strain_at_one_norm_force",
        }
    )
    opensim_conversion = "use_compliant_tendon_degroote_muscles"
    curve_shape_parameters = MappingProxyType(
        {**RigidTendonDeGrooteFregly.curve_shape_parameters, "tendon_strain": (0.6, 2.0)}
    )
    affine_in_activation = False  # the fibre-tendon equilibrium depends on the activation
    tendon_force = staticmethod(compliant_tendon_force)


MUSCLE_LAWS: dict[str, MuscleLaw] = {}
"""The registered muscle laws by name (add one with :func:`register_muscle_law`)."""


def register_muscle_law(law: MuscleLaw, replace: bool = False) -> MuscleLaw:
    """Add ``law`` to :data:`MUSCLE_LAWS` under ``law.name`` so models can name it.

    Parameters
    ----------
    law : MuscleLaw
        An instance with a non-empty ``name``, and one OpenSim getter per parameter (or none).
    replace : bool, default=False
        Replace a law already registered under the same name instead of raising.

    Returns
    -------
    MuscleLaw
        ``law``.

    Raises
    ------
    TypeError, ValueError
        For something that is not a MuscleLaw, an empty or taken name, or getters that do not
        match the parameters.

    Examples
    --------
    >>> {"rigid_tendon_degroote_fregly", "compliant_tendon_degroote_fregly"} <= set(MUSCLE_LAWS)
    True
    """
    _check_law(law)
    if law.name in MUSCLE_LAWS and not replace and MUSCLE_LAWS[law.name] is not law:
        raise ValueError(
            f"A muscle law named {law.name!r} is already registered; pass replace=True."
        )
    MUSCLE_LAWS[law.name] = law
    return law


def get_muscle_law(law: str | MuscleLaw) -> MuscleLaw:
    """The muscle law a ``muscle_law`` argument names: a registered name, or a law itself.

    Parameters
    ----------
    law : str or MuscleLaw
        A key of :data:`MUSCLE_LAWS`, or a :class:`MuscleLaw` instance (returned as is).

    Returns
    -------
    MuscleLaw

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    TypeError
        For anything else.

    Examples
    --------
    >>> get_muscle_law("rigid_tendon_degroote_fregly")
    RigidTendonDeGrooteFregly(name='rigid_tendon_degroote_fregly')
    >>> get_muscle_law("thelen")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Unknown muscle law 'thelen'; known laws: [...'rigid_tendon_degroote_fregly'...].
    """
    if isinstance(law, MuscleLaw):
        _check_law(law)
        return law
    if isinstance(law, str):
        if law not in MUSCLE_LAWS:
            raise ValueError(f"Unknown muscle law {law!r}; known laws: {sorted(MUSCLE_LAWS)}.")
        return MUSCLE_LAWS[law]
    raise TypeError(
        f"muscle_law must be the name of a muscle law or a MuscleLaw, got {type(law).__name__}."
    )


def _check_law(law: MuscleLaw) -> None:
    if not isinstance(law, MuscleLaw):
        raise TypeError(f"A muscle law must be a MuscleLaw instance, got {type(law).__name__}.")
    if not isinstance(law.name, str) or not law.name:
        raise ValueError(f"{type(law).__name__} needs a non-empty name.")
    names = tuple(law.parameter_names)
    if len(set(names)) != len(names):
        raise ValueError(f"The parameter_names of muscle law {law.name!r} repeat: {names}.")
    getters = dict(law.opensim_getters)
    if getters and set(getters) != set(names):
        raise ValueError(
            f"The opensim_getters of muscle law {law.name!r} must name exactly its parameters "
            f"{names}; they name {sorted(getters)}."
        )


register_muscle_law(RigidTendonDeGrooteFregly())
register_muscle_law(CompliantTendonDeGrooteFregly())
