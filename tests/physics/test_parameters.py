"""Bounded subject parameters: count, bounds, nominal values, read-out."""

import torch

from deepemg import ELBOW_MUSCLES
from deepemg.physics import DEFAULT_PARAMETER_SPECS, SubjectParameters


def test_32_parameters_per_subject_for_the_elbow():
    params = SubjectParameters(5, list(ELBOW_MUSCLES))
    assert params.n_per_subject == 32
    assert sum(p.numel() for p in params.parameters()) == 5 * 32


def test_values_start_nominal_and_stay_in_bounds():
    params = SubjectParameters(3, list(ELBOW_MUSCLES))
    values = params()
    for spec in DEFAULT_PARAMETER_SPECS:
        torch.testing.assert_close(
            values[spec.name], torch.full_like(values[spec.name], spec.nominal)
        )
    with torch.no_grad():
        for theta in params.parameters():
            theta.copy_(torch.randn_like(theta) * 50)  # extreme unconstrained values
    for spec in DEFAULT_PARAMETER_SPECS:
        value = params()[spec.name]
        value = value.detach()
        assert float(value.min()) >= spec.lower
        assert float(value.max()) <= spec.upper


def test_population_index_and_gradients():
    params = SubjectParameters(2, ["BRA"])
    with torch.no_grad():
        params.unconstrained["delay"].fill_(3.0)
    values = params(torch.tensor([1, -1]))
    assert float(values["delay"][0].detach()) > 0.09  # learned value
    assert abs(float(values["delay"][1].detach()) - 0.04) < 1e-12  # population (nominal) value
    values["max_isometric_force_scale"].sum().backward()
    grad = params.unconstrained["max_isometric_force_scale"].grad
    assert grad[1].abs().sum() > 0
    assert grad[0].abs().sum() == 0


def test_table_is_in_physical_units():
    params = SubjectParameters(2, ["BRA", "TRImed"])
    rows = params.table(subjects=["S1", "S2"])
    assert len(rows) == 2 * params.n_per_subject
    delay = [r for r in rows if r["parameter"] == "delay"]
    assert {r["subject"] for r in delay} == {"S1", "S2"}
    assert delay[0]["unit"] == "s"
    assert delay[0]["muscle"] is None
    forces = [r for r in rows if r["parameter"] == "max_isometric_force_scale"]
    assert {r["muscle"] for r in forces} == {"BRA", "TRImed"}
