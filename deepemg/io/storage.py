"""OpenSim storage files (.sto, .mot): inverse kinematics angles, inverse dynamics moments."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .table import (
    Recording,
    _check_unique_labels,
    _existing_file,
    _missing_message,
    _read_text,
    parse_numeric_rows,
    split_time_column,
)

__all__ = ["Storage", "read_storage"]

_EXPECTED = (
    "an OpenSim storage file (.sto/.mot: header lines, 'endheader', a row of column labels, "
    "then one row of numbers per frame)"
)
_TRANSLATION_SUFFIXES = ("_tx", "_ty", "_tz")
_GENERALIZED_FORCE_SUFFIXES = ("_force", "_moment")


@dataclass(repr=False)
class Storage(Recording):
    """The columns of an OpenSim .sto/.mot file.

    Attributes
    ----------
    time : ndarray of shape (n_rows,)
        The ``time`` column (s).
    data : ndarray of shape (n_rows, n_columns)
        Every other column, float64 (rotational columns in radians if read with
        ``radians=True``).
    labels : list of str
        Column labels, without ``time``.
    rate : float
        Sampling rate (Hz), from the median time step.
    in_degrees : bool
        The header's ``inDegrees`` (as in the file, whatever was converted).
    header : dict of str
        The header's ``key=value`` lines (``nRows``, ``inDegrees``...), its first line under
        ``"name"`` and other free-text lines under ``"comments"``.
    converted : list of str
        Labels of the columns converted from degrees to radians.
    path : pathlib.Path
        The file read.
    """

    in_degrees: bool = False
    header: dict = field(default_factory=dict)
    converted: list[str] = field(default_factory=list)


def _is_translation_or_force(label: str) -> bool:
    """The name rule: is this column a translation (m) or a generalised force (N, N·m)?"""
    name = _coordinate_part(label).lower()
    return (
        name == "time"
        or name.endswith(_TRANSLATION_SUFFIXES)
        or "trans" in name
        or name.endswith(_GENERALIZED_FORCE_SUFFIXES)
    )


def _coordinate_part(label: str) -> str:
    """``/jointset/elbow/r_elbow_flex/value`` -> ``r_elbow_flex``; plain names are unchanged."""
    parts = [p for p in label.strip().split("/") if p]
    if len(parts) >= 2 and parts[-1] in ("value", "speed"):
        return parts[-2]
    return parts[-1] if parts else label


def _rotational_by_model(model, labels: list[str], path: Path) -> list[str]:
    """Labels whose coordinate in ``model`` is Rotational; warns about labels it cannot match."""
    import opensim as osim

    from ..opensim import load_model

    if isinstance(model, str | os.PathLike):
        model = load_model(model)
    if not isinstance(model, osim.Model):
        raise TypeError(
            f"model must be an opensim.Model or the path of an .osim file, got {type(model)}."
        )
    coordinates = model.getCoordinateSet()
    motion = {
        coordinates.get(i).getName(): coordinates.get(i).getMotionType()
        for i in range(coordinates.getSize())
    }
    rotational, unmatched = [], []
    for label in labels:
        name = _coordinate_part(label)
        if name not in motion:
            unmatched.append(label)
        elif motion[name] == osim.Coordinate.Rotational:
            rotational.append(label)
    if unmatched:
        warnings.warn(
            f"{len(unmatched)} column(s) of '{path}' name no coordinate of the model "
            f"'{model.getName()}' and were left as in the file (degrees): {unmatched[:10]}"
            f"{'...' if len(unmatched) > 10 else ''}. Pass the model the file was made with, or "
            "model=None to use the name rule.",
            stacklevel=3,
        )
    return rotational


def _split(line: str, delimiter: str | None, n_fields: int | None = None) -> list[str]:
    """Fields of one line; trailing empty fields (trailing commas) are dropped."""
    fields = [f.strip() for f in (line.split(delimiter) if delimiter else line.split())]
    while fields and fields[-1] == "" and (n_fields is None or len(fields) > n_fields):
        fields.pop()
    if n_fields is not None and len(fields) != n_fields and delimiter is not None:
        alternative = line.split()  # tabs in the labels, spaces in the rows (some writers)
        if len(alternative) == n_fields:
            return alternative
    return fields


def read_storage(path: str | os.PathLike, radians: bool = True, model=None) -> Storage:
    """Read an OpenSim storage file (.sto or .mot), such as inverse kinematics or dynamics.

    The header runs up to the ``endheader`` line; the next line holds the column labels, then
    one row per frame. Columns may be separated by tabs (OpenSim), commas (spreadsheets; trailing
    commas are ignored) or spaces.

    Parameters
    ----------
    path : str or path-like
        The ``.sto`` / ``.mot`` file.
    radians : bool, default=True
        When the header says ``inDegrees=yes``, convert rotational columns to radians (and their
        speeds to rad/s). With ``radians=False`` the values stay as in the file.
    model : opensim.Model or path of an .osim file, optional
        Decides which columns are rotational: those whose coordinate's
        ``getMotionType()`` is ``Rotational`` (labels may be coordinate names or state paths
        such as ``/jointset/elbow/r_elbow_flex/value``); columns that name no coordinate of the
        model are left unconverted, with a warning. Without a model the **name rule** applies:
        every column is rotational except ``time``, names ending in ``_tx``, ``_ty``, ``_tz``,
        ``_force`` or ``_moment``, and names containing ``trans`` (case-insensitive), e.g.
        ``pelvis_tx``, ``box_transZ``, ``elbow_flexion_moment``.

    Returns
    -------
    Storage
        ``time`` (s), ``data`` (n_rows, n_columns), ``labels``, ``rate`` (Hz), ``in_degrees``,
        ``header``, ``converted``; ``column(name)`` gives one column.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a storage file (no ``endheader``, binary, no ``time`` column), a row
        has the wrong number of values or text instead of a number, a value is NaN (the message
        names the column and the first row and time), time does not increase, or two columns
        have the same label (the message names it: which one is meant cannot be told).

    Warns
    -----
    UserWarning
        When the header's ``nRows`` or ``nColumns`` disagrees with the file (a truncated file,
        say): the rows and columns actually present are used.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ik.mot"
    >>> _ = path.write_text(
    ...     "Coordinates\\nversion=1\\nnRows=3\\nnColumns=3\\ninDegrees=yes\\nendheader\\n"
    ...     "time\\telbow_flexion\\tpelvis_tx\\n"
    ...     "0.00\\t90.0\\t0.5\\n0.01\\t91.0\\t0.5\\n0.02\\t92.0\\t0.5\\n"
    ... )
    >>> ik = read_storage(path)
    >>> ik.rate, ik.in_degrees, ik.converted
    (100.0, True, ['elbow_flexion'])
    >>> ik.column("elbow_flexion").round(4)
    array([1.5708, 1.5882, 1.6057])
    >>> ik.column("pelvis_tx")  # a translation (m) is not converted
    array([0.5, 0.5, 0.5])
    """
    path = _existing_file(path, _EXPECTED)
    lines = _read_text(path, _EXPECTED).splitlines()
    end = next(
        (
            i
            for i, line in enumerate(lines)
            if line.strip().rstrip(",;\t ").strip().lower() == "endheader"
        ),
        None,
    )
    if end is None:
        hint = (
            " It looks like a csv table: read it with deepemg.io.read_csv_table."
            if lines and "," in lines[0] and "time" in lines[0].lower()
            else ""
        )
        raise ValueError(f"'{path}' has no 'endheader' line, so it is not {_EXPECTED}.{hint}")
    header: dict = {}
    comments = []
    for line in lines[:end]:
        text = line.strip().rstrip(",;\t ").strip()
        if not text:
            continue
        if "=" in text and " " not in text.split("=", 1)[0].strip():
            key, value = text.split("=", 1)
            header[key.strip()] = value.strip()
        elif "name" not in header:
            header["name"] = text
        else:
            comments.append(text)
    if comments:
        header["comments"] = comments

    body = [(i, line) for i, line in enumerate(lines[end + 1 :], start=end + 2) if line.strip()]
    if not body:
        raise ValueError(f"'{path}' has no column labels after 'endheader'.")
    label_line = body[0][1]
    delimiter = "\t" if "\t" in label_line else "," if "," in label_line else None
    all_labels = _split(label_line, delimiter)
    if "" in all_labels:
        raise ValueError(
            f"'{path}' has an empty column label in its label line (line {body[0][0]}): "
            f"{all_labels}."
        )
    _check_unique_labels(all_labels, path, f"label line (line {body[0][0]})")
    lower = [label.lower() for label in all_labels]
    if "time" not in lower:
        raise ValueError(
            f"'{path}' has no 'time' column; its columns are {all_labels}. Expected {_EXPECTED}."
        )
    rows = body[1:]
    if not rows:
        raise ValueError(f"'{path}' has column labels but no rows of data.")
    values = parse_numeric_rows(
        path,
        [(n, _split(line, delimiter, len(all_labels))) for n, line in rows],
        all_labels,
        _EXPECTED,
    )

    time, data, labels, rate = split_time_column(values, all_labels, lower.index("time"), path)

    for key, actual in (("nRows", len(rows)), ("nColumns", len(all_labels))):
        stated = header.get(key)
        if stated is not None and stated.strip().isdigit() and int(stated) != actual:
            warnings.warn(
                f"The header of '{path}' says {key}={stated} but the file holds {actual} "
                f"{'rows' if key == 'nRows' else 'columns'}: using the {actual} present "
                "(is the file truncated?).",
                stacklevel=2,
            )

    in_degrees = header.get("inDegrees", "no").strip().lower() in ("yes", "true", "1")
    converted: list[str] = []
    if radians and in_degrees:
        if model is not None:
            converted = _rotational_by_model(model, labels, path)
        else:
            converted = [label for label in labels if not _is_translation_or_force(label)]
        for label in converted:
            c = labels.index(label)
            data[:, c] = np.radians(data[:, c])
    return Storage(
        time,
        data,
        labels,
        rate,
        in_degrees=in_degrees,
        header=header,
        converted=converted,
        path=path,
    )


def _check_column(storage: Storage, name: str, hint: str = "") -> np.ndarray:
    """``storage.column(name)`` with a hint appended to the KeyError."""
    if name not in storage.labels:
        raise KeyError(_missing_message("column", [name], storage.labels, storage.path) + hint)
    return storage.column(name)
