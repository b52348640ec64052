"""Saving and loading a fitted :class:`~deepemg.NMMRegressor` without pickle.

A model file is a zip archive holding

* ``deepemg.json``: the format, the versions that wrote it, the estimator's parameters and
  its fitted arrays (subjects, muscles, channels, input standardisation, torque scale);
* ``module.pt``: the torch ``state_dict`` of the network, the muscle model and the subject
  parameters (with the subjects' codes when ``subject_embedding > 0``), read back with
  ``torch.load(weights_only=True)`` (tensors only);
* ``history.json`` (and ``personalize_history.json``): the loss history.

Nothing in it can run code when it is loaded: a file that is not such an archive (a pickle, a
joblib file, a truncated download) is refused with a message, never executed. The file is
written to a temporary file beside the target and moved into place when complete, so an
interrupted save leaves any earlier file as it was.

Pickling an estimator (``pickle``, ``joblib``) still works, as scikit-learn users expect, but
a pickle runs code when loaded: load only pickles you wrote yourself.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["FORMAT", "FORMAT_VERSION", "load_model", "save_model"]

FORMAT = "deepemg-model"
"""The ``format`` field of a model file."""
FORMAT_VERSION = 2
"""Bumped when the layout of a model file changes; older readers refuse newer files.
2: the ``subject_embedding`` parameter (and subject codes); files of format 1 are read as
``subject_embedding=0``."""

_FITTED_ARRAYS = ("feature_mean_", "feature_std_")


def _json_params(estimator) -> dict:
    """The estimator's parameters as JSON values, or a clear error for those that are not."""
    from .physics import MusculoskeletalModel

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
        }
    elif isinstance(model, os.PathLike):
        params["model"] = os.fspath(model)
    params["device"] = str(params["device"])
    if params["channels"] is not None:
        params["channels"] = [str(c) for c in params["channels"]]
    if not (params["random_state"] is None or isinstance(params["random_state"], int)):
        params["random_state"] = None  # a RandomState instance: the fit is done anyway
    try:
        json.dumps(params)
    except TypeError as error:
        raise ValueError(f"a parameter of this NMMRegressor cannot be saved: {error}") from None
    return params


def _model_param(value):
    """The ``model`` parameter back from JSON (a MusculoskeletalModel rebuilt from its file)."""
    if isinstance(value, dict):
        from .physics import MusculoskeletalModel

        return MusculoskeletalModel.from_opensim(
            value["osim"],
            value["coordinate"],
            joint=value["joint"],
            muscle_law=value["muscle_law"],
        )
    return value


def _files(estimator, prefix: str) -> dict:
    """The archive entries of one fitted network: settings, fitted arrays, weights, history."""
    subjects = np.asarray(estimator.subjects_)
    header = {
        "class": "NMMRegressor",
        "params": _json_params(estimator),
        "fitted": {
            "muscles_": list(estimator.muscles_),
            "subjects_": subjects.tolist(),
            "subjects_kind": subjects.dtype.kind,
            "n_channels_": int(estimator.n_channels_),
            "channels_": list(estimator.channels_),
            "torque_scale_": float(estimator.torque_scale_),
            "unmeasured": list(estimator.net_.criterion_.unmeasured),
            **{k: np.asarray(getattr(estimator, k)).tolist() for k in _FITTED_ARRAYS},
        },
    }
    weights = io.BytesIO()
    torch.save(estimator.net_.module_.state_dict(), weights)
    files = {
        f"{prefix}deepemg.json": json.dumps(header, indent=1),
        f"{prefix}module.pt": weights.getvalue(),
        f"{prefix}history.json": json.dumps(list(estimator.history_)),
    }
    if getattr(estimator, "personalize_history_", None) is not None:
        history = json.dumps(list(estimator.personalize_history_))
        files[f"{prefix}personalize_history.json"] = history
    return files


def save_model(estimator, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a fitted NMMRegressor to ``path`` in deepemg's model format (no pickle).

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
    from . import __version__
    from .regressor import NMMRegressor

    if not isinstance(estimator, NMMRegressor) or not hasattr(estimator, "net_"):
        raise TypeError("save_model takes a fitted NMMRegressor.")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"no folder {path.parent} to save {path.name} in.")
    files = _files(estimator, "")
    header = json.loads(files["deepemg.json"])
    header.update(format=FORMAT, format_version=FORMAT_VERSION, deepemg=__version__)
    header.update(torch=torch.__version__)
    members = getattr(estimator, "members_", None) or []
    if members:
        header["members"] = len(members)
        header["uncertainty_scale_"] = float(estimator.uncertainty_scale_)
        for k, member in enumerate(members):
            files.update(_files(member, f"members/{k}/"))
    files["deepemg.json"] = json.dumps(header, indent=1)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream, zipfile.ZipFile(stream, "w") as archive:
            for name, content in files.items():
                archive.writestr(name, content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_model(path: str | os.PathLike):
    """Read an NMMRegressor written by :func:`save_model`; nothing in the file is executed.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A file that is not a deepemg model (a pickle or joblib file included: it is refused,
        not loaded), a newer format, or weights that do not fit the estimator they describe.
    """

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file; save one with 'deepemg fit'.")
    not_a_model = (
        f"{path} is not a model saved by deepemg (deepemg reads only its own zip format and "
        "never loads pickles: save the model again with NMMRegressor.save or 'deepemg fit')"
    )
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {name: archive.read(name) for name in archive.namelist()}
        header = json.loads(entries["deepemg.json"])
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{not_a_model}; {type(error).__name__}: {error}.") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{not_a_model}.")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by deepemg {header.get('deepemg')} in model format "
            f"{header['format_version']}; this deepemg reads format {FORMAT_VERSION}: update it."
        )
    estimator = _read(entries, "", path, not_a_model)
    n_members = int(header.get("members", 0))
    if n_members:
        members = [_read(entries, f"members/{k}/", path, not_a_model) for k in range(n_members)]
        estimator.uncertainty_scale_ = float(header["uncertainty_scale_"])
        estimator._adopt(members)
    return estimator


def _read(entries: dict, prefix: str, path: Path, not_a_model: str):
    """One fitted network from the archive entries under ``prefix``."""
    from skorch.history import History

    from .physics import MusculoskeletalModel
    from .regressor import NMMRegressor

    try:
        header = json.loads(entries[f"{prefix}deepemg.json"])
        weights = entries[f"{prefix}module.pt"]
        history = json.loads(entries[f"{prefix}history.json"])
        personalize = entries.get(f"{prefix}personalize_history.json")
        personalize = None if personalize is None else json.loads(personalize)
    except (KeyError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{not_a_model}; {type(error).__name__}: {error}.") from None
    try:
        state = torch.load(io.BytesIO(weights), weights_only=True, map_location="cpu")
    except Exception as error:  # torch raises several kinds for bad or unsafe content
        raise ValueError(f"{not_a_model}; its weights do not load: {error}") from None

    params = dict(header["params"])
    params.setdefault("subject_embedding", 0)  # format 1: no subject codes
    params["model"] = _model_param(params["model"])
    estimator = NMMRegressor(**params)
    fitted = header["fitted"]
    physics = MusculoskeletalModel.resolve(
        params["model"], params["coordinate"], params["locked"], estimator.muscle_law
    )
    if list(physics.muscles) != fitted["muscles_"]:
        raise ValueError(
            f"{path} was fitted with the muscles {fitted['muscles_']}, but its model now has "
            f"{list(physics.muscles)}: has the .osim file changed?"
        )
    estimator.physics_ = physics
    estimator.muscles_ = list(fitted["muscles_"])
    kind = fitted.get("subjects_kind", "U")
    estimator.subjects_ = np.asarray(fitted["subjects_"], dtype=None if kind in "iu" else str)
    estimator.n_channels_ = int(fitted["n_channels_"])
    estimator.channels_ = list(fitted["channels_"])
    estimator.torque_scale_ = float(fitted["torque_scale_"])
    for name in _FITTED_ARRAYS:
        setattr(estimator, name, np.asarray(fitted[name], dtype=np.float64))
    module = estimator._module(physics, len(estimator.feature_mean_), len(estimator.subjects_))
    net = estimator._net(
        module,
        criterion=estimator._criterion_params(fitted["unmeasured"]),
        optimizer=estimator._optimizer_params(),
        max_epochs=int(estimator.max_epochs),
        seed=0,
        schedule=True,
        validation=False,
    )
    net.initialize()
    try:
        net.module_.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"{path}: the saved weights do not fit the estimator they describe (has the .osim "
            f"file changed since?): {str(error).splitlines()[0]}"
        ) from None
    net.module_.eval()
    net.history = History(history)
    estimator.net_ = net
    estimator.history_ = net.history
    if personalize is not None:
        estimator.personalize_history_ = History(personalize)
    return estimator
