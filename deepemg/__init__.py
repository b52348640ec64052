"""deepemg: EMG envelopes of deep muscles from kinematics and load.

A neural musculoskeletal model (a Transformer driving a differentiable, subject-personalised
Hill-type model) reconstructs the EMG of muscles no surface electrode reaches.
"""

from . import channels as _channels
from ._bounds import ParameterBoundWarning
from ._version import __version__
from .channels import ChannelLayout

ELBOW_SURFACE_MUSCLES = _channels.ELBOW_SURFACE_MUSCLES
"""Muscles of the built-in elbow that a surface electrode records."""

ELBOW_CHANNELS = _channels.ELBOW_CHANNELS
"""Channel names of ``X`` for the elbow (rad, rad/s, rad/s², kg, N·m, then EMG envelopes 0..1):
``elbow_angle``, ``elbow_velocity``, ``elbow_acceleration``, ``load_mass``, ``elbow_torque``,
``emg_BIClong``, ``emg_BICshort``, ``emg_BRD``, ``emg_TRIlong``, ``emg_TRIlat``. Other joints:
:mod:`deepemg.channels`."""

ELBOW_MUSCLES = _channels.ELBOW_MUSCLES
"""Muscles of the built-in elbow model, the column order of ``y``."""

ELBOW_DEEP_MUSCLES = _channels.ELBOW_DEEP_MUSCLES
"""Muscles of the elbow that no surface electrode records."""

__all__ = [
    "ELBOW_CHANNELS",
    "ELBOW_DEEP_MUSCLES",
    "ELBOW_MUSCLES",
    "ELBOW_SURFACE_MUSCLES",
    "ChannelLayout",
    "ModelAdequacyWarning",
    "NMMEnsemble",
    "NMMRegressor",
    "ParameterBoundWarning",
    "StreamingPredictor",
    "__version__",
]


def __getattr__(name):
    # NMMRegressor pulls in torch and skorch; import it on first use
    if name == "NMMRegressor":
        from .regressor import NMMRegressor

        return NMMRegressor
    if name == "NMMEnsemble":
        from .ensemble import NMMEnsemble

        return NMMEnsemble
    if name == "ModelAdequacyWarning":
        from .adequacy import ModelAdequacyWarning

        return ModelAdequacyWarning
    if name == "StreamingPredictor":
        from .streaming import StreamingPredictor

        return StreamingPredictor
    raise AttributeError(f"module 'deepemg' has no attribute {name!r}")
