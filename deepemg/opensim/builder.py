"""Building the torch :class:`~deepemg.physics.MusculoskeletalModel` from an OpenSim model.

Everything the physics needs from a ``.osim`` file is read here: the muscles that cross the
coordinate, their path geometry, the per-muscle parameters of the muscle law (through the law's
``opensim_getters``), and the joint's rigid-body dynamics. ``deepemg.physics`` itself imports no
OpenSim code.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import opensim as osim

from ..physics.from_model import FROM_MODEL, from_model_law, from_model_laws
from ..physics.geometry import PathGeometry
from ..physics.model import MusculoskeletalModel
from ..physics.muscle import MuscleLaw, get_muscle_law
from . import dynamics, geometry
from . import model as osim_model

__all__ = [
    "MuscleConversionWarning",
    "build_model",
    "clear_thelen_ignore_tendon_compliance",
    "use_compliant_tendon_degroote_muscles",
    "use_thelen_law_muscles",
]

_DEFAULT_MUSCLE_LAW = "rigid_tendon_degroote_fregly"
"""The muscle law of ``muscle_law=None``: rigid-tendon DeGrooteFregly2016."""


def use_compliant_tendon_degroote_muscles(model: osim.Model) -> list[str]:
    """Make every muscle a ``DeGrooteFregly2016Muscle`` with a compliant (elastic) tendon.

    As :func:`deepemg.opensim.use_rigid_tendon_degroote_muscles` (OpenSim's
    ``DeGrooteFregly2016Muscle.replaceMuscles`` for other muscle types, which keeps the
    anatomy), but with ``ignore_tendon_compliance`` off; the tendon strain at maximum isometric
    force is the muscle's ``tendon_strain_at_one_norm_force`` (0.049 for replaced muscles).
    Returns the names of the muscles that were replaced or made compliant.
    """
    muscles = model.getMuscles()
    replaced = [
        muscles.get(i).getName()
        for i in range(muscles.getSize())
        if muscles.get(i).getConcreteClassName() != "DeGrooteFregly2016Muscle"
    ]
    if replaced:
        osim.DeGrooteFregly2016Muscle.replaceMuscles(model)
        model.finalizeConnections()
    changed = set(replaced)
    muscles = model.getMuscles()
    for i in range(muscles.getSize()):
        muscle = osim.DeGrooteFregly2016Muscle.safeDownCast(muscles.get(i))
        if muscle.get_ignore_tendon_compliance():
            muscle.set_ignore_tendon_compliance(False)
            changed.add(muscle.getName())
    return [
        muscles.get(i).getName()
        for i in range(muscles.getSize())
        if muscles.get(i).getName() in changed
    ]


def clear_thelen_ignore_tendon_compliance(model: osim.Model) -> list[str]:
    """Clear ``ignore_tendon_compliance`` on every ``Thelen2003Muscle`` so OpenSim can use it.

    OpenSim 4.6 does not implement a rigid tendon for ``Thelen2003Muscle`` (``initSystem``
    refuses the flag); the Thelen laws of :mod:`deepemg.physics.thelen` read the muscles'
    parameters and geometry, which the flag does not change, and compute the rigid tendon
    themselves. Other muscles are left as they are.

    Parameters
    ----------
    model : opensim.Model
        Changed in place.

    Returns
    -------
    list of str
        Names of the muscles whose flag was cleared, in the model's order.

    Examples
    --------
    >>> from deepemg.opensim import ELBOW_MODEL_PATH, load_model, use_thelen_muscles
    >>> from deepemg.opensim.builder import clear_thelen_ignore_tendon_compliance
    >>> model = load_model(ELBOW_MODEL_PATH)
    >>> _ = use_thelen_muscles(model)
    >>> model.getMuscles().get("BRA").set_ignore_tendon_compliance(True)
    >>> clear_thelen_ignore_tendon_compliance(model)
    ['BRA']
    """
    muscles = model.getMuscles()
    changed = []
    for i in range(muscles.getSize()):
        muscle = muscles.get(i)
        if muscle.getConcreteClassName() == "Thelen2003Muscle" and (
            muscle.get_ignore_tendon_compliance()
        ):
            muscle.set_ignore_tendon_compliance(False)
            changed.append(muscle.getName())
    return changed


def use_thelen_law_muscles(model: osim.Model) -> list[str]:
    """Make every muscle a ``Thelen2003Muscle`` OpenSim can use, as the Thelen laws read them.

    The conversion of :mod:`deepemg.physics.thelen`'s laws: muscles of another class are
    replaced by compliant-tendon Thelen muscles with the same anatomy
    (:func:`deepemg.opensim.use_thelen_muscles`), and Thelen muscles flagged
    ``ignore_tendon_compliance`` have the flag cleared (OpenSim 4.6 cannot initialise a rigid
    Thelen muscle; the laws compute the rigid tendon themselves,
    :func:`clear_thelen_ignore_tendon_compliance`). A file's own Thelen muscles keep every
    property.

    Parameters
    ----------
    model : opensim.Model
        Changed in place.

    Returns
    -------
    list of str
        Names of the muscles replaced or whose flag was cleared, in the model's order.

    Examples
    --------
    >>> from deepemg.opensim import ELBOW_MODEL_PATH, load_model
    >>> model = load_model(ELBOW_MODEL_PATH)  # DeGrooteFregly2016 muscles
    >>> len(use_thelen_law_muscles(model)), model.getMuscles().get("BRA").getConcreteClassName()
    (7, 'Thelen2003Muscle')
    >>> use_thelen_law_muscles(model)  # already Thelen muscles OpenSim can use
    []
    """
    names = osim_model.muscle_names(model)
    others = [
        n for n in names if model.getMuscles().get(n).getConcreteClassName() != "Thelen2003Muscle"
    ]
    if others:
        osim_model.use_thelen_muscles(model, muscles=others)
    changed = set(others) | set(clear_thelen_ignore_tendon_compliance(model))
    return [n for n in osim_model.muscle_names(model) if n in changed]


@functools.lru_cache(maxsize=16)
def _declared_muscles(
    path: str, mtime: float, coordinate: str, locked: tuple
) -> tuple[tuple[str, str, bool], ...]:
    """``(name, concrete class, ignore_tendon_compliance)`` of the muscles that count.

    All the file's muscles when they all declare the same class and tendon (the model is not
    posed), else those crossing ``coordinate``.
    """
    model = osim_model.load_model(path)
    muscles = [model.getMuscles().get(i) for i in range(model.getMuscles().getSize())]
    declared = [
        (m.getName(), m.getConcreteClassName(), bool(m.get_ignore_tendon_compliance()))
        for m in muscles
    ]
    if len({d[1:] for d in declared}) > 1:
        clear_thelen_ignore_tendon_compliance(model)  # else OpenSim could not pose the model
        pose = osim_model.ModelPose(model, coordinate, dict(locked))
        crossing = set(geometry.muscles_crossing(pose, [d[0] for d in declared]))
        declared = [d for d in declared if d[0] in crossing] or declared
    return tuple(declared)


def _declared_law(declared: tuple[tuple[str, str, bool], ...], path: str, coordinate: str) -> str:
    """The name of the law ``declared`` muscles share (``muscle_law="from_model"``).

    Looked up with :func:`~deepemg.physics.from_model_law` at each call (laws registered since
    included); a clear error for muscles of several classes or tendons, or of a class no law
    reproduces.
    """
    groups: dict[tuple[str, bool], list[str]] = {}
    for name, opensim_class, rigid in declared:
        groups.setdefault((opensim_class, rigid), []).append(name)
    described = {f"{'rigid' if k[1] else 'compliant'}-tendon {k[0]}": v for k, v in groups.items()}
    if len(groups) > 1:
        raise ValueError(
            f"muscle_law='from_model' needs the muscles crossing '{coordinate}' in '{path}' to "
            f"share one muscle class and tendon, but they are {described}; pass a muscle_law "
            "(e.g. 'rigid_tendon_degroote_fregly') to convert them all to one."
        )
    (key,) = groups
    try:
        return from_model_law(*key).name
    except ValueError:
        raise ValueError(
            f"muscle_law='from_model': no muscle law reproduces the {described} muscles of "
            f"'{path}'; 'from_model' works for {from_model_laws()}. Pass one of those laws "
            "or 'rigid_tendon_degroote_fregly' (converts every muscle) as muscle_law."
        ) from None


class MuscleConversionWarning(UserWarning):
    """A model file's muscles are modelled as another muscle law than the file declares.

    :func:`build_model` with a ``muscle_law`` other than ``"from_model"`` converts the muscles
    that cross the coordinate to that law (the default: rigid-tendon DeGrooteFregly2016, e.g.
    from Arm26's compliant Thelen2003 muscles); the message names them and says how to keep
    them as declared. Filter it where the conversion is intended.
    """


def _warn_converted(data: dict, path: Path, coordinate: str, law, locked) -> None:
    """Say which muscles crossing ``coordinate`` ``law`` converted, and how to keep them."""
    converted = [m for m in data["converted_muscles"] if m in data["muscles"]]
    if not converted:
        return
    declared = _declared_muscles(str(path), os.path.getmtime(path), coordinate, locked)
    kinds = sorted(
        {f"{'rigid' if rigid else 'compliant'}-tendon {cls}" for name, cls, rigid in declared}
    )
    warnings.warn(
        f"{len(converted)} muscles of '{path.name}' that cross '{coordinate}' "
        f"({', '.join(converted)}) are declared {', '.join(kinds)} but modelled with the "
        f"muscle law {law.name!r}. Pass muscle_law='from_model' to model them as the file "
        "declares (equal to OpenSim; a compliant tendon makes the physics slower, "
        "docs/physics.md), or filter deepemg.opensim.MuscleConversionWarning where the "
        "conversion is intended.",
        MuscleConversionWarning,
        stacklevel=3,
    )


def _resolve_law(muscle_law, path: Path, coordinate: str, locked: tuple) -> MuscleLaw:
    """The law ``muscle_law`` names: None is the default, ``"from_model"`` the file's own."""
    if isinstance(muscle_law, str) and muscle_law == FROM_MODEL:
        declared = _declared_muscles(str(path), os.path.getmtime(path), coordinate, locked)
        muscle_law = _declared_law(declared, str(path), coordinate)
    return get_muscle_law(_DEFAULT_MUSCLE_LAW if muscle_law is None else muscle_law)


def _convert(model: osim.Model, conversion: str | None) -> list[str]:
    """Apply the law's conversion, by name: a function of deepemg.opensim's modules.

    Looked up in :mod:`deepemg.opensim.model` (``use_rigid_tendon_degroote_muscles``,
    ``use_thelen_muscles``), its dynamics and geometry modules, and this one
    (``use_compliant_tendon_degroote_muscles``), where :mod:`deepemg.opensim` takes its
    functions from.
    """
    if conversion is None:
        return []
    modules = (osim_model, dynamics, geometry)
    found = (getattr(module, conversion, None) for module in modules)
    function = next((f for f in found if f is not None), None) or globals().get(conversion)
    if not callable(function):
        raise ValueError(f"deepemg.opensim has no conversion function {conversion!r}.")
    return list(function(model))


def _read_parameters(
    model: osim.Model,
    muscles: list[str],
    opensim_class: str,
    getters: tuple[tuple[str, str], ...],
) -> dict[str, np.ndarray]:
    """Per-muscle parameters read with ``getters`` from each muscle as an ``opensim_class``.

    A getter is the name of a method of the muscle, or a dotted chain of them whose last one
    returns the value: ``"get_ActiveForceLengthCurve.get_minimum_value"`` reads a property of the
    muscle's curve. Booleans are read as 1.0 or 0.0.
    """
    cast = getattr(osim, opensim_class, None)
    if cast is None or not hasattr(cast, "safeDownCast"):
        raise ValueError(f"OpenSim has no muscle class {opensim_class!r}.")
    handles = []
    for name in muscles:
        generic = model.getMuscles().get(name)
        handle = cast.safeDownCast(generic)
        if handle is None:
            raise ValueError(
                f"The muscle '{name}' is a {generic.getConcreteClassName()}, not the "
                f"{opensim_class} the muscle law reads its parameters from."
            )
        handles.append(handle)
    values = {}
    for parameter, getter in getters:
        try:
            _call_getter(handles[0], getter)
        except AttributeError:
            raise ValueError(f"OpenSim's {opensim_class} has no getter {getter!r}.") from None
        values[parameter] = np.asarray([_call_getter(h, getter) for h in handles], dtype=np.float64)
    return values


def _call_getter(handle: Any, getter: str) -> Any:
    """``handle.a().b()`` for the getter ``"a.b"`` (a single name: ``handle.a()``)."""
    value = handle
    for name in getter.split("."):
        value = getattr(value, name)()
    return value


@functools.lru_cache(maxsize=16)
def _fit_opensim(
    path: str,
    mtime: float,
    coordinate: str,
    locked: tuple,
    load_body: str | None,
    conversion: str | None,
    opensim_class: str,
    getters: tuple[tuple[str, str], ...],
) -> dict[str, Any]:
    """Everything the torch model needs from an OpenSim model (cached per file, pose and law)."""
    model = osim_model.load_model(path)
    converted = _convert(model, conversion)
    pose = osim_model.ModelPose(model, coordinate, dict(locked))
    low, high = pose.range
    muscles = geometry.muscles_crossing(pose, osim_model.muscle_names(model))
    if not muscles:
        raise ValueError(f"No muscle of '{path}' crosses the coordinate '{coordinate}'.")
    fit = geometry.fit_path_geometry(pose, muscles)
    parameters = _read_parameters(model, muscles, opensim_class, getters)
    joint_dynamics = dynamics.fit_joint_dynamics(pose, load_body)
    return {
        "muscles": muscles,
        "parameters": parameters,
        "fit": fit,
        "dynamics": joint_dynamics,
        "coordinate_range": (low, high),
        "converted_muscles": converted,
    }


def _law_getters(law: MuscleLaw) -> tuple[tuple[str, str], ...]:
    """``(parameter, getter)`` of every parameter of ``law``: what is read from each muscle."""
    missing = [name for name in law.parameter_names if name not in law.opensim_getters]
    if missing:
        raise ValueError(
            f"The muscle law {law.name!r} names no OpenSim getter for {missing}, so it cannot be "
            "read from an OpenSim model; give the model its parameters directly."
        )
    return tuple((name, law.opensim_getters[name]) for name in law.parameter_names)


def _fit_report(data: dict[str, Any], path: Path, locked, load_body) -> dict[str, Any]:
    """The ``fit_report`` of a model built from ``path``: fit errors and how it was built."""
    fit, muscles = data["fit"], data["muscles"]
    return {
        "max_length_error": dict(zip(muscles, fit.max_length_error.tolist(), strict=False)),
        "max_moment_arm_error": dict(zip(muscles, fit.max_moment_arm_error.tolist(), strict=False)),
        "n_knots": int(fit.knots.size),
        "dynamics_max_residual": data["dynamics"]["max_residual"],
        "converted_muscles": list(data["converted_muscles"]),
        "source": str(path),
        "locked": {str(k): float(v) for k, v in (locked or {}).items()},
        "load_body": load_body,
    }


def build_model(
    path: str | os.PathLike,
    coordinate: str,
    locked: Mapping[str, float] | None = None,
    load_body: str | None = "load",
    joint: str | None = None,
    muscle_law: str | MuscleLaw | None = "rigid_tendon_degroote_fregly",
    *,
    model_class: type[MusculoskeletalModel] = MusculoskeletalModel,
) -> MusculoskeletalModel:
    """Build the torch model of ``coordinate`` from an OpenSim model file.

    The one way a :class:`~deepemg.physics.MusculoskeletalModel` is built from a ``.osim`` file
    (:func:`elbow_model` too). The muscle law's ``opensim_conversion`` is applied first (the
    default law: every muscle made a rigid-tendon ``DeGrooteFregly2016Muscle``, with a
    :class:`MuscleConversionWarning` when that changed any), then each muscle crossing
    ``coordinate`` is downcast to the law's ``opensim_class`` and its parameters read with the
    law's ``opensim_getters``. The fit is cached per file, modification time, pose and law.

    Parameters
    ----------
    path : str or path-like
        The ``.osim`` file.
    coordinate : str
        The coordinate to model (e.g. ``"r_elbow_flex"``).
    locked : mapping of str to float, optional
        Values (rad) at which other coordinates are held (others: their default values),
        e.g. ``{"r_shoulder_elev": 0.0}`` for Arm26.
    load_body : str or None, default="load"
        Body that carries the lifted load; when the model has no such body,
        :meth:`~deepemg.physics.MusculoskeletalModel.inverse_dynamics` accepts only a zero load.
    joint : str, optional
        Name of the joint, the prefix of the channels of ``X`` (``<joint>_angle`` ...);
        ``coordinate`` when not given.
    muscle_law : str, MuscleLaw or None, default="rigid_tendon_degroote_fregly"
        The muscle force law (a name in :data:`~deepemg.physics.MUSCLE_LAWS` or a law; None:
        the default law); its parameters are read from each muscle with the law's
        ``opensim_getters``. ``"from_model"``: the law the muscles' class and
        ``ignore_tendon_compliance`` declare (:data:`~deepemg.physics.FROM_MODEL_LAWS`).
    model_class : type, default=MusculoskeletalModel
        The class to instantiate (a subclass of ``MusculoskeletalModel``).

    Returns
    -------
    MusculoskeletalModel
        With the muscles that cross ``coordinate``.

    Raises
    ------
    FileNotFoundError, ValueError
        For a missing file or coordinate, a file that is not a model, an unknown law, a muscle
        not of the law's class; ``"from_model"`` muscles of mixed or unknown classes/tendons.

    Examples
    --------
    >>> from deepemg.opensim import ELBOW_MODEL_PATH, build_model
    >>> model = build_model(ELBOW_MODEL_PATH, "r_elbow_flex", joint="elbow")
    >>> model.joint, model.muscle_law.name, model.n_muscles
    ('elbow', 'rigid_tendon_degroote_fregly', 7)
    >>> build_model(ELBOW_MODEL_PATH, "r_elbow_flex", muscle_law="from_model").muscle_law.name
    'rigid_tendon_degroote_fregly'
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"No OpenSim model file at '{path}'.")
    locked_key = tuple(sorted((str(k), float(v)) for k, v in dict(locked or {}).items()))
    law = _resolve_law(muscle_law, path, coordinate, locked_key)
    data = _fit_opensim(
        str(path),
        os.path.getmtime(path),
        coordinate,
        locked_key,
        load_body,
        law.opensim_conversion,
        law.opensim_class,
        _law_getters(law),
    )
    if not (isinstance(muscle_law, str) and muscle_law == FROM_MODEL):
        _warn_converted(data, path, coordinate, law, locked_key)
    fit = data["fit"]
    return model_class(
        data["muscles"],
        data["parameters"],
        PathGeometry(fit.knots, fit.lengths, fit.moment_arms),
        data["dynamics"],
        coordinate,
        data["coordinate_range"],
        _fit_report(data, path, locked, load_body),
        muscle_law=law,
        joint=joint,
    )
