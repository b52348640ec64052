"""How an :class:`~deepemg.NMMRegressor` trains: its module, skorch net, windows and loss.

Functions over an estimator's parameters (``estimator.get_params()``) and checked arrays, kept
apart from the estimator as scikit-learn keeps its solvers apart from its thin estimators:
:func:`build_module` and :func:`continued_module` make the torch module, :func:`build_net` the
skorch net that trains it, :func:`training_windows` cuts the sequences into its inputs and
targets, :func:`train` runs it, :func:`personalize_subjects` fits new subjects' parameters
with the network frozen (checkpoints: :func:`deepemg.persistence.save_checkpoint`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from sklearn.base import clone
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    LRScheduler,
    PassthroughScoring,
    ProgressBar,
)
from skorch.dataset import ValidSplit

from .devices import check_device
from .features import N_KINEMATIC_INPUTS
from .network import EMGTransformer
from .nmm_module import NeuralMusculoskeletalModule, NMMLoss, NMMNet
from .physics import MusculoskeletalModel, SubjectParameters
from .physics.parameters import subject_parameter_specs
from .validation import SequenceInputs, saturate_envelopes
from .windows import to_windows, window_starts

__all__ = [
    "OWN_CALLBACKS",
    "SYNERGIST_LEVEL_WEIGHT",
    "SYNERGIST_WEIGHT",
    "TERMS",
    "build_module",
    "build_net",
    "check_callbacks",
    "check_device",
    "continued_module",
    "criterion_params",
    "fit_module",
    "personalize_subjects",
    "resolved_params",
    "synergists",
    "torque_trains",
    "train",
    "training_windows",
]

SYNERGIST_WEIGHT = 3.0
""":class:`~deepemg.NMMRegressor`'s default ``synergist_weight`` (docs/nmm.md)."""

SYNERGIST_LEVEL_WEIGHT = 0.01
""":class:`~deepemg.NMMRegressor`'s default ``synergist_level_weight`` (docs/nmm.md; chosen
from 0.01, 0.03, 0.3, 1 and 3 in docs/results/synergist_level.txt)."""

TERMS = (
    "data_loss",
    "physics_loss",
    "effort_loss",
    "smoothness_loss",
    "synergy_loss",
    "synergist_loss",
    "synergist_level_loss",
    "prior_loss",
)
"""The loss terms each epoch logs (``train_<term>``, ``valid_<term>``)."""

PREDICT_BATCH = 512
"""Windows per batch when evaluating."""

OWN_CALLBACKS = (
    "epoch_timer",
    "train_loss",
    "valid_loss",
    "print_log",
    "lr_scheduler",
    "early_stopping",
    "progress_bar",
    *(f"{kind}_{t}" for kind in ("train", "valid") for t in TERMS),
)
"""Names of the net's own callbacks (skorch's and deepemg's), not for the user's."""


def _named_callback(item) -> tuple[str | None, Callback]:
    """``(name, callback)`` of a callback given alone or in a pair; a clear error else."""
    name, callback = None, item
    if isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str):
        name, callback = item
    if not isinstance(callback, Callback):
        raise TypeError(
            f"callbacks holds {callback!r}, which is not a skorch callback: give "
            "instances of skorch.callbacks.Callback (MyCallback(), not the class), "
            "each alone or in a (name, callback) pair."
        )
    return name, callback


def check_callbacks(callbacks) -> list:
    """Clones of the user's ``callbacks`` for a net (alone, or ``(name, clone)``).

    Parameters
    ----------
    callbacks : list of skorch callbacks or (name, callback) pairs, or None

    Returns
    -------
    list
        Clones, so that the user's objects stay as they are and every fit has its own.

    Examples
    --------
    >>> from skorch.callbacks import EpochTimer
    >>> [type(c).__name__ for c in check_callbacks([EpochTimer()])]
    ['EpochTimer']
    """
    out, names = [], []
    for item in callbacks or ():
        name, callback = _named_callback(item)
        if name is not None:
            if name in OWN_CALLBACKS or name in names:
                taken = "named twice" if name in names else "one of the net's own callbacks"
                raise ValueError(
                    f"callbacks: the name {name!r} is {taken}; give your callback another "
                    f"name (the net's own: {', '.join(OWN_CALLBACKS)})."
                )
            names.append(name)
        try:
            callback = clone(callback)
        except Exception as error:
            raise TypeError(
                f"the callback {callback!r} cannot be cloned ({type(error).__name__}: "
                f"{error}): fit trains a clone of each callback, so that yours stays as "
                "it is and every ensemble member has its own; let its __init__ take only "
                "its parameters, stored under their own names, and keep its state in "
                "attributes ending in '_' (reset in initialize())."
            ) from None
        out.append(callback if name is None else (name, callback))
    return out


def torque_trains(physics_trains: str, n_inputs: int) -> str:
    """What the torque term trains, ``"all"`` or ``"parameters"``, for ``physics_trains``.

    ``"auto"`` resolves to ``"parameters"`` for a network that reads surface EMG (more than
    the 4 kinematic inputs) and ``"all"`` for one that reads the kinematics only: detached
    from the torque, a network without EMG inputs has nothing to give the deep muscles their
    shape (BRA r 0.74 against 0.93 with EMG; docs/results/emg_inputs.txt).

    Examples
    --------
    >>> torque_trains("auto", 9), torque_trains("auto", 4), torque_trains("all", 9)
    ('parameters', 'all', 'all')
    """
    if physics_trains != "auto":
        return physics_trains
    return "parameters" if n_inputs > N_KINEMATIC_INPUTS else "all"


EFFORT_WEIGHTS = {"parameters": 0.01, "all": 0.1}
"""``effort_weight="auto"`` for each :func:`torque_trains`: 0.01 where the torque trains the
subject parameters only (0.1 left the deep muscles at a fifth to a third of their amplitude),
0.1 where it trains the network too (0.5's value; with 0.01 the kinematics-only network's
brachialis NRMSE was 0.32 against 0.20; docs/results/emg_inputs.txt)."""


def resolved_params(params: Mapping, n_inputs: int) -> dict:
    """``params`` with ``physics_trains`` and ``effort_weight`` "auto" resolved.

    For a network of ``n_inputs`` inputs (:func:`torque_trains`, :data:`EFFORT_WEIGHTS`).

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> p = resolved_params(NMMRegressor().get_params(), 4)
    >>> p["physics_trains"], p["effort_weight"]
    ('all', 0.1)
    """
    out = dict(params)
    out["physics_trains"] = torque_trains(out.get("physics_trains", "all"), n_inputs)
    if out.get("effort_weight") == "auto":
        out["effort_weight"] = EFFORT_WEIGHTS[out["physics_trains"]]
    return out


def build_module(
    params: Mapping,
    physics: MusculoskeletalModel,
    n_inputs: int,
    n_subjects: int,
    levelled: Sequence[int] = (),
) -> NeuralMusculoskeletalModule:
    """A new network, the muscle model and ``n_subjects`` sets of nominal parameters.

    ``levelled``: the muscles whose EMG gets each subject's ``emg_level`` (the subject
    parameters then hold it; :func:`levelled_muscles`); the network's output for them starts
    ``params["deep_start"]`` logits above its initialisation.

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> from deepemg.opensim import elbow_model
    >>> physics = elbow_model()
    >>> module = build_module(NMMRegressor(d_model=8, n_heads=2).get_params(), physics, 4, 2)
    >>> module.subject_parameters.n_subjects
    2
    """
    codes = int(params["subject_embedding"])
    network = EMGTransformer(
        n_inputs,
        physics.n_muscles,
        params["d_model"],
        params["n_heads"],
        params["n_layers"],
        params["dropout"],
        code_dim=codes,
    )
    specs = subject_parameter_specs(
        physics.muscle_law, bool(params.get("curve_parameters")), emg_level=bool(levelled)
    )
    subjects = SubjectParameters(n_subjects, list(physics.muscles), specs, code_dim=codes)
    if levelled:  # where the muscles without EMG start (the torque does not pin co-contraction)
        with torch.no_grad():
            network.head.bias[list(levelled)] += float(params.get("deep_start", 0.0))
    return NeuralMusculoskeletalModule(
        network,
        physics,
        subjects,
        params["rate"],
        drive=params["physics_drive"],
        physics_trains=torque_trains(params.get("physics_trains", "all"), n_inputs),
        levelled=levelled,
    )


def levelled_muscles(params: Mapping, n_inputs: int, unmeasured: Sequence[int]) -> list[int]:
    """The muscles whose EMG level each subject learns (indices).

    The ``unmeasured`` ones, when the torque trains the subject parameters only
    (:func:`torque_trains` "parameters"); none otherwise. Their level is then what the torque
    sets (against the effort term), their shape what the network reads from the surface EMG
    (docs/nmm.md, "The deep muscles' level").

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> params = NMMRegressor().get_params()
    >>> levelled_muscles(params, 9, [2, 6]), levelled_muscles(params, 4, [2, 6])
    ([2, 6], [])
    """
    if torque_trains(params.get("physics_trains", "all"), n_inputs) != "parameters":
        return []
    return [int(j) for j in unmeasured]


def continued_module(
    params: Mapping, fitted: NeuralMusculoskeletalModule, n_subjects: int
) -> NeuralMusculoskeletalModule:
    """A copy of a fitted module for a warm fit.

    A copy of a fitted module for a warm fit: its network (with ``params``' dropout, none on
    the attention weights, as :func:`build_module`'s), its subjects' parameters and nominal
    ones for ``n_subjects`` in all.
    """
    network = copy.deepcopy(fitted.network)
    for layer in network.modules():
        if isinstance(layer, torch.nn.Dropout):
            layer.p = float(params["dropout"])
        elif isinstance(layer, torch.nn.MultiheadAttention):
            layer.dropout = 0.0
    table = fitted.subject_parameters
    known = table.n_subjects
    subjects = table.subset(list(range(known)) + [None] * (n_subjects - known))
    module = NeuralMusculoskeletalModule(
        network,
        fitted.physics,
        subjects,
        params["rate"],
        drive=params["physics_drive"],
        physics_trains=torque_trains(
            params.get("physics_trains", "all"), network.embed.in_features
        ),
        levelled=fitted.levelled,
    )
    return kept_level_shift(module, fitted)


def kept_level_shift(
    module: NeuralMusculoskeletalModule, fitted: NeuralMusculoskeletalModule
) -> NeuralMusculoskeletalModule:
    """``module`` (built on a copy of ``fitted``'s network) with its mean level kept, too."""
    if module.levelled:
        with torch.no_grad():
            module.level_shift.copy_(fitted.level_shift)
    return module


def burn_in(params: Mapping) -> int:
    """Steps at each window's start left out of the torque term (activation dynamics settle)."""
    return min(10, int(params["window"]) // 4)


def synergists(physics: MusculoskeletalModel, unmeasured: Sequence[int]) -> dict[int, list[int]]:
    """Each muscle of ``unmeasured``'s measured synergists: the others that act as it does.

    A muscle acts as its mean moment arm's sign over the coordinate's range says (flexor or
    extensor); the synergists of a muscle without EMG are the muscles of the same sign not in
    ``unmeasured``. Muscles without any are left out.

    Examples
    --------
    >>> from deepemg.opensim import elbow_model
    >>> model = elbow_model()
    >>> groups = synergists(model, [2, 6])  # BRA, TRImed
    >>> {model.muscles[u]: [model.muscles[j] for j in g] for u, g in groups.items()}
    {'BRA': ['BIClong', 'BICshort', 'BRD'], 'TRImed': ['TRIlong', 'TRIlat']}
    """
    low, high = physics.coordinate_range
    with torch.no_grad():
        angles = torch.linspace(low, high, 25, dtype=torch.float64)
        action = torch.sign(physics.moment_arm(angles).mean(dim=0)).tolist()
    missing = {int(j) for j in unmeasured}
    measured = [j for j in range(len(action)) if j not in missing]
    groups = {u: [j for j in measured if action[j] == action[u] != 0] for u in sorted(missing)}
    return {u: g for u, g in groups.items() if g}


def criterion_params(
    params: Mapping,
    torque_scale: float,
    unmeasured,
    n_inputs: int = N_KINEMATIC_INPUTS,
    groups: Mapping[int, Sequence[int]] | None = None,
) -> dict:
    """:class:`~deepemg.nmm_module.NMMLoss`'s arguments for a fit of a network of ``n_inputs``.

    ``groups``: the synergists of the muscles without EMG (:func:`synergists`).

    Examples
    --------
    >>> from deepemg import NMMRegressor
    >>> criterion_params(NMMRegressor().get_params(), 10.0, [0], n_inputs=9)["effort_weight"]
    0.01
    """
    params = resolved_params(params, n_inputs)
    return dict(
        data_weight=params["data_weight"],
        physics_weight=params["physics_weight"],
        effort_weight=params["effort_weight"],
        smoothness_weight=params["smoothness_weight"],
        synergy_weight=params["synergy_weight"],
        synergist_weight=params["synergist_weight"],
        synergists=dict(groups or {}),
        synergist_offset=float(params.get("deep_start", 0.0)),
        synergist_level_weight=params.get("synergist_level_weight", 0.0),
        torque_scale=torque_scale,
        burn_in=burn_in(params),
        unmeasured=list(unmeasured),
    )


def optimizer_params(params: Mapping) -> dict:
    """The optimiser's settings.

    AdamW for the network; the subject parameters without decay (it would pull them to
    mid-range) and 10x faster. ``foreach``: one call per step for all the parameters rather
    than a Python loop over them (the same numbers; PyTorch's choice on GPUs, not on CPUs).
    """
    return dict(
        optimizer=torch.optim.AdamW,
        optimizer__foreach=True,
        optimizer__weight_decay=params["weight_decay"],
        optimizer__param_groups=[
            ("subject_parameters.*", {"weight_decay": 0.0, "lr": 10 * params["lr"]})
        ],
        lr=params["lr"],
    )


def _own_callbacks(params: Mapping, max_epochs: int, schedule: bool, validation: bool) -> list:
    """Deepemg's callbacks: each term's scoring, the schedule, early stopping, progress."""
    callbacks = [
        (f"train_{t}", PassthroughScoring(name=f"train_{t}", on_train=True)) for t in TERMS
    ]
    if schedule:
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR
        # last_epoch=-1: a fresh schedule over this fit's epochs, also where the history
        # goes on (warm_start; skorch would resume it at len(history))
        callbacks.append(
            ("lr_scheduler", LRScheduler(policy=cosine, T_max=max_epochs, last_epoch=-1))
        )
    if validation:
        callbacks += [(f"valid_{t}", PassthroughScoring(name=f"valid_{t}")) for t in TERMS]
        callbacks.append(
            ("early_stopping", EarlyStopping(patience=params["patience"], load_best=True))
        )
    if params["progress_bar"]:
        callbacks.append(("progress_bar", ProgressBar()))
    return callbacks


def build_net(
    module: NeuralMusculoskeletalModule,
    params: Mapping,
    *,
    criterion: dict,
    optimizer: dict,
    max_epochs: int,
    seed: int,
    schedule: bool = True,
    validation: bool = False,
    extra: Sequence = (),
) -> NMMNet:
    """The skorch net that trains ``module`` (fit, and personalize with a frozen network).

    ``extra``: the user's callbacks (:func:`check_callbacks`), after deepemg's own.
    """
    callbacks = _own_callbacks(params, max_epochs, schedule, validation) + list(extra)
    split = ValidSplit(params["validation_fraction"], random_state=seed % 2**31)
    return NMMNet(
        module=module,
        criterion=NMMLoss,
        **{f"criterion__{k}": v for k, v in criterion.items()},
        prior_weight=params["prior_weight"],
        **optimizer,
        max_epochs=max_epochs,
        batch_size=int(params["batch_size"]),
        iterator_train__shuffle=True,
        iterator_valid__batch_size=PREDICT_BATCH,
        train_split=split if validation else None,
        callbacks=callbacks,
        verbose=params["verbose"],
        device=check_device(params["device"]),
    )


def training_windows(
    features: np.ndarray,
    sequences: SequenceInputs,
    subject_index: np.ndarray,
    params: Mapping,
    muscles: list,
    y: np.ndarray | None = None,
    drive: str = "predicted",
) -> tuple[dict, dict]:
    """The module's inputs and the criterion's target, cut into overlapping windows.

    Parameters
    ----------
    features : array of shape (n_sequences, n_timesteps, n_inputs)
        The standardised network inputs.
    sequences : SequenceInputs
        The checked sequences (angle, velocity, torque).
    subject_index : array of shape (n_sequences,)
        Each sequence's row in the subject parameters.
    params : mapping
        The estimator's parameters (``window``, ``overlap``).
    muscles : list of str
    y : array of shape (n_sequences, n_timesteps, n_muscles), optional
        Measured EMG, NaN where not measured; None: all NaN.
    drive : str, default="predicted"
        With "measured" or "both" and ``y``, ``y`` also drives its muscles
        (``emg_override``, saturated at 1).

    Returns
    -------
    data, target : dict
    """
    w = int(params["window"])
    starts = window_starts(sequences.X.shape[1], w, float(params["overlap"]))
    data = {
        "features": to_windows(features, starts, w).astype(np.float32),
        "angle": to_windows(sequences.angle, starts, w),
        "velocity": to_windows(sequences.velocity, starts, w),
        "subject": np.repeat(subject_index, len(starts)).astype(np.int64),
    }
    emg = np.full((*sequences.X.shape[:2], len(muscles)), np.nan) if y is None else y
    target = {
        "emg": to_windows(emg, starts, w).astype(np.float32),
        "torque": to_windows(sequences.torque, starts, w),
    }
    if drive != "predicted" and y is not None:
        drive_emg = saturate_envelopes(y, "y", muscles)  # at most fully excited
        data["emg_override"] = to_windows(drive_emg, starts, w).astype(np.float32)
    return data, target


def fit_module(
    params: Mapping,
    physics: MusculoskeletalModel,
    data: dict,
    target: dict,
    *,
    n_subjects: int,
    torque_scale: float,
    unmeasured: list,
    callbacks: Sequence = (),
    checkpoint=None,
    previous: NMMNet | None = None,
    absent: Sequence[int] = (),
) -> NMMNet:
    """Build and train the net of a fit, seeded by ``params["random_state"]``.

    A new module (:func:`build_module`), or with ``previous`` (a warm fit) a copy of its
    module (:func:`continued_module`) whose subjects ``absent`` from the data keep their
    fitted parameters. The subjects' codes are centred (code 0 is the population's).
    ``checkpoint``: what :class:`~deepemg.nmm_module.NMMCheckpoint` calls to write the
    estimator being fitted, ``checkpoint(net, path)``.
    """
    n_inputs = data["features"].shape[-1]
    params = resolved_params(params, n_inputs)
    seed = params["random_state"]
    seed = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else int(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if previous is None:
            levelled = levelled_muscles(params, n_inputs, unmeasured)
            module = build_module(params, physics, n_inputs, n_subjects, levelled)
        else:
            module = continued_module(params, previous.module_, n_subjects)
        net = build_net(
            module,
            params,
            criterion=criterion_params(
                params, torque_scale, unmeasured, n_inputs, synergists(physics, unmeasured)
            ),
            optimizer=optimizer_params(params),
            max_epochs=int(params["max_epochs"]),
            seed=seed,
            validation=bool(params["early_stopping"]),
            extra=callbacks,
        )
        train(net, data, target, checkpoint, previous)
    for k in absent:  # not the prior's: their fitted parameters
        assert previous is not None, "subjects absent from a warm fit's data need its net"
        net.module_.subject_parameters.copy_subject(k, previous.module_.subject_parameters, k)
    net.module_.center_codes()
    if previous is None:  # a warm fit keeps its subjects' levels as they were
        net.module_.center_levels()
    return net


def train(net: NMMNet, data: dict, target: dict, checkpoint=None, previous: NMMNet | None = None):
    """Train ``net``; after ``previous`` (a warm fit), its history going on.

    ``checkpoint(net, path)`` writes the estimator being fitted (what
    :class:`~deepemg.nmm_module.NMMCheckpoint` calls while it trains).
    """
    net.write_checkpoint_ = checkpoint
    try:
        if previous is None:
            net.fit(data, target)
        else:
            net.initialize()
            net.history = copy.deepcopy(previous.history)  # the old one stays as it was
            net.partial_fit(data, target)
    finally:
        net.write_checkpoint_ = None
    return net


def personalize_subjects(
    fitted: NeuralMusculoskeletalModule,
    params: Mapping,
    data: dict,
    target: dict,
    known_rows: list,
    *,
    torque_scale: float,
    max_epochs: int,
    lr: float,
):
    """Fit subjects' parameters (and codes) with the fitted network frozen.

    Parameters
    ----------
    fitted : NeuralMusculoskeletalModule
        The fitted module (left unchanged).
    params : mapping
        The estimator's parameters (loss weights, ``random_state``...).
    data, target : dict
        :func:`training_windows` of the subjects' sequences, ``subject`` numbering the
        subjects being personalised.
    known_rows : list of int or None
        Per subject being personalised, its row in the fitted table (it starts there) or
        None (a new subject, from nominal values).
    torque_scale : float
        The fit's torque scale (N·m).
    max_epochs : int
    lr : float
        Adam learning rate.

    Returns
    -------
    subjects : SubjectParameters
        The personalised subjects' parameters, in the order of ``known_rows``.
    history : skorch.History
    """
    local = fitted.subject_parameters.subset(list(known_rows))
    seed = 0 if params["random_state"] is None else int(params["random_state"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = NeuralMusculoskeletalModule(
            copy.deepcopy(fitted.network),
            fitted.physics,
            local,
            params["rate"],
            drive="measured",
            freeze_network=True,
            levelled=fitted.levelled,
        )
        module = kept_level_shift(module, fitted)
        criterion = dict(
            # the EMG depends on the subject through its code and its deep muscles' level
            data_weight=float(params["data_weight"]) if params["subject_embedding"] else 0.0,
            physics_weight=float(params["physics_weight"]),
            # the effort, as in the fit, on the levelled muscles only: what opposes their level
            effort_weight=float(
                resolved_params(params, fitted.network.embed.in_features)["effort_weight"]
            ),
            unmeasured=fitted.levelled,
            synergy_weight=0.0,
            # the new subjects' deep levels held to their synergists as in the fit
            synergist_level_weight=float(params.get("synergist_level_weight", 0.0)),
            synergists=synergists(fitted.physics, fitted.levelled),
            synergist_offset=float(params.get("deep_start", 0.0)),
            torque_scale=torque_scale,
            burn_in=burn_in(params),
        )
        net = build_net(
            module,
            params,
            criterion=criterion,
            optimizer=dict(optimizer=torch.optim.Adam, optimizer__foreach=True, lr=lr),
            max_epochs=max_epochs,
            seed=seed,
            schedule=False,
        )
        net.fit(data, target)
    return net.module_.subject_parameters, net.history
