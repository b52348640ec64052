"""What a benchmark run returns (:class:`BenchmarkResult`) and its plain-text table."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SCORES", "BenchmarkResult", "format_score", "format_table"]

SCORES = {
    "r": "Pearson r over all test samples",
    "r_trial": "mean of each test trial's own r (shape over time, not load level)",
    "r_beyond": "r on the test trials whose load is heavier than every training trial's",
    "nrmse": "RMSE over the truth's range",
    "level_error": "|ln(mean prediction / mean truth)|: 0.405 at 1.5 times the truth's mean",
}
"""Score suffix -> its meaning; each deep muscle ``m`` gets the columns ``m_<suffix>``
(computed by :func:`deepemg.metrics.deep_muscle_metrics` and
:func:`deepemg.metrics.within_trial_r`)."""


@dataclass
class BenchmarkResult:
    """Scores, example traces, training curves and learned parameters of a benchmark run.

    Attributes
    ----------
    rows : list of dict
        One row per method, evaluation and subject: ``method`` (its
        :attr:`~deepemg.benchmark.Method.label`), ``evaluation``, ``subject``,
        ``<muscle>_r`` and ``<muscle>_nrmse`` for each deep muscle (NaN without a truth),
        ``torque_nrmse`` (NaN for methods without a torque) and ``fit_s`` (s).
    deep_muscles : list of str
        Muscles scored.
    examples : dict
        ``time`` (s), ``truth`` (n_timesteps, n_deep or None), ``<key>``: the deep muscles
        predicted by each method with a :attr:`~deepemg.benchmark.Method.legend` (``nmm``,
        ``mse``), ``torque_id`` and ``torque_<key>`` (N·m) of each method with a
        :attr:`~deepemg.benchmark.Method.torque_legend` (``torque_nmm``) on the first
        subject's test sequence with the heaviest load, within subject; ``subject``;
        ``load_kg``: that sequence's load (kg). Optionally ``<key>_std`` (shaped like
        ``<key>``): the spread of a method's prediction (e.g. over an ensemble), drawn as a
        90 % band.
    histories : dict
        Subject -> list of per-epoch dicts (``epoch``, ``data``, ``physics``, ``effort``,
        ``loss``) of the within-subject fit of the first method with a
        :attr:`~deepemg.benchmark.Method.record` (the NMM).
    parameters : list of dict
        That method's learned subject parameters (within subject), rows of
        :meth:`deepemg.physics.SubjectParameters.table`.
    true_parameters : list of dict or None
        The simulated subjects' true parameters (``true_params`` of the data), if known.
    settings : dict
    elapsed_s : float
        Wall time of the run (s), the simulation of the data included.
    joint : str
        The joint of X's channels (:class:`~deepemg.channels.ChannelLayout`), ``"elbow"`` for
        the built-in model.
    machine : dict
        :func:`deepemg.threads.machine_info` of the machine that ran it: versions (deepemg,
        torch, OpenSim, numpy, scikit-learn, python), CPU model and cores.
    n_jobs : int or None
        Folds run at once (:class:`joblib.Parallel`'s ``n_jobs``).
    threads_per_fit : int or None
        Threads each fit may use (:func:`deepemg.threads.plan_workers`).
    started_utc : str
        When the run started, ISO 8601 in UTC.
    truth_range : dict
        Deep muscle -> range (max - min) of its truth over all sequences (0-1 EMG); absent
        without a truth. A small range makes the muscle's NRMSE large and its r weak evidence.
    pooled : tuple of str
        The runs whose fits shared one pool with this one
        (:func:`~deepemg.benchmark.run_benchmarks`, e.g. every scenario); then ``elapsed_s`` is
        the pool's wall time. Empty for a run of its own.
    adequacy : list of dict
        The recorded NMM's ``model_adequacy_`` after each within-subject fit, one row per
        subject (:func:`deepemg.adequacy.adequacy_table`); empty in older results.
    """

    rows: list
    deep_muscles: list
    examples: dict
    histories: dict
    parameters: list
    true_parameters: list | None
    settings: dict
    elapsed_s: float = 0.0
    joint: str = "elbow"
    machine: dict = field(default_factory=dict)
    n_jobs: int | None = None
    threads_per_fit: int | None = None
    started_utc: str = ""
    truth_range: dict = field(default_factory=dict)
    pooled: tuple = ()
    adequacy: list = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """Score columns, in table order.

        Per deep muscle ``r``, ``r_trial``, ``r_beyond`` (only when some test trial lies beyond
        the training loads) and ``nrmse`` (:data:`SCORES`), then ``torque_nrmse`` and
        ``fit_s``. Columns a row lacks (a result of an older version) are left out.
        """
        present = set().union(*(row.keys() for row in self.rows)) if self.rows else set()
        deep = []
        for muscle in self.deep_muscles:
            for suffix in SCORES:
                column = f"{muscle}_{suffix}"
                if self.rows and column not in present:
                    continue
                if suffix == "r_beyond" and not any(
                    np.isfinite(row.get(column, np.nan)) for row in self.rows
                ):
                    continue
                deep.append(column)
        return [*deep, "torque_nrmse", "fit_s"]

    def summary(self) -> list[dict]:
        """Mean and SD over subjects of every score, one row per method and evaluation."""
        out = []
        for key in dict.fromkeys((r["evaluation"], r["method"]) for r in self.rows):
            rows = [r for r in self.rows if (r["evaluation"], r["method"]) == key]
            row = {"evaluation": key[0], "method": key[1], "n_subjects": len(rows)}
            for column in self.columns:
                values = np.array([r.get(column, np.nan) for r in rows], dtype=float)
                finite = values[np.isfinite(values)]
                row[f"{column}_mean"] = float(finite.mean()) if finite.size else np.nan
                row[f"{column}_sd"] = float(finite.std()) if finite.size else np.nan
            out.append(row)
        return out


def format_table(result: BenchmarkResult, subjects: bool = True) -> str:
    """The results as a plain-text table, per subject and mean ± SD.

    Parameters
    ----------
    result : BenchmarkResult
        From :func:`~deepemg.benchmark.run_benchmark`.
    subjects : bool, default=True
        Include one line per subject, not only mean ± SD.

    Returns
    -------
    str
        One block per evaluation: its name and number of subjects, a header, then per method
        its subjects' lines and its ``mean±SD`` line.
    """
    columns = result.columns
    width = max([24, *(len(row["method"]) + 2 for row in result.rows)])
    # a column name longer than its cells still stands apart from the one before it
    header = f"{'method':<{width}}{'subject':<9}" + "".join(f" {c:>15}" for c in columns)
    summaries = result.summary()
    lines = []
    for evaluation in dict.fromkeys(s["evaluation"] for s in summaries):
        block = [s for s in summaries if s["evaluation"] == evaluation]
        lines += ["", f"{evaluation} ({block[0]['n_subjects']} subjects)", header]
        for summary in block:
            if subjects:
                lines += [
                    f"{row['method']:<{width}}{row['subject']!s:<9}"
                    + "".join(format_score(row.get(c, np.nan), c) for c in columns)
                    for row in result.rows
                    if (row["evaluation"], row["method"]) == (evaluation, summary["method"])
                ]
            lines.append(
                f"{summary['method']:<{width}}{'mean±SD':<9}"
                + "".join(
                    format_score(summary[f"{c}_mean"], c, summary[f"{c}_sd"]) for c in columns
                )
            )
    return "\n".join(lines[1:])


def format_score(value, column: str, sd=None) -> str:
    """One table cell, right-aligned in 16 characters.

    r and NRMSE to 3 decimals, torque NRMSE in per cent, fit time in s, ``n/a`` for NaN.

    Examples
    --------
    >>> format_score(0.1234, "torque_nrmse", 0.01).strip()
    '12.3%±1.0'
    """
    if value is None or not np.isfinite(value):
        return f"{'n/a':>16}"
    scale, digits = (100.0, 1) if column == "torque_nrmse" else (1.0, 1 if column == "fit_s" else 3)
    unit = "%" if column == "torque_nrmse" else ""
    text = f"{value * scale:.{digits}f}{unit}"
    if sd is not None and np.isfinite(sd):
        text += f"±{sd * scale:.{digits}f}"
    return f"{text:>16}"
