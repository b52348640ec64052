"""Prediction-time physics: the network's EMG corrected so that the subject's muscle model
reproduces the inverse-dynamics torque.

A function over a fitted :class:`~deepemg.nmm_module.NeuralMusculoskeletalModule`, the
sequences and their subjects, behind :meth:`deepemg.NMMRegressor.predict` (as
scikit-learn keeps its solvers as functions behind thin estimators). Its inputs are checked by
the estimator once, at its public boundary; nothing here reads a tensor back to the host
inside the loop.

The loss couples no sequences: it is a sum over sequences of each sequence's own terms, and
Adam's update is elementwise. Yet ``predict(X)[i]`` and ``predict(X[i:i+1])`` still differ (up
to about 1e-2 after 20 steps, measured on two simulated subjects): the network's float32
output and the activation filter's FFT length depend on the batch at the level of float
rounding (6e-8 and 7e-11), and Adam's first steps, which move every element by about the
learning rate whatever the size of its gradient, amplify that noise where a gradient is
nearly zero. A better-conditioned solver (Gauss-Newton on the nearly linear torque) is what
removes it (issue 20).
"""

from __future__ import annotations

import torch

__all__ = ["CORRECTION_LR", "correct_emg"]

CORRECTION_LR = 0.1
"""Adam's learning rate on the change of the EMG's logit."""

_EDGE = 1e-4
"""The prior EMG is clipped to [_EDGE, 1 - _EDGE] before its logit is taken."""


def correct_emg(
    module,
    prior: torch.Tensor,
    angle: torch.Tensor,
    velocity: torch.Tensor,
    torque: torch.Tensor,
    subject: torch.Tensor,
    *,
    torque_scale: float,
    weight: float,
    steps: int,
    measured: torch.Tensor | None = None,
) -> torch.Tensor:
    """The prior EMG changed, smoothly and within [0, 1], so that the subject's muscle model
    reproduces the inverse-dynamics torque.

    Minimises, for each sequence ``i`` on its own, the mean squared torque residual (over
    the time steps, divided by ``torque_scale``) plus ``weight`` x (the mean squared change of
    the EMG's logit + the mean squared step-to-step change of that change), both over the
    free samples, with ``steps`` Adam steps (learning rate :data:`CORRECTION_LR`) from no
    change. The fitted parameters are left untouched (only the change has a gradient).

    Parameters
    ----------
    module : NeuralMusculoskeletalModule
        The fitted module (its ``torque(emg, angle, velocity, subject)``).
    prior : tensor (n_sequences, n_timesteps, n_muscles)
        The network's EMG (0..1), float64, on the module's device.
    angle, velocity, torque : tensors (n_sequences, n_timesteps)
        Joint angle (rad), velocity (rad/s) and inverse-dynamics torque (N·m).
    subject : tensor (n_sequences,) of int
        Each sequence's row of the module's subject parameters (-1: the population's).
    torque_scale : float
        N·m by which the torque residual is divided (the training torque's SD).
    weight : float
        Weight of the change penalties (``NMMRegressor.correction_weight``).
    steps : int
        Adam steps.
    measured : tensor like ``prior``, optional
        EMG that drives its muscles as given (NaN where free): the EMG-assisted mode.

    Returns
    -------
    tensor like ``prior``
        The corrected EMG.

    Examples
    --------
    >>> import torch
    >>> from deepemg.physics import MusculoskeletalModel, SubjectParameters
    >>> from deepemg.network import EMGTransformer
    >>> from deepemg.nmm_module import NeuralMusculoskeletalModule
    >>> physics = MusculoskeletalModel.elbow()
    >>> network = EMGTransformer(4, 7, 8, 2, 1, 0.0)
    >>> subjects = SubjectParameters(1, physics.muscles)
    >>> module = NeuralMusculoskeletalModule(network, physics, subjects, 100.0)
    >>> angle = torch.full((1, 50), 1.5, dtype=torch.float64)
    >>> zero = torch.zeros(1, 50, dtype=torch.float64)
    >>> prior = torch.full((1, 50, 7), 0.05, dtype=torch.float64)
    >>> need = torch.full((1, 50), 20.0, dtype=torch.float64)      # N·m of flexion
    >>> subject = torch.zeros(1, dtype=torch.long)
    >>> before = module.torque(prior, angle, zero, subject)
    >>> emg = correct_emg(module, prior, angle, zero, need, subject,
    ...                   torque_scale=5.0, weight=0.1, steps=100)
    >>> after = module.torque(emg, angle, zero, subject)
    >>> bool((after - need).abs()[0, 20:].mean() < (before - need).abs()[0, 20:].mean() / 4)
    True
    """
    if measured is None:
        fixed = torch.zeros_like(prior, dtype=torch.bool)
        measured = torch.zeros_like(prior)
    else:
        fixed = ~torch.isnan(measured)
        measured = torch.nan_to_num(measured)
    free = (~fixed).to(prior.dtype)
    # the penalties averaged over each sequence's free samples
    share = free.mean(dim=(1, 2)).clamp(min=1e-12)
    logit = torch.logit(prior.clamp(_EDGE, 1 - _EDGE))
    delta = torch.zeros_like(logit, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=CORRECTION_LR)

    def excitation():
        return torch.where(fixed, measured, torch.sigmoid(logit + delta))

    with torch.enable_grad():
        for _ in range(int(steps)):
            predicted = module.torque(excitation(), angle, velocity, subject)
            residual = (((predicted - torque) / torque_scale) ** 2).mean(dim=1)
            change = delta * free
            penalty = (change**2).mean(dim=(1, 2)) + (torch.diff(change, dim=1) ** 2).mean(
                dim=(1, 2)
            )
            loss = (residual + weight * penalty / share).sum()  # each sequence on its own
            (delta.grad,) = torch.autograd.grad(loss, [delta])
            optimizer.step()
    with torch.no_grad():
        return excitation()
