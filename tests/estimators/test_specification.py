"""ModelSpecification: what model, coordinate, locked and muscle_law mean, in closed form."""

import dataclasses
from pathlib import Path

import pytest

from deepemg.channels import ELBOW_JOINT, joint_name, layout_for
from deepemg.physics import (
    MUSCLE_LAWS,
    MuscleLaw,
    RigidTendonDeGrooteFregly,
    get_muscle_law,
    register_muscle_law,
)
from deepemg.specification import BUILTIN_MODEL, ModelSpecification


class LateLaw(RigidTendonDeGrooteFregly):
    """The default law under a name of its own, registered only by the test that needs it."""

    name = "test_specification_late_law"


def test_builtin_elbow():
    spec = ModelSpecification()
    assert spec.model == BUILTIN_MODEL == "elbow"
    assert spec.is_builtin
    assert spec.path is None
    assert spec.joint == ELBOW_JOINT == "elbow"
    assert spec.layout.angle == "elbow_angle"
    assert spec.describe() == "the built-in elbow model"
    assert joint_name("elbow") == "elbow"


def test_osim_path_names_its_coordinate(tmp_path):
    spec = ModelSpecification.from_params(
        {"model": tmp_path / "knee.osim", "coordinate": "knee_angle_r", "rate": 100.0}
    )
    assert not spec.is_builtin
    assert spec.path == tmp_path / "knee.osim"
    assert isinstance(spec.path, Path)
    assert spec.joint == "knee_angle_r"
    assert spec.layout.torque == "knee_angle_r_torque"
    assert "knee.osim" in spec.describe()
    assert joint_name(str(tmp_path / "knee.osim"), "knee_angle_r") == "knee_angle_r"
    assert layout_for("arm26.osim").joint == "r_elbow_flex"  # the default coordinate


def test_ready_model_names_its_joint():
    class Ready:  # a MusculoskeletalModel's joint and coordinate, without building one
        joint = "knee"
        coordinate = "knee_angle_r"

    spec = ModelSpecification(Ready())
    assert spec.path is None
    assert not spec.is_builtin
    assert spec.joint == "knee"
    assert "'knee'" in spec.describe()


def test_from_params_defaults_and_frozen():
    spec = ModelSpecification.from_params({})
    assert spec == ModelSpecification("elbow", "r_elbow_flex", None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.model = "other.osim"


def test_default_law_is_none():
    assert ModelSpecification().law() is None


def test_law_registered_after_import_is_accepted():
    law = LateLaw()
    spec = ModelSpecification(muscle_law=law.name)
    with pytest.raises(ValueError, match="not a registered muscle law"):
        spec.law()  # not yet
    register_muscle_law(law)
    try:
        assert spec.law() is law  # the same specification, asked after registration
    finally:
        MUSCLE_LAWS.pop(law.name)


def test_law_instance_is_accepted():
    law = LateLaw()
    assert law.name not in MUSCLE_LAWS
    assert ModelSpecification(muscle_law=law).law() is law
    assert isinstance(
        ModelSpecification(muscle_law="rigid_tendon_degroote_fregly").law(), MuscleLaw
    )


def test_unknown_law_lists_the_registered_ones():
    with pytest.raises(ValueError, match="muscle_law='thelen'") as error:
        ModelSpecification(muscle_law="thelen").law()
    for name in MUSCLE_LAWS:
        assert repr(name) in str(error.value)
    assert "register_muscle_law" in str(error.value)
    with pytest.raises(TypeError, match="MuscleLaw"):
        ModelSpecification(muscle_law=3).law()


def test_resolve_builds_the_builtin_elbow():
    physics = ModelSpecification(muscle_law="rigid_tendon_degroote_fregly").resolve()
    assert physics.joint == "elbow"
    assert physics.muscle_law is get_muscle_law("rigid_tendon_degroote_fregly")


@pytest.mark.parametrize("estimator", ["NMMRegressor", "SynergyExtrapolationRegressor"])
def test_the_estimators_model_a_files_muscles_as_it_declares_them(estimator):
    """Both estimators default to muscle_law="from_model": Arm26's compliant Thelen2003
    muscles are modelled as such (no conversion, no MuscleConversionWarning), the built-in
    elbow's as its rigid-tendon DeGrooteFregly2016 muscles."""
    import warnings

    import baselines
    import deepemg

    from ..conftest import ARM26_LOCKED, ARM26_PATH

    cls = getattr(deepemg, estimator, None) or getattr(baselines, estimator)
    assert cls().muscle_law == "from_model"
    params = cls(model=str(ARM26_PATH), locked=ARM26_LOCKED).get_params()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a conversion would warn
        arm = ModelSpecification.from_params(params).resolve()
    assert arm.muscle_law.name == "compliant_tendon_thelen2003"
    elbow = ModelSpecification.from_params(cls().get_params()).resolve()
    assert elbow.muscle_law.name == "rigid_tendon_degroote_fregly"
