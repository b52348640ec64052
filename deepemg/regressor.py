"""``NMMRegressor``: the neural musculoskeletal model as a scikit-learn estimator."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EarlyStopping, LRScheduler, PassthroughScoring, ProgressBar
from skorch.dataset import ValidSplit

from .network import EMGTransformer
from .nmm_module import NeuralMusculoskeletalModule, NMMLoss, NMMNet
from .physics import MusculoskeletalModel, SubjectParameters
from .validation import (
    INPUT_CHANNELS,
    TORQUE_CHANNEL,
    channel_names,
    check_sequences,
    measured_r2,
    torque_target,
)
from .windows import from_windows, to_windows, window_starts

__all__ = ["NMMRegressor"]

_TERMS = (
    "data_loss",
    "physics_loss",
    "effort_loss",
    "smoothness_loss",
    "synergy_loss",
    "prior_loss",
)


class NMMRegressor(RegressorMixin, BaseEstimator):
    """Deep-muscle EMG from kinematics and load, with a physics-integrated Transformer.

    A Transformer encoder reads the standardised joint angle, velocity, acceleration and load
    over windows of ``window`` steps and predicts the EMG envelope of every muscle. The
    predicted EMG drives a differentiable, subject-personalised Hill-type model
    (:class:`deepemg.physics.MusculoskeletalModel`: activation dynamics, muscles, moment arms) to
    joint torque. Training minimises ``data_weight`` x the MSE on the measured (non-NaN) EMG
    channels + ``physics_weight`` x the squared torque residual against inverse dynamics
    (normalised by the training torque's SD) + ``effort_weight`` x the mean squared EMG of
    muscles never measured + a weak prior on the subject parameters, learning the network and
    32 bounded physiological parameters per subject together.

    Parameters
    ----------
    model : "elbow", path to an .osim file, or MusculoskeletalModel, default="elbow"
        The musculoskeletal model.
    coordinate : str, default="r_elbow_flex"
        Coordinate of an OpenSim model file.
    locked : dict, optional
        Values (rad) of other coordinates of an OpenSim model file.
    channels : sequence of str, optional
        Names of ``X``'s channels (last axis); default :data:`deepemg.ELBOW_CHANNELS`. ``X``
        must have ``elbow_angle`` (rad), ``elbow_velocity`` (rad/s), ``elbow_acceleration``
        (rad/s²) and ``load_mass`` (kg); ``elbow_torque`` (N·m) is used when present, else
        computed by the model's inverse dynamics.
    rate : float, default=100.0
        Sampling rate (Hz).
    d_model, n_heads, n_layers : int, default=32, 4, 2
        Transformer width, heads and layers.
    dropout : float, default=0.1
        Transformer dropout.
    window : int, default=100
        Window length (steps) the Transformer sees.
    overlap : float, default=0.5
        Overlap of consecutive training windows, in [0, 1).
    predict_overlap : float, default=0.25
        Overlap of the windows ``predict`` averages (edges blended); 0.5 costs 1.5x as much,
        0 is 1.3x faster with possible steps at window edges.
    data_weight, physics_weight, effort_weight : float, default=1.0, 1.0, 0.1
        Weights of the loss terms.
    physics_drive : {"predicted", "measured", "both"}, default="measured"
        What drives the muscle model during training: the network's EMG for every muscle;
        the measured EMG where ``y`` has it (and the network's EMG elsewhere), so the torque
        residual is attributed to the unmeasured muscles only; or both (the torque term is
        the mean of the two residuals). Prediction always uses the network's EMG.
    smoothness_weight : float, default=0.0
        Weight of the mean squared step-to-step change of the predicted EMG.
    synergy_weight : float, default=1.0
        Weight of the synergy term: the share of the unmeasured muscles' predicted EMG that
        lies outside the span of the measured EMG in each training window (the hypothesis of
        muscle synergy extrapolation, as a soft constraint on training only; prediction needs
        no EMG).
    prior_weight : float, default=1e-3
        Weight of the prior on the subject parameters.
    max_epochs : int, default=60
        Training epochs.
    batch_size : int, default=8
        Windows per batch.
    lr : float, default=3e-3
        Adam learning rate (cosine-annealed to 0 over ``max_epochs``).
    weight_decay : float, default=1e-4
        AdamW weight decay of the network.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the windows and stop when their loss has not
        improved for ``patience`` epochs.
    validation_fraction : float, default=0.1
    patience : int, default=10
    progress_bar : bool, default=False
        Show skorch's progress bar.
    verbose : int, default=0
        Print skorch's epoch table when > 0.
    random_state : int or None, default=None
        Seed for initialisation and shuffling (in a forked torch RNG: the global RNG is left
        untouched).

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained net; ``net_.history`` has ``train_loss`` and each term
        (``train_data_loss``, ``train_physics_loss``, ``train_effort_loss``,
        ``train_prior_loss``).
    physics_ : MusculoskeletalModel
    muscles_ : list of str
        Muscle order of ``y`` and of ``predict``'s output.
    subjects_ : ndarray
        Subjects seen in ``fit`` (and added by ``personalize``).
    subject_params_ : list of dict
        Subject parameters in physical units, one row per subject, parameter and muscle.

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=1, n_trials=3, duration=2.0, random_state=0,
    ...                           progress=False, cache=False)
    >>> nmm = NMMRegressor(max_epochs=2, window=50, random_state=0)
    >>> nmm.fit(data.X, data.y, subject_ids=data.groups).predict(data.X).shape
    (3, 200, 7)
    """

    def __init__(
        self,
        model="elbow",
        coordinate="r_elbow_flex",
        locked=None,
        channels=None,
        rate=100.0,
        d_model=32,
        n_heads=4,
        n_layers=2,
        dropout=0.1,
        window=100,
        overlap=0.5,
        predict_overlap=0.25,
        data_weight=1.0,
        physics_weight=1.0,
        physics_drive="measured",
        effort_weight=0.1,
        smoothness_weight=0.0,
        synergy_weight=1.0,
        prior_weight=1e-3,
        max_epochs=60,
        batch_size=8,
        lr=3e-3,
        weight_decay=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        patience=10,
        progress_bar=False,
        verbose=0,
        random_state=None,
    ):
        self.model = model
        self.coordinate = coordinate
        self.locked = locked
        self.channels = channels
        self.rate = rate
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.dropout = dropout
        self.window = window
        self.overlap = overlap
        self.predict_overlap = predict_overlap
        self.data_weight = data_weight
        self.physics_weight = physics_weight
        self.physics_drive = physics_drive
        self.effort_weight = effort_weight
        self.smoothness_weight = smoothness_weight
        self.synergy_weight = synergy_weight
        self.prior_weight = prior_weight
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.progress_bar = progress_bar
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ input checks
    def _channel_names(self) -> list[str]:
        return channel_names(self.channels)

    def _check_X(self, X, reset: bool) -> np.ndarray:
        names = self._channel_names()
        X = check_sequences(X, names, INPUT_CHANNELS)
        if X.shape[1] < int(self.window):
            raise ValueError(
                f"sequences have {X.shape[1]} steps, fewer than window={self.window}; use a "
                "smaller window or longer sequences."
            )
        used = [names.index(c) for c in INPUT_CHANNELS]
        if TORQUE_CHANNEL in names:
            used.append(names.index(TORQUE_CHANNEL))
        bad = ~np.isfinite(X[..., used])
        if bad.any():
            s, t, c = np.argwhere(bad)[0]
            raise ValueError(
                f"X holds NaN or infinite values in channel '{names[used[c]]}' (first at sequence "
                f"{s}, step {t}); interpolate or drop them."
            )
        if not reset and hasattr(self, "n_channels_") and X.shape[2] != self.n_channels_:
            raise ValueError(f"X has {X.shape[2]} channels; fit saw {self.n_channels_}.")
        return X

    def _check_y(self, y, X) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        expected = X.shape[:2] + (self.physics_.n_muscles,)
        if y.shape != expected:
            raise ValueError(
                f"y must be shaped (n_sequences, n_timesteps, n_muscles) = {expected} with one "
                f"column per muscle {self.physics_.muscles} (NaN where not measured), got "
                f"{y.shape}."
            )
        if np.isinf(y).any():
            raise ValueError("y holds infinite values; use NaN for channels not measured.")
        if np.nanmin(y, initial=0.0) < 0 or np.nanmax(y, initial=0.0) > 1.5:
            raise ValueError("y must hold EMG envelopes normalised to about 0..1.")
        return y

    def _subject_index(self, subject_ids, n: int, known=None) -> np.ndarray:
        known = list(self.subjects_ if known is None else known)
        if subject_ids is None:
            return np.full(n, -1 if len(known) > 1 else 0)
        subject_ids = np.asarray(subject_ids)
        if subject_ids.shape != (n,):
            raise ValueError(
                f"subject_ids needs one label per sequence ({n}), got {subject_ids.shape}."
            )
        unknown = sorted(set(subject_ids.tolist()) - set(known))
        if unknown:
            raise ValueError(
                f"subjects {unknown} were not seen in fit (known: {known}). Call "
                "personalize(X, subject_ids=...) for them first, or pass subject_ids=None for "
                "population parameters."
            )
        return np.array([known.index(s) for s in subject_ids.tolist()])

    # ------------------------------------------------------------------ arrays for the module
    def _inputs(self, X):
        names = self._channel_names()
        raw = X[..., [names.index(c) for c in INPUT_CHANNELS]]
        features = (raw - self.feature_mean_) / self.feature_std_
        return features, raw[..., 0], raw[..., 1]

    def _torque(self, X) -> np.ndarray:
        return torque_target(X, self._channel_names(), self.physics_)

    def _windowed(self, X, subject_index, y=None):
        features, angle, velocity = self._inputs(X)
        starts = window_starts(X.shape[1], int(self.window), float(self.overlap))
        w = int(self.window)
        data = {
            "features": to_windows(features, starts, w).astype(np.float32),
            "angle": to_windows(angle, starts, w),
            "velocity": to_windows(velocity, starts, w),
            "subject": np.repeat(subject_index, len(starts)).astype(np.int64),
        }
        target = None
        if y is not None:
            target = np.concatenate([y, self._torque(X)[..., None]], axis=-1)
            target = to_windows(target, starts, w).astype(np.float32)
        return data, target, starts

    def _callbacks(self):
        callbacks = [
            (f"train_{t}", PassthroughScoring(name=f"train_{t}", on_train=True)) for t in _TERMS
        ]
        callbacks.append(
            (
                "lr_scheduler",
                LRScheduler(
                    policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=max(self.max_epochs, 1)
                ),
            )
        )
        if self.early_stopping:
            callbacks += [(f"valid_{t}", PassthroughScoring(name=f"valid_{t}")) for t in _TERMS]
            callbacks.append(
                ("early_stopping", EarlyStopping(patience=self.patience, load_best=True))
            )
        if self.progress_bar:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, subject_ids=None):
        """Fit the network and the subject parameters.

        Parameters
        ----------
        X : array of shape (n_sequences, n_timesteps, n_channels)
        y : array of shape (n_sequences, n_timesteps, n_muscles)
            EMG envelopes (0..1) in the model's muscle order; NaN where not measured.
        subject_ids : array of shape (n_sequences,), optional
            Subject of each sequence (one set of parameters each); all one subject when None.

        Returns
        -------
        self
        """
        if y is None:
            raise ValueError(
                "NMMRegressor requires y to be passed, but the target y is None: "
                "give the EMG envelopes (NaN for muscles not measured)."
            )
        X = self._check_X(X, reset=True)
        self.physics_ = MusculoskeletalModel.resolve(self.model, self.coordinate, self.locked)
        self.muscles_ = list(self.physics_.muscles)
        y = self._check_y(y, X)
        self.n_channels_ = X.shape[2]
        labels = (
            np.asarray(subject_ids) if subject_ids is not None else np.zeros(X.shape[0], dtype=int)
        )
        self.subjects_ = np.unique(labels)
        subject_index = self._subject_index(labels, X.shape[0])
        names = self._channel_names()
        raw = X[..., [names.index(c) for c in INPUT_CHANNELS]].reshape(-1, len(INPUT_CHANNELS))
        self.feature_mean_ = raw.mean(axis=0)
        std = raw.std(axis=0)
        self.feature_std_ = np.where(std > 1e-8, std, 1.0)
        torque = self._torque(X)
        unmeasured = [j for j in range(y.shape[2]) if np.isnan(y[..., j]).all()]
        data, target, _ = self._windowed(X, subject_index, y)
        if self.physics_drive not in ("predicted", "measured", "both"):
            raise ValueError(
                'physics_drive must be "predicted", "measured" or "both", got '
                f"{self.physics_drive!r}."
            )
        if self.physics_drive != "predicted":
            data["emg_override"] = target[..., :-1]

        seed = (
            self.random_state
            if self.random_state is not None
            else int(np.random.SeedSequence().generate_state(1)[0])
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            network = EMGTransformer(
                len(INPUT_CHANNELS),
                self.physics_.n_muscles,
                self.d_model,
                self.n_heads,
                self.n_layers,
                self.dropout,
            )
            subject_parameters = SubjectParameters(len(self.subjects_), self.muscles_)
            module = NeuralMusculoskeletalModule(
                network, self.physics_, subject_parameters, self.rate
            )
            module.both_drives = self.physics_drive == "both"
            self.net_ = NMMNet(
                module=module,
                criterion=NMMLoss,
                criterion__data_weight=self.data_weight,
                criterion__physics_weight=self.physics_weight,
                criterion__effort_weight=self.effort_weight,
                criterion__smoothness_weight=self.smoothness_weight,
                criterion__synergy_weight=self.synergy_weight,
                criterion__torque_scale=float(max(torque.std(), 1e-3)),
                criterion__burn_in=min(10, int(self.window) // 4),
                criterion__unmeasured=unmeasured,
                prior_weight=self.prior_weight,
                optimizer=torch.optim.AdamW,
                optimizer__weight_decay=self.weight_decay,
                # the subject parameters: no decay (it would pull them to mid-range), faster
                optimizer__param_groups=[
                    ("subject_parameters.*", {"weight_decay": 0.0, "lr": 10 * self.lr})
                ],
                lr=self.lr,
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                iterator_train__shuffle=True,
                train_split=(
                    ValidSplit(self.validation_fraction, random_state=int(seed) % 2**31)
                    if self.early_stopping
                    else None
                ),
                callbacks=self._callbacks(),
                verbose=self.verbose,
                device="cpu",
            )
            self.net_.fit(data, target)
        self.history_ = self.net_.history
        return self

    # ------------------------------------------------------------------ predictions
    @property
    def subject_params_(self) -> list[dict]:
        check_is_fitted(self, "net_")
        return self.net_.module_.subject_parameters.table(list(self.subjects_))

    def predict(self, X, subject_ids=None):
        """EMG envelope of every muscle, ``(n_sequences, n_timesteps, n_muscles)``, float64.

        The network needs only kinematics and load, so the EMG does not depend on the
        subject; ``subject_ids`` is accepted for symmetry with the other methods.
        """
        check_is_fitted(self, "net_")
        X = self._check_X(X, reset=False)
        features, _, _ = self._inputs(X)
        starts = window_starts(X.shape[1], int(self.window), float(self.predict_overlap))
        windows = torch.tensor(to_windows(features, starts, int(self.window)), dtype=torch.float32)
        network = self.net_.module_.network
        network.eval()
        with torch.inference_mode():
            out = torch.cat([network(b) for b in torch.split(windows, 512)]).numpy()
        return from_windows(out.astype(np.float64), starts, X.shape[1])

    def predict_activation(self, X, subject_ids=None):
        """Muscle activation from the predicted EMG through the subject's activation dynamics.

        ``subject_ids``: subjects seen in fit or personalised; None gives population (nominal)
        parameters when several subjects were fit.
        """
        check_is_fitted(self, "net_")
        X = self._check_X(X, reset=False)
        index = self._subject_index(subject_ids, X.shape[0])
        emg = self.predict(X)
        module = self.net_.module_
        with torch.no_grad():
            activation, _ = module.activation(torch.tensor(emg), torch.tensor(index))
        return activation.numpy()

    def predict_torque(self, X, subject_ids=None):
        """Joint torque (N·m) of the muscles driven by the predicted EMG, ``(n, n_timesteps)``."""
        X = self._check_X(X, reset=False)
        activation = self.predict_activation(X, subject_ids)
        index = self._subject_index(subject_ids, X.shape[0])
        _, angle, velocity = self._inputs(X)
        module = self.net_.module_
        with torch.no_grad():
            params = module.subject_parameters(torch.tensor(index))
            torque = module.physics.joint_torque(
                torch.tensor(activation), torch.tensor(angle), torch.tensor(velocity), params
            )
        return torque.numpy()

    def score(self, X, y, sample_weight=None):
        """R² of the predicted EMG over the measured (non-NaN) channels, time flattened."""
        return measured_r2(y, self.predict(X))

    # ------------------------------------------------------------------ personalisation
    def personalize(self, X, y=None, subject_ids=None, max_epochs=None, lr=2e-2):
        """Fit the parameters of subjects not seen in fit, with the network frozen.

        Uses the subject's kinematics, load and torque (physics term); where ``y`` holds
        measured surface EMG, it drives those muscles in the physics chain instead of the
        network's EMG. No deep-muscle labels are needed.

        Parameters
        ----------
        X : array (n_sequences, n_timesteps, n_channels)
        y : array (n_sequences, n_timesteps, n_muscles), optional
            Surface EMG (NaN for muscles not measured).
        subject_ids : array (n_sequences,)
            Labels of the new subjects (labels already known are refitted).
        max_epochs : int, optional
            Passes over the data; ``self.max_epochs`` by default.
        lr : float, default=0.02
            Adam learning rate for the subject parameters.

        Returns
        -------
        self
        """
        check_is_fitted(self, "net_")
        X = self._check_X(X, reset=False)
        if subject_ids is None:
            raise ValueError("personalize needs subject_ids naming the new subject(s).")
        labels = np.asarray(subject_ids)
        new = [s for s in np.unique(labels) if s not in set(self.subjects_.tolist())]
        module = self.net_.module_
        old = module.subject_parameters
        if new:
            grown = SubjectParameters(len(self.subjects_) + len(new), self.muscles_, old.specs)
            with torch.no_grad():
                for name, theta in old.unconstrained.items():
                    grown.unconstrained[name][: len(self.subjects_)] = theta
            module.subject_parameters = grown
            self.subjects_ = np.asarray(self.subjects_.tolist() + list(new))
        index = self._subject_index(labels, X.shape[0])
        override = None if y is None else self._check_y(y, X)
        data, target, _ = self._windowed(
            X,
            index,
            override
            if override is not None
            else np.full(X.shape[:2] + (len(self.muscles_),), np.nan),
        )
        if override is not None:
            data["emg_override"] = target[..., :-1]
        tensors = {k: torch.as_tensor(v) for k, v in data.items()}
        tau = torch.as_tensor(target[..., -1]).double()
        theta = list(module.subject_parameters.parameters())
        optimizer = torch.optim.Adam(theta, lr=lr)
        criterion = self.net_.criterion_
        subjects = torch.as_tensor(np.unique(index))
        module.network.eval()
        seed = 0 if self.random_state is None else int(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for _ in range(int(max_epochs or self.max_epochs)):
                order = torch.randperm(len(tau))
                for batch in torch.split(order, int(self.batch_size)):
                    optimizer.zero_grad()
                    _, torque = module(**{k: v[batch] for k, v in tensors.items()})
                    residual = (torque - tau[batch]) / criterion.torque_scale
                    loss = (residual[..., criterion.burn_in :] ** 2).mean()
                    loss = loss + self.prior_weight * module.subject_parameters.prior()
                    loss.backward()
                    # only the personalised subjects move
                    for p in theta:
                        mask = torch.zeros_like(p)
                        mask[subjects] = 1
                        p.grad *= mask
                    optimizer.step()
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
