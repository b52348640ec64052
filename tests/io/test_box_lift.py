"""A real trial: lifting a 6 kg box, recorded with markers and Delsys EMG (pyomeca test data).

The files in tests/data/box-lift come unchanged from pyomeca (Apache-2.0, see LICENSE.md and
SOURCE.md). What can be checked without the model that made them: the rates, a plausible
elbow range, the box's weight in the inverse dynamics, and envelopes that behave.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import savgol_filter

from deepemg.io import load_trials, read_c3d_analogs, read_storage
from deepemg.preprocessing import EMGEnvelope

DATA = Path(__file__).parents[1] / "data" / "box-lift"
C3D = DATA / "markers_analogs.c3d"
IK = DATA / "inverse_kin.mot"
ID = DATA / "inverse_dyn.sto"
GRAVITY = 9.80665


def emg_label(labels, muscle):
    """The analog label of a Delsys EMG channel, e.g. 'Biceps' -> 'Biceps.EMG4'."""
    found = [label for label in labels if label.split(".")[0] == muscle and "EMG" in label]
    assert len(found) == 1, f"expected one EMG channel for {muscle}, got {found}"
    return found[0]


@pytest.fixture(scope="module")
def analogs():
    return read_c3d_analogs(C3D)


@pytest.fixture(scope="module")
def kinematics():
    with pytest.warns(UserWarning, match="nRows=250 but the file holds 88 rows"):
        return read_storage(IK)


def test_c3d_rates_and_emg_channels(analogs):
    assert analogs.rate == 2000.0
    assert analogs.point_rate == 100.0
    assert analogs.data.shape == (11600, 38)  # 5.8 s
    assert analogs.time[0] == 0.0
    assert analogs.time[-1] == pytest.approx(5.8 - 1 / 2000)
    assert emg_label(analogs.labels, "Biceps") == "Biceps.EMG4"
    assert emg_label(analogs.labels, "Triceps") == "Triceps.EMG5"
    assert set(analogs.units) == {"V"}


def test_biceps_and_triceps_envelopes(analogs):
    labels = [emg_label(analogs.labels, m) for m in ("Biceps", "Triceps")]
    raw = read_c3d_analogs(C3D, channels=labels)
    np.testing.assert_array_equal(
        raw.data, analogs.data[:, [analogs.labels.index(c) for c in labels]]
    )
    envelope = EMGEnvelope(rate=raw.rate).fit(raw.data)
    out = envelope.transform(raw.data)
    print(f"\nmaximum envelope (V): {dict(zip(labels, envelope.max_.round(7), strict=True))}")
    print(f"envelope mean {out.mean(axis=0).round(3)}, median {np.median(out, axis=0).round(3)}")
    # surface EMG of the order of 0.1 mV: the maxima of the envelopes are 10-1000 microvolts
    assert np.all((envelope.max_ > 1e-5) & (envelope.max_ < 1e-3))
    assert out.shape == raw.data.shape
    assert out.min() >= 0.0
    np.testing.assert_allclose(out.max(axis=0), 1.0)
    # a lift, not a maximal contraction held throughout: the envelopes spend most time low
    assert np.all(np.median(out, axis=0) < 0.5)


def test_inverse_kinematics(kinematics):
    assert kinematics.rate == pytest.approx(100.0)
    assert kinematics.in_degrees
    assert kinematics.time[0] == pytest.approx(1.56)
    assert kinematics.time[-1] == pytest.approx(2.43)
    elbow = np.degrees(kinematics.column("elbow_flexion"))
    print(f"\nelbow_flexion: {elbow.min():.1f} to {elbow.max():.1f} deg")
    assert 30.0 < elbow.min() < 45.0  # 36.9 deg
    assert 120.0 < elbow.max() < 135.0  # 127.7 deg
    assert "box_transZ" not in kinematics.converted  # a translation (m) stays in metres
    assert "thorax_tx" not in kinematics.converted
    assert "box_rotX" in kinematics.converted


def test_box_weight_in_inverse_dynamics(kinematics):
    with pytest.warns(UserWarning, match="nRows=250 but the file holds 92 rows"):
        dynamics = read_storage(ID)
    assert dynamics.rate == pytest.approx(100.0)
    assert not dynamics.in_degrees
    force = dynamics.column("box_transZ_force")  # vertical force that holds the box (N)
    assert force[0] == pytest.approx(59.682)
    # F = m (g + z''): the box's mass from its vertical acceleration in the kinematics
    n = kinematics.time.size
    np.testing.assert_allclose(dynamics.time[:n], kinematics.time)
    height = kinematics.column("box_transZ")
    acceleration = savgol_filter(height, 11, 3, deriv=2, delta=1 / kinematics.rate)
    mass = np.sum((GRAVITY + acceleration) * force[:n]) / np.sum((GRAVITY + acceleration) ** 2)
    residual = np.abs(mass * (GRAVITY + acceleration) - force[:n]).max()
    print(
        f"\nbox force {force.min():.1f}-{force.max():.1f} N (mean {force.mean():.1f}); "
        f"mass {mass:.2f} kg, weight {mass * GRAVITY:.1f} N, max residual {residual:.2f} N"
    )
    assert mass * GRAVITY == pytest.approx(59.7, abs=1.0)
    assert residual < 3.0


def test_load_trials_on_the_real_trial():
    trial = {
        "kinematics": IK,
        "load_mass": 6.08,  # the box (59.7 N)
        "subject": "pyomeca",
        "angle_column": "elbow_flexion",
        "torque": ID,
        "torque_column": "elbow_flexion_moment",
        "emg": C3D,
        "emg_channels": {"BIClong": "Biceps.EMG4", "TRIlong": "Triceps.EMG5"},
    }
    with pytest.warns(UserWarning, match="nRows=250"):
        data = load_trials([trial])
    assert data.X.shape == (1, 88, 7)
    assert data.channels[5:] == ["emg_BIClong", "emg_TRIlong"]
    np.testing.assert_allclose(np.degrees(data.X[0, :, 0]).min(), 36.9, atol=0.1)
    envelopes = data.y[0][:, [data.muscles.index("BIClong"), data.muscles.index("TRIlong")]]
    assert np.all((envelopes >= 0.0) & (envelopes <= 1.0))
    np.testing.assert_array_equal(data.X[0, :, 5:], envelopes)
    assert np.isnan(data.y[0][:, data.muscles.index("BRA")]).all()
    torque = data.X[0, :, 4]
    assert -1.0 < torque.min()
    assert torque.max() < 10.0
