"""Prediction-time physics: the network's EMG corrected to reproduce the inverse-dynamics torque.

The subject's muscle model driven by the corrected EMG reproduces the torque. A function over a
fitted :class:`~deepemg.nmm_module.NeuralMusculoskeletalModule`, the sequences and their subjects,
behind :meth:`deepemg.NMMRegressor.predict` (as scikit-learn keeps its solvers as functions behind
thin estimators). Its inputs are checked by the estimator once, at its public boundary, and again by
:func:`correct_emg` once before its steps; nothing reads a tensor back to the host inside the loop.

Two solvers minimise the same loss. ``"gauss-newton"`` (the default since 0.6.0) linearises the
torque in the EMG's logit: the activation filter is linear (:class:`ActivationFilter` applies it
and its transpose exactly, by FFT), the rest is elementwise in time, and for a muscle law whose
force is affine in the activation the torque is ``sum gain * activation + passive`` with both
computed once. Each of :data:`GAUSS_NEWTON_ITERATIONS` iterations solves its equations by
:data:`CG_ITERATIONS` conjugate-gradient iterations in float32 (the preconditioner inverts, per
time sample, the muscles' block in closed form) and takes the full step unless it raises the
loss (then the half step, or none), each sequence on its own. ``"adam"`` is the reference of
0.2-0.5: ``steps`` Adam steps at :data:`CORRECTION_LR`. Gauss-Newton reaches the minimum that
Adam approaches: against 1,000 Adam steps the brachialis r differs by at most 0.0034 on every
scenario; the 100 steps of 0.5 stop short of it (``benchmarks/bench_correction.py``,
``docs/results/correction_accuracy.txt``).

The loss couples no sequences: it is a sum over sequences of each sequence's own terms; every
scalar of the conjugate gradients and of the step length is per sequence, and Adam's update is
elementwise: ``predict(X)[i]`` and ``predict(X[i:i+1])`` differ by floating-point rounding
only (``benchmarks/bench_batch_independence.py``). Until 0.5.0 they differed by up to 1e-2:
the activation filter sized its FFT by the batch's largest pole; the filter's FFT length now
depends on the sequence length only.
"""

from __future__ import annotations

import copy
from collections.abc import Generator

import torch

from .physics._validation import as_float_tensor, check_same_shape, check_unit_interval
from .physics.activation import ActivationFilter, nonlinear_activation

__all__ = [
    "CG_ITERATIONS",
    "CORRECTION_LR",
    "GAUSS_NEWTON_ITERATIONS",
    "SOLVERS",
    "MuscleDrive",
    "correct_emg",
    "correct_emg_in_steps",
    "solve_in_steps",
]

CORRECTION_LR = 0.1
"""Adam's learning rate on the change of the EMG's logit."""

GAUSS_NEWTON_ITERATIONS = 5
"""Gauss-Newton iterations of the ``"gauss-newton"`` solver."""

CG_ITERATIONS = 5
"""Preconditioned conjugate-gradient iterations per Gauss-Newton iteration."""

SOLVERS = ("gauss-newton", "adam")
"""The correction's solvers (:func:`correct_emg`'s ``solver``)."""

_RISE = 1e-4
"""A full Gauss-Newton step is taken unless it raises the loss by more than this fraction.

Then the half step is taken if it lowers the loss, else none. A tolerance, not "any rise":
near the minimum a step changes the loss by rounding only, and a choice made on rounding would
make a sequence's answer depend on the float32 rounding of the others' (the FFT's vectorised
rows): whether the last step is taken must not flip there."""

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
    steps: int = 100,
    measured: torch.Tensor | None = None,
    solver: str = "gauss-newton",
) -> torch.Tensor:
    """Change the prior EMG, smoothly and within [0, 1], to reproduce the inverse-dynamics torque.

    Minimises, for each sequence ``i`` on its own, the mean squared torque residual (over the
    time steps, divided by ``torque_scale``) plus ``weight`` x (the mean squared change of the
    EMG's logit + the mean squared step-to-step change of that change), both over the free
    samples, from no change; only the change is solved for (the fitted parameters stay).

    Parameters
    ----------
    module : NeuralMusculoskeletalModule
        The fitted module (its ``physics``, ``subject_parameters`` and ``rate``).
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
    steps : int, default=100
        Adam steps of ``solver="adam"`` (the Gauss-Newton solver takes
        :data:`GAUSS_NEWTON_ITERATIONS` x :data:`CG_ITERATIONS`).
    measured : tensor like ``prior``, optional
        EMG that drives its muscles as given (NaN where free): the EMG-assisted mode.
    solver : {"gauss-newton", "adam"}, default="gauss-newton"
        How the loss is minimised (the module's docstring); ``"adam"`` is the slower reference.

    Returns
    -------
    tensor like ``prior``
        The corrected EMG.

    Raises
    ------
    ValueError, IndexError
        For inputs of the wrong shape, NaN or infinite values (NaN is allowed in
        ``measured``), EMG outside [0, 1], angles outside the coordinate's range, a subject
        row the module does not have, or an unknown solver. They are checked once, before the
        iterations; the iterations read nothing back to the host.

    Examples
    --------
    >>> import torch
    >>> from deepemg.opensim import elbow_model
    >>> from deepemg.nmm_module import NeuralMusculoskeletalModule
    >>> module = NeuralMusculoskeletalModule.nominal(elbow_model())  # untrained, nominal
    >>> angle = torch.full((1, 50), 1.5, dtype=torch.float64)
    >>> zero = torch.zeros(1, 50, dtype=torch.float64)
    >>> prior = torch.full((1, 50, 7), 0.05, dtype=torch.float64)
    >>> need = torch.full((1, 50), 20.0, dtype=torch.float64)      # N·m of flexion
    >>> subject = torch.zeros(1, dtype=torch.long)
    >>> before = module.torque(prior, angle, zero, subject)
    >>> emg = correct_emg(module, prior, angle, zero, need, subject, torque_scale=5.0, weight=0.1)
    >>> after = module.torque(emg, angle, zero, subject)
    >>> bool((after - need).abs()[0, 20:].mean() < (before - need).abs()[0, 20:].mean() / 4)
    True
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}.")
    inputs = (module, prior, angle, velocity, torque, subject)
    if solver == "gauss-newton":
        steps_ = correct_emg_in_steps(
            *inputs, torque_scale=torque_scale, weight=weight, measured=measured
        )
        return _exhausted(steps_)
    checked = _checked(*inputs, measured)
    excitation, loss, delta = _problem(module, *checked, measured, torque_scale, weight)
    _adam_steps(loss, delta, int(steps))
    with torch.no_grad():
        return excitation()


def _exhausted(units: Generator[None, None, torch.Tensor]) -> torch.Tensor:
    """The value a generator of work units returns, all its units run."""
    while True:
        try:
            next(units)
        except StopIteration as done:
            return done.value


def correct_emg_in_steps(
    module,
    prior: torch.Tensor,
    angle: torch.Tensor,
    velocity: torch.Tensor,
    torque: torch.Tensor,
    subject: torch.Tensor,
    *,
    torque_scale: float,
    weight: float,
    measured: torch.Tensor | None = None,
) -> Generator[None, None, torch.Tensor]:
    """:func:`correct_emg`'s Gauss-Newton solver, one small unit of work per ``next``.

    For a caller that must not block (a real-time stream, :class:`deepemg.StreamingPredictor`):
    the generator yields after the inputs' checks, after the set-up, each linearisation, each
    conjugate-gradient iteration and each step-length choice (:data:`GAUSS_NEWTON_ITERATIONS`
    x (:data:`CG_ITERATIONS` + 2) + 2 units), and returns the corrected EMG
    (``StopIteration.value``): the same tensor as :func:`correct_emg`. Same parameters as
    :func:`correct_emg`.

    Examples
    --------
    >>> import torch
    >>> from deepemg.opensim import elbow_model
    >>> from deepemg.nmm_module import NeuralMusculoskeletalModule
    >>> module = NeuralMusculoskeletalModule.nominal(elbow_model())  # untrained, nominal
    >>> angle = torch.full((1, 50), 1.5, dtype=torch.float64)
    >>> zero = torch.zeros(1, 50, dtype=torch.float64)
    >>> prior = torch.full((1, 50, 7), 0.05, dtype=torch.float64)
    >>> need = torch.full((1, 50), 20.0, dtype=torch.float64)
    >>> subject = torch.zeros(1, dtype=torch.long)
    >>> inputs = (module, prior, angle, zero, need, subject)
    >>> steps = correct_emg_in_steps(*inputs, torque_scale=5.0, weight=0.1)
    >>> units = 0
    >>> while True:
    ...     try:
    ...         next(steps)
    ...         units += 1
    ...     except StopIteration as done:
    ...         emg = done.value
    ...         break
    >>> whole = correct_emg(*inputs, torque_scale=5.0, weight=0.1)
    >>> units, bool(torch.equal(emg, whole))
    (37, True)
    """
    prior, angle, velocity, torque, subject = _checked(
        module, prior, angle, velocity, torque, subject, measured
    )
    with torch.no_grad():
        drive = MuscleDrive.of_module(module, angle, velocity, subject)
    yield
    return (yield from solve_in_steps(drive, prior, torque, torque_scale, weight, measured))


@torch.no_grad()
def solve_in_steps(
    drive: MuscleDrive, prior, torque, torque_scale, weight, measured=None
) -> Generator[None, None, torch.Tensor]:
    """The Gauss-Newton correction on a prepared :class:`MuscleDrive`, a unit per ``next``.

    :func:`correct_emg_in_steps` after its checks and set-up (one unit for the loss, then
    :data:`GAUSS_NEWTON_ITERATIONS` x (:data:`CG_ITERATIONS` + 2)); for a caller that
    prepares the drive itself (:class:`~deepemg.StreamingPredictor` keeps its activation
    filter for every span). Inputs are unchecked: ``prior`` ``(B, T, M)`` in [0, 1], ``torque``
    ``(B, T)`` N·m, ``torque_scale`` and ``weight`` floats or ``(B,)`` tensors, ``measured``
    like ``prior`` or None. Returns the corrected EMG ``(B, T, M)``.
    """
    problem = _Problem(drive, prior, torque, measured, torque_scale, weight)
    delta = torch.zeros_like(problem.logit)
    loss = problem.loss(delta)
    yield
    for _ in range(GAUSS_NEWTON_ITERATIONS):
        delta, loss = yield from _gauss_newton_iteration(problem, delta, loss)
    return problem.excitation(delta).transpose(1, 2)


class MuscleDrive:
    """The EMG -> joint torque map of fixed subjects, angles and velocities, for a solver.

    Split into its linear part, the activation filter (:class:`ActivationFilter`), and the rest,
    elementwise in time: the torque of the neural activation ``u``. Signals are laid out
    ``(n_sequences, n_muscles, n_timesteps)``. For a muscle law affine in the activation
    (:attr:`~deepemg.physics.MuscleLaw.affine_in_activation`) the muscles' torque is
    ``sum gain * activation + passive``, both evaluated once (or given: :meth:`at_samples`).
    What :func:`solve_in_steps` works on; nothing is checked (the callers check their inputs).

    Parameters
    ----------
    physics : MusculoskeletalModel
        The muscle model.
    params : dict of str to tensor
        Subject parameters, one row per sequence (``SubjectParameters`` values, detached).
    rate : float
        Sampling rate (Hz).
    angle, velocity : tensor (n_sequences, n_timesteps)
        Joint angle (rad) and velocity (rad/s), float64.

    Examples
    --------
    >>> import torch
    >>> from deepemg.opensim import elbow_model
    >>> from deepemg.physics import SubjectParameters
    >>> physics = elbow_model()
    >>> params = SubjectParameters(1, physics.muscles)(torch.zeros(1, dtype=torch.long))
    >>> angle = torch.full((1, 20), 1.5, dtype=torch.float64)
    >>> drive = MuscleDrive(physics, params, 100.0, angle, torch.zeros_like(angle))
    >>> emg = torch.full((1, 7, 20), 0.1, dtype=torch.float64)
    >>> torque = drive.torque(drive.filter.apply(emg))
    >>> bool(torch.allclose(torque, physics.joint_torque(
    ...     physics.activation(emg.transpose(1, 2), 100.0, params), angle, torch.zeros_like(angle),
    ...     params)))
    True
    """

    def __init__(self, physics, params: dict, rate: float, angle, velocity) -> None:
        self.physics, self.rate = physics, float(rate)
        self.params = {k: v.detach() for k, v in params.items()}
        g1, g2, delay, shape = physics._activation_values(self.params, 1, angle.dtype)
        size = (angle.shape[0], physics.n_muscles)
        self.filter = ActivationFilter(
            g1.expand(size), g2.expand(size), delay.expand(size) * self.rate, angle.shape[1]
        )
        self.filter_single = self.filter.astype(torch.float32)
        self.shape_factor = shape.unsqueeze(-1)
        self._set_samples(angle, velocity)
        if physics.muscle_law.affine_in_activation:
            self.passive, self.gain = self.linearised_muscles()

    @classmethod
    def of_module(cls, module, angle, velocity, subject) -> MuscleDrive:
        """The drive of a :class:`~deepemg.nmm_module.NeuralMusculoskeletalModule`'s subjects."""
        params = module.muscle_parameters(subject)
        return cls(module.physics, params, module.rate, angle, velocity)

    def _set_samples(self, angle, velocity) -> None:
        physics, params = self.physics, self.params
        self.muscle_torque = lambda a: physics._joint_torque(
            a.transpose(1, 2), angle, velocity, params
        )
        self.gain = self.passive = None

    def linearised_muscles(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The muscles' torque at no activation and its derivative by the activation.

        For a law affine in the activation, the passive torque ``(n_sequences, n_timesteps)``
        and the gain ``(n_sequences, n_muscles, n_timesteps)``.
        """
        shape = (*self.filter.energy.shape, self.filter.n_steps)
        zero = torch.zeros(shape, dtype=self.filter.energy.dtype, device=self.filter.energy.device)
        return self._linearised(self.muscle_torque, zero)

    def at_samples(self, angle, velocity, gain=None, passive=None) -> MuscleDrive:
        """The same drive at other angles and velocities (same subjects and length).

        The activation filter is kept; ``gain`` and ``passive`` (:meth:`linearised_muscles`
        of the new samples), when known, save computing them.
        """
        other = copy.copy(self)
        other._set_samples(angle, velocity)
        if gain is not None:
            other.gain, other.passive = gain, passive
        elif self.physics.muscle_law.affine_in_activation:
            other.passive, other.gain = other.linearised_muscles()
        return other

    def activation(self, neural: torch.Tensor) -> torch.Tensor:
        """Muscle activation of the neural activation (the nonlinear shape)."""
        return nonlinear_activation(neural.clamp(0.0, 1.0), self.shape_factor)

    def torque(self, neural: torch.Tensor) -> torch.Tensor:
        """Joint torque (N·m, ``(n_sequences, n_timesteps)``) of the neural activation."""
        if self.gain is None:
            return self.muscle_torque(self.activation(neural))
        return (self.gain * self.activation(neural)).sum(1) + self.passive

    def linearised(self, neural: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The torque of ``neural`` and its derivative with respect to ``neural``, per sample."""
        return self._linearised(self.torque, neural)

    @staticmethod
    def _linearised(function, value):
        value = value.detach().requires_grad_(True)
        with torch.enable_grad():
            out = function(value)
            (slope,) = torch.autograd.grad(out.sum(), [value])
        return out.detach(), slope


class _Problem:
    """The correction's loss of a batch, each sequence's times ``n_timesteps torque_scale**2``.

    ``F(delta) = sum r**2 + lam (sum (P delta)**2 / M + kappa sum (diff P delta)**2 / M)``, ``r``
    the torque residual (N·m), ``P`` the free samples, ``lam`` per sequence, ``kappa = T/(T-1)``:
    :func:`correct_emg`'s loss times ``T torque_scale**2``. Layout ``(B, M, T)``.
    """

    def __init__(self, drive: MuscleDrive, prior, torque, measured, torque_scale, weight):
        prior = prior.transpose(1, 2)
        self.drive, self.torque = drive, torque
        self.fixed = self.measured = self.free = None  # the torque mode: every sample free
        share = torch.ones(prior.shape[0], dtype=prior.dtype, device=prior.device)
        if measured is not None:
            measured = measured.transpose(1, 2)
            self.fixed = ~torch.isnan(measured)
            self.measured = torch.nan_to_num(measured)
            self.free = (~self.fixed).to(prior.dtype)
            share = self.free.mean(dim=(1, 2)).clamp(min=1e-12)
        n_muscles, n_steps = prior.shape[1], prior.shape[2]
        self.lam = (weight / share * torque_scale**2 / n_muscles).reshape(-1, 1, 1)
        self.kappa = n_steps / max(n_steps - 1, 1)
        self.logit = torch.logit(prior.clamp(_EDGE, 1 - _EDGE))

    def excitation(self, delta: torch.Tensor) -> torch.Tensor:
        """The EMG ``(B, M, T)`` of the logit change ``delta``."""
        free = torch.sigmoid(self.logit + delta)
        return free if self.fixed is None else torch.where(self.fixed, self.measured, free)

    def masked(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` on the free samples, zero on the measured ones (in ``values``' dtype)."""
        return values if self.free is None else values * self.free.to(values.dtype)

    def smoothing(self, change: torch.Tensor) -> torch.Tensor:
        """``P (I + kappa D^T D) P change`` (the penalty's Hessian / 2, without ``lam``)."""
        change = self.masked(change)
        step = torch.diff(change, dim=-1)
        pad = torch.nn.functional.pad
        return self.masked(change + self.kappa * (pad(step, (1, 0)) - pad(step, (0, 1))))

    def loss(self, delta: torch.Tensor) -> torch.Tensor:
        """``F(delta)`` per sequence, ``(B,)``."""
        residual = self.drive.torque(self.drive.filter.apply(self.excitation(delta))) - self.torque
        change = self.masked(delta)
        penalty = (change**2).sum(dim=(1, 2)) + self.kappa * (torch.diff(change, dim=-1) ** 2).sum(
            dim=(1, 2)
        )
        return (residual**2).sum(-1) + self.lam.reshape(-1) * penalty


def _gauss_newton_iteration(problem: _Problem, delta, loss) -> Generator[None, None, tuple]:
    """One Gauss-Newton iteration from ``delta`` of loss ``loss``: the new ``delta`` and loss.

    The step by preconditioned conjugate gradients, then the best step length.
    """
    drive, lam = problem.drive, problem.lam
    excitation = problem.excitation(delta)
    slope = problem.masked(excitation * (1.0 - excitation))  # d excitation / d delta
    torque, gain = drive.linearised(drive.filter.apply(excitation))
    yield

    gradient = slope * drive.filter.transpose(gain * (torque - problem.torque).unsqueeze(1))
    gradient = gradient + lam * problem.smoothing(delta)
    # The step's equations in float32 (half the memory traffic of the FFTs and products): the
    # step needs no more, the gradient, the loss and the step-length choice stay float64.
    single, gain, slope, lam = drive.filter_single, gain.float(), slope.float(), lam.float()

    def hessian(v):  # J^T J v + lam P (I + kappa D^T D) P v
        torque_change = (gain * single.apply(slope * v)).sum(1, keepdim=True)
        return slope * single.transpose(gain * torque_change) + lam * problem.smoothing(v)

    column = gain * slope * single.energy.sqrt().unsqueeze(-1)
    # weight=0 leaves only the torque: a floor keeps the preconditioner invertible
    floor = 1e-9 * (column * column).sum(1, keepdim=True).mean(-1, keepdim=True) + 1e-30
    diagonal = problem.masked(lam * (1.0 + 2.0 * problem.kappa) + floor)
    if problem.fixed is not None:
        diagonal = diagonal + problem.fixed  # no step where the EMG is measured
    step = yield from _conjugate_gradients(hessian, -gradient.float(), column, diagonal)
    best = _best_step(problem, delta, loss, step.to(delta.dtype))
    yield
    return best


def _conjugate_gradients(hessian, right, column, diagonal) -> Generator[None, None, torch.Tensor]:
    """:data:`CG_ITERATIONS` of CG on ``hessian(x) = right``, every scalar per sequence.

    Preconditioned, at each time sample, by ``diag(diagonal) + column column^T`` over the
    muscles (inverted in closed form, Sherman-Morrison): the penalty's diagonal and the
    torque's own muscle-by-muscle coupling, the filter's smoothing in time left out.
    """
    inverse = 1.0 / diagonal
    ratio = column * inverse
    denominator = 1.0 + (column * ratio).sum(1, keepdim=True)

    def precondition(r):
        return r * inverse - ratio * ((ratio * r).sum(1, keepdim=True) / denominator)

    tiny = torch.finfo(right.dtype).tiny
    solution = torch.zeros_like(right)
    residual = right
    direction = precondition(residual)
    rho = _dot(residual, direction)
    for _ in range(CG_ITERATIONS):
        product = hessian(direction)
        alpha = rho / _dot(direction, product).clamp(min=tiny)
        solution = solution + alpha * direction
        residual = residual - alpha * product
        preconditioned = precondition(residual)
        rho_next = _dot(residual, preconditioned)
        direction = preconditioned + rho_next / rho.clamp(min=tiny) * direction
        rho = rho_next
        yield
    return solution


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Each sequence's inner product, shaped ``(B, 1, 1)``."""
    return (a * b).sum(dim=(1, 2), keepdim=True)


def _best_step(problem: _Problem, delta, loss, step) -> tuple[torch.Tensor, torch.Tensor]:
    """The new ``delta`` and its loss: the full step, the half step or none.

    The full step unless it raises the loss by more than :data:`_RISE`; then the half step if it
    lowers the loss, else none.
    """
    full, half = delta + step, delta + 0.5 * step
    full_loss, half_loss = problem.loss(full), problem.loss(half)
    take_full = full_loss <= loss * (1.0 + _RISE)
    take_half = ~take_full & (half_loss < loss)
    best = torch.where(take_half.reshape(-1, 1, 1), half, delta)
    best = torch.where(take_full.reshape(-1, 1, 1), full, best)
    lowest = torch.where(take_half, half_loss, loss)
    return best, torch.where(take_full, full_loss, lowest)


def _problem(module, prior, angle, velocity, torque, subject, measured, torque_scale, weight):
    """The Adam reference: the EMG as a function of ``delta``, the loss, and ``delta``."""
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
