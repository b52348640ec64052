"""The methods the benchmark compares: what each is, its role, how it is fitted and drawn.

The registry :data:`METHODS` (key -> :class:`Method`) holds them in table order: how each is
made, fitted within subject and leave one subject out, its label in the tables, its colour in
the figures and its role (:data:`ROLES`): the *proposed* method (the NMM as
:class:`~deepemg.NMMRegressor` predicts by default, ``predict_physics="auto"``, labelled
"NMM"), its *ablations*, other *variants* of the NMM (labelled "NMM, ...": "NMM, network
alone" is the same fit with ``predict_physics="none"``) and the *baseline* (muscle synergy
extrapolation, MSE). :func:`~deepemg.benchmark.run_benchmark` and :mod:`deepemg.report` read
them all from here (the report finds the proposed method and the baseline by their role, not
by key), so a further method is one more entry.

Reports written before deepemg 0.5 label the methods otherwise (their "NMM" is today's "NMM,
network alone"); :func:`current_label` translates their labels (:data:`LEGACY_LABELS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .protocol import BenchmarkSettings, _beyond

__all__ = [
    "LEGACY_LABELS",
    "METHODS",
    "PERSONAL_EMBEDDING",
    "ROLES",
    "Method",
    "current_label",
    "method_of",
    "method_of_role",
]

ROLES = {
    "proposed": "the NMM as NMMRegressor predicts by default: the method the targets judge",
    "ablation": "the NMM with one of its parts taken away, to show what that part adds",
    "variant": "the NMM fitted or predicting otherwise than by default",
    "baseline": "the method the NMM is compared with; relative targets scale by its scores",
}
"""Role of a :class:`Method` -> what it means. The report names the ``"proposed"`` method and
the ``"baseline"`` (the first of each in :data:`METHODS`) in its targets and summaries."""


def _always(settings: BenchmarkSettings) -> bool:
    return True


@dataclass(frozen=True)
class Method:
    """One method of the benchmark: an entry of :data:`METHODS`.

    :func:`~deepemg.benchmark.run_benchmark` fits every enabled method on every within-subject
    split and, where it has an ``adapt``, on every leave-one-subject-out fold; it times the
    fit, scores the fitted estimator's ``predict`` (the deep muscles) and ``predict_torque``
    (if it has one) on the test sequences, and keeps the example traces the report draws.

    Parameters
    ----------
    key : str
        Key in :data:`METHODS` and in ``BenchmarkResult.examples``.
    label : str
        Its name in the rows, tables, csv files and report.
    color : str
        Its matplotlib colour in the report's figures.
    params : callable
        ``params(settings, common, evaluation) -> dict``: the estimator's parameters.
        ``common`` holds ``model``, ``coordinate``, ``locked`` and ``channels`` (what every
        estimator shares); ``evaluation`` is a key of
        :data:`~deepemg.benchmark.EVALUATIONS`.
    fit : callable
        ``fit(data, train, params) -> estimator``: fitted on the sequences ``train`` of
        ``data`` (within subject). The estimator needs ``predict(X)`` returning every muscle of
        ``data.muscles`` (n_sequences, n_timesteps, n_muscles); ``predict_torque(X,
        subject_ids)`` is optional (its torque NRMSE is NaN without one).
    adapt : callable, optional
        ``adapt(data, others, own, params) -> estimator``: leave one subject out, the
        held-out subject's sequences ``own`` are scored. None: not run leave one subject out.
    legend : str, optional
        Its label in ``deep_emg.png``; None: not drawn (and no example kept).
    torque_legend : str, optional
        Its label in ``torque.png``; None: its torque not drawn.
    record : callable, optional
        ``record(estimator) -> {"history": [...], "parameters": [...], "adequacy": [...]}``:
        training curves, learned subject parameters and (optionally) the model adequacy rows
        for the report (the first method with one, within subject).
    enabled : callable, default: always
        ``enabled(settings) -> bool``: whether the run includes it.
    derived_from : str, optional
        Key of another method whose fitted estimators this one reuses with
        ``predict_params`` set before predicting (no fit of its own: a prediction mode, e.g.
        the NMM with prediction-time physics). ``params``, ``fit`` and ``adapt`` are the base's.
    predict_params : dict, optional
        ``set_params`` of the base's fitted estimator for this derived method.
    role : str, default="variant"
        A key of :data:`ROLES`: ``"proposed"``, ``"ablation"``, ``"variant"`` or
        ``"baseline"``.
    description : str, default=""
        What it is, in one phrase, for the report's list of methods.

    A method with ``fit=None`` and an ``adapt`` runs leave one subject out only.

    Examples
    --------
    A method that predicts the mean training EMG of each muscle, registered under ``"mean"``:

    >>> class Mean:
    ...     def __init__(self, level):
    ...         self.level = level
    ...     def predict(self, X):
    ...         return np.broadcast_to(self.level, (*X.shape[:2], len(self.level)))
    >>> def fit_mean(data, train, params):
    ...     return Mean(np.nan_to_num(np.nanmean(data.y[train], axis=(0, 1))))
    >>> mean = Method("mean", "training mean", "tab:gray", lambda *_: {}, fit_mean,
    ...               role="baseline", description="each muscle's mean training EMG")
    >>> mean.evaluations  # no adapt: within subject only
    ('within',)
    >>> METHODS["mean"] = mean  # doctest: +SKIP
    """

    key: str
    label: str
    color: str
    params: Callable[[BenchmarkSettings, dict, str], dict]
    fit: Callable | None
    adapt: Callable | None = None
    legend: str | None = None
    torque_legend: str | None = None
    record: Callable | None = None
    enabled: Callable[[BenchmarkSettings], bool] = _always
    derived_from: str | None = None
    predict_params: dict = field(default_factory=dict)
    role: str = "variant"
    description: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(
                f"role {self.role!r} of the method {self.key!r} is not one of {list(ROLES)}."
            )

    @property
    def evaluations(self) -> tuple[str, ...]:
        """Keys of :data:`~deepemg.benchmark.EVALUATIONS` the method runs."""
        if self.derived_from is not None:
            return METHODS[self.derived_from].evaluations
        within = ("within",) if self.fit is not None else ()
        return within + (("loso",) if self.adapt is not None else ())


# ---------------------------------------------------------------------------- the NMM
def _nmm_params(settings: BenchmarkSettings, common: dict, evaluation: str) -> dict:
    params = {
        **common,
        "predict_physics": "none",  # the network alone; "nmm_physics" adds the physics
        "random_state": settings.random_state,
        "max_epochs": settings.max_epochs,
        **settings.nmm_params,
    }
    if evaluation == "loso":
        params["max_epochs"] = settings.loso_epochs
    return params


def _fit_nmm(data, train, params):
    from ..regressor import NMMRegressor

    model = NMMRegressor(**params)
    model.fit(data.X[train], data.y[train], subject_ids=data.groups[train])
    return model


def _adapt_nmm(data, others, own, params):
    model = _fit_nmm(data, others, params)
    model.personalize(data.X[own], data.y[own], subject_ids=data.groups[own])
    return model


def _history(net) -> list[dict]:
    keys = {
        "data": "train_data_loss",
        "physics": "train_physics_loss",
        "effort": "train_effort_loss",
        "synergy": "train_synergy_loss",
        "synergist": "train_synergist_loss",
        "synergist_level": "train_synergist_level_loss",
        "loss": "train_loss",
    }
    return [
        {"epoch": int(h["epoch"]), **{k: float(h[v]) for k, v in keys.items() if v in h}}
        for h in net.history
    ]


def _record_nmm(model) -> dict:
    from ..adequacy import adequacy_table

    return {
        "history": _history(model.net_),
        "parameters": model.subject_params_,
        "adequacy": adequacy_table(getattr(model, "model_adequacy_", None) or {}),
    }


def _ablation_params(settings: BenchmarkSettings, common: dict, evaluation: str) -> dict:
    return {**_nmm_params(settings, common, evaluation), "physics_weight": 0.0}


def _kinematics_params(settings: BenchmarkSettings, common: dict, evaluation: str) -> dict:
    """0.5's NMM: no surface EMG input, the torque term training the network too."""
    return {
        **_nmm_params(settings, common, evaluation),
        "emg_inputs": False,
        "physics_trains": "all",
        "effort_weight": 0.1,
        "predict_physics": "torque",
    }


def _ablation_enabled(settings: BenchmarkSettings) -> bool:
    return settings.ablation


PERSONAL_EMBEDDING = 4
"""``subject_embedding`` of the benchmark's NMMs with personalised EMG (docs/nmm.md)."""


def _personal_params(settings: BenchmarkSettings, common: dict, evaluation: str) -> dict:
    return {
        "subject_embedding": PERSONAL_EMBEDDING,
        **_nmm_params(settings, common, evaluation),
    }


def _fit_pretrained(data, train, params):
    """Pretrained on the other subjects' training-range sequences, then personalised.

    Pretrained for ``loso_epochs``, then personalised on the subject's own training sequences
    (its surface EMG and torque; with ``subject_embedding`` > 0 its code too, so its EMG).
    """
    params = dict(params)
    epochs = params.pop("loso_epochs")
    subject = data.groups[train[0]]
    others = np.flatnonzero((data.groups != subject) & ~_beyond(data))
    if others.size == 0:
        return _fit_nmm(data, train, params)
    model = _fit_nmm(data, others, {**params, "max_epochs": epochs})
    model.personalize(data.X[train], data.y[train], subject_ids=data.groups[train])
    return model


def _pretrained_params(settings: BenchmarkSettings, common: dict, evaluation: str) -> dict:
    return {**_personal_params(settings, common, evaluation), "loso_epochs": settings.loso_epochs}


def _pretrained_enabled(settings: BenchmarkSettings) -> bool:
    return settings.pretrained and settings.loso


# ---------------------------------------------------------------------------- MSE
def _mse_params(settings: BenchmarkSettings, common: dict, evaluation: str) -> dict:
    """MSE's parameters: the NMM's muscle law (one muscle model for both), then ``mse_params``."""
    law = {k: v for k, v in settings.nmm_params.items() if k == "muscle_law"}
    return {**common, "random_state": settings.random_state, **law, **settings.mse_params}


def _fit_mse(data, train, params):
    from baselines import SynergyExtrapolationRegressor

    model = SynergyExtrapolationRegressor(**params)
    model.fit(data.X[train], subject_ids=data.groups[train])
    return model


def _adapt_mse(data, others, own, params):
    """MSE is fitted on the held-out subject's own surface EMG and torque, as MSE is used."""
    return _fit_mse(data, own, params)


# ---------------------------------------------------------------------------- registry
NMM = Method(
    key="nmm",
    label="NMM, network alone",
    color="tab:blue",
    params=_nmm_params,
    fit=_fit_nmm,
    adapt=_adapt_nmm,
    legend="NMM, network alone",
    torque_legend="NMM muscle torque, network alone",
    record=_record_nmm,
    role="ablation",
    description="the same fit as 'NMM', predicting with the network alone "
    "(predict_physics='none'): nothing the torque taught, neither the prediction-time "
    "correction nor the subject's deep EMG level",
)


def _nmm_variant(key: str, label: str, color: str, **changes) -> Method:
    """The NMM's entry changed by ``changes``.

    Unless ``changes`` say otherwise: within subject only, drawn nowhere, recording nothing, a
    variant.
    """
    quiet = dict(adapt=None, legend=None, torque_legend=None, record=None, role="variant")
    return replace(NMM, key=key, label=label, color=color, **{**quiet, **changes})


METHODS: dict[str, Method] = {
    method.key: method
    for method in (
        _nmm_variant(
            "nmm_physics",
            "NMM",
            "tab:purple",
            legend="NMM",
            torque_legend="NMM muscle torque",
            derived_from="nmm",
            predict_params={"predict_physics": "auto"},
            role="proposed",
            description="the NMM as NMMRegressor predicts by default: the fitted network's EMG "
            "corrected by the prediction-time physics where the subject's model adequacy "
            "allows (predict_physics='auto'; the network alone for a subject flagged poor)",
        ),
        _nmm_variant(
            "nmm_torque",
            "NMM, always corrected",
            "tab:gray",
            derived_from="nmm",
            predict_params={"predict_physics": "torque"},
            description="the same fit, every subject's EMG corrected by the prediction-time "
            "physics, whatever its model adequacy (predict_physics='torque', 0.6's default)",
        ),
        NMM,
        _nmm_variant(
            "nmm_no_physics",
            "NMM, physics_weight=0",
            "tab:green",
            params=_ablation_params,
            enabled=_ablation_enabled,
            role="ablation",
            description="the NMM fitted without its physics term (physics_weight=0), the "
            "network alone",
        ),
        _nmm_variant(
            "nmm_kinematics",
            "NMM, kinematics only",
            "tab:brown",
            params=_kinematics_params,
            enabled=_ablation_enabled,
            role="ablation",
            description="the NMM of 0.5: the network reads the kinematics and load only and "
            "the torque term trains it too (emg_inputs=False, physics_trains='all', "
            "effort_weight=0.1), "
            "its EMG corrected by the prediction-time physics (predict_physics='torque')",
        ),
        _nmm_variant(
            "nmm_emg_physics",
            "NMM, EMG-assisted physics",
            "tab:pink",
            derived_from="nmm",
            predict_params={"predict_physics": "emg"},
            description="the same fit, X's surface EMG driving its muscles in the correction "
            "(predict_physics='emg')",
        ),
        _nmm_variant(
            "nmm_pretrained",
            "NMM, pretrained + personalised",
            "tab:cyan",
            params=_pretrained_params,
            fit=_fit_pretrained,
            enabled=_pretrained_enabled,
            description="pretrained on the other subjects, personalised on the subject's "
            f"training sequences (subject_embedding={PERSONAL_EMBEDDING}), the network alone",
        ),
        _nmm_variant(
            "nmm_personal",
            f"NMM, subject_embedding={PERSONAL_EMBEDDING}",
            "tab:olive",
            params=_personal_params,
            fit=None,
            adapt=_adapt_nmm,
            enabled=_ablation_enabled,
            description=f"the NMM with personalised EMG (subject_embedding={PERSONAL_EMBEDDING})"
            ", the network alone",
        ),
        Method(
            key="mse",
            label="MSE",
            color="tab:orange",
            params=_mse_params,
            fit=_fit_mse,
            adapt=_adapt_mse,
            legend="MSE (surface EMG)",
            role="baseline",
            description="muscle synergy extrapolation from the test sequences' surface EMG "
            "(baselines.SynergyExtrapolationRegressor)",
        ),
    )
}
"""The benchmark's methods, in table order: key -> :class:`Method`.

* ``"nmm_physics"`` (proposed), "NMM": the NMM as it predicts by default, the fitted
  network's EMG corrected by the prediction-time physics where the subject's model adequacy
  allows (``predict_physics="auto"``; the fit is ``"nmm"``'s, no fit of its own);
* ``"nmm_torque"`` (variant), "NMM, always corrected": the same fit with
  ``predict_physics="torque"`` (0.6's default);
* ``"nmm"`` (ablation), "NMM, network alone": the same fit, predicting with the network alone
  (``predict_physics="none"``);
* ``"nmm_no_physics"`` (ablation), "NMM, physics_weight=0": the NMM fitted without its physics
  term (within subject, when ``BenchmarkSettings.ablation``);
* ``"nmm_kinematics"`` (ablation), "NMM, kinematics only": 0.5's NMM, its network reading
  no surface EMG and trained by the torque term too (``emg_inputs=False``,
  ``physics_trains="all"``), predicting with the physics (within subject, when ``ablation``);
* ``"nmm_emg_physics"`` (variant), "NMM, EMG-assisted physics": the same fit with
  ``predict_physics="emg"`` (X's surface EMG drives its muscles);
* ``"nmm_pretrained"`` (variant), "NMM, pretrained + personalised": the NMM pretrained on the
  other subjects and personalised on the subject's training sequences (within subject, when
  ``BenchmarkSettings.pretrained``, with personalised EMG);
* ``"nmm_personal"`` (variant), "NMM, subject_embedding=4": the NMM with personalised EMG
  (leave one subject out, when ``ablation``);
* ``"mse"`` (baseline), "MSE".

A further method is one more entry; :func:`~deepemg.benchmark.run_benchmark` and
:mod:`deepemg.report` read them all from here."""


def method_of(label: str) -> Method | None:
    """The registered method whose :attr:`Method.label` is ``label`` (as in a row)."""
    return next((m for m in METHODS.values() if m.label == label), None)


def method_of_role(role: str) -> Method:
    """The first method of :data:`METHODS` whose :attr:`Method.role` is ``role``.

    Parameters
    ----------
    role : str
        A key of :data:`ROLES`.

    Returns
    -------
    Method

    Raises
    ------
    KeyError
        When no registered method has that role.

    Examples
    --------
    >>> method_of_role("proposed").label, method_of_role("baseline").label
    ('NMM', 'MSE')
    """
    found = next((m for m in METHODS.values() if m.role == role), None)
    if found is None:
        raise KeyError(f"no method of deepemg.benchmark.METHODS has the role {role!r}.")
    return found


# ---------------------------------------------------------------------------- older reports
LABELS_SINCE = (0, 5)
"""The deepemg release (major, minor) from which reports carry the labels of :data:`METHODS`."""

LEGACY_LABELS = {
    "NMM + prediction-time physics": "NMM",
    "NMM": "NMM, network alone",
    "NMM + EMG-assisted physics": "NMM, EMG-assisted physics",
}
"""Label in a report written before deepemg 0.5 -> the label of the same method today.

Before 0.5, "NMM" labelled the network alone (key ``"nmm"``) and the NMM as it predicts by
default (key ``"nmm_physics"``) was "NMM + prediction-time physics". The other labels did not
change. Translate with :func:`current_label`, which knows which version wrote the report: an
old "NMM" and today's "NMM" are different methods."""


def _release(version: str) -> tuple[int, ...]:
    """``"0.1.0.dev0"`` -> ``(0, 1, 0)``: the release numbers a version string starts with."""
    found = re.match(r"\d+(?:\.\d+)*", version.strip())
    if found is None:
        raise ValueError(f"{version!r} is not a deepemg version (such as '0.5.0').")
    return tuple(int(part) for part in found.group().split("."))


def current_label(label: str, written_by: str | None) -> str:
    """The label today's :data:`METHODS` gives the method a report labels ``label``.

    Parameters
    ----------
    label : str
        A row's ``method`` in a report (results.csv, summary.csv, results.md).
    written_by : str or None
        The deepemg version that wrote the report (``settings.json``'s
        ``["run"]["machine"]["deepemg"]``; :func:`deepemg.report.report_version`). None: the
        report does not record it (a hand-made result's); its labels are taken as today's.
        Every report of :func:`~deepemg.benchmark.run_benchmark` records its version.

    Returns
    -------
    str
        ``label`` translated by :data:`LEGACY_LABELS` when the report was written before
        deepemg 0.5 (0.5's pre-releases, such as 0.5.0.dev0, count as 0.5); ``label``
        unchanged otherwise.

    Raises
    ------
    ValueError
        When ``written_by`` does not start with a release number.

    Examples
    --------
    >>> current_label("NMM", "0.1.0.dev0")  # the network alone, as labelled before 0.5
    'NMM, network alone'
    >>> current_label("NMM + prediction-time physics", "0.1.0.dev0")
    'NMM'
    >>> current_label("NMM", "0.5.0.dev0")  # already today's label
    'NMM'
    """
    if written_by is None or _release(written_by) >= LABELS_SINCE:
        return label
    return LEGACY_LABELS.get(label, label)
