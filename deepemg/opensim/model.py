"""Loading OpenSim models and posing them for one coordinate."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import opensim as osim

__all__ = [
    "ModelPose",
    "load_model",
    "muscle_handles",
    "muscle_names",
    "set_load_mass",
    "use_compliant_tendon_millard_muscles",
    "use_millard_muscles",
    "use_rigid_tendon_degroote_muscles",
    "use_rigid_tendon_millard_muscles",
    "use_thelen_muscles",
]

osim.Logger.setLevelString("error")


def load_model(path: str | os.PathLike) -> osim.Model:
    """Read an OpenSim model file (.osim) with a clear error when it cannot be read.

    Parameters
    ----------
    path : str or path-like
        Path to an ``.osim`` file.

    Returns
    -------
    opensim.Model
        The model, not yet initialised.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not an OpenSim model.

    Examples
    --------
    >>> from deepemg.opensim import load_model, ELBOW_MODEL_PATH
    >>> load_model(ELBOW_MODEL_PATH).getName()
    'elbow1dof_DGF_0kg'
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No OpenSim model file at '{path}'. Give the path of an .osim file "
            "(for the built-in elbow use deepemg.opensim.elbow_model())."
        )
    try:
        model = osim.Model(str(path))
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else ""
        raise ValueError(
            f"'{path}' is not an OpenSim model that OpenSim 4.6 can read ({first_line}). "
            "Check that it is an .osim (XML) file saved by OpenSim 4.x."
        ) from None
    if model.getCoordinateSet().getSize() == 0:
        raise ValueError(f"'{path}' holds no coordinates: it is not a model deepemg can use.")
    return model


def muscle_names(model: osim.Model) -> list[str]:
    """Names of all muscles of ``model``, in the model's order."""
    muscles = model.getMuscles()
    return [muscles.get(i).getName() for i in range(muscles.getSize())]


def muscle_handles(model: osim.Model, names: list[str]) -> list:
    """The OpenSim muscles called ``names``, with a clear error naming any that is missing."""
    available = muscle_names(model)
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(
            f"The model '{model.getName()}' has no muscle named "
            f"{', '.join(repr(n) for n in missing)}; its muscles are {available}."
        )
    return [model.getMuscles().get(n) for n in names]


def set_load_mass(model: osim.Model, mass: float, body: str = "load") -> None:
    """Set the mass (kg) of the body that carries the lifted load (a point mass).

    Call ``model.initSystem()`` afterwards (the pose helpers do so).

    Parameters
    ----------
    model : opensim.Model
        The model; it must have a body named ``body``.
    mass : float
        Load mass in kg, >= 0.
    body : str, default="load"
        Name of the load body.
    """
    if not np.isfinite(mass) or mass < 0:
        raise ValueError(f"load mass must be a finite number of kg >= 0, got {mass!r}.")
    bodies = model.getBodySet()
    if not bodies.contains(body):
        names = [bodies.get(i).getName() for i in range(bodies.getSize())]
        raise ValueError(
            f"The model has no body named '{body}' to carry the load; its bodies are {names}. "
            "Add a body welded at the hand (deepemg.opensim.add_load_body) or pass load_mass=0."
        )
    bodies.get(body).setMass(float(mass))


def add_load_body(
    model: osim.Model,
    parent: str,
    location: tuple[float, float, float],
    name: str = "load",
) -> None:
    """Weld a massless point body (the lifted load) to ``parent`` at ``location`` (m).

    Examples
    --------
    >>> from deepemg.opensim import ELBOW_MODEL_PATH, add_load_body, load_model
    >>> model = load_model(ELBOW_MODEL_PATH)
    >>> add_load_body(model, "r_ulna_radius_hand", (0.0, -0.25, 0.0), name="dumbbell")
    >>> model.getBodySet().contains("dumbbell")
    True
    """
    bodies = model.getBodySet()
    if not bodies.contains(parent):
        names = [bodies.get(i).getName() for i in range(bodies.getSize())]
        raise ValueError(f"No body '{parent}' in the model; its bodies are {names}.")
    load = osim.Body(name, 0.0, osim.Vec3(0.0), osim.Inertia(0.0))
    joint = osim.WeldJoint(
        f"{name}_weld",
        bodies.get(parent),
        osim.Vec3(*location),
        osim.Vec3(0.0),
        load,
        osim.Vec3(0.0),
        osim.Vec3(0.0),
    )
    model.addBody(load)
    model.addJoint(joint)
    model.finalizeConnections()


def use_rigid_tendon_degroote_muscles(model: osim.Model) -> list[str]:
    """Make every muscle a rigid-tendon ``DeGrooteFregly2016Muscle``, as deepemg's torch model is.

    Other muscle types (Thelen2003, Millard2012) are replaced by OpenSim's own
    ``DeGrooteFregly2016Muscle.replaceMuscles``, which keeps the maximum isometric force,
    optimal fibre length, tendon slack length, pennation and maximum contraction velocity.
    Returns the names of the muscles that were replaced or made rigid.
    """
    changed = []
    muscles = model.getMuscles()
    if any(
        muscles.get(i).getConcreteClassName() != "DeGrooteFregly2016Muscle"
        for i in range(muscles.getSize())
    ):
        osim.DeGrooteFregly2016Muscle.replaceMuscles(model)
        model.finalizeConnections()
    muscles = model.getMuscles()
    for i in range(muscles.getSize()):
        muscle = osim.DeGrooteFregly2016Muscle.safeDownCast(muscles.get(i))
        if not muscle.get_ignore_tendon_compliance():
            muscle.set_ignore_tendon_compliance(True)
            changed.append(muscle.getName())
    return changed


THELEN_MINIMUM_ACTIVATION = 0.01
"""Lowest activation OpenSim's Thelen2003Muscle accepts (its ``minimum_activation`` floor)."""


def use_thelen_muscles(
    model: osim.Model,
    activation_time_constant: float | None = None,
    deactivation_time_constant: float | None = None,
    tendon_strain: float | None = None,
    muscles: list[str] | None = None,
) -> list[str]:
    """Make every muscle a compliant-tendon ``Thelen2003Muscle``, keeping its anatomy.

    Each muscle is replaced (the order of the muscles among themselves is kept) by a
    ``Thelen2003Muscle`` with the same maximum isometric force, optimal fibre length, tendon
    slack length, pennation angle at the optimal length, maximum contraction velocity and a
    copy of its GeometryPath. The tendon is elastic (Thelen's tendon strain at maximum
    isometric force, 3.3 % unless ``tendon_strain`` is given) and the force-length,
    force-velocity and passive curves are Thelen's, not DeGroote-Fregly's, so the muscle
    differs from deepemg's torch muscle law. Thelen's ``minimum_activation`` (0.01, the lowest
    OpenSim accepts) bounds activations from below. Forces at a given activation are taken at
    fibre equilibrium (``model.equilibrateMuscles(state)``; see
    :func:`deepemg.opensim.equilibrium_tendon_forces`).

    Parameters
    ----------
    model : opensim.Model
        The model; it is changed in place (call ``initSystem`` afterwards, as
        :class:`ModelPose` does).
    activation_time_constant, deactivation_time_constant : float, optional
        Thelen's activation dynamics time constants (s); OpenSim's defaults (15, 50 ms) when
        not given. They do not affect equilibrium forces.
    tendon_strain : float, optional
        Tendon strain at maximum isometric force (Thelen's ``FmaxTendonStrain``).
    muscles : list of str, optional
        The muscles to replace (default: every muscle of the model).

    Returns
    -------
    list of str
        Names of the muscles replaced, in the model's order.

    Examples
    --------
    >>> from deepemg.opensim import ELBOW_MODEL_PATH, load_model
    >>> model = load_model(ELBOW_MODEL_PATH)
    >>> len(use_thelen_muscles(model)), model.getMuscles().get(0).getConcreteClassName()
    (7, 'Thelen2003Muscle')
    """
    names = muscle_names(model) if muscles is None else list(muscles)

    def thelen(new, _old) -> None:
        new.set_minimum_activation(THELEN_MINIMUM_ACTIVATION)
        new.set_default_activation(max(THELEN_MINIMUM_ACTIVATION, 0.05))
        if activation_time_constant is not None:
            new.set_activation_time_constant(float(activation_time_constant))
        if deactivation_time_constant is not None:
            new.set_deactivation_time_constant(float(deactivation_time_constant))
        if tendon_strain is not None:
            new.set_FmaxTendonStrain(float(tendon_strain))

    for name in names:
        _replace_muscle(model, name, osim.Thelen2003Muscle, thelen)
    model.finalizeConnections()
    return names


def use_millard_muscles(
    model: osim.Model,
    rigid_tendon: bool | None = None,
    fiber_damping: float | None = None,
) -> list[str]:
    """Make every muscle a ``Millard2012EquilibriumMuscle``, keeping its anatomy.

    A muscle of another class is replaced (the order of the muscles among themselves is kept)
    by a ``Millard2012EquilibriumMuscle`` with the same maximum isometric force, optimal fibre
    length, tendon slack length, pennation angle at the optimal length, maximum contraction
    velocity, tendon (rigid or not: its ``ignore_tendon_compliance``) and a copy of its
    GeometryPath, and OpenSim's default Millard curves, fibre damping (0.1) and minimum
    activation (0.01). Millard muscles are kept as they are. The muscles' properties are then
    finalised, so that their curves read as OpenSim uses them (e.g. the active force-length
    minimum of a damped muscle is 0). The muscle laws
    :class:`~deepemg.physics.millard.RigidTendonMillard2012` and
    :class:`~deepemg.physics.millard.CompliantTendonMillard2012` reproduce these muscles.

    Parameters
    ----------
    model : opensim.Model
        The model; it is changed in place (call ``initSystem`` afterwards, as
        :class:`ModelPose` does).
    rigid_tendon : bool, optional
        Give every muscle a rigid (True) or an elastic (False) tendon; each keeps its own when
        not given.
    fiber_damping : float, optional
        Every muscle's ``fiber_damping`` (>= 0; below 0.001 OpenSim's muscle is undamped).

    Returns
    -------
    list of str
        Names of the muscles replaced or whose tendon or damping changed, in the model's order.

    Examples
    --------
    >>> from deepemg.opensim import ELBOW_MODEL_PATH, load_model
    >>> model = load_model(ELBOW_MODEL_PATH)
    >>> len(use_millard_muscles(model)), model.getMuscles().get(0).getConcreteClassName()
    (7, 'Millard2012EquilibriumMuscle')
    >>> use_millard_muscles(model, rigid_tendon=True)  # the elbow's tendons are rigid already
    []
    """
    if fiber_damping is not None and not (np.isfinite(fiber_damping) and fiber_damping >= 0):
        raise ValueError(f"fiber_damping must be a finite number >= 0, got {fiber_damping!r}.")
    names = muscle_names(model)
    changed = set()
    for name in names:
        if model.getMuscles().get(name).getConcreteClassName() != "Millard2012EquilibriumMuscle":
            _replace_muscle(model, name, osim.Millard2012EquilibriumMuscle, _keep_tendon)
            changed.add(name)
    for name in names:  # the force set holds the new muscles (the muscle set not yet)
        muscle = osim.Millard2012EquilibriumMuscle.safeDownCast(model.updForceSet().get(name))
        if rigid_tendon is not None and muscle.get_ignore_tendon_compliance() != rigid_tendon:
            muscle.set_ignore_tendon_compliance(bool(rigid_tendon))
            changed.add(name)
        if fiber_damping is not None and muscle.get_fiber_damping() != fiber_damping:
            muscle.set_fiber_damping(float(fiber_damping))
            changed.add(name)
    model.finalizeFromProperties()
    model.finalizeConnections()
    return [name for name in names if name in changed]


def _replace_muscle(model: osim.Model, name: str, muscle_class, configure=None) -> None:
    """Replace the muscle ``name`` by a ``muscle_class`` muscle with its anatomy.

    The same maximum isometric force, optimal fibre length, tendon slack length, pennation at
    the optimal length, maximum contraction velocity and a copy of its GeometryPath;
    ``configure(new, old)`` sets the rest before the swap (``old`` is deleted by it). The new
    muscle moves to the end of the force set, the muscles' order among themselves kept when
    every muscle is replaced in order.
    """
    old = model.getMuscles().get(name)
    new = muscle_class(
        name,
        old.getMaxIsometricForce(),
        old.getOptimalFiberLength(),
        old.getTendonSlackLength(),
        old.getPennationAngleAtOptimalFiberLength(),
    )
    new.setMaxContractionVelocity(old.getMaxContractionVelocity())
    new.set_path(old.get_path())  # a copy of the GeometryPath (points, wrapping)
    if configure is not None:
        configure(new, old)
    forces = model.updForceSet()
    forces.remove(forces.getIndex(name))  # deletes ``old``: not used below
    forces.append(new)  # the set adopts ``new``


def _keep_tendon(new, old) -> None:
    """The new muscle's tendon rigid or compliant as the old one's."""
    new.set_ignore_tendon_compliance(bool(old.get_ignore_tendon_compliance()))


def use_rigid_tendon_millard_muscles(model: osim.Model) -> list[str]:
    """:func:`use_millard_muscles` with rigid tendons (the rigid-tendon Millard law's conversion).

    Examples
    --------
    >>> from deepemg.opensim import ELBOW_MODEL_PATH, load_model
    >>> model = load_model(ELBOW_MODEL_PATH)
    >>> len(use_rigid_tendon_millard_muscles(model))
    7
    """
    return use_millard_muscles(model, rigid_tendon=True)


def use_compliant_tendon_millard_muscles(model: osim.Model) -> list[str]:
    """:func:`use_millard_muscles` with elastic tendons (the compliant Millard law's conversion).

    Examples
    --------
    >>> from deepemg.opensim import ELBOW_MODEL_PATH, load_model
    >>> model = load_model(ELBOW_MODEL_PATH)
    >>> muscle = model.getMuscles().get(len(use_compliant_tendon_millard_muscles(model)) - 1)
    >>> muscle.get_ignore_tendon_compliance()
    False
    """
    return use_millard_muscles(model, rigid_tendon=False)


class ModelPose:
    """An initialised OpenSim model posed along one coordinate, the others held fixed.

    Parameters
    ----------
    model : opensim.Model
        The model (it is initialised here).
    coordinate : str
        Name of the coordinate that moves (e.g. ``"r_elbow_flex"``).
    locked : mapping of str to float, optional
        Values (rad or m) at which to hold other coordinates; coordinates not named are held at
        their default values.
    """

    def __init__(
        self,
        model: osim.Model,
        coordinate: str,
        locked: Mapping[str, float] | None = None,
    ) -> None:
        coordinates = model.getCoordinateSet()
        names = [coordinates.get(i).getName() for i in range(coordinates.getSize())]
        if coordinate not in names:
            raise ValueError(
                f"The model '{model.getName()}' has no coordinate '{coordinate}'; "
                f"its coordinates are {names}."
            )
        locked = dict(locked or {})
        unknown = sorted(set(locked) - set(names))
        if unknown:
            raise ValueError(
                f"locked names coordinates that are not in the model: {unknown}; "
                f"its coordinates are {names}."
            )
        if coordinate in locked:
            raise ValueError(f"'{coordinate}' is the moving coordinate; it cannot also be locked.")
        self.model = model
        self.coordinate_name = coordinate
        self.others = {
            n: float(locked.get(n, coordinates.get(n).getDefaultValue()))
            for n in names
            if n != coordinate
        }
        self.reinitialize()

    def reinitialize(self) -> None:
        """Initialise the model again (after a change such as ``set_load_mass``) and re-pose it."""
        coordinates = self.model.getCoordinateSet()
        self.state = self.model.initSystem()
        self.coordinate = coordinates.get(self.coordinate_name)
        for name, value in self.others.items():
            coordinates.get(name).setValue(self.state, value, False)
            coordinates.get(name).setSpeedValue(self.state, 0.0)
        self.mobility_index = self._index_of_coordinate_speed()

    @property
    def range(self) -> tuple[float, float]:
        """The coordinate's range (rad or m) as stored in the model."""
        return self.coordinate.getRangeMin(), self.coordinate.getRangeMax()

    def _index_of_coordinate_speed(self) -> int:
        self.coordinate.setSpeedValue(self.state, 1.0)
        u = np.array([self.state.getU().get(i) for i in range(self.state.getNU())])
        self.coordinate.setSpeedValue(self.state, 0.0)
        return int(np.flatnonzero(u == 1.0)[0])

    def set(self, angle: float, velocity: float = 0.0) -> osim.State:
        """Pose the model at ``angle`` (rad) moving at ``velocity`` (rad/s); returns the state."""
        self.coordinate.setValue(self.state, float(angle), False)
        self.coordinate.setSpeedValue(self.state, float(velocity))
        return self.state
