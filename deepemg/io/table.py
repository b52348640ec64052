"""Recordings as tables of samples over time: the shared dataclass, the csv reader, resampling."""

from __future__ import annotations

import csv
import difflib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Recording", "read_csv_table", "resample"]


@dataclass(repr=False)
class Recording:
    """Samples of named channels over time, as read from a file.

    Attributes
    ----------
    time : ndarray of shape (n_samples,)
        Time of each sample (s), strictly increasing.
    data : ndarray of shape (n_samples, n_columns)
        The samples, float64, without NaN.
    labels : list of str
        Name of each column of ``data``.
    rate : float
        Sampling rate (Hz), from the median time step.
    path : pathlib.Path or None
        The file read.
    """

    time: np.ndarray
    data: np.ndarray
    labels: list[str]
    rate: float
    path: Path | None = field(default=None, kw_only=True)

    def column(self, name: str) -> np.ndarray:
        """The samples of the column called ``name``, shape ``(n_samples,)``.

        Raises
        ------
        KeyError
            If there is no such column; the message lists the labels there are.
        ValueError
            If two columns have that label.
        """
        if name not in self.labels:
            raise KeyError(_missing_message("column", [name], self.labels, self.path))
        if self.labels.count(name) > 1:
            _check_unique_labels([name, name], self.path, "channels")
        return self.data[:, self.labels.index(name)]

    def __repr__(self) -> str:
        source = f"'{self.path.name}': " if self.path is not None else ""
        span = f"t = {self.time[0]:.4g}-{self.time[-1]:.4g} s" if self.time.size else "empty"
        return (
            f"{type(self).__name__}({source}{self.data.shape[0]} samples x "
            f"{self.data.shape[1]} columns at {self.rate:.6g} Hz, {span})"
        )


def _missing_message(
    kind: str, missing: Sequence[object], available: Sequence[str], path: Path | None = None
) -> str:
    """'No column named X in file; did you mean Y? The columns are [...]'."""
    where = f" in '{path}'" if path is not None else ""
    hints = []
    for name in missing:
        close = difflib.get_close_matches(str(name), available, n=3, cutoff=0.5)
        close += [a for a in available if str(name).lower() in a.lower() and a not in close]
        if close:
            hints.append(f"For {name!r} did you mean {close[:3]}?")
    hint = (" " + " ".join(hints)) if hints else ""
    names = ", ".join(repr(m) for m in missing)
    return f"No {kind} named {names}{where}.{hint} The {kind}s are {list(available)}."


def _check_unique_labels(labels: Iterable[str], path: Path | None, where: str = "header") -> None:
    """Raise naming the file and the labels that appear more than once (``time`` ignoring case).

    Which of two columns of one name is meant cannot be told.
    """
    seen: set[str] = set()
    repeated: list[str] = []
    for label in labels:
        key = label.lower() if label.lower() == "time" else label
        if key in seen and label not in repeated:
            repeated.append(label)
        seen.add(key)
    if repeated:
        source = f"'{path}'" if path is not None else "The table"
        raise ValueError(
            f"{source} has duplicated column labels in its {where}: "
            f"{', '.join(repr(r) for r in repeated)}. Each column needs its own label (which "
            "of the columns is meant cannot be told); rename or remove the copies."
        )


def _existing_file(path: str | os.PathLike, expected: str) -> Path:
    """``path`` as a Path, with a clear error if there is no file there."""
    path = Path(path)
    if not path.is_file():
        what = "a directory, not a file" if path.is_dir() else "no file"
        raise FileNotFoundError(f"There is {what} at '{path}'; expected {expected}.")
    return path


def _read_text(path: Path, expected: str) -> str:
    """The file's text, with a clear error when it is binary (a .c3d, say)."""
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        looks = (
            " (it looks like a .c3d file: use deepemg.io.read_c3d_analogs)" if _is_c3d(raw) else ""
        )
        raise ValueError(f"'{path}' is a binary file, not {expected}{looks}.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
            raise ValueError(f"'{path}' is not a text file; expected {expected}.") from None


def _is_c3d(raw: bytes) -> bool:
    """A c3d file's second byte is 0x50 and its first points to the parameter block."""
    return len(raw) >= 512 and raw[1] == 0x50 and 1 <= raw[0] <= 127 and raw[0] not in (9, 10, 13)


def _check_finite(
    data: np.ndarray, labels: Sequence[str], time: np.ndarray, path: Path | None
) -> None:
    """Raise naming the first column, row and time that hold NaN or infinity."""
    bad = ~np.isfinite(data)
    if not bad.any():
        return
    columns = np.flatnonzero(bad.any(axis=0))
    first_rows = bad.argmax(axis=0)
    column = columns[np.argmin(first_rows[columns])]
    row = int(first_rows[column])
    where = f" of '{path}'" if path is not None else ""
    also = [labels[c] for c in columns.tolist() if c != column]
    more = f" (also in {also[:5]}{'...' if len(also) > 5 else ''})" if also else ""
    at = f" (time {time[row]:.6g} s)" if np.isfinite(time[row]) else ""
    raise ValueError(
        f"Column '{labels[column]}'{where} holds NaN or infinite values, first at row {row}"
        f"{at}{more}. Fill the gaps (e.g. interpolate) or cut the recording before reading it."
    )


def _rate_from_time(time: np.ndarray, path: Path | None) -> float:
    """Sampling rate (Hz) from the median step, after checking that time increases."""
    where = f" in '{path}'" if path is not None else ""
    if time.size < 2:
        raise ValueError(f"Need at least 2 samples to know the sampling rate{where}.")
    bad = np.flatnonzero(~np.isfinite(time))
    if bad.size:
        raise ValueError(f"The time column{where} holds NaN at row {int(bad[0])}.")
    step = np.diff(time)
    not_increasing = np.flatnonzero(step <= 0)
    if not_increasing.size:
        k = int(not_increasing[0])
        raise ValueError(
            f"Time must increase from row to row{where}, but row {k + 1} (t = {time[k + 1]:.6g} s) "
            f"does not come after row {k} (t = {time[k]:.6g} s). Sort the rows or drop repeated "
            "frames."
        )
    return float(1.0 / np.median(step))


def parse_numeric_rows(
    path: Path | None,
    rows: Sequence[tuple[int, Sequence[str]]],
    labels: list[str],
    expected: str,
) -> np.ndarray:
    """Numbers of a text table, one value per column; an empty cell becomes NaN.

    ``rows`` holds ``(line_number, cells)`` pairs; errors name the line, the column and what
    the file was expected to be.
    """
    values = np.empty((len(rows), len(labels)))
    for r, (line_number, cells) in enumerate(rows):
        if len(cells) != len(labels):
            raise ValueError(
                f"Line {line_number} of '{path}' has {len(cells)} values but there are "
                f"{len(labels)} columns; every row needs one value per column."
            )
        for c, text in enumerate(cells):
            try:
                values[r, c] = float(text) if text else np.nan
            except ValueError:
                raise ValueError(
                    f"Line {line_number}, column '{labels[c]}' of '{path}' holds {text!r}, "
                    f"not a number; expected {expected}."
                ) from None
    return values


def split_time_column(
    values: np.ndarray, labels: list[str], time_index: int, path: Path | None
) -> tuple[np.ndarray, np.ndarray, list[str], float]:
    """Time, the other columns, their labels and the rate, checked (finite, increasing time)."""
    time = values[:, time_index]
    others = [name for c, name in enumerate(labels) if c != time_index]
    data = np.delete(values, time_index, axis=1)
    _check_finite(values[:, [time_index]], [labels[time_index]], time, path)
    rate = _rate_from_time(time, path)
    _check_finite(data, others, time, path)
    return time, data, others, rate


def read_csv_table(path: str | os.PathLike, time_column: str = "time") -> Recording:
    r"""Read a csv file with one header row of column names and one row per sample.

    Parameters
    ----------
    path : str or path-like
        The ``.csv`` file (comma-separated; semicolons and tabs are recognised too).
    time_column : str, default="time"
        The column that holds time (s); matched exactly, else ignoring case.

    Returns
    -------
    Recording
        ``time``, ``data`` (every other column), ``labels``, ``rate`` (Hz, median step).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a csv table with a time column, holds text where numbers belong,
        holds NaN or empty cells (the message names the column and the first row and time), its
        time does not increase, or two columns have the same label (named in the message).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "emg.csv"
    >>> _ = path.write_text("time,Biceps,Triceps\n0.000,0.1,0.2\n0.001,0.3,0.4\n"
    ...                     "0.002,0.5,0.6\n")
    >>> table = read_csv_table(path)
    >>> table.labels, table.rate
    (['Biceps', 'Triceps'], 1000.0)
    >>> table.column("Triceps")
    array([0.2, 0.4, 0.6])
    """
    expected = "a csv table (a header row of column names, then one row of numbers per sample)"
    path = _existing_file(path, expected)
    text = _read_text(path, expected)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"'{path}' is empty; expected {expected}.")
    if any(line.strip().rstrip(",;\t ").lower() == "endheader" for line in lines[:200]):
        raise ValueError(
            f"'{path}' is an OpenSim storage file (.sto/.mot), not a csv table: "
            "read it with deepemg.io.read_storage."
        )
    try:
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = [name.strip() for name in rows[0]]
    while header and header[-1] == "":
        header.pop()
    _check_unique_labels(header, path, "header row")
    if time_column in header:
        time_index = header.index(time_column)
    else:
        lower = [name.lower() for name in header]
        if time_column.lower() not in lower:
            raise ValueError(
                f"'{path}' has no time column '{time_column}' in its header row {header}; "
                "pass time_column= naming the column that holds time in seconds."
            )
        time_index = lower.index(time_column.lower())
    numbered = []
    for r, row in enumerate(rows[1:]):
        cells = [cell.strip() for cell in row]
        while len(cells) > len(header) and cells[-1] == "":
            cells.pop()
        numbered.append((r + 2, cells))
    values = parse_numeric_rows(path, numbered, header, expected)
    if values.shape[0] == 0:
        raise ValueError(f"'{path}' has a header row but no samples.")
    time, data, labels, rate = split_time_column(values, header, time_index, path)
    return Recording(time, data, labels, rate, path=path)


def resample(time: ArrayLike, data: ArrayLike, new_time: ArrayLike) -> np.ndarray:
    """Values of ``data`` at the times ``new_time``, by linear interpolation.

    Parameters
    ----------
    time : array-like of shape (n_samples,)
        Sample times (s), strictly increasing.
    data : array-like of shape (n_samples,) or (n_samples, n_columns)
        The samples.
    new_time : array-like of shape (n_new,)
        Times (s) to interpolate at, within ``[time[0], time[-1]]`` (up to a thousandth of a
        sample step).

    Returns
    -------
    ndarray of shape (n_new,) or (n_new, n_columns)

    Notes
    -----
    Linear interpolation does not filter: when going to a lower rate, low-pass the signal first
    if it holds power above the new Nyquist frequency (EMG envelopes and kinematics from inverse
    kinematics usually do not).

    Examples
    --------
    >>> resample([0.0, 0.1, 0.2], [0.0, 1.0, 4.0], [0.05, 0.15])
    array([0.5, 2.5])
    """
    time = np.asarray(time, dtype=float)
    data = np.asarray(data, dtype=float)
    new_time = np.asarray(new_time, dtype=float)
    if time.ndim != 1 or data.shape[:1] != time.shape or data.ndim > 2:
        raise ValueError(
            f"time must be (n_samples,) and data (n_samples,) or (n_samples, n_columns); got "
            f"time {time.shape} and data {data.shape}."
        )
    _rate_from_time(time, None)
    if new_time.size == 0:
        return np.empty((0, *data.shape[1:]))
    tolerance = 1e-3 * float(np.median(np.diff(time)))
    if new_time.min() < time[0] - tolerance or new_time.max() > time[-1] + tolerance:
        raise ValueError(
            f"Cannot resample outside the recording: it covers t = {time[0]:.6g}-{time[-1]:.6g} s "
            f"but times {new_time.min():.6g}-{new_time.max():.6g} s were asked for."
        )
    inside = np.clip(new_time, time[0], time[-1])
    if data.ndim == 1:
        return np.interp(inside, time, data)
    return np.column_stack([np.interp(inside, time, col) for col in data.T]).reshape(
        inside.size, data.shape[1]
    )
