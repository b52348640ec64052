"""The differentiable musculoskeletal model of one joint: geometry, muscles, rigid-body dynamics."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from ._validation import (
    as_float_tensor,
    check_activation_filter,
    check_muscle_axis,
    check_same_shape,
    check_unit_interval,
)
from .activation import _excitation_to_activation
from .geometry import PathGeometry
from .muscle import MuscleLaw, get_muscle_law

__all__ = ["MusculoskeletalModel"]

_DYNAMICS = (
    "inertia",
    "gravity_cos",
    "gravity_sin",
    "load_inertia",
    "load_gravity_cos",
    "load_gravity_sin",
)


def _align(value: torch.Tensor, lead_ndim: int, per_muscle: bool, dtype) -> torch.Tensor:
    """Shape a subject parameter to broadcast against ``lead_ndim`` leading axes + muscles.

    A parameter given per sequence (shape ``(B,)`` or ``(B, n_muscles)``) meets inputs shaped
    ``(B, T)``: trailing singleton axes are added so it broadcasts over the time axis.
    """
    value = torch.as_tensor(value, dtype=dtype)
    if not per_muscle:
        value = value.unsqueeze(-1)
    missing = lead_ndim - (value.ndim - 1)
    if missing < 0:
        raise ValueError(
            f"a subject parameter of shape {tuple(value.shape)} has more axes than the inputs."
        )
    return value.reshape(value.shape[:-1] + (1,) * missing + value.shape[-1:])


class MusculoskeletalModel(nn.Module):
    """Differentiable Hill-type musculoskeletal model of one joint coordinate, in torch.

    Built from an OpenSim model by :func:`deepemg.opensim.build_model` (the built-in elbow:
    :func:`deepemg.opensim.elbow_model`): musculotendon geometry as piecewise cubics fitted to
    OpenSim, muscles whose tendon force comes from one :class:`MuscleLaw` (by default rigid-tendon
    DeGrooteFregly2016, :class:`RigidTendonDeGrooteFregly`) with the file's parameters, and the
    hinge's rigid-body dynamics identified from OpenSim inverse dynamics. Works in float32 and
    float64, batched over any leading shape, and is differentiable throughout. Per-subject
    parameters (:class:`SubjectParameters`) enter every method as the optional ``params`` dict.

    Attributes
    ----------
    muscles : list of str
        Muscle names, the order of every ``(..., n_muscles)`` axis.
    coordinate : str
        The OpenSim coordinate.
    coordinate_range : tuple of float
        Its range (rad).
    joint : str
        The joint's name, the prefix of the channels of ``X`` (``<joint>_angle`` ...):
        ``"elbow"`` for :func:`~deepemg.opensim.elbow_model`, else the ``joint`` given or the
        coordinate.
    muscle_law : MuscleLaw
        The muscle force law (:func:`get_muscle_law` of the ``muscle_law`` argument).
    max_isometric_force, optimal_fiber_length, tendon_slack_length, pennation_angle : Tensor
        Per-muscle parameters (N, m, m, rad), float64: one buffer per name in
        ``muscle_law.parameter_names`` (these four, and ``max_contraction_velocity``,
        ``fiber_damping``, ``passive_fiber_strain``, ``active_force_width_scale`` for the
        default law).
    fit_report : dict
        Fit errors against OpenSim: ``max_length_error`` and ``max_moment_arm_error`` per muscle
        (m) and ``dynamics_max_residual`` (N·m).

    Examples
    --------
    >>> import torch
    >>> from deepemg.opensim import elbow_model
    >>> model = elbow_model()
    >>> model.muscles
    ['BIClong', 'BICshort', 'BRA', 'BRD', 'TRIlong', 'TRIlat', 'TRImed']
    >>> arm = model.moment_arm(torch.tensor(torch.pi / 2))
    >>> [round(100 * float(r), 1) for r in arm]  # cm at 90 degrees
    [4.9, 4.9, 2.3, 7.9, -2.0, -2.0, -2.0]
    """

    def __init__(
        self,
        muscles: list[str],
        parameters: Mapping[str, np.ndarray],
        geometry: PathGeometry,
        dynamics: Mapping[str, float],
        coordinate: str,
        coordinate_range: tuple[float, float],
        fit_report: Mapping | None = None,
        muscle_law: str | MuscleLaw = "rigid_tendon_degroote_fregly",
        joint: str | None = None,
    ) -> None:
        super().__init__()
        self.muscles = list(muscles)
        self.coordinate = coordinate
        self.coordinate_range = (float(coordinate_range[0]), float(coordinate_range[1]))
        self.muscle_law = get_muscle_law(muscle_law)
        if joint is not None and (not isinstance(joint, str) or not joint):
            raise ValueError(f"joint must be a non-empty string or None, got {joint!r}.")
        self.joint = joint or coordinate
        missing = [n for n in self.muscle_law.parameter_names if n not in parameters]
        if missing:
            raise ValueError(
                f"The muscle law {self.muscle_law.name!r} needs the per-muscle parameters "
                f"{missing}, which parameters does not hold."
            )
        for name in self.muscle_law.parameter_names:
            values = torch.as_tensor(np.asarray(parameters[name], dtype=np.float64))
            if values.shape != (len(self.muscles),):
                raise ValueError(f"{name} must hold one value per muscle ({len(self.muscles)}).")
            self.register_buffer(name, values)
        self.geometry = geometry
        for name in _DYNAMICS:
            self.register_buffer(name, torch.tensor(float(dynamics[name]), dtype=torch.float64))
        self.has_load = bool(dynamics.get("has_load", True))
        self.fit_report = dict(fit_report or {})
        mid = torch.tensor(0.5 * sum(self.coordinate_range), dtype=torch.float64)
        self.register_buffer("reference_angle", mid)

    @property
    def n_muscles(self) -> int:
        """Number of muscles."""
        return len(self.muscles)

    # ------------------------------------------------------------------ checks
    def _angle(self, angle, name: str = "angle") -> torch.Tensor:
        angle = as_float_tensor(angle, name)
        low, high = self.coordinate_range
        a_min, a_max = float(angle.detach().min()), float(angle.detach().max())
        if a_min < low - 1e-9 or a_max > high + 1e-9:
            hint = " Angles are in radians: did you pass degrees?" if a_max > 2 * np.pi else ""
            raise ValueError(
                f"{name} must lie in the range of '{self.coordinate}', "
                f"[{low:.4g}, {high:.4g}] rad ([{np.degrees(low):.1f}, {np.degrees(high):.1f}] "
                f"deg); got values from {a_min:.4g} to {a_max:.4g} rad.{hint} Clip the angles "
                "to the range, or widen the coordinate's range in the model."
            )
        return angle

    # ------------------------------------------------------------------ geometry
    def _arm_scale(self, params, like: torch.Tensor):
        if params is None or "moment_arm_scale" not in params:
            return None
        return _align(params["moment_arm_scale"], like.ndim - 1, False, like.dtype)

    def musculotendon_length(self, angle, params: Mapping | None = None) -> torch.Tensor:
        """Musculotendon length (m) of each muscle, shape ``angle.shape + (n_muscles,)``.

        With a ``moment_arm_scale`` s in ``params``, lengths change about the mid-range angle
        q0: ``l(q0) + s (l(q) - l(q0))``, consistent with the scaled moment arm.
        """
        return self._length(self._angle(angle), params)

    def _length(self, angle: torch.Tensor, params) -> torch.Tensor:
        length = self.geometry.musculotendon_length(angle)
        scale = self._arm_scale(params, length)
        if scale is not None:
            reference = self.geometry.musculotendon_length(self.reference_angle.to(angle.dtype))
            length = reference + scale * (length - reference)
        return length

    def moment_arm(self, angle, params: Mapping | None = None) -> torch.Tensor:
        """Moment arm (m) of each muscle, ``-d musculotendon_length / d angle``.

        Positive for muscles that flex the coordinate; shape ``angle.shape + (n_muscles,)``.
        """
        return self._moment_arm(self._angle(angle), params)

    def _moment_arm(self, angle: torch.Tensor, params) -> torch.Tensor:
        arm = self.geometry.moment_arm(angle)
        scale = self._arm_scale(params, arm)
        return arm if scale is None else scale * arm

    # ------------------------------------------------------------------ muscles
    def _muscle_parameters(self, params, lead_ndim, dtype):
        names = self.muscle_law.parameter_names
        values = {name: getattr(self, name).to(dtype) for name in names}
        if params is not None:  # a per-muscle subject parameter "<name>_scale" scales <name>
            for name in names:
                key = f"{name}_scale"
                if key in params:
                    values[name] = values[name] * _align(params[key], lead_ndim, True, dtype)
        return values

    def _inputs(self, activation, angle, velocity):
        angle = self._angle(angle)
        velocity = as_float_tensor(velocity, "velocity", angle.dtype)
        activation = as_float_tensor(activation, "activation", angle.dtype)
        check_same_shape(angle, "angle", velocity=velocity)
        check_muscle_axis(activation, angle, self.muscles)
        check_unit_interval(activation, "activation")
        return activation, angle, velocity

    def muscle_force(self, activation, angle, velocity, params: Mapping | None = None):
        """Tendon force (N) of every muscle.

        Parameters
        ----------
        activation : array-like of shape (..., n_muscles)
            Activation in [0, 1].
        angle : array-like of shape (...)
            Joint angle (rad).
        velocity : array-like of shape (...)
            Joint angular velocity (rad/s).
        params : dict, optional
            Subject parameters from :class:`SubjectParameters`: scalars, or one value per
            sequence (shape ``(B,)``, per-muscle ones ``(B, n_muscles)``) for inputs shaped
            ``(B, T)``; they broadcast over the remaining (time) axes.

        Returns
        -------
        torch.Tensor of shape (..., n_muscles)
            Force along each tendon (N).
        """
        activation, angle, velocity = self._inputs(activation, angle, velocity)
        force, _ = self._force(activation, angle, velocity, params)
        return force

    def _force(self, activation, angle, velocity, params):
        """Tendon force and moment arm without checks (the hot path's)."""
        arm = self._moment_arm(angle, params)
        length = self._length(angle, params)
        values = self._muscle_parameters(params, angle.ndim, angle.dtype)
        musculotendon_velocity = -arm * velocity.unsqueeze(-1)
        force = self.muscle_law.force(activation, length, musculotendon_velocity, **values)
        return force, arm

    def joint_torque(self, activation, angle, velocity, params: Mapping | None = None):
        """Joint torque (N·m) of the muscles, ``sum_j r_j(q) F_j``.

        Same arguments as :meth:`muscle_force`; returns a tensor of shape ``angle.shape``.

        Examples
        --------
        >>> import torch
        >>> from deepemg.opensim import elbow_model
        >>> model = elbow_model()
        >>> a = torch.zeros(7); a[2] = 1.0  # brachialis fully active, isometric at 90 deg
        >>> round(float(model.joint_torque(a, torch.tensor(1.5708), torch.tensor(0.0))), 1)
        17.2
        """
        activation, angle, velocity = self._inputs(activation, angle, velocity)
        return self._joint_torque(activation, angle, velocity, params)

    def _joint_torque(self, activation, angle, velocity, params=None) -> torch.Tensor:
        """:meth:`joint_torque` of tensors already checked: nothing read back to the host.

        What the training module and the prediction-time correction call at every step; their
        inputs are checked once, where they enter (the estimator's ``X``, ``correct_emg``).
        """
        force, arm = self._force(activation, angle, velocity, params)
        return (force * arm).sum(-1)

    def activation(self, excitation, rate: float, params: Mapping | None = None):
        """Muscle activation from EMG excitation: neural activation dynamics and shape factor.

        Parameters
        ----------
        excitation : array-like of shape (..., n_timesteps, n_muscles)
            EMG envelopes in [0, 1].
        rate : float
            Sampling rate (Hz).
        params : dict, optional
            Subject parameters with ``g1``, ``g2``, ``delay`` (s) and ``shape_factor`` shaped
            ``(...)`` or ``(..., n_muscles)``; the nominal values of
            :data:`DEFAULT_PARAMETER_SPECS` when absent.

        Returns
        -------
        torch.Tensor
            Activation, same shape as ``excitation``.
        """
        excitation = as_float_tensor(excitation, "excitation")
        if excitation.ndim < 2 or excitation.shape[-1] != self.n_muscles:
            raise ValueError(
                f"excitation must be shaped (..., n_timesteps, {self.n_muscles}), "
                f"got {tuple(excitation.shape)}."
            )
        check_unit_interval(excitation, "excitation")
        return self._activation(excitation, rate, params, check_filter=True)

    def _activation(self, excitation, rate: float, params=None, check_filter: bool = False):
        """:meth:`activation` of a checked excitation tensor (the hot path's, no host read).

        ``check_filter``: also check the filter's coefficients and delay (the public method).
        """
        g1, g2, delay, shape = self._activation_values(
            params, excitation.ndim - 2, excitation.dtype
        )
        if check_filter:
            check_activation_filter(g1, g2, delay)
        return _excitation_to_activation(excitation, g1, g2, delay, shape.unsqueeze(-2), rate)

    def _activation_values(self, params, sequence_ndim: int, dtype) -> tuple:
        """``g1``, ``g2``, ``delay`` (s) and ``shape_factor`` of the activation dynamics.

        Each shaped to broadcast against ``sequence_ndim`` leading axes + muscles (the nominal
        values of :data:`DEFAULT_PARAMETER_SPECS` where ``params`` lacks one); unchecked.
        """
        from .parameters import DEFAULT_PARAMETER_SPECS

        nominal = {s.name: s.nominal for s in DEFAULT_PARAMETER_SPECS}
        params = dict(params or {})
        g1, g2, delay = (
            _align(params.get(name, nominal[name]), sequence_ndim, False, dtype)
            for name in ("g1", "g2", "delay")
        )
        shape = _align(
            params.get("shape_factor", nominal["shape_factor"]), sequence_ndim, True, dtype
        )
        return g1, g2, delay, shape

    # ------------------------------------------------------------------ skeleton
    def inverse_dynamics(self, angle, velocity, acceleration, load_mass=0.0):
        """Joint torque (N·m) needed to move the segment and the load: rigid-body inverse dynamics.

        ``tau = (I + m_L I_L) qdd + (A + m_L A_L) cos q + (B + m_L B_L) sin q``, with the
        coefficients identified from OpenSim inverse dynamics (exact for a hinge whose parent
        is still). Velocity enters only through shape checks (a hinge has no velocity term).

        Parameters
        ----------
        angle, velocity, acceleration : array-like of shape (...)
            rad, rad/s, rad/s².
        load_mass : float or array-like broadcastable to ``angle``
            Mass of the lifted load (kg), >= 0.

        Returns
        -------
        torch.Tensor of shape (...)

        Examples
        --------
        >>> import torch
        >>> from deepemg.opensim import elbow_model
        >>> model = elbow_model()
        >>> tau = model.inverse_dynamics(torch.tensor(1.5708), torch.tensor(0.0),
        ...                              torch.tensor(0.0), load_mass=2.0)
        >>> round(float(tau), 2)  # holding 2 kg with the forearm horizontal
        8.6
        """
        angle = self._angle(angle)
        velocity = as_float_tensor(velocity, "velocity", angle.dtype)
        acceleration = as_float_tensor(acceleration, "acceleration", angle.dtype)
        check_same_shape(angle, "angle", velocity=velocity, acceleration=acceleration)
        load_mass = as_float_tensor(load_mass, "load_mass", angle.dtype)
        if bool((load_mass < 0).any()):
            raise ValueError("load_mass must be >= 0 kg.")
        if not self.has_load and bool((load_mass != 0).any()):
            raise ValueError(
                "This model has no load body, so load_mass must be 0. Add one with "
                "deepemg.opensim.add_load_body and save the model, then rebuild."
            )
        d = {name: getattr(self, name).to(angle.dtype) for name in _DYNAMICS}
        inertia = d["inertia"] + load_mass * d["load_inertia"]
        gravity_cos = d["gravity_cos"] + load_mass * d["load_gravity_cos"]
        gravity_sin = d["gravity_sin"] + load_mass * d["load_gravity_sin"]
        return (
            inertia * acceleration + gravity_cos * torch.cos(angle) + gravity_sin * torch.sin(angle)
        )

    def extra_repr(self) -> str:
        """The coordinate, joint, muscle law and muscles, for ``repr``."""
        return (
            f"coordinate={self.coordinate!r}, joint={self.joint!r}, "
            f"muscle_law={self.muscle_law.name!r}, muscles={self.muscles}"
        )
