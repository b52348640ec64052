"""OpenSim storage files (.sto, .mot): inverse kinematics angles, inverse dynamics moments."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from .._files import write_whole
from .table import (
    Recording,
    _check_unique_labels,
    _existing_file,
    _missing_message,
    _read_text,
    parse_numeric_rows,
    split_time_column,
)

if TYPE_CHECKING:
    import opensim as osim

    ModelLike: TypeAlias = osim.Model | str | os.PathLike

__all__ = [
    "Storage",
    "read_storage",
    "write_muscle_storage",
    "write_storage",
]

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
    """Whether a column is a translation (m) or a generalised force (N, N·m), by the name rule."""
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


def _rotational_by_model(model: ModelLike, labels: list[str], path: Path) -> list[str]:
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
            stacklevel=4,
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


def read_storage(
    path: str | os.PathLike, radians: bool = True, model: ModelLike | None = None
) -> Storage:
    r"""Read an OpenSim storage file (.sto or .mot), such as inverse kinematics or dynamics.

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
    ...     "Coordinates\nversion=1\nnRows=3\nnColumns=3\ninDegrees=yes\nendheader\n"
    ...     "time\telbow_flexion\tpelvis_tx\n"
    ...     "0.00\t90.0\t0.5\n0.01\t91.0\t0.5\n0.02\t92.0\t0.5\n"
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
    end = _endheader_index(lines, path)
    header = _parse_header(lines[:end])
    body = [(i, line) for i, line in enumerate(lines[end + 1 :], start=end + 2) if line.strip()]
    all_labels, delimiter = _column_labels(body, path)
    rows = body[1:]
    values = _parse_rows(rows, delimiter, all_labels, path)
    time_index = [label.lower() for label in all_labels].index("time")
    time, data, labels, rate = split_time_column(values, all_labels, time_index, path)
    _check_header_counts(header, len(rows), len(all_labels), path)
    in_degrees = header.get("inDegrees", "no").strip().lower() in ("yes", "true", "1")
    converted = _to_radians(data, labels, model, path) if radians and in_degrees else []
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


def _endheader_index(lines: list[str], path: Path) -> int:
    """Index of the ``endheader`` line in ``lines``; a ValueError if there is none."""
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
    return end


def _parse_header(lines: list[str]) -> dict:
    """The header's ``key=value`` lines, its first other line as ``"name"``, then ``"comments"``."""
    header: dict = {}
    comments = []
    for line in lines:
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
    return header


def _column_labels(body: list[tuple[int, str]], path: Path) -> tuple[list[str], str | None]:
    """The labels of the first line of ``body`` (line number, text) and their delimiter, checked.

    Checked: present, none empty, none twice, one of them ``time``.
    """
    if not body:
        raise ValueError(f"'{path}' has no column labels after 'endheader'.")
    number, label_line = body[0]
    delimiter = "\t" if "\t" in label_line else "," if "," in label_line else None
    labels = _split(label_line, delimiter)
    if "" in labels:
        raise ValueError(
            f"'{path}' has an empty column label in its label line (line {number}): {labels}."
        )
    _check_unique_labels(labels, path, f"label line (line {number})")
    if "time" not in [label.lower() for label in labels]:
        raise ValueError(
            f"'{path}' has no 'time' column; its columns are {labels}. Expected {_EXPECTED}."
        )
    return labels, delimiter


def _parse_rows(
    rows: list[tuple[int, str]], delimiter: str | None, labels: list[str], path: Path
) -> np.ndarray:
    """The numbers of the data ``rows`` (line number, text), one column per label, checked."""
    if not rows:
        raise ValueError(f"'{path}' has column labels but no rows of data.")
    return parse_numeric_rows(
        path,
        [(n, _split(line, delimiter, len(labels))) for n, line in rows],
        labels,
        _EXPECTED,
    )


def _check_header_counts(header: dict, n_rows: int, n_columns: int, path: Path) -> None:
    """Warn when the header's ``nRows`` or ``nColumns`` disagrees with the file."""
    for key, actual in (("nRows", n_rows), ("nColumns", n_columns)):
        stated = header.get(key)
        if stated is not None and stated.strip().isdigit() and int(stated) != actual:
            warnings.warn(
                f"The header of '{path}' says {key}={stated} but the file holds {actual} "
                f"{'rows' if key == 'nRows' else 'columns'}: using the {actual} present "
                "(is the file truncated?).",
                stacklevel=3,
            )


def _to_radians(
    data: np.ndarray, labels: list[str], model: ModelLike | None, path: Path
) -> list[str]:
    """Convert ``data``'s rotational columns from degrees to radians, in place; their labels.

    Rotational by ``model``'s coordinates when given, else by the name rule.
    """
    if model is not None:
        converted = _rotational_by_model(model, labels, path)
    else:
        converted = [label for label in labels if not _is_translation_or_force(label)]
    for label in converted:
        c = labels.index(label)
        data[:, c] = np.radians(data[:, c])
    return converted


def _check_column(storage: Storage, name: str, hint: str = "") -> np.ndarray:
    """``storage.column(name)`` with a hint appended to the KeyError."""
    if name not in storage.labels:
        raise KeyError(_missing_message("column", [name], storage.labels, storage.path) + hint)
    return storage.column(name)


# ------------------------------------------------------------------ writing
_STORAGE_SUFFIXES = (".sto", ".mot")
_MUSCLE_STORAGE_KINDS = ("excitation", "activation")
"""What :func:`write_muscle_storage` writes: excitations (controls) or activations (states)."""


def _label_problem(label: object) -> str | None:
    """Why OpenSim (or a reader of its files) cannot hold ``label`` as a column label."""
    if not isinstance(label, str):
        return f"it is a {type(label).__name__}, not a str"
    if not label.strip():
        return "it is empty"
    if label != label.strip():
        return "it has leading or trailing whitespace (OpenSim refuses it)"
    control = sorted({repr(c) for c in label if ord(c) < 32 or ord(c) == 127})
    if control:
        return f"it holds {', '.join(control)} (tabs, newlines and control characters split rows)"
    if label.lower() == "time":
        return "'time' is the time column's label"
    return None


def _storage_columns(columns: object) -> tuple[list[str], np.ndarray]:
    """``columns`` as labels and a 2-D float64 array ``(n_rows, n_columns)``.

    ``columns`` is a dict of 1-D arrays, or ``(labels, 2-D array)``.
    """
    if isinstance(columns, dict):
        labels, data = _dict_columns(columns)
    elif isinstance(columns, tuple | list) and len(columns) == 2:
        labels, data = _paired_columns(columns)
    else:
        raise TypeError(
            "columns must be a dict {label: 1-D array} or a pair (labels, 2-D array of shape "
            f"(n_rows, n_labels)), got {type(columns).__name__}."
        )
    if not labels:
        raise ValueError("There are no columns to write: give at least one besides time.")
    bad = [(label, why) for label in labels if (why := _label_problem(label)) is not None]
    if bad:
        listed = "; ".join(f"{label!r}: {why}" for label, why in bad[:5])
        raise ValueError(
            f"Column labels OpenSim cannot hold: {listed}. Rename them (letters, digits, '_', "
            "'/', '.', '-'; no tabs, newlines or surrounding spaces)."
        )
    _check_unique_labels(labels, None, "columns")
    return labels, data


def _dict_columns(columns: dict) -> tuple[list, np.ndarray]:
    """The labels and 2-D array of ``{label: 1-D array}``, the columns of one length."""
    labels = list(columns)
    arrays = []
    for label, values in columns.items():
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"The column {label!r} holds values that are not numbers; give numbers."
            ) from None
        if array.ndim != 1:
            raise ValueError(
                f"The column {label!r} must be 1-D (one value per row), got shape "
                f"{array.shape}; pass (labels, 2-D array) for a table."
            )
        arrays.append(array)
    sizes = {label: a.size for label, a in zip(labels, arrays, strict=True)}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"The columns must all have one value per row; their lengths: {sizes}.")
    return labels, np.column_stack(arrays) if arrays else np.empty((0, 0))


def _paired_columns(columns: tuple | list) -> tuple[list, np.ndarray]:
    """The labels and 2-D array of ``(labels, data)``, one column of data per label."""
    labels = [columns[0]] if isinstance(columns[0], str) else list(columns[0])
    try:
        data = np.asarray(columns[1], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("The data holds values that are not numbers; give numbers.") from None
    if data.ndim == 1 and len(labels) == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] != len(labels):
        raise ValueError(
            f"(labels, data): data must be 2-D, one column per label ({len(labels)} labels), "
            f"got shape {data.shape}."
        )
    return labels, data


def _check_storage_values(time: np.ndarray, data: np.ndarray, labels: list[str]) -> None:
    """Time 1-D, finite and strictly increasing, one row of data per time, no NaN or inf."""
    if time.ndim != 1 or time.size == 0:
        raise ValueError(f"time must be 1-D with at least one value, got shape {time.shape}.")
    if data.shape[0] != time.size:
        raise ValueError(
            f"time has {time.size} values but the columns have {data.shape[0]} rows: give one "
            "time per row."
        )
    bad = np.flatnonzero(~np.isfinite(time))
    if bad.size:
        raise ValueError(f"time is NaN or infinite at row {bad[0]}: give finite times (s).")
    steps = np.diff(time)
    if np.any(steps <= 0):
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise ValueError(
            f"time must increase strictly: row {row} has t = {time[row]!r} s after "
            f"{time[row - 1]!r} s. Sort the rows and drop repeated times."
        )
    if not np.isfinite(data).all():
        rows, cols = np.nonzero(~np.isfinite(data))
        first: dict[int, int] = {}
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            first.setdefault(c, r)
        listed = ", ".join(
            f"{labels[c]!r} (first at row {r}, t = {time[r]:.6g} s)"
            for c, r in list(first.items())[:5]
        )
        raise ValueError(
            f"NaN or infinite values in the column(s) {listed}. OpenSim's tools cannot use "
            "them: fill or interpolate the gaps, or drop those rows, before writing."
        )


def _storage_path(path: str | os.PathLike) -> Path:
    """``path`` checked: an .sto/.mot name in a folder that exists, not a folder itself."""
    path = Path(path)
    if path.suffix.lower() not in _STORAGE_SUFFIXES:
        raise ValueError(
            f"'{path}' does not end in .sto or .mot: OpenSim storage files do. Name the file "
            "<name>.sto (or .mot for motions)."
        )
    if path.is_dir():
        raise IsADirectoryError(f"'{path}' is a folder; give the path of a file to write.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"No folder '{path.parent}' to write '{path.name}' in; create it.")
    return path


def write_storage(
    path: str | os.PathLike,
    time: ArrayLike,
    columns: dict[str, ArrayLike] | tuple[Sequence[str], ArrayLike],
    *,
    in_degrees: bool = False,
    name: str | None = None,
) -> Path:
    """Write an OpenSim storage file (.sto or .mot) with OpenSim's own file adapter.

    The table is handed to OpenSim (``opensim.TimeSeriesTable`` and
    ``opensim.STOFileAdapter.write``), so the file is exactly what OpenSim 4.6 writes: a
    header (``inDegrees``, ``name``, ``DataType``, ``version=3``, ``OpenSimVersion``),
    ``endheader``, a tab-separated label line starting with ``time``, then one row per time,
    numbers with 16 significant digits (values read back agree to 1e-15, relative). It is
    written to a temporary file beside ``path`` and moved onto it, so ``path`` holds either
    the whole new file or, after an error or Ctrl-C, what it held before.

    Parameters
    ----------
    path : str or path-like
        The file to write, ending in ``.sto`` or ``.mot``, in a folder that exists. An
        existing file is replaced.
    time : array-like of shape (n_rows,)
        Time (s), finite and strictly increasing.
    columns : dict of str to array-like, or (labels, array-like)
        The columns besides time: ``{label: values}`` with one value per row, or a pair
        ``(labels, data)`` with ``data`` shaped ``(n_rows, len(labels))`` (e.g. a
        prediction's ``(n_timesteps, n_muscles)`` and the muscle names). Labels are written as
        given: non-empty, unique, not ``time``, without tabs, newlines or leading/trailing
        spaces (OpenSim refuses those).
    in_degrees : bool, default=False
        The header's ``inDegrees``: True when the rotational columns are in degrees (as
        OpenSim's inverse kinematics ``.mot`` files are). Values are written as given, never
        converted.
    name : str, optional
        The table's name in the header (``name=...``, what ``opensim.Storage.getName()``
        returns); the file's stem by default.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        For columns of different lengths or not one row per time, NaN or infinite values (the
        message names the column, row and time), time that does not increase strictly, a label
        OpenSim cannot hold or given twice, no columns, a path not ending in ``.sto``/``.mot``.
    TypeError
        For ``columns`` that are neither a dict nor a ``(labels, data)`` pair.
    FileNotFoundError
        If the folder of ``path`` does not exist.

    See Also
    --------
    read_storage : read it back (rotational columns to radians when ``inDegrees=yes``).
    write_muscle_storage : excitations or activations with OpenSim's labels.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "elbow_ik.mot"
    >>> time = np.arange(3) / 100.0
    >>> _ = write_storage(path, time, {"r_elbow_flex": [90.0, 91.0, 92.0]}, in_degrees=True)
    >>> storage = read_storage(path)
    >>> storage.labels, storage.column("r_elbow_flex").round(4).tolist()
    (['r_elbow_flex'], [1.5708, 1.5882, 1.6057])

    A 2-D array with its labels (a prediction's ``(n_timesteps, n_muscles)``, say):

    >>> path = path.with_name("envelopes.sto")
    >>> _ = write_storage(path, time, (["BRA", "TRImed"], np.full((3, 2), 0.25)))
    >>> read_storage(path).data.tolist()
    [[0.25, 0.25], [0.25, 0.25], [0.25, 0.25]]
    """
    path = _storage_path(path)
    labels, data = _storage_columns(columns)
    try:
        time = np.asarray(time, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("time holds values that are not numbers; give times in s.") from None
    _check_storage_values(time, data, labels)
    name = path.stem if name is None else name
    if not isinstance(name, str) or not name.strip() or any(ord(c) < 32 for c in name):
        raise ValueError(f"name must be a non-empty str on one line, got {name!r}.")
    _write_with_opensim(path, time, labels, data, in_degrees, name.strip())
    return path


def _write_with_opensim(
    path: Path, time: np.ndarray, labels: list[str], data: np.ndarray, in_degrees: bool, name: str
) -> None:
    """Write the checked table to ``path`` with OpenSim's file adapter, whole or not at all."""
    import opensim as osim

    # Row by row, with Python lists: OpenSim's StdVectorDouble / StdVectorString would share
    # SWIG's std::vector types with ezc3d's (whichever module makes one first breaks the other).
    table = osim.TimeSeriesTable()
    table.setColumnLabels(labels)
    for t, row in zip(time.tolist(), data.tolist(), strict=True):
        table.appendRow(t, osim.RowVector(row))
    table.addTableMetaDataString("inDegrees", "yes" if in_degrees else "no")
    table.addTableMetaDataString("name", name)

    def write(temporary: str) -> None:
        try:
            osim.STOFileAdapter.write(table, temporary)
        except RuntimeError as error:
            last = str(error).strip().splitlines()[-1][:200] if str(error).strip() else ""
            raise OSError(f"OpenSim could not write '{path}' ({last}).") from None

    write_whole(path, write)  # OpenSim writes the file; a failed write leaves path as it was


def write_muscle_storage(
    path: str | os.PathLike,
    time: ArrayLike,
    values: ArrayLike,
    muscles: str | Sequence[str],
    kind: str = "excitation",
    *,
    model: ModelLike | None = None,
    name: str | None = None,
) -> Path:
    """Write muscle excitations (a controls file) or activations (a states file) for OpenSim.

    The columns carry the labels OpenSim itself uses, checked with OpenSim 4.6:

    * ``kind="excitation"``: the muscle's name (``BRA``), as in the controls files OpenSim
      writes (``Model.printControlStorage``, CMC's ``*_controls.sto``). OpenSim's
      ``PrescribedController(path)`` reads such a file as the muscles' controls (it finds
      each column's actuator by name).
    * ``kind="activation"``: the muscle's activation state, ``/forceset/BRA/activation``, as
      in ``Model.getStateVariableNames()`` and the states tables OpenSim writes
      (``Manager.getStatesTable()``, ``*_states.sto``); with ``model`` given, the state's path
      in that model.

    The file is written by :func:`write_storage` (OpenSim's file adapter, atomically,
    ``inDegrees=no``).

    Parameters
    ----------
    path : str or path-like
        The ``.sto`` file to write (replaced if it exists).
    time : array-like of shape (n_rows,)
        Time (s), strictly increasing.
    values : array-like of shape (n_rows, n_muscles)
        Excitations or activations in [0, 1], one column per muscle (a trial of
        ``NMMRegressor.predict`` or ``predict_activation``, ``(n_timesteps, n_muscles)``).
    muscles : sequence of str
        The muscles' names in the OpenSim model, in the order of ``values``' columns
        (``NMMRegressor.muscles_``).
    kind : {"excitation", "activation"}, default="excitation"
        What ``values`` are.
    model : opensim.Model or path of an .osim file, optional
        When given, every muscle must be one of its muscles (a ValueError lists them
        otherwise) and activation labels are their state paths in it.
    name : str, optional
        The header's name; ``"controls"`` for excitations and ``"states"`` for activations by
        default.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        For values outside [0, 1] or NaN, ``values`` not shaped ``(len(time), len(muscles))``,
        an unknown ``kind``, a muscle that is not in ``model``, and what
        :func:`write_storage` refuses.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> time = np.arange(4) / 100.0
    >>> values = np.full((4, 2), 0.2)
    >>> _ = write_muscle_storage(folder / "controls.sto", time, values, ["BRA", "TRImed"])
    >>> read_storage(folder / "controls.sto").labels
    ['BRA', 'TRImed']
    >>> _ = write_muscle_storage(folder / "states.sto", time, values, ["BRA", "TRImed"],
    ...                          kind="activation")
    >>> read_storage(folder / "states.sto").labels
    ['/forceset/BRA/activation', '/forceset/TRImed/activation']
    """
    if kind not in _MUSCLE_STORAGE_KINDS:
        raise ValueError(f"kind must be one of {_MUSCLE_STORAGE_KINDS}, got {kind!r}.")
    muscles = [muscles] if isinstance(muscles, str) else list(muscles)
    bad = [m for m in muscles if not isinstance(m, str) or _label_problem(m) is not None]
    if not muscles or bad:
        raise ValueError(
            f"muscles must be the muscles' names in the OpenSim model, got {muscles!r}."
        )
    values = _muscle_values(values, muscles, kind)
    labels = _muscle_labels(muscles, kind, model)
    default = "controls" if kind == "excitation" else "states"
    return write_storage(path, time, (labels, values), name=default if name is None else name)


def _muscle_values(values: ArrayLike, muscles: list[str], kind: str) -> np.ndarray:
    """``values`` as a float64 array ``(n_rows, len(muscles))``, checked to lie in [0, 1]."""
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"The {kind}s hold values that are not numbers.") from None
    if values.ndim != 2 or values.shape[1] != len(muscles):
        raise ValueError(
            f"values must be shaped (n_rows, n_muscles) = (n_rows, {len(muscles)}), one column "
            f"per muscle {muscles}, got {values.shape}."
        )
    finite = np.isfinite(values)
    if finite.all() and (values.min() < 0 or values.max() > 1):
        row, col = np.argwhere((values < 0) | (values > 1))[0]
        raise ValueError(
            f"{kind.capitalize()}s must lie in [0, 1]; {muscles[col]!r} is {values[row, col]:.6g} "
            f"at row {row}. Clip them (np.clip(values, 0, 1)) if that is what you mean."
        )
    return values


def _muscle_labels(muscles: list[str], kind: str, model: ModelLike | None) -> list[str]:
    """OpenSim's column labels of the muscles' excitations (names) or activations (state paths).

    With ``model``, every muscle is checked to be one of its muscles.
    """
    if kind == "excitation":
        if model is not None:
            _model_muscle_paths(model, muscles)
        return list(muscles)
    paths = (
        _model_muscle_paths(model, muscles)
        if model is not None
        else [f"/forceset/{m}" for m in muscles]
    )
    return [f"{p}/activation" for p in paths]


def _model_muscle_paths(model: ModelLike, muscles: list[str]) -> list[str]:
    """Absolute paths of ``muscles`` in ``model``; a ValueError lists the model's muscles."""
    import opensim as osim

    from ..opensim import load_model, muscle_handles

    if isinstance(model, str | os.PathLike):
        model = load_model(model)
    if not isinstance(model, osim.Model):
        raise TypeError(
            f"model must be an opensim.Model or the path of an .osim file, got {type(model)}."
        )
    model.finalizeFromProperties()
    return [handle.getAbsolutePathString() for handle in muscle_handles(model, muscles)]
