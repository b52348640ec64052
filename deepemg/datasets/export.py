"""Simulated subjects written as trial files: the layout of a lab's recordings, with a truth."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils import Bunch

from .._files import write_whole

if TYPE_CHECKING:
    from ..channels import ChannelLayout

__all__ = ["export_trials"]


_MVC_SECONDS = 3.0
"""Length (s) of the MVC recording written per subject."""
_FORBIDDEN = set('/\\;:*?"<>|')


def export_trials(
    data: Bunch,
    folder: str | os.PathLike,
    emg_rate: float = 1000.0,
    random_state: int | None = 0,
    coordinate: str | None = None,
    subjects: Mapping[Any, str] | Sequence[str] | str | None = None,
    subject_prefix: str = "",
) -> list[dict[str, Any]]:
    """Write simulated sequences as OpenSim and csv files with a ``trials.csv`` manifest.

    For each sequence of ``data`` (from :func:`make_elbow_lifting`), writes
    ``<subject>_trial<k>_ik.mot`` (the joint angle in degrees, column ``coordinate``),
    ``<subject>_trial<k>_id.sto`` (the inverse dynamics moment, ``<coordinate>_moment``, N·m)
    and ``<subject>_trial<k>_emg.csv``: raw EMG of the surface muscles at ``emg_rate``,
    white Gaussian noise modulated by their envelopes (channels ``EMG_<muscle>``). Per subject
    it also writes ``<subject>_mvc_emg.csv``, the maximal voluntary contraction: 3 s of the
    same carrier, same gain, at excitation 1.0 for every surface muscle, recorded in the
    manifest's ``mvc`` column. :func:`deepemg.io.load_trials` divides the trials' envelopes by
    it, so the files read back are in the arrays' units (1 = MVC), not rescaled to each
    subject's maximum. The deep muscles are not written: they are what is to be
    reconstructed. Every file appears whole or not at all; the manifest is written last.

    X's columns are found by the data's :class:`~deepemg.channels.ChannelLayout`
    (``ChannelLayout.infer(data.channels)``), so data of any joint can be written.

    Parameters
    ----------
    data : Bunch
        ``X``, ``y``, ``channels``, ``muscles``, ``groups``, ``rate`` and optionally
        ``surface_muscles`` (default: the muscles with an EMG channel in ``channels``), as
        :func:`make_elbow_lifting` returns.
    folder : path
        Created if missing.
    emg_rate : float, default=1000.0
        Sampling rate (Hz) of the raw EMG.
    random_state : int or None, default=0
        Seed of the EMG's noise carrier.
    coordinate : str, optional
        The model coordinate that names the angle and moment columns. Default:
        ``r_elbow_flex`` for the built-in elbow's channels (``elbow_angle`` ...), else the
        layout's joint (a model file's channels are named by its coordinate).
    subjects : mapping or sequence of str, optional
        Labels to write instead of ``data.groups``: a dict from a label of ``data.groups`` to
        the label written (labels not in it are kept), or one label per subject in the order
        the subjects first appear in ``data.groups``. Distinct subjects must keep distinct
        labels.
    subject_prefix : str, default=""
        Prepended to every label written (after ``subjects``), e.g. ``"new_"`` writes
        ``new_S01``. :func:`make_elbow_lifting` labels every data set's subjects ``S01``,
        ``S02``...: a new simulated subject exported alone is also ``S01``. ``deepemg predict``
        uses a subject's fitted parameters when its label is one seen in ``deepemg fit`` (and
        personalises only unknown labels), so give subjects that were not in the fit labels
        of their own.

    Returns
    -------
    list of dict
        The trials, as :func:`deepemg.io.read_manifest` reads them back.

    Examples
    --------
    >>> import tempfile
    >>> from deepemg.datasets import make_elbow_lifting
    >>> from deepemg.io import load_trials, read_manifest
    >>> data = make_elbow_lifting(n_subjects=1, n_trials=2, duration=2.0, random_state=0,
    ...                           progress=False)
    >>> folder = tempfile.mkdtemp()
    >>> trials = export_trials(data, folder, subject_prefix="new_")
    >>> trials[0]["subject"], trials[0]["mvc"][0].name
    ('new_S01', 'new_S01_mvc_emg.csv')
    >>> again = load_trials(read_manifest(folder))
    >>> again.X.shape, again.channels[5:]
    ((2, 200, 10), ['emg_BIClong', 'emg_BICshort', 'emg_BRD', 'emg_TRIlong', 'emg_TRIlat'])
    """
    from ..channels import ELBOW_JOINT, ChannelLayout
    from ..io.manifest import write_manifest

    folder = Path(folder)
    layout = ChannelLayout.infer(list(data.channels))
    if coordinate is None:
        coordinate = "r_elbow_flex" if layout.joint == ELBOW_JOINT else layout.joint
    labels = _subject_labels(np.asarray(data.groups).tolist(), subjects, subject_prefix)
    folder.mkdir(parents=True, exist_ok=True)
    trials = _TrialWriter(data, layout, coordinate, emg_rate).write(folder, labels, random_state)
    write_manifest(trials, folder)
    return trials


class _TrialWriter:
    """Writes the sequences of a data set as trial files, and its subjects' MVC recordings."""

    def __init__(
        self, data: Bunch, layout: ChannelLayout, coordinate: str, emg_rate: float
    ) -> None:
        self.data = data
        self.layout = layout
        self.coordinate = coordinate
        self.channels = list(data.channels)
        self.surface = list(
            getattr(data, "surface_muscles", None) or layout.emg_muscles(self.channels)
        )
        self.emg_labels = [f"EMG_{m}" for m in self.surface]
        self.time = np.arange(data.X.shape[1]) / float(data.rate)
        self.emg_time = np.arange(int(np.floor(self.time[-1] * emg_rate)) + 1) / emg_rate
        self.mvc_time = np.arange(round(_MVC_SECONDS * emg_rate)) / emg_rate

    def write(
        self, folder: Path, labels: list[str], random_state: int | None
    ) -> list[dict[str, Any]]:
        """Write every sequence (labelled ``labels``) and each subject's MVC; the trial records."""
        seed = np.random.SeedSequence(random_state)
        rng = np.random.default_rng(seed)  # the trials' carrier
        mvc_rng = np.random.default_rng(seed.spawn(1)[0])  # the MVC recordings' carrier
        trials: list[dict[str, Any]] = []
        counts: dict[str, int] = {}
        mvc: dict[str, Path] = {}
        for i, subject in enumerate(labels):
            counts[subject] = counts.get(subject, 0) + 1
            if subject not in mvc:  # excitation 1.0 in every surface muscle: 1 = MVC
                mvc[subject] = self.write_mvc(folder / f"{subject}_mvc_emg.csv", mvc_rng)
            stem = folder / f"{subject}_trial{counts[subject]:02d}"
            trials.append(self.write_trial(i, stem, subject, mvc[subject], rng))
        return trials

    def write_mvc(self, path: Path, rng: np.random.Generator) -> Path:
        """Write an MVC recording (excitation 1.0 in every surface muscle) at ``path``."""
        raw = rng.standard_normal((self.mvc_time.size, len(self.surface)))
        _write_emg_csv(path, self.mvc_time, raw, self.emg_labels)
        return path

    def write_trial(
        self, i: int, stem: Path, subject: str, mvc: Path, rng: np.random.Generator
    ) -> dict[str, Any]:
        """Write sequence ``i`` as ``<stem>_ik.mot``, ``_id.sto`` and ``_emg.csv``; its record."""
        from ..io.storage import write_storage

        data, layout, channels, coordinate = self.data, self.layout, self.channels, self.coordinate
        time = self.time
        angle = np.degrees(data.X[i, :, channels.index(layout.angle)])
        torque = data.X[i, :, channels.index(layout.torque)]
        write_storage(
            stem.with_name(stem.name + "_ik.mot"), time, {coordinate: angle}, in_degrees=True
        )
        write_storage(stem.with_name(stem.name + "_id.sto"), time, {f"{coordinate}_moment": torque})
        envelopes = np.column_stack(
            [
                np.interp(self.emg_time, time, data.y[i, :, data.muscles.index(m)])
                for m in self.surface
            ]
        )
        raw = np.clip(envelopes, 0, None) * rng.standard_normal(envelopes.shape)
        _write_emg_csv(stem.with_name(stem.name + "_emg.csv"), self.emg_time, raw, self.emg_labels)
        return {
            "subject": subject,
            "load_mass": float(data.X[i, 0, channels.index(layout.load)]),
            "kinematics": stem.with_name(stem.name + "_ik.mot"),
            "emg": stem.with_name(stem.name + "_emg.csv"),
            "emg_channels": dict(zip(self.surface, self.emg_labels, strict=True)),
            "mvc": [mvc],
            "torque": stem.with_name(stem.name + "_id.sto"),
        }


def _subject_labels(
    groups: list, subjects: Mapping[Any, str] | Sequence[str] | str | None, prefix: str
) -> list[str]:
    """The label written for each sequence, checked: usable in a file name, one per subject."""
    order = list(dict.fromkeys(groups))
    if subjects is None:
        mapping = {g: str(g) for g in order}
    elif isinstance(subjects, Mapping):
        unknown = [k for k in subjects if k not in order]
        if unknown:
            raise ValueError(f"subjects renames {unknown}, which are not in data.groups {order}.")
        mapping = {g: str(subjects.get(g, g)) for g in order}
    else:
        names = [subjects] if isinstance(subjects, str) else list(subjects)
        if len(names) != len(order):
            raise ValueError(
                f"subjects gives {len(names)} labels but data.groups holds {len(order)} "
                f"subjects {order}: give one label per subject, in that order."
            )
        mapping = {g: str(name) for g, name in zip(order, names, strict=True)}
    if not isinstance(prefix, str):
        raise TypeError(f"subject_prefix must be a str, got {type(prefix).__name__}.")
    mapping = {g: prefix + name for g, name in mapping.items()}
    for name in mapping.values():
        bad = sorted({c for c in name if c in _FORBIDDEN or ord(c) < 32})
        if not name.strip() or name in (".", "..") or bad:
            raise ValueError(
                f"The subject label {name!r} cannot name files"
                f"{f' (it holds {bad})' if bad else ''}; use letters, digits, '_', '-', '.'."
            )
    written = list(mapping.values())
    twice = sorted({n for n in written if written.count(n) > 1})
    if twice:
        raise ValueError(
            f"Different subjects would be written as {twice}: their trials would be taken "
            "for one subject's. Give each subject its own label."
        )
    return [mapping[g] for g in groups]


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file, then os.replace)."""
    write_whole(path, lambda temporary: Path(temporary).write_text(text, "utf-8", newline=""))


def _write_emg_csv(path: Path, time: np.ndarray, raw: np.ndarray, labels: list[str]) -> None:
    """Write raw EMG as csv: a ``time`` column, then one column per label."""
    buffer = io.StringIO()
    np.savetxt(
        buffer,
        np.column_stack([time, raw]),
        delimiter=",",
        header=",".join(["time", *labels]),
        comments="",
        fmt="%.6g",
    )
    _write_atomic(path, buffer.getvalue())
