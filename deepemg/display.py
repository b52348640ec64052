"""A scikit-learn style Display of one trial's EMG: measured, predicted and deep.

:class:`EMGDisplay` draws, for one trial, one panel per muscle (the measured surface EMG
against the prediction, the predicted deep EMG with its 90 % band where an ensemble gives a
standard deviation, the truth where one exists, e.g. on simulated data) and a panel of the
muscle model's joint torque against inverse dynamics. Build it from a fitted estimator
(:meth:`EMGDisplay.from_estimator`) or from arrays (:meth:`EMGDisplay.from_predictions`), as
scikit-learn's ``PredictionErrorDisplay``. The figure follows :mod:`deepemg.report`: one y
range per panel, legends outside the axes, NRMSE (RMSE over the truth's range) and Pearson r
in the titles of the panels that have a truth. Import it from here
(``from deepemg.display import EMGDisplay``); matplotlib is needed, any backend (Agg included).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from .benchmark import deep_muscle_metrics
from .report import COLORS, Z90, _data_range, _legend_outside

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from sklearn.base import BaseEstimator

    AxesLike: TypeAlias = Axes | Sequence[Axes] | np.ndarray

__all__ = ["EMGDisplay"]

PREDICTED_COLOR = "tab:blue"
"""Colour of the predicted EMG, its band and the muscle model's torque."""
PANEL_HEIGHT = 1.7
"""Height (inches) of each panel of a figure the display creates."""


class EMGDisplay:
    """EMG of one trial: measured, predicted and deep, and the joint torque.

    Build it with :meth:`from_estimator` or :meth:`from_predictions` (which check their input
    and draw); the constructor only stores one trial's arrays and :meth:`plot` draws them. All
    parameters are stored as attributes.

    Parameters
    ----------
    time : ndarray of shape (n_timesteps,)
        Time of each step (s).
    emg_pred : ndarray of shape (n_timesteps, n_muscles)
        Predicted EMG envelopes (0..1).
    muscles : sequence of str
        Names of ``emg_pred``'s columns; one panel each, in this order.
    emg_true : ndarray of shape (n_timesteps, n_muscles), optional
        Measured EMG (surface muscles) or the truth (deep muscles of simulated data); NaN
        where a muscle is not measured.
    emg_std : ndarray of shape (n_timesteps, n_muscles), optional
        Standard deviation of the prediction (an ensemble's); the 90 % band is
        ``emg_pred ± 1.645 emg_std``, clipped to [0, 1].
    torque_pred : ndarray of shape (n_timesteps,), optional
        The muscle model's joint torque (N·m).
    torque_id : ndarray of shape (n_timesteps,), optional
        The inverse-dynamics torque (N·m).
    deep_muscles : sequence of str, default=()
        Muscles labelled "deep" in their panel's title.
    title : str, optional
        The figure's title.

    Attributes
    ----------
    figure_ : matplotlib Figure
        The figure drawn on.
    ax_ : ndarray of matplotlib Axes
        One per panel: the muscles in ``muscles`` order, then the torque panel where a torque
        is given.
    lines_ : dict of str to dict of str to Line2D
        Muscle -> its traces by legend label: ``"predicted"``, and ``"measured"`` (a muscle
        not in ``deep_muscles``) or ``"truth"`` (a deep muscle) where ``emg_true`` has values.
    bands_ : dict of str to PolyCollection
        Muscle -> its 90 % band (empty without ``emg_std``).
    torque_lines_ : dict of str to Line2D
        ``"muscle model"`` and ``"inverse dynamics"``, those given (empty without a torque).
    scores_ : dict of str to dict
        Panel (a muscle, or ``"torque"``) -> ``{"nrmse": ..., "r": ...}`` for the panels with a
        truth (NaN where the truth is constant).

    See Also
    --------
    deepemg.report.plot_deep_emg : The benchmark's deep-EMG figure.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from deepemg.display import EMGDisplay
    >>> t = np.linspace(0.0, 1.0, 100)
    >>> truth = np.stack([np.sin(np.pi * t) ** 2, 0.3 * t], axis=-1)[None]  # (1, 100, 2)
    >>> truth[..., 1] = np.nan  # BRA: deep, not measured
    >>> pred = np.clip(np.nan_to_num(truth, nan=0.25) + 0.05, 0, 1)
    >>> display = EMGDisplay.from_predictions(
    ...     pred, emg_true=truth, emg_std=np.full(pred.shape, 0.02),
    ...     torque_pred=20 * pred[..., 0], torque_id=20 * truth[..., 0],
    ...     muscles=["BIClong", "BRA"], rate=100.0)
    >>> len(display.ax_), sorted(display.bands_), sorted(display.torque_lines_)
    (3, ['BIClong', 'BRA'], ['inverse dynamics', 'muscle model'])
    >>> display.ax_[1].get_title(loc="left")
    'BRA, deep (not measured)'
    >>> display.ax_[0].get_title(loc="left")
    'BIClong: NRMSE 0.05, r 1.00'
    >>> import matplotlib.pyplot as plt
    >>> plt.close(display.figure_)
    """

    def __init__(
        self,
        *,
        time: ArrayLike,
        emg_pred: ArrayLike,
        muscles: Sequence[str],
        emg_true: ArrayLike | None = None,
        emg_std: ArrayLike | None = None,
        torque_pred: ArrayLike | None = None,
        torque_id: ArrayLike | None = None,
        deep_muscles: Sequence[str] = (),
        title: str | None = None,
    ) -> None:
        self.time = time
        self.emg_pred = emg_pred
        self.muscles = muscles
        self.emg_true = emg_true
        self.emg_std = emg_std
        self.torque_pred = torque_pred
        self.torque_id = torque_id
        self.deep_muscles = deep_muscles
        self.title = title

    # ------------------------------------------------------------------ drawing
    def plot(self, ax: AxesLike | None = None) -> EMGDisplay:
        """Draw the panels.

        Parameters
        ----------
        ax : sequence of matplotlib Axes, optional
            One Axes per panel (each muscle, then the torque panel where a torque is given);
            a single Axes where there is one panel. None: a new figure, one column of panels
            sharing the time axis, titled ``title``.

        Each panel's title is left-aligned (``ax.get_title(loc="left")``): the muscle, "deep"
        for a deep muscle, "(not measured)" where the truth is missing, NRMSE and r where it is
        not.

        Returns
        -------
        EMGDisplay
            ``self``, with ``figure_``, ``ax_``, ``lines_``, ``bands_``, ``torque_lines_``
            and ``scores_``.
        """
        time = np.asarray(self.time, dtype=float)
        pred = np.asarray(self.emg_pred, dtype=float)
        true = None if self.emg_true is None else np.asarray(self.emg_true, dtype=float)
        std = None if self.emg_std is None else np.asarray(self.emg_std, dtype=float)
        torque = self.torque_pred is not None or self.torque_id is not None
        figure, axes = _figure_and_axes(ax, len(self.muscles) + int(torque))
        self.figure_: Figure = figure
        self.ax_: np.ndarray = axes
        self.lines_: dict[str, dict[str, Line2D]] = {}
        self.bands_: dict[str, PolyCollection] = {}
        self.torque_lines_: dict[str, Line2D] = {}
        self.scores_: dict[str, dict[str, float]] = {}
        for k, (panel, muscle) in enumerate(zip(axes, list(self.muscles), strict=False)):
            true_k = None if true is None else true[:, k]
            std_k = None if std is None else std[:, k]
            self._plot_muscle(panel, muscle, time, pred[:, k], true_k, std_k)
        if torque:
            self._plot_torque(axes[-1], time)
        _finish_figure(figure, axes, time, self.title, created=ax is None)
        return self

    def _plot_muscle(
        self,
        panel: Axes,
        muscle: str,
        time: np.ndarray,
        pred: np.ndarray,
        true: np.ndarray | None,
        std: np.ndarray | None,
    ) -> None:
        """Draw one muscle's panel: its truth or measurement, prediction and band; its title."""
        deep = muscle in set(self.deep_muscles)
        lines: dict[str, Line2D] = {}
        shown = [pred]
        truth = true if true is not None and np.isfinite(true).any() else None
        if truth is not None:
            label = "truth" if deep else "measured"
            (lines[label],) = panel.plot(
                time, truth, color=COLORS["truth"], lw=1.5, label=label, zorder=3
            )
            shown.append(truth)
        (lines["predicted"],) = panel.plot(
            time, pred, color=PREDICTED_COLOR, lw=1.2, label="predicted", zorder=2
        )
        if std is not None:
            self.bands_[muscle], limits = _draw_band(panel, time, pred, std)
            shown += limits
        name = f"{muscle}, deep" if deep else muscle
        if truth is None:
            if deep or true is not None:
                name += " (not measured)"
        else:
            name += ": " + self._score(muscle, truth, pred)
        self.lines_[muscle] = lines
        panel.set_title(name, fontsize=9, loc="left")
        panel.set_ylabel("EMG (0-1)")
        _finish_panel(panel, shown)

    def _plot_torque(self, panel: Axes, time: np.ndarray) -> None:
        """Draw the torque panel: inverse dynamics and the muscle model, where given."""
        shown: list[np.ndarray] = []
        name = "Joint torque"
        if self.torque_id is not None:
            reference = np.asarray(self.torque_id, dtype=float)
            (self.torque_lines_["inverse dynamics"],) = panel.plot(
                time, reference, color="0.6", lw=3, label="inverse dynamics", zorder=2
            )
            shown.append(reference)
        if self.torque_pred is not None:
            model = np.asarray(self.torque_pred, dtype=float)
            (self.torque_lines_["muscle model"],) = panel.plot(
                time, model, color=PREDICTED_COLOR, lw=1.2, label="muscle model", zorder=3
            )
            shown.append(model)
            if self.torque_id is not None:
                name += ": " + self._score("torque", reference, model)
        panel.set_title(name, fontsize=9, loc="left")
        panel.set_ylabel("torque (N·m)")
        _finish_panel(panel, shown)

    def _score(self, panel: str, truth: np.ndarray, prediction: np.ndarray) -> str:
        """Record ``panel``'s NRMSE and r in ``scores_``; their text for its title."""
        r, nrmse = deep_muscle_metrics(truth, prediction)
        self.scores_[panel] = {"nrmse": nrmse, "r": r}
        text = f"NRMSE {_number(nrmse)}, r {_number(r)}"
        finite = truth[np.isfinite(truth)]
        return text + (" (constant truth)" if finite.size and np.ptp(finite) == 0 else "")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_estimator(
        cls,
        estimator: BaseEstimator,
        X: ArrayLike,
        y: ArrayLike | None = None,
        *,
        subject_ids: Sequence[Any] | np.ndarray | None = None,
        trial: int = 0,
        muscles: Sequence[str] | None = None,
        rate: float | None = None,
        ax: AxesLike | None = None,
    ) -> EMGDisplay:
        """Predict one trial with a fitted estimator and draw it.

        Runs ``estimator.predict`` (with ``return_std=True`` for a fitted
        :class:`~deepemg.ensemble.NMMEnsemble`: its 90 % band is drawn) and
        ``estimator.predict_torque`` on ``X[trial]`` only, takes the inverse-dynamics torque
        from ``X``'s torque channel (``deepemg.channels.layout_for(estimator.physics_).torque``;
        computed from the kinematics and the load where ``X`` has none), and calls
        :meth:`from_predictions`.

        Parameters
        ----------
        estimator : NMMRegressor or SynergyExtrapolationRegressor
            Fitted; any estimator with ``predict``, ``muscles_`` and, for the torque panel,
            ``predict_torque`` and ``physics_``.
        X : array-like of shape (n_sequences, n_timesteps, n_channels)
            Inputs, the channels the estimator was fitted with.
        y : array-like of shape (n_sequences, n_timesteps, n_muscles), optional
            Measured EMG in the order of ``estimator.muscles_``, NaN where not measured (as
            given to ``fit``); the truth of every muscle on simulated data (``y_true`` of
            :func:`deepemg.datasets.make_elbow_lifting`).
        subject_ids : array-like of shape (n_sequences,), optional
            Each sequence's subject, as for ``predict``.
        trial : int, default=0
            Index of the sequence drawn (negative counts from the end).
        muscles : sequence of str, optional
            Muscles drawn, in this order; default all of ``estimator.muscles_``.
        rate : float, optional
            Sampling rate (Hz) for the time axis; default ``estimator.rate``.
        ax : sequence of matplotlib Axes, optional
            As for :meth:`plot`.

        Returns
        -------
        EMGDisplay

        Raises
        ------
        ValueError
            For ``X`` or ``y`` of the wrong shape, ``subject_ids`` not one per sequence,
            ``trial`` out of range or an unknown muscle.

        Notes
        -----
        The muscles the estimator reads no surface EMG of (``unmeasured_``, or those without
        an ``emg_<muscle>`` channel) and those ``y`` never measures are labelled deep.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator)
        X = _check_inputs(X)
        trial = _check_trial(trial, X.shape[0])
        all_muscles = [str(m) for m in estimator.muscles_]
        drawn = _check_muscles(muscles, all_muscles, "the estimator's muscles")
        columns = [all_muscles.index(m) for m in drawn]
        one = _trial_subject(subject_ids, X.shape[0], trial)
        y = _check_y(y, X.shape, all_muscles)
        X_trial = X[trial : trial + 1]
        pred, std = _predict_trial(estimator, X_trial, one)
        names = _input_names(estimator)
        torque_pred, torque_id = _trial_torques(estimator, X_trial, one, names)
        deep = _estimator_deep(estimator, all_muscles, names, y)
        return cls.from_predictions(
            pred[..., columns],
            emg_true=None if y is None else y[trial : trial + 1][..., columns],
            emg_std=None if std is None else std[..., columns],
            torque_pred=torque_pred,
            torque_id=torque_id,
            muscles=drawn,
            deep_muscles=[m for m in drawn if m in deep],
            rate=float(getattr(estimator, "rate", 100.0) if rate is None else rate),
            trial=0,
            ax=ax,
            title=_estimator_title(estimator, trial, one),
        )

    @classmethod
    def from_predictions(
        cls,
        emg_pred: ArrayLike,
        *,
        emg_true: ArrayLike | None = None,
        emg_std: ArrayLike | None = None,
        torque_pred: ArrayLike | None = None,
        torque_id: ArrayLike | None = None,
        muscles: Sequence[str],
        deep_muscles: Sequence[str] | None = None,
        rate: float = 100.0,
        trial: int = 0,
        ax: AxesLike | None = None,
        title: str | None = None,
    ) -> EMGDisplay:
        """Draw one trial of predicted (and measured) EMG and torque.

        Parameters
        ----------
        emg_pred : array-like of shape (n_sequences, n_timesteps, n_muscles)
            Predicted EMG envelopes (0..1).
        emg_true : array-like of shape (n_sequences, n_timesteps, n_muscles), optional
            Measured EMG (surface muscles) or the truth (e.g. simulated deep muscles); NaN
            where not measured. NRMSE and r are in the titles of the panels that have one.
        emg_std : array-like of shape (n_sequences, n_timesteps, n_muscles), optional
            Standard deviation of the prediction (``predict(X, return_std=True)`` of an
            ensemble): a 90 % band, mean ± 1.645 std clipped to [0, 1], around each trace.
        torque_pred : array-like of shape (n_sequences, n_timesteps), optional
            The muscle model's torque (N·m, ``predict_torque``).
        torque_id : array-like of shape (n_sequences, n_timesteps), optional
            The inverse-dynamics torque (N·m). A torque panel is drawn when either is given.
        muscles : sequence of str
            Names of the last axis of the EMG arrays.
        deep_muscles : sequence of str, optional
            Muscles labelled deep; default those ``emg_true`` never measures (all NaN over
            all sequences), none without ``emg_true``. A panel without values in
            ``emg_true`` is labelled "(not measured)": "deep (not measured)" for a deep muscle.
        rate : float, default=100.0
            Sampling rate (Hz): the time axis is in s.
        trial : int, default=0
            Index of the sequence drawn (negative counts from the end).
        ax : sequence of matplotlib Axes, optional
            As for :meth:`plot`.
        title : str, optional
            The figure's title (only on a figure the display creates); default
            ``"Trial <trial>"``.

        Returns
        -------
        EMGDisplay

        Raises
        ------
        ValueError
            For arrays of the wrong shape, a negative standard deviation, ``muscles`` not
            naming the columns, an unknown deep muscle, a rate that is not positive or a
            trial out of range.
        """
        pred = _float_array(emg_pred, "emg_pred")
        if pred.ndim != 3:
            raise ValueError(
                f"emg_pred must have shape (n_sequences, n_timesteps, n_muscles), got {pred.shape}."
            )
        n, steps, n_muscles = pred.shape
        muscles = _column_names(muscles, n_muscles)
        arrays = _check_arrays(
            pred, emg_true=emg_true, emg_std=emg_std, torque_pred=torque_pred, torque_id=torque_id
        )
        rate = _check_rate(rate)
        trial = _check_trial(trial, n)
        if deep_muscles is None:
            deep = _never_measured(arrays.get("emg_true"), muscles)
        else:
            deep = _check_muscles(deep_muscles, muscles, "muscles", empty=True)
        picked = {name: value[trial] for name, value in arrays.items()}
        display = cls(
            time=np.arange(steps) / rate,
            emg_pred=pred[trial],
            muscles=muscles,
            deep_muscles=deep,
            title=f"Trial {trial}" if title is None else title,
            **picked,
        )
        return display.plot(ax=ax)


# ---------------------------------------------------------------------- the estimator's trial
def _is_ensemble(estimator: object) -> bool:
    """Whether ``estimator`` is a fitted NMMEnsemble, whose ``predict`` gives ``return_std``."""
    from .ensemble import NMMEnsemble

    return isinstance(estimator, NMMEnsemble) and bool(getattr(estimator, "estimators_", None))


def _check_inputs(X: ArrayLike) -> np.ndarray:
    """``X`` as a float array of shape (n_sequences, n_timesteps, n_channels)."""
    X = _float_array(X, "X")
    if X.ndim != 3:
        raise ValueError(
            f"X must have shape (n_sequences, n_timesteps, n_channels), got {X.shape}."
        )
    return X


def _trial_subject(
    subject_ids: Sequence[Any] | np.ndarray | None, n: int, trial: int
) -> list | None:
    """The drawn trial's subject as ``[label]`` (None without ``subject_ids``), checked."""
    if subject_ids is None:
        return None
    if isinstance(subject_ids, str) or not hasattr(subject_ids, "__len__"):
        raise ValueError("subject_ids must hold one label per sequence of X.")
    labels = list(subject_ids)
    if len(labels) != n:
        raise ValueError(
            f"subject_ids has {len(labels)} labels for {n} sequences of X; give one per sequence."
        )
    return [labels[trial]]


def _check_y(y: ArrayLike | None, X_shape: tuple, muscles: list[str]) -> np.ndarray | None:
    """``y`` as a float array with X's sequences and steps and the estimator's muscles."""
    if y is None:
        return None
    y = _float_array(y, "y")
    expected = (X_shape[0], X_shape[1], len(muscles))
    if y.shape != expected:
        raise ValueError(
            f"y must have shape {expected} (X's sequences and steps, the estimator's "
            f"muscles {muscles}), got {y.shape}."
        )
    return y


def _predict_trial(
    estimator: BaseEstimator, X_trial: np.ndarray, one: list | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The estimator's EMG for ``X_trial``, and its standard deviation for an ensemble."""
    if _is_ensemble(estimator):
        pred, std = estimator.predict(X_trial, subject_ids=one, return_std=True)
        return np.asarray(pred, dtype=float), np.asarray(std, dtype=float)
    return np.asarray(estimator.predict(X_trial, subject_ids=one), dtype=float), None


def _input_names(estimator: BaseEstimator) -> list[str] | None:
    """The names of the estimator's input channels; None without ``physics_``."""
    from .channels import layout_for
    from .validation import channel_names

    physics = getattr(estimator, "physics_", None)
    if physics is None:
        return None
    channels = getattr(estimator, "channels_", None)
    if channels is None:
        channels = getattr(estimator, "channels", None)
    return channel_names(channels, layout_for(physics))


def _trial_torques(
    estimator: BaseEstimator, X_trial: np.ndarray, one: list | None, names: list[str] | None
) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """The muscle model's and the inverse-dynamics torque of ``X_trial``, or ``(None, None)``."""
    from .validation import torque_target

    if names is None or not hasattr(estimator, "predict_torque"):
        return None, None
    torque_pred = np.asarray(estimator.predict_torque(X_trial, one), dtype=float)
    torque_id = np.asarray(torque_target(X_trial, names, estimator.physics_), dtype=float)
    return torque_pred, torque_id


def _estimator_deep(
    estimator: BaseEstimator, muscles: list[str], names: list[str] | None, y: np.ndarray | None
) -> set[str]:
    """The muscles with no surface EMG channel, ``unmeasured_``, or never measured in ``y``."""
    from .channels import emg_channel

    deep: set[str] = set()
    if names is not None:
        deep |= {m for m in muscles if emg_channel(m) not in names}
    unmeasured = getattr(estimator, "unmeasured_", None)
    if unmeasured is not None:
        deep |= set(unmeasured)
    return deep | set(_never_measured(y, muscles))


def _estimator_title(estimator: BaseEstimator, trial: int, one: list | None) -> str:
    """The figure's title: the estimator, the trial, its subject, the ensemble's size."""
    title = f"{type(estimator).__name__}, trial {trial}"
    if one is not None:
        title += f", subject {one[0]}"
    if _is_ensemble(estimator):
        title += f" (ensemble of {len(estimator.estimators_)}, 90 % band)"
    return title


# ---------------------------------------------------------------------- checks of the arrays
def _column_names(muscles: str | Sequence[str], n_muscles: int) -> list[str]:
    """``muscles`` as the distinct names of ``n_muscles`` columns."""
    if isinstance(muscles, str):
        muscles = [muscles]
    muscles = [str(m) for m in muscles]
    if len(muscles) != n_muscles:
        raise ValueError(
            f"muscles names the {n_muscles} columns of emg_pred: got {len(muscles)} names "
            f"{muscles}."
        )
    if len(set(muscles)) != len(muscles):
        raise ValueError(f"muscles holds a name twice: {muscles}.")
    return muscles


def _check_arrays(pred: np.ndarray, **given: ArrayLike | None) -> dict[str, np.ndarray]:
    """The given arrays (None: left out) as float arrays of ``emg_pred``'s sequences and steps."""
    n, steps = pred.shape[:2]
    arrays: dict[str, np.ndarray] = {}
    for name in ("emg_true", "emg_std"):
        value = given[name]
        if value is not None:
            arrays[name] = _float_array(value, name)
            if arrays[name].shape != pred.shape:
                raise ValueError(
                    f"{name} must have emg_pred's shape {pred.shape}, got {arrays[name].shape}."
                )
    for name in ("torque_pred", "torque_id"):
        value = given[name]
        if value is not None:
            arrays[name] = _float_array(value, name)
            if arrays[name].shape != (n, steps):
                raise ValueError(
                    f"{name} must have shape (n_sequences, n_timesteps) = {(n, steps)}, "
                    f"got {arrays[name].shape}."
                )
    if "emg_std" in arrays and (arrays["emg_std"] < 0).any():
        raise ValueError("emg_std holds negative values: it is a standard deviation.")
    return arrays


def _check_rate(rate: float) -> float:
    """``rate`` as a positive float (Hz)."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"rate must be a positive number (Hz), got {rate!r}.") from None
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"rate must be a positive number (Hz), got {value!r}.")
    return value


def _never_measured(true: np.ndarray | None, muscles: list[str]) -> list[str]:
    """The muscles without a finite value anywhere in ``true`` (none without ``true``)."""
    if true is None:
        return []
    return [m for j, m in enumerate(muscles) if not np.isfinite(true[..., j]).any()]


def _float_array(value: ArrayLike, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be an array of numbers: {error}") from None


def _check_trial(trial: int, n: int) -> int:
    """``trial`` as an index in ``range(n)``; negative ones count from the end."""
    if isinstance(trial, bool):
        raise TypeError(f"trial must be an integer, got {trial!r}.")
    try:
        index = operator.index(trial)
    except TypeError:
        raise TypeError(f"trial must be an integer, got {trial!r}.") from None
    if not -n <= index < n:
        raise ValueError(
            f"trial={index} is out of range: there are {n} sequences (0 to {n - 1})."
            if n
            else f"trial={index} is out of range: there are no sequences."
        )
    return index % n


def _check_muscles(
    muscles: str | Sequence[str] | None, known: list[str], what: str, empty: bool = False
) -> list[str]:
    """``muscles`` (None: all of ``known``) as a list of known, distinct names."""
    if muscles is None:
        return list(known)
    names = [muscles] if isinstance(muscles, str) else [str(m) for m in muscles]
    unknown = [m for m in names if m not in known]
    if unknown:
        raise ValueError(f"unknown muscle(s) {unknown}; {what} are {known}.")
    if len(set(names)) != len(names):
        raise ValueError(f"a muscle is named twice: {names}.")
    if not names and not empty:
        raise ValueError("muscles must name at least one muscle.")
    return names


def _check_axes(ax: AxesLike, n_panels: int) -> np.ndarray:
    from matplotlib.axes import Axes

    panels: list[Any] = [ax] if isinstance(ax, Axes) else list(np.asarray(ax, dtype=object).ravel())
    axes = np.array(panels, dtype=object)
    if len(axes) != n_panels or not all(isinstance(a, Axes) for a in axes):
        raise ValueError(
            f"ax must hold {n_panels} matplotlib Axes (one per muscle, then one for the torque "
            f"where a torque is given), got {len(axes)} item(s)."
        )
    return axes


def _figure_and_axes(ax: AxesLike | None, n_panels: int) -> tuple[Figure, np.ndarray]:
    """The figure and its panels: a new figure, one column sharing the time axis, or ``ax``."""
    import matplotlib.pyplot as plt

    if ax is None:
        figure, grid = plt.subplots(
            n_panels,
            1,
            figsize=(8, PANEL_HEIGHT * n_panels + 0.6),
            sharex=True,
            squeeze=False,
        )
        return figure, grid[:, 0]
    axes = _check_axes(ax, n_panels)
    return axes[0].figure, axes


def _draw_band(
    panel: Axes, time: np.ndarray, pred: np.ndarray, std: np.ndarray
) -> tuple[PolyCollection, list[np.ndarray]]:
    """The 90 % band ``pred ± Z90 std`` clipped to [0, 1], drawn; with its two edges."""
    spread = Z90 * std
    low = np.clip(pred - spread, 0.0, 1.0)
    high = np.clip(pred + spread, 0.0, 1.0)
    band = panel.fill_between(
        time, low, high, color=PREDICTED_COLOR, alpha=0.25, lw=0, label="90 % band", zorder=1
    )
    return band, [low, high]


def _finish_figure(
    figure: Figure, axes: np.ndarray, time: np.ndarray, title: str | None, created: bool
) -> None:
    """The time axis of every panel; on a figure the display created, the title and layout."""
    for panel in axes:
        if time.size > 1:
            panel.set_xlim(time[0], time[-1])
    axes[-1].set_xlabel("time (s)")
    if created:
        if title:
            figure.suptitle(title, fontsize=10)
        figure.tight_layout()


def _finish_panel(panel: Axes, shown: list[np.ndarray]) -> None:
    """Its own y range and the legend right of the axes."""
    limits = _data_range(shown)
    if limits is not None:
        panel.set_ylim(*limits)
    _legend_outside(panel)


def _number(value: float) -> str:
    return f"{value:.2f}" if np.isfinite(value) else "n/a"
