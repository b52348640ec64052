r"""The paper-style benchmark: NMM against muscle synergy extrapolation, within and across subjects.

:func:`run_benchmark` fits :class:`deepemg.NMMRegressor` and
:class:`baselines.SynergyExtrapolationRegressor` (MSE) on the same splits and scores the deep
muscles against their truth (where one exists) and the NMM's muscle torque against inverse
dynamics:

* **within subject**: each subject's first ``train_fraction`` of the sequences train, the rest
  test. The NMM predicts the test sequences from kinematics and load only; MSE is fitted on the
  training sequences and reads the test sequences' surface EMG, as MSE is used.
* **leave one subject out**: the NMM is fitted on the other subjects, then
  :meth:`~deepemg.NMMRegressor.personalize`\ d on the held-out subject's kinematics, load,
  torque and surface EMG (no deep labels); MSE is fitted on the held-out subject's own surface
  EMG and torque.

"NMM" names the NMM as :class:`~deepemg.NMMRegressor` predicts by default
(``predict_physics="torque"``), the method whose role in :data:`METHODS` is ``"proposed"``,
and so does the row "NMM" of the tables; "NMM, network alone" is the same fit predicting with
the network alone (``predict_physics="none"``), "NMM, physics_weight=0" the network fitted
without its physics term. Reports written before deepemg 0.5 labelled the network alone "NMM"
and the default "NMM + prediction-time physics": :func:`current_label` reads their labels as
today's (:data:`LEGACY_LABELS`).

X's channels are found through the data's own :class:`~deepemg.channels.ChannelLayout`
(``ChannelLayout.infer(data.channels)``); it must be the layout of the ``model`` and
``coordinate`` given to :func:`run_benchmark`.

The package's parts, every name of which this package holds too:

* :mod:`deepemg.benchmark.methods`: the compared methods (:data:`METHODS` of :class:`Method`,
  each with its role of :data:`ROLES`: proposed, ablation, variant, baseline);
* :mod:`deepemg.benchmark.protocol`: the settings (:class:`BenchmarkSettings`), the data, the
  splits (:func:`within_subject_splits`, leave one subject out) and the fit of one fold;
* :mod:`deepemg.benchmark.runner`: :func:`run_benchmark`, which runs every fold through joblib,
  and :func:`run_benchmarks`, several runs (the scenarios) in one pool of fits;
* :mod:`deepemg.benchmark.results`: :class:`BenchmarkResult` and its plain-text table;
* :mod:`deepemg.benchmark.checks`: the self-check of its own numbers (:data:`QUICK_FLOORS`,
  :func:`check_floors`) and the accuracy targets (:data:`TARGETS`, :func:`target_checks`).

The scores themselves are :mod:`deepemg.metrics`' :func:`~deepemg.metrics.deep_muscle_metrics`
(r, NRMSE), :func:`~deepemg.metrics.within_trial_r`, :func:`~deepemg.metrics.level_error` and
:func:`~deepemg.metrics.torque_nrmse`.

Its registries and constants (the parts' source says more on each):

.. data:: METHODS

   The compared methods in table order, key -> :class:`Method`: ``"nmm_physics"``
   (proposed, "NMM": the NMM as it predicts by default, ``predict_physics="auto"``),
   ``"nmm_torque"`` (variant, "NMM, always corrected": the same fit, ``"torque"``),
   ``"nmm"`` (ablation, "NMM, network alone": the same fit, ``predict_physics="none"``),
   ``"nmm_no_physics"`` (ablation, "NMM, physics_weight=0": within subject, with
   ``BenchmarkSettings.ablation``), ``"nmm_emg_physics"`` (variant, "NMM, EMG-assisted
   physics": ``predict_physics="emg"``), ``"nmm_pretrained"`` (variant, "NMM, pretrained +
   personalised": within subject, with ``BenchmarkSettings.pretrained``), ``"nmm_personal"``
   (variant, "NMM, subject_embedding=4": leave one subject out, with ``ablation``) and
   ``"mse"`` (baseline, "MSE"). A further method is one more entry.

.. data:: LEGACY_LABELS

   Label in a report written before deepemg 0.5 -> today's label of the same method
   ("NMM + prediction-time physics" -> "NMM", "NMM" -> "NMM, network alone", "NMM +
   EMG-assisted physics" -> "NMM, EMG-assisted physics"); applied by :func:`current_label`
   to reports of those versions only.

.. data:: ROLES

   Role of a :class:`Method` -> what it means: ``"proposed"``, ``"ablation"``, ``"variant"``,
   ``"baseline"``. The report and :func:`target_checks` find the proposed method and the
   baseline by role (:func:`method_of_role`).

.. data:: EVALUATIONS

   Evaluation key -> its name in the rows and tables: ``"within"`` (within subject),
   ``"loso"`` (leave one subject out).

.. data:: SCORES

   Score suffix -> its meaning; each deep muscle ``m`` gets the columns ``m_<suffix>``:
   ``r``, ``r_trial``, ``r_beyond``, ``nrmse``, ``level_error``.

.. data:: QUICK_FLOORS

   The :class:`Floors` of ``deepemg benchmark --quick``: the NMM's (``"nmm_physics"``, "NMM", as
   it predicts by default) within-subject BRA r mean at least 0.85, and not below the same fitted
   network alone's (``"nmm"``; measured on 2 CPU cores, 2026-12-05: r 0.918 against 0.893).

.. data:: TARGETS

   The accuracy targets of issue #10 (:class:`Target`), checked by :func:`target_checks`.

.. data:: FLAT_TRUTH_RANGE

   0.1: a deep muscle whose truth spans less (0-1 EMG scale, over all sequences) barely works
   in the data; its NRMSE and r are weak evidence.

.. data:: PERSONAL_EMBEDDING

   4: ``subject_embedding`` of the benchmark's NMMs with personalised EMG.
"""

from ..metrics import deep_muscle_metrics, level_error, torque_nrmse, within_trial_r
from .checks import (
    FLAT_TRUTH_RANGE,
    QUICK_FLOORS,
    TARGETS,
    Floors,
    Target,
    check_floors,
    floor_checks,
    target_checks,
)
from .methods import (
    LEGACY_LABELS,
    METHODS,
    PERSONAL_EMBEDDING,
    ROLES,
    Method,
    current_label,
    method_of,
    method_of_role,
)
from .protocol import EVALUATIONS, BenchmarkSettings, simulated_subjects, within_subject_splits
from .results import SCORES, BenchmarkResult, format_score, format_table
from .runner import run_benchmark, run_benchmarks

__all__ = [
    "EVALUATIONS",
    "FLAT_TRUTH_RANGE",
    "LEGACY_LABELS",
    "METHODS",
    "PERSONAL_EMBEDDING",
    "QUICK_FLOORS",
    "ROLES",
    "SCORES",
    "TARGETS",
    "BenchmarkResult",
    "BenchmarkSettings",
    "Floors",
    "Method",
    "Target",
    "check_floors",
    "current_label",
    "deep_muscle_metrics",
    "floor_checks",
    "format_score",
    "format_table",
    "level_error",
    "method_of",
    "method_of_role",
    "run_benchmark",
    "run_benchmarks",
    "simulated_subjects",
    "target_checks",
    "torque_nrmse",
    "within_subject_splits",
    "within_trial_r",
]
