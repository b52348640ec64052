"""The neural musculoskeletal model as one torch module, its loss, and its skorch net."""

from __future__ import annotations

import torch
from skorch import NeuralNet
from torch import nn

from .network import EMGTransformer
from .physics import MusculoskeletalModel, SubjectParameters

__all__ = ["NMMLoss", "NMMNet", "NeuralMusculoskeletalModule"]


class NeuralMusculoskeletalModule(nn.Module):
    """Transformer -> EMG -> activation dynamics -> Hill muscles -> joint torque.

    Parameters
    ----------
    network : EMGTransformer
        Predicts every muscle's EMG from standardised kinematics and load.
    physics : MusculoskeletalModel
        The differentiable musculoskeletal model (its buffers are not trained).
    subject_parameters : SubjectParameters
        Bounded per-subject parameters, trained with the network.
    rate : float
        Sampling rate (Hz).
    """

    def __init__(
        self,
        network: EMGTransformer,
        physics: MusculoskeletalModel,
        subject_parameters: SubjectParameters,
        rate: float,
    ) -> None:
        super().__init__()
        self.network = network
        self.physics = physics
        self.subject_parameters = subject_parameters
        self.rate = float(rate)

    def activation(self, emg: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
        params = self.subject_parameters(subject)
        return self.physics.activation(emg.double(), self.rate, params), params

    def forward(self, features, angle, velocity, subject, emg_override=None):
        """EMG ``(B, T, M)`` and muscle torque ``(B, T)`` (N·m).

        ``emg_override`` (``(B, T, M)`` with NaN where absent) replaces the network's EMG by
        measured EMG in the physics chain. With ``both_drives`` set, the torque is returned
        for both drives, stacked ``(2, B, T)``: measured EMG where there is some, and the
        network's EMG everywhere.
        """
        emg = self.network(features)
        if emg_override is None:
            return emg, self.torque(emg, angle, velocity, subject)
        drive = torch.where(torch.isnan(emg_override), emg, emg_override.to(emg.dtype))
        torque = self.torque(drive, angle, velocity, subject)
        if getattr(self, "both_drives", False):
            torque = torch.stack([torque, self.torque(emg, angle, velocity, subject)])
        return emg, torque

    def torque(self, emg, angle, velocity, subject):
        """Muscle torque (N·m) driven by ``emg`` through the subject's physics."""
        activation, params = self.activation(emg, subject)
        return self.physics.joint_torque(activation, angle.double(), velocity.double(), params)


class NMMLoss(nn.Module):
    """``data_weight`` x masked EMG MSE + ``physics_weight`` x normalised torque MSE + effort
    + ``smoothness_weight`` x mean squared step-to-step change of the EMG.

    The target ``y`` packs the EMG targets (NaN where not measured) and, in its last column,
    the inverse-dynamics torque (N·m); the predicted torque may be ``(B, T)`` or, for two
    drives, ``(2, B, T)`` (the mean over both). The first ``burn_in`` steps of each window are
    left out of the torque term (activation dynamics start from a steady state there).
    The three terms of the last call are kept in ``terms``.
    """

    def __init__(
        self,
        data_weight=1.0,
        physics_weight=1.0,
        effort_weight=0.01,
        torque_scale=1.0,
        burn_in=10,
        unmeasured=None,
        smoothness_weight=0.0,
        synergy_weight=0.0,
        ridge=1e-3,
    ) -> None:
        super().__init__()
        self.synergy_weight = synergy_weight
        self.ridge = float(ridge)
        self.smoothness_weight = smoothness_weight
        self.data_weight = data_weight
        self.physics_weight = physics_weight
        self.effort_weight = effort_weight
        self.torque_scale = float(torque_scale)
        self.burn_in = int(burn_in)
        self.unmeasured = list(unmeasured or [])
        self.terms: dict[str, torch.Tensor] = {}

    def forward(self, y_pred, y_true):
        emg, torque = y_pred
        target, tau_id = y_true[..., :-1], y_true[..., -1]
        measured = ~torch.isnan(target)
        error = (emg - torch.nan_to_num(target)) ** 2 * measured
        data = error.sum() / measured.sum().clamp(min=1)
        residual = (torque - tau_id.to(torque.dtype)) / self.torque_scale
        physics = (residual[..., self.burn_in :] ** 2).mean()
        effort = (emg[..., self.unmeasured] ** 2).mean() if self.unmeasured else emg.sum() * 0
        # squared step-to-step change of the EMG (envelopes are slow)
        smoothness = (torch.diff(emg, dim=1) ** 2).mean()
        synergy = self.synergy(emg, target)
        self.terms = {
            "data_loss": data,
            "physics_loss": physics,
            "effort_loss": effort,
            "smoothness_loss": smoothness,
            "synergy_loss": synergy,
        }
        return (
            self.data_weight * data
            + self.physics_weight * physics
            + self.effort_weight * effort
            + self.smoothness_weight * smoothness
            + self.synergy_weight * synergy
        )

    def synergy(self, emg, target):
        """Share of the unmeasured muscles' EMG outside the span of the measured EMG.

        In each window, the unmeasured muscles' predicted EMG ``D`` (T, U) is projected on the
        measured EMG ``S`` (T, K) by ridge least squares, ``P = S (S'S + ridge I)^-1 S'``; the
        term is ``||(I - P) D||² / ||D||²``: 0 when the deep muscles move as a combination of
        the surface muscles (the synergy hypothesis of muscle synergy extrapolation), 1 when
        they share nothing with them. Windows without measured EMG are left out.
        """
        if not self.unmeasured:
            return emg.sum() * 0
        measured = ~torch.isnan(target).any(dim=1)  # (B, M): measured over the whole window
        surface = [j for j in range(target.shape[-1]) if j not in self.unmeasured]
        complete = measured[:, surface].all(dim=1)
        if not surface or not complete.any():
            return emg.sum() * 0
        S = torch.nan_to_num(target[complete][..., surface]).to(emg.dtype)
        D = emg[complete][..., self.unmeasured]
        gram = S.transpose(1, 2) @ S
        gram = gram + self.ridge * torch.eye(len(surface), dtype=emg.dtype) * S.shape[1]
        coefficients = torch.linalg.solve(gram, S.transpose(1, 2) @ D)
        residual = D - S @ coefficients
        return (residual**2).sum() / (D**2).sum().clamp(min=1e-12)


class NMMNet(NeuralNet):
    """skorch net that adds a prior on the subject parameters and logs each loss term.

    The prior pulls the unconstrained subject parameters towards their nominal values
    (``prior_weight`` x mean squared deviation). Every term goes to the batch history as
    ``train_data_loss`` ... (``valid_`` for validation batches), averaged per epoch by
    ``PassthroughScoring`` callbacks.
    """

    def __init__(self, *args, prior_weight: float = 1e-3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prior_weight = prior_weight

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = self.criterion_(y_pred, y_true)
        prior = self.module_.subject_parameters.prior()
        prefix = "train_" if training else "valid_"
        for name, value in {**self.criterion_.terms, "prior_loss": prior}.items():
            self.history.record_batch(prefix + name, float(value.detach()))
        return loss + self.prior_weight * prior
