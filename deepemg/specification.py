"""What an estimator's ``model``, ``coordinate``, ``locked`` and ``muscle_law`` mean, in one place.

Both estimators, the command and the channel contract ask the same questions of these
parameters: is the model the built-in elbow, which ``.osim`` file does it name, which joint
names ``X``'s channels, which muscle law, which :class:`~deepemg.physics.MusculoskeletalModel`
do they build. :class:`ModelSpecification` answers them, and :meth:`ModelSpecification.resolve`
is the one place these parameters become a model (through :func:`deepemg.opensim.elbow_model`
and :func:`deepemg.opensim.build_model`). Importing this module imports no torch: the physics
is imported when a model is built or a muscle law is looked up, OpenSim when a model is built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .channels import BUILTIN_MODEL, ChannelLayout, joint_name

if TYPE_CHECKING:
    from .physics import MuscleLaw, MusculoskeletalModel

__all__ = ["BUILTIN_MODEL", "DEFAULT_COORDINATE", "ModelSpecification"]

DEFAULT_COORDINATE = "r_elbow_flex"
"""The estimators' default ``coordinate`` (the built-in elbow's)."""


@dataclass(frozen=True)
class ModelSpecification:
    """The musculoskeletal model an estimator's parameters name.

    Parameters
    ----------
    model : "elbow", path to an .osim file, or MusculoskeletalModel, default="elbow"
        The built-in elbow (:data:`BUILTIN_MODEL`), an OpenSim model file, or a ready model.
    coordinate : str, default="r_elbow_flex"
        The coordinate of a model file; it names the channels of a model file's joint.
    locked : mapping of str to float, optional
        Values (rad) at which a model file's other coordinates are held.
    muscle_law : str, MuscleLaw or None, default=None
        A name registered in :data:`deepemg.physics.MUSCLE_LAWS` when the law is asked for
        (laws may be registered after import), or a :class:`~deepemg.physics.MuscleLaw`;
        None: the default law (rigid-tendon DeGrooteFregly2016); ``"from_model"``: the law the
        model file's muscles declare (:func:`deepemg.opensim.build_model`).

    Examples
    --------
    >>> spec = ModelSpecification()
    >>> spec.is_builtin, spec.path, spec.joint
    (True, None, 'elbow')
    >>> arm = ModelSpecification.from_params({"model": "arm26.osim", "coordinate": "r_elbow_flex"})
    >>> arm.is_builtin, arm.path.name, arm.joint, arm.layout.torque
    (False, 'arm26.osim', 'r_elbow_flex', 'r_elbow_flex_torque')
    >>> arm.describe()
    "the OpenSim model arm26.osim (coordinate 'r_elbow_flex')"
    """

    model: Any = BUILTIN_MODEL
    coordinate: str = DEFAULT_COORDINATE
    locked: Mapping[str, float] | None = None
    muscle_law: Any = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ModelSpecification:
        """The specification of an estimator's parameters (``get_params(deep=False)``).

        Parameters
        ----------
        params : mapping
            ``model``, ``coordinate``, ``locked`` and ``muscle_law``, each optional (its
            default when absent); other keys are ignored.

        Returns
        -------
        ModelSpecification
        """
        return cls(
            model=params.get("model", BUILTIN_MODEL),
            coordinate=params.get("coordinate", DEFAULT_COORDINATE),
            locked=params.get("locked"),
            muscle_law=params.get("muscle_law"),
        )

    @property
    def is_builtin(self) -> bool:
        """Whether ``model`` names the built-in elbow (the string ``"elbow"``)."""
        return isinstance(self.model, str) and self.model == BUILTIN_MODEL

    @property
    def path(self) -> Path | None:
        """The ``.osim`` file ``model`` names; None for the built-in elbow or a ready model."""
        if self.is_builtin or not isinstance(self.model, str | os.PathLike):
            return None
        return Path(self.model)

    @property
    def joint(self) -> str:
        """The joint that names ``X``'s channels (``<joint>_angle`` ...).

        ``"elbow"`` for the built-in model, the ``joint`` of a ready model, and the
        coordinate for a model file.
        """
        return joint_name(self.model, self.coordinate)

    @property
    def layout(self) -> ChannelLayout:
        """The :class:`~deepemg.channels.ChannelLayout` of :attr:`joint`."""
        return ChannelLayout(self.joint)

    def law(self) -> MuscleLaw | None:
        """The muscle law ``muscle_law`` names now, or None for the default law or "from_model".

        Returns
        -------
        MuscleLaw or None

        Raises
        ------
        ValueError
            For a name not registered in :data:`deepemg.physics.MUSCLE_LAWS` (the message
            lists the registered ones).
        TypeError
            For anything but a name, a MuscleLaw or None.
        """
        from .physics import FROM_MODEL, MUSCLE_LAWS, MuscleLaw, get_muscle_law

        law = self.muscle_law
        if law is None or law == FROM_MODEL:  # from_model: the file decides when built
            return None
        if isinstance(law, str) and law not in MUSCLE_LAWS:
            raise ValueError(
                f"muscle_law={law!r} is not a registered muscle law; the registered ones are "
                f"{sorted(MUSCLE_LAWS)} (add one with deepemg.physics.register_muscle_law), "
                f"or {FROM_MODEL!r} for the law the model file's muscles declare."
            )
        if not isinstance(law, str | MuscleLaw):
            raise TypeError(
                f"muscle_law must be the name of a registered muscle law or a MuscleLaw, "
                f"got {type(law).__name__}."
            )
        return get_muscle_law(law)

    def resolve(self) -> MusculoskeletalModel:
        """The :class:`~deepemg.physics.MusculoskeletalModel` these parameters name.

        The built-in elbow is :func:`deepemg.opensim.elbow_model`, a path is built by
        :func:`deepemg.opensim.build_model` with ``coordinate`` and ``locked``, each with the
        muscle law :meth:`law` checks (None: the default law, rigid-tendon
        DeGrooteFregly2016). A ready model is returned as it is, and must already have the law
        ``muscle_law`` names when one is given (with ``"from_model"`` it is taken as it is).

        Returns
        -------
        MusculoskeletalModel

        Raises
        ------
        ValueError
            For a ready model whose muscle law is not the one ``muscle_law`` names, a muscle
            law that is not registered (:meth:`law`), and what
            :func:`~deepemg.opensim.build_model` refuses (a file that is not a model, an
            unknown coordinate ...).
        TypeError
            For a ``muscle_law`` that is neither a name, a MuscleLaw nor None.
        FileNotFoundError
            For a path with no file.

        Examples
        --------
        >>> physics = ModelSpecification(muscle_law="compliant_tendon_degroote_fregly").resolve()
        >>> physics.joint, physics.muscle_law.name
        ('elbow', 'compliant_tendon_degroote_fregly')
        >>> ModelSpecification(physics).resolve() is physics
        True
        >>> rigid = ModelSpecification(physics, muscle_law="rigid_tendon_degroote_fregly")
        >>> rigid.resolve()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: The model given has the muscle law 'compliant_tendon_degroote_fregly', not ...
        """
        from .physics import FROM_MODEL, MusculoskeletalModel

        law: Any = self.law()
        if isinstance(self.muscle_law, str) and self.muscle_law == FROM_MODEL:
            law = FROM_MODEL
        elif isinstance(self.model, MusculoskeletalModel):
            if law is not None and law.name != self.model.muscle_law.name:
                raise ValueError(
                    f"The model given has the muscle law {self.model.muscle_law.name!r}, not the "
                    f"muscle_law {law.name!r} asked for: set muscle_law="
                    f"{self.model.muscle_law.name!r}, or give the model by name or path."
                )
            return self.model
        if isinstance(self.model, MusculoskeletalModel):
            return self.model
        from .opensim import build_model, elbow_model

        if self.is_builtin:
            return elbow_model(muscle_law=law)
        return build_model(self.model, self.coordinate, self.locked, muscle_law=law)

    def describe(self) -> str:
        """The model in words, for messages and reports."""
        if self.is_builtin:
            return "the built-in elbow model"
        if self.path is not None:
            return f"the OpenSim model {self.path.name} (coordinate {self.coordinate!r})"
        return f"the model given (joint {self.joint!r})"
