"""Model files that are hostile or damaged: refused with a message, never trusted.

A model file (``NMMRegressor.save``) may come from someone else or be cut short by a download:
loading it must not exhaust memory (zip bombs), must not fail with a traceback of the zip
machinery, must check every setting and fitted field it reads, must give subject labels back
as they were, and must not make deepemg open a file the model file merely names.
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import struct
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone

from deepemg import NMMEnsemble, NMMRegressor
from deepemg import persistence as persistence_module
from deepemg.channels import layout_for
from deepemg.cli import main
from deepemg.opensim import MuscleConversionWarning, build_model
from deepemg.persistence import load_model

from ..conftest import ARM26_LOCKED, ARM26_PATH, FAST_NMM

MiB = 2**20


@pytest.fixture(scope="module")
def data(two_subjects):
    return two_subjects


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    """deepemg's cache folder (where carried .osim files are written) in a temporary folder."""
    home = tmp_path / "data_home"
    monkeypatch.setenv("DEEPEMG_DATA", str(home))
    return home


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory) -> Path:
    """The module's fitted model, saved once (tests copy it before changing it)."""
    return fitted.save(tmp_path_factory.mktemp("saved") / "nmm.deepemg")


# ---------------------------------------------------------------------------- helpers
def entries(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write(path, files: dict, compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def edited(source, target, change, name="deepemg.json") -> Path:
    """``source`` with the JSON entry ``name`` changed in place by ``change(value)``."""
    files = entries(source)
    value = json.loads(files[name])
    change(value)
    files[name] = json.dumps(value)
    return write(target, files)


def local_header(blob: bytes, name: str) -> int:
    with zipfile.ZipFile(_io(blob)) as archive:
        return archive.getinfo(name).header_offset


def central_header(blob: bytes, name: str) -> int:
    start = 0
    while (start := blob.find(b"PK\x01\x02", start)) >= 0:
        length = struct.unpack_from("<H", blob, start + 28)[0]
        if blob[start + 46 : start + 46 + length] == name.encode():
            return start
        start += 4
    raise AssertionError(f"no central header for {name}")


def patched(blob: bytes, name: str, local_offset: int, central_offset: int, value: int) -> bytes:
    """``blob`` with a 2-byte field of ``name``'s local and central headers set to ``value``."""
    data = bytearray(blob)
    struct.pack_into("<H", data, local_header(blob, name) + local_offset, value)
    struct.pack_into("<H", data, central_header(blob, name) + central_offset, value)
    return bytes(data)


def data_offset(blob: bytes, name: str) -> int:
    start = local_header(blob, name)
    name_length, extra_length = struct.unpack_from("<HH", blob, start + 26)
    return start + 30 + name_length + extra_length


def _io(blob: bytes):
    import io

    return io.BytesIO(blob)


def bomb(path, name: str, size: int, files: dict | None = None) -> Path:
    """A model file whose entry ``name`` inflates to ``size`` bytes of zeros (~1000:1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for other, content in (files or {}).items():
            if other != name:
                archive.writestr(other, content)
        with archive.open(name, "w", force_zip64=True) as stream:
            chunk = bytes(MiB)
            for _ in range(size // MiB):
                stream.write(chunk)
    return path


def peak_memory(function) -> int:
    """The peak of Python's allocations (bytes) while ``function`` runs (its error kept)."""
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def refused(function, match: str) -> str:
    with pytest.raises(ValueError, match=match) as error:
        function()
    message = str(error.value)
    assert "\n" not in message, message
    return message


# ---------------------------------------------------------------------------- 1. zip bombs
def test_entries_the_format_does_not_define_are_never_read(saved, data, tmp_path):
    """A 100 MiB bomb and a corrupt stream beside the model's entries: never inflated."""
    path = bomb(tmp_path / "extra.deepemg", "padding.bin", 100 * MiB, entries(saved))
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("broken.bin", b"x" * 1000)
    blob = path.read_bytes()
    start = data_offset(blob, "broken.bin")
    path.write_bytes(blob[:start] + b"\xff" + blob[start + 1 :])
    assert path.stat().st_size < 2 * MiB
    loaded = {}
    peak = peak_memory(lambda: loaded.setdefault("model", load_model(path)))
    assert peak < 32 * MiB, f"{peak / MiB:.0f} MiB"
    np.testing.assert_array_equal(
        loaded["model"].predict(data.X), NMMRegressor.load(saved).predict(data.X)
    )


@pytest.mark.parametrize("name", ["module.pt", "history.json", "deepemg.json"])
def test_a_bomb_in_an_entry_is_refused_before_it_is_inflated(saved, tmp_path, name):
    """An entry that inflates past MAX_ENTRY_BYTES (64 MiB): refused, at little memory."""
    path = bomb(tmp_path / "bomb.deepemg", name, 100 * MiB, entries(saved))
    assert path.stat().st_size < MiB
    messages = []
    peak = peak_memory(lambda: messages.append(refused(lambda: load_model(path), name)))
    assert peak < 32 * MiB, f"{peak / MiB:.0f} MiB"
    assert str(path) in messages[0], messages[0]
    assert "MAX_ENTRY_BYTES" in messages[0], messages[0]


def test_the_limits_hold_while_reading(saved, tmp_path, monkeypatch):
    """Module-level limits, enforced on what is read (per entry, and in all)."""
    files = entries(saved)
    files["history.json"] = json.dumps([{"epoch": k, "pad": " " * 1000} for k in range(300)])
    path = write(tmp_path / "long.deepemg", files, zipfile.ZIP_DEFLATED)
    load_model(path)  # the default limits are generous
    monkeypatch.setattr(persistence_module, "MAX_ENTRY_BYTES", 200_000, raising=False)
    refused(lambda: load_model(path), r"history\.json.*MAX_ENTRY_BYTES")
    monkeypatch.undo()
    # inflated, the entries hold more than the file on disk: the total counts what is read
    size, total = path.stat().st_size, sum(len(c) for c in entries(path).values())
    assert size < total // 2
    monkeypatch.setattr(persistence_module, "MAX_TOTAL_BYTES", total // 2, raising=False)
    refused(lambda: load_model(path), r"history\.json.*MAX_TOTAL_BYTES")


def test_a_directory_of_many_entries_is_refused_before_it_is_listed(saved, tmp_path):
    files = {**entries(saved), **{f"x/{k}": b"" for k in range(5000)}}
    path = write(tmp_path / "many.deepemg", files)
    refused(lambda: load_model(path), rf"{len(files)} entries.*MAX_ENTRIES")


# ---------------------------------------------------------------------------- 2. damage
def deflated(saved, tmp_path) -> bytes:
    return write(tmp_path / "deflated.deepemg", entries(saved), zipfile.ZIP_DEFLATED).read_bytes()


def corrupt_stream(blob: bytes, name: str) -> bytes:
    start = data_offset(blob, name)  # a deflate block of the reserved type 3: zlib.error
    return blob[:start] + b"\xff" + blob[start + 1 :]


def lose_a_chunk(blob: bytes, name: str) -> bytes:
    """A part of ``name``'s data lost, the rest of the file (its directory) intact."""
    start = data_offset(blob, name)
    return blob[: start + 100] + blob[start + 1100 :]


DAMAGE = {
    "corrupt deflate stream of module.pt": lambda blob: corrupt_stream(blob, "module.pt"),
    "corrupt deflate stream of deepemg.json": lambda blob: corrupt_stream(blob, "deepemg.json"),
    "unsupported compression method": lambda blob: patched(blob, "module.pt", 8, 10, 99),
    "encryption flag": lambda blob: patched(blob, "module.pt", 6, 8, 1),
    "a chunk lost in the middle": lambda blob: lose_a_chunk(blob, "module.pt"),
    "cut in half": lambda blob: blob[: len(blob) // 2],
    "cut before its directory": lambda blob: blob[: blob.find(b"PK\x01\x02")],
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_file_gives_one_line_saying_to_save_again(saved, tmp_path, damage):
    path = tmp_path / "damaged.deepemg"
    path.write_bytes(damage(deflated(saved, tmp_path)))
    message = refused(lambda: load_model(path), "save the model again")
    assert str(path) in message, message


@pytest.mark.parametrize("damage", ["corrupt deflate stream of module.pt", "encryption flag"])
def test_the_command_reports_a_damaged_file_without_a_traceback(saved, tmp_path, capsys, damage):
    path = tmp_path / "damaged.deepemg"
    path.write_bytes(DAMAGE[damage](deflated(saved, tmp_path)))
    argv = ["predict", str(path), "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "error:" in err, err
    assert "save the model again" in err, err
    assert "Traceback" not in err, err
    assert err.count("\n") == 1, err


# ---------------------------------------------------------------------------- 3. settings
def fitted_field(name, value):
    def change(header):
        header["fitted"][name] = value

    return change


def setting(name, value):
    def change(header):
        header["params"][name] = value

    return change


def without(name):
    def change(header):
        del header["fitted"][name]

    return change


MALFORMED = {
    "no muscles_": (without("muscles_"), r"'muscles_' is missing"),
    "no channels_": (without("channels_"), r"'channels_' is missing"),
    "no fitted fields": (lambda h: h.pop("fitted"), r"'fitted'"),
    "channels_ a number": (fitted_field("channels_", 5), r"'channels_'"),
    "channels_ of the wrong length": (fitted_field("channels_", ["a", "b"]), r"'channels_'"),
    "muscles_ a string": (fitted_field("muscles_", "BRA"), r"'muscles_'"),
    "n_channels_ a float": (fitted_field("n_channels_", 7.5), r"'n_channels_'"),
    "subjects_ a string": (fitted_field("subjects_", "S01"), r"'subjects_'"),
    "subjects_ of dicts": (fitted_field("subjects_", [{}, {}]), r"'subjects_'"),
    "feature_mean_ with NaN": (fitted_field("feature_mean_", [0.1, float("nan"), 0, 0]), "mean"),
    "feature_mean_ too short": (fitted_field("feature_mean_", [0.1, 0.2]), r"'feature_mean_'"),
    "feature_std_ zero": (fitted_field("feature_std_", [1.0, 0.0, 1.0, 1.0]), r"'feature_std_'"),
    "torque_scale_ negative": (fitted_field("torque_scale_", -1.0), r"'torque_scale_'"),
    "torque_scale_ a string": (fitted_field("torque_scale_", "1"), r"'torque_scale_'"),
    "unmeasured out of range": (fitted_field("unmeasured", [99]), r"'unmeasured'"),
    "device bogus": (setting("device", "bogus"), r"setting 'device' is invalid"),
    "predict_physics bogus": (
        setting("predict_physics", "bogus"),
        r"setting 'predict_physics' is invalid: .*'torque'",
    ),
    "window a string": (setting("window", "50"), r"setting 'window' is invalid"),
    "lr NaN": (setting("lr", float("nan")), r"setting 'lr' is invalid"),
    "locked values not numbers": (setting("locked", {"a": "x"}), r"setting 'locked' is invalid"),
    "channels not strings": (setting("channels", [1, 2]), r"setting 'channels' is invalid"),
    "an unknown setting": (setting("bogus", 1), r"'bogus'"),
    "params not a dict": (lambda h: h.__setitem__("params", [1]), r"'params'"),
    "members not a count": (lambda h: h.__setitem__("members", "2"), r"'members'"),
    "format_version a string": (lambda h: h.__setitem__("format_version", "3"), "format"),
}


@pytest.mark.parametrize(("change", "match"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_settings_are_refused_naming_the_field(saved, tmp_path, change, match):
    path = edited(saved, tmp_path / "edited.deepemg", change)
    message = refused(lambda: load_model(path), match)
    assert str(path) in message, message


def test_a_malformed_history_is_refused(saved, tmp_path):
    path = write(tmp_path / "h.deepemg", {**entries(saved), "history.json": b'{"a": 1}'})
    assert str(path) in refused(lambda: load_model(path), r"history\.json")


# ---------------------------------------------------------------------------- 4. subjects
LABELS = {
    "int": np.array([3, 7]),
    "int32": np.array([3, 7], dtype=np.int32),
    "float": np.array([1.5, 2.0]),
    "bool": np.array([False, True]),
    "str": np.array(["a", "S02"]),
    "wide str": np.array(["a", "b"], dtype="<U10"),
    "mixed int and str": np.array([0, "new"], dtype=object),
}


@pytest.mark.parametrize("labels", LABELS.values(), ids=LABELS.keys())
def test_subject_labels_come_back_as_given(fitted, data, tmp_path, labels):
    model = copy.deepcopy(fitted)
    model.subjects_ = labels
    loaded = load_model(model.save(tmp_path / "labels.deepemg"))
    assert loaded.subjects_.dtype == labels.dtype
    assert loaded.subjects_.tolist() == labels.tolist()
    assert [type(v) for v in loaded.subjects_] == [type(v) for v in labels]
    X = data.X[:1]
    for label in labels.tolist():
        np.testing.assert_array_equal(
            loaded.predict_torque(X, [label]), model.predict_torque(X, [label])
        )


@pytest.mark.parametrize(
    "labels",
    [np.array([b"a", b"b"]), np.array([None, "a"], dtype=object), np.array([(1, 2), 3], object)],
    ids=["bytes", "None", "tuple"],
)
def test_subject_labels_of_other_types_are_refused_at_save(fitted, tmp_path, labels):
    model = copy.deepcopy(fitted)
    model.subjects_ = labels
    with pytest.raises(ValueError, match="subject label"):
        model.save(tmp_path / "labels.deepemg")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------- 5. .osim files
@pytest.fixture
def no_opensim(monkeypatch):
    """OpenSim never asked to open a file: the calls it would have had."""
    from deepemg.opensim import builder

    calls = []

    def build_model(path, *args, **kwargs):
        calls.append(str(path))
        raise AssertionError(f"OpenSim asked to open {path}")

    monkeypatch.setattr(builder, "build_model", build_model)
    return calls


OUTSIDE = {
    "/etc/passwd": "/etc/passwd",
    "an .osim outside": str(ARM26_PATH),
    "a relative path": "../../model.osim",
    "a dict": {
        "osim": "/etc/passwd",
        "coordinate": "r_elbow_flex",
        "joint": "elbow",
        "muscle_law": "rigid_tendon_degroote_fregly",
    },
    "the carried entry's name, nothing carried": "model.osim",
}


@pytest.mark.parametrize("value", OUTSIDE.values(), ids=OUTSIDE.keys())
def test_a_model_file_cannot_point_at_a_file(saved, tmp_path, no_opensim, value):
    path = edited(saved, tmp_path / "pointer.deepemg", setting("model", value))
    message = refused(lambda: load_model(path), r"OpenSim model.*model=")
    assert str(path) in message
    assert no_opensim == []


def test_an_old_file_naming_a_path_loads_only_with_model(saved, tmp_path, no_opensim):
    def old(header):
        header["format_version"] = 2
        header["params"]["model"] = str(ARM26_PATH)

    path = edited(saved, tmp_path / "old.deepemg", old)
    refused(lambda: load_model(path), r"format 2.*model=")
    assert no_opensim == []


@pytest.fixture(scope="module")
def arm26_fit(data, arm26_with_load, tmp_path_factory):
    """An NMM fitted on Arm26 (a .osim of the user's, in a folder of the user's)."""
    folder = tmp_path_factory.mktemp("user")
    osim = Path(shutil.copy(arm26_with_load, folder / "my_arm.osim"))
    elbow, arm = layout_for("elbow"), layout_for(str(osim), "r_elbow_flex")
    rename = dict(zip(elbow.base, arm.base, strict=True))
    channels = [rename.get(c, c) for c in data.channels]
    muscles = ["TRIlong", "TRIlat", "TRImed", "BIClong", "BICshort", "BRA"]
    y = data.y[..., [list(data.muscles).index(m) for m in muscles]]
    model = NMMRegressor(
        model=str(osim), locked=ARM26_LOCKED, channels=channels, random_state=0, **FAST_NMM
    )
    return model.fit(data.X, y, subject_ids=data.groups), osim


def fitted_y(data) -> np.ndarray:
    """``data.y``'s columns of Arm26's six muscles."""
    muscles = ["TRIlong", "TRIlat", "TRImed", "BIClong", "BICshort", "BRA"]
    return data.y[..., [list(data.muscles).index(m) for m in muscles]]


def test_a_model_file_carries_its_osim(arm26_fit, data, tmp_path, data_home):
    model, osim = arm26_fit
    path = model.save(tmp_path / "arm.deepemg")
    files = entries(path)
    assert files["model.osim"] == osim.read_bytes()
    header = json.loads(files["deepemg.json"])
    assert header["format_version"] >= 3
    assert header["params"]["model"] == "model.osim"
    expected = model.predict(data.X)
    moved = Path(shutil.move(osim, tmp_path / "elsewhere.osim"))
    try:
        loaded = load_model(path)
        np.testing.assert_array_equal(loaded.predict(data.X), expected)
        np.testing.assert_array_equal(
            loaded.predict_torque(data.X, data.groups), model.predict_torque(data.X, data.groups)
        )
        cached = list((data_home / "models").iterdir())
        assert [p.read_bytes() for p in cached] == [moved.read_bytes()]
        assert Path(loaded.model) == cached[0]
        stamp = cached[0].stat().st_mtime_ns
        NMMRegressor.load(path)  # the cached copy is reused
        assert cached[0].stat().st_mtime_ns == stamp
        cached[0].write_text("tampered")  # a cached copy that differs is written again
        np.testing.assert_array_equal(load_model(path).predict(data.X), expected)
        assert cached[0].read_bytes() == moved.read_bytes()
        # a loaded model saves again, carrying the same file
        again = load_model(loaded.save(tmp_path / "again.deepemg"))
        np.testing.assert_array_equal(again.predict(data.X), expected)
        # the user may pass the .osim to use instead
        mine = NMMRegressor.load(path, model=moved)
        assert Path(mine.model) == moved
        np.testing.assert_array_equal(mine.predict(data.X), expected)
    finally:
        shutil.move(moved, osim)


def test_an_ensemble_carries_its_osim_once(arm26_fit, data, tmp_path):
    single, _ = arm26_fit
    ensemble = NMMEnsemble(NMMRegressor(**single.get_params()), n_members=2, n_jobs=1)
    y = data.y[..., [list(data.muscles).index(m) for m in single.muscles_]]
    path = ensemble.fit(data.X, y, subject_ids=data.groups).save(tmp_path / "ensemble.deepemg")
    files = entries(path)
    assert [name for name in files if name.endswith(".osim")] == ["model.osim"]
    for k in range(2):
        assert json.loads(files[f"members/{k}/deepemg.json"])["params"]["model"] == "model.osim"
    loaded = load_model(path)
    for a, b in zip(
        loaded.predict(data.X, return_std=True),
        ensemble.predict(data.X, return_std=True),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def test_a_cache_folder_that_cannot_be_written_is_reported(arm26_fit, tmp_path, monkeypatch):
    model, _ = arm26_fit
    path = model.save(tmp_path / "arm.deepemg")
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DEEPEMG_DATA", str(blocker / "cache"))
    with pytest.raises(OSError, match=r"DEEPEMG_DATA.*model="):
        load_model(path)


def test_a_model_passed_with_other_muscles_is_refused(arm26_fit, tmp_path):
    from deepemg.opensim import ELBOW_MODEL_PATH

    model, _ = arm26_fit
    path = model.save(tmp_path / "arm.deepemg")
    refused(lambda: load_model(path, model=ELBOW_MODEL_PATH), r"does not build.*model=")
    saved_elbow = edited(path, tmp_path / "elbow.deepemg", setting("model", "elbow"))
    refused(lambda: load_model(saved_elbow, model=ELBOW_MODEL_PATH), "built-in 'elbow'")


def test_a_carried_osim_that_does_not_match_its_hash_is_refused(arm26_fit, tmp_path, no_opensim):
    model, _ = arm26_fit
    files = entries(model.save(tmp_path / "arm.deepemg"))
    files["model.osim"] = files["model.osim"].replace(b"BRA", b"XYZ")
    path = write(tmp_path / "swapped.deepemg", files)
    assert str(path) in refused(lambda: load_model(path), r"model\.osim.*sha256")
    assert no_opensim == []


def test_an_old_file_with_an_osim_path_loads_with_model(arm26_fit, data, tmp_path):
    model, osim = arm26_fit

    def old(header):
        header["format_version"] = 2
        header["params"]["model"] = str(osim)
        header.pop("carried")
        header["fitted"]["subjects_kind"] = "U"

    files = entries(model.save(tmp_path / "arm.deepemg"))
    del files["model.osim"]
    path = edited(write(tmp_path / "a.deepemg", files), tmp_path / "old.deepemg", old)
    refused(lambda: load_model(path), "model=")
    loaded = NMMRegressor.load(path, model=osim)
    np.testing.assert_array_equal(loaded.predict(data.X), model.predict(data.X))


def test_a_file_from_before_the_muscle_law_setting_keeps_the_converted_muscles(
    arm26_fit, data, tmp_path
):
    """A file without the muscle_law setting was fitted with the rigid-tendon
    DeGrooteFregly2016 law, not with the file's own muscles (the default since 0.6)."""
    fitted, _ = arm26_fit
    assert fitted.physics_.muscle_law.name == "compliant_tendon_thelen2003"  # "from_model"
    model = clone(fitted).set_params(muscle_law="rigid_tendon_degroote_fregly", max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MuscleConversionWarning)
        model.fit(data.X[:2], fitted_y(data)[:2])
    path = edited(
        model.save(tmp_path / "arm.deepemg"),
        tmp_path / "old.deepemg",
        lambda header: header["params"].pop("muscle_law"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MuscleConversionWarning)
        loaded = load_model(path)
    assert loaded.muscle_law == "rigid_tendon_degroote_fregly"
    np.testing.assert_array_equal(loaded.predict(data.X[:2]), model.predict(data.X[:2]))


def test_a_musculoskeletal_model_from_an_osim_is_carried(data, tmp_path, arm26_with_load):
    osim = Path(shutil.copy(arm26_with_load, tmp_path / "arm.osim"))
    arm = build_model(osim, "r_elbow_flex", ARM26_LOCKED, joint="arm")
    rename = dict(zip(layout_for("elbow").base, layout_for(arm).base, strict=True))
    channels = [rename.get(c, c) for c in data.channels]
    y = data.y[..., [list(data.muscles).index(m) for m in arm.muscles]]
    model = NMMRegressor(model=arm, channels=channels, random_state=0, **FAST_NMM)
    path = model.fit(data.X, y, data.groups).save(tmp_path / "arm.deepemg")
    osim.unlink()
    loaded = load_model(path)
    assert loaded.model.joint == "arm"
    assert loaded.model.coordinate == "r_elbow_flex"
    assert loaded.model is loaded.physics_
    assert loaded.muscles_ == arm.muscles
    angle = torch.linspace(*arm.coordinate_range, 7, dtype=torch.float64)
    torch.testing.assert_close(loaded.physics_.moment_arm(angle), arm.moment_arm(angle))
    weights = model.net_.module_.state_dict()
    for name, value in loaded.net_.module_.state_dict().items():
        torch.testing.assert_close(value, weights[name], rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.predict(data.X), model.predict(data.X))


def test_a_musculoskeletal_model_keeps_its_locked_pose(data, tmp_path, arm26_with_load):
    """A MusculoskeletalModel built with the shoulder locked at 0.5 rad was saved without
    its locked coordinates and reloaded at the default pose: other moment arms, the same
    muscle names, silently other predictions."""
    osim = Path(shutil.copy(arm26_with_load, tmp_path / "arm.osim"))
    arm = build_model(osim, "r_elbow_flex", {"r_shoulder_elev": 0.5})
    rename = dict(zip(layout_for("elbow").base, layout_for(arm).base, strict=True))
    channels = [rename.get(c, c) for c in data.channels]
    y = data.y[..., [list(data.muscles).index(m) for m in arm.muscles]]
    model = NMMRegressor(model=arm, channels=channels, random_state=0, **FAST_NMM)
    loaded = load_model(model.fit(data.X, y).save(tmp_path / "arm.deepemg"))
    angle = torch.linspace(*arm.coordinate_range, 7, dtype=torch.float64)
    torch.testing.assert_close(
        loaded.physics_.musculotendon_length(angle), arm.musculotendon_length(angle)
    )  # the biarticular muscles' lengths depend on the shoulder (18 mm at 0.5 rad)
    np.testing.assert_array_equal(loaded.predict_torque(data.X), model.predict_torque(data.X))


def test_compressed_weights_are_refused_before_torch_reads_them(saved, tmp_path):
    """module.pt is a zip of its own, which torch.load inflates without a limit: a 3 kB model
    file could ask for gigabytes. torch.save stores its entries; compressed ones are refused."""
    files = entries(saved)
    with zipfile.ZipFile(io.BytesIO(files["module.pt"])) as inner:
        content = {info.filename: inner.read(info) for info in inner.infolist()}
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w", zipfile.ZIP_DEFLATED) as inner:
        for name, data_ in content.items():
            inner.writestr(name, data_)
    files["module.pt"] = blob.getvalue()
    calls = []
    path = write(tmp_path / "deflated.deepemg", files)
    original = torch.load
    try:
        torch.load = lambda *a, **k: calls.append(1) or original(*a, **k)
        refused(lambda: load_model(path), "compressed entries")
    finally:
        torch.load = original
    assert calls == []


def _carry(model_file: Path, osim_text: str, target: Path) -> Path:
    """``model_file`` with its carried .osim replaced (sha256 and size updated)."""
    import hashlib

    files = entries(model_file)
    files["model.osim"] = osim_text.encode()
    header = json.loads(files["deepemg.json"])
    header["carried"]["model.osim"].update(
        sha256=hashlib.sha256(files["model.osim"]).hexdigest(), size=len(files["model.osim"])
    )
    files["deepemg.json"] = json.dumps(header)
    return write(target, files)


@pytest.mark.parametrize(
    "change",
    [
        ('<ForceSet name="forceset">', '<ForceSet name="forceset" file="/etc/passwd">'),
        ("<OpenSimDocument", '<!DOCTYPE x [<!ENTITY e SYSTEM "/etc/passwd">]>\n<OpenSimDocument'),
    ],
    ids=["file attribute", "external entity"],
)
def test_a_carried_osim_that_reads_other_files_is_refused(arm26_fit, tmp_path, change):
    """OpenSim follows file="..." attributes to any path: a carried .osim must be
    self-contained, or a model file could make deepemg read any file."""
    model, osim = arm26_fit
    text = osim.read_text()
    assert text.count(change[0]) == 1
    path = _carry(model.save(tmp_path / "arm.deepemg"), text.replace(*change), tmp_path / "x")
    with pytest.raises(ValueError, match=r"another file|DOCTYPE"):
        load_model(path)
    own = tmp_path / "own.osim"
    own.write_text(text.replace(*change))
    with pytest.raises(ValueError, match=r"another file|DOCTYPE"):  # nor is one saved
        _save_with(model, own, tmp_path)


def _save_with(model, osim: Path, tmp_path: Path):
    """Save a copy of the fitted ``model`` as if it had been fitted on ``osim``."""

    twin = copy.deepcopy(model)
    twin.physics_.fit_report["source"] = str(osim)
    twin.model = str(osim)
    twin._record_fitted_with()
    return twin.save(tmp_path / "twin.deepemg")


def test_the_built_in_elbow_carries_nothing(saved):
    assert sorted(entries(saved)) == [
        "deepemg.json",
        "history.json",
        "model_adequacy.json",
        "module.pt",
    ]
    assert json.loads(entries(saved)["deepemg.json"])["params"]["model"] == "elbow"


def test_an_old_elbow_file_still_loads(saved, data, tmp_path):
    def old(header):
        header["format_version"] = 2
        header["fitted"]["subjects_kind"] = "U"

    path = edited(saved, tmp_path / "old.deepemg", old)
    np.testing.assert_array_equal(
        load_model(path).predict(data.X), load_model(saved).predict(data.X)
    )


def test_a_development_file_without_the_mean_level_is_refused(fitted):
    """0.6 development files kept the subjects' mean EMG level only in the network: the
    network alone ("none") cannot be told from it, so they are refused, saying to refit."""
    state = fitted.get_fitted_state()
    assert "level_shift" in state["module"]
    state["module"] = {k: v for k, v in state["module"].items() if k != "level_shift"}
    with pytest.raises(ValueError, match=r"development version of deepemg 0.6.*fit it again"):
        clone(fitted).set_fitted_state(state)


def test_no_pickle_is_ever_loaded(saved, monkeypatch):
    """torch.load is only ever called with weights_only=True."""
    seen = []
    load = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_model(saved)
    assert seen
    assert all(w is True for w in seen)


# ---------------------------------------------------------------- device (issue 21)
def test_a_model_saved_for_cuda_loads_on_the_cpu(saved, data, tmp_path):
    """A file saved with device='cuda' (its settings say so) on a machine without a GPU: the
    error says to load with device='cpu', which maps the weights there."""
    import torch

    cuda = edited(saved, tmp_path / "cuda.deepemg", setting("device", "cuda"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device='cpu'"):
            NMMRegressor.load(cuda)
    loaded = NMMRegressor.load(cuda, device="cpu")
    assert loaded.device == "cpu"
    assert next(loaded.net_.module_.parameters()).device.type == "cpu"
    reference = NMMRegressor.load(saved)
    np.testing.assert_array_equal(loaded.predict(data.X[:1]), reference.predict(data.X[:1]))
    with pytest.raises(ValueError, match="device"):
        NMMRegressor.load(saved, device="bogus")


def test_a_file_from_before_the_synergist_terms_loads_without_them(fitted, saved, data, tmp_path):
    """A file without the synergist settings was fitted without those terms: a warm fit of it
    goes on without them (0), not with today's defaults."""

    def before(header):
        header["params"].pop("synergist_weight")
        header["params"].pop("synergist_level_weight")

    loaded = load_model(edited(saved, tmp_path / "old.deepemg", before))
    assert loaded.synergist_weight == 0.0
    assert loaded.synergist_level_weight == 0.0
    assert NMMRegressor().synergist_level_weight > 0  # not the default's
    np.testing.assert_array_equal(loaded.predict(data.X[:2]), fitted.predict(data.X[:2]))
