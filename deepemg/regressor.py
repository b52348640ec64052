"""``NMMRegressor``: the neural musculoskeletal model as a scikit-learn estimator."""

from __future__ import annotations

import functools
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from ._base import MODEL_CONSTRAINTS, MUSCLE_LAW_CONSTRAINT, MusculoskeletalEstimator
from ._bounds import parameters_at_bounds, warn_at_bounds
from ._state import unchanged_on_failure
from .adequacy import record_adequacy, trusts_physics
from .features import emg_input_channels, fitted_emg_inputs, network_inputs
from .metrics import _predict_emg, _refuse_unusable_scoring
from .nmm_module import DRIVES
from .persistence import ModelFileMixin, save_checkpoint
from .threads import with_own_threads
from .training import (
    SYNERGIST_LEVEL_WEIGHT,
    SYNERGIST_WEIGHT,
    build_module,
    build_net,
    check_callbacks,
    check_device,
    criterion_params,
    fit_module,
    optimizer_params,
    personalize_subjects,
    synergists,
    training_windows,
)
from .validation import (
    SequenceInputs,
    check_envelopes,
    check_subject_ids,
    measured_r2,
    saturate_envelopes,
    subject_array,
    unique_subjects,
)
from .windows import from_windows, to_windows, window_starts

__all__ = ["PREDICT_PHYSICS", "NMMRegressor"]

PREDICT_PHYSICS = ("auto", "torque", "level", "none", "emg")
"""``predict_physics``: the prediction-time physics (:meth:`NMMRegressor.predict`)."""

_CONSTRAINTS: dict = {
    **MODEL_CONSTRAINTS,
    **MUSCLE_LAW_CONSTRAINT,
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
    "physics_trains": [StrOptions({"auto", "all", "parameters"})],
    "emg_inputs": [StrOptions({"auto"}), "boolean"],
    "effort_weight": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
    "smoothness_weight": [Interval(Real, 0, None, closed="left")],
    "synergy_weight": [Interval(Real, 0, None, closed="left")],
    "synergist_weight": [Interval(Real, 0, None, closed="left")],
    "synergist_level_weight": [Interval(Real, 0, None, closed="left")],
    "prior_weight": [Interval(Real, 0, None, closed="left")],
    "deep_start": [Real],
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
    "predict_physics": [StrOptions(set(PREDICT_PHYSICS))],
    "correction_weight": [Interval(Real, 0, None, closed="left")],
    "correction_steps": [Interval(Integral, 1, None, closed="left")],
    "correction_solver": [StrOptions({"gauss-newton", "adam"})],
    "curve_parameters": ["boolean"],
    "random_state": ["random_state"],
}
"""The parameters' constraints (scikit-learn's ``_parameter_constraints``)."""


def _require_y(y) -> None:
    """A clear error for ``fit(X, None)``."""
    if y is None:
        raise ValueError(
            "NMMRegressor requires y to be passed, but the target y is None: "
            "give the EMG envelopes (NaN for muscles not measured)."
        )


def _check_y(y, X: np.ndarray, physics, require_measured: bool = True) -> np.ndarray:
    """``y`` in MVC units, one column per muscle, NaN where not measured, or a clear error."""
    y = np.asarray(y, dtype=np.float64)
    expected = (*X.shape[:2], physics.n_muscles)
    if y.shape != expected:
        raise ValueError(
            f"y must be shaped (n_sequences, n_timesteps, n_muscles) = {expected} with one "
            f"column per muscle {physics.muscles} (NaN where not measured), got {y.shape}."
        )
    y = check_envelopes(y, "y", physics.muscles)
    if require_measured and np.isnan(y).all():
        raise ValueError(
            "y has no measured EMG (all NaN): the NMM learns the EMG from the measured "
            "channels; give the surface muscles' envelopes."
        )
    return y


def _fit_labels(subject_ids, n: int, fitted) -> np.ndarray:
    """Each sequence's subject in a fit.

    Each sequence's subject: ``subject_ids``, or one subject when None (the ``fitted``
    one in a warm fit).
    """
    if subject_ids is not None:
        return check_subject_ids(subject_ids, n)
    if fitted is None:
        return np.zeros(n, dtype=int)
    if len(fitted) != 1:
        raise ValueError(
            f"this model was fitted on {len(fitted)} subjects ({fitted.tolist()}): a "
            "warm_start fit needs subject_ids naming each sequence's subject (None means the "
            "fitted subject of a one-subject model)."
        )
    return np.repeat(fitted, n)


def _physics_mode(mode) -> str | None:
    """A per-call ``predict_physics``, checked (None: the estimator's)."""
    if mode is not None and mode not in PREDICT_PHYSICS:
        raise ValueError(
            f"predict_physics={mode!r}; choose 'auto', 'torque', 'level', 'none' or 'emg' "
            "(None: the estimator's)."
        )
    return mode


def _measured_drive(estimator, sequences: SequenceInputs, shape) -> np.ndarray:
    """``X``'s surface EMG of each muscle that has a channel (NaN elsewhere), at most 1."""
    from .channels import emg_channel

    measured = np.full(shape, np.nan)
    for j, muscle in enumerate(estimator.muscles_):
        if emg_channel(muscle) in sequences.names:
            values = sequences.channel(emg_channel(muscle))[..., None]
            check_envelopes(values, "X's EMG channels", [emg_channel(muscle)])
            measured[..., j] = saturate_envelopes(values, "X", [muscle])[..., 0]
    return measured


def _corrected(estimator, sequences: SequenceInputs, prior, index, mode: str) -> np.ndarray:
    """The prior EMG corrected by the subjects' muscle models.

    The prior EMG corrected by :func:`deepemg.correction.correct_emg` with the subjects'
    muscle models; with ``mode="emg"``, ``X``'s surface EMG drives its muscles.
    """
    from .correction import correct_emg

    device = check_device(estimator.device)
    measured = None
    if mode == "emg":
        measured = torch.as_tensor(
            _measured_drive(estimator, sequences, prior.shape), device=device
        )
    angle, velocity, tau, index, prior = (
        torch.as_tensor(a, device=device)
        for a in (sequences.angle, sequences.velocity, sequences.torque, index, prior)
    )
    emg = correct_emg(
        estimator.net_.module_,
        prior,
        angle,
        velocity,
        tau,
        index,
        torque_scale=estimator.torque_scale_,
        weight=float(estimator.correction_weight),
        steps=int(estimator.correction_steps),
        solver=estimator.correction_solver,
        measured=measured,
    )
    return emg.cpu().numpy()


def _restored_physics(estimator, state: dict):
    """The model a fitted ``state`` was fitted with, resolved from ``estimator``'s parameters."""
    try:
        physics = estimator._resolve_physics()
    except ValueError as error:
        raise ValueError(f"its OpenSim model does not build ({error}).") from None
    if list(physics.muscles) != list(state["muscles_"]):
        raise ValueError(
            f"it was fitted with the muscles {list(state['muscles_'])}, but its OpenSim "
            f"model has {list(physics.muscles)}: pass the .osim it was fitted with (model=)."
        )
    return physics


def _fitted_state(estimator, net, module=None) -> dict:
    """:meth:`NMMRegressor.get_fitted_state` of ``estimator`` with ``net`` (and ``module``)."""
    module = net.module_ if module is None else module
    personalized = getattr(estimator, "personalize_history_", None)
    return {
        **{k: getattr(estimator, k) for k in estimator.FITTED_STATE[:7]},
        "unmeasured": list(net.criterion_.unmeasured),
        "module": module.state_dict(),
        "history_": list(net.history),
        "personalize_history_": None if personalized is None else list(personalized),
    }


def _restored_attributes(state: dict, names, physics, net) -> dict:
    """The fitted attributes ``state`` gives (:meth:`NMMRegressor.set_fitted_state`)."""
    attributes = {name: state[name] for name in names}
    attributes.update(physics_=physics, net_=net, history_=net.history)
    if state.get("personalize_history_") is not None:
        attributes["personalize_history_"] = History(state["personalize_history_"])
    return attributes


_LEVEL_KEY = "subject_parameters.unconstrained.emg_level"


def _restored_net(params: dict, physics, state: dict):
    """A net with the fitted weights of ``state`` (:meth:`NMMRegressor.set_fitted_state`)."""
    n_inputs, n_subjects = len(state["feature_mean_"]), len(state["subjects_"])
    # files written before the deep muscles' EMG level (deepemg < 0.6) have none
    levelled = state["unmeasured"] if _LEVEL_KEY in state["module"] else []
    if levelled and "level_shift" not in state["module"]:
        raise ValueError(
            "it was written by a development version of deepemg 0.6 that did not keep the "
            "subjects' mean EMG level apart from the network: fit it again."
        )
    try:
        net = build_net(
            build_module(params, physics, n_inputs, n_subjects, levelled),
            params,
            criterion=criterion_params(
                params,
                state["torque_scale_"],
                state["unmeasured"],
                n_inputs,
                synergists(physics, state["unmeasured"]),
            ),
            optimizer=optimizer_params(params),
            max_epochs=int(params["max_epochs"]),
            seed=0,
        )
        net.initialize()
    except Exception as error:
        first = (str(error).splitlines() or [repr(error)])[0]
        raise ValueError(f"its settings describe no network deepemg can build ({first}).") from None
    try:
        net.module_.load_state_dict(state["module"], strict=True)
    except Exception as error:
        first = (str(error).splitlines() or [repr(error)])[0]
        raise ValueError(
            "the saved weights do not fit the estimator they describe (has the .osim file "
            f"changed since?): {first}"
        ) from None
    net.module_.eval()
    net.history = History(state["history_"])
    return net


def _check_personalize(estimator, sequences, subject_ids, max_epochs, lr) -> tuple:
    """``personalize``'s labels and epochs, or a clear error."""
    if subject_ids is None:
        raise ValueError("personalize needs subject_ids naming the new subject(s).")
    labels = check_subject_ids(subject_ids, sequences.X.shape[0])
    known = estimator.subjects_.tolist()
    check_subject_ids(subject_array(known + labels.tolist()), len(known) + len(labels))
    epochs = int(estimator.max_epochs if max_epochs is None else max_epochs)
    if epochs < 1 or not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"max_epochs must be >= 1 and lr > 0, got {epochs} and {lr}.")
    if not estimator.physics_weight and not (estimator.subject_embedding and estimator.data_weight):
        raise ValueError(
            "personalize fits a subject's parameters to its torque (physics_weight) and, "
            "with subject_embedding > 0, its code to its surface EMG (data_weight); with "
            "physics_weight=0 and no subject code there is nothing to fit: set "
            "physics_weight > 0 for personalize."
        )
    return labels, epochs


def _merge_subjects(module, known: list, targets: list, local) -> np.ndarray:
    """Put personalised subjects' parameters into the fitted table.

    Put the personalised subjects' parameters ``local`` into ``module``'s table (known
    ones replaced, new ones appended); returns the subjects' labels.
    """
    new = [s for s in targets if s not in known]
    merged = module.subject_parameters.subset(list(range(len(known))) + [None] * len(new))
    subjects = known + new
    for k, subject in enumerate(targets):
        merged.copy_subject(subjects.index(subject), local, k)
    module.subject_parameters = merged.to(next(module.parameters()).device)
    at_bounds = parameters_at_bounds(module.parameter_table(subjects))
    warn_at_bounds([r for r in at_bounds if r["subject"] in targets], "personalize")
    return subject_array(subjects)  # each label as the user gave it


def _codes(parameters) -> np.ndarray:
    """The subjects' codes of a :class:`~deepemg.physics.SubjectParameters`, float64."""
    if not parameters.code_dim:
        return np.zeros((parameters.n_subjects, 0))
    return parameters.code.detach().cpu().numpy().astype(np.float64)


def _fitted_inputs(physics, sequences: SequenceInputs, labels, emg_inputs) -> dict:
    """A new fit's model, channels, subjects and input standardisation (its attributes)."""
    read = emg_input_channels(sequences.names, physics.muscles, emg_inputs)
    inputs = network_inputs(sequences, read)
    flat = inputs.reshape(-1, inputs.shape[-1])
    std = flat.std(axis=0)
    return {
        "physics_": physics,
        "muscles_": list(physics.muscles),
        "n_channels_": sequences.X.shape[2],
        "channels_": sequences.names,
        "subjects_": unique_subjects(labels),
        "feature_mean_": flat.mean(axis=0),
        "feature_std_": np.where(std > 1e-8, std, 1.0),
        "torque_scale_": float(max(sequences.torque.std(), 1e-3)),
    }


def _continues(estimator) -> bool:
    """Whether this fit continues the fitted state (``warm_start``), or a clear error."""
    if not (estimator.warm_start and hasattr(estimator, "net_")):
        return False
    changed = estimator._changed_since_fit()
    if changed is not None:
        name, value = changed
        raise ValueError(
            f"warm_start=True continues the fitted network, which is built for "
            f"{name}={value!r}, but {name}={getattr(estimator, name)!r} now: set it back "
            f"(set_params({name}={value!r})), or fit with warm_start=False to start anew."
        )
    return True


def _predicted_emg(estimator, sequences: SequenceInputs, index, mode=None) -> np.ndarray:
    """The network's EMG of checked ``sequences``, with the physics ``mode``.

    "none": the network alone; "level": with the subjects' EMG level; "torque", "emg": that,
    corrected; "auto": "torque" for the subjects whose model adequacy allows, "none" for the
    others.
    """
    mode = estimator.predict_physics if mode is None else mode
    trusted = np.full(len(index), mode != "none")
    if mode == "auto":  # the physics where the subject's model adequacy allows
        adequacy = getattr(estimator, "model_adequacy_", None) or {}
        trusted = trusts_physics(adequacy, estimator.subjects_.tolist(), index)
        mode = "torque"
    w, n_steps = int(estimator.window), sequences.X.shape[1]
    starts = window_starts(n_steps, w, float(estimator.predict_overlap))
    features = to_windows(estimator._features(sequences), starts, w).astype(np.float32)
    windows = {"features": features}
    if estimator.subject_embedding or estimator.net_.module_.levelled:  # the subject's code, level
        windows["subject"] = np.repeat(index, len(starts)).astype(np.int64)
    if estimator.net_.module_.levelled:  # the level where the physics is trusted
        windows["with_level"] = np.repeat(trusted, len(starts))
    emg = estimator.net_.forward(windows, training=False, device="cpu")
    emg = from_windows(emg.numpy().astype(np.float64), starts, n_steps)
    if mode in ("none", "level") or not trusted.any():
        return emg
    if trusted.all():
        return _corrected(estimator, sequences, emg, index, mode)
    rows = np.flatnonzero(trusted)
    emg[rows] = _corrected(estimator, sequences.subset(rows), emg[rows], index[rows], mode)
    return emg


def _physics_inputs(estimator, X, subject_ids) -> tuple:
    """Predicted EMG, angle, velocity and subject index as tensors on the module's device."""
    sequences = estimator._prepare(X)
    device = check_device(estimator.device)
    index = estimator._subject_codes(subject_ids, sequences.X.shape[0])
    emg = _predicted_emg(estimator, sequences, index)
    arrays = (emg, sequences.angle, sequences.velocity, index)
    return tuple(torch.as_tensor(a, device=device) for a in arrays)


def _fit_net(estimator, physics, sequences, labels, y, callbacks, previous, known: list):
    """The trained net of a fit (:func:`deepemg.training.fit_module`)."""
    params = estimator.get_params()
    data, target = training_windows(
        estimator._features(sequences),
        sequences,
        estimator._subject_codes(labels, len(labels)),
        params,
        estimator.muscles_,
        y,
        params["physics_drive"],
    )
    net = fit_module(
        params,
        physics,
        data,
        target,
        n_subjects=len(estimator.subjects_),
        torque_scale=estimator.torque_scale_,
        unmeasured=[j for j in range(y.shape[2]) if np.isnan(y[..., j]).all()],
        callbacks=callbacks,
        checkpoint=functools.partial(save_checkpoint, estimator),
        previous=previous,
        absent=[k for k, s in enumerate(known) if s not in set(labels.tolist())],
    )
    table = net.module_.parameter_table(list(estimator.subjects_))
    warn_at_bounds(parameters_at_bounds(table), "fit")
    return net


def _personalized(estimator, sequences, labels, measured, targets: list, epochs: int, lr: float):
    """The personalised subjects' parameters (in the order of ``targets``) and the history."""
    known = estimator.subjects_.tolist()
    params = estimator.get_params()
    index = np.array([targets.index(s) for s in labels.tolist()])
    data, target = training_windows(
        estimator._features(sequences),
        sequences,
        index,
        params,
        estimator.muscles_,
        measured,
        drive="measured",
    )
    return personalize_subjects(
        estimator.net_.module_,
        params,
        data,
        target,
        [known.index(s) if s in known else None for s in targets],
        torque_scale=estimator.torque_scale_,
        max_epochs=epochs,
        lr=lr,
    )


class NMMRegressor(ModelFileMixin, MusculoskeletalEstimator, RegressorMixin, BaseEstimator):
    """Deep-muscle EMG from kinematics and load, with a physics-integrated Transformer.

    A Transformer reads the standardised joint angle, velocity, acceleration and load over
    windows of ``window`` steps and predicts every muscle's EMG envelope, which drives a
    differentiable, subject-personalised Hill-type model (:mod:`deepemg.physics`) to joint
    torque. Training minimises ``data_weight`` x the MSE on the measured EMG + ``physics_weight``
    x the squared torque residual against inverse dynamics + ``effort_weight`` x the mean
    squared EMG of muscles never measured + a weak prior, learning the network and 32 bounded
    parameters per subject together (:mod:`deepemg.training`; docs/nmm.md). Deep ensembles:
    :class:`deepemg.ensemble.NMMEnsemble`.

    Parameters
    ----------
    model : "elbow", path to an .osim file, or MusculoskeletalModel, default="elbow"
        The musculoskeletal model.
    coordinate : str, default="r_elbow_flex"
        Coordinate of an OpenSim model file.
    locked : dict, optional
        Values (rad) of other coordinates of an OpenSim model file.
    channels : sequence of str, optional
        Names of ``X``'s channels (:mod:`deepemg.channels`): ``<joint>_angle`` (rad),
        ``_velocity`` (rad/s), ``_acceleration`` (rad/s²), ``load_mass`` (kg), optionally
        ``<joint>_torque`` (N·m; else inverse dynamics). Default: :data:`deepemg.ELBOW_CHANNELS`.
    rate : float, default=100.0
        Sampling rate (Hz).
    d_model, n_heads, n_layers, dropout : int, int, int, float, default=32, 4, 2, 0.1
        Transformer width, heads, layers and dropout (none on the attention weights since
        0.6: their masks cost most of the attention's time, fit_profile.txt).
    subject_embedding : int, default=0
        Length of a learned code per subject that conditions the network (FiLM), learned in
        ``fit`` (centred: code 0 is the population) and by :meth:`personalize` from a new
        subject's surface EMG; 0: the network's EMG does not depend on the subject
        (docs/nmm.md, "Personalised EMG").
    window : int, default=100
        Window length (steps) the Transformer sees.
    overlap, predict_overlap : float, default=0.5, 0.25
        Overlap of consecutive windows in training and in ``predict`` (averaged), in [0, 1).
    data_weight, physics_weight, effort_weight : float, default=1.0, 1.0, "auto"
        Weights of the loss terms; effort "auto": 0.01 where the torque trains the subject
        parameters only, 0.1 where it trains the network (0.5's value;
        :data:`deepemg.training.EFFORT_WEIGHTS`).
    physics_drive : {"predicted", "measured", "both"}, default="measured"
        What drives the muscle model during training: the network's EMG; the measured EMG
        where ``y`` has it (the torque residual goes to the unmeasured muscles); or both.
    physics_trains : {"auto", "parameters", "all"}, default="auto"
        What the torque term trains: the subject parameters only (the network's EMG enters
        the muscle model detached; the deep muscles meet the torque in ``predict``'s
        correction), or the network too (0.5's training). "auto": "parameters" where the
        network reads surface EMG (``emg_inputs_``), "all" where it reads the kinematics only
        (:func:`deepemg.training.torque_trains`; docs/nmm.md).
    emg_inputs : "auto" or bool, default="auto"
        Whether the network also reads ``X``'s surface EMG (``emg_<muscle>``) of the trial it
        predicts: "auto" reads every such channel fit's ``X`` has (``emg_inputs_``), False
        none; ``predict`` then needs them (:mod:`deepemg.features`).
    smoothness_weight, synergy_weight, prior_weight : float, default=0.0, 1.0, 1e-3
        Weights of the EMG's mean squared step-to-step change, of the share of the unmeasured
        muscles' EMG outside the span of the measured EMG (synergy extrapolation as a soft
        constraint) and of the prior on the subject parameters.
    synergist_weight : float, default=3.0
        Weight of the squared gap between each muscle without EMG's mean EMG and that of its
        measured synergists (the muscles that act on the joint as it does), per window: the
        level the torque cannot set (a deep antagonist's co-contraction, a deep agonist's
        share); 0 leaves it to the effort term (deepemg < 0.6; docs/nmm.md, "The deep
        muscles' level").
    synergist_level_weight : float, default=0.01
        Weight of the same gap, of the means' logarithms, for the EMG with each subject's
        level (the level the torque trains, where the torque trains the subject parameters):
        without it the torque and the effort term set that level, and the correction starts
        from it (the brachialis came out at 0.7 of its truth, a deep antagonist at 0.3-1.5);
        small, so that the torque still moves it where its muscle model can tell (docs/nmm.md,
        "The deep muscles' synergists"). 0: deepemg before it.
    deep_start : float, default=0.0
        Logits added to the network's initial output for the muscles without EMG in fit (0:
        they start near EMG 0.5), and to the level the synergist terms hold them to (their
        synergists' mean EMG). Where the torque does not pin their level (co-contraction),
        it stays near its start (docs/results/deep_level.txt); :class:`~deepemg.NMMEnsemble`
        spreads it over its members so that their spread shows it.
    max_epochs, batch_size : int, default=30, 8
        Training epochs; windows per batch (60 epochs at 3e-3 until 0.5: fit_profile.txt).
    lr : float, default=6e-3
        AdamW learning rate of the network (cosine-annealed to 0); the subject parameters
        learn at 10 x ``lr`` without weight decay.
    weight_decay : float, default=1e-4
        AdamW weight decay of the network.
    early_stopping, validation_fraction, patience : bool, float, int, default=False, 0.1, 10
        Hold out ``validation_fraction`` of the windows; stop after ``patience`` epochs
        without improvement.
    progress_bar, verbose : bool, int, default=False, 0
        Show skorch's progress bar; print its epoch table when > 0.
    callbacks : list of skorch callbacks or (name, callback) pairs, optional
        Run after deepemg's own; each ``fit`` trains clones (the fitted ones are in
        ``net_.callbacks_``); not saved. :class:`~deepemg.nmm_module.NMMCheckpoint` writes
        model files during a fit (docs/nmm.md, "Callbacks, fine-tuning and checkpoints").
    warm_start : bool, default=False
        ``fit`` on a fitted estimator continues training its network and subjects for
        ``max_epochs`` more epochs (fresh optimiser and schedule, same standardisation,
        ``fitted_with_`` unchanged; docs/nmm.md, "Fine-tuning a saved model").
    n_threads : int or None, default=None
        torch and BLAS threads of each call (:mod:`deepemg.threads`). None: one for ``fit``
        and ``personalize``, the process's for predictions.
    predict_physics : {"auto", "torque", "level", "none", "emg"}, default="auto"
        Physics at prediction time (:func:`deepemg.correction.correct_emg`). "torque": the
        network's EMG with the subject's EMG level on the muscles without EMG, corrected until
        the subject's muscle model reproduces the inverse-dynamics torque; "emg": ``X``'s
        surface EMG drives its muscles and the residual goes to the others; "level": the
        network's EMG with the subject's level, not corrected; "none": the network's EMG
        alone, nothing the torque taught (247,000 against 77,800 samples/s with 2 torch
        threads on a 5-minute recording, correction_speed.txt); "auto": "torque" unless the
        subject's ``model_adequacy_`` is poor, "none" there
        (:func:`deepemg.adequacy.trusts_physics`). Chosen on the benchmark's scenarios
        (docs/nmm.md, docs/scenarios.md).
    correction_weight : float, default=0.1
        Weight of the correction's squared change (logit space) against the torque residual.
    correction_solver, correction_steps : {"gauss-newton", "adam"}, int, default="gauss-newton", 100
        The correction's solver (:func:`~deepemg.correction.correct_emg`); "adam", the slower
        reference of 0.2-0.5, takes ``correction_steps`` steps (correction_accuracy.txt).
    muscle_law : str or MuscleLaw, default="from_model"
        The muscle force law: ``"from_model"``, the law the model file's muscles declare
        (the built-in elbow's rigid-tendon DeGrooteFregly2016 muscles:
        ``"rigid_tendon_degroote_fregly"``; Arm26's compliant Thelen2003 muscles:
        ``"compliant_tendon_thelen2003"``; a ready model's own law), or a name in
        :data:`deepemg.physics.MUSCLE_LAWS` when ``fit`` runs (laws registered since
        included), or a :class:`~deepemg.physics.MuscleLaw`: the file's muscles converted to it.
    curve_parameters : bool, default=False
        Also learn each subject's muscle-curve shapes (the law's ``curve_shape_parameters``):
        53 parameters per subject for the rigid-tendon elbow, not 32 (docs/physics.md).
    device : str or torch.device, default="cpu"
        Where the network and the muscle model run (``"cuda"`` for a GPU).
    random_state : int or None, default=None
        Seed for initialisation and shuffling (in a forked torch RNG).

    Attributes
    ----------
    net_ : NMMNet
        The trained skorch net; ``history_`` has ``train_loss`` and each term's
        ``train_<term>`` (:data:`deepemg.training.TERMS`).
    personalize_history_ : skorch.History
        The loss history of the last :meth:`personalize`.
    physics_ : MusculoskeletalModel
    muscles_, channels_ : list of str
        Muscle order of ``y`` and of ``predict``'s output; ``X``'s channel names in fit.
    subjects_ : ndarray
        Subjects seen in ``fit`` (and added by ``personalize``).
    parameters_at_bounds_ : list of dict
        Subject parameters on a bound (:class:`~deepemg.ParameterBoundWarning`: a misfit).
    model_adequacy_ : dict of subject to :class:`~deepemg.adequacy.SubjectAdequacy` (docs/nmm.md)
    fitted_with_ : dict
        The parameters the fitted state is built for: predictions refuse to run when
        ``set_params`` has changed one since.

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

    _parameter_constraints: dict = _CONSTRAINTS

    _FITTED_WITH = tuple(
        "model coordinate locked rate window d_model n_heads n_layers subject_embedding "
        "muscle_law curve_parameters emg_inputs".split()
    )
    """Parameters the fitted state is built for (``channels`` only names ``X``'s channels)."""

    FITTED_STATE = tuple(
        "muscles_ subjects_ n_channels_ channels_ feature_mean_ feature_std_ torque_scale_ "
        "unmeasured module history_ personalize_history_".split()
    )
    """What a fitted estimator is beyond its parameters (:meth:`get_fitted_state`)."""

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
        physics_trains="auto",
        emg_inputs="auto",
        effort_weight="auto",
        smoothness_weight=0.0,
        synergy_weight=1.0,
        synergist_weight=SYNERGIST_WEIGHT,
        synergist_level_weight=SYNERGIST_LEVEL_WEIGHT,
        prior_weight=1e-3,
        deep_start=0.0,
        max_epochs=30,
        batch_size=8,
        lr=6e-3,
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
        predict_physics="auto",
        correction_weight=0.1,
        correction_steps=100,
        correction_solver="gauss-newton",
        muscle_law="from_model",
        curve_parameters=False,
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
        self.physics_trains = physics_trains
        self.emg_inputs = emg_inputs
        self.effort_weight = effort_weight
        self.smoothness_weight = smoothness_weight
        self.synergy_weight = synergy_weight
        self.synergist_weight = synergist_weight
        self.synergist_level_weight = synergist_level_weight
        self.prior_weight = prior_weight
        self.deep_start = deep_start
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
        self.predict_physics = predict_physics
        self.correction_weight = correction_weight
        self.correction_steps = correction_steps
        self.correction_solver = correction_solver
        self.muscle_law = muscle_law
        self.curve_parameters = curve_parameters
        self.random_state = random_state

    # ------------------------------------------------------------------ input checks
    _POPULATION_USE = (
        "their sequences are predicted with the population's parameters (the only subject's, "
        "when fit saw one)."
    )
    _UNSEEN_ADVICE = "Call personalize(X, subject_ids=...) for them first."

    @property
    def _min_timesteps(self) -> int:
        return int(self.window)

    def _check_prepared(self, sequences: SequenceInputs, fitted: bool) -> None:
        if fitted and sequences.X.shape[2] != self.n_channels_:
            raise ValueError(f"X has {sequences.X.shape[2]} channels; fit saw {self.n_channels_}.")

    def _population_code(self) -> int:
        return -1 if len(self.subjects_) > 1 else 0

    def _features(self, sequences: SequenceInputs) -> np.ndarray:
        """The network's input (kinematics, load, EMG) standardised by fit's mean and SD."""
        inputs = network_inputs(sequences, self.emg_inputs_)
        return (inputs - self.feature_mean_) / self.feature_std_

    @property
    def emg_inputs_(self) -> list[str]:
        """The surface EMG channels of ``X`` the network reads (:mod:`deepemg.features`)."""
        check_is_fitted(self, "feature_mean_")
        return fitted_emg_inputs(self.channels_, self.muscles_, len(self.feature_mean_))

    # ------------------------------------------------------------------ fit
    @unchanged_on_failure
    @with_own_threads
    def fit(self, X, y, subject_ids=None):
        """Fit the network and the subject parameters.

        ``X``: ``(n_sequences, n_timesteps, n_channels)``; ``y``: EMG envelopes (0..1),
        ``(n_sequences, n_timesteps, n_muscles)``, NaN where not measured; ``subject_ids``:
        each sequence's subject (None: one subject; with ``warm_start``, the fitted one).
        Returns self; a failure (Ctrl-C included, which propagates) leaves it as it was.
        """
        self._validate_params()
        _require_y(y)
        _refuse_unusable_scoring(self)  # scoring="r2" in cross-validation: an error, not NaN
        check_device(self.device)
        self._specification().law()  # a registered name now, or a MuscleLaw
        callbacks = check_callbacks(self.callbacks)  # checked before any work
        warm = _continues(self)
        physics = self.physics_ if warm else self._resolve_physics()
        sequences = self._prepare(X) if warm else self._prepare(X, physics)
        y = _check_y(y, sequences.X, physics)
        labels = _fit_labels(subject_ids, sequences.X.shape[0], self.subjects_ if warm else None)
        previous, known = (self.net_, self.subjects_.tolist()) if warm else (None, [])
        if warm:
            new = [s for s in unique_subjects(labels).tolist() if s not in known]
            self.subjects_ = subject_array(known + new)
        else:
            self.__dict__.pop("personalize_history_", None)
            self.__dict__.update(_fitted_inputs(physics, sequences, labels, self.emg_inputs))
        self.net_ = _fit_net(self, physics, sequences, labels, y, callbacks, previous, known)
        self.history_ = self.net_.history
        self._record_fitted_with()
        return record_adequacy(self, X, y, labels, history=self.history_, keep=warm)

    # ------------------------------------------------------------------ fitted state
    def get_fitted_state(self, *, net=None, module=None) -> dict:
        """The fitted state, :attr:`FITTED_STATE`, as plain values and a torch state dict.

        ``net`` (and its ``module``) replace the fitted ones (a checkpoint during fit).
        :func:`deepemg.persistence.save_model` writes it; :meth:`set_fitted_state` reads it.
        """
        return _fitted_state(self, self.net_ if net is None else net, module)

    def set_fitted_state(self, state: dict) -> NMMRegressor:
        """Become the fitted estimator ``state`` (:meth:`get_fitted_state`) describes.

        The model is resolved from this estimator's parameters; a ``ValueError`` says what
        does not fit (the muscles, the network's shape, the weights).
        """
        self._validate_params()
        check_device(self.device)
        physics = _restored_physics(self, state)
        net = _restored_net(self.get_params(), physics, state)
        self.__dict__.update(_restored_attributes(state, self.FITTED_STATE[:7], physics, net))
        self._record_fitted_with()
        return self

    # ------------------------------------------------------------------ predictions
    @with_own_threads(work="predict")
    def predict(self, X, subject_ids=None, *, predict_physics=None):
        """EMG envelope of every muscle, ``(n_sequences, n_timesteps, n_muscles)``, float64.

        ``subject_ids`` chooses each sequence's muscle parameters (and code): subjects seen in
        fit or personalised; None: the population's (the only subject's, after a fit on one).
        ``predict_physics`` ("auto", "torque", "level", "none", "emg") sets the prediction-time
        physics for this call (None: the estimator's). A sequence's EMG does not depend on
        the others beyond rounding (8e-8, batch_independence.txt).
        """
        check_is_fitted(self, "net_")
        mode = _physics_mode(predict_physics)
        sequences = self._prepare(X)
        n, mode = sequences.X.shape[0], self.predict_physics if mode is None else mode
        # with the network alone and no codes, every subject's EMG is the same
        uses_subject = bool(self.subject_embedding) or mode != "none"
        index = self._subject_codes(subject_ids, n) if uses_subject else np.zeros(n, int)
        return _predicted_emg(self, sequences, index, mode)

    @with_own_threads(work="predict")
    def predict_activation(self, X, subject_ids=None) -> np.ndarray:
        """Muscle activation of the predicted EMG through the subject's activation dynamics."""
        check_is_fitted(self, "net_")
        emg, _, _, index = _physics_inputs(self, X, subject_ids)
        with torch.no_grad():
            return self.net_.module_.activation(emg, index)[0].cpu().numpy()

    @with_own_threads(work="predict")
    def predict_torque(self, X, subject_ids=None) -> np.ndarray:
        """Joint torque (N·m) of the muscles driven by the predicted EMG, ``(n, n_timesteps)``."""
        check_is_fitted(self, "net_")
        emg, angle, velocity, index = _physics_inputs(self, X, subject_ids)
        with torch.no_grad():
            return self.net_.module_.torque(emg, angle, velocity, index).cpu().numpy()

    __metadata_request__score: ClassVar[dict] = {"subject_ids": True}
    """With metadata routing, ``score`` receives the test fold's ``subject_ids`` by default."""

    @with_own_threads(work="predict")
    def score(self, X, y, sample_weight=None, subject_ids=None) -> float:
        """Variance-weighted R² of the predicted EMG over the measured (non-NaN) channels.

        Each sequence is predicted with its subject's parameters; subjects not seen in fit
        nor personalised with the population's (an :class:`~deepemg.metrics.UnseenSubjectWarning`).
        scikit-learn's own scorers cannot score 3-D EMG with NaN: use :mod:`deepemg.metrics`.
        """
        emg = _predict_emg(self, X, subject_ids)
        return measured_r2(y, emg, sample_weight=sample_weight)

    # ------------------------------------------------------------------ subjects
    @unchanged_on_failure
    @with_own_threads
    def personalize(self, X, y=None, subject_ids=None, max_epochs=None, lr=2e-2):
        """Fit the parameters (and codes) of new subjects, with the network frozen.

        Uses their torque (``physics_weight``) and, where ``y`` measures surface EMG, that
        EMG as the drive of its muscles and, with ``subject_embedding > 0``, a data term on
        it (``data_weight``). Only the subjects in ``subject_ids`` move (known ones start
        from their fitted values); the loss is logged in ``personalize_history_``.

        ``y``: surface EMG, NaN where not measured (optional); ``subject_ids``: the subjects'
        labels; ``max_epochs``: passes over the data (default ``self.max_epochs``); ``lr``:
        Adam learning rate of the subject parameters. Returns self.
        """
        check_is_fitted(self, "net_")
        sequences = self._prepare(X)
        labels, epochs = _check_personalize(self, sequences, subject_ids, max_epochs, lr)
        measured = None if y is None else _check_y(y, sequences.X, self.physics_, False)
        known, targets = self.subjects_.tolist(), list(dict.fromkeys(labels.tolist()))
        local, history = _personalized(self, sequences, labels, measured, targets, epochs, lr)
        self.subjects_ = _merge_subjects(self.net_.module_, known, targets, local)
        self.personalize_history_ = history
        return record_adequacy(self, X, measured, labels, history=history, personalized=True)

    @property
    def subject_params_(self) -> list[dict]:
        """The subjects' parameters in physical units, one row per subject, parameter, muscle."""
        check_is_fitted(self, "net_")
        return self.net_.module_.parameter_table(list(self.subjects_))

    @property
    def parameters_at_bounds_(self) -> list[dict]:
        """Subject parameters on a bound (:func:`deepemg._bounds.parameters_at_bounds`)."""
        return parameters_at_bounds(self.subject_params_)

    @property
    def subject_codes_(self) -> np.ndarray:
        """The subjects' learned codes, ``(n_subjects, subject_embedding)``."""
        check_is_fitted(self, "net_")
        return _codes(self.net_.module_.subject_parameters)

    # ------------------------------------------------------------------ files
    def export_subject(self, subject, path, *, overwrite: bool = False):
        """Write the OpenSim model with ``subject``'s personalised muscles.

        Write the OpenSim model with ``subject``'s personalised muscles to ``path``
        (:func:`deepemg.opensim.export_subject`). Returns the path.
        """
        from .opensim.export import export_subject

        check_is_fitted(self, "net_")
        return export_subject(self, subject, path, overwrite=overwrite)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # NaN in X's EMG channels where the network does not read them (y: NaN = not measured)
        tags.input_tags.allow_nan = self.emg_inputs is False
        return tags
