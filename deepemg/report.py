"""A benchmark's report folder: the table as markdown and csv, and PNG figures.

:func:`write_report` writes, into one folder,

* ``results.md``: the settings, the table per subject and mean ± SD, and the figures;
* ``results.csv`` (one row per method, evaluation and subject) and ``summary.csv`` (mean and
  SD over subjects);
* ``subject_parameters.csv``: the NMM's learned parameters in physical units, with the truth
  where the data are simulated;
* ``deep_emg.png``: true and predicted deep-muscle EMG over time, NMM and MSE;
* ``torque.png``: the NMM's muscle torque against inverse dynamics (OpenSim);
* ``subject_parameters.png``: learned parameters within their physiological bounds;
* ``training_curves.png``: the NMM's data and physics loss terms per epoch;
* ``settings.json``.

The methods' labels, colours and legends come from the registry
:data:`deepemg.benchmark.METHODS`: which method draws which trace is set there
(:attr:`~deepemg.benchmark.Method.legend`, :attr:`~deepemg.benchmark.Method.torque_legend`,
:attr:`~deepemg.benchmark.Method.record`), not here.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from .benchmark import METHODS, BenchmarkResult, format_score

__all__ = [
    "markdown",
    "parameter_truth",
    "plot_deep_emg",
    "plot_subject_parameters",
    "plot_torque",
    "plot_training_curves",
    "write_report",
]

FIGURES = ("deep_emg.png", "torque.png", "subject_parameters.png", "training_curves.png")
COLORS = {"truth": "black", "id": "black"}
"""Colours of the references; each method's is its :attr:`~deepemg.benchmark.Method.color`."""


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
    (folder / "settings.json").write_text(json.dumps(result.settings, indent=2, default=str))
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


def markdown(result: BenchmarkResult, figures=()) -> str:
    """The report as markdown: settings, a table per evaluation, the figures' links."""
    columns = result.columns
    names = {"fit_s": "fit (s)", "torque_nrmse": "torque NRMSE"}
    header = ["method", "subject", *[names.get(c, c.replace("_", " ")) for c in columns]]
    settings = ", ".join(f"{k}={v}" for k, v in result.settings.items() if v not in ({}, None))
    lines = [
        "# deepemg benchmark",
        "",
        f"Settings: {settings}. Wall time {result.elapsed_s / 60:.1f} min.",
        "",
        "r: Pearson correlation of the reconstructed deep-muscle EMG with its truth; NRMSE: RMSE "
        "over the truth's range; torque NRMSE: the muscle model's torque against inverse "
        "dynamics, RMSE over its range. n/a: no truth, or a method without a torque.",
    ]
    summaries = result.summary()
    for evaluation in dict.fromkeys(s["evaluation"] for s in summaries):
        block = [s for s in summaries if s["evaluation"] == evaluation]
        lines += ["", f"## {evaluation[0].upper()}{evaluation[1:]}", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for summary in block:
            for row in result.rows:
                if (row["evaluation"], row["method"]) == (evaluation, summary["method"]):
                    cells = [_text(row[c], c) for c in columns]
                    lines.append(
                        f"| {row['method']} | {row['subject']} | " + " | ".join(cells) + " |"
                    )
            cells = [_text(summary[f"{c}_mean"], c, summary[f"{c}_sd"]) for c in columns]
            lines.append(f"| **{summary['method']}** | **mean ± SD** | " + " | ".join(cells) + " |")
    pictures = [name for name in FIGURES if name in figures]
    if pictures:
        lines += ["", "## Figures", ""]
        lines += [f"![{name[:-4].replace('_', ' ')}]({name})" for name in pictures]
    return "\n".join(lines) + "\n"


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


def plot_deep_emg(result: BenchmarkResult):
    """True and predicted EMG of each deep muscle on one test sequence (within subject)."""
    import matplotlib.pyplot as plt

    examples = result.examples
    if "time" not in examples:
        return None
    deep = result.deep_muscles
    figure, axes = plt.subplots(
        len(deep), 1, figsize=(8, 2.4 * len(deep)), sharex=True, squeeze=False
    )
    for k, (ax, muscle) in enumerate(zip(axes[:, 0], deep, strict=True)):
        if examples.get("truth") is not None:
            ax.plot(
                examples["time"],
                examples["truth"][:, k],
                color=COLORS["truth"],
                lw=2,
                label="truth",
            )
        for method in METHODS.values():
            if method.legend is not None and method.key in examples:
                ax.plot(
                    examples["time"],
                    examples[method.key][:, k],
                    color=method.color,
                    label=method.legend,
                )
        ax.set_ylabel(f"{muscle} EMG (0-1)")
        ax.set_ylim(bottom=0)
    axes[0, 0].set_title(f"Deep-muscle EMG, subject {examples['subject']}, its heaviest test trial")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("time (s)")
    return figure


def plot_torque(result: BenchmarkResult):
    """The muscle torque of the methods with a ``torque_legend`` (the NMM) against inverse
    dynamics on the same test sequence."""
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
    ax.set_title(f"Subject {examples['subject']}, its heaviest test trial")
    ax.legend(fontsize=8)
    return figure


def plot_subject_parameters(result: BenchmarkResult):
    """Each learned parameter within its bounds (shaded), truth marked where known."""
    import matplotlib.pyplot as plt

    if not result.parameters:
        return None
    truth = parameter_truth(result.true_parameters)
    names = list(dict.fromkeys(row["parameter"] for row in result.parameters))
    subjects = list(dict.fromkeys(row["subject"] for row in result.parameters))
    n_cols = 4
    n_rows = int(np.ceil(len(names) / n_cols))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(3.2 * n_cols, 2.6 * n_rows), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, name in zip(axes.ravel(), names, strict=False):
        rows = [row for row in result.parameters if row["parameter"] == name]
        muscles = list(dict.fromkeys(row["muscle"] for row in rows))
        ax.axhspan(rows[0]["lower"], rows[0]["upper"], color="0.92", zorder=0)
        for s, subject in enumerate(subjects):
            x = np.arange(len(muscles)) + (s - (len(subjects) - 1) / 2) * 0.12
            own = {row["muscle"]: row["value"] for row in rows if row["subject"] == subject}
            ax.plot(x, [own[m] for m in muscles], "o", ms=4, color=cmap(s % 10), label=str(subject))
            known = [truth.get((subject, name, m)) for m in muscles]
            if any(v is not None for v in known):
                ax.plot(
                    x, [np.nan if v is None else v for v in known], "x", ms=5, color=cmap(s % 10)
                )
        ax.set_xticks(
            range(len(muscles)),
            ["subject" if m is None else m for m in muscles],
            rotation=60 if len(muscles) > 1 else 0,
            fontsize=7,
        )
        unit = rows[0]["unit"]
        ax.set_title(name + ("" if unit == "1" else f" ({unit})"), fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=6, title="o learned, x true", title_fontsize=6)
    figure.suptitle(f"{_recorded()} subject parameters within their bounds (grey)", fontsize=10)
    figure.tight_layout()
    return figure


def plot_training_curves(result: BenchmarkResult):
    """Data and physics terms of the loss per epoch of the method with a ``record`` (the NMM),
    one line per subject."""
    import matplotlib.pyplot as plt

    if not result.histories:
        return None
    histories = list(result.histories.values())
    terms = [
        term
        for term in ("data", "physics", "effort", "synergy")
        if any(h.get(term, 0) > 0 for history in histories for h in history)
    ]
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
        ax.set_title(f"{term} term", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    figure.suptitle(f"{_recorded()} training (within subject)", fontsize=10)
    figure.tight_layout()
    return figure
