"""Muscle synergy extrapolation (MSE; Ao et al. 2020) as a scikit-learn estimator."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from scipy.optimize import nnls
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from deepemg._base import (
    MODEL_CONSTRAINTS,
    MUSCLE_LAW_CONSTRAINT,
    POPULATION_CODE,
    MusculoskeletalEstimator,
)
from deepemg.channels import emg_channel
from deepemg.metrics import _refuse_unusable_scoring
from deepemg.physics import MusculoskeletalModel, SubjectParameters
from deepemg.threads import with_own_threads
from deepemg.validation import (
    SequenceInputs,
    check_envelopes,
    measured_r2,
    saturate_envelopes,
    unique_subjects,
)

__all__ = ["SynergyExtrapolationRegressor", "variance_accounted_for"]

POPULATION = "__population__"
EMG_WHAT = "X's EMG channels"

MAX_SYNERGY_TERM = 1e3
"""Bound on each synergy's term ``H_k w_k`` of an unmeasured excitation at the synergy's peak
(the excitation is clipped at 1): the log-weights are clamped to ``log(MAX_SYNERGY_TERM /
max H_k)`` and 50 below, so ``exp`` can neither overflow nor vanish."""

SOLVERS = (
    ("lbfgs", {"lr": 1.0, "history_size": 100}),
    ("lbfgs_cautious", {"lr": 0.1, "history_size": 10}),
    ("adam", {"lr": 0.05}),
)
"""The torque-tracking solvers, tried in turn from the same initial point while the previous
one diverges (a non-finite loss, gradient or parameter): L-BFGS with a strong-Wolfe line
search, the same with a smaller first step and a shorter history, then Adam
(``ADAM_STEPS_PER_ITER * max_iter`` steps, the log-weights projected onto their bounds)."""
ADAM_STEPS_PER_ITER = 2


def variance_accounted_for(emg: np.ndarray, reconstruction: np.ndarray) -> float:
    """VAF = 1 - ||E - E_hat||² / ||E||² (uncentred), the usual synergy criterion."""
    return float(1.0 - np.sum((emg - reconstruction) ** 2) / np.sum(emg**2))


def _subject_name(label) -> str:
    return "the pooled model (all sequences)" if label == POPULATION else f"subject '{label}'"


@dataclass(frozen=True)
class _Layout:
    """What fit has resolved about the model and ``X``'s surface channels."""

    physics: MusculoskeletalModel
    rate: float
    muscles: list
    measured_index: list
    unmeasured_index: list


def _factorise(emg, n_synergies, vaf_threshold: float, random_state):
    """NMF of stacked frames; returns the fitted NMF, H and the VAF.

    With ``n_synergies`` synergies, or with "auto" the fewest whose VAF reaches
    ``vaf_threshold``.
    """
    flat = emg.reshape(-1, emg.shape[-1])
    if n_synergies == "auto":
        candidates = list(range(1, flat.shape[1] + 1))
    else:
        if not (isinstance(n_synergies, int | np.integer) and 1 <= n_synergies <= flat.shape[1]):
            raise ValueError(
                f"n_synergies must be 'auto' or an int in 1..{flat.shape[1]} "
                f"(the measured muscles), got {n_synergies!r}."
            )
        candidates = [int(n_synergies)]
    for k in candidates:
        nmf = NMF(
            n_components=k,
            init="nndsvda",
            max_iter=2000,
            tol=1e-6,
            random_state=random_state,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            H = nmf.fit_transform(flat)
        vaf = variance_accounted_for(flat, H @ nmf.components_)
        if n_synergies != "auto" or vaf >= vaf_threshold:
            break
    return nmf, H.reshape((*emg.shape[:-1], k)), vaf


def _excitations(surface, H, weights, layout: _Layout):
    """All muscles' excitation: measured from the surface EMG, the rest from H w."""
    unmeasured = torch.clamp(H @ weights, 0.0, 1.0)
    full = torch.zeros((*surface.shape[:-1], len(layout.muscles)), dtype=torch.float64)
    full[..., layout.measured_index] = surface
    full[..., layout.unmeasured_index] = unmeasured
    return full


class _Diverged(ArithmeticError):
    """A non-finite loss, gradient or parameter in the torque-tracking optimisation."""


class _TorqueTracking:
    """One subject's unmeasured synergy weights (and Hill scales) fitted to track the torque.

    Every evaluation is checked: a non-finite parameter, loss or gradient stops the solver
    (:class:`_Diverged`), and the next one of :data:`SOLVERS` restarts from the initial point.
    The best finite iterate of all evaluations is kept for when every solver diverges.
    """

    CALIBRATED = (
        "max_isometric_force_scale",
        "optimal_fiber_length_scale",
        "tendon_slack_length_scale",
    )

    def __init__(self, estimator, layout: _Layout, angle, velocity, surface, torque, H):
        self.layout = layout
        self.calibrate = bool(estimator.calibrate)
        self.magnitude_weight = float(estimator.magnitude_weight)
        self.max_iter = int(estimator.max_iter)
        self.angle, self.velocity = torch.tensor(angle), torch.tensor(velocity)
        self.tau = torch.tensor(torque)
        self.scale = float(max(torque.std(), 1e-3))
        self.surface = torch.tensor(surface)
        self.H = torch.tensor(H)
        peak = np.maximum(H.reshape(-1, H.shape[-1]).max(axis=0), 1e-12)
        self.upper = torch.tensor(np.log(MAX_SYNERGY_TERM / peak))[:, None]
        self.lower = self.upper - 50.0
        n_unmeasured = len(layout.unmeasured_index)
        initial = torch.full((H.shape[-1], n_unmeasured), -2.0, dtype=torch.float64)
        self.initial = torch.clamp(initial, self.lower, self.upper)
        self.best = self.attempt_best = None  # (loss, theta, subject state, solver)
        self.n_iter = 0  # iterations of every solver tried

    # -------------------------------------------------------------- objective
    def weights(self, theta):
        return torch.exp(torch.clamp(theta, self.lower, self.upper))

    def parameters(self, subject):
        values = subject(torch.zeros(self.tau.shape[0], dtype=torch.long))
        if not self.calibrate:
            values = {k: v.detach() for k, v in values.items()}
        return values

    def variables(self, theta, subject):
        """What the solver fits.

        The log-weights (none when every muscle is measured) and, with ``calibrate``, the Hill
        scales.
        """
        variables = [theta] if theta.numel() else []
        if self.calibrate:
            variables += [subject.unconstrained[k] for k in self.CALIBRATED]
        return variables

    def torque(self, theta, subject):
        """Excitation of every muscle and the model's joint torque."""
        layout = self.layout
        excitation = _excitations(self.surface, self.H, self.weights(theta), layout)
        params = self.parameters(subject)
        activation = layout.physics.activation(excitation, layout.rate, params)
        predicted = layout.physics.joint_torque(activation, self.angle, self.velocity, params)
        return excitation, predicted, params

    def evaluate(self, solver, theta, subject):
        """The loss and its gradient, or :class:`_Diverged`."""
        variables = self.variables(theta, subject)
        if not all(bool(torch.isfinite(v).all()) for v in variables):
            raise _Diverged("non-finite parameters")
        excitation, predicted, _ = self.torque(theta, subject)
        loss = (((predicted - self.tau) / self.scale) ** 2).mean()
        if self.layout.unmeasured_index:  # (a mean over no muscle would be NaN)
            unmeasured = excitation[..., self.layout.unmeasured_index]
            loss = loss + self.magnitude_weight * (unmeasured**2).mean()
        if self.calibrate:
            loss = loss + 1e-3 * subject.prior()
        if not bool(torch.isfinite(loss)):
            raise _Diverged(f"loss {float(loss.detach())}")
        loss.backward()
        if not all(v.grad is None or bool(torch.isfinite(v.grad).all()) for v in variables):
            raise _Diverged("non-finite gradient")
        value = float(loss.detach())
        if self.attempt_best is None or value < self.attempt_best[0]:
            state = {k: v.detach().clone() for k, v in subject.unconstrained.items()}
            self.attempt_best = (value, theta.detach().clone(), state, solver)
            if self.best is None or value < self.best[0]:
                self.best = self.attempt_best
        return loss

    # -------------------------------------------------------------- solvers
    def run(self, solver, settings, theta, subject):
        variables = self.variables(theta, subject)
        if solver == "adam":
            optimizer = torch.optim.Adam(variables, lr=settings["lr"])
            for _ in range(ADAM_STEPS_PER_ITER * self.max_iter):
                optimizer.zero_grad()
                self.evaluate(solver, theta, subject)
                optimizer.step()
                self.n_iter += 1
                with torch.no_grad():
                    theta.copy_(torch.clamp(theta, self.lower, self.upper))
            optimizer.zero_grad()
            self.evaluate(solver, theta, subject)
            return
        optimizer = torch.optim.LBFGS(
            variables, max_iter=self.max_iter, line_search_fn="strong_wolfe", **settings
        )

        def closure():
            optimizer.zero_grad()
            return self.evaluate(solver, theta, subject)

        try:
            optimizer.step(closure)
        finally:  # the iterations it ran, also when it diverged
            state = optimizer.state[optimizer.param_groups[0]["params"][0]]
            self.n_iter += int(state.get("n_iter", 0))
        if not all(bool(torch.isfinite(v).all()) for v in variables):
            raise _Diverged("non-finite parameters after the last step")
        if bool((theta > self.upper).any()):
            # where exp() would have overflowed: the clamp's flat side, no gradient back
            raise _Diverged("a runaway step took log-weights past their bound")

    def solve(self, who: str) -> dict:
        """The fitted weights, torque RMSE, subject parameters and the solver that made it."""
        failures = []
        if not self.initial.numel() and not self.calibrate:  # every muscle measured
            subject = SubjectParameters(1, self.layout.muscles)
            return self.result(self.initial.clone(), subject, "none")
        for solver, settings in SOLVERS:
            theta = self.initial.clone().requires_grad_(True)
            subject = SubjectParameters(1, self.layout.muscles)
            self.attempt_best = None
            try:
                self.run(solver, settings, theta, subject)
            except _Diverged as exc:
                failures.append(f"{solver}: {exc}")
                continue
            if solver == "adam":  # Adam's last step need not be its best
                self.restore(self.attempt_best, theta, subject)
            return self.result(theta, subject, solver)
        if self.best is None:
            raise RuntimeError(
                f"The torque-tracking optimisation failed for {who}: every solver diverged "
                f"without a finite iterate ({'; '.join(failures)}). Check the torque channel "
                "(N·m, the model's joint) and the EMG scaling, or try another max_iter."
            )
        warnings.warn(
            f"The torque-tracking optimisation diverged for {who} in every solver "
            f"({'; '.join(failures)}); keeping its best finite iterate (loss "
            f"{self.best[0]:.4g}, from {self.best[3]}). Its unmeasured excitations may be poor.",
            ConvergenceWarning,
            stacklevel=4,
        )
        theta = self.initial.clone()
        subject = SubjectParameters(1, self.layout.muscles)
        self.restore(self.best, theta, subject)
        return self.result(theta, subject, "best_finite_iterate")

    @staticmethod
    def restore(best, theta, subject):
        _, best_theta, state, _ = best
        with torch.no_grad():
            theta.copy_(best_theta)
            for k, v in state.items():
                subject.unconstrained[k].copy_(v)

    def result(self, theta, subject, solver) -> dict:
        with torch.no_grad():
            _, predicted, params = self.torque(theta, subject)
            weights = self.weights(theta)
        return {
            "weights": weights.detach().numpy(),
            "torque_rmse": float(torch.sqrt(((predicted - self.tau) ** 2).mean())),
            "params": {k: v[0].detach().numpy() for k, v in params.items()},
            "solver": solver,
            "n_iter": self.n_iter,
        }


class SynergyExtrapolationRegressor(MusculoskeletalEstimator, RegressorMixin, BaseEstimator):
    """Unmeasured muscles' EMG as non-negative combinations of the measured muscles' synergies.

    Following Ao et al. (2020): per subject, non-negative matrix factorisation of the measured
    surface envelopes ``E_s ~ H W_s`` with ``n_synergies`` synergies; each unmeasured
    excitation is ``e_u = H w_u`` with ``w_u >= 0`` found by optimising torque tracking through
    the same differentiable musculoskeletal model as the NMM (activation dynamics, Hill
    muscles, moment arms; torch autograd and L-BFGS), with a small penalty on the unmeasured
    magnitudes, and optionally the subject's Hill parameters calibrated in the same
    optimisation (``calibrate=True``). For new trials, ``H`` comes from non-negative least
    squares of their surface envelopes on ``W_s``. Unlike the NMM, MSE needs the surface EMG
    at prediction time.

    Surface envelopes follow the package's rule (:func:`deepemg.validation.check_envelopes`):
    in MVC units, never negative, at most :data:`~deepemg.validation.EMG_CEILING`; above 1
    they are used as given by the NMF, ``predict`` and ``score``, and clipped at 1 with an
    :class:`~deepemg.validation.EMGSaturationWarning` where they drive the muscle model (the
    torque tracking in ``fit``, ``predict_torque``). ``score`` is the leave-one-surface-muscle-out
    R² of the synergies (it needs no ``y``), so ``GridSearchCV`` can choose ``n_synergies``.

    Parameters
    ----------
    model : "elbow", path to an .osim file, or MusculoskeletalModel, default="elbow"
    coordinate : str, default="r_elbow_flex"
    locked : dict, optional
    channels : sequence of str, optional
        Names of ``X``'s channels, named after the model's joint as for
        :class:`~deepemg.NMMRegressor` (:mod:`deepemg.channels`); default
        :data:`deepemg.ELBOW_CHANNELS` for the built-in elbow. The surface EMG channels are
        named ``emg_<muscle>``; muscles of the model without one are unmeasured.
    n_synergies : int or "auto", default=3
        Number of synergies; "auto" takes the fewest whose VAF reaches ``vaf_threshold``.
    vaf_threshold : float, default=0.95
    calibrate : bool, default=False
        Also fit the subject's bounded Hill parameters (F0, optimal fibre and tendon slack
        length scales) in the torque-tracking optimisation.
    magnitude_weight : float, default=1e-3
        Penalty on the mean squared unmeasured excitation.
    rate : float, default=100.0
        Sampling rate (Hz).
    max_iter : int, default=200
        L-BFGS iterations of the torque-tracking optimisation. Should it diverge (a non-finite
        loss, gradient or parameter, or a runaway step), it restarts from the initial point
        with a more cautious L-BFGS, then with Adam (``2 * max_iter`` steps); when all diverge
        the best finite iterate is kept with a
        :class:`~sklearn.exceptions.ConvergenceWarning`, or, with none, fit raises a
        ``RuntimeError`` naming the subject.
    n_threads : int or None, default=None
        torch and BLAS threads of each call (None: 1 for fit, the process's count for
        predictions; :mod:`deepemg.threads`).
    muscle_law : str or MuscleLaw, default="from_model"
        The muscle force law of the torque tracking, as :class:`~deepemg.NMMRegressor` takes it
        (``"from_model"``: the law a model file's muscles declare); give both estimators the
        same law to compare them on the same muscles (the benchmark does).
    random_state : int or None, default=None
        Seed of the NMF initialisation.

    Attributes
    ----------
    muscles_, measured_, unmeasured_ : list of str
    subjects_ : ndarray
    synergies_ : dict
        Per subject: ``W`` (n_synergies, n_measured), ``weights`` (n_synergies,
        n_unmeasured), ``vaf``, ``n_synergies``, ``torque_rmse`` (N·m), ``params`` and
        ``solver``, the torque-tracking solver whose result was kept (``"lbfgs"``;
        ``"lbfgs_cautious"`` or ``"adam"`` after a divergence; ``"best_finite_iterate"`` when
        all diverged; ``"none"`` when every muscle is measured and nothing is calibrated),
        and ``n_iter``, the iterations of every solver tried.
    n_iter_ : ndarray of int
        The torque-tracking iterations of each synergy model, in the order of
        ``synergies_`` (the subjects, then the pooled model).
    n_features_in_ : int
        Number of ``X``'s channels in fit.
    feature_names_in_ : ndarray of str
        Their names (``channels``, or the model's default channels).

    Examples
    --------
    >>> from baselines import SynergyExtrapolationRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=1, n_trials=2, duration=2.0, random_state=0,
    ...                           progress=False, cache=False)
    >>> mse = SynergyExtrapolationRegressor(n_synergies=2, max_iter=20, random_state=0)
    >>> mse.fit(data.X, data.y).predict(data.X).shape
    (2, 200, 7)
    """

    _parameter_constraints: ClassVar[dict] = {
        **MODEL_CONSTRAINTS,
        **MUSCLE_LAW_CONSTRAINT,
        "n_synergies": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "vaf_threshold": [Interval(Real, 0, 1, closed="right")],
        "calibrate": ["boolean"],
        "magnitude_weight": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        model="elbow",
        coordinate="r_elbow_flex",
        locked=None,
        channels=None,
        n_synergies=3,
        vaf_threshold=0.95,
        calibrate=False,
        magnitude_weight=1e-3,
        rate=100.0,
        max_iter=200,
        n_threads=None,
        muscle_law="from_model",
        random_state=None,
    ):
        self.model = model
        self.coordinate = coordinate
        self.locked = locked
        self.channels = channels
        self.n_synergies = n_synergies
        self.vaf_threshold = vaf_threshold
        self.calibrate = calibrate
        self.magnitude_weight = magnitude_weight
        self.rate = rate
        self.max_iter = max_iter
        self.n_threads = n_threads
        self.muscle_law = muscle_law
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    _FITTED_WITH = ("model", "coordinate", "locked", "rate", "muscle_law")
    """Parameters the fitted synergies and muscle model are built for (see ``FittedWith``);
    ``channels`` only names ``X``'s channels, read by name, so it may change."""

    _POPULATION_USE = (
        "their unmeasured muscles come from the pooled synergies (fitted on every sequence)."
    )
    _UNSEEN_ADVICE = "Fit with their sequences to give them synergies of their own."

    def _check_prepared(self, sequences: SequenceInputs, fitted: bool) -> None:
        """Every channel of ``X`` finite (MSE reads them all, the surface EMG included)."""
        bad = ~np.isfinite(sequences.X)
        if bad.any():
            s, t, c = np.argwhere(bad)[0]
            raise ValueError(
                f"X holds NaN or infinite values in channel '{sequences.names[c]}' (first at "
                f"sequence {s}, step {t})."
            )

    @staticmethod
    def _surface(sequences: SequenceInputs, muscles) -> np.ndarray:
        """The surface envelopes of ``muscles`` as given, checked by the package's EMG rule.

        (:func:`~deepemg.validation.check_envelopes`: none negative, none above
        :data:`~deepemg.validation.EMG_CEILING`.)
        """
        names = sequences.names
        channels = [emg_channel(m) for m in muscles]
        missing = [c for c in channels if c not in names]
        if missing:
            raise ValueError(
                f"X lacks the surface EMG channels {missing} that fit "
                f"used; its channels are {names}. MSE needs the surface EMG at prediction too."
            )
        emg = np.stack([sequences.channel(c) for c in channels], axis=-1)
        return check_envelopes(emg, EMG_WHAT, channels)

    def _models_of(self, codes: np.ndarray) -> list:
        """``(rows, synergy model)`` of each subject code (:meth:`_subject_codes`)."""
        return [(codes == code, self._synergies_of(code)) for code in np.unique(codes).tolist()]

    def _synergies_of(self, code: int) -> dict:
        """The synergy model of a subject code: the pooled one for the population's."""
        label = POPULATION if code == POPULATION_CODE else self.subjects_[code]
        return self.synergies_[label]

    # ------------------------------------------------------------------ fit
    def _fit_one(self, layout, subject_label, angle, velocity, emg, surface, torque):
        """One subject's synergies and unmeasured weights.

        The NMF factorises ``emg`` as given; the torque tracking is driven by ``surface``, the
        envelopes saturated at 1.
        """
        nmf, H, vaf = _factorise(emg, self.n_synergies, self.vaf_threshold, self.random_state)
        tracking = _TorqueTracking(self, layout, angle, velocity, surface, torque, H)
        result = tracking.solve(_subject_name(subject_label))
        return {
            "nmf": nmf,
            "W": nmf.components_,
            "vaf": vaf,
            "n_synergies": H.shape[-1],
            **result,
        }

    @with_own_threads
    def fit(self, X, y=None, subject_ids=None):
        """Factorise each subject's surface EMG and extrapolate the unmeasured muscles.

        Surface envelopes are checked by the package's rule
        (:func:`deepemg.validation.check_envelopes`: negative values or values above
        :data:`~deepemg.validation.EMG_CEILING` are errors); the NMF factorises them as given
        and the torque tracking clips them at 1 with an
        :class:`~deepemg.validation.EMGSaturationWarning`. A fit that fails leaves the
        estimator as it was.

        Parameters
        ----------
        X : array (n_sequences, n_timesteps, n_channels)
            Kinematics, load, torque (or computed by inverse dynamics) and surface EMG.
        y : ignored
            Accepted for API symmetry with the NMM (MSE uses the surface EMG in ``X``).
        subject_ids : array (n_sequences,), optional
            One synergy model per subject; with several subjects a pooled model is fitted too,
            used for subjects not seen in fit.

        Raises
        ------
        RuntimeError
            When the torque-tracking optimisation of a subject diverges in every solver tried
            (L-BFGS, a more cautious L-BFGS, Adam) without a finite iterate.
        """
        self._validate_params()
        _refuse_unusable_scoring(self)  # scoring="r2" in cross-validation: an error, not NaN
        physics = self._resolve_physics()
        sequences = self._prepare(X, physics)
        labels = self._subject_labels(subject_ids, sequences.X.shape[0], POPULATION)
        muscles = list(physics.muscles)
        names = sequences.names
        measured = [m for m in muscles if emg_channel(m) in names]
        unmeasured = [m for m in muscles if m not in measured]
        if not measured:
            raise ValueError(
                f"X has no surface EMG channel (emg_<muscle> for {muscles}); MSE needs "
                "the measured muscles' envelopes."
            )
        layout = _Layout(
            physics,
            self.rate,
            muscles,
            [muscles.index(m) for m in measured],
            [muscles.index(m) for m in unmeasured],
        )
        emg = self._surface(sequences, measured)
        surface = saturate_envelopes(emg, EMG_WHAT, [emg_channel(m) for m in measured])
        torque = sequences.torque
        subjects = unique_subjects(labels)
        angle, velocity = sequences.angle, sequences.velocity
        synergies = {}
        for subject in subjects:
            rows = labels == subject
            synergies[subject] = self._fit_one(
                layout, subject, angle[rows], velocity[rows], emg[rows], surface[rows], torque[rows]
            )
        if POPULATION not in synergies:
            synergies[POPULATION] = self._fit_one(
                layout, POPULATION, angle, velocity, emg, surface, torque
            )
        # assigned only now: a fit that raises leaves a fitted estimator as it was
        self.physics_ = physics
        self.muscles_ = muscles
        self.measured_ = measured
        self.unmeasured_ = unmeasured
        self._measured_index = layout.measured_index
        self._unmeasured_index = layout.unmeasured_index
        self.subjects_ = subjects
        self.synergies_ = synergies
        self.n_channels_ = sequences.X.shape[2]
        self.channels_ = list(sequences.names)
        self.n_iter_ = np.array([model["n_iter"] for model in synergies.values()])
        self._record_fitted_with()
        return self

    # ------------------------------------------------------------------ predict
    @with_own_threads(work="predict")
    def predict(self, X, subject_ids=None):
        """EMG of every muscle: the measured envelopes as given, the others extrapolated.

        ``subject_ids`` (one label per sequence) selects each sequence's synergies; None or a
        subject not seen in fit uses the pooled model (with a warning for an unknown subject).
        Surface envelopes above 1 (up to :data:`~deepemg.validation.EMG_CEILING`) are returned
        as they are.
        """
        check_is_fitted(self, "synergies_")
        sequences = self._prepare(X)
        return self._predict(sequences, self._subject_codes(subject_ids, sequences.X.shape[0]))

    def _predict(self, sequences: SequenceInputs, codes: np.ndarray) -> np.ndarray:
        """Every muscle's EMG of the checked ``sequences``, each with its subject's synergies."""
        X = sequences.X
        emg = self._surface(sequences, self.measured_)
        out = np.zeros((*X.shape[:2], len(self.muscles_)))
        out[..., self._measured_index] = emg
        for rows, model in self._models_of(codes):
            flat = emg[rows].reshape(-1, emg.shape[-1])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                H = model["nmf"].transform(flat)  # non-negative least squares on W_s
            extrapolated = np.clip(H @ model["weights"], 0.0, 1.0)
            block = out[rows]
            block[..., self._unmeasured_index] = extrapolated.reshape(
                (*emg[rows].shape[:-1], len(self.unmeasured_))
            )
            out[rows] = block
        return out

    @with_own_threads(work="predict")
    def predict_torque(self, X, subject_ids=None):
        """Joint torque (N·m) of the muscle model driven by ``predict``'s EMG, ``(n, T)``.

        The surface envelopes are clipped at 1 where they drive the muscle model, with an
        :class:`~deepemg.validation.EMGSaturationWarning`.
        """
        check_is_fitted(self, "synergies_")
        sequences = self._prepare(X)
        codes = self._subject_codes(subject_ids, sequences.X.shape[0])
        emg = self._predict(sequences, codes)
        measured = self._measured_index
        emg[..., measured] = saturate_envelopes(
            emg[..., measured], EMG_WHAT, [emg_channel(m) for m in self.measured_]
        )
        torque = np.empty(sequences.X.shape[:2])
        for rows, model in self._models_of(codes):
            params = {k: torch.tensor(v) for k, v in model["params"].items()}
            with torch.no_grad():
                activation = self.physics_.activation(torch.tensor(emg[rows]), self.rate, params)
                torque[rows] = self.physics_.joint_torque(
                    activation,
                    torch.tensor(sequences.angle[rows]),
                    torch.tensor(sequences.velocity[rows]),
                    params,
                ).numpy()
        return torque

    @with_own_threads(work="predict")
    def reconstruct_surface(self, X, subject_ids=None):
        """Each surface channel reconstructed from the others through the synergies.

        For surface channel ``k``, each frame's synergy activations ``h >= 0`` are the
        non-negative least squares of the other surface channels on their synergy weights,
        ``min ||e[others] - h W[:, others]||``, and the reconstruction is ``h W[:, k]``: the
        extrapolation MSE does for the unmeasured muscles, tried on a measured one. ``W`` is
        the synergies of the sequence's subject (``subject_ids``; the pooled ones for None or a
        subject not seen in fit). Needs at least two surface channels.

        Returns
        -------
        ndarray (n_sequences, n_timesteps, n_measured)
            In the order of ``measured_``.
        """
        check_is_fitted(self, "synergies_")
        sequences = self._prepare(X)
        codes = self._subject_codes(subject_ids, sequences.X.shape[0])
        return self._leave_one_out(self._surface(sequences, self.measured_), codes)

    def _leave_one_out(self, emg: np.ndarray, codes: np.ndarray) -> np.ndarray:
        n_measured = emg.shape[-1]
        if n_measured < 2:
            raise ValueError(
                f"scoring reconstructs each surface channel from the others, but X has only "
                f"{n_measured} ({self.measured_}); it needs at least two."
            )
        out = np.empty_like(emg)
        for rows, model in self._models_of(codes):
            W = model["W"]
            flat = emg[rows].reshape(-1, n_measured)
            block = np.empty_like(flat)
            for k in range(n_measured):
                others = np.arange(n_measured) != k
                design = W[:, others].T  # (n_others, n_synergies)
                H = np.stack([nnls(design, frame)[0] for frame in flat[:, others]])
                block[:, k] = H @ W[:, k]
            out[rows] = block.reshape(emg[rows].shape)
        return out

    @with_own_threads(work="predict")
    def score(self, X, y=None, sample_weight=None, subject_ids=None):
        """How well the synergies extrapolate: leave-one-surface-muscle-out R².

        Each measured surface channel of ``X`` is hidden in turn and reconstructed from the
        other surface channels through the synergies (:meth:`reconstruct_surface`: per frame,
        non-negative least squares of the others on ``W[:, others]``, then ``H @ W[:, k]``).
        The score is the variance-weighted R² of these reconstructions against the envelopes
        in ``X``, over all surface channels, time flattened, ``sample_weight`` weighting each
        sequence (:func:`deepemg.validation.measured_r2`). Too few synergies cannot span the
        channels and too many over-fit the others, so the score peaks near the number of
        synergies in the data: it ranks ``n_synergies`` (``GridSearchCV``).

        It scores the synergies (``W``) only: neither the torque-tracking weights of the
        unmeasured muscles nor ``y`` enter it. ``y`` is accepted for scikit-learn's API and
        ignored (``predict`` returns the measured channels as given, so an R² of ``predict``
        against them would always be 1).

        Parameters
        ----------
        X : array (n_sequences, n_timesteps, n_channels)
            With at least two of the surface EMG channels fit used.
        y : ignored
        sample_weight : array (n_sequences,), optional
        subject_ids : array (n_sequences,), optional
            The synergies of each sequence's subject; the pooled ones for None or a subject
            not seen in fit.

        Returns
        -------
        float
        """
        check_is_fitted(self, "synergies_")
        sequences = self._prepare(X)
        codes = self._subject_codes(subject_ids, sequences.X.shape[0])
        emg = self._surface(sequences, self.measured_)
        return measured_r2(emg, self._leave_one_out(emg, codes), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # every channel finite (MSE reads them all, the surface EMG included); y is not
        # needed (the surface EMG is in X)
        tags.target_tags.required = False
        return tags
