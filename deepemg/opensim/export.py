"""Back into OpenSim: a subject's personalised muscles written into the estimator's .osim model."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._files import write_whole
from .model import load_model

if TYPE_CHECKING:
    import opensim as osim

    from ..physics.model import MusculoskeletalModel
    from ..physics.muscle import MuscleLaw
    from ..regressor import NMMRegressor

__all__ = ["export_subject", "read_export_notes"]

_SCALED = (
    ("max_isometric_force", "setMaxIsometricForce", "N"),
    ("optimal_fiber_length", "setOptimalFiberLength", "m"),
    ("tendon_slack_length", "setTendonSlackLength", "m"),
)
"""The muscle law's parameters a subject scales, OpenSim's setter for each, and its unit."""
_NOTES_KEY = "deepemg-parameters:"
"""Starts the notes' machine-readable line (JSON) in the exported model's comment."""
_MODEL_TAG = re.compile(r"<Model\b[^>]*>")


def _subject_row(estimator: NMMRegressor, subject: object) -> tuple[object, int]:
    """The subject's label as stored and its row in the subject parameters."""
    known = np.asarray(estimator.subjects_).tolist()
    label = subject.item() if isinstance(subject, np.generic) else subject
    matches = [k for k, s in enumerate(known) if type(s) is type(label) and s == label]
    matches = matches or [k for k, s in enumerate(known) if s == label]
    if not matches:
        raise ValueError(
            f"No subject {label!r} in this estimator; its subjects are {known}. Export one of "
            "them, or add the subject with personalize(X, y, subject_ids=[...]) first."
        )
    return known[matches[0]], matches[0]


def _source(physics: MusculoskeletalModel) -> Path:
    """The .osim file the estimator's physics was built from."""
    source = physics.fit_report.get("source")
    if not source:
        raise ValueError(
            "This estimator's MusculoskeletalModel was built in memory, not from an .osim "
            "file, so there is no OpenSim model to write. Fit with model='elbow' or the path "
            "of an .osim file (model='my_model.osim') to export subjects."
        )
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(
            f"The OpenSim model the estimator was built from, '{source}', is gone. Put the "
            "file back (or fit again with a file that exists)."
        )
    return source


def _time_constant(g: float, rate: float) -> float:
    """Time constant (s) of the first-order pole ``-g`` of the activation filter at ``rate``."""
    pole = -g
    return 0.0 if pole <= 0 else -1.0 / (rate * math.log(pole))


def _comment_text(text: str) -> str:
    """``text`` made safe inside an XML comment (no ``--``, no trailing ``-``)."""
    while "--" in text:
        text = text.replace("--", "- -")
    return text + " " if text.endswith("-") else text


def _not_in_opensim_lines(parameters: dict[str, Any], rate: float, q0: float) -> list[str]:
    """The notes' lines on the subject parameters an OpenSim model cannot hold."""
    lines = ["Not representable in this OpenSim model, recorded here only:"]
    if "shape_factor" in parameters:
        lines.append(
            "  shape_factor A, the EMG-to-activation nonlinearity a = (exp(A u) - 1)/(exp(A) - 1): "
            + ", ".join(f"{m} {v:.4f}" for m, v in parameters["shape_factor"].items())
        )
    if "g1" in parameters and "g2" in parameters:
        taus = [1000 * _time_constant(parameters[g], rate) for g in ("g1", "g2")]
        lines.append(
            f"  g1 = {parameters['g1']:.4f}, g2 = {parameters['g2']:.4f}: deepemg's second-order "
            f"activation filter at {rate:g} Hz (two first-order stages, time constants "
            f"{taus[0]:.1f} and {taus[1]:.1f} ms), not OpenSim's first-order "
            "activation_time_constant/deactivation_time_constant, left as in the file"
        )
    if "delay" in parameters:
        lines.append(
            f"  delay = {1000 * parameters['delay']:.1f} ms: the electromechanical delay "
            "between EMG and activation"
        )
    if "moment_arm_scale" in parameters:
        lines.append(
            f"  moment_arm_scale = {parameters['moment_arm_scale']:.4f}: scales every moment arm "
            f"(and the length changes about {math.degrees(q0):.1f} deg) in deepemg; the muscle "
            "paths here are the file's"
        )
    return lines


def _notes(
    estimator: NMMRegressor,
    label: object,
    source: Path,
    values: dict[str, np.ndarray],
    written: dict[str, dict[str, float]],
    converted: list[str],
    model: osim.Model,
) -> str:
    """The comment that records the subject's parameters, mapped or not, in the .osim file."""
    from .._version import __version__

    physics = estimator.physics_
    law = physics.muscle_law
    muscles = list(physics.muscles)
    rate = float(estimator.rate)
    tendons = _tendon_words(model, muscles)
    specs = estimator.net_.module_.subject_parameters.specs
    per_muscle = {s.name for s in specs if s.per_muscle}
    parameters: dict[str, Any] = {  # per-muscle ones {muscle: value}, the others a float
        name: (
            dict(zip(muscles, np.asarray(v, dtype=float).tolist(), strict=True))
            if name in per_muscle
            else float(v)
        )
        for name, v in values.items()
    }
    mapped = [name for name, _, _ in _SCALED if name in law.parameter_names]
    q0 = float(physics.reference_angle)
    lines = [
        f"deepemg: the muscles of subject {label!r}, personalised by an NMMRegressor "
        f"(deepemg {__version__})"
        f" from '{source.name}' (coordinate '{physics.coordinate}', muscle law "
        f"'{law.name}').",
        f"Written into the muscles that cross the coordinate (the file's value times the "
        f"subject's scale): {', '.join(mapped)}; every muscle is an OpenSim "
        f"{law.opensim_class}{tendons}, as deepemg models it"
        + (f" (converted from the file: {', '.join(converted)})" if converted else "")
        + ".",
    ]
    for muscle in muscles:
        lines.append(
            f"  {muscle}: "
            + ", ".join(
                f"{name} {written[muscle][name]:.6g} {unit} "
                f"(x {parameters[name + '_scale'][muscle]:.4f})"
                for name, _, unit in _SCALED
                if name in written[muscle]
            )
        )
    lines += _not_in_opensim_lines(parameters, rate, q0)
    locked = getattr(estimator, "locked", None)
    if locked:
        lines.append(f"During the fit the other coordinates were held at {dict(locked)} (rad).")
    lines.append("The subject's parameters (deepemg's units) as JSON, on the next line.")
    record = {
        "subject": label,
        "deepemg": __version__,
        "source": source.name,
        "coordinate": physics.coordinate,
        "muscle_law": law.name,
        "rate": rate,
        "parameters": parameters,
        "written": written,
        "not_in_opensim": [
            n for n in parameters if not (n.endswith("_scale") and n[:-6] in mapped)
        ],
    }
    text = "\n".join(_comment_text(line) for line in lines)
    data = json.dumps(record, ensure_ascii=True).replace("--", "-\\u002d")  # only in strings
    return f"{text}\n{_NOTES_KEY} {data}\n"


def read_export_notes(path: str | os.PathLike) -> dict:
    """The subject's parameters recorded in an ``.osim`` file written by :func:`export_subject`.

    Parameters
    ----------
    path : str or path-like
        The exported ``.osim`` file.

    Returns
    -------
    dict
        ``subject``, ``source``, ``coordinate``, ``muscle_law``, ``rate`` (Hz),
        ``parameters`` (every subject parameter in deepemg's units: per-muscle ones as
        ``{muscle: value}``), ``written`` (``{muscle: {parameter: value}}``, the values set in
        the muscles, N and m) and ``not_in_opensim`` (the parameters the model cannot hold,
        see Notes).

    Raises
    ------
    ValueError
        If the file holds no deepemg notes (OpenSim drops comments when it saves a model
        again).

    Notes
    -----
    What :func:`export_subject` cannot write into an OpenSim model:

    * ``shape_factor`` (A, per muscle): deepemg's EMG-to-activation nonlinearity has no
      OpenSim property.
    * ``g1``, ``g2``: deepemg's activation dynamics is a second-order linear filter (two
      first-order stages; the notes give their time constants at the estimator's ``rate``),
      not OpenSim's first-order ``activation_time_constant`` / ``deactivation_time_constant``,
      which are left as in the file.
    * ``delay``: the electromechanical delay.
    * ``moment_arm_scale``: deepemg scales every moment arm (and length change about the
      mid-range angle); the muscle paths are written as in the file.
    """
    text = Path(path).read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith(_NOTES_KEY):
            return json.loads(line[len(_NOTES_KEY) :])
    raise ValueError(
        f"'{path}' holds no deepemg notes: it was not written by export_subject, or was saved "
        "again by OpenSim (which drops comments)."
    )


def export_subject(
    estimator: NMMRegressor, subject: object, path: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Write the OpenSim model an estimator was fitted on, with one subject's muscles.

    The ``.osim`` file the estimator's physics was built from (the built-in elbow,
    :data:`deepemg.opensim.ELBOW_MODEL_PATH`, or the user's file) is read with OpenSim, its
    muscles are converted as deepemg's muscle law converts them (for the default law every
    muscle becomes a ``DeGrooteFregly2016Muscle`` with ``ignore_tendon_compliance=true``), and
    the muscles that cross the coordinate get the subject's personalised properties: the
    file's ``max_isometric_force``, ``optimal_fiber_length`` and ``tendon_slack_length`` times
    the subject's scales. Loaded in OpenSim, the model's muscle forces are those of deepemg's
    physics driven with the subject's parameters (``tests/opensim/test_export_opensim.py`` checks
    this to 0.1 % RMS).

    What an OpenSim model cannot hold is recorded, not lost, in an XML comment at the top of the
    ``<Model>`` element, readable by people and as JSON (:func:`read_export_notes`, which says
    why ``shape_factor``, ``g1``, ``g2``, ``delay`` and ``moment_arm_scale`` are not in the
    model). Everything else in the file is kept (bodies, joints, coordinates' defaults, muscles
    that do not cross the coordinate, activation and deactivation time constants, muscle paths,
    geometry file names: copy the ``Geometry`` folder beside the new file to see the meshes).
    OpenSim drops comments when it saves a model again, and with them the notes.

    Parameters
    ----------
    estimator : NMMRegressor
        A fitted estimator. For an ensemble, the first member's parameters (as
        ``subject_params_``).
    subject : label
        One of ``estimator.subjects_``.
    path : str or path-like
        The ``.osim`` file to write, in a folder that exists. Written to a temporary file
        beside it and moved into place: ``path`` is the whole new model or, after an error or
        Ctrl-C, as it was.
    overwrite : bool, default=False
        Replace an existing file; without it an existing ``path`` is an error.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        For an unknown subject (the message lists the known ones), an estimator whose model
        was built in memory (no ``.osim`` source), a source file whose muscles have changed
        since the fit, or a ``path`` not ending in ``.osim``.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        If the folder of ``path``, or the source ``.osim``, does not exist.
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.

    See Also
    --------
    deepemg.io.write_muscle_storage : the subject's excitations or activations as a file
        OpenSim reads as controls or states.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> from deepemg.opensim import load_model, read_export_notes
    >>> data = make_elbow_lifting(n_subjects=1, n_trials=2, duration=1.0, random_state=0,
    ...                           progress=False, cache=False)
    >>> nmm = NMMRegressor(max_epochs=1, window=50, random_state=0)
    >>> nmm = nmm.fit(data.X, data.y, subject_ids=data.groups)
    >>> path = export_subject(nmm, "S01", pathlib.Path(tempfile.mkdtemp()) / "S01.osim")
    >>> model = load_model(path)
    >>> bra = model.getMuscles().get("BRA")
    >>> bra.getConcreteClassName(), bra.get_ignore_tendon_compliance()
    ('DeGrooteFregly2016Muscle', True)
    >>> notes = read_export_notes(path)
    >>> notes["subject"], sorted(notes["not_in_opensim"])
    ('S01', ['delay', 'emg_level', 'g1', 'g2', 'moment_arm_scale', 'shape_factor'])
    """
    _check_estimator(estimator)
    path = _output_path(path, overwrite)
    label, row = _subject_row(estimator, subject)
    source = _source(estimator.physics_)
    values = _subject_values(estimator, row)
    model = load_model(source)
    converted, in_file = _convert_unchanged(model, estimator.physics_, source)
    written = _write_scaled(model, estimator.physics_, in_file, values)
    notes = _notes(estimator, label, source, values, written, converted, model)
    write_whole(path, _model_writer(model, notes, path))
    return path


def _check_estimator(estimator: object) -> None:
    """A fitted NMMRegressor, or a TypeError or NotFittedError."""
    from sklearn.utils.validation import check_is_fitted

    kind = type(estimator)  # an NMMRegressor: its fitted state and its subjects' parameters
    if not (callable(getattr(kind, "get_fitted_state", None)) and hasattr(kind, "subject_params_")):
        raise TypeError(
            f"export_subject takes a fitted NMMRegressor, got {type(estimator).__name__}."
        )
    check_is_fitted(estimator, "net_")


def _output_path(path: str | os.PathLike, overwrite: bool) -> Path:
    """``path`` as a Path, checked: an ``.osim`` file name, new or ``overwrite``, in a folder."""
    path = Path(path)
    if path.suffix.lower() != ".osim":
        raise ValueError(f"'{path}' does not end in .osim: name the model file <name>.osim.")
    if path.exists() and not overwrite:
        raise FileExistsError(f"'{path}' exists; pass overwrite=True to replace it.")
    if path.is_dir():
        raise IsADirectoryError(f"'{path}' is a folder; give the path of a file to write.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"No folder '{path.parent}' to write '{path.name}' in; create it.")
    return path


def _subject_values(estimator: NMMRegressor, row: int) -> dict[str, np.ndarray]:
    """The subject parameters of row ``row`` (deepemg's units), as float64 arrays."""
    import torch

    with torch.no_grad():
        table = estimator.net_.module_.muscle_parameters(torch.tensor([row]))  # as it models
    return {name: v[0].detach().cpu().double().numpy() for name, v in table.items()}


def _getters(law: MuscleLaw) -> tuple:
    """``(parameter, OpenSim getter)`` for each of the muscle law's parameters."""
    return tuple((name, law.opensim_getters[name]) for name in law.parameter_names)


def _convert_unchanged(
    model: osim.Model, physics: MusculoskeletalModel, source: Path
) -> tuple[list[str], dict]:
    """Convert the model's muscles as the law does; a ValueError if they changed since the fit.

    Returns what the conversion changed (for the notes) and the muscles' parameters in the file,
    ``{parameter: array over physics.muscles}``.
    """
    from .builder import _convert, _read_parameters
    from .model import muscle_handles

    law = physics.muscle_law
    muscles = list(physics.muscles)
    converted = _convert(model, law.opensim_conversion)
    muscle_handles(model, muscles)  # a clear error for a muscle missing from the file
    in_file = _read_parameters(model, muscles, law.opensim_class, _getters(law))
    for name in law.parameter_names:
        fitted = getattr(physics, name).detach().cpu().double().numpy()
        changed = np.flatnonzero(~np.isclose(in_file[name], fitted, rtol=1e-12, atol=0.0))
        if changed.size:
            j = int(changed[0])
            raise ValueError(
                f"'{source}' has changed since the estimator was fitted: {muscles[j]}'s {name} "
                f"is {in_file[name][j]!r} in the file, {fitted[j]!r} when fitted. Put back the "
                "file the estimator was fitted with, or fit again on the file as it is now."
            )
    return converted, in_file


def _write_scaled(
    model: osim.Model, physics: MusculoskeletalModel, in_file: dict, values: dict
) -> dict[str, dict[str, float]]:
    """Set each muscle's scaled properties (the file's value times the subject's scale).

    Returns ``{muscle: {parameter: value}}`` as set; a RuntimeError if OpenSim did not take one.
    """
    from .builder import _read_parameters

    law = physics.muscle_law
    muscles = list(physics.muscles)
    written: dict[str, dict[str, float]] = {m: {} for m in muscles}
    for j, muscle_name in enumerate(muscles):
        muscle = model.updMuscles().get(muscle_name)
        for name, setter, _ in _SCALED:
            scale = values.get(f"{name}_scale")
            if name in law.parameter_names and scale is not None:
                value = float(in_file[name][j] * scale[j])
                getattr(muscle, setter)(value)
                written[muscle_name][name] = value
    check = _read_parameters(model, muscles, law.opensim_class, _getters(law))
    for j, muscle_name in enumerate(muscles):
        for name, value in written[muscle_name].items():
            if check[name][j] != value:  # OpenSim did not take the value
                raise RuntimeError(f"OpenSim kept {muscle_name}'s {name} at {check[name][j]}.")
    return written


def _tendon_words(model: osim.Model, muscles: list[str]) -> str:
    """How the muscles' tendons are written, for the notes ("" when they differ)."""
    rigid = {bool(model.getMuscles().get(m).get_ignore_tendon_compliance()) for m in muscles}
    if rigid == {True}:
        return " with a rigid tendon (ignore_tendon_compliance=true)"
    if rigid == {False}:
        return " with a compliant tendon (ignore_tendon_compliance=false)"
    return ""


def _model_writer(model: osim.Model, notes: str, path: Path) -> Callable[[str], None]:
    """A writer for :func:`deepemg._files.write_whole`: the model, the notes after ``<Model>``."""

    def write(temporary: str) -> None:
        if not model.printToXML(temporary):
            raise OSError(f"OpenSim could not write the model to '{path}'.")
        with open(temporary, encoding="utf-8") as stream:
            text = stream.read()
        tag = _MODEL_TAG.search(text)
        if tag is None:
            raise OSError(f"OpenSim wrote no <Model> element for '{path}'.")
        comment = f"\n\t\t<!--\n{notes}\t\t-->"
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(text[: tag.end()] + comment + text[tag.end() :])

    return write
