"""A folder of trial files listed in a ``trials.csv`` manifest, as the ``deepemg`` command reads."""

from __future__ import annotations

import codecs
import csv
import io
import os
from pathlib import Path
from typing import cast

from .._files import write_whole
from .trials import _check_electrodes

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
    r"""Read a data folder's ``trials.csv`` into trial dicts for :func:`~deepemg.io.load_trials`.

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
        If the manifest is not UTF-8 text (the message gives the byte and the line), a
        required column is missing, a column is unknown, a row has more cells than the
        header, a cell cannot be read or holds more than ``csv.field_size_limit()`` (131072)
        characters, ``emg_channels`` maps a muscle twice or gives one channel to two muscles,
        two rows are the same trial (below), or a path is absolute or leaves the folder while
        ``allow_outside=False`` (the messages name the file, the line and the column).

    Notes
    -----
    **Duplicated rows.** A trial is the angle read from a kinematics file: two rows that name
    the same kinematics file (the same file after resolving the paths, so ``ik.mot`` and
    ``./sub/../ik.mot`` are one) with the same ``angle_column`` (compared as written: an
    empty cell, which stands for the coordinate given to ``load_trials``, is not compared with
    that coordinate's name) are one trial listed twice, whatever their other cells say, and
    are refused with both line numbers: used twice, the trial would weigh double in a fit, and
    listed under two subjects it would be in the training and the test subjects at once. Rows
    that share an ``emg``, ``mvc`` or ``torque`` file (trials cut from one long recording) and
    rows that read two angle columns of one kinematics file (both arms) are separate trials.

    The manifest is read as UTF-8 (a byte-order mark, as Excel's "CSV UTF-8" writes, is
    skipped; line ends may be ``\n``, ``\r\n`` or ``\r``).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "ik.mot").write_text("")
    >>> _ = (folder / "trials.csv").write_text("subject,load_mass,kinematics\nS01,2,ik.mot\n")
    >>> trial, = read_manifest(folder)
    >>> trial["subject"], trial["load_mass"], trial["kinematics"].name
    ('S01', 2.0, 'ik.mot')
    """
    path = Path(path)
    manifest = path / MANIFEST if path.is_dir() else path
    if not manifest.is_file():
        where = f"no {MANIFEST} in {path}" if path.is_dir() else f"{path} does not exist"
        raise FileNotFoundError(f"{where}.\n{LAYOUT}")
    rows = _manifest_rows(manifest, _decode(manifest.read_bytes(), manifest))
    if not rows:
        raise ValueError(f"{manifest} has no trials (only a header).\n{LAYOUT}")
    trials = []
    base = manifest.parent.resolve()
    read: dict = {}  # (kinematics, angle_column) -> (line, subject) of its first row
    for line, row in rows:
        trial = _row_trial(row, f"{manifest}, line {line}", base, allow_outside)
        key = (trial["kinematics"], trial.get("angle_column", ""))
        if key in read:
            raise _duplicate_error(manifest, base, key, read[key], (line, trial["subject"]))
        read[key] = (line, trial["subject"])
        trials.append(trial)
    return trials


def _manifest_rows(manifest: Path, text: str) -> list[tuple[int, dict]]:
    """The rows of the manifest's ``text``: (line, column -> stripped cell), header checked."""
    rows = []
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey=_EXTRA)
    columns, done = None, 0  # done: the last line of the last record read whole
    try:
        columns = [c.strip() for c in reader.fieldnames or []]
        done = reader.line_num
        _check_columns(columns, manifest)
        for row in reader:
            line = done = reader.line_num
            if _EXTRA in row:
                extra = cast(list[str], row.pop(_EXTRA))  # restkey gathers the extra cells
                _check_extra_cells(extra, columns, manifest, line)
            rows.append((line, {k.strip(): (v or "").strip() for k, v in row.items()}))
    except csv.Error as error:
        line = reader.reader.line_num  # where the csv reader stopped (DictReader's lags)
        raise _csv_error(error, manifest, text, done, line, columns) from None
    return rows


def _check_columns(columns: list[str], manifest: Path) -> None:
    """Raise if the header lacks a required column, has an unknown one or one twice."""
    missing = [c for c in ("subject", "load_mass", "kinematics") if c not in columns]
    unknown = [c for c in columns if c not in _COLUMNS]
    if missing or unknown:
        problem = f"lacks columns {missing}" if missing else f"has unknown columns {unknown}"
        raise ValueError(f"{manifest} {problem}.\n{LAYOUT}")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(f"{manifest} has the columns {repeated} twice.\n{LAYOUT}")


def _check_extra_cells(extra: list[str], columns: list[str], manifest: Path, line: int) -> None:
    """Raise if a row's cells beyond the header's columns (``extra``) are not all empty."""
    filled = [v for v in extra if v.strip()]
    if filled:
        raise ValueError(
            f"{manifest}, line {line}: {len(columns) + len(extra)} cells but "
            f"the header has {len(columns)} columns (extra: {filled[:3]}); quote "
            "cells that hold commas."
        )


def _row_trial(row: dict, where: str, base: Path, allow_outside: bool) -> dict:
    """The trial dict of one manifest row: empty cells left out, paths resolved and checked."""
    trial = {k: v for k, v in row.items() if v}
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
    return trial


def _decode(raw: bytes, manifest: Path) -> str:
    """The text of the manifest's bytes ``raw``, read as UTF-8 (a byte-order mark skipped)."""
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = skip + error.start
        line = raw[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1
        raise ValueError(
            f"{manifest} is not UTF-8: byte {offset} (line {line}) is "
            f"0x{raw[offset]:02x}, which cannot be there in UTF-8 text (was the file saved as "
            "Latin-1, Windows-1252 or UTF-16?). Open it in a text editor or spreadsheet and "
            'save it as UTF-8 ("CSV UTF-8" in Excel).'
        ) from None


def _csv_error(
    error: csv.Error, manifest: Path, text: str, done: int, line: int, columns: list | None
) -> ValueError:
    """The error for a ``csv.Error`` on ``line`` of ``text``; for an over-long cell, its column.

    Records were read whole up to line ``done``.
    """
    limit = csv.field_size_limit()
    if "field larger than field limit" not in str(error):
        return ValueError(f"{manifest}, line {line}: cannot be read as csv ({error}).")
    lines = io.StringIO(text, newline="").readlines()[done:line]
    index = _long_cell("".join(lines), limit)
    begins = done + 1 + next((i for i, chunk in enumerate(lines) if chunk.strip()), 0)
    if columns is None:
        column = f"column {index + 1}"
    elif index < len(columns):
        column = f"column {columns[index]}"
    else:
        column = f"column {index + 1} (beyond the header's {len(columns)} columns)"
    row = f" (in the row that begins on line {begins})" if begins < line else ""
    return ValueError(
        f"{manifest}, line {line}, {column}{row}: a cell of more than {limit} characters, which "
        "is not a path or a label (a quote left open, or a file pasted into the cell?); correct "
        "that cell."
    )


def _long_cell(record: str, limit: int) -> int:
    """Index of the first cell of the csv ``record`` longer than ``limit`` characters.

    The last cell begun if none is: the record is cut where the csv reader stopped.
    """
    column, size, quoted = 0, 0, False
    for char in record:
        if char == '"':
            quoted = not quoted  # a doubled quote inside quotes toggles twice
        elif char == "," and not quoted:
            column, size = column + 1, 0
        else:
            size += 1
            if size > limit:
                break
    return column


def _duplicate_error(
    manifest: Path, base: Path, key: tuple, first: tuple, second: tuple
) -> ValueError:
    """The error for two rows that read the same angle of a kinematics file.

    ``first``, ``second``: line and subject of each row; ``key``: kinematics file and angle
    column.
    """
    path, column = key
    name = path.relative_to(base) if path.is_relative_to(base) else path
    angle = f" (angle_column {column})" if column else ""
    lines = f"{manifest}, lines {first[0]} and {second[0]} both read {name}{angle}"
    if first[1] != second[1]:
        return ValueError(
            f"{lines}, under subjects {first[1]!r} and {second[1]!r}: a recording belongs to "
            "one subject (under two, it would be in the training and the test subjects at "
            "once). Keep the row with the right subject and delete the other."
        )
    return ValueError(
        f"{lines} for subject {first[1]!r}: one trial listed twice would count twice. Delete "
        "one of the rows (two angles of one file are two trials: give each row its "
        "angle_column)."
    )


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


def _channels(text: str, where: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in text.split(";"):
        muscle, sep, label = item.partition("=")
        if not sep or not muscle.strip() or not label.strip():
            raise ValueError(
                f"{where}: emg_channels must read 'muscle=channel;muscle=channel', e.g. "
                f"'BIClong=Biceps.EMG4;TRIlong=Triceps.EMG5', got {text!r}."
            )
        muscle, label = muscle.strip(), label.strip()
        if muscle in mapping:
            raise ValueError(
                f"{where}: emg_channels maps {muscle} twice ({mapping[muscle]!r} and "
                f"{label!r}); give each muscle one channel."
            )
        mapping[muscle] = label
    _check_electrodes(mapping, where)
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
    text = buffer.getvalue()
    return write_whole(
        target, lambda temporary: Path(temporary).write_text(text, "utf-8", newline="")
    )
