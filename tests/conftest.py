"""Shared fixtures: the built-in elbow, Arm26 with a load body, and a flexion-extension motion.

OpenSim itself is the oracle in these tests; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepemg import opensim as bridge
from deepemg.datasets import make_elbow_lifting

DATA = Path(__file__).parent / "data"
ARM26_PATH = DATA / "arm26.osim"
ARM26_LOCKED = {"r_shoulder_elev": 0.0}
ARM26_LOAD_LOCATION = (0.0, -0.30, 0.0)  # m in r_ulna_radius_hand, near the hand
FAST_NMM = dict(
    max_epochs=2,
    window=50,
    d_model=16,
    n_heads=2,
    n_layers=1,
    batch_size=16,
    predict_physics="none",
)
"""NMMRegressor settings small enough for unit tests (seconds per fit); the network's EMG
alone at prediction (the tests of the prediction-time physics set it themselves)."""
TINY_NMM = {k: v for k, v in FAST_NMM.items() if k != "predict_physics"} | dict(
    max_epochs=1, d_model=8, random_state=0
)
"""A tinier NMM (one epoch) that keeps the default prediction-time physics."""


def simulated(tmp_path_factory, n_subjects: int, n_trials: int, duration: float, **kwargs):
    """Small simulated subjects (seed 0), cached in a temporary folder: nothing touches ~."""
    return make_elbow_lifting(
        n_subjects=n_subjects,
        n_trials=n_trials,
        duration=duration,
        random_state=0,
        progress=False,
        data_home=tmp_path_factory.mktemp("simulated"),
        **kwargs,
    )


@pytest.fixture(scope="session")
def two_subjects(tmp_path_factory):
    """Two simulated subjects, two 1.5 s trials each (1 and 5 kg)."""
    return simulated(tmp_path_factory, 2, 2, 1.5, loads=(1, 5))


@pytest.fixture(scope="module")
def fitted(data):
    """A small NMM fitted on the module's ``data`` (one per test module: tests may use it)."""
    from deepemg import NMMRegressor

    return NMMRegressor(random_state=0, **FAST_NMM).fit(data.X, data.y, subject_ids=data.groups)


def joint_channels(channels, joint: str) -> list[str]:
    """The elbow's channel names for another joint (``elbow_angle`` -> ``<joint>_angle``)."""
    return [joint + c[len("elbow") :] if c.startswith("elbow_") else c for c in channels]


def flexion_extension(n_frames: int = 241, period: float = 4.0, amplitude_deg: float = 120.0):
    """A 0 -> amplitude -> 0 degree flexion-extension with exact derivatives (rad, s)."""
    t = np.linspace(0.0, period, n_frames)
    w = 2 * np.pi / period
    half = np.radians(amplitude_deg) / 2
    angle = half * (1 - np.cos(w * t))
    velocity = half * w * np.sin(w * t)
    acceleration = half * w * w * np.cos(w * t)
    return angle, velocity, acceleration


@pytest.fixture(scope="session")
def elbow():
    return bridge.elbow_model()


@pytest.fixture(scope="session")
def arm26_with_load(tmp_path_factory):
    """Arm26 (muscles made rigid-tendon DeGrooteFregly2016) with a `load` body, saved to disk."""
    model = bridge.load_model(ARM26_PATH)
    bridge.add_load_body(model, "r_ulna_radius_hand", ARM26_LOAD_LOCATION)
    path = tmp_path_factory.mktemp("arm26") / "arm26_load.osim"
    model.printToXML(str(path))
    return path


@pytest.fixture(scope="session")
def hinge_model(tmp_path_factory):
    """The built-in elbow with its coordinate renamed ``hinge``: a joint not called elbow."""
    text = bridge.ELBOW_MODEL_PATH.read_text().replace("r_elbow_flex", "hinge")
    path = tmp_path_factory.mktemp("hinge") / "hinge.osim"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def arm26(arm26_with_load):
    return bridge.build_model(arm26_with_load, "r_elbow_flex", ARM26_LOCKED)


def opensim_pose(path, coordinate="r_elbow_flex", locked=None, load_mass=None):
    """An OpenSim model posed like deepemg poses it (rigid-tendon DGF muscles)."""
    model = bridge.load_model(path)
    bridge.use_rigid_tendon_degroote_muscles(model)
    if load_mass is not None:
        bridge.set_load_mass(model, load_mass)
    return bridge.ModelPose(model, coordinate, locked)


def forward_activation(excitation, start, rate, activation_tau, deactivation_tau):
    """First-order activation dynamics integrated forward (explicit Euler) from ``start``:
    ``da/dt = (e - a) / tau`` with ``tau = tau_act (0.5 + 1.5 a)`` while activating and
    ``tau_deact / (0.5 + 1.5 a)`` while deactivating (the closed form the simulators invert)."""
    a, rebuilt = start, [start]
    for e in excitation[:-1]:
        tau = activation_tau * (0.5 + 1.5 * a) if e >= a else deactivation_tau / (0.5 + 1.5 * a)
        a = a + (e - a) / tau / rate
        rebuilt.append(a)
    return np.array(rebuilt)
