"""Muscle synergy extrapolation (MSE; Ao et al. 2020) as a scikit-learn estimator."""

from __future__ import annotations

import os
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.decomposition import NMF
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from deepemg.channels import emg_channel
from deepemg.physics import MusculoskeletalModel, SubjectParameters
from deepemg.validation import SequenceInputs, measured_r2, prepare_sequences

__all__ = ["SynergyExtrapolationRegressor"]

POPULATION = "__population__"


def variance_accounted_for(emg: np.ndarray, reconstruction: np.ndarray) -> float:
    """VAF = 1 - ||E - E_hat||² / ||E||² (uncentred), the usual synergy criterion."""
    return float(1.0 - np.sum((emg - reconstruction) ** 2) / np.sum(emg**2))


class SynergyExtrapolationRegressor(RegressorMixin, BaseEstimator):
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
        L-BFGS iterations of the torque-tracking optimisation.
    random_state : int or None, default=None
        Seed of the NMF initialisation.

    Attributes
    ----------
    muscles_, measured_, unmeasured_ : list of str
    subjects_ : ndarray
    synergies_ : dict
        Per subject: ``W`` (n_synergies, n_measured), ``weights`` (n_synergies,
        n_unmeasured), ``vaf``, ``n_synergies``, ``torque_rmse`` (N·m) and ``params``.

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

    _parameter_constraints: dict = {
        "model": [str, os.PathLike, MusculoskeletalModel],
        "coordinate": [str],
        "locked": [dict, None],
        "channels": ["array-like", None],
        "n_synergies": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "vaf_threshold": [Interval(Real, 0, 1, closed="right")],
        "calibrate": ["boolean"],
        "magnitude_weight": [Interval(Real, 0, None, closed="left")],
        "rate": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
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
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _prepare(self, X, physics=None) -> SequenceInputs:
        """``X`` checked against the model's channels, all finite (MSE reads every channel)."""
        sequences = prepare_sequences(X, self.channels, physics or self.physics_)
        bad = ~np.isfinite(sequences.X)
        if bad.any():
            s, t, c = np.argwhere(bad)[0]
            raise ValueError(
                f"X holds NaN or infinite values in channel '{sequences.names[c]}' (first at "
                f"sequence {s}, step {t})."
            )
        return sequences

    def _surface(self, sequences: SequenceInputs, muscles):
        names = sequences.names
        missing = [emg_channel(m) for m in muscles if emg_channel(m) not in names]
        if missing:
            raise ValueError(
                f"X lacks the surface EMG channels {missing} that fit "
                f"used; its channels are {names}. MSE needs the surface EMG at prediction too."
            )
        emg = np.stack([sequences.channel(emg_channel(m)) for m in muscles], axis=-1)
        if emg.min() < 0:
            raise ValueError(
                "surface EMG channels hold negative values: MSE needs envelopes. "
                "Rectify and low-pass raw EMG first (deepemg.preprocessing."
                "EMGEnvelope)."
            )
        return emg

    # ------------------------------------------------------------------ fit
    def _factorise(self, emg):
        """NMF of stacked frames; returns the fitted NMF, H, W and VAF."""
        flat = emg.reshape(-1, emg.shape[-1])
        if self.n_synergies == "auto":
            candidates = range(1, flat.shape[1] + 1)
        else:
            if not (
                isinstance(self.n_synergies, int | np.integer)
                and 1 <= self.n_synergies <= flat.shape[1]
            ):
                raise ValueError(
                    f"n_synergies must be 'auto' or an int in 1..{flat.shape[1]} "
                    f"(the measured muscles), got {self.n_synergies!r}."
                )
            candidates = [int(self.n_synergies)]
        for k in candidates:
            nmf = NMF(
                n_components=k,
                init="nndsvda",
                max_iter=2000,
                tol=1e-6,
                random_state=self.random_state,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                H = nmf.fit_transform(flat)
            vaf = variance_accounted_for(flat, H @ nmf.components_)
            if self.n_synergies != "auto" or vaf >= self.vaf_threshold:
                break
        return nmf, H.reshape(emg.shape[:-1] + (k,)), vaf

    def _excitations(self, surface, H, weights):
        """All muscles' excitation: measured from the surface EMG, the rest from H w."""
        unmeasured = torch.clamp(H @ weights, 0.0, 1.0)
        full = torch.zeros(surface.shape[:-1] + (len(self.muscles_),), dtype=torch.float64)
        full[..., self._measured_index] = surface
        full[..., self._unmeasured_index] = unmeasured
        return full

    def _fit_one(self, angle, velocity, emg, torque):
        nmf, H, vaf = self._factorise(emg)
        physics = self.physics_
        angle, velocity = torch.tensor(angle), torch.tensor(velocity)
        tau = torch.tensor(torque)
        scale = float(max(torque.std(), 1e-3))
        surface = torch.tensor(np.clip(emg, 0.0, 1.0))
        H_t = torch.tensor(H)
        log_weights = torch.full(
            (H.shape[-1], len(self.unmeasured_)), -2.0, dtype=torch.float64, requires_grad=True
        )
        variables = [log_weights]
        subject = SubjectParameters(1, self.muscles_)
        if self.calibrate:
            keep = (
                "max_isometric_force_scale",
                "optimal_fiber_length_scale",
                "tendon_slack_length_scale",
            )
            variables += [subject.unconstrained[k] for k in keep]
        optimizer = torch.optim.LBFGS(
            variables, max_iter=int(self.max_iter), line_search_fn="strong_wolfe"
        )

        def parameters():
            values = subject(torch.zeros(emg.shape[0], dtype=torch.long))
            if not self.calibrate:
                values = {k: v.detach() for k, v in values.items()}
            return values

        def closure():
            optimizer.zero_grad()
            weights = torch.exp(log_weights)
            excitation = self._excitations(surface, H_t, weights)
            params = parameters()
            activation = physics.activation(excitation, self.rate, params)
            predicted = physics.joint_torque(activation, angle, velocity, params)
            loss = (((predicted - tau) / scale) ** 2).mean()
            loss = (
                loss + self.magnitude_weight * (excitation[..., self._unmeasured_index] ** 2).mean()
            )
            if self.calibrate:
                loss = loss + 1e-3 * subject.prior()
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            weights = torch.exp(log_weights)
            params = parameters()
            activation = physics.activation(
                self._excitations(surface, H_t, weights), self.rate, params
            )
            predicted = physics.joint_torque(activation, angle, velocity, params)
        return {
            "nmf": nmf,
            "W": nmf.components_,
            "weights": weights.detach().numpy(),
            "vaf": vaf,
            "n_synergies": H.shape[-1],
            "torque_rmse": float(torch.sqrt(((predicted - tau) ** 2).mean())),
            "params": {k: v[0].detach().numpy() for k, v in params.items()},
        }

    def fit(self, X, y=None, subject_ids=None):
        """Factorise each subject's surface EMG and extrapolate the unmeasured muscles.

        Parameters
        ----------
        X : array (n_sequences, n_timesteps, n_channels)
            Kinematics, load, torque (or computed by inverse dynamics) and surface EMG.
        y : ignored
            Accepted for API symmetry with the NMM (MSE uses the surface EMG in ``X``).
        subject_ids : array (n_sequences,), optional
            One synergy model per subject; with several subjects a pooled model is fitted too,
            used for subjects not seen in fit.
        """
        self._validate_params()
        physics = MusculoskeletalModel.resolve(self.model, self.coordinate, self.locked)
        sequences = self._prepare(X, physics)
        self.physics_ = physics
        self.muscles_ = list(physics.muscles)
        names = sequences.names
        self.measured_ = [m for m in self.muscles_ if emg_channel(m) in names]
        self.unmeasured_ = [m for m in self.muscles_ if m not in self.measured_]
        if not self.measured_:
            raise ValueError(
                f"X has no surface EMG channel (emg_<muscle> for {self.muscles_}); MSE needs "
                "the measured muscles' envelopes."
            )
        self._measured_index = [self.muscles_.index(m) for m in self.measured_]
        self._unmeasured_index = [self.muscles_.index(m) for m in self.unmeasured_]
        emg = self._surface(sequences, self.measured_)
        torque = sequences.torque
        labels = (
            np.asarray(subject_ids)
            if subject_ids is not None
            else np.full(sequences.X.shape[0], POPULATION)
        )
        self.subjects_ = np.unique(labels)
        self.synergies_ = {}
        angle, velocity = sequences.angle, sequences.velocity
        for subject in self.subjects_:
            rows = labels == subject
            self.synergies_[subject] = self._fit_one(
                angle[rows], velocity[rows], emg[rows], torque[rows]
            )
        if POPULATION not in self.synergies_:
            self.synergies_[POPULATION] = self._fit_one(angle, velocity, emg, torque)
        self.n_channels_ = sequences.X.shape[2]
        return self

    # ------------------------------------------------------------------ predict
    def predict(self, X, subject_ids=None):
        """EMG of every muscle: the measured envelopes as given, the others extrapolated.

        ``subject_ids`` selects each sequence's synergies; None or a subject not seen in fit
        uses the pooled model (with a warning for an unknown subject).
        """
        check_is_fitted(self, "synergies_")
        return self._predict(self._prepare(X), subject_ids)

    def _predict(self, sequences: SequenceInputs, subject_ids):
        X = sequences.X
        emg = self._surface(sequences, self.measured_)
        labels = (
            np.asarray(subject_ids) if subject_ids is not None else np.full(X.shape[0], POPULATION)
        )
        unknown = sorted(set(labels.tolist()) - set(self.synergies_))
        if unknown:
            warnings.warn(
                f"subjects {unknown} were not seen in fit; their unmeasured muscles "
                "come from the pooled synergies.",
                stacklevel=2,
            )
        out = np.zeros(X.shape[:2] + (len(self.muscles_),))
        out[..., self._measured_index] = emg
        for subject in np.unique(labels):
            rows = labels == subject
            model = self.synergies_.get(subject, self.synergies_[POPULATION])
            flat = emg[rows].reshape(-1, emg.shape[-1])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                H = model["nmf"].transform(flat)  # non-negative least squares on W_s
            extrapolated = np.clip(H @ model["weights"], 0.0, 1.0)
            block = out[rows]
            block[..., self._unmeasured_index] = extrapolated.reshape(
                emg[rows].shape[:-1] + (len(self.unmeasured_),)
            )
            out[rows] = block
        return out

    def predict_torque(self, X, subject_ids=None):
        """Joint torque (N·m) of the muscle model driven by ``predict``'s EMG, ``(n, T)``."""
        check_is_fitted(self, "synergies_")
        sequences = self._prepare(X)
        emg = self._predict(sequences, subject_ids)
        X = sequences.X
        labels = (
            np.asarray(subject_ids) if subject_ids is not None else np.full(X.shape[0], POPULATION)
        )
        torque = np.empty(X.shape[:2])
        for subject in np.unique(labels):
            rows = labels == subject
            model = self.synergies_.get(subject, self.synergies_[POPULATION])
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

    def score(self, X, y, sample_weight=None):
        """Variance-weighted R² of the predicted EMG over the channels ``y`` measures (non-NaN),
        time flattened; ``sample_weight`` weights each sequence
        (:func:`deepemg.validation.measured_r2`)."""
        return measured_r2(y, self.predict(X), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.required = False
        return tags
