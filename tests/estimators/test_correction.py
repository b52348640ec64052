"""The prediction-time correction (deepemg.correction): a loss that couples no sequences, equal
to the former batched Adam loop for a single sequence, and the physics mode chosen per call."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from deepemg import NMMRegressor
from deepemg.correction import CORRECTION_LR, correct_emg

from ..conftest import FAST_NMM


@pytest.fixture(scope="module")
def data(two_subjects):
    return two_subjects


@pytest.fixture(scope="module")
def nmm(data):
    params = {**FAST_NMM, "predict_physics": "torque", "correction_steps": 20}
    return NMMRegressor(random_state=0, **params).fit(data.X, data.y, subject_ids=data.groups)


def _batched_reference(module, prior, angle, velocity, tau, index, scale, weight, steps):
    """The correction as it was before deepemg.correction: one loss averaged over the whole
    batch (so each sequence's result depended on the others through Adam's epsilon)."""
    logit = torch.logit(prior.clamp(1e-4, 1 - 1e-4))
    delta = torch.zeros_like(logit, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=0.1)
    with torch.enable_grad():
        for _ in range(steps):
            torque = module.torque(torch.sigmoid(logit + delta), angle, velocity, index)
            residual = ((torque - tau) / scale) ** 2
            loss = residual.mean() + weight * (
                (delta**2).mean() + (torch.diff(delta, dim=1) ** 2).mean()
            )
            (delta.grad,) = torch.autograd.grad(loss, [delta])
            optimizer.step()
    with torch.no_grad():
        return torch.sigmoid(logit + delta)


def test_the_loss_couples_no_sequences(nmm, data):
    """A sequence's correction does not depend on the other sequences of the batch: the same
    sequence beside one whose surface EMG drives its muscles (EMG-assisted, fewer free
    samples) and beside one with none is corrected identically (same batch shape and subject,
    so the same float operations on its row). Penalties averaged over the whole batch's free
    samples would differ."""
    X, groups = data.X, data.groups
    rows = np.flatnonzero(groups == groups[0])[:2]
    prior = torch.as_tensor(nmm.predict(X[rows], groups[rows], predict_physics="none"))
    sequences = nmm._prepare(X[rows])
    args = [torch.as_tensor(a) for a in (sequences.angle, sequences.velocity, sequences.torque)]
    index = torch.as_tensor(nmm._subject_codes(groups[rows], 2))
    none = torch.full_like(prior, float("nan"))
    some = none.clone()
    some[1, :, :3] = 0.2  # the other sequence's first three muscles driven by "measured" EMG
    results = [
        correct_emg(
            nmm.net_.module_,
            prior,
            *args,
            index,
            torque_scale=nmm.torque_scale_,
            weight=0.1,
            steps=10,
            measured=measured,
        )
        for measured in (none, some)
    ]
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)
    assert (results[0][1] - results[1][1]).abs().max() > 1e-3  # the other one did change


def test_one_sequence_matches_the_former_batched_loop(nmm, data):
    """For a single sequence the new per-sequence loss is the old batch loss: same steps."""
    X, groups = data.X[:1], data.groups[:1]
    prior = nmm.predict(X, groups, predict_physics="none")
    sequences = nmm._prepare(X)
    module = nmm.net_.module_
    index = torch.as_tensor(nmm._subject_codes(groups, 1))
    args = [torch.as_tensor(a) for a in (sequences.angle, sequences.velocity, sequences.torque)]
    reference = _batched_reference(
        module, torch.as_tensor(prior), *args, index, nmm.torque_scale_, 0.1, 20
    )
    assert CORRECTION_LR == 0.1
    new = correct_emg(
        module,
        torch.as_tensor(prior),
        *args,
        index,
        torque_scale=nmm.torque_scale_,
        weight=0.1,
        steps=20,
    )
    np.testing.assert_allclose(new.numpy(), reference.numpy(), atol=1e-12)
    np.testing.assert_allclose(nmm.predict(X, groups), new.numpy(), atol=1e-12)
    assert np.abs(new.numpy() - prior).max() > 1e-3  # the correction moved the EMG


def test_the_physics_mode_per_call(nmm, data):
    X, groups = data.X[:2], data.groups[:2]
    alone = nmm.predict(X, groups, predict_physics="none")
    assert nmm.predict_physics == "torque"  # the estimator's setting is left as it was
    network = copy.deepcopy(nmm).set_params(predict_physics="none")
    np.testing.assert_array_equal(alone, network.predict(X, groups))
    assert np.abs(nmm.predict(X, groups) - alone).max() > 1e-3
    with pytest.raises(ValueError, match="predict_physics='bogus'"):
        nmm.predict(X, groups, predict_physics="bogus")
