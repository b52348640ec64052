"""Curve-shape parameters per subject: the scales reach the law, and torque identifies them.

The known-truth tests simulate joint torque with the torch model itself, one subject's curve
(force-length width, v_max, passive strain, tendon strain) off nominal, and fit only the
subjects' curve scales to that torque from the true activation (the network held fixed): the
learned scale must move most of the way to the truth, the other subject's stay at 1. Freezing
the curve scales, or a model that ignores them, leaves them at 1 and fails these tests.
"""

from __future__ import annotations

import math

import pytest
import torch

from deepemg.physics import (
    DEFAULT_PARAMETER_SPECS,
    SubjectParameters,
    compliant_tendon_force,
    curve_parameter_specs,
    get_muscle_law,
    rigid_tendon_force,
    subject_parameter_specs,
)
from deepemg.physics.model import MusculoskeletalModel
from deepemg.specification import ModelSpecification

RIGID = get_muscle_law("rigid_tendon_degroote_fregly")
COMPLIANT = get_muscle_law("compliant_tendon_degroote_fregly")


@pytest.fixture(scope="module")
def compliant_elbow() -> MusculoskeletalModel:
    return ModelSpecification(muscle_law="compliant_tendon_degroote_fregly").resolve()


def test_counts_per_subject():
    """7 muscles: 32 parameters; 53 with the rigid law's 3 curve scales; 60 with the compliant."""
    muscles = [f"m{j}" for j in range(7)]
    assert SubjectParameters(1, muscles).n_per_subject == 32
    assert SubjectParameters(1, muscles, subject_parameter_specs(RIGID, True)).n_per_subject == 53
    compliant = SubjectParameters(1, muscles, subject_parameter_specs(COMPLIANT, True))
    assert compliant.n_per_subject == 60
    assert subject_parameter_specs(RIGID, False) == DEFAULT_PARAMETER_SPECS
    names = [s.name for s in curve_parameter_specs(COMPLIANT)]
    assert names[-1] == "tendon_strain_scale"
    assert all(s.nominal == 1.0 for s in compliant.specs[8:])
    with pytest.raises(ValueError, match="no curve-shape scale of \\['tendon_strain'\\]"):
        curve_parameter_specs(RIGID, ["tendon_strain"])


def _inputs(n: int = 240, seed: int = 0):
    """Activations, angles (rad) and velocities (rad/s) spread over the elbow's range."""
    generator = torch.Generator().manual_seed(seed)
    activation = torch.rand(n, 7, generator=generator, dtype=torch.float64)
    angle = 0.05 + 2.2 * torch.rand(n, generator=generator, dtype=torch.float64)
    velocity = 8.0 * (torch.rand(n, generator=generator, dtype=torch.float64) - 0.5)
    return activation, angle, velocity


def _law_values(model, name: str, scale: float) -> dict:
    values = {n: getattr(model, n) for n in model.muscle_law.parameter_names}
    values[name] = values[name] * scale
    return values


@pytest.mark.parametrize(
    "name", ["active_force_width_scale", "passive_fiber_strain", "max_contraction_velocity"]
)
def test_scale_reaches_the_law(elbow, name):
    """A subject's ``<p>_scale`` multiplies the law parameter p (the law evaluated by hand)."""
    activation, angle, velocity = _inputs(50)
    force = elbow.muscle_force(
        activation, angle, velocity, {f"{name}_scale": torch.full((7,), 1.3, dtype=torch.float64)}
    )
    length = elbow.musculotendon_length(angle)
    lengthening = -elbow.moment_arm(angle) * velocity[:, None]
    expected = rigid_tendon_force(activation, length, lengthening, **_law_values(elbow, name, 1.3))
    nominal = rigid_tendon_force(activation, length, lengthening, **_law_values(elbow, name, 1.0))
    torch.testing.assert_close(force, expected)
    assert float((force - nominal).abs().max()) > 1.0  # N: the scale changes the force


def test_tendon_strain_scale_reaches_the_compliant_law(compliant_elbow):
    activation, angle, velocity = _inputs(20)
    params = {"tendon_strain_scale": torch.full((7,), 1.5, dtype=torch.float64)}
    force = compliant_elbow.muscle_force(activation, angle, velocity, params)
    length = compliant_elbow.musculotendon_length(angle)
    lengthening = -compliant_elbow.moment_arm(angle) * velocity[:, None]
    values = _law_values(compliant_elbow, "tendon_strain", 1.5)
    torch.testing.assert_close(
        force, compliant_tendon_force(activation, length, lengthening, **values)
    )


def _fit_curve_scales(model, truth: dict, steps: int, lr: float = 0.05, frozen: bool = False):
    """Subject 1's torque made with ``truth`` (subject 0's nominal); the curve scales fitted."""
    activation, angle, velocity = _inputs()
    n = len(angle)
    subject = torch.arange(n) % 2
    specs = curve_parameter_specs(model.muscle_law)
    true = SubjectParameters(2, model.muscles, specs)
    with torch.no_grad():
        for name, value in truth.items():
            spec = next(s for s in specs if s.name == name)
            fraction = (value - spec.lower) / (spec.upper - spec.lower)
            true.unconstrained[name][1] = math.log(fraction / (1 - fraction))
        target = model.joint_torque(activation, angle, velocity, true(subject))
    learned = SubjectParameters(2, model.muscles, specs)
    if frozen:
        learned.requires_grad_(False)
    optimiser = torch.optim.Adam(learned.parameters(), lr=lr) if not frozen else None
    for _ in range(steps if not frozen else 0):
        optimiser.zero_grad()
        torque = model._joint_torque(activation, angle, velocity, learned(subject))
        ((torque - target) ** 2).mean().backward()
        optimiser.step()
    with torch.no_grad():
        return learned(None)


@pytest.mark.parametrize(
    ("name", "true_scale"),
    [
        ("active_force_width_scale_scale", 1.3),
        ("max_contraction_velocity_scale", 0.7),
        ("passive_fiber_strain_scale", 0.75),
    ],
)
def test_learned_scale_moves_to_the_truth(elbow, name, true_scale):
    """Every muscle of subject 1 has ``true_scale``; the fit gets most of the way there."""
    values = _fit_curve_scales(elbow, {name: true_scale}, steps=150)
    learned = values[name]
    # the muscles that carry most of the torque: biceps, brachialis, brachioradialis, triceps
    moved = (learned[1] - 1.0) / (true_scale - 1.0)
    assert float(moved.median()) > 0.6, learned[1]
    assert float((learned[0] - 1.0).abs().max()) < 0.05, learned[0]  # subject 0: nominal


def test_frozen_scales_do_not_learn(elbow):
    """The guard of the test above: scales that do not learn stay at 1 (and would fail it)."""
    values = _fit_curve_scales(elbow, {"active_force_width_scale_scale": 1.3}, 150, frozen=True)
    assert float((values["active_force_width_scale_scale"] - 1.0).abs().max()) < 1e-12


def test_learned_tendon_strain_moves_to_the_truth(compliant_elbow):
    values = _fit_curve_scales(compliant_elbow, {"tendon_strain_scale": 1.6}, steps=60, lr=0.08)
    moved = (values["tendon_strain_scale"][1] - 1.0) / 0.6
    assert float(moved.median()) > 0.5, values["tendon_strain_scale"][1]
