"""The channel contract: names follow the model's joint, for the elbow and for any other joint."""

from __future__ import annotations

import numpy as np
import pytest

from baselines import SynergyExtrapolationRegressor
from deepemg import ELBOW_CHANNELS, NMMRegressor
from deepemg.channels import ChannelLayout, joint_name, layout_for
from deepemg.opensim import build_model, elbow_model
from deepemg.validation import prepare_sequences

from ..conftest import FAST_NMM, joint_channels


@pytest.fixture(scope="module")
def data(two_subjects):
    return two_subjects


def test_elbow_layout_is_the_documented_default():
    layout = ChannelLayout("elbow")
    assert layout.default_channels(["BIClong", "BICshort", "BRD", "TRIlong", "TRIlat"]) == list(
        ELBOW_CHANNELS
    )
    assert layout.inputs == ("elbow_angle", "elbow_velocity", "elbow_acceleration", "load_mass")
    assert layout.torque == "elbow_torque"
    assert ChannelLayout.infer(ELBOW_CHANNELS) == layout


def test_joint_names_follow_the_model():
    assert joint_name("elbow") == "elbow"
    assert joint_name("my_knee.osim", "knee_angle_r") == "knee_angle_r"
    assert layout_for(elbow_model()).angle == "elbow_angle"
    with pytest.raises(ValueError, match="cannot tell the joint"):
        ChannelLayout.infer(["time", "load_mass"])
    with pytest.raises(ValueError, match="non-empty"):
        ChannelLayout("")


def test_a_joint_not_called_elbow_works_end_to_end(data, hinge_model, elbow):
    """The built-in elbow with its coordinate renamed ``hinge``: nothing else is edited."""
    channels = joint_channels(data.channels, "hinge")
    assert channels[:5] == [
        "hinge_angle",
        "hinge_velocity",
        "hinge_acceleration",
        "load_mass",
        "hinge_torque",
    ]
    hinge = build_model(hinge_model, "hinge")
    assert hinge.joint == "hinge"
    # inverse dynamics from the renamed channels is the elbow's (the same model)
    without_torque = [c for c in channels if c != "hinge_torque"]
    X = np.delete(data.X, data.channels.index("elbow_torque"), axis=2)
    torque = prepare_sequences(X, without_torque, hinge).torque
    elbow_names = [c for c in data.channels if c != "elbow_torque"]
    elbow_torque = prepare_sequences(X, elbow_names, elbow).torque
    np.testing.assert_allclose(torque, elbow_torque, atol=1e-9)

    common = dict(model=hinge_model, coordinate="hinge", channels=channels)
    nmm = NMMRegressor(random_state=0, **common, **FAST_NMM).fit(
        data.X, data.y, subject_ids=data.groups
    )
    assert nmm.channels_ == channels
    assert nmm.predict(data.X).shape == data.y.shape
    assert nmm.predict_torque(data.X, data.groups).shape == data.X.shape[:2]
    mse = SynergyExtrapolationRegressor(n_synergies=2, max_iter=10, random_state=0, **common)
    assert mse.fit(data.X).predict(data.X).shape == data.y.shape
    # the elbow's names do not fit a joint called hinge, and the error names the right ones
    for estimator in (nmm, mse):
        with pytest.raises(ValueError, match="hinge_angle"):
            estimator.set_params(channels=list(ELBOW_CHANNELS)).fit(data.X, data.y)
