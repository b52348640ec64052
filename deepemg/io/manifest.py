"""A folder of trial files listed in a ``trials.csv`` manifest, as the ``deepemg`` command reads."""

from __future__ import annotations

import csv
import os
from pathlib import Path

__all__ = ["MANIFEST", "read_manifest", "write_manifest"]

MANIFEST = "trials.csv"
"""File name of the manifest inside a data folder."""

_PATH_COLUMNS = ("kinematics", "emg", "torque")
_COLUMNS = (
    "subject",
    "load_mass",
    "kinematics",
    "emg",
    "emg_channels",
    "torque",
    "torque_column",
    "angle_column",
)

LAYOUT = """\
A data folder holds the trial files and a manifest, trials.csv, with one row per trial:
  subject,load_mass,kinematics,emg,emg_channels,torque
  S01,2.0,S01_trial01_ik.mot,S01_trial01_emg.csv,BIClong=EMG1;TRIlong=EMG2,S01_trial01_id.sto
subject, load_mass (kg) and kinematics (OpenSim IK .mot/.sto, angles in degrees or radians)
are required; emg (a .c3d or a .csv with a time column, raw EMG) with emg_channels (muscle
name = channel label, separated by ';'), torque (an inverse dynamics .sto), torque_column and
angle_column are optional. Paths are relative to the folder."""


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Read a data folder's ``trials.csv`` into trial dicts for :func:`~deepemg.io.load_trials`.

    Parameters
    ----------
    path : path
        The data folder (holding ``trials.csv``) or the manifest file itself.

    Returns
    -------
    list of dict
        One dict per row, with absolute paths, ``load_mass`` as float and ``emg_channels`` as
        a dict; empty cells are left out.

    Raises
    ------
    FileNotFoundError
        If there is no manifest, or a file it names does not exist (the message names the row).
    ValueError
        If a required column is missing, a column is unknown, or a cell cannot be read.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "ik.mot").write_text("")
    >>> _ = (folder / "trials.csv").write_text("subject,load_mass,kinematics\\nS01,2,ik.mot\\n")
    >>> trial, = read_manifest(folder)
    >>> trial["subject"], trial["load_mass"], trial["kinematics"].name
    ('S01', 2.0, 'ik.mot')
    """
    path = Path(path)
    manifest = path / MANIFEST if path.is_dir() else path
    if not manifest.is_file():
        where = f"no {MANIFEST} in {path}" if path.is_dir() else f"{path} does not exist"
        raise FileNotFoundError(f"{where}.\n{LAYOUT}")
    folder = manifest.parent
    with open(manifest, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("subject", "load_mass", "kinematics") if c not in columns]
        unknown = [c for c in columns if c not in _COLUMNS]
        if missing or unknown:
            problem = f"lacks columns {missing}" if missing else f"has unknown columns {unknown}"
            raise ValueError(f"{manifest} {problem}.\n{LAYOUT}")
        rows = [{k.strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    if not rows:
        raise ValueError(f"{manifest} has no trials (only a header).\n{LAYOUT}")
    trials = []
    for line, row in enumerate(rows, start=2):
        trial = {k: v for k, v in row.items() if v}
        where = f"{manifest}, line {line}"
        for key in ("subject", "load_mass", "kinematics"):
            if key not in trial:
                raise ValueError(f"{where}: the {key} cell is empty.")
        try:
            trial["load_mass"] = float(trial["load_mass"])
        except ValueError:
            raise ValueError(
                f"{where}: load_mass must be a number of kg, got {row['load_mass']!r}."
            ) from None
        for key in _PATH_COLUMNS:
            if key in trial:
                trial[key] = (folder / trial[key]).resolve()
                if not trial[key].is_file():
                    raise FileNotFoundError(f"{where}: {key} file {trial[key]} does not exist.")
        if "emg_channels" in trial:
            trial["emg_channels"] = _channels(trial["emg_channels"], where)
        trials.append(trial)
    return trials


def _channels(text: str, where: str) -> dict:
    mapping = {}
    for item in text.split(";"):
        muscle, sep, label = item.partition("=")
        if not sep or not muscle.strip() or not label.strip():
            raise ValueError(
                f"{where}: emg_channels must read 'muscle=channel;muscle=channel', e.g. "
                f"'BIClong=Biceps.EMG4;TRIlong=Triceps.EMG5', got {text!r}."
            )
        mapping[muscle.strip()] = label.strip()
    return mapping


def write_manifest(trials: list[dict], folder: str | os.PathLike) -> Path:
    """Write trial dicts as ``folder/trials.csv`` (paths relative to ``folder`` where possible).

    The inverse of :func:`read_manifest`.
    """
    folder = Path(folder)
    columns = [c for c in _COLUMNS if any(c in t for t in trials)]
    with open(folder / MANIFEST, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for trial in trials:
            row = dict(trial)
            for key in _PATH_COLUMNS:
                if key in row:
                    target = Path(row[key])
                    row[key] = os.path.relpath(target.resolve(), folder.resolve())
            if "emg_channels" in row:
                row["emg_channels"] = ";".join(f"{m}={c}" for m, c in row["emg_channels"].items())
            writer.writerow(row)
    return folder / MANIFEST
