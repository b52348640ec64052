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
    prior = nmm.predict(X, groups, predict_physics="level")
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
        solver="adam",
    )
    np.testing.assert_allclose(new.numpy(), reference.numpy(), atol=1e-12)
    adam = copy.deepcopy(nmm).set_params(correction_solver="adam")
    np.testing.assert_allclose(adam.predict(X, groups), new.numpy(), atol=1e-12)
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


def _inputs(nmm, data):
    X, groups = data.X, data.groups
    prior = torch.as_tensor(nmm.predict(X, groups, predict_physics="none"))
    sequences = nmm._prepare(X)
    args = [torch.as_tensor(a) for a in (sequences.angle, sequences.velocity, sequences.torque)]
    index = torch.as_tensor(nmm._subject_codes(groups, len(groups)))
    return nmm.net_.module_, prior, args, index


def _loss(module, emg, prior, args, index, scale, weight, measured=None):
    """correct_emg's loss of each sequence, written out from its docstring."""
    free = torch.ones_like(prior) if measured is None else torch.isnan(measured).to(prior.dtype)
    change = torch.logit(emg.clamp(1e-15, 1 - 1e-15)) - torch.logit(prior.clamp(1e-4, 1 - 1e-4))
    change = change * free
    angle, velocity, tau = args
    residual = ((module.torque(emg, angle, velocity, index) - tau) / scale) ** 2
    penalty = (change**2).mean(dim=(1, 2)) + (torch.diff(change, dim=1) ** 2).mean(dim=(1, 2))
    return (residual.mean(1) + weight * penalty / free.mean(dim=(1, 2))).detach()


@pytest.mark.parametrize("mode", ["torque", "emg"])
def test_gauss_newton_reaches_the_loss_of_many_adam_steps(nmm, data, mode):
    """The default solver's answer: the loss of 400 Adam steps (at most 0.5 % above it, each
    sequence), the same EMG (within 1e-3 on average), and the measured EMG left as it is.

    Measured: up to 0.23 % above it on one sequence since the synergist term (deepemg 0.6)
    changed the fixture's network, 0.006 % above 2000 Adam steps' (the loss is not convex in
    the EMG's logit; 400 Adam steps went lower there than 2000); 0.1 % before."""
    module, prior, args, index = _inputs(nmm, data)
    measured = None
    if mode == "emg":
        measured = torch.full_like(prior, float("nan"))
        measured[:, :, [0, 3]] = 0.3  # BIClong and BRD driven by their surface EMG
    kwargs = {"torque_scale": nmm.torque_scale_, "weight": 0.1, "measured": measured}
    adam = correct_emg(module, prior, *args, index, steps=400, solver="adam", **kwargs)
    fast = correct_emg(module, prior, *args, index, **kwargs)
    losses = [
        _loss(module, e, prior, args, index, nmm.torque_scale_, 0.1, measured)
        for e in (prior, adam, fast)
    ]
    assert torch.all(losses[2] < 0.5 * losses[0])  # the correction did its work
    assert torch.all(losses[2] <= losses[1] * 1.005), losses[2] / losses[1] - 1
    assert float((fast - adam).abs().mean()) < 1e-3
    if measured is not None:
        assert torch.all(fast[:, :, [0, 3]] == 0.3)


def test_gauss_newton_with_a_law_not_affine_in_the_activation(elbow):
    """With the compliant tendon the torque is linearised by autograd at every iteration (no
    affine shortcut): the loss of 400 Adam steps within 0.5 % (the torque is curved in the
    activation here; 0.2 % above it on this rough, random prior, measured)."""
    from deepemg.nmm_module import NeuralMusculoskeletalModule
    from deepemg.opensim import elbow_model

    physics = elbow_model(muscle_law="compliant_tendon_degroote_fregly")
    assert not physics.muscle_law.affine_in_activation
    torch.manual_seed(0)
    module = NeuralMusculoskeletalModule.nominal(physics)
    generator = torch.Generator().manual_seed(0)
    prior = torch.sigmoid(torch.randn(2, 60, 7, generator=generator, dtype=torch.float64) - 2)
    time = torch.linspace(0, 1, 60, dtype=torch.float64)
    angle = (1.2 + 0.6 * torch.sin(3 * time)).expand(2, 60)
    velocity = (1.8 * torch.cos(3 * time)).expand(2, 60)
    tau = torch.stack([torch.full((60,), 12.0), -6.0 + 4.0 * time]).double()
    args, index = [angle, velocity, tau], torch.zeros(2, dtype=torch.long)
    kwargs = {"torque_scale": 5.0, "weight": 0.1}
    adam = correct_emg(module, prior, *args, index, steps=400, solver="adam", **kwargs)
    fast = correct_emg(module, prior, *args, index, **kwargs)
    losses = [_loss(module, e, prior, args, index, 5.0, 0.1) for e in (prior, adam, fast)]
    assert torch.all(losses[2] < 0.2 * losses[0])
    assert torch.all(losses[2] <= losses[1] * 1.005), (losses[1], losses[2])


def test_an_unknown_solver_is_refused(nmm, data):
    module, prior, args, index = _inputs(nmm, data)
    with pytest.raises(ValueError, match="solver must be one of"):
        correct_emg(module, prior, *args, index, torque_scale=1.0, weight=0.1, solver="lbfgs")
