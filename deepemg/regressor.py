"""``NMMRegressor``: the neural musculoskeletal model as a scikit-learn estimator."""

from __future__ import annotations

import copy
import os
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    LRScheduler,
    PassthroughScoring,
    ProgressBar,
)
from skorch.dataset import ValidSplit

from ._state import FittedWith, unchanged_on_failure
from .metrics import _predict_emg, _refuse_unusable_scoring
from .network import EMGTransformer
from .nmm_module import DRIVES, NeuralMusculoskeletalModule, NMMCheckpoint, NMMLoss, NMMNet
from .physics import MuscleLaw, MusculoskeletalModel, SubjectParameters
from .threads import with_own_threads
from .validation import (
    SequenceInputs,
    check_envelopes,
    check_subject_ids,
    measured_r2,
    prepare_sequences,
    saturate_envelopes,
    subject_array,
    unique_subjects,
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
_PREDICT_BATCH = 512
"""Windows per batch when predicting."""


def _seed(random_state) -> int:
    """The torch seed of a fit: ``random_state``, or a fresh one."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    return int(random_state)


def _check_muscle_law(law) -> None:
    """A name registered now (laws may be registered after import) or a MuscleLaw."""
    from .physics import MUSCLE_LAWS

    if isinstance(law, str) and law not in MUSCLE_LAWS:
        raise ValueError(
            f"muscle_law={law!r} is not a registered muscle law; the registered ones are "
            f"{sorted(MUSCLE_LAWS)} (add one with deepemg.physics.register_muscle_law)."
        )


def _check_device(device) -> torch.device:
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={device!r} is no torch device; use 'cpu' (or 'cuda' for a GPU)."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r}, but torch sees no CUDA device (torch "
            f"{torch.__version__}); use device='cpu'."
        )
    return device


def _fit_member(params: dict, seed: int, X, y, labels, keep, member=None) -> NMMRegressor:
    """One member of an ensemble, fitted on the sequences ``keep`` (a joblib task); a fitted
    ``member`` (a copy) continues its training (``warm_start``)."""
    params = {**params, "random_state": seed}
    member = NMMRegressor(**params) if member is None else member.set_params(**params)
    return member.fit(X[keep], y[keep], subject_ids=labels[keep])


def _member_callbacks(callbacks, k: int):
    """The ensemble member ``k``'s callbacks: each :class:`NMMCheckpoint` writes a file of its
    own (the others are cloned by the member's fit)."""
    if not callbacks:
        return callbacks
    out = []
    for item in callbacks:
        if isinstance(item, NMMCheckpoint):
            item = item.for_member(k)
        elif isinstance(item, tuple | list) and len(item) == 2:
            if isinstance(item[1], NMMCheckpoint):
                item = (item[0], item[1].for_member(k))
        out.append(item)
    return out


class NMMRegressor(FittedWith, RegressorMixin, BaseEstimator):
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
        Names of ``X``'s channels (last axis), named after the model's joint
        (:mod:`deepemg.channels`): ``<joint>_angle`` (rad), ``<joint>_velocity`` (rad/s),
        ``<joint>_acceleration`` (rad/s²) and ``load_mass`` (kg) are needed;
        ``<joint>_torque`` (N·m) is used when present, else computed by the model's inverse
        dynamics. The joint is ``elbow`` for the built-in model (default channels
        :data:`deepemg.ELBOW_CHANNELS`) and the coordinate for a model file (default: the
        five kinematic, load and torque channels).
    rate : float, default=100.0
        Sampling rate (Hz).
    d_model, n_heads, n_layers : int, default=32, 4, 2
        Transformer width, heads and layers.
    dropout : float, default=0.1
        Transformer dropout.
    subject_embedding : int, default=0
        Length of a learned code per subject that conditions the network (a FiLM modulation
        of every embedded step), so that the EMG depends on the subject: learned with the
        subject parameters in ``fit`` (pulled towards 0 by the prior, then centred so that
        code 0 is the fitted subjects' mean), learned from a new subject's surface EMG and
        torque by :meth:`personalize`, used by ``predict`` with ``subject_ids`` (the
        population's code 0 without). 0: the network's EMG does not depend on the subject
        (the default ``predict_physics`` still corrects it with the subject's muscle model).
        4 lowered the brachialis' NRMSE by about 10 % after ``personalize`` (its r unchanged)
        on the simulated subjects; see docs/nmm.md, "Personalised EMG".
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
        AdamW learning rate of the network (cosine-annealed to 0 over ``max_epochs``); the
        subject parameters learn at 10 x ``lr`` without weight decay.
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
    callbacks : list of skorch callbacks or (name, callback) pairs, optional
        skorch callbacks (:class:`skorch.callbacks.Callback` instances) for ``fit``'s net,
        run after deepemg's own (each loss term's scoring, the learning-rate schedule, early
        stopping, the progress bar) so that they see the whole epoch's history; a pair
        names its callback (default: its class name; deepemg's own names, such as
        ``"lr_scheduler"``, are taken). Each ``fit`` trains clones (``sklearn.base.clone``),
        so your objects are never changed and every ensemble member has its own: the fitted
        ones are in ``net_.callbacks_``, by name. A callback of yours must therefore clone:
        ``__init__`` takes only its parameters and the state it keeps ends in ``_``
        (skorch's convention; reset it in ``initialize``).
        :class:`~deepemg.nmm_module.NMMCheckpoint` writes model files during a fit.
        ``personalize`` runs without them, and ``save`` leaves them out (a loaded estimator
        has ``callbacks=None``). See docs/nmm.md, "Callbacks, fine-tuning and checkpoints".
    warm_start : bool, default=False
        When True and the estimator is fitted, ``fit`` continues training the fitted
        network and subject parameters on the new data for ``max_epochs`` more epochs
        (scikit-learn's convention, as in ``MLPRegressor``), instead of starting anew: the
        way to fine-tune a saved model on a new session (:meth:`load`, then
        ``set_params(warm_start=True)`` and ``fit``). The data must fit the fitted model:
        the same channels and muscles, and the parameters the network is built for
        (``fitted_with_``) and ``n_members`` unchanged (an error says which). Subjects
        already known continue from their fitted parameters, new ones start from nominal
        values and are added to ``subjects_``; those absent from the new data keep theirs;
        ``subject_ids=None`` means the fitted subject when there is one. The input
        standardisation (``feature_mean_``, ``feature_std_``) and ``torque_scale_`` stay
        those of the first fit, so the network reads its inputs as it learnt to. Each warm
        fit has a fresh AdamW (the same whether the estimator was fitted in this session or
        loaded) and a fresh cosine schedule from ``lr`` to 0 over its ``max_epochs``
        (a lower ``lr`` fine-tunes gently); ``dropout`` and the loss weights are the
        current ones; ``history_`` goes on (epochs numbered on). Chosen over a
        ``partial_fit``, which in scikit-learn is one pass over a mini-batch for online
        learning: fine-tuning is several epochs on a session. A fit that fails leaves the
        estimator as it was.
    n_threads : int or None, default=None
        torch and BLAS threads of each call, set for the call and restored after it
        (:mod:`deepemg.threads`). None: one for ``fit`` and ``personalize`` (as fast as two for
        a model this small, and never oversubscribing the cores when folds or ensemble members
        run in parallel or another process holds a core); for predictions, the process's torch
        thread count (large batches gain from threads; joblib and Dask workers limit it to
        their share of the cores).
    n_members : int, default=1
        Networks in a deep ensemble (members differing by seed, each trained on the subject's
        sequences but a round-robin share, in parallel). With 2 or more, ``predict`` returns
        the members' mean and ``predict(X, return_std=True)`` also its standard deviation,
        scaled so that 90 % of the held-out measured EMG lies in the 90 % band (out-of-bag
        calibration, ``uncertainty_scale_``); see docs/uncertainty.md. Costs ``n_members``
        fits (run ``n_jobs`` at a time).
    predict_physics : {"torque", "none", "emg"}, default="torque"
        Physics at prediction time. "torque" (default): the network's EMG (the prior) is
        corrected so
        that the subject's muscle model reproduces the trial's inverse-dynamics torque (known
        from ``X``): a batched optimisation of a smooth, bounded change of every muscle's EMG
        (in logit space), penalised by ``correction_weight``. "emg" (EMG-assisted, as CEINMS's
        hybrid mode with a learned prior): the surface EMG channels in ``X`` drive their
        muscles and the torque residual goes to the others. "none": the network's EMG alone
        (about 140 times faster: 161,000 against 1,160 steps/s with 2 torch threads,
        docs/results/predict_physics.txt). The default was
        chosen on the benchmark's scenarios (docs/scenarios.md): "torque" raised the
        brachialis' r within subject from 0.874 to 0.935 on the default subjects, 0.765 to
        0.864 with other motions, 0.713 to 0.851 with ballistic motions and other strategies,
        and changed it by at most 0.015 where the truth's muscles are compliant Thelen
        muscles. See docs/nmm.md for what each costs and gives.
    correction_weight : float, default=0.1
        Weight of the squared change (logit space) and of its step-to-step change against the
        normalised torque residual in the prediction-time correction.
    correction_steps : int, default=100
        Adam steps of the prediction-time correction.
    muscle_law : str or MuscleLaw, default="rigid_tendon_degroote_fregly"
        The muscle force law of the physics: a name in :data:`deepemg.physics.MUSCLE_LAWS`
        when ``fit`` runs (``"rigid_tendon_degroote_fregly"``,
        ``"compliant_tendon_degroote_fregly"``, or a law added since with
        :func:`deepemg.physics.register_muscle_law`), or a
        :class:`~deepemg.physics.MuscleLaw` itself: rigid-tendon DeGrooteFregly2016, or the
        same muscle with a compliant tendon solved for static fibre equilibrium
        (:func:`deepemg.physics.compliant_tendon_force`; slower per step). A ``model`` given
        as a ready MusculoskeletalModel must already have this law. An unknown name fails at
        the start of ``fit``, listing the registered laws.
    n_jobs : int or None, default=None
        Ensemble members fitted at once (joblib processes; None: one per core, see
        :func:`deepemg.threads.plan_workers`).
    device : str or torch.device, default="cpu"
        Where the network and the muscle model train and predict (``"cuda"`` for a GPU; an
        error when torch sees none). Inputs and outputs stay numpy arrays on the CPU.
    random_state : int or None, default=None
        Seed for initialisation and shuffling (in a forked torch RNG: the global RNG is left
        untouched).

    Attributes
    ----------
    net_ : NMMNet
        The trained skorch net; ``net_.history`` (also ``history_``) has ``train_loss`` and
        each term (``train_data_loss``, ``train_physics_loss``, ``train_effort_loss``,
        ``train_smoothness_loss``, ``train_synergy_loss``, ``train_prior_loss``).
    members_ : list of NMMRegressor
        The ensemble's members (``n_members >= 2``); the estimator's own ``net_``,
        ``history_`` and ``subject_params_`` are those of the first.
    uncertainty_scale_ : float
        Factor on the members' standard deviation from out-of-bag calibration (ensembles).
    personalize_history_ : skorch.History
        The loss history of the last :meth:`personalize` (same columns).
    physics_ : MusculoskeletalModel
    muscles_ : list of str
        Muscle order of ``y`` and of ``predict``'s output.
    subjects_ : ndarray
        Subjects seen in ``fit`` (and added by ``personalize``).
    subject_params_ : list of dict
        Subject parameters in physical units, one row per subject, parameter and muscle.
    subject_codes_ : ndarray of shape (n_subjects, subject_embedding)
        The learned subject codes, in the order of ``subjects_``.
    channels_ : list of str
        ``X``'s channel names as used in fit.
    fitted_with_ : dict
        The parameters the fitted network and muscle model are built for (``window``,
        ``rate``, ``model``, ...): predictions refuse to run when ``set_params`` has changed
        one since (fit again, or set it back).

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

    _parameter_constraints: dict = {
        "model": [str, os.PathLike, MusculoskeletalModel],
        "coordinate": [str],
        "locked": [dict, None],
        "channels": ["array-like", None],
        "rate": [Interval(Real, 0, None, closed="neither")],
        "d_model": [Interval(Integral, 1, None, closed="left")],
        "n_heads": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "subject_embedding": [Interval(Integral, 0, None, closed="left")],
        "window": [Interval(Integral, 2, None, closed="left")],
        "overlap": [Interval(Real, 0, 1, closed="left")],
        "predict_overlap": [Interval(Real, 0, 1, closed="left")],
        "data_weight": [Interval(Real, 0, None, closed="left")],
        "physics_weight": [Interval(Real, 0, None, closed="left")],
        "physics_drive": [StrOptions(set(DRIVES))],
        "effort_weight": [Interval(Real, 0, None, closed="left")],
        "smoothness_weight": [Interval(Real, 0, None, closed="left")],
        "synergy_weight": [Interval(Real, 0, None, closed="left")],
        "prior_weight": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "progress_bar": ["boolean"],
        "verbose": ["verbose"],
        "callbacks": [list, tuple, None],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "predict_physics": [StrOptions({"none", "torque", "emg"})],
        "muscle_law": [str, MuscleLaw],  # a name registered at call time, or a law
        "correction_weight": [Interval(Real, 0, None, closed="left")],
        "correction_steps": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        model="elbow",
        coordinate="r_elbow_flex",
        locked=None,
        channels=None,
        rate=100.0,
        d_model=32,
        n_heads=4,
        n_layers=2,
        dropout=0.1,
        subject_embedding=0,
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
        callbacks=None,
        warm_start=False,
        device="cpu",
        n_threads=None,
        n_members=1,
        n_jobs=None,
        predict_physics="torque",
        correction_weight=0.1,
        correction_steps=100,
        muscle_law="rigid_tendon_degroote_fregly",
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
        self.subject_embedding = subject_embedding
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
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.device = device
        self.n_threads = n_threads
        self.n_members = n_members
        self.n_jobs = n_jobs
        self.predict_physics = predict_physics
        self.correction_weight = correction_weight
        self.correction_steps = correction_steps
        self.muscle_law = muscle_law
        self.random_state = random_state

    # ------------------------------------------------------------------ input checks
    def _prepare(self, X, physics=None) -> SequenceInputs:
        """``X`` checked against the model's channels and split once; with no ``physics``
        (after fit), against the fitted model and fit's channel count."""
        fitted = physics is None
        if fitted:
            self._check_unchanged()
        sequences = prepare_sequences(
            X, self.channels, self.physics_ if fitted else physics, int(self.window), self.rate
        )
        if fitted and sequences.X.shape[2] != self.n_channels_:
            raise ValueError(f"X has {sequences.X.shape[2]} channels; fit saw {self.n_channels_}.")
        return sequences

    _FITTED_WITH = (
        "model",
        "coordinate",
        "locked",
        "rate",
        "window",
        "d_model",
        "n_heads",
        "n_layers",
        "subject_embedding",
        "muscle_law",
    )
    """Parameters the fitted state was built with: changing one after fit would silently
    change what the fitted network and muscle model mean, so predictions refuse it.
    (``channels`` only names ``X``'s channels, which are read by name: it may change.)"""

    def _check_y(self, y, X, physics=None) -> np.ndarray:
        """``y`` in MVC units (:func:`deepemg.validation.check_envelopes`), one column per
        muscle, NaN where not measured."""
        physics = physics if physics is not None else self.physics_
        y = np.asarray(y, dtype=np.float64)
        expected = X.shape[:2] + (physics.n_muscles,)
        if y.shape != expected:
            raise ValueError(
                f"y must be shaped (n_sequences, n_timesteps, n_muscles) = {expected} with one "
                f"column per muscle {physics.muscles} (NaN where not measured), got "
                f"{y.shape}."
            )
        return check_envelopes(y, "y", physics.muscles)

    def _subject_index(self, subject_ids, n: int) -> np.ndarray:
        known = self.subjects_.tolist()
        if subject_ids is None:
            return np.full(n, -1 if len(known) > 1 else 0)
        subject_ids = check_subject_ids(subject_ids, n)
        check_subject_ids(subject_array(known + subject_ids.tolist()), len(known) + n)
        unknown = list(
            unique_subjects(
                subject_array([s for s in subject_ids.tolist() if s not in known])
            ).tolist()
        )
        if unknown:
            raise ValueError(
                f"subjects {unknown} were not seen in fit (known: {known}). Call "
                "personalize(X, subject_ids=...) for them first, or pass subject_ids=None for "
                "population parameters."
            )
        return np.array([known.index(s) for s in subject_ids.tolist()])

    # ------------------------------------------------------------------ arrays for the module
    def _features(self, sequences: SequenceInputs) -> np.ndarray:
        """The network's input: kinematics and load standardised by fit's mean and SD."""
        return (sequences.inputs - self.feature_mean_) / self.feature_std_

    def _windowed(self, sequences: SequenceInputs, subject_index, y=None, drive="predicted"):
        """The module's inputs and the criterion's target, cut into training windows."""
        w = int(self.window)
        starts = window_starts(sequences.X.shape[1], w, float(self.overlap))
        data = {
            "features": to_windows(self._features(sequences), starts, w).astype(np.float32),
            "angle": to_windows(sequences.angle, starts, w),
            "velocity": to_windows(sequences.velocity, starts, w),
            "subject": np.repeat(subject_index, len(starts)).astype(np.int64),
        }
        emg = np.full(sequences.X.shape[:2] + (len(self.muscles_),), np.nan) if y is None else y
        target = {
            "emg": to_windows(emg, starts, w).astype(np.float32),
            "torque": to_windows(sequences.torque, starts, w),
        }
        if drive != "predicted" and y is not None:
            drive_emg = saturate_envelopes(y, "y", self.muscles_)  # at most fully excited
            data["emg_override"] = to_windows(drive_emg, starts, w).astype(np.float32)
        return data, target

    def _net(
        self,
        module,
        *,
        criterion: dict,
        optimizer: dict,
        max_epochs: int,
        seed: int,
        schedule: bool,
        validation: bool,
        extra: list = (),
    ) -> NMMNet:
        """The skorch net that trains ``module`` (fit, and personalize with a frozen network);
        ``extra``: the user's callbacks (:meth:`_fit_callbacks`), after deepemg's own."""
        callbacks = [
            (f"train_{t}", PassthroughScoring(name=f"train_{t}", on_train=True)) for t in _TERMS
        ]
        if schedule:
            cosine = torch.optim.lr_scheduler.CosineAnnealingLR
            # last_epoch=-1: a fresh schedule over this fit's epochs, also where the history
            # goes on (warm_start; skorch would resume it at len(history))
            scheduler = LRScheduler(policy=cosine, T_max=max_epochs, last_epoch=-1)
            callbacks.append(("lr_scheduler", scheduler))
        if validation:
            callbacks += [(f"valid_{t}", PassthroughScoring(name=f"valid_{t}")) for t in _TERMS]
            callbacks.append(
                ("early_stopping", EarlyStopping(patience=self.patience, load_best=True))
            )
        if self.progress_bar:
            callbacks.append(("progress_bar", ProgressBar()))
        callbacks += list(extra)
        return NMMNet(
            module=module,
            criterion=NMMLoss,
            **{f"criterion__{k}": v for k, v in criterion.items()},
            prior_weight=self.prior_weight,
            **optimizer,
            max_epochs=max_epochs,
            batch_size=int(self.batch_size),
            iterator_train__shuffle=True,
            iterator_valid__batch_size=_PREDICT_BATCH,
            train_split=(
                ValidSplit(self.validation_fraction, random_state=seed % 2**31)
                if validation
                else None
            ),
            callbacks=callbacks,
            verbose=self.verbose,
            device=_check_device(self.device),
        )

    # ------------------------------------------------------------------ fit
    @unchanged_on_failure
    @with_own_threads
    def fit(self, X, y, subject_ids=None):
        """Fit the network and the subject parameters.

        Parameters
        ----------
        X : array of shape (n_sequences, n_timesteps, n_channels)
        y : array of shape (n_sequences, n_timesteps, n_muscles)
            EMG envelopes (0..1) in the model's muscle order; NaN where not measured.
        subject_ids : array of shape (n_sequences,), optional
            Subject of each sequence (one set of parameters each); all one subject when None
            (with ``warm_start``: the fitted subject, when there is one).

        Returns
        -------
        self

        Raises
        ------
        KeyboardInterrupt
            Ctrl-C propagates (skorch would end training quietly); like any failure, it
            leaves the estimator as it was before the call.

        Notes
        -----
        With ``warm_start=True`` on a fitted estimator, training continues from the fitted
        network and subject parameters (see ``warm_start``); ``callbacks`` are cloned for
        each fit.
        """
        self._validate_params()
        _refuse_unusable_scoring(self)  # scoring="r2" in cross-validation: an error, not NaN
        _check_device(self.device)
        _check_muscle_law(self.muscle_law)
        callbacks = self._fit_callbacks()  # checked before any work
        warm = self._continues()
        if self.n_members > 1:
            return self._fit_ensemble(X, y, subject_ids, warm)
        if y is None:
            raise ValueError(
                "NMMRegressor requires y to be passed, but the target y is None: "
                "give the EMG envelopes (NaN for muscles not measured)."
            )
        if warm:  # the fitted model, channels and standardisation
            physics = self.physics_
            sequences = self._prepare(X)
        else:
            physics = MusculoskeletalModel.resolve(
                self.model, self.coordinate, self.locked, self.muscle_law
            )
            sequences = self._prepare(X, physics)
        y = self._check_y(y, sequences.X, physics)
        for name in ("members_", "uncertainty_scale_"):  # a single network now
            self.__dict__.pop(name, None)
        if np.isnan(y).all():
            raise ValueError(
                "y has no measured EMG (all NaN): the NMM learns the EMG from the measured "
                "channels; give the surface muscles' envelopes."
            )
        labels = self._fit_labels(subject_ids, sequences.X.shape[0], warm)
        if warm:
            known = self.subjects_.tolist()
            present = unique_subjects(labels).tolist()
            self.subjects_ = subject_array(known + [s for s in present if s not in known])
        else:
            self.physics_ = physics
            self.muscles_ = list(physics.muscles)
            self.n_channels_ = sequences.X.shape[2]
            self.channels_ = sequences.names
            self.subjects_ = unique_subjects(labels)
        subject_index = self._subject_index(labels, sequences.X.shape[0])
        if not warm:
            flat = sequences.inputs.reshape(-1, sequences.inputs.shape[-1])
            self.feature_mean_ = flat.mean(axis=0)
            std = flat.std(axis=0)
            self.feature_std_ = np.where(std > 1e-8, std, 1.0)
            self.torque_scale_ = float(max(sequences.torque.std(), 1e-3))
        unmeasured = [j for j in range(y.shape[2]) if np.isnan(y[..., j]).all()]
        data, target = self._windowed(sequences, subject_index, y, self.physics_drive)

        seed = _seed(self.random_state)
        previous = self.net_ if warm else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if warm:
                module = self._continued_module(len(self.subjects_))
            else:
                module = self._module(physics, len(sequences.layout.inputs), len(self.subjects_))
            self.net_ = self._net(
                module,
                criterion=self._criterion_params(unmeasured),
                optimizer=self._optimizer_params(),
                max_epochs=int(self.max_epochs),
                seed=seed,
                schedule=True,
                validation=bool(self.early_stopping),
                extra=callbacks,
            )
            self._train(self.net_, data, target, previous)
        parameters = self.net_.module_.subject_parameters
        if warm:  # subjects absent from the new data keep their parameters (not the prior's)
            for k, subject in enumerate(known):
                if subject not in present:
                    parameters.copy_subject(k, previous.module_.subject_parameters, k)
        self.net_.module_.center_codes()  # code 0, the population's: the subjects' mean
        self.history_ = self.net_.history
        self._record_fitted_with()
        return self

    _OWN_CALLBACKS = (
        "epoch_timer",
        "train_loss",
        "valid_loss",
        "print_log",
        "lr_scheduler",
        "early_stopping",
        "progress_bar",
        *(f"{kind}_{t}" for kind in ("train", "valid") for t in _TERMS),
    )
    """Names of the net's own callbacks (skorch's and deepemg's), not for the user's."""

    def _fit_callbacks(self) -> list:
        """Clones of ``callbacks`` for the net (alone, or ``(name, clone)``), or a clear
        error."""
        out, names = [], []
        for item in self.callbacks or ():
            name, callback = None, item
            if isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str):
                name, callback = item
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"callbacks holds {callback!r}, which is not a skorch callback: give "
                    "instances of skorch.callbacks.Callback (MyCallback(), not the class), "
                    "each alone or in a (name, callback) pair."
                )
            if name is not None:
                if name in self._OWN_CALLBACKS or name in names:
                    taken = "named twice" if name in names else "one of the net's own callbacks"
                    raise ValueError(
                        f"callbacks: the name {name!r} is {taken}; give your callback another "
                        f"name (the net's own: {', '.join(self._OWN_CALLBACKS)})."
                    )
                names.append(name)
            try:
                callback = clone(callback)
            except Exception as error:  # noqa: BLE001 - TypeError, RuntimeError...
                raise TypeError(
                    f"the callback {callback!r} cannot be cloned ({type(error).__name__}: "
                    f"{error}): fit trains a clone of each callback, so that yours stays as "
                    "it is and every ensemble member has its own; let its __init__ take only "
                    "its parameters, stored under their own names, and keep its state in "
                    "attributes ending in '_' (reset in initialize())."
                ) from None
            out.append(callback if name is None else (name, callback))
        return out

    def _continues(self) -> bool:
        """Whether this fit continues the fitted state (``warm_start``), or a clear error
        where the fitted state cannot take the current parameters."""
        if not (self.warm_start and hasattr(self, "net_")):
            return False
        fitted = len(self.members_) if self._ensemble() is not None else 1
        if fitted != int(self.n_members):
            raise ValueError(
                f"warm_start=True continues the {fitted} fitted network(s), but "
                f"n_members={self.n_members} now: set it back (set_params(n_members={fitted}))"
                ", or fit with warm_start=False to start anew."
            )
        changed = self._changed_since_fit()
        if changed is not None:
            name, value = changed
            raise ValueError(
                f"warm_start=True continues the fitted network, which is built for "
                f"{name}={value!r}, but {name}={getattr(self, name)!r} now: set it back "
                f"(set_params({name}={value!r})), or fit with warm_start=False to start anew."
            )
        return True

    def _fit_labels(self, subject_ids, n: int, warm: bool) -> np.ndarray:
        """Each sequence's subject: ``subject_ids``, or one subject when None (the fitted one
        in a warm fit)."""
        if subject_ids is not None:
            return check_subject_ids(subject_ids, n)
        if not warm:
            return np.zeros(n, dtype=int)
        if len(self.subjects_) != 1:
            raise ValueError(
                f"this model was fitted on {len(self.subjects_)} subjects "
                f"({self.subjects_.tolist()}): a warm_start fit needs subject_ids naming each "
                "sequence's subject (None means the fitted subject of a one-subject model)."
            )
        return np.repeat(self.subjects_, n)

    def _continued_module(self, n_subjects: int) -> NeuralMusculoskeletalModule:
        """A copy of the fitted module for a warm fit: the network (with the current
        ``dropout``), the subjects' parameters, nominal ones for the new subjects."""
        fitted = self.net_.module_
        network = copy.deepcopy(fitted.network)
        for layer in network.modules():
            if isinstance(layer, torch.nn.Dropout):
                layer.p = float(self.dropout)
            elif isinstance(layer, torch.nn.MultiheadAttention):
                layer.dropout = float(self.dropout)
        table = fitted.subject_parameters
        known = table.n_subjects
        subjects = table.subset(list(range(known)) + [None] * (n_subjects - known))
        return NeuralMusculoskeletalModule(
            network, fitted.physics, subjects, self.rate, drive=self.physics_drive
        )

    def _train(self, net: NMMNet, data, target, previous: NMMNet | None = None) -> None:
        """Train ``net``; after ``previous`` (a warm fit), its history going on."""
        net.estimator_ = self  # what NMMCheckpoint saves
        try:
            if previous is None:
                net.fit(data, target)
            else:
                net.initialize()
                net.history = copy.deepcopy(previous.history)  # the old one stays as it was
                net.partial_fit(data, target)
        finally:
            net.estimator_ = None

    def _save_checkpoint(self, net: NMMNet, path) -> None:
        """Write this estimator as ``fit`` would leave it with ``net``'s weights now
        (:class:`~deepemg.nmm_module.NMMCheckpoint`), atomically, without changing ``net``."""
        from types import SimpleNamespace

        from .persistence import save_model

        module = copy.deepcopy(net.module_)
        module.center_codes()
        snapshot = type(self).__new__(type(self))
        snapshot.__dict__.update(self.__dict__)
        for name in ("members_", "uncertainty_scale_"):
            snapshot.__dict__.pop(name, None)
        # save_model reads a fitted net's weights and criterion only
        snapshot.net_ = SimpleNamespace(module_=module, criterion_=net.criterion_)
        snapshot.history_ = net.history
        save_model(snapshot, path, overwrite=True)

    _MEMBER_STATE = (
        "physics_",
        "muscles_",
        "n_channels_",
        "channels_",
        "subjects_",
        "feature_mean_",
        "feature_std_",
        "torque_scale_",
        "net_",
        "history_",
        "personalize_history_",
    )

    def _adopt(self, members: list) -> None:
        """Take the fitted members; the estimator's own state mirrors the first member's,
        and ``fitted_with_`` is this estimator's own parameters (a member's are copies of a
        model or law object when it was fitted in another process)."""
        self.members_ = members
        for name in self._MEMBER_STATE:
            if hasattr(members[0], name):
                setattr(self, name, getattr(members[0], name))
        self._record_fitted_with()

    def _fit_ensemble(self, X, y, subject_ids, warm: bool = False):
        """Fit ``n_members`` single networks in parallel, each leaving out a round-robin share
        of every subject's sequences; calibrate the spread on those left out. ``warm``: copies
        of the fitted members continue their training."""
        from joblib import Parallel, delayed

        from .threads import plan_workers

        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        n = len(X)
        if n == 0:
            raise ValueError(f"X holds no data (shape {X.shape}): give at least one sequence.")
        labels = self._fit_labels(subject_ids, n, warm)
        k = int(self.n_members)
        fold = np.full(n, -1)  # the member that leaves each sequence out (-1: none)
        for subject in unique_subjects(labels):
            rows = np.flatnonzero(labels == subject)
            if len(rows) >= 2:  # every member keeps at least one sequence of every subject
                fold[rows] = np.arange(len(rows)) % k
        seeds = np.random.SeedSequence(self.random_state).generate_state(k)
        params = {**self.get_params(), "n_members": 1, "n_jobs": None}
        jobs, _ = plan_workers(self.n_jobs, k)
        fitted = [copy.deepcopy(m) for m in self.members_] if warm else [None] * k
        members = Parallel(n_jobs=jobs)(
            delayed(_fit_member)(
                {**params, "callbacks": _member_callbacks(self.callbacks, m)},
                int(seeds[m]),
                X,
                y,
                labels,
                fold != m,
                fitted[m],
            )
            for m in range(k)
        )
        # out-of-bag calibration on the measured channels
        ratios = []
        held = np.flatnonzero(fold >= 0)
        if held.size:
            subjects = labels[held]  # each with its own muscle parameters (and code)
            runs = np.stack([member.predict(X[held], subjects) for member in members])
            spread = np.maximum(runs.std(axis=0, ddof=1), 1e-4)
            own = runs[fold[held], np.arange(held.size)]  # each sequence by the member without it
            measured = ~np.isnan(y[held])
            ratios = (np.abs(y[held] - own) / spread)[measured]
        if len(ratios) == 0:
            warnings.warn(
                "no subject has 2 sequences: the ensemble's spread is not calibrated "
                "(uncertainty_scale_ = 1).",
                stacklevel=3,
            )
            self.uncertainty_scale_ = 1.0
        else:
            self.uncertainty_scale_ = float(np.quantile(ratios, 0.9) / 1.6448536269514722)
        self._adopt(members)
        return self

    def _module(self, physics, n_inputs: int, n_subjects: int) -> NeuralMusculoskeletalModule:
        """A new network, the muscle model and ``n_subjects`` sets of nominal parameters."""
        codes = int(self.subject_embedding)
        network = EMGTransformer(
            n_inputs,
            physics.n_muscles,
            self.d_model,
            self.n_heads,
            self.n_layers,
            self.dropout,
            code_dim=codes,
        )
        subjects = SubjectParameters(n_subjects, list(physics.muscles), code_dim=codes)
        return NeuralMusculoskeletalModule(
            network, physics, subjects, self.rate, drive=self.physics_drive
        )

    def _burn_in(self) -> int:
        return min(10, int(self.window) // 4)

    def _criterion_params(self, unmeasured) -> dict:
        """:class:`NMMLoss`'s arguments (after ``torque_scale_`` is known)."""
        return dict(
            data_weight=self.data_weight,
            physics_weight=self.physics_weight,
            effort_weight=self.effort_weight,
            smoothness_weight=self.smoothness_weight,
            synergy_weight=self.synergy_weight,
            torque_scale=self.torque_scale_,
            burn_in=self._burn_in(),
            unmeasured=list(unmeasured),
        )

    def _optimizer_params(self) -> dict:
        """AdamW for the network; the subject parameters without decay (it would pull them to
        mid-range) and 10x faster."""
        return dict(
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=self.weight_decay,
            optimizer__param_groups=[
                ("subject_parameters.*", {"weight_decay": 0.0, "lr": 10 * self.lr})
            ],
            lr=self.lr,
        )

    # ------------------------------------------------------------------ saving
    def save(self, path, *, overwrite: bool = False):
        """Write the fitted estimator to ``path`` without pickle
        (:func:`deepemg.persistence.save_model`: weights and settings in a zip, loaded
        without running code). Returns the path. ``callbacks`` are left out (training-time
        objects, not part of the model): the loaded estimator has ``callbacks=None``."""
        from .persistence import save_model

        check_is_fitted(self, "net_")
        return save_model(self, path, overwrite=overwrite)

    def export_subject(self, subject, path, *, overwrite: bool = False):
        """Write the OpenSim model this estimator was fitted on with ``subject``'s
        personalised muscles to ``path`` (an ``.osim`` file;
        :func:`deepemg.opensim.export_subject`). Returns the path."""
        from .opensim.export import export_subject

        check_is_fitted(self, "net_")
        return export_subject(self, subject, path, overwrite=overwrite)

    @classmethod
    def load(cls, path, *, model=None, device=None) -> NMMRegressor:
        """Read an estimator written by :meth:`save` (:func:`deepemg.persistence.load_model`);
        a file that is not one (a pickle included), or is damaged, is refused, never
        executed. ``model``: an ``.osim`` file to use instead of the one the model file
        carries (needed for files of format 1 or 2 fitted on an ``.osim``). ``device``:
        where to run it (``"cpu"`` loads a model saved with ``device="cuda"`` on a machine
        without a GPU); None keeps the saved one."""
        from .persistence import load_model

        return load_model(path, model=model, device=device)

    # ------------------------------------------------------------------ predictions
    @property
    def subject_params_(self) -> list[dict]:
        check_is_fitted(self, "net_")
        return self.net_.module_.subject_parameters.table(list(self.subjects_))

    @property
    def subject_codes_(self) -> np.ndarray:
        check_is_fitted(self, "net_")
        parameters = self.net_.module_.subject_parameters
        if not parameters.code_dim:
            return np.zeros((parameters.n_subjects, 0))
        return parameters.code.detach().cpu().numpy().astype(np.float64)

    def _ensemble(self) -> list | None:
        members = getattr(self, "members_", None)
        return members if members else None

    _PREDICTION_SETTINGS = (
        "predict_physics",
        "correction_weight",
        "correction_steps",
        "predict_overlap",
        "device",
        "n_threads",
    )
    """Parameters that only act at prediction: ``set_params`` after fit reaches the members."""

    def _share_prediction_settings(self) -> None:
        """Give every ensemble member this estimator's prediction-time settings."""
        settings = {k: getattr(self, k) for k in self._PREDICTION_SETTINGS}
        for member in self.members_:
            member.set_params(**settings)

    @with_own_threads(work="predict")
    def predict(self, X, subject_ids=None, return_std: bool = False, *, predict_physics=None):
        """EMG envelope of every muscle, ``(n_sequences, n_timesteps, n_muscles)``, float64.

        The network reads only kinematics and load, but the EMG returned depends on the
        subject. With the default ``predict_physics="torque"`` (and with "emg") the network's
        EMG is corrected until the subject's muscle model reproduces the inverse-dynamics
        torque, so it depends on the subject's muscle parameters, chosen by ``subject_ids``
        (subjects seen in fit or personalised; an unknown one is an error); None: the
        population's (nominal) parameters when several subjects were fit, the only subject's
        when fit saw one. With ``subject_embedding > 0`` the network's EMG also depends on
        the subject's learned code (None: the population's code 0). Only with
        ``predict_physics="none"`` and ``subject_embedding=0`` is the EMG the same for every
        subject and ``subject_ids`` ignored. An ensemble
        (``n_members >= 2``) returns its members' mean, and with ``return_std=True`` also
        the calibrated standard deviation (same shape; the 90 % band is mean ± 1.645 std),
        as scikit-learn's ``GaussianProcessRegressor`` does.

        ``predict_physics`` ("none", "torque" or "emg") chooses the prediction-time physics
        for this call only; None: the estimator's ``predict_physics`` (which ``GridSearchCV``
        can search). The correction (:func:`deepemg.correction.correct_emg`) couples no
        sequences, but float rounding that depends on the batch is amplified by its Adam
        steps: a sequence's corrected EMG may differ by up to about 1e-2 when predicted with
        other sequences or alone (the network alone: 1e-7).
        """
        check_is_fitted(self, "net_")
        mode = self._physics_mode(predict_physics)
        members = self._ensemble()
        if members is not None:
            self._check_unchanged()
            self._share_prediction_settings()
            runs = np.stack(
                [member.predict(X, subject_ids, predict_physics=mode) for member in members]
            )
            mean = runs.mean(axis=0)
            if not return_std:
                return mean
            return mean, self.uncertainty_scale_ * runs.std(axis=0, ddof=1)
        if return_std:
            raise ValueError(
                "return_std needs an ensemble: fit with n_members >= 2 (5 is a good start; "
                "docs/uncertainty.md)."
            )
        return self._emg(self._prepare(X), subject_ids, mode)

    @staticmethod
    def _physics_mode(mode) -> str | None:
        """A per-call ``predict_physics``, checked (None: the estimator's)."""
        if mode is not None and mode not in ("none", "torque", "emg"):
            raise ValueError(
                f"predict_physics={mode!r}; choose 'none', 'torque' or 'emg' (None: the "
                "estimator's)."
            )
        return mode

    def _emg(self, sequences: SequenceInputs, subject_ids, mode=None) -> np.ndarray:
        """Every muscle's EMG of the checked ``sequences``: the network's, corrected by the
        prediction-time physics ``mode`` (None: ``predict_physics``)."""
        mode = self.predict_physics if mode is None else mode
        w = int(self.window)
        starts = window_starts(sequences.X.shape[1], w, float(self.predict_overlap))
        windows = {"features": to_windows(self._features(sequences), starts, w).astype(np.float32)}
        if self.subject_embedding:  # each window with its subject's code
            index = self._subject_index(subject_ids, sequences.X.shape[0])
            windows["subject"] = np.repeat(index, len(starts)).astype(np.int64)
        emg = self.net_.forward(windows, training=False, device="cpu")
        emg = from_windows(emg.numpy().astype(np.float64), starts, sequences.X.shape[1])
        if mode == "none":
            return emg
        return self._correct(sequences, emg, subject_ids, mode)

    def _correct(
        self, sequences: SequenceInputs, prior: np.ndarray, subject_ids, mode: str
    ) -> np.ndarray:
        """The prior EMG corrected by :func:`deepemg.correction.correct_emg` with the
        subjects' muscle models; with ``mode="emg"``, ``X``'s surface EMG drives its
        muscles."""
        from .channels import emg_channel
        from .correction import correct_emg

        device = _check_device(self.device)
        index = torch.as_tensor(self._subject_index(subject_ids, len(prior)), device=device)
        angle, velocity, tau = (
            torch.as_tensor(a, device=device)
            for a in (sequences.angle, sequences.velocity, sequences.torque)
        )
        measured = None
        if mode == "emg":  # X's surface EMG drives its muscles where present
            measured = np.full(prior.shape, np.nan)
            for j, muscle in enumerate(self.muscles_):
                if emg_channel(muscle) in sequences.names:
                    values = sequences.channel(emg_channel(muscle))[..., None]
                    check_envelopes(values, "X's EMG channels", [emg_channel(muscle)])
                    measured[..., j] = saturate_envelopes(values, "X", [muscle])[..., 0]
            measured = torch.as_tensor(measured, device=device)
        emg = correct_emg(
            self.net_.module_,
            torch.as_tensor(prior, device=device),
            angle,
            velocity,
            tau,
            index,
            torque_scale=self.torque_scale_,
            weight=float(self.correction_weight),
            steps=int(self.correction_steps),
            measured=measured,
        )
        return emg.cpu().numpy()

    def _physics_inputs(self, sequences: SequenceInputs, subject_ids):
        """Predicted EMG, angle, velocity and subject index as tensors on the module's device."""
        device = _check_device(self.device)
        index = self._subject_index(subject_ids, sequences.X.shape[0])
        emg = self._emg(sequences, subject_ids)  # X checked once, by the caller
        return tuple(
            torch.as_tensor(a, device=device)
            for a in (emg, sequences.angle, sequences.velocity, index)
        )

    @with_own_threads(work="predict")
    def predict_activation(self, X, subject_ids=None):
        """Muscle activation from the predicted EMG through the subject's activation dynamics.

        ``subject_ids``: subjects seen in fit or personalised; None gives population (nominal)
        parameters when several subjects were fit.
        """
        check_is_fitted(self, "net_")
        if self._ensemble() is not None:
            self._check_unchanged()
            self._share_prediction_settings()
            return np.mean([m.predict_activation(X, subject_ids) for m in self.members_], axis=0)
        emg, _, _, index = self._physics_inputs(self._prepare(X), subject_ids)
        with torch.no_grad():
            activation, _ = self.net_.module_.activation(emg, index)
        return activation.cpu().numpy()

    @with_own_threads(work="predict")
    def predict_torque(self, X, subject_ids=None):
        """Joint torque (N·m) of the muscles driven by the predicted EMG, ``(n, n_timesteps)``."""
        check_is_fitted(self, "net_")
        if self._ensemble() is not None:
            self._check_unchanged()
            self._share_prediction_settings()
            return np.mean([m.predict_torque(X, subject_ids) for m in self.members_], axis=0)
        emg, angle, velocity, index = self._physics_inputs(self._prepare(X), subject_ids)
        with torch.no_grad():
            torque = self.net_.module_.torque(emg, angle, velocity, index)
        return torque.cpu().numpy()

    __metadata_request__score = {"subject_ids": True}
    """With metadata routing, ``score`` receives the test fold's ``subject_ids`` by default."""

    @with_own_threads(work="predict")
    def score(self, X, y, sample_weight=None, subject_ids=None):
        """Variance-weighted R² of the predicted EMG over the measured (non-NaN) channels.

        Time is flattened; ``sample_weight`` (one weight per sequence) weights each
        sequence's steps (:func:`deepemg.validation.measured_r2`). ``subject_ids`` predicts
        each sequence with its subject's parameters, as :meth:`predict` does (the muscle
        model of ``predict_physics``, the code of ``subject_embedding``); sequences of
        subjects not seen in fit nor personalised are scored with the population's, with a
        :class:`~deepemg.metrics.UnseenSubjectWarning` where that changes their EMG. With
        metadata routing enabled, ``GridSearchCV`` and ``cross_validate`` pass the test
        fold's ``subject_ids`` (requested by default; ``set_score_request(subject_ids=False)``
        turns it off). scikit-learn's own scorers (``scoring="r2"``, ...) cannot score 3-D
        EMG with NaN: use ``scoring=None`` or :mod:`deepemg.metrics`.
        """
        emg = _predict_emg(self, X, subject_ids)
        return measured_r2(y, emg, sample_weight=sample_weight)

    # ------------------------------------------------------------------ personalisation
    @unchanged_on_failure
    @with_own_threads
    def personalize(self, X, y=None, subject_ids=None, max_epochs=None, lr=2e-2):
        """Fit the parameters of subjects not seen in fit, with the network frozen.

        Uses the subject's kinematics, load and torque (physics term); where ``y`` holds
        measured surface EMG, it drives those muscles in the physics chain instead of the
        network's EMG. No deep-muscle labels are needed. With ``subject_embedding > 0`` the
        subject's code is learned too, from the physics term (through the network's EMG of
        the muscles ``y`` does not measure) and from a data term on ``y``'s measured EMG
        (``data_weight`` x MSE of the network's EMG), so the subject's predicted EMG, deep
        muscles included, moves towards its own. Training runs through skorch like
        :meth:`fit` (the loss terms are logged in ``personalize_history_``); only the subjects
        in ``subject_ids`` move, and the estimator is changed only when it succeeds.

        Parameters
        ----------
        X : array (n_sequences, n_timesteps, n_channels)
        y : array (n_sequences, n_timesteps, n_muscles), optional
            Surface EMG (NaN for muscles not measured).
        subject_ids : array (n_sequences,)
            Labels of the new subjects (labels already known are refitted, starting from
            their fitted values).
        max_epochs : int, optional
            Passes over the data; ``self.max_epochs`` by default.
        lr : float, default=0.02
            Adam learning rate for the subject parameters.

        Returns
        -------
        self
        """
        check_is_fitted(self, "net_")
        if self._ensemble() is not None:
            self._check_unchanged()
            self._share_prediction_settings()
            members = [copy.deepcopy(m) for m in self.members_]  # all or nothing
            for member in members:
                member.personalize(X, y, subject_ids, max_epochs=max_epochs, lr=lr)
            self._adopt(members)
            return self
        sequences = self._prepare(X)
        if subject_ids is None:
            raise ValueError("personalize needs subject_ids naming the new subject(s).")
        labels = check_subject_ids(subject_ids, sequences.X.shape[0])
        known = self.subjects_.tolist()
        check_subject_ids(subject_array(known + labels.tolist()), len(known) + len(labels))
        epochs = int(self.max_epochs if max_epochs is None else max_epochs)
        if epochs < 1 or not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"max_epochs must be >= 1 and lr > 0, got {epochs} and {lr}.")
        if not self.physics_weight and not (self.subject_embedding and self.data_weight):
            raise ValueError(
                "personalize fits a subject's parameters to its torque (physics_weight) and, "
                "with subject_embedding > 0, its code to its surface EMG (data_weight); with "
                "physics_weight=0 and no subject code there is nothing to fit: set "
                "physics_weight > 0 for personalize."
            )
        measured = None if y is None else self._check_y(y, sequences.X)
        targets = list(dict.fromkeys(labels.tolist()))
        fitted = self.net_.module_
        # the personalised subjects' parameters only, from their fitted values when known
        local = fitted.subject_parameters.subset(
            [known.index(s) if s in known else None for s in targets]
        )
        index = np.array([targets.index(s) for s in labels.tolist()])
        data, target = self._windowed(sequences, index, measured, drive="measured")
        seed = 0 if self.random_state is None else int(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = NeuralMusculoskeletalModule(
                copy.deepcopy(fitted.network),
                fitted.physics,
                local,
                self.rate,
                drive="measured",
                freeze_network=True,
            )
            net = self._net(
                module,
                criterion=dict(
                    # the EMG depends on the subject through its code only
                    data_weight=float(self.data_weight) if self.subject_embedding else 0.0,
                    physics_weight=float(self.physics_weight),
                    effort_weight=0.0,
                    synergy_weight=0.0,
                    torque_scale=self.torque_scale_,
                    burn_in=self._burn_in(),
                ),
                optimizer=dict(optimizer=torch.optim.Adam, lr=lr),
                max_epochs=epochs,
                seed=seed,
                schedule=False,
                validation=False,
            )
            net.fit(data, target)
        # success: merge the personalised subjects into the fitted table
        new = [s for s in targets if s not in known]
        merged = fitted.subject_parameters.subset(list(range(len(known))) + [None] * len(new))
        subjects = known + new
        for k, subject in enumerate(targets):
            merged.copy_subject(subjects.index(subject), local, k)
        fitted.subject_parameters = merged.to(next(fitted.parameters()).device)
        self.subjects_ = subject_array(subjects)  # each label as the user gave it
        self.personalize_history_ = net.history
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X is (n_sequences, n_timesteps, n_channels); NaN is allowed in its surface EMG
        # channels (absent samples), never in the kinematics, load or torque
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = True
        # y is (n_sequences, n_timesteps, n_muscles), NaN where a muscle is not measured
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags
