"""Nothing lost, nothing silently wrong: the data set cache, the readers, the manifest and the
one rule for EMG units (MVC) from arrays and from files."""

from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import pytest

from deepemg import _files as files_module
from deepemg.datasets import export_trials, make_elbow_lifting
from deepemg.io import (
    load_each_trial,
    load_trials,
    read_c3d_analogs,
    read_csv_table,
    read_manifest,
    read_storage,
    write_manifest,
)

from .test_io import RATE, TIME, write_c3d, write_csv, write_emg, write_ik, write_storage

SMALL = dict(n_subjects=2, n_trials=3, duration=2.0, random_state=0, progress=False)


def _same(a, b) -> None:
    """Two data sets hold the same data (the simulation's duration aside)."""
    assert set(a) == set(b)
    for key in a:
        if key == "simulation_seconds":
            continue
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype, key
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        elif key == "true_params":
            for p, q in zip(a[key], b[key], strict=True):
                assert set(p) == set(q)
                for name in p:
                    assert type(p[name]) is type(q[name]) or isinstance(p[name], float), name
                    np.testing.assert_array_equal(p[name], q[name], err_msg=name)
        else:
            assert a[key] == b[key], key


def _cache_file(folder):
    files = [f for f in folder.iterdir() if not f.name.startswith(".")]
    assert len(files) == 1, files
    return files[0]


# ---------------------------------------------------------------------- the cache
@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    return make_elbow_lifting(data_home=folder, **SMALL), folder


def test_cache_is_an_npz_read_back_whole(cached):
    data, folder = cached
    path = _cache_file(folder)
    assert path.suffix == ".npz"
    with np.load(path, allow_pickle=False) as npz:  # no pickle anywhere in it
        assert {"X", "y", "groups"} <= set(npz.files)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = make_elbow_lifting(data_home=folder, **SMALL)
    _same(data, again)
    assert again.groups.dtype.kind == "U"
    assert isinstance(again.true_params[0]["muscles"], list)
    assert isinstance(again.true_params[0]["max_isometric_force"], np.ndarray)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "other keys"])
def test_damaged_cache_is_simulated_again(cached, tmp_path, damage):
    data, folder = cached
    path = tmp_path / _cache_file(folder).name
    whole = _cache_file(folder).read_bytes()
    if damage == "truncated":
        path.write_bytes(whole[: len(whole) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x93NUMPY" + os.urandom(2000))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        np.savez(path, X=np.zeros(3))
    with pytest.warns(UserWarning, match=rf"cached data set '.*{path.name}' cannot be read"):
        again = make_elbow_lifting(data_home=tmp_path, **SMALL)
    _same(data, again)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # replaced by a good file
        _same(data, make_elbow_lifting(data_home=tmp_path, **SMALL))


class _Payload:
    """Unpickling this creates ``marker``: proof that a cache file ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("kind", ["pickle", "npz with an object array"])
def test_a_pickle_in_the_cache_is_never_run(cached, tmp_path, kind):
    data, folder = cached
    path = tmp_path / _cache_file(folder).name
    marker = tmp_path / "code-ran"
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"X": _Payload(marker)}))
    else:
        with open(path, "wb") as handle:  # np.savez pickles object arrays into the zip
            np.savez(handle, X=np.array([_Payload(marker)], dtype=object))
    with pytest.warns(UserWarning, match="cannot be read"):
        again = make_elbow_lifting(data_home=tmp_path, **SMALL)
    assert not marker.exists()
    _same(data, again)
    # nor is a cache of the earlier format (a joblib pickle) read: it has another name
    old = tmp_path / path.name.replace(".npz", ".joblib")
    old.write_bytes(pickle.dumps(_Payload(marker)))
    make_elbow_lifting(data_home=tmp_path, **SMALL)
    assert not marker.exists()


def test_read_only_cache_folder_returns_the_data(cached, tmp_path):
    data, _ = cached
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("chmod does not stop this user (root) from writing")
        with pytest.warns(UserWarning, match="Cannot write the data set cache") as record:
            again = make_elbow_lifting(data_home=folder, **SMALL)
        assert len(record) == 1
        _same(data, again)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_unwritable_cache_warns_once_and_returns_the_data(cached, tmp_path, monkeypatch):
    """The same as a read-only folder, for any user: writing fails."""
    data, _ = cached

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files_module.tempfile, "mkdtemp", refuse)
    with pytest.warns(UserWarning, match=r"Cannot write the data set cache in .*without caching"):
        again = make_elbow_lifting(data_home=tmp_path, **SMALL)
    _same(data, again)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per folder
        make_elbow_lifting(data_home=tmp_path, **SMALL)
    assert list(tmp_path.iterdir()) == []
    # a cache folder that cannot even be made
    blocker = tmp_path.parent / f"{tmp_path.name}-file"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="Cannot write"):
        _same(data, make_elbow_lifting(data_home=blocker / "sub", **SMALL))


# ---------------------------------------------------------------------- readers
def test_storage_duplicated_label_is_refused(tmp_path):
    path = tmp_path / "twice.mot"
    write_storage(path, TIME, {"elbow_flexion": 30 + 60 * TIME, "pro_sup": 0 * TIME}, True)
    path.write_text(path.read_text().replace("\tpro_sup\n", "\telbow_flexion\n"))
    with pytest.raises(ValueError, match=r"twice\.mot' has duplicated column labels.*'elbow_flex"):
        read_storage(path)
    # a duplicated 'Time' label: tests/io/test_io.py's MALFORMED files


def test_csv_duplicated_label_is_refused(tmp_path):
    path = write_csv(tmp_path / "emg.csv", TIME, {"Biceps": TIME, "Triceps": TIME})
    path.write_text(path.read_text().replace("Triceps", "Biceps", 1))
    with pytest.raises(ValueError, match=r"emg\.csv' has duplicated column labels.*'Biceps'"):
        read_csv_table(path)


def test_c3d_truncated_is_refused(tmp_path):
    good = write_c3d(tmp_path / "good.c3d", ["Biceps", "Triceps"], np.ones((4000, 2)))
    whole = good.read_bytes()
    assert read_c3d_analogs(good).data.shape == (4000, 2)
    for size in (3000, 20000, len(whole) - 1000):
        cut = tmp_path / f"cut{size}.c3d"
        cut.write_bytes(whole[:size])
        with pytest.raises(ValueError, match=rf"cut{size}\.c3d' is truncated: .*declares 4000"):
            read_c3d_analogs(cut)


def test_c3d_duplicated_channel_is_refused_when_read(tmp_path):
    path = write_c3d(tmp_path / "t.c3d", ["EMG", "EMG", "Force"], np.ones((200, 3)))
    assert read_c3d_analogs(path, channels=["Force"]).labels == ["Force"]
    with pytest.raises(ValueError, match=r"t\.c3d' has duplicated column labels.*'EMG'"):
        read_c3d_analogs(path, channels=["EMG"])
    with pytest.raises(ValueError, match="duplicated"):
        read_c3d_analogs(path).column("EMG")


# ---------------------------------------------------------------------- the manifest
def _folder(tmp_path, rows: str, header="subject,load_mass,kinematics"):
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    (folder / "ik.mot").write_text("")
    (folder / "trials.csv").write_text(f"{header}\n{rows}")
    return folder


def test_manifest_row_with_an_extra_cell(tmp_path):
    folder = _folder(tmp_path, "S01,1,ik.mot\nS01,2,ik.mot,surprise\n")
    with pytest.raises(ValueError, match=r"trials\.csv, line 3: 4 cells but the header has 3"):
        read_manifest(folder)
    # trailing empty cells (a spreadsheet's commas) are no extra data
    folder = _folder(tmp_path, "S01,1,ik.mot,,\n")
    assert read_manifest(folder)[0]["kinematics"].name == "ik.mot"


def test_manifest_paths_stay_in_the_folder(tmp_path):
    outside = tmp_path / "elsewhere.mot"
    outside.write_text("")
    cases = {
        str(outside): "column kinematics: .* is an absolute path",
        "../elsewhere.mot": r"column kinematics: '\.\./elsewhere\.mot' leads out of the data",
        "sub/../../elsewhere.mot": "column kinematics: .* leads out",
        "link.mot": "column kinematics: 'link.mot' leads out",
    }
    for name, match in cases.items():
        folder = _folder(tmp_path, f"S01,1,ik.mot\nS01,1,{name}\n")
        if name == "link.mot" and not (folder / name).exists():
            (folder / name).symlink_to(outside)
        with pytest.raises(ValueError, match=r"trials\.csv, line 3, " + match):
            read_manifest(folder)
        trials = read_manifest(folder, allow_outside=True)
        assert trials[1]["kinematics"] == outside.resolve()
    folder = _folder(tmp_path, f"S01,1,ik.mot,ik.mot,BIClong=a,ik.mot;{outside}\n",
                     header="subject,load_mass,kinematics,emg,emg_channels,mvc")  # fmt: skip
    with pytest.raises(ValueError, match=r"line 2, column mvc: .* absolute"):
        read_manifest(folder)
    (folder / "sub").mkdir()
    (folder / "sub" / "ok.mot").write_text("")
    inside = _folder(tmp_path, "S01,1,sub/../sub/ok.mot\n")
    assert read_manifest(inside)[0]["kinematics"] == (folder / "sub" / "ok.mot").resolve()


def test_write_manifest_is_whole_and_reads_back(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    files = {}
    for name in ("ik.mot", "emg.csv", "mvc1.csv", "mvc2.csv"):
        files[name] = folder / name
        files[name].write_text("")
    trial = {
        "subject": "S01",
        "load_mass": 2.0,
        "kinematics": files["ik.mot"],
        "emg": files["emg.csv"],
        "emg_channels": {"BIClong": "EMG1"},
        "mvc": [files["mvc1.csv"], files["mvc2.csv"]],
    }
    write_manifest([trial], folder)
    assert "mvc1.csv;mvc2.csv" in (folder / "trials.csv").read_text()
    assert read_manifest(folder) == [{**trial, "mvc": [files["mvc1.csv"], files["mvc2.csv"]]}]
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------------- EMG units
def _emg_trial(tmp_path, subject, stem, gains: dict, mvc=None, duration=1.0):
    emg = write_emg(tmp_path / f"{stem}_emg.csv", duration, {k: g * 1e-3 for k, g in gains.items()})
    trial = {
        "kinematics": write_ik(tmp_path / f"{stem}.mot", duration),
        "load_mass": 1.0,
        "subject": subject,
        "emg": emg,
        "emg_channels": {"BIClong": "Biceps", "TRIlong": "Triceps"},
    }
    if mvc is not None:
        trial["mvc"] = mvc
    return trial


def test_mvc_recordings_set_the_units(tmp_path):
    """Envelopes are divided by the subject's MVC, so a trial stronger than it exceeds 1."""
    mvc = write_emg(tmp_path / "mvc.csv", 2.0, {"Biceps": 2e-3, "Triceps": 4e-3, "Other": 1.0})
    trials = [
        _emg_trial(tmp_path, "S1", "a", {"Biceps": 1.0, "Triceps": 1.0}, mvc),
        _emg_trial(tmp_path, "S1", "b", {"Biceps": 2.4, "Triceps": 2.0}, [mvc]),
    ]
    data = load_trials(trials)
    biceps = data.y[..., data.muscles.index("BIClong")].mean(axis=1)
    triceps = data.y[..., data.muscles.index("TRIlong")].mean(axis=1)
    np.testing.assert_allclose(biceps, [0.5, 1.2], rtol=0.01)  # 1.2: above the MVC, kept
    np.testing.assert_allclose(triceps, [0.25, 0.5], rtol=0.01)
    # the same trials alone: the same units (an MVC does not depend on the other trials)
    alone = load_trials([trials[0]])
    np.testing.assert_allclose(alone.y[0], data.y[0], rtol=1e-12)
    # one file per muscle group
    biceps_mvc = write_emg(tmp_path / "mvc_b.csv", 2.0, {"Biceps": 2e-3})
    triceps_mvc = write_emg(tmp_path / "mvc_t.csv", 2.0, {"Triceps": 4e-3})
    split = load_trials([t | {"mvc": [biceps_mvc, triceps_mvc]} for t in trials])
    np.testing.assert_allclose(split.y, data.y, rtol=1e-12)


def test_mvc_rule_errors(tmp_path):
    mvc = write_emg(tmp_path / "mvc.csv", 2.0, {"Biceps": 1e-3, "Triceps": 1e-3})
    with_mvc = _emg_trial(tmp_path, "S1", "a", {"Biceps": 1.0, "Triceps": 1.0}, mvc)
    without = _emg_trial(tmp_path, "S1", "b", {"Biceps": 1.0, "Triceps": 1.0})
    with pytest.raises(ValueError, match=r"Subject 'S1': 1 of its trials .* give MVC .*b\.mot"):
        load_trials([with_mvc, without])
    load_trials([with_mvc, without | {"subject": "S2"}])  # another subject: its own rule
    biceps_only = write_emg(tmp_path / "mvc_b.csv", 2.0, {"Biceps": 1e-3})
    with pytest.raises(ValueError, match=r"no MVC recording of TRIlong \(channel 'Triceps'\)"):
        load_trials([with_mvc | {"mvc": biceps_only}])
    strong = _emg_trial(tmp_path, "S1", "c", {"Biceps": 1.7, "Triceps": 1.0}, mvc)
    with pytest.raises(ValueError, match=r"trial 0 .*c\.mot.*EMG up to 1\.7.*'BIClong'.*mvc\.csv"):
        load_trials([strong])
    short = write_emg(tmp_path / "short.csv", 0.2, {"Biceps": 1e-3, "Triceps": 1e-3})
    with pytest.raises(ValueError, match=r"lasts 0\.2 s, less than the 0\.5 s window"):
        load_trials([with_mvc | {"mvc": short}])
    with pytest.raises(ValueError, match=r"'mvc' .* goes with 'emg'"):
        load_trials([{"kinematics": with_mvc["kinematics"], "load_mass": 1.0, "subject": 1,
                      "mvc": mvc}])  # fmt: skip


def test_without_mvc_a_subject_is_normalised_over_all_its_trials(tmp_path):
    trials = [
        _emg_trial(tmp_path, "S1", "a", {"Biceps": 1.0, "Triceps": 1.0}),
        _emg_trial(tmp_path, "S1", "b", {"Biceps": 2.0, "Triceps": 1.0}),
    ]
    each = load_each_trial(trials)
    together = load_trials(trials)
    assert [e.X.shape for e in each] == [(1, 101, 7), (1, 101, 7)]
    for i, one in enumerate(each):
        np.testing.assert_array_equal(one.X[0], together.X[i])
        np.testing.assert_array_equal(one.y[0], together.y[i])
        assert one.groups.tolist() == ["S1"]
        assert one.trial_index.tolist() == [i]
        np.testing.assert_array_equal(one.time[0], together.time[i])
    biceps = [e.y[0, :, e.muscles.index("BIClong")].mean() for e in each]
    np.testing.assert_allclose(biceps, [0.5, 1.0], rtol=0.01)  # not 1.0 each: never per trial
    # load_each_trial keeps trials of different lengths whole
    longer = _emg_trial(tmp_path, "S1", "c", {"Biceps": 1.0, "Triceps": 1.0}, duration=1.5)
    assert [e.X.shape[1] for e in load_each_trial([*trials, longer])] == [101, 101, 151]


@pytest.fixture(scope="module")
def simulated_pair(tmp_path_factory):
    return make_elbow_lifting(data_home=tmp_path_factory.mktemp("pair"), **SMALL)


def test_exported_files_read_back_in_the_arrays_units(simulated_pair, tmp_path):
    """Files written by export_trials and read by load_trials give the arrays' y (MVC units):
    per muscle, means within 10 % (measured 0.93-0.96: the MVC reference is the highest 0.5 s
    of a noisy envelope, a few % above its mean) and r > 0.9 (measured 0.97-0.98)."""
    data = simulated_pair
    trials = export_trials(data, tmp_path)
    assert all(t["mvc"] == [tmp_path / f"{t['subject']}_mvc_emg.csv"] for t in trials)
    back = load_trials(read_manifest(tmp_path))
    assert back.groups.tolist() == data.groups.tolist()
    for muscle in data.surface_muscles:
        truth = data.y[..., data.muscles.index(muscle)]
        again = back.y[..., back.muscles.index(muscle)]
        assert 0.9 < again.mean() / truth.mean() < 1.1, muscle
        assert np.corrcoef(truth.ravel(), again.ravel())[0, 1] > 0.9, muscle
    for muscle in data.deep_muscles:
        assert np.isnan(back.y[..., back.muscles.index(muscle)]).all()
    for name in ("elbow_angle", "elbow_torque", "load_mass"):
        j, k = data.channels.index(name), back.channels.index(name)
        np.testing.assert_allclose(back.X[..., k], data.X[..., j], atol=1e-6)
    # an MVC unit does not depend on which trials are read together
    alone = load_trials(read_manifest(tmp_path)[:1])
    np.testing.assert_allclose(alone.y[0], back.y[0], rtol=1e-12)


def test_export_subject_labels(simulated_pair, tmp_path):
    data = simulated_pair
    trials = export_trials(data, tmp_path / "a", subject_prefix="new_")
    assert sorted({t["subject"] for t in trials}) == ["new_S01", "new_S02"]
    assert (tmp_path / "a" / "new_S02_trial03_ik.mot").is_file()
    trials = export_trials(data, tmp_path / "b", subjects={"S02": "P7"})
    assert [t["subject"] for t in read_manifest(tmp_path / "b")] == ["S01"] * 3 + ["P7"] * 3
    trials = export_trials(data, tmp_path / "c", subjects=["A", "B"], subject_prefix="x")
    assert [t["subject"] for t in trials] == ["xA"] * 3 + ["xB"] * 3
    for subjects, match in (
        (["A", "A"], "Different subjects would be written as"),
        (["A"], "gives 1 labels but data.groups holds 2"),
        ({"S09": "A"}, "renames"),
        ({"S01": "../up"}, "cannot name files"),
    ):
        with pytest.raises(ValueError, match=match):
            export_trials(data, tmp_path / "bad", subjects=subjects)
    assert not (tmp_path / "bad").exists()
    assert not (tmp_path / "up_trial01_ik.mot").exists()


def test_envelopes_check_uses_the_ceiling(tmp_path):
    """Values above 1 up to EMG_CEILING pass (real MVC data), beyond it refused."""
    from deepemg.validation import EMG_CEILING

    mvc = write_emg(tmp_path / "mvc.csv", 2.0, {"Biceps": 1e-3, "Triceps": 1e-3})
    ok = _emg_trial(tmp_path, "S1", "ok", {"Biceps": EMG_CEILING - 0.1, "Triceps": 1.0}, mvc)
    data = load_trials([ok])
    assert 1.0 < np.nanmax(data.y) < EMG_CEILING
    assert data.rate == RATE
