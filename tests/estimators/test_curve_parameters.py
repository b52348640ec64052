"""NMMRegressor(curve_parameters=True), and the report of subject parameters on their bounds."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from deepemg import NMMRegressor, ParameterBoundWarning
from deepemg._bounds import parameters_at_bounds
from tests.conftest import TINY_NMM


@pytest.fixture(scope="module")
def curved(two_subjects):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ParameterBoundWarning)  # none on a fit of nominal data
        return NMMRegressor(curve_parameters=True, **TINY_NMM).fit(
            two_subjects.X, two_subjects.y, subject_ids=two_subjects.groups
        )


def test_curve_parameters_per_subject(curved, two_subjects):
    """53 parameters per subject (32 + 3 scales x 7 muscles), each in its bounds, near 1."""
    rows = curved.subject_params_
    subjects = list(curved.subjects_)
    assert len(rows) == 53 * len(subjects)
    curves = [r for r in rows if r["parameter"] == "max_contraction_velocity_scale"]
    assert len(curves) == 7 * len(subjects)
    assert all(r["lower"] == 0.5 and r["upper"] == 1.5 for r in curves)
    assert all(abs(r["value"] - 1.0) < 0.2 for r in curves)
    assert curved.fitted_with_["curve_parameters"] is True
    assert curved.parameters_at_bounds_ == []


def test_saved_model_keeps_its_curve_parameters(curved, two_subjects, tmp_path):
    path = curved.save(tmp_path / "curved.deepemg")
    loaded = NMMRegressor.load(path)
    assert loaded.curve_parameters is True
    assert [r["value"] for r in loaded.subject_params_] == [
        r["value"] for r in curved.subject_params_
    ]
    np.testing.assert_allclose(
        loaded.predict(two_subjects.X, subject_ids=two_subjects.groups),
        curved.predict(two_subjects.X, subject_ids=two_subjects.groups),
    )


def test_changing_curve_parameters_after_fit_is_refused(curved, two_subjects):
    changed = NMMRegressor(**{**curved.get_params(), "warm_start": True})
    changed.set_fitted_state(curved.get_fitted_state())
    changed.set_params(curve_parameters=False)
    with pytest.raises(ValueError, match="curve_parameters"):
        changed.predict(two_subjects.X)


def test_parameters_at_bounds_lists_a_forced_parameter(curved, two_subjects):
    """A parameter pushed onto its bound is listed, with a warning after personalize."""
    model = NMMRegressor(**curved.get_params()).set_fitted_state(curved.get_fitted_state())
    table = model.net_.module_.subject_parameters
    subject = model.subjects_[0]
    with torch.no_grad():  # sigmoid(30) = 1: the upper bound, and no gradient moves it back
        table.unconstrained["active_force_width_scale_scale"][0, 2] = 30.0
    assert model.parameters_at_bounds_ == [
        {
            "subject": subject,
            "parameter": "active_force_width_scale_scale",
            "muscle": "BRA",
            "value": pytest.approx(1.5),
            "bound": "upper",
        }
    ]
    first = two_subjects.groups == subject
    with pytest.warns(ParameterBoundWarning, match=r"BRA\] = 1.5 \(upper\).*sign of a misfit"):
        model.personalize(
            two_subjects.X[first], subject_ids=two_subjects.groups[first], max_epochs=1
        )
    assert [r["muscle"] for r in model.parameters_at_bounds_] == ["BRA"]


def test_bound_tolerance_is_one_percent_of_the_range():
    rows = [
        {"subject": 0, "parameter": "delay", "muscle": None, "value": v, "lower": 0.0, "upper": 1.0}
        for v in (0.0, 0.0101, 0.5, 0.9899, 0.995)
    ]
    assert [r["bound"] for r in parameters_at_bounds(rows)] == ["lower", "upper"]
    with pytest.raises(ValueError, match="tolerance"):
        parameters_at_bounds(rows, tolerance=0.6)
