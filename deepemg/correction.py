"""Prediction-time physics: the network's EMG corrected to reproduce the inverse-dynamics torque.

The subject's muscle model driven by the corrected EMG reproduces the torque. A function over a
fitted :class:`~deepemg.nmm_module.NeuralMusculoskeletalModule`, the sequences and their subjects,
behind :meth:`deepemg.NMMRegressor.predict` (as scikit-learn keeps its solvers as functions behind
thin estimators). Its inputs are checked by the estimator once, at its public boundary, and again by
:func:`correct_emg` once before its steps; nothing reads a tensor back to the host inside the loop.

The loss couples no sequences: it is a sum over sequences of each sequence's own terms, and Adam's
update is elementwise: ``predict(X)[i]`` and ``predict(X[i:i+1])`` differ by the network's
float32 rounding only (1.5e-8, ``benchmarks/bench_batch_independence.py``). Until 0.5.0 they
differed by up to 1e-2: the activation filter sized its FFT by the batch's largest pole, and
Adam's first steps amplified the resulting rounding where a gradient was nearly zero; the
filter's FFT length now depends on the sequence length only.
"""

from __future__ import annotations

import torch

from .physics._validation import as_float_tensor, check_same_shape, check_unit_interval

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
    """Change the prior EMG, smoothly and within [0, 1], to reproduce the inverse-dynamics torque.

    The subject's muscle model driven by the returned EMG reproduces the torque. Minimises, for each
    sequence ``i`` on its own, the mean squared torque residual (over the time steps, divided by
    ``torque_scale``) plus ``weight`` x (the mean squared change of the EMG's logit + the mean
    squared step-to-step change of that change), both over the free samples, with ``steps`` Adam
    steps (learning rate :data:`CORRECTION_LR`) from no change. The fitted parameters are left
    untouched (only the change has a gradient).

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

    Raises
    ------
    ValueError, IndexError
        For inputs of the wrong shape, NaN or infinite values (NaN is allowed in
        ``measured``), EMG outside [0, 1], angles outside the coordinate's range, or a subject
        row the module does not have. They are checked once, before the steps; the steps read
        nothing back to the host.

    Examples
    --------
    >>> import torch
    >>> from deepemg.opensim import elbow_model
    >>> from deepemg.physics import SubjectParameters
    >>> from deepemg.network import EMGTransformer
    >>> from deepemg.nmm_module import NeuralMusculoskeletalModule
    >>> physics = elbow_model()
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
    checked = _checked(module, prior, angle, velocity, torque, subject, measured)
    excitation, loss, delta = _problem(module, *checked, measured, torque_scale, weight)
    _adam_steps(loss, delta, int(steps))
    with torch.no_grad():
        return excitation()


def _problem(module, prior, angle, velocity, torque, subject, measured, torque_scale, weight):
    """The EMG as a function of the change ``delta`` of its logit, the loss, and ``delta``."""
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

    def excitation():
        return torch.where(fixed, measured, torch.sigmoid(logit + delta))

    def loss():
        predicted = module.torque(excitation(), angle, velocity, subject)
        residual = (((predicted - torque) / torque_scale) ** 2).mean(dim=1)
        change = delta * free
        penalty = (change**2).mean(dim=(1, 2)) + (torch.diff(change, dim=1) ** 2).mean(dim=(1, 2))
        return (residual + weight * penalty / share).sum()  # each sequence on its own

    return excitation, loss, delta


def _adam_steps(loss, delta: torch.Tensor, steps: int) -> None:
    """``steps`` Adam steps (learning rate :data:`CORRECTION_LR`) on ``delta`` of ``loss()``."""
    optimizer = torch.optim.Adam([delta], lr=CORRECTION_LR)
    with torch.enable_grad():
        for _ in range(steps):
            (delta.grad,) = torch.autograd.grad(loss(), [delta])
            optimizer.step()


def _checked(
    module, prior, angle, velocity, torque, subject, measured
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`correct_emg`'s inputs checked once, before its steps (clear errors, not NaN)."""
    physics = module.physics
    prior = as_float_tensor(prior, "prior")
    if prior.ndim != 3 or prior.shape[-1] != physics.n_muscles:
        raise ValueError(
            f"prior must be shaped (n_sequences, n_timesteps, {physics.n_muscles}), got "
            f"{tuple(prior.shape)}."
        )
    check_unit_interval(prior, "prior")
    angle = physics._angle(angle)
    velocity = as_float_tensor(velocity, "velocity", angle.dtype)
    torque = as_float_tensor(torque, "torque", angle.dtype)
    check_same_shape(angle, "angle", velocity=velocity, torque=torque)
    check_same_shape(prior[..., 0], "prior without its muscle axis", angle=angle)
    subject = module.subject_parameters._check_index(subject)
    if subject.shape != prior.shape[:1]:
        raise ValueError(
            f"subject must hold one row per sequence ({prior.shape[0]}), got shape "
            f"{tuple(subject.shape)}."
        )
    if measured is not None:
        check_same_shape(prior, "prior", measured=measured)
        if bool(torch.isinf(measured).any()):
            raise ValueError("measured holds infinite values; give NaN where EMG is free.")
        check_unit_interval(torch.nan_to_num(measured), "measured")
    return prior, angle, velocity, torque, subject
