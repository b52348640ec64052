"""A benchmark's report folder: the table as markdown and csv, and PNG figures.

:func:`write_report` writes, into one folder,

* ``results.md``: the settings, the run (date, wall time, n_jobs, threads per fit, CPU and
  cores, versions), the table per subject and mean ± SD with a caveat under it for every deep
  muscle whose truth is nearly flat (:func:`flat_truths`), and the figures;
* ``results.csv`` (one row per method, evaluation and subject) and ``summary.csv`` (mean and
  SD over subjects);
* ``subject_parameters.csv``: the NMM's learned parameters in physical units, with the truth
  where the data are simulated;
* ``deep_emg.png``: true and predicted deep-muscle EMG over time, NMM and MSE;
* ``torque.png``: the NMM's muscle torque against inverse dynamics (OpenSim);
* ``model_adequacy.csv`` (and a table in ``results.md``): whether the fitted muscle model
  explains each subject's surface EMG and torque (:mod:`deepemg.adequacy`), when recorded;
* ``subject_parameters.png``: learned parameters within their physiological bounds;
* ``training_curves.png``: the NMM's data and physics loss terms per epoch;
* ``settings.json``: the settings, and under ``"run"`` what :func:`run_info` returns.

Legends sit outside the axes, never over the traces, and every panel has its own y range.

The methods' labels, colours, legends, roles and descriptions come from the registry
:data:`deepemg.benchmark.METHODS`: which method draws which trace is set there
(:attr:`~deepemg.benchmark.Method.legend`, :attr:`~deepemg.benchmark.Method.torque_legend`,
:attr:`~deepemg.benchmark.Method.record`), and the method the targets judge and the one they
compare it with are those whose :attr:`~deepemg.benchmark.Method.role` is ``"proposed"`` and
``"baseline"`` (:func:`deepemg.benchmark.method_of_role`), not keys written here. Reports
written before deepemg 0.5 label the methods otherwise (their "NMM" is today's "NMM, network
alone"): read their labels through :func:`deepemg.benchmark.current_label` with the version
:func:`report_version` finds.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from .benchmark import (
    FLAT_TRUTH_RANGE,
    METHODS,
    SCORES,
    BenchmarkResult,
    format_score,
    method_of_role,
    target_checks,
)
from .benchmark.runner import BAND_METHOD
from .channels import ELBOW_JOINT

__all__ = [
    "FLAT_TRUTH_RANGE",
    "flat_truths",
    "hardest_scenario",
    "markdown",
    "methods_line",
    "parameter_truth",
    "plot_deep_emg",
    "plot_subject_parameters",
    "plot_torque",
    "plot_training_curves",
    "report_version",
    "run_info",
    "scenarios_markdown",
    "targets_markdown",
    "write_report",
    "write_scenarios_report",
]

FIGURES = ("deep_emg.png", "torque.png", "subject_parameters.png", "training_curves.png")
COLORS = {"truth": "black", "id": "black"}
"""Colours of the references; each method's is its :attr:`~deepemg.benchmark.Method.color`."""
Z90 = 1.645
"""Half-width of a two-sided 90 % band in standard deviations (normal)."""
MARGIN = 0.08
"""Each panel's y range: its data's range widened by this fraction on either side."""


def _recorded() -> str:
    """Label of the method whose training curves and parameters the result keeps."""
    return next((m.label for m in METHODS.values() if m.record is not None), "")


def write_report(result: BenchmarkResult, folder: str | os.PathLike) -> dict[str, Path]:
    """Write ``result``'s tables and figures into ``folder`` (created if missing).

    Parameters
    ----------
    result : BenchmarkResult
        From :func:`deepemg.benchmark.run_benchmark`.
    folder : path
        Report folder; files of the same names are overwritten, others are left alone.

    Returns
    -------
    dict of str to Path
        Name -> path of every file written.
    """
    import matplotlib

    matplotlib.use("Agg")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {
        "results.csv": _write_csv(folder / "results.csv", result.rows),
        "summary.csv": _write_csv(folder / "summary.csv", result.summary()),
        "subject_parameters.csv": _write_csv(
            folder / "subject_parameters.csv", _parameter_rows(result)
        ),
    }
    if getattr(result, "adequacy", None):
        written["model_adequacy.csv"] = _write_csv(folder / "model_adequacy.csv", result.adequacy)
    settings = {**result.settings, "run": run_info(result)}
    (folder / "settings.json").write_text(json.dumps(settings, indent=2, default=str))
    written["settings.json"] = folder / "settings.json"
    for name, plot in zip(
        FIGURES,
        (plot_deep_emg, plot_torque, plot_subject_parameters, plot_training_curves),
        strict=True,
    ):
        figure = plot(result)
        if figure is not None:
            figure.savefig(folder / name, dpi=110, bbox_inches="tight")
            _close(figure)
            written[name] = folder / name
    (folder / "results.md").write_text(markdown(result, figures=written), encoding="utf-8")
    written["results.md"] = folder / "results.md"
    return written


def write_scenarios_report(
    results: dict[str, BenchmarkResult], folder: str | os.PathLike
) -> dict[str, Path]:
    """Write one report per scenario into ``folder/<scenario>/`` and a summary beside them.

    Each scenario's report is :func:`write_report`'s; ``folder/results.md`` holds one table per
    scenario (mean ± SD over subjects), its targets and the deep-EMG figure of the hardest
    scenario (:func:`hardest_scenario`).

    Parameters
    ----------
    results : dict of str to BenchmarkResult
        Scenario name -> its result (:func:`deepemg.benchmark.run_benchmark` with
        ``BenchmarkSettings(scenario=name)``), in table order.
    folder : path
        Report folder (created if missing).

    Returns
    -------
    dict of str to Path
        ``results.md`` and ``<scenario>/<file>`` -> path of every file written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, result in results.items():
        for file, path in write_report(result, folder / name).items():
            written[f"{name}/{file}"] = path
    (folder / "results.md").write_text(scenarios_markdown(results), encoding="utf-8")
    written["results.md"] = folder / "results.md"
    return written


def hardest_scenario(results: dict[str, BenchmarkResult]) -> str | None:
    """The scenario where the proposed method follows the brachialis' shape worst.

    The proposed method is the one whose role is ``"proposed"`` (the NMM as it predicts by
    default); the scenario is the one of its lowest within-subject mean of ``BRA_r_trial`` (of
    ``BRA_r`` where no result has it); None without one.
    """
    label = method_of_role("proposed").label
    scores = {}
    for column in ("BRA_r_trial_mean", "BRA_r_mean"):
        for name, result in results.items():
            for summary in result.summary():
                if summary["method"] == label and summary["evaluation"] == "within subject":
                    value = summary.get(column, np.nan)
                    if np.isfinite(value):
                        scores[name] = value
        if scores:
            return min(scores, key=lambda name: scores[name])
    return None


def scenarios_markdown(results: dict[str, BenchmarkResult]) -> str:
    """The scenarios' summary page.

    The methods, then per scenario its description, mean ± SD table and targets; the hardest
    scenario's deep-EMG figure.
    """
    from .datasets import SCENARIOS

    hardest = hardest_scenario(results)
    lines = [
        "# deepemg benchmark: scenarios",
        "",
        "Each scenario simulates its subjects differently from deepemg's own muscle model and "
        "motions (docs/scenarios.md); each folder holds that scenario's full report (per "
        "subject, figures, settings, machine). Scores as in those reports: r over all test "
        "samples, r trial (mean of each test trial's own r), r beyond (test trials heavier "
        "than any training trial), NRMSE, the NMM's torque NRMSE against inverse dynamics. "
        + methods_line([r["method"] for result in results.values() for r in result.rows]),
    ]
    for name, result in results.items():
        scenario = SCENARIOS.get(name)
        columns = [c for c in result.columns if c != "fit_s"]
        header = ["evaluation", "method", *[c.replace("_", " ") for c in columns]]
        lines += ["", f"## {name}", ""]
        if scenario is not None:
            lines += [scenario.description, ""]
        lines += [
            f"Wall time {_wall_time(result)}; full report: [{name}/results.md]({name}/results.md).",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for summary in result.summary():
            cells = [_text(summary[f"{c}_mean"], c, summary[f"{c}_sd"]) for c in columns]
            lines.append(
                f"| {summary['evaluation']} | {summary['method']} | " + " | ".join(cells) + " |"
            )
        lines += targets_markdown(result, heading=f"### Targets, {name}")
    if hardest is not None and (results[hardest].examples or {}).get("time") is not None:
        lines += [
            "",
            f"## The hardest scenario: {hardest}",
            "",
            "Lowest NMM within-subject BRA r. Its deep-EMG figure:",
            "",
            f"![deep EMG, {hardest}]({hardest}/deep_emg.png)",
        ]
    return "\n".join(lines) + "\n"


def run_info(result: BenchmarkResult) -> dict:
    """When, how long, how parallel and on what the benchmark ran (``settings.json``'s ``run``).

    ``started_utc`` (ISO 8601), ``elapsed_s`` (wall time of the run; each fit's own is the rows'
    ``fit_s``), ``pooled`` (the runs whose fits shared one pool with it, e.g. every scenario;
    then ``elapsed_s`` is the pool's; empty for a run of its own), ``n_jobs`` (folds at once),
    ``threads_per_fit`` and ``machine``
    (:func:`deepemg.threads.machine_info`: ``cpu``, ``cores``, the versions of ``deepemg``,
    ``torch``, ``opensim``, ``numpy``, ``scikit-learn``, ``python``, ``platform``). None
    where the result does not say (a hand-made result).

    Examples
    --------
    >>> from deepemg.benchmark import BenchmarkResult
    >>> info = run_info(BenchmarkResult([], ["BRA"], {}, {}, [], None, {}, elapsed_s=60.0))
    >>> info["elapsed_s"], info["n_jobs"], info["pooled"], sorted(info)[:3]
    (60.0, None, [], ['elapsed_s', 'machine', 'n_jobs'])
    """
    return {
        "started_utc": result.started_utc or None,
        "elapsed_s": round(float(result.elapsed_s), 3),
        "pooled": list(getattr(result, "pooled", ())),
        "n_jobs": result.n_jobs,
        "threads_per_fit": result.threads_per_fit,
        "machine": dict(result.machine),
    }


def report_version(folder: str | os.PathLike) -> str | None:
    """The deepemg version that ran the report in ``folder``, as its ``settings.json`` records it.

    Its ``["run"]["machine"]["deepemg"]`` (:func:`run_info`), which says which labels the
    report's methods carry (:func:`deepemg.benchmark.current_label`).

    Parameters
    ----------
    folder : path
        A folder :func:`write_report` wrote.

    Returns
    -------
    str or None
        The version; None where the report does not record it (a hand-made result's).

    Raises
    ------
    FileNotFoundError
        When ``folder`` has no ``settings.json``.

    Examples
    --------
    >>> from deepemg.benchmark import current_label
    >>> version = report_version("docs/results/benchmark")  # doctest: +SKIP
    >>> version, current_label("NMM", version)  # doctest: +SKIP
    ('0.1.0.dev0', 'NMM, network alone')
    """
    settings = json.loads((Path(folder) / "settings.json").read_text(encoding="utf-8"))
    return ((settings.get("run") or {}).get("machine") or {}).get("deepemg")


def flat_truths(result: BenchmarkResult, threshold: float = FLAT_TRUTH_RANGE) -> dict:
    """Deep muscle -> its truth's range, for the muscles whose truth spans less than ``threshold``.

    Read from ``result.truth_range``; none without a truth.

    Examples
    --------
    >>> from deepemg.benchmark import BenchmarkResult
    >>> result = BenchmarkResult([], ["BRA", "TRImed"], {}, {}, [], None, {},
    ...                          truth_range={"BRA": 0.42, "TRImed": 0.046})
    >>> flat_truths(result)
    {'TRImed': 0.046}
    """
    return {
        muscle: value
        for muscle, value in result.truth_range.items()
        if muscle in result.deep_muscles and not value >= threshold  # NaN counts as flat
    }


def markdown(result: BenchmarkResult, figures=()) -> str:
    """The report as markdown: settings, the run, a table per evaluation, the figures' links."""
    settings = ", ".join(f"{k}={v}" for k, v in result.settings.items() if v not in ({}, None))
    lines = [
        "# deepemg benchmark",
        "",
        f"Settings: {settings}.",
        "",
        *_run_lines(result),
        "",
        "r: Pearson correlation of the reconstructed deep-muscle EMG with its truth over all "
        "test samples; r trial: the mean of each test trial's own r (the shape over time, not "
        "the load level); r beyond: r on the test trials heavier than any training trial "
        "(shown when there are some); NRMSE: RMSE over the truth's range; torque NRMSE: the "
        "muscle model's torque against inverse dynamics, RMSE over its range; fit (s): wall "
        "time of each fit. n/a: no truth, or a method without a torque.",
    ]
    described = methods_line([row["method"] for row in result.rows])
    if described:
        lines += ["", described]
    lines += _tables(result)
    lines += _adequacy_lines(result)
    lines += targets_markdown(result)
    pictures = [name for name in FIGURES if name in figures]
    if pictures:
        lines += ["", "## Figures", ""]
        lines += [f"![{name[:-4].replace('_', ' ')}]({name})" for name in pictures]
    return "\n".join(lines + _band_lines(result)) + "\n"


def _adequacy_lines(result: BenchmarkResult) -> list[str]:
    """The recorded NMM's model adequacy per subject (within subject), as a markdown table."""
    rows = getattr(result, "adequacy", None)
    if not rows:
        return []
    keys = [k for k in rows[0] if k != "subject"]
    lines = [
        "",
        f"## Model adequacy ({_recorded()}, within subject)",
        "",
        "Whether the fitted muscle model explains each subject's surface EMG and torque "
        "together (deepemg.adequacy; docs/nmm.md, 'Is the physics adequate for my subject?').",
        "",
        "| subject | " + " | ".join(k.replace("_", " ") for k in keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    lines += [
        f"| {row['subject']} | " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows
    ]
    return lines


def _tables(result: BenchmarkResult) -> list[str]:
    """One markdown table per evaluation, per subject and mean ± SD, each with its caveat."""
    columns = result.columns
    flat = flat_truths(result)
    names = {"fit_s": "fit (s)", "torque_nrmse": "torque NRMSE"}
    for muscle in flat:
        for score in SCORES:
            names[f"{muscle}_{score}"] = f"{muscle} {score.replace('_', ' ')} †"
    header = ["method", "subject", *[names.get(c, c.replace("_", " ")) for c in columns]]
    caveat = _caveat(result, flat)
    summaries = result.summary()
    lines = []
    for evaluation in dict.fromkeys(s["evaluation"] for s in summaries):
        block = [s for s in summaries if s["evaluation"] == evaluation]
        lines += ["", f"## {evaluation[0].upper()}{evaluation[1:]}", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for summary in block:
            for row in result.rows:
                if (row["evaluation"], row["method"]) == (evaluation, summary["method"]):
                    cells = [_text(row.get(c, np.nan), c) for c in columns]
                    lines.append(
                        f"| {row['method']} | {row['subject']} | " + " | ".join(cells) + " |"
                    )
            cells = [_text(summary[f"{c}_mean"], c, summary[f"{c}_sd"]) for c in columns]
            lines.append(f"| **{summary['method']}** | **mean ± SD** | " + " | ".join(cells) + " |")
        if caveat:
            lines += ["", caveat]
    return lines


def _band_lines(result: BenchmarkResult) -> list[str]:
    """The sentence on the deep-EMG figure's ensemble band and its coverage; none without."""
    coverage = result.examples.get("band_coverage")
    if not coverage:
        return []
    shares = ", ".join(f"{m} {100 * v:.0f} %" for m, v in coverage.items())
    return [
        "",
        f'The trace "{METHODS[BAND_METHOD].legend}" of the deep-EMG figure is the mean of an '
        f"ensemble of "
        f"{result.examples['band_members']} networks fitted on the same training sequences "
        f"(the tables score single networks); its 90 % band (calibrated out of bag, "
        f"scale {result.examples['uncertainty_scale']:.2f}) holds this share of the truth "
        f"on all of subject {result.examples['subject']}'s test sequences: {shares} "
        "(target 85-95 %).",
    ]


def methods_line(labels) -> str:
    """What the registered methods among ``labels`` are, in one paragraph of markdown.

    Each method of :data:`deepemg.benchmark.METHODS` whose label is among ``labels`` (the rows'
    ``method``), in registry order, with its role and
    :attr:`~deepemg.benchmark.Method.description`; empty when none is registered.

    Examples
    --------
    >>> methods_line(["MSE", "an unregistered method"])[:41]
    "Methods: 'MSE' (baseline): muscle synergy"
    >>> methods_line(["an unregistered method"])
    ''
    """
    shown = set(labels)
    described = [
        f"'{m.label}' ({m.role}): {m.description}" if m.description else f"'{m.label}' ({m.role})"
        for m in METHODS.values()
        if m.label in shown
    ]
    return f"Methods: {'; '.join(described)}." if described else ""


def targets_markdown(result: BenchmarkResult, heading: str = "## Targets") -> list[str]:
    """The targets of :data:`deepemg.benchmark.TARGETS` as markdown lines.

    The method whose role is ``"proposed"`` (the NMM as it predicts by default) against the
    ``"baseline"`` (MSE); no lines when the result lacks either.
    """
    try:
        checks = target_checks(result)
        proposed, baseline = method_of_role("proposed"), method_of_role("baseline")
    except KeyError:
        return []
    checks = [c for c in checks if np.isfinite(c["value"]) or c["met"] is not None]
    if not checks or not any(r["method"] == baseline.label for r in result.rows):
        return []
    mark = {True: "met", False: "**missed**", None: "n/a"}
    lines = [
        "",
        heading,
        "",
        f"{proposed.label} (NMMRegressor as it predicts by default; mean over subjects) against "
        f"each target; the bound is scaled by {baseline.label}'s mean on the same splits where the "
        "target is relative.",
        "",
        f"| evaluation | target | {proposed.label} | bound | {baseline.label} | |",
        "|---|---|---|---|---|---|",
    ]
    for c in checks:
        column = "torque_nrmse" if "torque" in c["target"] else "r"
        lines.append(
            f"| {c['evaluation']} | {c['target']} | {_text(c['value'], column)} | "
            f"{_text(c['bound'], column)} | {_text(c['reference'], column)} | {mark[c['met']]} |"
        )
    return lines


def _wall_time(result: BenchmarkResult) -> str:
    """``"3.2 min (192 s)"``, said to be the pool's when the run shared one with others."""
    elapsed = float(result.elapsed_s)
    text = f"{elapsed / 60:.1f} min ({elapsed:.0f} s)"
    pooled = list(getattr(result, "pooled", ()))
    if pooled:
        text += f" of the {len(pooled)} runs whose fits shared one pool ({', '.join(pooled)})"
    return text


def _run_lines(result: BenchmarkResult) -> list[str]:
    """The run's metadata as a markdown list (what is unknown is left out)."""
    info = run_info(result)
    machine = info["machine"]
    lines = ["## Run", ""]
    if info["started_utc"]:
        lines.append(f"- started (UTC): {info['started_utc']}")
    lines.append(f"- wall time: {_wall_time(result)} in all; each fit's own is the tables' fit (s)")
    if info["n_jobs"] is not None or info["threads_per_fit"] is not None:
        lines.append(
            f"- n_jobs: {info['n_jobs']} (folds at once); threads per fit: "
            f"{info['threads_per_fit']} (torch and BLAS)"
        )
    if "cpu" in machine or "cores" in machine:
        lines.append(f"- CPU: {machine.get('cpu', 'unknown')}, {machine.get('cores', '?')} cores")
    versions = [
        f"{name} {machine[key]}"
        for name, key in (
            ("deepemg", "deepemg"),
            ("torch", "torch"),
            ("OpenSim", "opensim"),
            ("numpy", "numpy"),
            ("scikit-learn", "scikit-learn"),
            ("Python", "python"),
        )
        if key in machine
    ]
    if versions:
        lines.append(f"- versions: {', '.join(versions)}")
    if "platform" in machine:
        lines.append(f"- platform: {machine['platform']}")
    return lines


def _caveat(result: BenchmarkResult, flat: dict) -> str:
    """The footnote under each table for the deep muscles whose truth is nearly flat."""
    if not flat:
        return ""
    others = {m: v for m, v in result.truth_range.items() if m not in flat}
    against = ", ".join(f"{m} {v:.3f}" for m, v in others.items())
    spans = ", ".join(f"{m} {v:.3f}" for m, v in flat.items())
    names = " and ".join(flat)
    why = (
        "a co-contraction floor: in these lifts gravity always flexes the elbow, so the "
        "elbow's extensors barely work"
        if result.joint == ELBOW_JOINT
        else "e.g. a muscle held at a co-contraction floor"
    )
    its = "Its" if len(flat) == 1 else "Their"
    return (
        f"† {names}: the truth is nearly flat in these data, {why} (range over all sequences, "
        f"on the 0-1 EMG scale: {spans}" + (f"; against {against}" if against else "") + "). "
        f"{its} NRMSE (RMSE over that tiny range) is therefore large, and {its.lower()} r "
        "rests on little variation: weak evidence either way. Judge it by the traces in the "
        "deep-EMG figure."
    )


def _text(value, column, sd=None) -> str:
    return format_score(value, column, sd).strip()


def _write_csv(path: Path, rows: list[dict]) -> Path:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def parameter_truth(true_parameters) -> dict:
    """``(subject, parameter, muscle) -> value`` for the parameters the simulator draws.

    Parameters
    ----------
    true_parameters : list of dict or None
        ``true_params`` of :func:`deepemg.datasets.make_elbow_lifting`.
    """
    truth = {}
    for subject in true_parameters or ():
        for name in (
            "max_isometric_force_scale",
            "optimal_fiber_length_scale",
            "tendon_slack_length_scale",
        ):
            for muscle, value in zip(subject["muscles"], subject[name], strict=True):
                truth[(subject["name"], name, muscle)] = float(value)
        truth[(subject["name"], "delay", None)] = float(subject["electromechanical_delay"])
    return truth


def _parameter_rows(result: BenchmarkResult) -> list[dict]:
    truth = parameter_truth(result.true_parameters)
    return [
        {**row, "true_value": truth.get((row["subject"], row["parameter"], row["muscle"]), "")}
        for row in result.parameters
    ]


def _close(figure) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)


def _data_range(arrays, margin: float = MARGIN) -> tuple[float, float] | None:
    """``(low, high)`` of the finite values of ``arrays``, widened; None if there are none.

    Widened by ``margin`` of their range on either side, and by a small amount where the values
    are all equal.
    """
    values = np.concatenate([np.ravel(np.asarray(a, dtype=float)) for a in arrays] or [np.empty(0)])
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    low, high = float(values.min()), float(values.max())
    span = high - low
    if span <= 1e-12 * max(abs(low), abs(high), 1.0):
        span = 0.1 * max(abs(low), abs(high)) or 1.0
        return low - span / 2, high + span / 2
    return low - margin * span, high + margin * span


def _legend_outside(ax, **kwargs):
    """``ax``'s legend to the right of the axes, top-aligned: never over the data."""
    return ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8, **kwargs
    )


def _trial(examples) -> str:
    load = examples.get("load_kg")
    load = "" if load is None or not np.isfinite(load) else f", load {load:g} kg"
    return f"subject {examples['subject']}, its heaviest test trial{load}"


def plot_deep_emg(result: BenchmarkResult):
    """True and predicted EMG of each deep muscle on one test sequence (within subject).

    Where ``result.examples`` holds ``<key>_std`` for a drawn method (``nmm_std``: the spread
    of an ensemble's NMM), its 90 % band (mean ± 1.645 SD, clipped to [0, 1]) is shaded around
    its trace. Each panel has its own y range; the legend sits outside, right of the top panel.
    """
    import matplotlib.pyplot as plt

    examples = result.examples
    if "time" not in examples:
        return None
    deep = result.deep_muscles
    time = examples["time"]
    figure, axes = plt.subplots(
        len(deep), 1, figsize=(8, 2.4 * len(deep)), sharex=True, squeeze=False
    )
    for k, (ax, muscle) in enumerate(zip(axes[:, 0], deep, strict=True)):
        shown = []
        if examples.get("truth") is not None:
            shown.append(examples["truth"][:, k])
            ax.plot(time, shown[-1], color=COLORS["truth"], lw=2, label="truth", zorder=3)
        for method in METHODS.values():
            if method.legend is None or method.key not in examples:
                continue
            mean = np.asarray(examples[method.key])[:, k]
            shown.append(mean)
            ax.plot(time, mean, color=method.color, label=method.legend, zorder=2)
            std = examples.get(f"{method.key}_std")
            if std is not None:
                spread = Z90 * np.asarray(std)[:, k]
                low, high = np.clip(mean - spread, 0, 1), np.clip(mean + spread, 0, 1)
                shown += [low, high]
                ax.fill_between(
                    time,
                    low,
                    high,
                    color=method.color,
                    alpha=0.25,
                    lw=0,
                    label=f"{method.label} 90 % band",
                    zorder=1,
                )
        ax.set_ylabel(f"{muscle} EMG (0-1)")
        limits = _data_range(shown)
        if limits is not None:
            ax.set_ylim(*limits)
    axes[0, 0].set_title(f"Deep-muscle EMG, {_trial(examples)}")
    _legend_outside(axes[0, 0])
    axes[-1, 0].set_xlabel("time (s)")
    figure.tight_layout()
    return figure


def plot_torque(result: BenchmarkResult):
    """The muscle torque of the methods with a ``torque_legend`` against inverse dynamics.

    The NMM's, on the same test sequence as the deep-EMG figure.
    """
    import matplotlib.pyplot as plt

    examples = result.examples
    drawn = [
        m for m in METHODS.values() if m.torque_legend is not None and f"torque_{m.key}" in examples
    ]
    if not drawn:
        return None
    figure, ax = plt.subplots(figsize=(8, 3))
    ax.plot(
        examples["time"],
        examples["torque_id"],
        color=COLORS["id"],
        lw=2,
        label="inverse dynamics (OpenSim)",
    )
    for method in drawn:
        ax.plot(
            examples["time"],
            examples[f"torque_{method.key}"],
            color=method.color,
            label=method.torque_legend,
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{result.joint} torque (N·m)")
    title = _trial(examples)
    ax.set_title(title[0].upper() + title[1:])
    _legend_outside(ax)
    figure.tight_layout()
    return figure


def plot_subject_parameters(result: BenchmarkResult):
    """Each learned parameter (o) and its truth where known (x), per subject.

    Its bounds are shaded and written in the panel's title. Each panel's y range is its own
    data's, so values close together stay apart; the legend sits right of the top-right panel.
    """
    import matplotlib.pyplot as plt

    if not result.parameters:
        return None
    truth = parameter_truth(result.true_parameters)
    names = list(dict.fromkeys(row["parameter"] for row in result.parameters))
    subjects = list(dict.fromkeys(row["subject"] for row in result.parameters))
    n_cols = min(4, len(names))
    n_rows = int(np.ceil(len(names) / n_cols))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(3.2 * n_cols, 2.8 * n_rows), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, name in zip(axes.ravel(), names, strict=False):
        rows = [row for row in result.parameters if row["parameter"] == name]
        muscles = list(dict.fromkeys(row["muscle"] for row in rows))
        lower, upper = rows[0]["lower"], rows[0]["upper"]
        ax.axhspan(lower, upper, color="0.92", zorder=0)
        shown = []
        for s, subject in enumerate(subjects):
            x = np.arange(len(muscles)) + (s - (len(subjects) - 1) / 2) * 0.12
            own = {row["muscle"]: row["value"] for row in rows if row["subject"] == subject}
            values = [own.get(m, np.nan) for m in muscles]
            shown.append(values)
            ax.plot(x, values, "o", ms=4, color=cmap(s % 10), label=str(subject))
            known = [truth.get((subject, name, m)) for m in muscles]
            if any(v is not None for v in known):
                known = [np.nan if v is None else v for v in known]
                shown.append(known)
                ax.plot(x, known, "x", ms=5, color=cmap(s % 10))
        limits = _data_range(shown)
        if limits is not None:
            ax.set_ylim(*limits)
        ax.set_xlim(-0.5, len(muscles) - 0.5)
        ax.set_xticks(
            range(len(muscles)),
            ["subject" if m is None else m for m in muscles],
            rotation=60 if len(muscles) > 1 else 0,
            fontsize=7,
        )
        unit = rows[0]["unit"]
        ax.set_title(
            name + ("" if unit == "1" else f" ({unit})") + f"\nbounds [{lower:g}, {upper:g}]",
            fontsize=8,
        )
        ax.tick_params(axis="y", labelsize=7, labelleft=True)
        ax.tick_params(axis="x", labelbottom=True)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    _legend_outside(axes[0, -1], title="o learned, x true", title_fontsize=7)
    figure.suptitle(
        f"{_recorded()} subject parameters; bounds shaded grey (each panel its own y range)",
        fontsize=10,
    )
    figure.tight_layout()
    return figure


def plot_training_curves(result: BenchmarkResult):
    """Data and physics terms of the loss per epoch of the method with a ``record``.

    That of the NMM, one line per subject.
    """
    import matplotlib.pyplot as plt

    if not result.histories:
        return None
    histories = list(result.histories.values())
    terms = [
        term
        for term in ("data", "physics", "effort", "synergy")
        if any(h.get(term, 0) > 0 for history in histories for h in history)
    ]
    if not terms:
        return None
    figure, axes = plt.subplots(1, len(terms), figsize=(3.6 * len(terms), 3), squeeze=False)
    for ax, term in zip(axes[0], terms, strict=True):
        for subject, history in result.histories.items():
            ax.plot(
                [h["epoch"] for h in history],
                [h.get(term, np.nan) for h in history],
                label=str(subject),
            )
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("term of the loss (log scale)")
        ax.set_title(f"{term} term", fontsize=9)
    _legend_outside(axes[0, -1])
    figure.suptitle(f"{_recorded()} training (within subject)", fontsize=10)
    figure.tight_layout()
    return figure
