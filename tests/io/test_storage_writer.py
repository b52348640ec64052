"""deepemg.io.write_storage and write_muscle_storage: OpenSim reads back what they write.

OpenSim itself is the oracle: the files are read with ``opensim.TimeSeriesTable``,
``opensim.Storage``, loaded as controls by ``opensim.PrescribedController`` and as states by
``opensim.StatesTrajectory``, and compared with the labels OpenSim writes for its own controls
(``Model.printControlStorage``) and states (``Model.getStateVariableNames``).
"""

from __future__ import annotations

import os

import numpy as np
import opensim as osim
import pytest

from deepemg.io import read_storage, write_muscle_storage, write_storage
from deepemg.opensim import ELBOW_MODEL_PATH, load_model, muscle_names

RNG = np.random.default_rng(0)
TIME = np.cumsum(RNG.uniform(0.001, 0.02, 40))
DATA = RNG.standard_normal((40, 3)) * 10.0 ** RNG.integers(-12, 12, (40, 3))
LABELS = ["r_elbow_flex", "/forceset/BRA/activation", "box load (kg)"]
REL = 2e-15  # OpenSim writes 16 significant digits


def _opensim_table(path):
    table = osim.TimeSeriesTable(str(path))
    return (
        list(table.getColumnLabels()),
        np.array(table.getIndependentColumn()),
        table.getMatrix().to_numpy(),
    )


def test_round_trip_through_opensim_and_read_storage(tmp_path):
    path = write_storage(tmp_path / "table.sto", TIME, (LABELS, DATA))
    labels, time, data = _opensim_table(path)
    assert labels == LABELS
    np.testing.assert_allclose(time, TIME, rtol=REL, atol=0)
    np.testing.assert_allclose(data, DATA, rtol=REL, atol=0)

    storage = osim.Storage(str(path))  # OpenSim's older reader, as its tools use it
    names = storage.getColumnLabels()
    assert [names.get(i) for i in range(names.getSize())] == ["time", *LABELS]
    assert storage.getName() == "table"
    assert not storage.isInDegrees()
    assert storage.getSize() == TIME.size

    ours = read_storage(path)
    assert ours.labels == LABELS
    assert ours.header["inDegrees"] == "no"
    np.testing.assert_allclose(ours.time, TIME, rtol=REL, atol=0)
    np.testing.assert_allclose(ours.data, DATA, rtol=REL, atol=0)
    assert np.array_equal(ours.data, data)
    assert np.array_equal(ours.time, time)


def test_dict_and_pair_write_the_same_file(tmp_path):
    a = write_storage(tmp_path / "a.sto", TIME, dict(zip(LABELS, DATA.T, strict=True)), name="x")
    b = write_storage(tmp_path / "b.sto", TIME, (LABELS, DATA), name="x")
    assert a.read_text() == b.read_text()
    one = write_storage(tmp_path / "one.sto", TIME, ("q", DATA[:, 0]))  # one label, 1-D data
    assert read_storage(one).labels == ["q"]


def test_in_degrees_and_name(tmp_path):
    angle = np.linspace(0.0, 120.0, TIME.size)
    path = write_storage(
        tmp_path / "ik.mot", TIME, {"r_elbow_flex": angle}, in_degrees=True, name="Coordinates"
    )
    storage = osim.Storage(str(path))
    assert storage.isInDegrees()
    assert storage.getName() == "Coordinates"
    assert osim.TimeSeriesTable(str(path)).getTableMetaDataString("inDegrees") == "yes"
    ours = read_storage(path)  # converts the rotational column to radians
    assert ours.in_degrees
    assert ours.converted == ["r_elbow_flex"]
    np.testing.assert_allclose(ours.column("r_elbow_flex"), np.radians(angle), rtol=REL)
    np.testing.assert_allclose(read_storage(path, radians=False).data[:, 0], angle, rtol=REL)


def _listing(folder):
    return sorted(os.listdir(folder))


@pytest.mark.parametrize(
    ("time", "columns", "message"),
    [
        (TIME[:-1], (LABELS, DATA), "time has 39 values but the columns have 40 rows"),
        (TIME, {"a": DATA[:, 0], "b": DATA[:-1, 1]}, r"lengths: \{'a': 40, 'b': 39\}"),
        (TIME, {"a": DATA[:, :2]}, r"'a' must be 1-D"),
        (TIME, (LABELS, DATA[:, :2]), "one column per label"),
        (TIME, (LABELS, np.where(np.arange(40)[:, None] == 7, np.nan, DATA)), "NaN"),
        (TIME, {"q": np.r_[np.zeros(5), np.inf, np.zeros(34)]}, r"'q' \(first at row 5, t = "),
        (np.r_[TIME[:3], TIME[2], TIME[4:]], (LABELS, DATA), "increase strictly: row 3"),
        (TIME[::-1], (LABELS, DATA), "increase strictly: row 1"),
        (np.r_[np.nan, TIME[1:]], (LABELS, DATA), "time is NaN or infinite at row 0"),
        (TIME, {"a\tb": DATA[:, 0]}, r"'a\\tb': it holds '\\t'"),
        (TIME, {"a\nb": DATA[:, 0]}, "newlines"),
        (TIME, {" a": DATA[:, 0]}, "leading or trailing whitespace"),
        (TIME, {"": DATA[:, 0]}, "it is empty"),
        (TIME, {"Time": DATA[:, 0]}, "the time column's label"),
        (TIME, (["a", "a", "b"], DATA), "duplicated"),
        (TIME, ([1, "a", "b"], DATA), "it is a int"),
        (TIME, {}, "no columns"),
        (TIME, {"a": ["x"] * 40}, "not numbers"),
    ],
)
def test_errors_write_nothing(tmp_path, time, columns, message):
    with pytest.raises(ValueError, match=message):
        write_storage(tmp_path / "x.sto", time, columns)
    assert _listing(tmp_path) == []


def test_path_errors(tmp_path):
    with pytest.raises(ValueError, match=r"does not end in \.sto or \.mot"):
        write_storage(tmp_path / "x.csv", TIME, (LABELS, DATA))
    with pytest.raises(FileNotFoundError, match="create it"):
        write_storage(tmp_path / "missing" / "x.sto", TIME, (LABELS, DATA))
    (tmp_path / "folder.sto").mkdir()
    with pytest.raises(IsADirectoryError):
        write_storage(tmp_path / "folder.sto", TIME, (LABELS, DATA))
    with pytest.raises(TypeError, match="dict"):
        write_storage(tmp_path / "x.sto", TIME, DATA)
    with pytest.raises(ValueError, match="name must be"):
        write_storage(tmp_path / "x.sto", TIME, (LABELS, DATA), name="two\nlines")


def test_an_existing_file_is_replaced_whole(tmp_path):
    path = write_storage(tmp_path / "x.sto", TIME, (LABELS, DATA))
    write_storage(path, TIME[:5], {"q": np.ones(5)})
    assert read_storage(path).labels == ["q"]
    assert _listing(tmp_path) == ["x.sto"]


@pytest.mark.parametrize("where", ["opensim", "replace"])
def test_ctrl_c_leaves_the_earlier_file(tmp_path, monkeypatch, where):
    path = write_storage(tmp_path / "x.sto", TIME, (LABELS, DATA))
    before = path.read_bytes()
    real_write = osim.STOFileAdapter.write

    def interrupted_write(table, name):  # half a file, then Ctrl-C
        real_write(table, name)
        with open(name, "r+b") as stream:
            stream.truncate(100)
        raise KeyboardInterrupt

    def interrupted_replace(source, destination):
        raise KeyboardInterrupt

    if where == "opensim":
        monkeypatch.setattr(osim.STOFileAdapter, "write", interrupted_write)
    else:
        monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        write_storage(path, TIME[:5], {"q": np.ones(5)})
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["x.sto"]  # no temporary file or folder left


# ---------------------------------------------------------------------- muscle storage
@pytest.fixture(scope="module")
def elbow_muscles():
    return muscle_names(load_model(ELBOW_MODEL_PATH))


def _opensim_control_labels(tmp_path) -> list[str]:
    """The column labels of the controls file OpenSim writes itself for the elbow."""
    model = load_model(ELBOW_MODEL_PATH)
    state = model.initSystem()
    manager = osim.Manager(model)
    manager.initialize(state)
    manager.integrate(0.01)
    model.printControlStorage(str(tmp_path / "opensim_controls.sto"))
    return read_storage(tmp_path / "opensim_controls.sto").labels


def test_excitations_are_opensims_controls(tmp_path, elbow_muscles):
    time = np.arange(21) / 100.0
    values = np.random.default_rng(1).uniform(0.0, 1.0, (21, len(elbow_muscles)))
    path = write_muscle_storage(tmp_path / "excitation.sto", time, values, elbow_muscles)
    assert read_storage(path).labels == _opensim_control_labels(tmp_path) == elbow_muscles
    assert osim.Storage(str(path)).getName() == "controls"

    model = load_model(ELBOW_MODEL_PATH)  # OpenSim reads the file as the muscles' controls
    model.addController(osim.PrescribedController(str(path)))
    state = model.initSystem()
    for k in range(time.size):
        state.setTime(float(time[k]))
        model.realizeVelocity(state)
        controls = model.getControls(state)
        got = [controls.get(i) for i in range(controls.size())]
        np.testing.assert_allclose(got, values[k], rtol=0, atol=1e-12)


def test_activations_are_opensims_states(tmp_path, elbow_muscles):
    time = np.arange(11) / 100.0
    values = np.random.default_rng(2).uniform(0.02, 1.0, (11, len(elbow_muscles)))
    model = load_model(ELBOW_MODEL_PATH)
    path = write_muscle_storage(
        tmp_path / "states.sto", time, values, elbow_muscles, kind="activation", model=model
    )
    model.initSystem()
    names = model.getStateVariableNames()
    activation_states = [
        names.get(i) for i in range(names.getSize()) if names.get(i).endswith("/activation")
    ]
    assert read_storage(path).labels == activation_states
    without_model = write_muscle_storage(
        tmp_path / "states2.sto", time, values, elbow_muscles, kind="activation"
    )
    assert read_storage(without_model).labels == activation_states

    table = osim.TimeSeriesTable(str(path))  # OpenSim takes them as the muscles' states
    trajectory = osim.StatesTrajectory.createFromStatesTable(model, table, True)
    muscles = model.getMuscles()
    for k in (0, 5, 10):
        state = trajectory.get(k)
        got = [muscles.get(j).getActivation(state) for j in range(muscles.getSize())]
        np.testing.assert_allclose(got, values[k], rtol=0, atol=1e-14)


def test_muscle_storage_errors(tmp_path, elbow_muscles):
    time = np.arange(3) / 100.0
    good = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]; 'TRImed' is 1.2 at row 1.*np.clip"):
        write_muscle_storage(
            tmp_path / "x.sto", time, [[0, 0], [0, 1.2], [0, 0]], ["BRA", "TRImed"]
        )
    with pytest.raises(ValueError, match=r"\(n_rows, 2\)"):
        write_muscle_storage(tmp_path / "x.sto", time, good[:, :1], ["BRA", "TRImed"])
    with pytest.raises(ValueError, match="kind must be one of"):
        write_muscle_storage(tmp_path / "x.sto", time, good, ["BRA", "TRImed"], kind="force")
    with pytest.raises(ValueError, match=r"no muscle named 'biceps'.*'BIClong'"):
        write_muscle_storage(
            tmp_path / "x.sto", time, good, ["BRA", "biceps"], model=ELBOW_MODEL_PATH
        )
    with pytest.raises(ValueError, match="NaN"):
        write_muscle_storage(tmp_path / "x.sto", time, [[0, 0], [0, np.nan], [0, 0]], ["a", "b"])
    assert _listing(tmp_path) == []
