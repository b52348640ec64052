"""The neural musculoskeletal model as one torch module, its loss, and its skorch net."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from sklearn.base import clone
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.utils import to_tensor
from torch import nn

from .network import EMGTransformer
from .physics import MusculoskeletalModel, SubjectParameters

__all__ = ["DRIVES", "NMMCheckpoint", "NMMLoss", "NMMNet", "NeuralMusculoskeletalModule"]


DRIVES = ("predicted", "measured", "both")
"""What may drive the muscle model in training (:class:`NeuralMusculoskeletalModule`)."""
PHYSICS_TRAINS = ("all", "parameters")

RATIO_FLOOR = 1e-3
"""EMG added to both means before their logarithms in :meth:`NMMLoss.synergist` (``ratio``):
a window whose synergists are silent does not weigh without bound."""
"""What the torque residual trains (:class:`NeuralMusculoskeletalModule`)."""


class NeuralMusculoskeletalModule(nn.Module):
    """Transformer -> EMG -> activation dynamics -> Hill muscles -> joint torque.

    Parameters
    ----------
    network : EMGTransformer
        Predicts every muscle's EMG from standardised kinematics and load.
    physics : MusculoskeletalModel
        The differentiable musculoskeletal model (its buffers are not trained).
    subject_parameters : SubjectParameters
        Bounded per-subject parameters, trained with the network; their codes (if any)
        condition the network.
    rate : float
        Sampling rate (Hz).
    drive : {"predicted", "measured", "both"}, default="predicted"
        What drives the muscle model when measured EMG (``emg_override``) is given: the
        network's EMG for every muscle; the measured EMG where there is some (the network's
        elsewhere); or both, the torque of each stacked ``(2, B, T)``.
    freeze_network : bool, default=False
        Keep the network in evaluation mode (no dropout) and out of training, as
        :meth:`~deepemg.NMMRegressor.personalize` needs (the subjects' codes still learn).
    physics_trains : {"all", "parameters"}, default="all"
        What the torque (``forward``'s second output) is differentiable in: the network's
        EMG and the subject parameters ("all"), or the subject parameters only
        ("parameters": the EMG enters the muscle model detached, so the torque residual
        calibrates each subject's muscles to the EMG and cannot reshape the EMG itself).
    levelled : sequence of int, default=()
        The muscles (indices) whose EMG gets each subject's ``emg_level`` (a logit offset,
        :data:`~deepemg.physics.parameters.EMG_LEVEL_SPEC`; ``subject_parameters`` must hold
        it): the muscles without EMG. With ``physics_trains="parameters"`` the torque trains
        their level, not their shape. The network alone (``forward``'s ``with_level``
        False) is the EMG as the data, synergy and effort terms shaped it, without anything
        the torque taught.

    Examples
    --------
    >>> import torch
    >>> from deepemg.network import EMGTransformer
    >>> from deepemg.opensim import elbow_model
    >>> from deepemg.physics import SubjectParameters
    >>> physics = elbow_model()
    >>> module = NeuralMusculoskeletalModule(
    ...     EMGTransformer(4, 7, d_model=8, n_heads=2, n_layers=1), physics,
    ...     SubjectParameters(1, physics.muscles), rate=100.0)
    >>> emg, torque = module(torch.randn(2, 30, 4), torch.full((2, 30), 1.0),
    ...                      torch.zeros(2, 30), torch.zeros(2, dtype=torch.long))
    >>> emg.shape, torque.shape
    (torch.Size([2, 30, 7]), torch.Size([2, 30]))
    """

    def __init__(
        self,
        network: EMGTransformer,
        physics: MusculoskeletalModel,
        subject_parameters: SubjectParameters,
        rate: float,
        drive: str = "predicted",
        freeze_network: bool = False,
        physics_trains: str = "all",
        levelled: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.levelled = [int(j) for j in levelled]
        names = [spec.name for spec in subject_parameters.specs]
        if self.levelled and "emg_level" not in names:
            raise ValueError("levelled muscles need the subject parameter 'emg_level'.")
        if self.levelled:  # the subjects' mean level, moved into the network by center_levels
            self.register_buffer("level_shift", torch.zeros(network.head.bias.shape[0]))
        if drive not in DRIVES:
            raise ValueError(f"drive must be one of {DRIVES}, got {drive!r}.")
        if physics_trains not in PHYSICS_TRAINS:
            raise ValueError(
                f"physics_trains must be one of {PHYSICS_TRAINS}, got {physics_trains!r}."
            )
        self.physics_trains = physics_trains
        self.network = network
        self.physics = physics
        self.subject_parameters = subject_parameters
        self.rate = float(rate)
        self.drive = drive
        self.freeze_network = bool(freeze_network)
        if self.freeze_network:
            self.network.requires_grad_(False)

    @classmethod
    def nominal(
        cls, physics: MusculoskeletalModel, n_subjects: int = 1, rate: float = 100.0
    ) -> NeuralMusculoskeletalModule:
        """The muscle model of ``physics`` with ``n_subjects`` sets of nominal parameters.

        Its network is small (8 wide, one layer, 4 inputs) and untrained: what the physics
        functions (:func:`deepemg.correction.correct_emg`, :mod:`deepemg.adequacy`) need to
        work on EMG of your own, without a fitted estimator. ``rate`` in Hz.

        Examples
        --------
        >>> from deepemg.opensim import elbow_model
        >>> module = NeuralMusculoskeletalModule.nominal(elbow_model())
        >>> module.subject_parameters.n_subjects, module.network.embed.in_features
        (1, 4)
        """
        network = EMGTransformer(
            4, physics.n_muscles, d_model=8, n_heads=2, n_layers=1, dropout=0.0
        )
        subjects = SubjectParameters(n_subjects, list(physics.muscles))
        return cls(network, physics, subjects, rate)

    def train(self, mode: bool = True):
        """Training mode (``mode``), the network kept in evaluation mode when frozen."""
        super().train(mode)
        if self.freeze_network:
            self.network.eval()
        return self

    def activation(self, emg: torch.Tensor, subject: torch.Tensor):
        """Activation (float64) of ``emg`` and the subject parameters.

        ``emg`` goes through the subject's activation dynamics. Nothing is checked or read
        back to the host: the inputs are checked once where they enter (the estimator's ``X``,
        :func:`~deepemg.correction.correct_emg`).
        """
        params = self.muscle_parameters(subject)
        return self.physics._activation(emg.double(), self.rate, params), params

    def muscle_parameters(self, subject) -> dict:
        """The subjects' parameters, the levelled muscles' strength held at its nominal value.

        Without its EMG a muscle's strength and its EMG level cannot be told apart by the
        torque: the level is learned, the strength is the model file's (its scale gets no
        gradient, so it stays nominal wherever else it is read).
        """
        params = self.subject_parameters._values(subject)
        if self.levelled:
            scale = params["max_isometric_force_scale"]
            held = torch.zeros(scale.shape[-1], dtype=torch.bool, device=scale.device)
            held[self.levelled] = True
            params["max_isometric_force_scale"] = torch.where(held, torch.ones_like(scale), scale)
        return params

    def forward(
        self, features, angle=None, velocity=None, subject=None, emg_override=None, with_level=None
    ):
        """EMG ``(B, T, M)`` and muscle torque ``(B, T)`` (N·m); the EMG alone without ``angle``.

        With ``levelled`` muscles, training's outputs are three: the network's EMG without
        the subjects' level (what the data, synergy and effort terms shape), the torque, and
        the EMG with the level that drove the muscles (its effort opposes the level the torque
        asks for; :class:`NMMLoss`). Without ``angle`` the EMG has the level, except in the
        rows where ``with_level`` ``(B,)`` (bool) is False: the network's own EMG there.

        ``subject`` ``(B,)`` indexes the subject parameters (-1: the population); when they
        hold codes, the network's EMG is conditioned on the subject's code (the population's,
        0, when ``subject`` is None). ``emg_override`` (``(B, T, M)``, NaN where absent) is
        measured EMG; with ``drive`` "measured" it replaces the network's EMG in the physics
        chain, with "both" the torque of both drives is returned stacked ``(2, B, T)``
        (measured first).
        """
        logits, offset = self._logits(features, subject)
        emg = torch.sigmoid(logits + offset)
        if angle is None:
            if with_level is None or not self.levelled:
                return emg
            own = torch.sigmoid(logits - self.level_shift.to(logits))
            return torch.where(with_level.bool()[:, None, None], emg, own)
        detached = self.physics_trains == "parameters"  # the level still trained, not the shape
        drive = torch.sigmoid(logits.detach() + offset) if detached else emg
        if emg_override is None or self.drive == "predicted":
            torque = self.torque(drive, angle, velocity, subject)
        else:
            measured = torch.where(torch.isnan(emg_override), drive, emg_override.to(emg.dtype))
            torque = self.torque(measured, angle, velocity, subject)
            if self.drive == "both":
                torque = torch.stack([torque, self.torque(drive, angle, velocity, subject)])
        if self.levelled:  # the network's own EMG for its loss terms, the levelled for the effort
            return torch.sigmoid(logits - self.level_shift.to(logits)), torque, drive
        return emg, torque

    def center_codes(self) -> None:
        """Shift the subjects' codes to mean 0, changing the network so no EMG changes.

        Every subject's EMG stays as it was (up to float rounding): code 0, the population's,
        becomes the fitted subjects' mean code.

        With the network's modulation ``e * (1 + S c) + T c + o`` of the embedded steps
        ``e = W x + b`` and the mean code ``m``, the gain ``g = 1 + S m`` goes into ``W``,
        ``b`` (and out of ``S``), ``T m`` into the offset ``o``. Left as they are (rare) where
        a gain is near 0.
        """
        params, network = self.subject_parameters, self.network
        if not params.code_dim:
            return
        with torch.no_grad():
            mean = params.code.mean(dim=0)
            weight = network.condition.weight  # (2 d_model, code_dim): T, then S
            d = network.embed.bias.shape[0]
            mean = mean.to(weight)
            shift, gain = weight[:d] @ mean, 1 + weight[d:] @ mean
            if bool((gain.abs() < 0.1).any()):
                return
            network.embed.weight.mul_(gain[:, None])
            network.embed.bias.mul_(gain)
            weight[d:] /= gain[:, None]
            network.code_offset += shift
            params.code -= mean.to(params.code)

    def emg(self, features, subject=None):
        """The network's EMG ``(B, T, M)``.

        Conditioned on the subjects' codes when there are codes and ``subject`` is given, and
        with the subjects' EMG level on the ``levelled`` muscles.
        """
        logits, offset = self._logits(features, subject)
        return torch.sigmoid(logits + offset)

    def _logits(self, features, subject):
        """The network's logits and the subjects' level offsets ``(B, 1, M)`` (or 0)."""
        if subject is None:
            return self.network.logits(features), 0.0
        logits = self.network.logits(features, self.subject_parameters._codes(subject))
        offset = self.level_offset(subject)
        return logits, 0.0 if offset is None else offset.to(logits.dtype).unsqueeze(1)

    def level_offset(self, subject) -> torch.Tensor | None:
        """The subjects' EMG level per muscle ``(B, M)`` (float64), 0 on muscles not levelled.

        None without levelled muscles. ``subject`` -1: the population's (0, or the fitted
        subjects' mean after :meth:`center_levels`, which moves it into the network).
        """
        if not self.levelled:
            return None
        level = self.subject_parameters._values(subject)["emg_level"]
        mask = torch.zeros(level.shape[-1], dtype=level.dtype, device=level.device)
        mask[self.levelled] = 1.0
        return level * mask

    def parameter_table(self, subjects: list | None = None) -> list[dict]:
        """The subjects' learned parameters, one row each (``SubjectParameters.table``).

        Without the parameters the model does not use: the EMG level of a muscle that is not
        ``levelled`` and the strength of one that is (held nominal): 32 per subject for the
        7-muscle elbow either way (with ``curve_parameters``, 53).
        """
        rows = self.subject_parameters.table(subjects)
        levelled = {self.subject_parameters.muscles[j] for j in self.levelled}
        return [
            row
            for row in rows
            if not (row["parameter"] == "emg_level" and row["muscle"] not in levelled)
            and not (row["parameter"] == "max_isometric_force_scale" and row["muscle"] in levelled)
        ]

    def center_levels(self) -> None:
        """Shift the subjects' EMG levels to mean 0, into the network's output bias.

        Every subject's EMG stays as it was (up to float rounding) and the population (a
        subject not seen, the mean subject) gets the fitted subjects' mean level, kept in
        ``level_shift`` (the network alone subtracts it). Left as it is where a shifted level
        would leave its bounds.
        """
        if not self.levelled:
            return
        params = self.subject_parameters
        spec = next(s for s in params.specs if s.name == "emg_level")
        with torch.no_grad():
            theta = params.unconstrained["emg_level"]
            level = spec.lower + (spec.upper - spec.lower) * torch.sigmoid(theta)
            for j in self.levelled:
                shifted = level[:, j] - level[:, j].mean()
                if bool((shifted <= spec.lower).any() or (shifted >= spec.upper).any()):
                    continue
                self.network.head.bias[j] += float(level[:, j].mean())
                self.level_shift[j] += float(level[:, j].mean())
                theta[:, j] = torch.logit((shifted - spec.lower) / (spec.upper - spec.lower))

    def torque(self, emg, angle, velocity, subject):
        """Muscle torque (N·m) driven by ``emg`` through the subject's physics (unchecked)."""
        activation, params = self.activation(emg, subject)
        return self.physics._joint_torque(activation, angle.double(), velocity.double(), params)


class NMMLoss(nn.Module):
    """The NMM's training loss: a weighted sum of seven terms.

    ``data_weight`` x the MSE of the EMG on the measured channels (NaN targets are left out)
    + ``physics_weight`` x the squared torque residual against inverse dynamics, divided by
    ``torque_scale`` (N·m) + ``effort_weight`` x the mean squared EMG of the never-measured
    muscles + ``smoothness_weight`` x the mean squared step-to-step change of the EMG +
    ``synergy_weight`` x :meth:`synergy` + ``synergist_weight`` x :meth:`synergist` of the
    network's EMG + ``synergist_level_weight`` x :meth:`synergist` (``ratio=True``) of the
    levelled EMG that drove the muscles, where the module has one (its third output).

    The target is a dict: ``emg`` ``(B, T, M)`` (NaN where not measured) and ``torque``
    ``(B, T)``, the inverse-dynamics torque (N·m). The predicted torque may be ``(B, T)`` or,
    for two drives, ``(2, B, T)`` (the mean over both). The first ``burn_in`` steps of each
    window are left out of the torque term (activation dynamics start from a steady state
    there). The seven terms of the last call are kept in ``terms``.

    Examples
    --------
    >>> import torch
    >>> loss = NMMLoss(physics_weight=1.0, torque_scale=2.0, burn_in=0)
    >>> emg = torch.full((1, 4, 2), 0.5)
    >>> target = {"emg": torch.full((1, 4, 2), 0.5), "torque": torch.zeros(1, 4)}
    >>> float(loss((emg, torch.ones(1, 4)), target))  # (1 / 2)² from the physics term
    0.25
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
        synergy_weight=1.0,
        ridge=1e-3,
        synergist_weight=0.0,
        synergists=None,
        synergist_offset=0.0,
        synergist_level_weight=0.0,
    ) -> None:
        super().__init__()
        self.synergy_weight = synergy_weight
        self.synergist_weight = synergist_weight
        self.synergist_level_weight = synergist_level_weight
        self.synergist_offset = float(synergist_offset)
        self.synergists = {int(u): [int(j) for j in g] for u, g in dict(synergists or {}).items()}
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
        """The weighted loss of ``y_pred`` ``(emg, torque)`` against the target dict.

        A third output (the levelled EMG that drove the muscles,
        :class:`NeuralMusculoskeletalModule`) adds its unmeasured muscles' mean square to the
        effort term and is what the synergist level term holds to the synergists.
        """
        emg, torque, *levelled = y_pred
        target, tau_id = y_true["emg"], y_true["torque"]
        measured = ~torch.isnan(target)
        error = (emg - torch.nan_to_num(target)) ** 2 * measured
        data = error.sum() / measured.sum().clamp(min=1)
        residual = (torque - tau_id.to(torque.dtype)) / self.torque_scale
        physics = (residual[..., self.burn_in :] ** 2).mean()
        effort = (emg[..., self.unmeasured] ** 2).mean() if self.unmeasured else emg.sum() * 0
        if levelled and self.unmeasured:
            effort = effort + (levelled[0][..., self.unmeasured] ** 2).mean().to(effort.dtype)
        # squared step-to-step change of the EMG (envelopes are slow)
        smoothness = (torch.diff(emg, dim=1) ** 2).mean()
        synergy = self.synergy(emg, target)
        synergist = self.synergist(emg, target)
        synergist_level = (
            self.synergist(levelled[0].to(emg.dtype), target, ratio=True)
            if levelled
            else emg.sum() * 0
        )
        self.terms = {
            "data_loss": data,
            "physics_loss": physics,
            "effort_loss": effort,
            "smoothness_loss": smoothness,
            "synergy_loss": synergy,
            "synergist_loss": synergist,
            "synergist_level_loss": synergist_level,
        }
        return (
            self.data_weight * data
            + self.physics_weight * physics
            + self.effort_weight * effort
            + self.smoothness_weight * smoothness
            + self.synergy_weight * synergy
            + self.synergist_weight * synergist
            + self.synergist_level_weight * synergist_level
        )

    def synergist(self, emg, target, ratio: bool = False):
        """Squared gap between a muscle's mean EMG and its measured synergists' mean EMG.

        For each muscle without EMG with synergists in ``synergists`` (the measured muscles
        that act on the joint as it does, :func:`deepemg.training.synergists`), per window:
        ``(mean_t e_u - mean_{t, s} e_s)²``, the network's EMG of the muscle against the
        measured EMG of its synergists, averaged over the windows where they are all
        measured and over the muscles; with a ``synergist_offset`` (logits: an ensemble
        member's ``deep_start``) the synergists' level is moved to ``sigmoid(logit(level) +
        offset)``, how far that member believes the deep level lies from theirs. It sets the
        level the torque cannot: the co-contraction of a deep antagonist, and the share of a
        deep agonist (muscles of one action share their neural drive; CEINMS gives an
        unmeasured muscle a measured synergist's excitation). 0 without such muscles.

        ``ratio=True``: the gap of the means' logarithms, ``(ln(mean_t e_u + ε) -
        ln(level + ε))²`` with ε = :data:`RATIO_FLOOR`, which holds a muscle at 0.04 as firmly
        as one at 0.4 (the term ``synergist_level_weight`` puts on the EMG with the subjects'
        level, the level the torque trains).
        """
        gaps = []
        for muscle, group in self.synergists.items():
            surface = target[..., group]
            complete = (~torch.isnan(surface).flatten(1).any(dim=1)).to(emg.dtype)  # (B,)
            level = torch.nan_to_num(surface).flatten(1).mean(dim=1).to(emg.dtype)
            if self.synergist_offset:
                level = torch.logit(level.clamp(1e-4, 1 - 1e-4)) + self.synergist_offset
                level = torch.sigmoid(level)
            mean = emg[..., muscle].mean(dim=1)
            if ratio:
                gap = (torch.log(mean + RATIO_FLOOR) - torch.log(level + RATIO_FLOOR)) ** 2
            else:
                gap = (mean - level) ** 2
            gaps.append((gap * complete).sum() / complete.sum().clamp(min=1))
        return torch.stack(gaps).mean() if gaps else emg.sum() * 0

    def synergy(self, emg, target):
        """Share of the unmeasured muscles' EMG outside the span of the measured EMG.

        In each window, the unmeasured muscles' predicted EMG ``D`` (T, U) is projected on the
        measured EMG ``S`` (T, K) by ridge least squares, ``P = S (S'S + ridge I)^-1 S'``; the
        term is ``||(I - P) D||² / ||D||²``: 0 when the deep muscles move as a combination of
        the surface muscles (the synergy hypothesis of muscle synergy extrapolation), 1 when
        they share nothing with them. Windows without measured EMG are left out (weighted 0,
        not dropped, so that no count is read back to the host: the term is 0 without any).
        """
        surface = [j for j in range(target.shape[-1]) if j not in self.unmeasured]
        if not self.unmeasured or not surface:
            return emg.sum() * 0
        measured = ~torch.isnan(target).any(dim=1)  # (B, M): measured over the whole window
        complete = measured[:, surface].all(dim=1).to(emg.dtype)[:, None, None]
        S = torch.nan_to_num(target[..., surface]).to(emg.dtype)
        D = emg[..., self.unmeasured]
        gram = S.transpose(1, 2) @ S
        eye = torch.eye(len(surface), dtype=emg.dtype, device=emg.device)
        gram = gram + self.ridge * eye * S.shape[1]
        coefficients = torch.linalg.solve_ex(gram, S.transpose(1, 2) @ D).result  # no sync
        residual = D - S @ coefficients
        return (residual**2 * complete).sum() / (D**2 * complete).sum().clamp(min=1e-12)


class NMMNet(NeuralNet):
    """skorch net that adds a subject-parameter prior, logs each loss term, passes on Ctrl-C.

    It adds a prior on the subject parameters, logs each loss term, and lets Ctrl-C reach the
    caller.

    The prior pulls the unconstrained subject parameters towards their nominal values
    (``prior_weight`` x mean squared deviation) and the subject codes, if any, towards 0.
    Every term goes to the batch history as ``train_data_loss`` ... (``valid_`` for
    validation batches), averaged per epoch by ``PassthroughScoring`` callbacks. skorch ends
    training quietly on ``KeyboardInterrupt`` and returns a half-trained net; this net
    re-raises it after skorch's ``on_train_end``, so an interrupted fit is never taken for a
    finished one.
    """

    write_checkpoint_ = None
    """While an :class:`~deepemg.NMMRegressor`'s ``fit`` trains this net, the function that
    writes that estimator as it stands, ``write_checkpoint_(net, path)`` (None otherwise): what
    :class:`NMMCheckpoint` calls (:func:`deepemg.persistence.save_checkpoint`)."""

    def __init__(self, *args, prior_weight: float = 1e-3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prior_weight = prior_weight

    def fit_loop(self, X, y=None, **fit_params):
        """Run skorch's fit loop, keeping a ``KeyboardInterrupt`` to re-raise after it."""
        try:
            return super().fit_loop(X, y, **fit_params)
        except KeyboardInterrupt as interrupt:
            self._interrupt = interrupt
            raise

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Run skorch's ``partial_fit``, then raise the ``KeyboardInterrupt`` it swallowed."""
        self._interrupt = None
        super().partial_fit(X, y, classes, **fit_params)
        interrupt, self._interrupt = self._interrupt, None
        if interrupt is not None:
            raise interrupt
        return self

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The criterion's loss plus the weighted prior; each term recorded for the batch.

        The terms go to the batch history as detached tensors (no host read per batch);
        :meth:`on_epoch_end` turns them into floats, all at once, before any callback reads
        them.
        """
        y_true = to_tensor(y_true, device=self.device)  # the target dict, where the module is
        loss = self.criterion_(y_pred, y_true)
        prior = self.module_.subject_parameters.prior()
        prefix = "train_" if training else "valid_"
        for name, value in {**self.criterion_.terms, "prior_loss": prior}.items():
            self.history.record_batch(prefix + name, value.detach())
        return loss + self.prior_weight * prior

    def on_epoch_end(self, net, **kwargs) -> None:
        """Turn this epoch's batch loss terms into floats (one host read), then skorch's."""
        _terms_to_floats(self.history)
        super().on_epoch_end(net, **kwargs)

    def on_train_end(self, net, **kwargs) -> None:
        """As :meth:`on_epoch_end`, for an epoch cut short (Ctrl-C)."""
        _terms_to_floats(self.history)
        super().on_train_end(net, **kwargs)


def _terms_to_floats(history) -> None:
    """Replace the tensors in the last epoch's batch records by floats, read in one go."""
    if not len(history):
        return
    places = [
        (batch, key)
        for batch in history[-1].get("batches", ())
        for key, value in batch.items()
        if torch.is_tensor(value)
    ]
    if not places:
        return
    values = torch.stack([batch[key].to(torch.float64) for batch, key in places]).tolist()
    for (batch, key), value in zip(places, values, strict=True):
        batch[key] = value


class NMMCheckpoint(Callback):
    """skorch callback that writes the :class:`~deepemg.NMMRegressor` being fitted to a file.

    It writes a deepemg model file during ``fit``.

    Pass it in ``NMMRegressor(callbacks=[NMMCheckpoint("fit.deepemg")])``. At the end of each
    epoch that ``monitor`` selects, the estimator as ``fit`` would leave it if training ended
    there (this epoch's weights, the subject parameters with their codes centred, the history
    so far, the first fit's input standardisation) is written to ``path`` by
    :func:`deepemg.persistence.save_model`: deepemg's own zip format, no pickle, written to a
    temporary file beside ``path`` and moved into place, so ``path`` always holds a complete
    model (the previous checkpoint until the next one is whole). Read it with
    :meth:`NMMRegressor.load <deepemg.NMMRegressor.load>`, which treats it as untrusted input
    like any model file; continue training it with ``warm_start=True``.

    A checkpoint that cannot be written (a full disk, a model built in memory) fails the fit,
    which then leaves the estimator as it was: a fit never runs on believing it is saved.
    ``personalize`` takes no callbacks. In an ensemble (``n_members >= 2``) each member writes
    its own file, ``<stem>.member<k><suffix>`` beside ``path`` (``fit.member0.deepemg``, ...),
    each a single network; save the fitted ensemble itself with ``save``.

    Parameters
    ----------
    path : str or path
        The model file (``.deepemg`` by convention), replaced at each checkpoint; its folder
        must exist.
    monitor : str, callable or None, default=None
        When to write. None: every epoch, so the file holds the last one (what a fit cut
        short had reached). The name of a boolean column of the history: ``"train_loss_best"``
        (the file holds the epoch of lowest training loss so far) or, with
        ``early_stopping=True``, ``"valid_loss_best"`` (lowest held-out loss); in a
        ``warm_start`` fit, best among its own epochs. A function of the net returning a bool.

    Attributes
    ----------
    saved_epochs_ : list of int
        The epochs (``history_``'s ``epoch``) written, in the fitted net's callback
        (``dict(nmm.net_.callbacks_)["NMMCheckpoint"]``, or the name you gave it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=1, n_trials=2, duration=1.0, random_state=0,
    ...                           progress=False, cache=False)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "fit.deepemg"
    >>> nmm = NMMRegressor(max_epochs=2, window=50, random_state=0,
    ...                    callbacks=[NMMCheckpoint(path)]).fit(data.X, data.y)
    >>> len(NMMRegressor.load(path).history_)  # the last epoch's estimator
    2
    """

    def __init__(self, path, monitor=None) -> None:
        self.path = path
        self.monitor = monitor

    def initialize(self):
        """Start with no epoch saved."""
        self.saved_epochs_ = []
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        """Refuse, before any epoch, a net of no estimator, a missing folder, a bad monitor."""
        if getattr(net, "write_checkpoint_", None) is None:
            raise TypeError(
                "NMMCheckpoint writes the model file of an NMMRegressor's fit: pass it in "
                "NMMRegressor(callbacks=[...]) (this net trains no NMMRegressor; personalize "
                "takes no callbacks)."
            )
        folder = Path(self.path).parent
        if not folder.is_dir():
            raise FileNotFoundError(
                f"NMMCheckpoint: no folder {folder} to write {Path(self.path).name} in; "
                "create it first."
            )
        if not (self.monitor is None or isinstance(self.monitor, str) or callable(self.monitor)):
            raise TypeError(
                f"NMMCheckpoint's monitor must be None, a history column's name (such as "
                f"'train_loss_best') or a function of the net, got {self.monitor!r}."
            )

    def on_epoch_end(self, net, **kwargs) -> None:
        """Write the estimator when ``monitor`` selects this epoch."""
        if self.monitor is None:
            due = True
        elif callable(self.monitor):
            due = bool(self.monitor(net))
        else:
            try:
                due = bool(net.history[-1, self.monitor])
            except KeyError:
                raise ValueError(
                    f"NMMCheckpoint's monitor {self.monitor!r} is no column of the history "
                    f"(this epoch has {sorted(net.history[-1])}); use 'train_loss_best', or "
                    "'valid_loss_best' with early_stopping=True."
                ) from None
        if due:
            net.write_checkpoint_(net, self.path)
            self.saved_epochs_.append(int(net.history[-1, "epoch"]))

    def for_member(self, k: int) -> NMMCheckpoint:
        """A copy writing ensemble member ``k``'s file, ``<stem>.member<k><suffix>``."""
        path = Path(self.path)
        member = clone(self)
        member.path = path.with_name(f"{path.stem}.member{int(k)}{path.suffix}")
        return member
