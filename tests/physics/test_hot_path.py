"""Physics checked once (issue 18): the hot path reads nothing back to the host.

The training module's forward pass, its loss, one training batch's loss as the skorch net
records it and the prediction-time correction's steps run with every Python-level host read
of a tensor (``float``, ``bool``, ``int``, ``item``, ``tolist``, ``numpy``) made to raise or
counted: each is a device-to-host synchronisation on a GPU. The public physics methods still
refuse bad input with their clear messages.
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np
import pytest
import torch

from deepemg.correction import correct_emg
from deepemg.network import EMGTransformer
from deepemg.nmm_module import NeuralMusculoskeletalModule, NMMLoss, NMMNet
from deepemg.opensim import elbow_model
from deepemg.physics import (
    SubjectParameters,
    neural_activation,
)

_READS = ("__float__", "__bool__", "__int__", "__index__", "item", "tolist", "numpy")


class HostReadError(AssertionError):
    """A tensor was read back to the host on the hot path."""


@contextlib.contextmanager
def host_reads(strict: bool = True):
    """Patch torch.Tensor's host reads: raise (``strict``) or count them in the list yielded.

    Reads made by ``torch.optim`` itself are let through: the optimisers keep their step
    counter on the host on purpose (a CPU tensor, no device synchronisation).
    """
    seen: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in _READS}

    def guard(name):
        original = originals[name]

        def read(self, *args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if not caller.startswith("torch.optim"):
                frame = sys._getframe(1)
                where = f"{name} from {caller}:{frame.f_lineno}"
                if strict:
                    raise HostReadError(f"host read on the hot path: {where}")
                seen.append(where)
            return original(self, *args, **kwargs)

        return read

    try:
        for name in _READS:
            setattr(torch.Tensor, name, guard(name))
        yield seen
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


@pytest.fixture(scope="module")
def elbow():
    return elbow_model()


def _module(elbow, drive="both"):
    torch.manual_seed(0)
    network = EMGTransformer(4, 7, d_model=8, n_heads=2, n_layers=1, dropout=0.1, code_dim=2)
    subjects = SubjectParameters(2, elbow.muscles, code_dim=2)
    return NeuralMusculoskeletalModule(network, elbow, subjects, rate=100.0, drive=drive)


def _batch(n=3, steps=40):
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(n, steps, 4, generator=generator)
    angle = torch.linspace(0.3, 2.0, steps).expand(n, steps).clone()
    velocity = torch.full((n, steps), 0.5)
    subject = torch.tensor([0, 1, -1][:n])
    target = torch.rand(n, steps, 7, generator=generator) * 0.5
    target[..., [2, 6]] = float("nan")  # BRA, TRImed never measured
    target[1, 5:9, 0] = float("nan")  # a gap: window 1 is left out of the synergy term
    torque = torch.randn(n, steps, generator=generator, dtype=torch.float64)
    return features, angle, velocity, subject, {"emg": target, "torque": torque}


def test_forward_and_loss_read_nothing_back(elbow):
    module = _module(elbow).train()
    features, angle, velocity, subject, target = _batch()
    loss_fn = NMMLoss(torque_scale=2.0, unmeasured=[2, 6], smoothness_weight=0.1)
    with host_reads():
        y_pred = module(features, angle, velocity, subject, emg_override=target["emg"])
        loss = loss_fn(y_pred, target)
        loss.backward()
    assert y_pred[1].shape == (2, 3, 40)  # both drives
    assert torch.isfinite(loss)
    assert module.subject_parameters.unconstrained["g1"].grad.abs().sum() > 0


def test_a_training_batchs_loss_reads_nothing_back_and_is_logged_as_floats(elbow):
    net = NMMNet(
        module=_module(elbow, drive="predicted"),
        criterion=NMMLoss,
        criterion__unmeasured=[2, 6],
        criterion__torque_scale=2.0,
        max_epochs=1,
    ).initialize()
    features, angle, velocity, subject, target = _batch()
    net.history.new_epoch()
    net.history.new_batch()
    with host_reads():
        y_pred = net.module_(features, angle, velocity, subject)
        loss = net.get_loss(y_pred, target, training=True)
        loss.backward()
    terms = {**net.criterion_.terms, "prior_loss": net.module_.subject_parameters.prior()}
    net.on_epoch_end(net)  # the terms become floats, as PassthroughScoring reads them
    record = net.history[-1, "batches", 0]
    for name, value in terms.items():
        assert type(record[f"train_{name}"]) is float
        assert record[f"train_{name}"] == float(value.detach())
    assert record["train_synergy_loss"] > 0


def _correction_inputs(elbow, n=2, steps=60):
    module = _module(elbow, drive="predicted").eval()
    generator = torch.Generator().manual_seed(2)
    prior = torch.sigmoid(torch.randn(n, steps, 7, generator=generator, dtype=torch.float64) - 2)
    angle = torch.full((n, steps), 1.4, dtype=torch.float64)
    velocity = torch.zeros(n, steps, dtype=torch.float64)
    torque = torch.full((n, steps), 10.0, dtype=torch.float64)
    return module, prior, angle, velocity, torque, torch.tensor([0, 1])


@pytest.mark.parametrize("solver", ["gauss-newton", "adam"])
def test_the_corrections_host_reads_do_not_grow_with_its_steps(elbow, solver, monkeypatch):
    """The inputs are checked once, before the steps: a fixed number of reads per call, however
    many Adam steps or Gauss-Newton and conjugate-gradient iterations it takes."""
    import deepemg.correction

    module, *inputs = _correction_inputs(elbow)
    measured = torch.full_like(inputs[0], float("nan"))
    measured[:, :, 0] = 0.2
    counts = []
    for steps in (1, 5):
        monkeypatch.setattr(deepemg.correction, "GAUSS_NEWTON_ITERATIONS", steps)
        monkeypatch.setattr(deepemg.correction, "CG_ITERATIONS", steps)
        with host_reads(strict=False) as seen:
            emg = correct_emg(
                module,
                *inputs,
                torque_scale=5.0,
                weight=0.1,
                steps=steps,
                measured=measured,
                solver=solver,
            )
        counts.append(len(seen))
        assert torch.all(emg[..., 0] == 0.2)
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize(
    ("argument", "bad", "message"),
    [
        (0, float("nan"), "prior holds NaN"),
        (0, 1.5, r"prior must lie in \[0, 1\]"),
        (1, 7.0, "did you pass degrees"),
        (2, float("inf"), "velocity holds NaN"),
        (3, float("nan"), "torque holds NaN"),
    ],
)
def test_the_correction_checks_its_inputs_once(elbow, argument, bad, message):
    module, *inputs = _correction_inputs(elbow)
    inputs[argument] = inputs[argument].clone()
    inputs[argument][0, 3] = bad
    with pytest.raises(ValueError, match=message):
        correct_emg(module, *inputs, torque_scale=5.0, weight=0.1, steps=2)


def test_the_correction_refuses_an_unknown_subject_row(elbow):
    module, *inputs = _correction_inputs(elbow)
    inputs[-1] = torch.tensor([0, 2])
    with pytest.raises(IndexError, match="subject index out of range"):
        correct_emg(module, *inputs, torque_scale=5.0, weight=0.1, steps=2)


def test_the_public_physics_still_refuse_bad_input(elbow):
    activation = torch.full((5, 7), 0.2, dtype=torch.float64)
    angle = torch.full((5,), 1.0, dtype=torch.float64)
    velocity = torch.zeros(5, dtype=torch.float64)
    nan = activation.clone()
    nan[2, 3] = float("nan")
    with pytest.raises(ValueError, match="activation holds NaN or infinite values"):
        elbow.joint_torque(nan, angle, velocity)
    with pytest.raises(ValueError, match=r"activation must lie in \[0, 1\]"):
        elbow.muscle_force(activation + 1.0, angle, velocity)
    with pytest.raises(ValueError, match="did you pass degrees"):
        elbow.joint_torque(activation, torch.full((5,), 90.0), velocity)
    with pytest.raises(ValueError, match="angle must lie in the range"):
        elbow.moment_arm(torch.tensor([-1.0]))
    with pytest.raises(ValueError, match="velocity has shape"):
        elbow.joint_torque(activation, angle, velocity[:3])
    with pytest.raises(ValueError, match="load_mass must be >= 0 kg"):
        elbow.inverse_dynamics(angle, velocity, velocity, load_mass=-1.0)
    with pytest.raises(ValueError, match="acceleration holds NaN"):
        elbow.inverse_dynamics(angle, velocity, velocity * np.nan)
    excitation = torch.full((2, 20, 7), 0.2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"excitation must lie in \[0, 1\]"):
        elbow.activation(excitation * 10, 100.0)
    with pytest.raises(ValueError, match="stable"):
        elbow.activation(excitation, 100.0, {"g1": torch.tensor(-1.0)})
    with pytest.raises(ValueError, match="delay must be >= 0"):
        neural_activation(excitation, -0.5, -0.5, -0.01, 100.0)
    params = SubjectParameters(2, elbow.muscles, code_dim=1)
    with pytest.raises(IndexError, match="subject index out of range"):
        params(torch.tensor([0, 2]))
    with pytest.raises(IndexError, match="subject index out of range"):
        params.codes(torch.tensor([-2]))
