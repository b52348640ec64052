"""A folder of trial files listed in a ``trials.csv`` manifest, as the ``deepemg`` command reads."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from pathlib import Path

__all__ = ["MANIFEST", "read_manifest", "write_manifest"]

MANIFEST = "trials.csv"
"""File name of the manifest inside a data folder."""

_PATH_COLUMNS = ("kinematics", "emg", "torque")
_PATH_LIST_COLUMNS = ("mvc",)
_COLUMNS = (
    "subject",
    "load_mass",
    "kinematics",
    "emg",
    "emg_channels",
    "mvc",
    "torque",
    "torque_column",
    "angle_column",
)

LAYOUT = """\
A data folder holds the trial files and a manifest, trials.csv, with one row per trial:
  subject,load_mass,kinematics,emg,emg_channels,mvc,torque
  S01,2.0,S01_trial01_ik.mot,S01_trial01_emg.csv,BIClong=EMG1;TRIlong=EMG2,S01_mvc.csv,S01_trial01_id.sto
subject, load_mass (kg) and kinematics (OpenSim IK .mot/.sto, angles in degrees or radians)
are required; emg (a .c3d or a .csv with a time column, raw EMG) with emg_channels (muscle
name = channel label, separated by ';'), mvc (the subject's maximal voluntary contraction
recordings, same channel labels, several separated by ';'), torque (an inverse dynamics .sto),
torque_column and angle_column are optional. Paths are relative to the folder and stay inside
it."""


def read_manifest(path: str | os.PathLike, allow_outside: bool = False) -> list[dict]:
    """Read a data folder's ``trials.csv`` into trial dicts for :func:`~deepemg.io.load_trials`.

    Parameters
    ----------
    path : path
        The data folder (holding ``trials.csv``) or the manifest file itself.
    allow_outside : bool, default=False
        Paths in the manifest are relative to its folder and must stay inside it: an absolute
        path, or one that leaves the folder (``..``, or a symbolic link to elsewhere: links
        are resolved) is refused. True accepts both (for a manifest you wrote yourself that
        points at files kept elsewhere).

    Returns
    -------
    list of dict
        One dict per row, with absolute (resolved) paths, ``load_mass`` as float,
        ``emg_channels`` as a dict and ``mvc`` as a list of paths; empty cells are left out.

    Raises
    ------
    FileNotFoundError
        If there is no manifest, or a file it names does not exist (the message names the row).
    ValueError
        If a required column is missing, a column is unknown, a row has more cells than the
        header, a cell cannot be read, or a path is absolute or leaves the folder while
        ``allow_outside=False`` (the messages name the file, the line and the column).

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
    rows = []
    with open(manifest, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, restkey=_EXTRA)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("subject", "load_mass", "kinematics") if c not in columns]
        unknown = [c for c in columns if c not in _COLUMNS]
        if missing or unknown:
            problem = f"lacks columns {missing}" if missing else f"has unknown columns {unknown}"
            raise ValueError(f"{manifest} {problem}.\n{LAYOUT}")
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"{manifest} has the columns {repeated} twice.\n{LAYOUT}")
        for row in reader:
            line = reader.line_num
            if _EXTRA in row:
                extra = [v for v in row[_EXTRA] if v.strip()]
                if extra:
                    raise ValueError(
                        f"{manifest}, line {line}: {len(columns) + len(row[_EXTRA])} cells but "
                        f"the header has {len(columns)} columns (extra: {extra[:3]}); quote "
                        "cells that hold commas."
                    )
                del row[_EXTRA]
            rows.append((line, {k.strip(): (v or "").strip() for k, v in row.items()}))
    if not rows:
        raise ValueError(f"{manifest} has no trials (only a header).\n{LAYOUT}")
    trials = []
    base = folder.resolve()
    for line, row in rows:
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
                trial[key] = _inside(trial[key], base, allow_outside, where, key)
        for key in _PATH_LIST_COLUMNS:
            if key in trial:
                names = [name.strip() for name in trial[key].split(";") if name.strip()]
                trial[key] = [_inside(name, base, allow_outside, where, key) for name in names]
        if "emg_channels" in trial:
            trial["emg_channels"] = _channels(trial["emg_channels"], where)
        trials.append(trial)
    return trials


_EXTRA = "\x00extra"


def _inside(name: str, base: Path, allow_outside: bool, where: str, column: str) -> Path:
    """The file ``name`` of a manifest cell, resolved against ``base`` and checked."""
    target = Path(name)
    if target.is_absolute() and not allow_outside:
        raise ValueError(
            f"{where}, column {column}: {name!r} is an absolute path; paths in a manifest are "
            "relative to its folder (pass allow_outside=True to read files elsewhere)."
        )
    resolved = (base / target).resolve()
    if not allow_outside and not resolved.is_relative_to(base):
        raise ValueError(
            f"{where}, column {column}: {name!r} leads out of the data folder {base} (to "
            f"{resolved}); paths in a manifest stay inside its folder (pass "
            "allow_outside=True to read files elsewhere)."
        )
    if not resolved.is_file():
        raise FileNotFoundError(f"{where}: {column} file {resolved} does not exist.")
    return resolved


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
    """Write trial dicts as ``folder/trials.csv`` (paths relative to ``folder``).

    The inverse of :func:`read_manifest`. The file appears whole or not at all (written to a
    temporary file, then moved into place). Files outside ``folder`` are written as relative
    paths with ``..``, which :func:`read_manifest` reads only with ``allow_outside=True``.
    """
    folder = Path(folder)
    columns = [c for c in _COLUMNS if any(c in t for t in trials)]
    base = folder.resolve()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for trial in trials:
        row = dict(trial)
        for key in _PATH_COLUMNS:
            if key in row:
                row[key] = os.path.relpath(Path(row[key]).resolve(), base)
        for key in _PATH_LIST_COLUMNS:
            if key in row:
                paths = [row[key]] if isinstance(row[key], str | os.PathLike) else row[key]
                row[key] = ";".join(os.path.relpath(Path(p).resolve(), base) for p in paths)
        if "emg_channels" in row:
            row["emg_channels"] = ";".join(f"{m}={c}" for m, c in row["emg_channels"].items())
        writer.writerow(row)
    target = folder / MANIFEST
    handle, tmp = tempfile.mkstemp(prefix=f".{MANIFEST}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(buffer.getvalue())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target
