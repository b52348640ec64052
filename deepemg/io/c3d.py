"""Analog channels (raw EMG, force sensors) of c3d motion-capture files, read with ezc3d."""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .table import (
    Recording,
    _check_finite,
    _check_unique_labels,
    _existing_file,
    _is_c3d,
    _missing_message,
)

__all__ = ["Analogs", "read_c3d_analogs"]

_EXPECTED = "a c3d motion-capture file (binary, as written by Vicon, Qualisys, Delsys...)"


@dataclass(repr=False)
class Analogs(Recording):
    """Analog channels of a c3d file.

    Attributes
    ----------
    time : ndarray of shape (n_samples,)
        Time of each analog sample (s), starting at the file's first frame.
    data : ndarray of shape (n_samples, n_channels)
        The samples (in ``units``; ezc3d applies the file's scale and offset), float64.
    labels : list of str
        Channel labels (``ANALOG:LABELS``).
    rate : float
        Analog sampling rate (Hz).
    units : list of str
        Unit of each channel (``ANALOG:UNITS``; empty strings when the file has none).
    point_rate : float
        Marker (point) frame rate (Hz).
    path : pathlib.Path
        The file read.
    """

    units: list[str] = field(default_factory=list)
    point_rate: float = float("nan")


def _parameter(parameters: dict, group: str, name: str, default: Any = None) -> Any:
    try:
        return parameters[group][name]["value"]
    except KeyError:
        return default


def _byte_order(start: bytes) -> str:
    """The ``struct`` byte order of a c3d file whose first bytes are ``start``."""
    at = (start[0] - 1) * 512 + 3  # the processor type, in the parameter section's 4th byte
    processor = start[at] if len(start) > at else 84
    return ">" if processor == 86 else "<"  # MIPS is big-endian, Intel and DEC little


def _check_rates(
    path: Path, start: bytes, parameters: dict, point_rate: float, n_read: int
) -> None:
    """Raise if the analog rate of ``path`` is not a whole multiple of its marker rate.

    Also raise if the number of analog samples per marker frame stored in its header (word 10)
    or read by ezc3d (``n_read`` per frame) is not that multiple. The analog rate is
    ``ANALOG:RATE``.

    The C3D standard stores the analog samples of each marker frame after its markers, the
    same whole number of them in every frame, so the analog rate must be a whole multiple of
    the point rate. ezc3d takes that number from the rates (rounded down) rather than from the
    header: where the two disagree it reads samples of one frame into the next, and marker
    values into the analog channels.
    """
    analog_rate = _parameter(parameters, "ANALOG", "RATE", None)
    if point_rate <= 0 or analog_rate is None or len(np.ravel(analog_rate)) == 0:
        return  # analogs without markers, or no ANALOG:RATE: ezc3d's own rules, unchecked
    analog_rate = float(np.ravel(analog_rate)[0])
    if analog_rate <= 0:
        return
    (stored,) = struct.unpack(_byte_order(start) + "H", start[18:20])
    ratio = analog_rate / point_rate
    whole = max(round(ratio), 1)
    if abs(ratio - whole) <= 1e-5 * whole and stored in (whole, 0) and n_read == whole:
        return
    header = f"{stored} analog samples per marker frame, {stored * point_rate:g} Hz"
    if abs(ratio - whole) > 1e-5 * whole:
        low, high = np.floor(ratio) * point_rate, np.ceil(ratio) * point_rate
        problem = (
            f"is not a whole multiple of its marker (point) rate, {point_rate:g} Hz, as the C3D "
            "standard requires: every marker frame holds the same whole number of analog "
            f"samples{f' (the header stores {header})' if stored else ''}, so the time of "
            "each sample cannot be told and ezc3d would read samples at the wrong times"
        )
        example = f"{low:g} or {high:g} Hz" if 0 < low < high else f"{point_rate:g} Hz"
    else:
        reads = f"its header stores {header}" if stored not in (whole, 0) else ""
        reads = reads or f"ezc3d, rounding the rates as stored, reads {n_read}"
        problem = (
            f"makes {whole} analog samples per marker frame at its marker (point) rate, "
            f"{point_rate:g} Hz, but {reads}: the file contradicts itself, and ezc3d would mix "
            "samples of the next frame and marker values into the EMG"
        )
        example = f"{analog_rate:g} Hz"
    raise ValueError(
        f"'{path}': its analog rate, {analog_rate:g} Hz (ANALOG:RATE), {problem}. Export the "
        "EMG again from the acquisition software, as a csv with a time column (deepemg reads "
        "those) or as a c3d whose analog rate is a whole multiple of the marker rate (e.g. "
        f"{example})."
    )


def _check_complete(path: Path, start: bytes, parameters: dict, n_read: int) -> None:
    """Raise if ``path`` holds fewer analog samples than its header says, or more than ezc3d read.

    ezc3d reads a truncated file without complaint (and adjusts its header to what it read),
    so the frame count is taken from the file's own 512-byte header (words 4 and 5: first and
    last frame) or, when that count is saturated (65535 frames and more), from
    ``TRIAL:ACTUAL_START_FIELD``/``ACTUAL_END_FIELD``; the frames present are counted from the
    file's size.
    """
    n_channels = max(len(_parameter(parameters, "ANALOG", "LABELS", []) or []), 1)
    used = _parameter(parameters, "ANALOG", "USED", None)
    if used:
        n_channels = max(int(np.ravel(used)[0]), 1)
    n_points, per_frame, first, last = struct.unpack(_byte_order(start) + "HHHH", start[2:10])
    samples_per_frame = per_frame // n_channels
    if samples_per_frame == 0:
        return
    declared = None
    if last != 0xFFFF and last >= first:
        declared = last - first + 1
    else:  # too many frames for the header's 16 bits
        begin = _parameter(parameters, "TRIAL", "ACTUAL_START_FIELD", None)
        end = _parameter(parameters, "TRIAL", "ACTUAL_END_FIELD", None)
        if begin is not None and end is not None and len(begin) == 2 and len(end) == 2:
            first = int(begin[0]) % 65536 + 65536 * int(begin[1])
            declared = int(end[0]) % 65536 + 65536 * int(end[1]) - first + 1
    if declared is not None and n_read < declared * samples_per_frame:
        raise ValueError(
            f"'{path}' is truncated: its header declares {declared * samples_per_frame} analog "
            f"samples per channel but the file holds {n_read} "
            f"({declared * samples_per_frame - n_read} missing). Export the trial again from "
            "the acquisition software, or copy the file again; deepemg does not use part of a "
            "recording."
        )
    try:
        is_float = float(np.ravel(parameters["POINT"]["SCALE"]["value"])[0]) < 0
        data_start = int(np.ravel(parameters["POINT"]["DATA_START"]["value"])[0])
    except (KeyError, IndexError, TypeError, ValueError):
        return
    frame_bytes = (4 * n_points + per_frame) * (4 if is_float else 2)
    used_bytes = (data_start - 1) * 512 + (n_read // samples_per_frame) * frame_bytes
    unread = os.path.getsize(path) - used_bytes
    if declared is None and unread >= 512 and unread >= frame_bytes:  # not the last block's pad
        raise ValueError(
            f"'{path}' holds about {unread // frame_bytes} more frames than ezc3d read ({n_read} "
            "analog samples per channel): a file of more than 65535 frames without "
            "TRIAL:ACTUAL_END_FIELD? deepemg does not use part of a recording; cut the trial "
            "into shorter files."
        )


def read_c3d_analogs(path: str | os.PathLike, channels: Sequence[str] | None = None) -> Analogs:
    """Read the analog channels (raw EMG, force plates...) of a c3d file.

    Parameters
    ----------
    path : str or path-like
        The ``.c3d`` file.
    channels : sequence of str, optional
        Labels of the channels to keep, in this order; all channels when None.

    Returns
    -------
    Analogs
        ``time`` (s), ``data`` (n_samples, n_channels), ``labels``, ``rate`` (Hz), ``units``,
        ``point_rate`` (Hz); ``column(label)`` gives one channel.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a c3d file, is truncated (fewer analog samples than its header
        declares, or a file ezc3d cannot read: the message names the file and the number of
        samples missing; no partial data are returned), has an analog rate that is not a whole
        multiple of its marker (point) rate or a header whose analog samples per frame disagree
        with ``ANALOG:RATE`` (the message names both rates), has no analog channels, a channel in
        ``channels`` is not in the file (the message lists the labels there are) or is the
        label of two channels, or a kept channel holds NaN (the message names it and the first
        sample and time).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import ezc3d, numpy as np
    >>> c3d = ezc3d.c3d()
    >>> c3d["parameters"]["POINT"]["RATE"]["value"] = [100.0]
    >>> c3d["parameters"]["ANALOG"]["RATE"]["value"] = [2000.0]
    >>> c3d["parameters"]["ANALOG"]["LABELS"]["value"] = ("Biceps.EMG4", "Triceps.EMG5")
    >>> c3d["parameters"]["ANALOG"]["UNITS"]["value"] = ("V", "V")
    >>> c3d["data"]["analogs"] = np.zeros((1, 2, 400))
    >>> c3d["data"]["points"] = np.ones((4, 0, 20))
    >>> path = str(pathlib.Path(tempfile.mkdtemp()) / "trial.c3d")
    >>> c3d.write(path)
    >>> emg = read_c3d_analogs(path, channels=["Triceps.EMG5"])
    >>> emg.labels, emg.rate, emg.point_rate, emg.data.shape
    (['Triceps.EMG5'], 2000.0, 100.0, (400, 1))
    """
    return _select(_read_c3d(path), channels)


def _read_c3d(path: str | os.PathLike) -> Analogs:
    """Every analog channel of a c3d file, checked whole (not truncated) but not for NaN."""
    path = _existing_file(path, _EXPECTED)
    with open(path, "rb") as file:
        start = file.read(1024)
    if not _is_c3d(start):
        looks = ""
        if b"endheader" in start.lower():
            looks = " It looks like an OpenSim storage file: use deepemg.io.read_storage."
        elif b"\x00" not in start:
            looks = " It is a text file (a csv table? use deepemg.io.read_csv_table)."
        raise ValueError(f"'{path}' is not {_EXPECTED}.{looks}")

    import ezc3d

    try:
        c3d = ezc3d.c3d(str(path))
    except (OSError, RuntimeError, ValueError) as exc:
        raise ValueError(
            f"ezc3d could not read '{path}' ({str(exc).strip()[:200]}); expected {_EXPECTED}. "
            "The file may be truncated or damaged."
        ) from None
    parameters = c3d["parameters"]
    labels = [str(label).strip() for label in _parameter(parameters, "ANALOG", "LABELS", [])]
    analogs = np.asarray(c3d["data"]["analogs"], dtype=np.float64)
    point_rate = float(c3d["header"]["points"]["frame_rate"])
    if labels:
        per_frame = c3d["header"]["analogs"]["frame_rate"] / point_rate if point_rate > 0 else 0
        _check_rates(path, start, parameters, point_rate, round(per_frame))
    if analogs.size == 0 or not labels:
        raise ValueError(f"'{path}' holds no analog channels (only markers, perhaps).")
    data = analogs.reshape(analogs.shape[-2], analogs.shape[-1]).T  # (n_samples, n_channels)
    _check_complete(path, start, parameters, data.shape[0])
    if len(labels) != data.shape[1]:  # unlabelled channels: name them as Vicon does
        labels = (labels + [f"Channel {i + 1}" for i in range(data.shape[1])])[: data.shape[1]]
    units = [str(u).strip() for u in _parameter(parameters, "ANALOG", "UNITS", [])]
    units = (units + [""] * data.shape[1])[: data.shape[1]]

    rate = float(c3d["header"]["analogs"]["frame_rate"])
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"'{path}' gives no valid analog rate ({rate}).")
    first_frame = int(c3d["header"]["points"]["first_frame"])
    start_time = first_frame / point_rate if point_rate > 0 else 0.0
    time = start_time + np.arange(data.shape[0]) / rate
    return Analogs(time, data, labels, rate, units=units, point_rate=point_rate, path=path)


def _select(analogs: Analogs, channels: Sequence[str] | None) -> Analogs:
    """The channels asked for (all when None), in this order, checked for NaN."""
    time, data, labels, units, path = (
        analogs.time,
        analogs.data,
        analogs.labels,
        analogs.units,
        analogs.path,
    )
    if channels is not None:
        if isinstance(channels, str):
            channels = [channels]
        channels = list(channels)
        missing = [c for c in channels if c not in labels]
        if missing:
            raise ValueError(_missing_message("analog channel", missing, labels, path))
        wanted = [label for label in labels if label in channels]
        _check_unique_labels(wanted, path, "ANALOG:LABELS")
        index = [labels.index(c) for c in channels]
        data, labels, units = data[:, index], channels, [units[i] for i in index]
    _check_finite(data, labels, time, path)
    return Analogs(
        time,
        np.ascontiguousarray(data),
        labels,
        analogs.rate,
        units=units,
        point_rate=analogs.point_rate,
        path=path,
    )
