"""Analog channels (raw EMG, force sensors) of c3d motion-capture files, read with ezc3d."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .table import Recording, _check_finite, _existing_file, _is_c3d, _missing_message

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


def _parameter(parameters: dict, group: str, name: str, default=None):
    try:
        return parameters[group][name]["value"]
    except KeyError:
        return default


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
        If the file is not a c3d file, has no analog channels, a channel in ``channels`` is not
        in the file (the message lists the labels there are), or a kept channel holds NaN
        (the message names it and the first sample and time).

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
    path = _existing_file(path, _EXPECTED)
    with open(path, "rb") as file:
        start = file.read(512)
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
    if analogs.size == 0 or not labels:
        raise ValueError(f"'{path}' holds no analog channels (only markers, perhaps).")
    data = analogs.reshape(analogs.shape[-2], analogs.shape[-1]).T  # (n_samples, n_channels)
    if len(labels) != data.shape[1]:  # unlabelled channels: name them as Vicon does
        labels = (labels + [f"Channel {i + 1}" for i in range(data.shape[1])])[: data.shape[1]]
    units = [str(u).strip() for u in _parameter(parameters, "ANALOG", "UNITS", [])]
    units = (units + [""] * data.shape[1])[: data.shape[1]]

    rate = float(c3d["header"]["analogs"]["frame_rate"])
    point_rate = float(c3d["header"]["points"]["frame_rate"])
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"'{path}' gives no valid analog rate ({rate}).")
    first_frame = int(c3d["header"]["points"]["first_frame"])
    start_time = first_frame / point_rate if point_rate > 0 else 0.0
    time = start_time + np.arange(data.shape[0]) / rate

    if channels is not None:
        if isinstance(channels, str):
            channels = [channels]
        channels = list(channels)
        missing = [c for c in channels if c not in labels]
        if missing:
            raise ValueError(_missing_message("analog channel", missing, labels, path))
        index = [labels.index(c) for c in channels]
        data, labels, units = data[:, index], channels, [units[i] for i in index]
    _check_finite(data, labels, time, path)
    return Analogs(
        time,
        np.ascontiguousarray(data),
        labels,
        rate,
        units=units,
        point_rate=point_rate,
        path=path,
    )
