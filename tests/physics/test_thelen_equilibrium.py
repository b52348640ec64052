"""The compliant Thelen law's Newton search where it is slowest: a stiff passive fibre.

The built-in elbow made Thelen2003Muscles at a corner of the subject scales' and curve shapes'
bounds: passive strain 0.3 (half OpenSim's default), tendon strain 0.08 (twice the default),
KshapeActive 0.2531 (0.5625 x 0.45), optimal fibre lengths x 0.8 and tendon slack lengths x 0.9:
fibres stretched to l~ = 1.42, forces up to 7.8 F0. From the rigid-tendon start the search needs
7 of its 8 Newton steps here (6 leave 2e-5 of the force, 5 leave 7e-3), and 12 without its
passive-linear step (8 leave 9 %), against OpenSim's ``equilibrateMuscles``.
"""

from __future__ import annotations

import numpy as np
import opensim as osim
import torch

from deepemg import opensim as bridge
from deepemg.opensim import ELBOW_MODEL_PATH, build_model
from deepemg.physics import compliant_tendon_thelen_force, get_muscle_law

COMPLIANT = get_muscle_law("compliant_tendon_thelen2003")


def _stiff_elbow(folder):
    model = bridge.load_model(ELBOW_MODEL_PATH)
    bridge.use_thelen_muscles(model)
    for i in range(model.getMuscles().getSize()):
        muscle = osim.Thelen2003Muscle.safeDownCast(model.getMuscles().get(i))
        muscle.set_FmaxMuscleStrain(0.3)
        muscle.set_FmaxTendonStrain(0.08)
        muscle.set_KshapeActive(0.2531)
        muscle.set_optimal_fiber_length(0.8 * muscle.get_optimal_fiber_length())
        muscle.set_tendon_slack_length(0.9 * muscle.get_tendon_slack_length())
    path = folder / "stiff_thelen_elbow.osim"
    model.printToXML(str(path))
    return path


def test_a_stiff_passive_fibre_reaches_opensims_equilibrium(tmp_path):
    path = _stiff_elbow(tmp_path)
    built = build_model(path, "r_elbow_flex", muscle_law="from_model")
    assert built.muscle_law is COMPLIANT
    model = bridge.load_model(path)
    pose = bridge.ModelPose(model, "r_elbow_flex", {})
    handles = [
        osim.Thelen2003Muscle.safeDownCast(h) for h in bridge.muscle_handles(model, built.muscles)
    ]
    low, high = pose.range
    lengths, activations, expected, stretch = [], [], [], []
    for angle in np.linspace(low + 0.05, high - 0.05, 7):
        pose.set(float(angle), 0.0)
        model.realizeVelocity(pose.state)
        length = [h.getLength(pose.state) for h in handles]
        for a in (0.05, 1.0):
            for h in handles:
                h.setActivation(pose.state, a)
            model.equilibrateMuscles(pose.state)
            model.realizeDynamics(pose.state)
            lengths.append(length)
            activations.append([a] * len(handles))
            expected.append([h.getTendonForce(pose.state) for h in handles])
            stretch.append([h.getNormalizedFiberLength(pose.state) for h in handles])
    values = {n: getattr(built, n) for n in COMPLIANT.parameter_names}
    length = torch.tensor(lengths, dtype=torch.float64)
    got = compliant_tendon_thelen_force(
        torch.tensor(activations, dtype=torch.float64), length, torch.zeros_like(length), **values
    )
    expected = np.asarray(expected)
    # the corner is stiff: stretched fibres, forces well above F0
    assert np.max(stretch) > 1.4
    assert (expected / values["max_isometric_force"].numpy()).max() > 7.0
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-3)
