"""The bridge to OpenSim: load models, fit muscle geometry, run OpenSim's dynamics.

OpenSim (the ``opensim`` wheel from PyPI, version 4.6) is the oracle deepemg is tested
against and the source of every model parameter; :func:`build_model` builds the torch
:class:`~deepemg.physics.MusculoskeletalModel` from an ``.osim`` file, and
:func:`export_subject` writes a fitted subject's personalised muscles back into one.
"""

from importlib import resources
from pathlib import Path

from .builder import build_model
from .dynamics import (
    compliant_static_optimization,
    equilibrium_tendon_forces,
    fit_joint_dynamics,
    inverse_dynamics,
    muscle_tendon_forces,
    static_optimization,
)
from .export import export_subject, read_export_notes
from .geometry import PathFit, fit_path_geometry, muscles_crossing, sample_path_geometry
from .moco import moco_inverse
from .model import (
    ModelPose,
    add_load_body,
    load_model,
    muscle_handles,
    muscle_names,
    set_load_mass,
    use_rigid_tendon_degroote_muscles,
    use_thelen_muscles,
)

ELBOW_MODEL_PATH = Path(str(resources.files("deepemg") / "data" / "elbow.osim"))
"""Path of the built-in 7-muscle elbow model (see ``deepemg/data/elbow.SOURCE.md``)."""

__all__ = [
    "ELBOW_MODEL_PATH",
    "ModelPose",
    "PathFit",
    "add_load_body",
    "build_model",
    "compliant_static_optimization",
    "equilibrium_tendon_forces",
    "export_subject",
    "fit_joint_dynamics",
    "fit_path_geometry",
    "inverse_dynamics",
    "load_model",
    "moco_inverse",
    "muscle_handles",
    "muscle_names",
    "muscle_tendon_forces",
    "muscles_crossing",
    "read_export_notes",
    "sample_path_geometry",
    "set_load_mass",
    "static_optimization",
    "use_rigid_tendon_degroote_muscles",
    "use_thelen_muscles",
]
