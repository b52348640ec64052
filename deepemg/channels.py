"""The channel contract: the names of ``X``'s channels, derived from the model's joint.

Every part of deepemg that reads or writes ``X`` (both estimators, the readers, the command,
the benchmark, the exporter) finds its columns through a :class:`ChannelLayout`, so a knee or an
ankle needs no edit anywhere else. A layout is named by the model's *joint*: the built-in elbow
is ``"elbow"`` (``elbow_angle`` ...), any other model is named by its coordinate
(``r_elbow_flex`` -> ``r_elbow_flex_angle`` ...), or by the ``joint`` given to
:func:`deepemg.opensim.build_model`.

=========================  ==========  ============================================
channel                    unit        meaning
=========================  ==========  ============================================
``<joint>_angle``          rad         the joint coordinate
``<joint>_velocity``       rad/s       its time derivative
``<joint>_acceleration``   rad/s²      its second derivative
``load_mass``              kg          mass of the lifted load
``<joint>_torque``         N·m         inverse-dynamics torque (optional: computed
                                       from the kinematics and the load when absent)
``emg_<muscle>``           0..1        surface EMG envelope of a model muscle
=========================  ==========  ============================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BUILTIN_MODEL",
    "ELBOW_CHANNELS",
    "ELBOW_DEEP_MUSCLES",
    "ELBOW_JOINT",
    "ELBOW_MUSCLES",
    "ELBOW_SURFACE_MUSCLES",
    "EMG_PREFIX",
    "LOAD_CHANNEL",
    "ChannelLayout",
    "emg_channel",
    "joint_name",
    "layout_for",
]

LOAD_CHANNEL = "load_mass"
"""Mass of the lifted load (kg), the same name for every joint."""
EMG_PREFIX = "emg_"
"""Prefix of surface EMG channels: ``emg_<muscle>``."""
ELBOW_JOINT = "elbow"
"""The joint name of the built-in elbow model."""
BUILTIN_MODEL = "elbow"
"""The ``model`` parameter that names the built-in elbow (:mod:`deepemg.specification`)."""
ELBOW_SURFACE_MUSCLES = ("BIClong", "BICshort", "BRD", "TRIlong", "TRIlat")
"""Muscles of the built-in elbow that a surface electrode records."""
ELBOW_MUSCLES = ("BIClong", "BICshort", "BRA", "BRD", "TRIlong", "TRIlat", "TRImed")
"""Muscles of the built-in elbow model, the column order of ``y``."""
ELBOW_DEEP_MUSCLES = ("BRA", "TRImed")
"""Muscles of the elbow that no surface electrode records."""


def emg_channel(muscle: str) -> str:
    """The channel name of a muscle's surface EMG.

    Examples
    --------
    >>> emg_channel("BIClong")
    'emg_BIClong'
    """
    return f"{EMG_PREFIX}{muscle}"


@dataclass(frozen=True)
class ChannelLayout:
    """Names of ``X``'s channels for one joint.

    Parameters
    ----------
    joint : str
        Prefix of the kinematic and torque channels (``"elbow"`` for the built-in model).

    Examples
    --------
    >>> layout = ChannelLayout("knee")
    >>> layout.inputs
    ('knee_angle', 'knee_velocity', 'knee_acceleration', 'load_mass')
    >>> layout.default_channels(["VASlat"])
    ['knee_angle', 'knee_velocity', 'knee_acceleration', 'load_mass', 'knee_torque', 'emg_VASlat']
    >>> ChannelLayout.infer(["elbow_angle", "elbow_velocity", "elbow_acceleration"]).joint
    'elbow'
    """

    joint: str

    def __post_init__(self) -> None:
        if not isinstance(self.joint, str) or not self.joint:
            raise ValueError(f"joint must be a non-empty string, got {self.joint!r}.")

    @property
    def angle(self) -> str:
        """Joint angle (rad)."""
        return f"{self.joint}_angle"

    @property
    def velocity(self) -> str:
        """Joint angular velocity (rad/s)."""
        return f"{self.joint}_velocity"

    @property
    def acceleration(self) -> str:
        """Joint angular acceleration (rad/s²)."""
        return f"{self.joint}_acceleration"

    @property
    def load(self) -> str:
        """Load mass (kg)."""
        return LOAD_CHANNEL

    @property
    def torque(self) -> str:
        """Inverse-dynamics torque (N·m)."""
        return f"{self.joint}_torque"

    @property
    def kinematics(self) -> tuple[str, str, str]:
        """Angle, velocity and acceleration."""
        return (self.angle, self.velocity, self.acceleration)

    @property
    def inputs(self) -> tuple[str, str, str, str]:
        """The channels every estimator needs: kinematics and load (the network's input)."""
        return (*self.kinematics, self.load)

    @property
    def base(self) -> tuple[str, str, str, str, str]:
        """Kinematics, load and torque: what the readers make from motion files."""
        return (*self.inputs, self.torque)

    def default_channels(self, surface_muscles: Sequence[str] = ()) -> list[str]:
        """The base channels, then ``emg_<muscle>`` for each surface muscle."""
        return [*self.base, *(emg_channel(m) for m in surface_muscles)]

    def emg_muscles(self, channels: Sequence[str]) -> list[str]:
        """Muscles with an EMG channel in ``channels``, in channel order."""
        return [c[len(EMG_PREFIX) :] for c in channels if c.startswith(EMG_PREFIX)]

    @classmethod
    def infer(cls, channels: Sequence[str]) -> ChannelLayout:
        """The layout whose angle, velocity and acceleration channels are all in ``channels``.

        Raises
        ------
        ValueError
            When no joint, or more than one, has all three kinematic channels.
        """
        names = list(channels)
        joints = [
            c[: -len("_angle")]
            for c in names
            if c.endswith("_angle") and set(cls(c[: -len("_angle")]).kinematics) <= set(names)
        ]
        if len(joints) != 1:
            raise ValueError(
                "cannot tell the joint from the channels "
                f"{names}: expected one set of '<joint>_angle', '<joint>_velocity', "
                f"'<joint>_acceleration', found {len(joints)} ({joints})."
            )
        return cls(joints[0])


def joint_name(model="elbow", coordinate: str = "r_elbow_flex") -> str:
    """The joint that names the channels of an estimator's ``model`` parameter.

    ``"elbow"`` for the built-in model (:data:`BUILTIN_MODEL`), the ``joint`` of a ready
    :class:`~deepemg.physics.MusculoskeletalModel`, and the coordinate for a model file; what
    :attr:`deepemg.specification.ModelSpecification.joint` says.

    Examples
    --------
    >>> joint_name("elbow"), joint_name("arm26.osim", "r_elbow_flex")
    ('elbow', 'r_elbow_flex')
    """
    if isinstance(model, str) and model == BUILTIN_MODEL:
        return ELBOW_JOINT
    joint = getattr(model, "joint", None)  # a ready MusculoskeletalModel
    if isinstance(joint, str) and joint:
        return joint
    return str(getattr(model, "coordinate", None) or coordinate)


def layout_for(model="elbow", coordinate: str = "r_elbow_flex") -> ChannelLayout:
    """The :class:`ChannelLayout` named by ``joint_name(model, coordinate)``."""
    return ChannelLayout(joint_name(model, coordinate))


ELBOW_CHANNELS = tuple(ChannelLayout(ELBOW_JOINT).default_channels(ELBOW_SURFACE_MUSCLES))
"""Channel names of ``X`` for the elbow: ``elbow_angle`` ... ``elbow_torque``, then the surface
EMG of :data:`ELBOW_SURFACE_MUSCLES`."""
