"""Where simulated data sets are kept between calls, and how: ``.npz`` files read without pickle.

A cached data set is a :class:`~sklearn.utils.Bunch` of arrays (numbers or text) and plain
values (str, numbers, lists, dicts, possibly holding arrays). Arrays are stored as arrays of
the ``.npz``; everything else goes into one JSON string stored in the same file (arrays inside
it as tagged lists). The file is read with ``allow_pickle=False``, so a cache file never runs
code, whoever put it there; a file that does not read back as such a data set is reported as
:class:`CacheError` for the caller to regenerate it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils import Bunch

from .._files import write_whole

__all__ = ["CacheError", "cache_key", "get_data_home", "load_bunch", "save_bunch"]

CACHE_SUFFIX = ".npz"
"""Suffix of cache files (the earlier ``.joblib`` caches, pickles, are never read)."""

_META = "__deepemg_meta__"
_FORMAT = "deepemg-bunch-1"
_ARRAY_KINDS = "biufcU"  # bool, integers, floats, complex, unicode: no objects, no bytes
_warned_folders: set[str] = set()


class CacheError(Exception):
    """A cache file that cannot be used (truncated, corrupted, other keys, not ours)."""


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Folder for cached data sets: ``data_home``, else ``$DEEPEMG_DATA``, else the default.

    The default is ``~/.cache/deepemg``. The folder is created if needed; if it cannot be, the
    path is still returned and writing the cache later warns.
    """
    folder = Path(data_home or os.environ.get("DEEPEMG_DATA") or Path.home() / ".cache" / "deepemg")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # reported by save_bunch, which then returns without caching
    return folder


def cache_key(name: str, **arguments: Any) -> str:
    """A file name that changes with every argument (and with the generator's version)."""
    text = json.dumps(arguments, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}{CACHE_SUFFIX}"


# ------------------------------------------------------------------ JSON with arrays inside
def _to_json(value: object) -> object:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"cannot cache an array of dtype {value.dtype} without pickle.")
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str, "shape": value.shape}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot cache a value of type {type(value).__name__} without pickle.")


def _from_json(mapping: dict[str, Any]) -> np.ndarray | dict[str, Any]:
    if set(mapping) == {"__ndarray__", "dtype", "shape"}:
        dtype = np.dtype(mapping["dtype"])
        if dtype.kind not in _ARRAY_KINDS:
            raise CacheError(f"an array of dtype {dtype} in the JSON part")
        return np.array(mapping["__ndarray__"], dtype=dtype).reshape(mapping["shape"])
    return mapping


def _tuples_to_lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_tuples_to_lists(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _tuples_to_lists(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------ save and load
def _warn_unwritable(folder: Path, error: BaseException) -> None:
    key = str(folder)
    if key in _warned_folders:
        return
    _warned_folders.add(key)
    warnings.warn(
        f"Cannot write the data set cache in '{folder}' ({type(error).__name__}: {error}); the "
        "data are returned without caching, and will be simulated again next time. Pass "
        "data_home= (or set $DEEPEMG_DATA) to a writable folder to cache them.",
        UserWarning,
        stacklevel=4,  # the caller of make_elbow_lifting
    )


def save_bunch(path: str | os.PathLike, bunch: Bunch) -> bool:
    """Write ``bunch`` to ``path`` (``.npz``) whole or not at all; True if it was written.

    The file is written to a temporary file in the same folder, then moved over ``path``
    (``os.replace``), so a reader never sees half a file and an earlier cache stays intact if
    writing fails. A folder that cannot be written gives one warning (per folder and process)
    and returns False: the caller goes on without a cache.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    plain: dict[str, Any] = {}
    for key, value in bunch.items():
        if key == _META:
            raise ValueError(f"{_META!r} is reserved.")
        if isinstance(value, np.ndarray) and value.dtype.kind in _ARRAY_KINDS:
            arrays[key] = value
        else:
            plain[key] = _tuples_to_lists(value)
    meta = json.dumps(
        {"format": _FORMAT, "arrays": sorted(arrays), "values": plain}, default=_to_json
    )

    def write(temporary: str) -> None:
        with open(temporary, "wb") as file:
            entries: dict[str, Any] = {**arrays, _META: np.array(meta)}
            np.savez(file, **entries)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path, write)
    except OSError as error:
        _warn_unwritable(path.parent, error)
        return False
    return True


def load_bunch(path: str | os.PathLike, required: tuple[str, ...] = ()) -> Bunch:
    """Read a data set written by :func:`save_bunch`, never running code.

    Raises
    ------
    CacheError
        If the file cannot be read as such a data set (truncated, corrupted, a pickle or any
        other file, a missing key among ``required``...); the message says why.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if _META not in npz.files:
                raise CacheError(f"no {_META!r} entry")
            meta = json.loads(str(npz[_META][()]), object_hook=_from_json)
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise CacheError("not a deepemg data set")
            names = meta["arrays"]
            if sorted(set(npz.files) - {_META}) != sorted(names):
                raise CacheError(f"arrays {sorted(npz.files)} instead of {sorted(names)}")
            data = {name: npz[name] for name in names}
        values = meta["values"]
        if not isinstance(values, dict) or set(values) & set(data):
            raise CacheError("malformed values")
        data.update(values)
    except CacheError:
        raise
    except Exception as error:  # any damage: EOFError, BadZipFile, zlib...
        # (ValueError too for a pickle, which allow_pickle=False refuses to load)
        raise CacheError(f"{type(error).__name__}: {str(error)[:200]}") from None
    missing = [key for key in required if key not in data]
    if missing:
        raise CacheError(f"no {missing}")
    return Bunch(**data)


def load_cached(path: Path, required: tuple[str, ...] = (), stacklevel: int = 3) -> Bunch | None:
    """The data set cached at ``path`` (:func:`load_bunch`), or None: none there or unreadable.

    A damaged file is reported by a warning naming it (it is simulated again and replaced by the
    caller).
    """
    if not path.is_file():
        return None
    try:
        return load_bunch(path, required=required)
    except CacheError as error:
        warnings.warn(
            f"The cached data set '{path}' cannot be read ({error}); simulating it "
            "again and replacing the file.",
            UserWarning,
            stacklevel=stacklevel,
        )
        return None
