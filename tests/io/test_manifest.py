"""Data folders: the trials.csv manifest and simulated subjects exported as trial files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from deepemg.datasets import export_trials
from deepemg.io import load_trials, read_manifest, write_manifest

from ..conftest import ARM26_LOCKED, simulated


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    data = simulated(tmp_path_factory, 1, 2, 3.0)
    folder = tmp_path_factory.mktemp("folder")
    export_trials(data, folder)
    return data, folder


def test_export_round_trip(exported):
    data, folder = exported
    trials = read_manifest(folder)
    assert [t["subject"] for t in trials] == ["S01", "S01"]
    loads = [float(data.X[i, 0, data.channels.index("load_mass")]) for i in range(2)]
    assert [t["load_mass"] for t in trials] == loads
    again = load_trials(trials)
    names = ["elbow_angle", "elbow_torque", "load_mass"]
    for name in names:
        j, k = data.channels.index(name), again.channels.index(name)
        np.testing.assert_allclose(again.X[..., k], data.X[..., j], atol=1e-6)
    # the raw EMG's envelope comes back in the arrays' units: the subject's MVC recording
    assert all(t["mvc"] == [folder / "S01_mvc_emg.csv"] for t in trials)
    for muscle in data.surface_muscles:
        truth = data.y[..., data.muscles.index(muscle)].ravel()
        back = again.y[..., again.muscles.index(muscle)].ravel()
        assert np.corrcoef(truth, back)[0, 1] > 0.9
        assert 0.85 < back.mean() / truth.mean() < 1.15
    for muscle in data.deep_muscles:
        assert np.isnan(again.y[..., again.muscles.index(muscle)]).all()


def test_export_names_columns_by_the_datas_joint(exported, arm26_with_load, tmp_path):
    """Channels of a model file (named by its coordinate) go to and come back from its columns."""
    data, _ = exported
    renamed = type(data)(
        **{
            **data,
            "channels": [c.replace("elbow_", "r_elbow_flex_", 1) for c in data.channels],
            "surface_muscles": ["BIClong", "TRIlong"],  # Arm26 has no BRD
        }
    )
    trials = export_trials(renamed, tmp_path)
    assert (tmp_path / "S01_trial01_ik.mot").read_text().count("time\tr_elbow_flex\n") == 1
    assert "r_elbow_flex_moment" in (tmp_path / "S01_trial01_id.sto").read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the simulated angles may leave Arm26's range
        again = load_trials(
            read_manifest(tmp_path),
            model=arm26_with_load,
            coordinate="r_elbow_flex",
            locked=ARM26_LOCKED,
        )
    assert again.channels[5:] == ["emg_BIClong", "emg_TRIlong"]
    assert [t["load_mass"] for t in trials] == [t["load_mass"] for t in read_manifest(tmp_path)]
    for name in ("r_elbow_flex_angle", "r_elbow_flex_torque", "load_mass"):
        j, k = renamed.channels.index(name), again.channels.index(name)
        np.testing.assert_allclose(again.X[..., k], renamed.X[..., j], atol=1e-6)
    with pytest.raises(ValueError, match="cannot tell the joint"):
        export_trials(type(data)(**{**data, "channels": ["angle"] * 10}), tmp_path / "no")


def test_write_then_read(exported, tmp_path):
    _, folder = exported
    trials = read_manifest(folder)
    write_manifest(trials, tmp_path)
    # the files are in another folder: '../folder/...' paths, read only when allowed
    with pytest.raises(ValueError, match=r"line 2, column kinematics: .* leads out of the data"):
        read_manifest(tmp_path / "trials.csv")
    again = read_manifest(tmp_path / "trials.csv", allow_outside=True)
    assert again == trials  # absolute paths resolve to the same files


def _manifest(tmp_path, text):
    (tmp_path / "ik.mot").write_text("")
    (tmp_path / "trials.csv").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("subject,kinematics\nS01,ik.mot\n", ValueError, r"lacks columns \['load_mass'\]"),
        ("subject,load_mass,kinematics,mass2\nS01,1,ik.mot,3\n", ValueError, "unknown columns"),
        ("subject,load_mass,kinematics\n", ValueError, "no trials"),
        ("subject,load_mass,kinematics\nS01,heavy,ik.mot\n", ValueError, "line 2: load_mass"),
        ("subject,load_mass,kinematics\nS01,1,\n", ValueError, "line 2: the kinematics cell"),
        (
            "subject,load_mass,kinematics\nS01,1,ik.mot\nS02,1,gone.mot\n",
            FileNotFoundError,
            "line 3: kinematics file .*gone.mot",
        ),
        (
            "subject,load_mass,kinematics,emg,emg_channels\nS01,1,ik.mot,ik.mot,BIClong\n",
            ValueError,
            "muscle=channel",
        ),
        ("subject,load_mass,kinematics\nS01,1,ik.mot,x\n", ValueError, "line 2: 4 cells"),
        ("subject,load_mass,kinematics\nS01,1,/etc/passwd\n", ValueError, "absolute path"),
        ("subject,load_mass,kinematics\nS01,1,../ik.mot\n", ValueError, "leads out"),
    ],
)
def test_manifest_errors(tmp_path, text, error, match):
    with pytest.raises(error, match=match):
        read_manifest(_manifest(tmp_path, text))


def test_missing_manifest_explains_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no trials\.csv in") as info:
        read_manifest(tmp_path)
    assert "subject,load_mass,kinematics" in str(info.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_manifest(tmp_path / "nowhere.csv")
