"""Saving and loading a fitted :class:`~deepemg.NMMRegressor` without pickle.

A model file is a zip archive holding

* ``deepemg.json``: the format, the versions that wrote it, the estimator's parameters and
  its fitted arrays (subjects with their types, muscles, channels, input standardisation,
  torque scale);
* ``module.pt``: the torch ``state_dict`` of the network, the muscle model and the subject
  parameters (with the subjects' codes when ``subject_embedding > 0``), read back with
  ``torch.load(weights_only=True)`` (tensors only);
* ``history.json`` (and ``personalize_history.json``): the loss history;
* ``model_adequacy.json`` (files since 0.6.0): ``model_adequacy_``, one record per subject
  (:mod:`deepemg.adequacy`);
* ``model.osim``, when the estimator's model was built from an OpenSim file: that file, so
  that the model file is complete on another machine (its SHA-256 is in ``deepemg.json``);
* ``members/<k>/...``: the same for each member of an ensemble.

Nothing in it can run code when it is loaded: a file that is not such an archive (a pickle, a
joblib file, a truncated download) is refused with a message, never executed. A model file
is treated as untrusted input:

* only the entries above are read, each at most :data:`MAX_ENTRY_BYTES` once inflated (the
  limit holds while reading: the size a zip header declares can lie), all together at most
  :data:`MAX_TOTAL_BYTES`, so a zip bomb is refused at little memory;
* a damaged archive (a corrupt stream, an unsupported compression or encryption, a cut file)
  is a ``ValueError`` naming the file and the entry, never a traceback of the zip machinery;
* every setting is checked with the estimator's own parameter validation and every fitted
  field for its type and shape, and an error names the field;
* a model file never makes deepemg open a file it merely names: the OpenSim model is the
  built-in ``"elbow"``, the ``.osim`` the file carries (written to deepemg's cache folder,
  ``$DEEPEMG_DATA`` or ``~/.cache/deepemg``, under its SHA-256, and read from there), or the
  ``.osim`` the caller passes (``load_model(path, model=...)``).

The file is written to a temporary file beside the target and moved into place when complete,
so an interrupted save leaves any earlier file as it was.

The estimator's skorch ``callbacks`` are not saved (they are objects of the training, not of
the model): a loaded estimator has ``callbacks=None``.

Pickling an estimator (``pickle``, ``joblib``) still works, as scikit-learn users expect, but
a pickle runs code when loaded: load only pickles you wrote yourself.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import zipfile
from pathlib import Path
from typing import TypeGuard

import numpy as np
import torch

from ._files import write_whole
from .adequacy import adequacy_from_rows, adequacy_rows
from .specification import BUILTIN_MODEL, ModelSpecification

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_ENTRIES",
    "MAX_ENTRY_BYTES",
    "MAX_TOTAL_BYTES",
    "ModelFileMixin",
    "load_model",
    "save_checkpoint",
    "save_model",
]

FORMAT = "deepemg-model"
"""The ``format`` field of a model file."""
FORMAT_VERSION = 4
"""Bumped when the layout of a model file changes; older readers refuse newer files.

* 2: the ``subject_embedding`` parameter (and subject codes); files of format 1 are read as
  ``subject_embedding=0``.
* 3: the file carries the OpenSim model it was fitted with (entry ``model.osim``, its size and
  SHA-256 under ``carried`` in ``deepemg.json``), and the ``model`` setting names that entry
  (``"model.osim"``, or ``{"osim": "model.osim", ...}`` for a ``MusculoskeletalModel``) instead
  of a path; subject labels keep their types (``subjects_`` as JSON values with
  ``subjects_dtype``, the array's dtype). Files of formats 1 and 2 whose model is an ``.osim``
  path load only when the caller passes that file (``load_model(path, model=...)``); those
  with the built-in ``"elbow"`` load as they are.
* 4: an ensemble is an :class:`~deepemg.ensemble.NMMEnsemble` (``"class": "NMMEnsemble"``, its
  ``params``, ``estimator_random_state``, ``uncertainty_scale_`` and ``members``, each under
  ``members/<k>/``, nothing at the top); an NMMRegressor has no ``n_members`` nor ``n_jobs``.
  Files of format 3 and before holding ``NMMRegressor(n_members=k)`` load as an NMMEnsemble.
"""

MAX_ENTRY_BYTES = 64 * 2**20
"""Largest entry (bytes, inflated) read from a model file: 64 MiB. A model's ``module.pt`` is
about 0.1-1 MB and an ``.osim`` file well under 10 MB; raise it to load a larger model of
yours (``deepemg.persistence.MAX_ENTRY_BYTES = ...``)."""
MAX_TOTAL_BYTES = 256 * 2**20
"""Largest sum of the entries (bytes, inflated) read from one model file, and largest model
file: 256 MiB (an ensemble of many large members may need more: raise it for a file of
yours)."""
MAX_ENTRIES = 4096
"""Most entries a model file's zip directory may list (a model has 3 to 5, an ensemble 4 to 5
per member): a directory of millions of tiny entries would take far more memory to list than
the file takes on disk."""

_OSIM = "model.osim"
_OSIM_ENTRY = re.compile(r"(?:members/(0|[1-9][0-9]{0,5})/)?model\.osim")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FITTED_ARRAYS = ("feature_mean_", "feature_std_")
_LABEL_KINDS = "biufUO"
_SAVE_AGAIN = "save the model again (NMMRegressor.save or 'deepemg fit')"
_EDITED = f"the file is damaged or was edited: {_SAVE_AGAIN}"


class ModelFileMixin:
    """``save`` and ``load`` in deepemg's model format for a fitted estimator.

    The estimator gives its fitted state with ``get_fitted_state`` and takes it back with
    ``set_fitted_state``; :func:`save_model` and :func:`load_model` write and read it.
    """

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the fitted estimator to ``path`` without pickle (:func:`save_model`).

        ``callbacks`` are left out (a loaded estimator has ``callbacks=None``).

        Returns
        -------
        Path
            ``path``.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return save_model(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, *, model=None, device=None):
        """Read an estimator written by :meth:`save` (:func:`load_model`).

        A file that is not one (a pickle included), or is damaged, is refused, never
        executed. ``model``: an ``.osim`` file to use instead of the one the file carries;
        ``device``: where to run it (None: the saved one; ``"cpu"`` loads a model saved
        with ``device="cuda"`` on a machine without a GPU).
        """
        loaded = load_model(path, model=model, device=device)
        if not isinstance(loaded, cls):
            name = type(loaded).__name__
            raise ValueError(f"{path} holds an {name}, not an {cls.__name__}: use {name}.load.")
        return loaded


# ------------------------------------------------------------------ writing
def _json_params(estimator) -> dict:
    """The estimator's parameters as JSON values, or a clear error for those that are not."""
    from .physics import MUSCLE_LAWS, MuscleLaw, MusculoskeletalModel

    params = estimator.get_params()
    model = params["model"]
    if isinstance(model, MusculoskeletalModel):
        source = model.fit_report.get("source")
        if not source:
            raise ValueError(
                "this NMMRegressor's model is a MusculoskeletalModel built in memory; save "
                "needs a model given by name ('elbow') or by .osim path."
            )
        params["model"] = {
            "osim": str(source),
            "coordinate": model.coordinate,
            "joint": model.joint,
            "muscle_law": model.muscle_law.name,
            # the pose and load body the geometry was fitted in (moment arms depend on them)
            "locked": dict(model.fit_report.get("locked") or {}),
            "load_body": model.fit_report.get("load_body", "load"),
        }
    elif isinstance(model, os.PathLike):
        params["model"] = os.fspath(model)
    params["device"] = str(params["device"])
    # skorch callbacks are training-time objects, not part of a model: never saved (a loaded
    # estimator has callbacks=None); a file that names some is refused by the loader
    params.pop("callbacks", None)
    law = params["muscle_law"]
    if isinstance(law, MuscleLaw):  # a registered law is saved by its name
        if type(MUSCLE_LAWS.get(law.name)) is not type(law):  # the law, or a copy of it
            raise ValueError(
                f"this NMMRegressor's muscle_law is a MuscleLaw {law.name!r} that is not "
                "registered; register it (deepemg.physics.register_muscle_law) before saving, "
                "and before loading."
            )
        params["muscle_law"] = law.name
    if params["channels"] is not None:
        params["channels"] = [str(c) for c in params["channels"]]
    if not (params["random_state"] is None or isinstance(params["random_state"], int)):
        params["random_state"] = None  # a RandomState instance: the fit is done anyway
    try:
        json.dumps(params)
    except TypeError as error:
        raise ValueError(f"a parameter of this NMMRegressor cannot be saved: {error}") from None
    return params


class _Carried:
    """The ``.osim`` files a model file carries: archive entry, content and header record."""

    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}
        self.header: dict[str, dict] = {}
        self._by_digest: dict[str, str] = {}

    def add(self, source: str, prefix: str) -> str:
        """The entry that carries the file ``source`` (added once per content)."""
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(
                f"the model's OpenSim file '{path}' is gone: a model file carries its .osim, "
                "so save needs it; put the file back (or fit again with the file it names)."
            )
        with open(path, "rb") as stream:
            content = stream.read(MAX_ENTRY_BYTES + 1)
        if len(content) > MAX_ENTRY_BYTES:
            raise ValueError(
                f"the model's OpenSim file '{path}' is larger than a model file may carry "
                f"(MAX_ENTRY_BYTES = {MAX_ENTRY_BYTES} bytes); raise "
                "deepemg.persistence.MAX_ENTRY_BYTES to save it."
            )
        _check_self_contained(content, f"the model's OpenSim file '{path}'")
        digest = hashlib.sha256(content).hexdigest()
        if digest not in self._by_digest:
            name = _OSIM if _OSIM not in self.entries else f"{prefix}{_OSIM}"
            self._by_digest[digest] = name
            self.entries[name] = content
            self.header[name] = {"sha256": digest, "size": len(content), "source": path.name}
        return self._by_digest[digest]


def _subject_labels(subjects) -> tuple[list, str]:
    """The subject labels as JSON values (int, float, bool, str) and the array's dtype."""
    subjects = np.asarray(subjects)
    advice = (
        "a model file keeps subject labels that are int, float, bool or str (numpy's or "
        "Python's): fit (or personalize) with such labels to save this model"
    )
    if subjects.ndim != 1 or subjects.dtype.kind not in _LABEL_KINDS:
        raise ValueError(
            f"cannot save the subject labels {subjects.tolist()!r} (dtype {subjects.dtype}): "
            f"{advice}."
        )
    labels = []
    for value in subjects.tolist():
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, bool | int | float | str):
            raise ValueError(
                f"cannot save the subject label {value!r} ({type(value).__name__}): {advice}."
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"cannot save the subject label {value!r}: {advice}, and finite.")
        labels.append(value)
    return labels, subjects.dtype.str


def _files(estimator, prefix: str, carried: _Carried) -> dict:
    """The archive entries of one fitted network.

    The archive entries of one fitted network (its ``get_fitted_state``): settings, fitted
    arrays, weights, history.
    """
    params = _json_params(estimator)
    model = params["model"]
    if isinstance(model, dict):
        model["osim"] = carried.add(model["osim"], prefix)
    elif not ModelSpecification(model).is_builtin:
        params["model"] = carried.add(model, prefix)
    state = estimator.get_fitted_state()
    subjects, dtype = _subject_labels(state["subjects_"])
    header = {
        "class": "NMMRegressor",
        "params": params,
        "fitted": {
            "muscles_": list(state["muscles_"]),
            "subjects_": subjects,
            "subjects_dtype": dtype,
            "n_channels_": int(state["n_channels_"]),
            "channels_": list(state["channels_"]),
            "torque_scale_": float(state["torque_scale_"]),
            "unmeasured": list(state["unmeasured"]),
            **{k: np.asarray(state[k]).tolist() for k in _FITTED_ARRAYS},
        },
    }
    weights = io.BytesIO()
    torch.save(state["module"], weights)
    files = {
        f"{prefix}deepemg.json": json.dumps(header, indent=1),
        f"{prefix}module.pt": weights.getvalue(),
        f"{prefix}history.json": json.dumps(state["history_"]),
    }
    if state["personalize_history_"] is not None:
        history = json.dumps(state["personalize_history_"])
        files[f"{prefix}personalize_history.json"] = history
    adequacy = getattr(estimator, "model_adequacy_", None)  # not in the state: no checkpoint's
    if adequacy is not None:
        rows = adequacy_rows(adequacy, np.asarray(state["subjects_"]).tolist())
        files[f"{prefix}model_adequacy.json"] = json.dumps(rows)
    return files


def _ensemble_files(ensemble, carried: _Carried) -> dict:
    """The archive entries of a fitted NMMEnsemble: its settings, then each member's."""
    state = ensemble.get_fitted_state()
    template = ensemble.get_params(deep=False)
    seed = template["random_state"]
    inner = getattr(template["estimator"], "random_state", None)
    header = {
        "class": "NMMEnsemble",
        "params": {
            "n_members": int(template["n_members"]),
            "deep_start_spread": float(template["deep_start_spread"]),
            "n_jobs": template["n_jobs"],
            "random_state": seed if seed is None or isinstance(seed, int) else None,
        },
        "estimator_random_state": inner if inner is None or isinstance(inner, int) else None,
        "estimator_deep_start": float(getattr(template["estimator"], "deep_start", 0.0)),
        "members": len(state["estimators_"]),
        "uncertainty_scale_": float(state["uncertainty_scale_"]),
    }
    files = {"deepemg.json": header}
    for k, member in enumerate(state["estimators_"]):
        files.update(_files(member, f"members/{k}/", carried))
    return files


def save_model(estimator, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a fitted NMMRegressor to ``path`` in deepemg's model format (no pickle).

    An estimator whose model was built from an ``.osim`` file carries that file (it must
    still exist), so the model file loads on any machine.

    Parameters
    ----------
    estimator : NMMRegressor
        Fitted.
    path : path
        The model file (``.deepemg`` by convention); its folder must exist.
    overwrite : bool, default=False
        Replace an existing file (else ``FileExistsError``).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        For what a model file cannot hold: a model built in memory, subject labels that are
        not int, float, bool or str, an ``.osim`` larger than :data:`MAX_ENTRY_BYTES`.
    FileNotFoundError
        For the folder of ``path``, or the model's ``.osim``, missing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=1, n_trials=2, duration=1.0, random_state=0,
    ...                           progress=False, cache=False)
    >>> nmm = NMMRegressor(max_epochs=1, window=50, random_state=0).fit(data.X, data.y)
    >>> path = save_model(nmm, pathlib.Path(tempfile.mkdtemp()) / "nmm.deepemg")
    >>> bool((load_model(path).predict(data.X) == nmm.predict(data.X)).all())
    True
    """
    from ._version import __version__
    from .ensemble import NMMEnsemble
    from .regressor import NMMRegressor

    ensemble = isinstance(estimator, NMMEnsemble)
    if not isinstance(estimator, NMMRegressor | NMMEnsemble) or not hasattr(
        estimator, "estimators_" if ensemble else "net_"
    ):
        raise TypeError("save_model takes a fitted NMMRegressor or NMMEnsemble.")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"no folder {path.parent} to save {path.name} in.")
    carried = _Carried()
    if ensemble:
        files = _ensemble_files(estimator, carried)
        header = files["deepemg.json"]
    else:
        files = _files(estimator, "", carried)
        header = json.loads(files["deepemg.json"])
    header.update(format=FORMAT, format_version=FORMAT_VERSION, deepemg=__version__)
    header.update(torch=torch.__version__)
    if carried.header:
        header["carried"] = carried.header
    files["deepemg.json"] = json.dumps(header, indent=1)
    files.update(carried.entries)

    def write(temporary: str) -> None:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in files.items():
                archive.writestr(name, content)

    return write_whole(path, write)


# ------------------------------------------------------------------ reading the archive
def _one_line(error: BaseException) -> str:
    """``Type: message`` of an exception, on one line and short."""
    kind = type(error)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    text = " ".join(str(error).split())
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{name}: {text}" if text else name


class _Archive:
    """The entries of an open model file, read with size limits and errors that name them."""

    def __init__(self, archive: zipfile.ZipFile, path: Path) -> None:
        self.archive = archive
        self.path = path
        self.total = 0

    def _too_large(self, name: str, size: str, limit: str, value: int) -> ValueError:
        return ValueError(
            f"model file {self.path}: the entry '{name}' {size}, more than deepemg reads "
            f"({limit} = {value} bytes): the file is damaged or not a deepemg model (a zip "
            f"bomb?); if it is a model you saved, raise deepemg.persistence.{limit} to load it."
        )

    def read(self, name: str) -> bytes:
        """The bytes of ``name`` (``KeyError`` when absent), within the limits."""
        info = self.archive.getinfo(name)
        entry_limit, total_limit = MAX_ENTRY_BYTES, MAX_TOTAL_BYTES
        if info.file_size > entry_limit:
            size = f"declares {info.file_size} bytes"
            raise self._too_large(name, size, "MAX_ENTRY_BYTES", entry_limit)
        if self.total + info.file_size > total_limit:
            size = "brings the entries read past the total"
            raise self._too_large(name, size, "MAX_TOTAL_BYTES", total_limit)
        try:
            with self.archive.open(name) as stream:
                content = stream.read(entry_limit + 1)  # bounded, whatever the header says
        except Exception as error:
            # RuntimeError (encrypted), EOFError, BadZipFile (CRC), struct.error, OSError...
            raise ValueError(
                f"model file {self.path}: the entry '{name}' cannot be read, the file is "
                f"damaged ({_one_line(error)}); {_SAVE_AGAIN}."
            ) from None
        if len(content) > entry_limit:
            size = "inflates to more than its zip header declares"
            raise self._too_large(name, size, "MAX_ENTRY_BYTES", entry_limit)
        self.total += len(content)
        if self.total > total_limit:
            size = "brings the entries read past the total"
            raise self._too_large(name, size, "MAX_TOTAL_BYTES", total_limit)
        return content

    def json(self, name: str):
        """The JSON value of ``name`` (``KeyError`` when absent)."""
        content = self.read(name)
        try:
            return json.loads(content)
        except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
            raise ValueError(
                f"model file {self.path}: the entry '{name}' is not valid JSON "
                f"({_one_line(error)}); {_EDITED}."
            ) from None


# ------------------------------------------------------------------ checking what was read
def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


class _Fitted:
    """The fitted fields of one network's settings, each checked when taken."""

    def __init__(self, fitted, where: str) -> None:
        if not isinstance(fitted, dict):
            raise ValueError(f"{where}: the settings' 'fitted' fields are missing; {_EDITED}.")
        self.fitted = fitted
        self.where = where

    def get(self, name: str, check, expected: str):
        if name not in self.fitted:
            raise ValueError(f"{self.where}: the fitted field '{name}' is missing; {_EDITED}.")
        value = self.fitted[name]
        if not check(value):
            raise ValueError(
                f"{self.where}: the fitted field '{name}' must be {expected}, got "
                f"{_short(value)}; {_EDITED}."
            )
        return value


def _label_values(values) -> bool:
    return (
        isinstance(values, list)
        and len(values) > 0
        and all(isinstance(v, bool | int | float | str) for v in values)
    )


def _labels(fitted: _Fitted, old: bool) -> np.ndarray:
    """The subject labels as they were fitted (types and dtype included)."""
    where = fitted.where
    values = fitted.get(
        "subjects_", _label_values, "a non-empty list of labels (int, float, bool, str)"
    )
    if len(set(values)) != len(values):
        raise ValueError(f"{where}: the fitted field 'subjects_' repeats a label; {_EDITED}.")
    if old:  # formats 1-2: the dtype's kind only
        kind = fitted.fitted.get("subjects_kind", "U")
        dtype = {"i": np.int64, "u": np.uint64, "f": np.float64, "b": np.bool_}.get(kind, str)
        try:
            return np.asarray(values, dtype=dtype)
        except (TypeError, ValueError, OverflowError):
            return np.asarray(values, dtype=str)

    def dtype_of(text) -> bool:
        try:
            dtype = np.dtype(text) if isinstance(text, str) else None
        except (TypeError, ValueError):
            return False
        return (
            dtype is not None
            and dtype.kind in _LABEL_KINDS
            and len(values) * dtype.itemsize <= MAX_ENTRY_BYTES
        )

    dtype = np.dtype(
        fitted.get("subjects_dtype", dtype_of, "a dtype of int, float, bool, str or object")
    )
    return _typed_labels(values, dtype, where)


_KIND_OF = {
    "b": lambda v: isinstance(v, bool),
    "i": _is_int,
    "u": _is_int,
    "f": _is_real,
    "U": lambda v: isinstance(v, str),
    "O": lambda v: True,
}


def _typed_labels(values: list, dtype: np.dtype, where: str) -> np.ndarray:
    """``values`` as an array of ``dtype``, or a clear error where they are not of it."""
    if not all(_KIND_OF[dtype.kind](v) for v in values):
        raise ValueError(
            f"{where}: the fitted field 'subjects_' holds {_short(values)}, not labels of its "
            f"dtype {dtype}; {_EDITED}."
        )
    if dtype.kind == "O":
        labels = np.empty(len(values), dtype=object)
        labels[:] = values
        return labels
    try:
        typed = np.array(values, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        typed = None
    if typed is None or typed.tolist() != values:
        raise ValueError(
            f"{where}: the fitted field 'subjects_' holds {_short(values)}, which the dtype "
            f"{dtype} cannot hold; {_EDITED}."
        )
    return typed


def _check_settings(estimator, where: str) -> None:
    """The parameters, by the estimator's own validation and what JSON cannot say."""
    from sklearn.utils._param_validation import InvalidParameterError

    from .devices import check_device

    try:
        estimator._validate_params()
    except InvalidParameterError as error:
        found = re.search(r"The '([^']+)' parameter", str(error))
        name = found.group(1) if found else "?"
        text = " ".join(str(error).split()).rstrip(".")
        raise ValueError(f"{where}: setting '{name}' is invalid: {text}; {_EDITED}.") from None
    try:
        check_device(estimator.device)
    except (RuntimeError, ValueError, TypeError) as error:
        text = " ".join(str(error).split()).rstrip(".")
        raise ValueError(f"{where}: setting 'device' is invalid: {text}; {_EDITED}.") from None
    locked = estimator.locked
    if locked is not None and not all(
        isinstance(k, str) and _is_real(v) and math.isfinite(v) for k, v in locked.items()
    ):
        raise ValueError(
            f"{where}: setting 'locked' is invalid: it must map coordinate names to angles "
            f"(rad), got {_short(locked)}; {_EDITED}."
        )
    channels = estimator.channels
    if channels is not None and not _is_str_list(channels):
        raise ValueError(
            f"{where}: setting 'channels' is invalid: it must be a list of channel names, got "
            f"{_short(channels)}; {_EDITED}."
        )


# ------------------------------------------------------------------ the OpenSim model
def _cached_osim(content: bytes, digest: str, path: Path) -> Path:
    """The carried .osim in deepemg's cache folder.

    A file holding ``content`` in deepemg's cache folder, named by its SHA-256 (an existing
    one reused when it holds the same bytes; else written whole, then moved into place).
    """
    from .datasets._cache import get_data_home

    folder = get_data_home() / "models"
    target = folder / f"{digest}.osim"
    try:
        if target.is_file() and target.stat().st_size == len(content):
            if target.read_bytes() == content:
                return target
        folder.mkdir(parents=True, exist_ok=True)
        write_whole(target, lambda temporary: Path(temporary).write_bytes(content))
    except OSError as error:
        raise OSError(
            f"cannot write the OpenSim model that {path} carries into deepemg's cache folder "
            f"{folder} ({_one_line(error)}); set $DEEPEMG_DATA to a writable folder, or pass "
            "the .osim to load(path, model=...)."
        ) from None
    return target


class _Models:
    """The OpenSim model of a model file's ``model`` setting.

    Resolves a ``model`` setting to what the estimator is built with, opening no file the
    model file merely names.
    """

    def __init__(self, archive: _Archive, carried, version: int, model, n_members: int):
        self.archive = archive
        self.path = archive.path
        self.version = version
        self.user = None if model is None else os.fspath(model)
        self.carried = self._check_carried(carried, n_members)
        self._files: dict[str, Path] = {}
        self._built: dict[str, object] = {}

    def _check_carried(self, carried, n_members: int) -> dict:
        if carried is None:
            return {}
        bad = ValueError(
            f"model file {self.path}: the header's 'carried' record is malformed (it must map "
            f"'model.osim' to its sha256 and size); {_EDITED}."
        )
        if not isinstance(carried, dict):
            raise bad
        for name, record in carried.items():
            found = _OSIM_ENTRY.fullmatch(name) if isinstance(name, str) else None
            if not found or (found.group(1) is not None and int(found.group(1)) >= n_members):
                raise ValueError(
                    f"model file {self.path}: it says it carries {_short(name)}, which is no "
                    f"entry of deepemg's format; {_EDITED}."
                )
            if not (
                isinstance(record, dict)
                and isinstance(record.get("sha256"), str)
                and _SHA256.fullmatch(record["sha256"])
                and _is_int(record.get("size"))
            ):
                raise bad
        return carried

    def _refused(self, value, where: str) -> ValueError:
        named = value["osim"] if isinstance(value, dict) and "osim" in value else value
        if self.version < 3:
            return ValueError(
                f"{where} (format {self.version}) names its OpenSim model by the path "
                f"{_short(named)}: files written before format 3 do not carry their .osim, and "
                "deepemg does not open a path a model file names; pass the .osim it was fitted "
                "with: NMMRegressor.load(path, model=...) (then save it again to carry it)."
            )
        return ValueError(
            f"{where}: its settings name the OpenSim model {_short(named)}, which the file "
            "does not carry (deepemg uses only the built-in 'elbow' or the .osim a model file "
            f"carries); {_SAVE_AGAIN}, or pass an .osim of yours: load(path, model=...)."
        )

    def _carried_file(self, name, where: str) -> Path | None:
        """The cached copy of the carried entry ``name``, or None when it carries none."""
        if self.version < 3 or not isinstance(name, str) or name not in self.carried:
            return None
        if name in self._files:
            return self._files[name]
        record = self.carried[name]
        try:
            content = self.archive.read(name)
        except KeyError:
            raise ValueError(
                f"{where}: the entry '{name}' it says it carries is missing; {_EDITED}."
            ) from None
        digest = hashlib.sha256(content).hexdigest()
        if digest != record["sha256"] or len(content) != record["size"]:
            raise ValueError(
                f"model file {self.path}: the entry '{name}' does not match the sha256 and size "
                f"recorded for it; {_EDITED}."
            )
        _check_self_contained(content, f"{where}: its carried '{name}'")
        self._files[name] = _cached_osim(content, digest, self.path)
        return self._files[name]

    def resolve(self, value, where: str):
        """The estimator's ``model`` parameter for the setting ``value``."""
        from .opensim import build_model

        if ModelSpecification(value).is_builtin:
            if self.user is not None:
                raise ValueError(
                    f"{where}: it uses the built-in '{BUILTIN_MODEL}' model, so it takes no "
                    "model=; load it without one."
                )
            return BUILTIN_MODEL
        if isinstance(value, dict):
            fields = {"osim", "coordinate", "joint", "muscle_law"}
            optional = {"locked", "load_body"}  # format 3 files written since 2026-12-04
            locked = value.get("locked", {})
            load_body = value.get("load_body", "load")
            if (
                not fields <= set(value) <= fields | optional
                or not all(isinstance(value[k], str) for k in ("coordinate", "muscle_law"))
                or not (value["joint"] is None or isinstance(value["joint"], str))
                or not isinstance(locked, dict)
                or not all(
                    isinstance(k, str) and _is_real(v) and math.isfinite(v)
                    for k, v in locked.items()
                )
                or not (load_body is None or isinstance(load_body, str))
            ):
                raise ValueError(
                    f"{where}: setting 'model' is invalid: a MusculoskeletalModel is saved as "
                    f"{sorted(fields)}, got {_short(value)}; {_EDITED}."
                )
            osim = self.user if self.user is not None else self._carried_file(value["osim"], where)
            if osim is None:
                raise self._refused(value, where)
            key = json.dumps([str(osim), value], sort_keys=True)
            if key not in self._built:  # one model for the estimator and its members
                try:
                    self._built[key] = build_model(
                        osim,
                        value["coordinate"],
                        locked or None,
                        load_body=load_body,
                        joint=value["joint"],
                        muscle_law=value["muscle_law"],
                    )
                except ValueError as error:
                    raise ValueError(f"{where}: {_one_line(error)}") from None
            return self._built[key]
        if self.user is not None and (isinstance(value, str) or self.version < 3):
            return self.user
        osim = self._carried_file(value, where)
        if osim is None:
            raise self._refused(value, where)
        return str(osim)


def _check_weights_archive(weights: bytes, where: str, not_a_model: str) -> None:
    """Refuse weights that torch.load would inflate without a limit.

    ``module.pt`` is torch's own zip, whose entries torch.save stores uncompressed: refuse
    compressed entries (a bomb inside the weights, which torch.load would inflate without a
    limit) and entries past :data:`MAX_ENTRY_BYTES` in all, before torch reads them.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(weights)) as inner:
            entries = inner.infolist()
    except Exception as error:
        raise ValueError(f"{not_a_model}; its weights do not load: {_one_line(error)}") from None
    if any(info.compress_type != zipfile.ZIP_STORED for info in entries):
        raise ValueError(
            f"{where}: its weights (module.pt) hold compressed entries, which torch.save never "
            f"writes; {_EDITED}."
        )
    if sum(info.file_size for info in entries) > MAX_ENTRY_BYTES:
        raise ValueError(
            f"{where}: its weights (module.pt) declare more than MAX_ENTRY_BYTES = "
            f"{MAX_ENTRY_BYTES} bytes; {_EDITED}."
        )


def _check_self_contained(content: bytes, what: str) -> None:
    """Refuse an .osim that would make OpenSim read other files.

    Refuse an .osim that would make OpenSim read other files: a DOCTYPE or entity
    declaration, or an object loaded from a ``file="..."`` attribute (OpenSim follows those
    to any path). The built-in elbow and Arm26 have none.
    """
    import xml.etree.ElementTree as ElementTree

    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        raise ValueError(f"{what} declares a DOCTYPE or entities, which an .osim needs not.")
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError as error:
        raise ValueError(f"{what} is not XML OpenSim can read ({error}).") from None
    for element in root.iter():
        target = element.get("file")
        if target not in (None, "", "Unassigned"):
            raise ValueError(
                f"{what} loads its <{element.tag}> from another file ({target!r}); a model "
                "file carries one self-contained .osim: put that object into the .osim itself."
            )


# ------------------------------------------------------------------ loading
def load_model(
    path: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
):
    """Read an NMMRegressor written by :func:`save_model`; nothing in the file is executed.

    The file is untrusted input: only the entries of deepemg's format are read, within
    :data:`MAX_ENTRY_BYTES` and :data:`MAX_TOTAL_BYTES`; every setting and fitted field is
    checked; and no file the model file names is opened (see the module's docstring).

    Parameters
    ----------
    path : path
        The model file.
    model : path, optional
        An ``.osim`` file to build the musculoskeletal model from instead of the one the
        model file carries; needed for files of formats 1 and 2 fitted on an ``.osim`` (they
        named its path and did not carry it). The muscles must be those the file was fitted
        with.
    device : str or torch.device, optional
        Where the loaded estimator runs (its ``device`` parameter): the weights are mapped
        there. None: the device it was saved with; a model saved with ``device="cuda"``
        then needs ``device="cpu"`` on a machine without a GPU (the error says so).

    Returns
    -------
    NMMRegressor
        Fitted.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A file that is not a deepemg model (a pickle or joblib file included: it is refused,
        not loaded), a damaged file, an entry over the limits, a malformed setting or fitted
        field (named), a newer format, a model path it names without carrying the file, or
        weights that do not fit the estimator they describe.
    OSError
        The carried ``.osim`` cannot be written to deepemg's cache folder.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file; save one with 'deepemg fit'.")
    if model is not None and not isinstance(model, str | os.PathLike):
        raise TypeError(f"model must be the path of an .osim file, got {_short(model)}.")
    if device is not None:
        from .devices import check_device

        device = str(check_device(device))  # a device torch has, or a clear error
    not_a_model = (
        f"{path} is not a model saved by deepemg (deepemg reads only its own zip format and "
        "never loads pickles: save the model again with NMMRegressor.save or 'deepemg fit')"
    )
    with open(path, "rb") as stream:
        _check_directory(stream, path)
        try:
            archive = zipfile.ZipFile(stream)
        except Exception as error:
            # EOFError... from a damaged directory
            raise ValueError(f"{not_a_model}; {_one_line(error)}.") from None
        with archive:
            return _load(_Archive(archive, path), not_a_model, model, device)


def _check_directory(stream, path: Path) -> None:
    """Refuse a file too large, or with too many entries, before reading it.

    Refuse a file larger than :data:`MAX_TOTAL_BYTES`, or whose zip directory lists more
    than :data:`MAX_ENTRIES` entries, before the directory is read into memory.
    """
    size = os.fstat(stream.fileno()).st_size
    limit = MAX_TOTAL_BYTES
    if size > limit:
        raise ValueError(
            f"model file {path} is {size} bytes, more than deepemg reads (MAX_TOTAL_BYTES = "
            f"{limit}); if it is a model you saved, raise deepemg.persistence.MAX_TOTAL_BYTES "
            "to load it."
        )
    end_record = getattr(zipfile, "_EndRecData", None)  # the standard library's own reader
    try:
        record = end_record(stream) if end_record is not None else None
        entries = record[zipfile._ECD_ENTRIES_TOTAL] if record else None  # type: ignore[attr-defined]
    except Exception:
        entries = None
    finally:
        stream.seek(0)
    if isinstance(entries, int) and entries > MAX_ENTRIES:
        raise ValueError(
            f"model file {path} lists {entries} entries, more than a deepemg model has "
            f"(MAX_ENTRIES = {MAX_ENTRIES}): it is damaged or not a deepemg model; "
            f"{_SAVE_AGAIN}."
        )


def _load(archive: _Archive, not_a_model: str, model, device):
    path = archive.path
    try:
        header = archive.json("deepemg.json")
    except KeyError:
        raise ValueError(f"{not_a_model}; it has no deepemg.json.") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{not_a_model}.")
    version = header.get("format_version")
    if not _is_int(version) or version < 1:
        raise ValueError(
            f"model file {path}: its format_version {_short(version)} is not a format "
            f"number; {_EDITED}."
        )
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by deepemg {header.get('deepemg')} in model format "
            f"{version}; this deepemg reads format {FORMAT_VERSION}: update it."
        )
    n_members = header.get("members", 0)
    if not _is_int(n_members) or n_members < 0:
        raise ValueError(
            f"model file {path}: 'members' must be the number of ensemble members, got "
            f"{_short(n_members)}; {_EDITED}."
        )
    models = _Models(archive, header.get("carried"), version, model, n_members)
    where = f"model file {path}"
    ensemble = header.get("class") == "NMMEnsemble"
    if ensemble and not n_members:
        raise ValueError(f"{where}: an NMMEnsemble with no 'members'; {_EDITED}.")
    if not n_members:
        return _read(archive, header, "", where, not_a_model, models, device)
    members = [
        _read_member(archive, k, where, not_a_model, models, device) for k in range(n_members)
    ]
    scale = header.get("uncertainty_scale_")
    if not (_is_real(scale) and math.isfinite(scale) and scale >= 0):
        raise ValueError(
            f"{where}: 'uncertainty_scale_' must be a finite number >= 0, got "
            f"{_short(scale)}; {_EDITED}."
        )
    return _ensemble(header, members, float(scale), where)


def _read_member(archive: _Archive, k: int, where: str, not_a_model: str, models, device):
    """Ensemble member ``k``, from the entries under ``members/<k>/``."""
    prefix = f"members/{k}/"
    try:
        header = archive.json(f"{prefix}deepemg.json")
    except KeyError:
        raise ValueError(
            f"{where}: the entry '{prefix}deepemg.json' of ensemble member {k} is "
            f"missing; {_EDITED}."
        ) from None
    member_where = f"{where} (ensemble member {k})"
    return _read(archive, header, prefix, member_where, not_a_model, models, device)


def _ensemble(header: dict, members: list, scale: float, where: str):
    """The NMMEnsemble of loaded members.

    The NMMEnsemble of the loaded ``members``: its settings from a file of format 4, or
    from an NMMRegressor(n_members=k) of format 3 and before (its n_jobs and seed).
    """
    from sklearn.base import clone

    from .ensemble import NMMEnsemble

    if header.get("class") == "NMMEnsemble":
        params = header.get("params")
        inner = header.get("estimator_random_state")
    else:  # format <= 3: the ensemble's settings were the NMMRegressor's own
        params = dict(header.get("params") or {})
        params = {"n_jobs": params.get("n_jobs"), "random_state": params.get("random_state")}
        params["n_members"] = len(members)
        inner = params["random_state"]
    if isinstance(params, dict):  # written before the members' deep starts: all at 0
        params = {"deep_start_spread": 0.0, **params}
    keys = {"n_members", "deep_start_spread", "n_jobs", "random_state"}
    if not isinstance(params, dict) or set(params) != keys:
        raise ValueError(f"{where}: the ensemble's 'params' are malformed; {_EDITED}.")
    if not (inner is None or _is_int(inner)):
        raise ValueError(f"{where}: 'estimator_random_state' must be an int; {_EDITED}.")
    start = header.get("estimator_deep_start", 0.0)
    if isinstance(start, bool) or not isinstance(start, int | float):
        raise ValueError(f"{where}: 'estimator_deep_start' must be a number; {_EDITED}.")
    template = clone(members[0]).set_params(random_state=inner, deep_start=float(start))
    try:
        ensemble = NMMEnsemble(template, **params)
        ensemble._validate_params()
    except Exception as error:
        raise ValueError(
            f"{where}: the ensemble's settings are invalid ({error}); {_EDITED}."
        ) from None
    return ensemble.set_fitted_state({"estimators_": members, "uncertainty_scale_": scale})


def _history(archive: _Archive, name: str, where: str, required: bool):
    from skorch.history import History

    try:
        rows = archive.json(name)
    except KeyError:
        if not required:
            return None
        raise ValueError(f"{where}: the entry '{name}' is missing; {_EDITED}.") from None
    if not (isinstance(rows, list) and all(isinstance(row, dict) for row in rows)):
        raise ValueError(
            f"{where}: the entry '{name}' must be a list of epochs, got {_short(rows)[:40]}; "
            f"{_EDITED}."
        )
    return History(rows)


def _adequacy(archive: _Archive, name: str, state: dict, where: str) -> dict | None:
    """The saved ``model_adequacy_`` (None in files written before it was kept)."""
    try:
        rows = archive.json(name)
    except KeyError:
        return None
    try:
        return adequacy_from_rows(rows, state["subjects_"].tolist())
    except ValueError as error:
        raise ValueError(f"{where}: {str(error).rstrip('.')}; {_EDITED}.") from None


def _read(archive: _Archive, header, prefix: str, where: str, not_a_model: str, models, device):
    """One fitted network of a model file.

    Read from the settings ``header`` and the entries under ``prefix``, on ``device`` (None:
    the saved one); every field is checked before anything is built from it.
    """
    if not isinstance(header, dict):
        raise ValueError(f"{where}: its settings are not a JSON object; {_EDITED}.")
    weights = _weights(archive, prefix, where, not_a_model)
    history = _history(archive, f"{prefix}history.json", where, required=True)
    personalize = _history(archive, f"{prefix}personalize_history.json", where, required=False)
    params = _read_params(header, where, models.version, device)
    setting = params.pop("model", "elbow")
    estimator = _new_regressor(params)  # the model set below, once all else is checked
    _check_settings(estimator, where)
    state = _fitted_fields(_Fitted(header.get("fitted"), where), models.version)
    state.update(
        module=weights,
        history_=list(history),
        personalize_history_=None if personalize is None else list(personalize),
    )
    adequacy = _adequacy(archive, f"{prefix}model_adequacy.json", state, where)
    # the OpenSim model: built-in, carried or the caller's, never a path the file names
    estimator.model = models.resolve(setting, where)
    try:
        estimator.set_fitted_state(state)
    except ValueError as error:
        advice = _EDITED if models.user is None else "pass the .osim it was fitted with (model=)"
        text = str(error).rstrip(".")
        tail = "" if "(model=)" in text else f"; {advice}."
        raise ValueError(f"{where}: {text}{tail}") from None
    if adequacy is not None:
        estimator.model_adequacy_ = adequacy
    return estimator


def _new_regressor(params: dict):
    from .regressor import NMMRegressor

    return NMMRegressor(**params)


def _weights(archive: _Archive, prefix: str, where: str, not_a_model: str) -> dict:
    """The entry ``module.pt`` as a torch state dict (tensors only), checked first."""
    try:
        weights = archive.read(f"{prefix}module.pt")
    except KeyError:
        raise ValueError(f"{not_a_model}; it has no {prefix}module.pt.") from None
    _check_weights_archive(weights, where, not_a_model)
    try:
        return torch.load(io.BytesIO(weights), weights_only=True, map_location="cpu")
    except Exception as error:
        raise ValueError(f"{not_a_model}; its weights do not load: {_one_line(error)}") from None


def _read_params(header: dict, where: str, version: int, device) -> dict:
    """The settings of one network, checked before anything is built from them."""
    from .regressor import NMMRegressor

    if header.get("class", "NMMRegressor") != "NMMRegressor":
        raise ValueError(f"{where}: it holds a {_short(header['class'])}, not an NMMRegressor.")
    params = header.get("params")
    if not isinstance(params, dict):
        raise ValueError(f"{where}: the settings' 'params' are missing or malformed; {_EDITED}.")
    params = dict(params)
    if version <= 3:  # ensembles were NMMRegressor(n_members=k): NMMEnsemble now
        params.pop("n_members", None)
        params.pop("n_jobs", None)
    unknown = sorted(set(params) - set(NMMRegressor().get_params()))
    if unknown:
        raise ValueError(
            f"{where}: the settings {unknown} are no parameters of this deepemg's NMMRegressor "
            "(a file of a newer deepemg? update deepemg, or save the model again)."
        )
    params.setdefault("subject_embedding", 0)  # format 1: no subject codes
    # written before the muscle_law setting: the rigid-tendon DeGrooteFregly2016 law, which
    # "from_model" (the default since 0.6) would not give a file of other muscles
    params.setdefault("muscle_law", "rigid_tendon_degroote_fregly")
    # written before the synergist term (deepemg < 0.6): a warm fit goes on without it
    params.setdefault("synergist_weight", 0.0)
    params.setdefault("synergist_level_weight", 0.0)  # and before its level term (< 0.6)
    if params.get("callbacks") is not None:
        raise ValueError(
            f"{where}: setting 'callbacks' is invalid: a model file holds no callbacks (save "
            f"leaves them out), got {_short(params['callbacks'])}; {_EDITED}."
        )
    _read_device(params, where, device)
    return params


def _read_device(params: dict, where: str, device) -> None:
    """``device`` (the caller's) in ``params``, or a clear error for a CUDA model here."""
    if device is not None:
        params["device"] = device
    elif (
        isinstance(params.get("device"), str)
        and params["device"].startswith("cuda")
        and not torch.cuda.is_available()
    ):
        raise ValueError(
            f"{where} was saved with device={params['device']!r}, but torch sees no CUDA "
            "device here: load it onto the CPU with NMMRegressor.load(path, device='cpu') "
            "(deepemg predict does so by itself)."
        )


def _fitted_fields(fitted: _Fitted, version: int) -> dict:
    """The fitted fields of ``deepemg.json``, each checked for its type and shape."""
    from .channels import ChannelLayout
    from .features import emg_input_channels

    muscles = fitted.get(
        "muscles_",
        lambda v: _is_str_list(v) and len(v) > 0 and len(set(v)) == len(v),
        "a non-empty list of distinct muscle names (str)",
    )
    n_channels = fitted.get("n_channels_", lambda v: _is_int(v) and v >= 1, "an int >= 1")
    channels = fitted.get(
        "channels_",
        lambda v: _is_str_list(v) and len(v) == n_channels,
        f"a list of n_channels_ = {n_channels} channel names (str)",
    )
    torque_scale = fitted.get(
        "torque_scale_",
        lambda v: _is_real(v) and math.isfinite(v) and v > 0,
        "a finite number > 0",
    )
    unmeasured = fitted.get(
        "unmeasured",
        lambda v: (
            isinstance(v, list)
            and all(_is_int(j) and 0 <= j < len(muscles) for j in v)
            and len(set(v)) == len(v)
        ),
        f"a list of distinct muscle indices below {len(muscles)}",
    )
    emg = emg_input_channels(channels, muscles, "auto")
    kinematic = len(ChannelLayout("joint").inputs)
    sizes = sorted({kinematic, kinematic + len(emg)})
    state = {
        "muscles_": list(muscles),
        "subjects_": _labels(fitted, old=version < 3),
        "n_channels_": int(n_channels),
        "channels_": list(channels),
        "torque_scale_": float(torque_scale),
        "unmeasured": list(unmeasured),
    }
    for name in _FITTED_ARRAYS:
        values = fitted.get(
            name,
            lambda v, name=name, sizes=sizes: (
                isinstance(v, list)
                and len(v) in sizes
                and all(_is_real(x) and math.isfinite(x) for x in v)
                and (name != "feature_std_" or all(x > 0 for x in v))
            ),
            f"a list of {' or '.join(map(str, sizes))} finite numbers (the network's inputs' "
            + ("standard deviations, > 0)" if name == "feature_std_" else "means)"),
        )
        state[name] = np.asarray(values, dtype=np.float64)
        sizes = [len(values)]  # the SDs as many as the means
    return state


def save_checkpoint(estimator, net, path) -> None:
    """Write ``estimator`` as its fit would leave it with ``net``'s weights now.

    Used by :class:`~deepemg.nmm_module.NMMCheckpoint`; atomic, ``net`` unchanged.
    """
    import copy

    from sklearn.base import clone

    module = copy.deepcopy(net.module_)
    module.center_codes()
    if not (estimator.warm_start and getattr(estimator, "net_", None) is not None):
        module.center_levels()  # as a fresh fit leaves them (deepemg.training.fit_module)
    state = estimator.get_fitted_state(net=net, module=module)
    snapshot = clone(estimator).set_params(callbacks=None).set_fitted_state(state)
    save_model(snapshot, path, overwrite=True)
