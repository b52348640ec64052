"""``muscle_law="from_model"``: the muscle law an OpenSim model's own muscles declare.

The table :data:`FROM_MODEL_LAWS` maps ``(opensim_class, rigid_tendon)`` -- an OpenSim muscle's
concrete class name and its ``ignore_tendon_compliance`` -- to the name of the registered
:class:`~deepemg.physics.MuscleLaw` that reproduces it. :func:`deepemg.opensim.build_model`
with ``muscle_law="from_model"`` reads every muscle crossing the coordinate as it is (no
conversion) and looks its law up here with :func:`from_model_law`. A module that adds a law
for another OpenSim class registers it here too, next to :func:`register_muscle_law`::

    register_muscle_law(RigidTendonMillard2012())
    register_from_model_law("Millard2012EquilibriumMuscle", True, "rigid_tendon_millard2012")

Like the rest of :mod:`deepemg.physics`, this module imports no OpenSim code: the keys are
plain strings and booleans.
"""

from __future__ import annotations

from .muscle import MUSCLE_LAWS, MuscleLaw, get_muscle_law

__all__ = [
    "FROM_MODEL",
    "FROM_MODEL_LAWS",
    "from_model_law",
    "from_model_laws",
    "register_from_model_law",
]

FROM_MODEL = "from_model"
"""The ``muscle_law`` value that asks for the law the OpenSim model's muscles declare."""

FROM_MODEL_LAWS: dict[tuple[str, bool], str] = {}
"""``(OpenSim muscle class, rigid tendon)`` -> registered muscle law name.

Add entries with :func:`register_from_model_law`; read them with :func:`from_model_law`."""


def register_from_model_law(
    opensim_class: str, rigid_tendon: bool, law: str | MuscleLaw, replace: bool = False
) -> None:
    """Declare ``law`` the law of an OpenSim ``opensim_class`` muscle with that tendon.

    Parameters
    ----------
    opensim_class : str
        The muscle's concrete OpenSim class name (``getConcreteClassName()``), e.g.
        ``"Thelen2003Muscle"``; it must be the law's ``opensim_class``.
    rigid_tendon : bool
        The muscle's ``ignore_tendon_compliance``: True for a rigid tendon, False for an
        elastic one.
    law : str or MuscleLaw
        A law already registered with :func:`~deepemg.physics.register_muscle_law` (its name
        or itself); the table stores its name.
    replace : bool, default=False
        Replace another law already declared for the same key instead of raising.

    Raises
    ------
    ValueError
        For a law that is not registered, whose ``opensim_class`` is not ``opensim_class``,
        or a key that another law already holds (without ``replace``).

    Examples
    --------
    >>> register_from_model_law("DeGrooteFregly2016Muscle", True, "rigid_tendon_degroote_fregly")
    >>> FROM_MODEL_LAWS[("DeGrooteFregly2016Muscle", True)]
    'rigid_tendon_degroote_fregly'
    """
    resolved = get_muscle_law(law)
    if MUSCLE_LAWS.get(resolved.name) is not resolved:
        raise ValueError(
            f"The muscle law {resolved.name!r} is not registered; call "
            "deepemg.physics.register_muscle_law(law) before register_from_model_law."
        )
    if resolved.opensim_class != opensim_class:
        raise ValueError(
            f"The muscle law {resolved.name!r} reads {resolved.opensim_class} muscles, "
            f"not {opensim_class}."
        )
    key = (str(opensim_class), bool(rigid_tendon))
    held = FROM_MODEL_LAWS.get(key)
    if held is not None and held != resolved.name and not replace:
        raise ValueError(
            f"{_describe(key)} muscles already have the law {held!r}; pass replace=True."
        )
    FROM_MODEL_LAWS[key] = resolved.name


def from_model_law(opensim_class: str, rigid_tendon: bool) -> MuscleLaw:
    """The registered law of an OpenSim ``opensim_class`` muscle with that tendon.

    Parameters
    ----------
    opensim_class : str
        The muscle's concrete OpenSim class name.
    rigid_tendon : bool
        The muscle's ``ignore_tendon_compliance``.

    Returns
    -------
    MuscleLaw

    Raises
    ------
    ValueError
        When no law is declared for that class and tendon; the message lists those that are.

    Examples
    --------
    >>> from_model_law("DeGrooteFregly2016Muscle", False).name
    'compliant_tendon_degroote_fregly'
    >>> from_model_law("Schutte1993Muscle_Deprecated", True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: No muscle law reproduces a rigid-tendon Schutte1993Muscle_Deprecated; ...
    """
    key = (str(opensim_class), bool(rigid_tendon))
    if key not in FROM_MODEL_LAWS:
        raise ValueError(
            f"No muscle law reproduces a {_describe(key)}; muscle_law='from_model' knows "
            f"{from_model_laws()}."
        )
    return get_muscle_law(FROM_MODEL_LAWS[key])


def from_model_laws() -> dict[str, str]:
    """What ``muscle_law="from_model"`` knows: a description of each key -> law name.

    Returns
    -------
    dict of str to str
        E.g. ``{"rigid-tendon DeGrooteFregly2016Muscle": "rigid_tendon_degroote_fregly"}``,
        sorted.

    Examples
    --------
    >>> from_model_laws()["compliant-tendon DeGrooteFregly2016Muscle"]
    'compliant_tendon_degroote_fregly'
    """
    return {_describe(key): FROM_MODEL_LAWS[key] for key in sorted(FROM_MODEL_LAWS)}


def _describe(key: tuple[str, bool]) -> str:
    """``"rigid-tendon Thelen2003Muscle"`` for ``("Thelen2003Muscle", True)``."""
    return f"{'rigid' if key[1] else 'compliant'}-tendon {key[0]}"


register_from_model_law("DeGrooteFregly2016Muscle", True, "rigid_tendon_degroote_fregly")
register_from_model_law("DeGrooteFregly2016Muscle", False, "compliant_tendon_degroote_fregly")
