"""The differentiable neural musculoskeletal chain in torch.

EMG excitation -> activation dynamics -> Hill-type muscles (a :class:`MuscleLaw`, by default
rigid-tendon DeGroote-Fregly 2016, or its compliant-tendon version) on OpenSim-fitted geometry
-> joint torque, plus rigid-body
inverse dynamics of the joint and the bounded per-subject parameters. Every function works in
float32 and float64, batched over any leading shape, and is differentiable. The model is built
from OpenSim by :func:`deepemg.opensim.build_model`; this package imports no OpenSim code.
"""

from .activation import (
    ActivationFilter,
    excitation_to_activation,
    neural_activation,
    nonlinear_activation,
)
from .curves import active_force_length, force_velocity, passive_force_length, tendon_force_length
from .from_model import (
    FROM_MODEL,
    FROM_MODEL_LAWS,
    from_model_law,
    from_model_laws,
    register_from_model_law,
)
from .geometry import PathGeometry
from .millard import (
    CompliantTendonMillard2012,
    RigidTendonMillard2012,
    compliant_tendon_millard_force,
    rigid_tendon_millard_force,
)
from .model import MusculoskeletalModel
from .muscle import (
    MUSCLE_LAWS,
    CompliantTendonDeGrooteFregly,
    MuscleLaw,
    RigidTendonDeGrooteFregly,
    compliant_tendon_force,
    get_muscle_law,
    register_muscle_law,
    rigid_tendon_force,
)
from .parameters import (
    DEFAULT_PARAMETER_SPECS,
    ParameterSpec,
    SubjectParameters,
    curve_parameter_specs,
    subject_parameter_specs,
)
from .thelen import (
    CompliantTendonThelen2003,
    RigidTendonThelen2003,
    compliant_tendon_thelen_force,
    rigid_tendon_thelen_force,
)

__all__ = [
    "DEFAULT_PARAMETER_SPECS",
    "FROM_MODEL",
    "FROM_MODEL_LAWS",
    "MUSCLE_LAWS",
    "ActivationFilter",
    "CompliantTendonDeGrooteFregly",
    "CompliantTendonMillard2012",
    "CompliantTendonThelen2003",
    "MuscleLaw",
    "MusculoskeletalModel",
    "ParameterSpec",
    "PathGeometry",
    "RigidTendonDeGrooteFregly",
    "RigidTendonMillard2012",
    "RigidTendonThelen2003",
    "SubjectParameters",
    "active_force_length",
    "compliant_tendon_force",
    "compliant_tendon_millard_force",
    "compliant_tendon_thelen_force",
    "curve_parameter_specs",
    "excitation_to_activation",
    "force_velocity",
    "from_model_law",
    "from_model_laws",
    "get_muscle_law",
    "neural_activation",
    "nonlinear_activation",
    "passive_force_length",
    "register_from_model_law",
    "register_muscle_law",
    "rigid_tendon_force",
    "rigid_tendon_millard_force",
    "rigid_tendon_thelen_force",
    "subject_parameter_specs",
    "tendon_force_length",
]
