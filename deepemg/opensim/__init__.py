"""The bridge to OpenSim: load models, fit muscle geometry, run OpenSim's dynamics.

OpenSim (the ``opensim`` wheel from PyPI, version 4.6) is the oracle deepemg is tested
against and the source of every model parameter; :func:`build_model` builds the torch
:class:`~deepemg.physics.MusculoskeletalModel` from an ``.osim`` file (:func:`elbow_model`:
the built-in elbow), and :func:`export_subject` writes a fitted subject's personalised muscles
back into one. The physics imports nothing from here: the models are built here.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .builder import MuscleConversionWarning, build_model
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
    use_compliant_tendon_millard_muscles,
    use_millard_muscles,
    use_rigid_tendon_degroote_muscles,
    use_rigid_tendon_millard_muscles,
    use_thelen_muscles,
)

if TYPE_CHECKING:
    from ..physics import MuscleLaw, MusculoskeletalModel

ELBOW_MODEL_PATH = Path(str(resources.files("deepemg") / "data" / "elbow.osim"))
"""Path of the built-in 7-muscle elbow model (see ``deepemg/data/elbow.SOURCE.md``)."""


def elbow_model(muscle_law: str | MuscleLaw | None = None) -> MusculoskeletalModel:
    """The built-in 7-muscle elbow, :data:`ELBOW_MODEL_PATH` built by :func:`build_model`.

    Coordinate ``r_elbow_flex``, a ``load`` body at the hand; muscles BIClong, BICshort, BRA,
    BRD, TRIlong, TRIlat, TRImed (deep: BRA and TRImed). Its ``joint`` is ``"elbow"``: the
    channels of ``X`` are ``elbow_angle`` ... What an estimator's ``model="elbow"`` builds.

    Parameters
    ----------
    muscle_law : str, MuscleLaw or None, default=None
        The muscle force law (a name in :data:`~deepemg.physics.MUSCLE_LAWS` or a law); None:
        the default law (rigid-tendon DeGrooteFregly2016).

    Returns
    -------
    MusculoskeletalModel

    Examples
    --------
    >>> from deepemg.opensim import elbow_model
    >>> model = elbow_model()
    >>> model.joint, model.coordinate, model.muscle_law.name
    ('elbow', 'r_elbow_flex', 'rigid_tendon_degroote_fregly')
    >>> model.muscles
    ['BIClong', 'BICshort', 'BRA', 'BRD', 'TRIlong', 'TRIlat', 'TRImed']
    """
    return build_model(ELBOW_MODEL_PATH, "r_elbow_flex", joint="elbow", muscle_law=muscle_law)


__all__ = [
    "ELBOW_MODEL_PATH",
    "ModelPose",
    "MuscleConversionWarning",
    "PathFit",
    "add_load_body",
    "build_model",
    "compliant_static_optimization",
    "elbow_model",
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
    "use_compliant_tendon_millard_muscles",
    "use_millard_muscles",
    "use_rigid_tendon_degroote_muscles",
    "use_rigid_tendon_millard_muscles",
    "use_thelen_muscles",
]
