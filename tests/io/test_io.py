"""Readers for real recordings (.sto/.mot, c3d, csv) and load_trials, on files written here."""

from __future__ import annotations

import pickle
import warnings

import ezc3d
import numpy as np
import opensim as osim
import pytest
import torch

from deepemg.channels import layout_for
from deepemg.io import (
    KINEMATIC_CHANNELS,
    load_trials,
    read_c3d_analogs,
    read_csv_table,
    read_storage,
    resample,
)

from ..conftest import ARM26_LOCKED

# ---------------------------------------------------------------------- writers


def write_storage(
    path,
    time,
    columns: dict,
    in_degrees: bool,
    sep: str = "\t",
    trailing: str = "",
    n_rows: int | None = None,
    name: str = "Coordinates",
):
    """An OpenSim-style storage file; ``trailing`` is appended to header lines (e.g. ',,,')."""
    labels = ["time", *columns]
    header = [
        name,
        "version=1",
        f"nRows={len(time) if n_rows is None else n_rows}",
        f"nColumns={len(labels)}",
        f"inDegrees={'yes' if in_degrees else 'no'}",
        "",
        "Units are S.I. units (second, meters, Newtons, ...)",
        "endheader",
    ]
    lines = [line + trailing for line in header]
    lines.append(sep.join(labels))
    values = np.column_stack([time, *columns.values()])
    lines += [sep.join(f"{v:.10g}" for v in row) for row in values]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_c3d(path, labels, analogs, rate=2000.0, point_rate=100.0, units=None):
    """A c3d file with only analog channels (analogs: (n_samples, n_channels))."""
    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [point_rate]
    c3d["parameters"]["ANALOG"]["RATE"]["value"] = [rate]
    c3d["parameters"]["ANALOG"]["LABELS"]["value"] = tuple(labels)
    c3d["parameters"]["ANALOG"]["UNITS"]["value"] = tuple(units or ["V"] * len(labels))
    c3d["data"]["analogs"] = np.asarray(analogs, dtype=float).T[None]
    n_frames = round(len(analogs) * point_rate / rate)
    c3d["data"]["points"] = np.ones((4, 0, n_frames))
    c3d.write(str(path))
    return path


def write_csv(path, time, columns: dict, sep=","):
    lines = [sep.join(["time", *columns])]
    values = np.column_stack([time, *columns.values()])
    lines += [sep.join(f"{v:.10g}" for v in row) for row in values]
    path.write_text("\n".join(lines) + "\n")
    return path


TIME = np.arange(0.0, 0.5, 0.01)  # 50 frames at 100 Hz
DEGREES = {
    "elbow_flexion": 30 + 60 * TIME,
    "pelvis_tx": 0.1 + TIME,  # m
    "box_transZ": 0.2 + 0 * TIME,  # m
    "pro_sup": -10 + 0 * TIME,
    "elbow_flexion_moment": 5 + 0 * TIME,  # N·m
}


# ---------------------------------------------------------------------- read_storage
@pytest.mark.parametrize(("sep", "trailing"), [("\t", ""), (",", ",,,,,"), (" ", ""), ("\t", "\t")])
def test_storage_round_trip_in_degrees(tmp_path, sep, trailing):
    path = write_storage(tmp_path / "ik.mot", TIME, DEGREES, True, sep, trailing)
    storage = read_storage(path)
    assert storage.labels == list(DEGREES)
    assert storage.in_degrees
    assert storage.rate == pytest.approx(100.0)
    assert storage.data.dtype == np.float64
    assert storage.data.shape == (50, 5)
    np.testing.assert_allclose(storage.time, TIME)
    np.testing.assert_allclose(
        storage.column("elbow_flexion"), np.radians(DEGREES["elbow_flexion"])
    )
    np.testing.assert_allclose(storage.column("pro_sup"), np.radians(-10.0))
    for name in ("pelvis_tx", "box_transZ", "elbow_flexion_moment"):  # the name rule keeps these
        np.testing.assert_allclose(storage.column(name), DEGREES[name])
    assert storage.converted == ["elbow_flexion", "pro_sup"]
    assert storage.header["nRows"] == "50"
    assert storage.header["name"] == "Coordinates"


def test_storage_without_conversion(tmp_path):
    path = write_storage(tmp_path / "ik.mot", TIME, DEGREES, True)
    storage = read_storage(path, radians=False)
    assert storage.in_degrees
    assert storage.converted == []
    np.testing.assert_allclose(storage.column("elbow_flexion"), DEGREES["elbow_flexion"])
    path = write_storage(tmp_path / "ik_rad.mot", TIME, DEGREES, in_degrees=False)
    storage = read_storage(path)
    assert not storage.in_degrees
    assert storage.converted == []
    np.testing.assert_allclose(storage.column("elbow_flexion"), DEGREES["elbow_flexion"])


def test_storage_without_in_degrees_line_is_left_as_is(tmp_path):
    path = tmp_path / "plain.sto"
    path.write_text("States\nendheader\ntime\tq\n0\t1.0\n0.5\t2.0\n")
    storage = read_storage(path)
    assert not storage.in_degrees
    assert storage.rate == 2.0
    np.testing.assert_allclose(storage.column("q"), [1.0, 2.0])


@pytest.fixture(scope="module")
def slider_and_hinge_model():
    """A model with a translational coordinate whose name the name rule would convert."""
    model = osim.Model()
    model.setName("slider_and_hinge")
    cart = osim.Body("cart", 1.0, osim.Vec3(0), osim.Inertia(0.1))
    slider = osim.SliderJoint("slider", model.getGround(), cart)
    slider.upd_coordinates(0).setName("lift_height")
    arm = osim.Body("arm", 1.0, osim.Vec3(0), osim.Inertia(0.1))
    hinge = osim.PinJoint("hinge", cart, arm)
    hinge.upd_coordinates(0).setName("hinge_angle")
    for body, joint in ((cart, slider), (arm, hinge)):
        model.addBody(body)
        model.addJoint(joint)
    model.finalizeConnections()
    return model


def test_storage_model_rule(tmp_path, slider_and_hinge_model):
    columns = {
        "lift_height": 0.3 + 0 * TIME,  # translational although its name says nothing
        "/jointset/hinge/hinge_angle/value": 45 + 0 * TIME,
        "/jointset/hinge/hinge_angle/speed": 90 + 0 * TIME,
    }
    path = write_storage(tmp_path / "states.sto", TIME, columns, True)
    by_name = read_storage(path)
    assert by_name.converted == list(columns)  # the name rule converts lift_height: wrong
    storage = read_storage(path, model=slider_and_hinge_model)
    assert storage.converted == [
        "/jointset/hinge/hinge_angle/value",
        "/jointset/hinge/hinge_angle/speed",
    ]
    np.testing.assert_allclose(storage.column("lift_height"), 0.3)
    np.testing.assert_allclose(storage.column("/jointset/hinge/hinge_angle/value"), np.pi / 4)
    np.testing.assert_allclose(storage.column("/jointset/hinge/hinge_angle/speed"), np.pi / 2)


def test_storage_model_rule_from_path_warns_about_unknown_columns(tmp_path):
    from deepemg.opensim import ELBOW_MODEL_PATH

    columns = {"r_elbow_flex": 90 + 0 * TIME, "wrist_flex": 10 + 0 * TIME}
    path = write_storage(tmp_path / "ik.mot", TIME, columns, True)
    with pytest.warns(UserWarning, match=r"name no coordinate.*wrist_flex"):
        storage = read_storage(path, model=ELBOW_MODEL_PATH)
    assert storage.converted == ["r_elbow_flex"]
    np.testing.assert_allclose(storage.column("r_elbow_flex"), np.pi / 2)
    np.testing.assert_allclose(storage.column("wrist_flex"), 10.0)
    with pytest.raises(TypeError, match=r"opensim\.Model or the path"):
        read_storage(path, model=42)


def test_storage_header_row_count_mismatch_warns(tmp_path):
    path = write_storage(tmp_path / "cut.mot", TIME, DEGREES, True, n_rows=250)
    with pytest.warns(UserWarning, match=r"nRows=250 but the file holds 50 rows"):
        storage = read_storage(path)
    assert storage.data.shape[0] == 50


def test_storage_column_error_lists_labels(tmp_path):
    storage = read_storage(write_storage(tmp_path / "ik.mot", TIME, DEGREES, True))
    with pytest.raises(KeyError, match=r"No column named 'elbow'.*elbow_flexion.*pelvis_tx"):
        storage.column("elbow")


def test_storage_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at"):
        read_storage(tmp_path / "missing.mot")
    with pytest.raises(FileNotFoundError, match="directory"):
        read_storage(tmp_path)


MALFORMED = [
    # reader, file name, its text, what the error must say
    (
        read_storage,
        "no_time.sto",
        "x\nendheader\nframe\tq\n0\t1\n1\t2\n",
        r"no 'time' column.*'frame', 'q'",
    ),
    (
        read_storage,
        "short.sto",
        "x\nendheader\ntime\tq\tr\n0\t1\t2\n0.01\t1\n",
        r"Line 5 .* 2 values but there are 3",
    ),
    (
        read_storage,
        "text.sto",
        "x\nendheader\ntime\tq\n0\t1\n0.01\tabc\n",
        r"column 'q' .* 'abc', not a number",
    ),
    (
        read_storage,
        "empty.mot",
        "x\ninDegrees=no\nendheader\ntime,q,r\n0,1,2\n0.01,,2\n0.02,1,2\n",
        r"'q'.*row 1 \(time 0\.01 s\)",
    ),
    (
        read_storage,
        "time.sto",
        "x\nendheader\ntime\tq\tTime\n0\t1\t0\n0.01\t1\t0.01\n",
        r"duplicated column labels.*'Time'",
    ),
    (
        read_csv_table,
        "no_time.csv",
        "a,b\n1,2\n",
        r"no time column 'time' .*\['a', 'b'\].*time_column=",
    ),
    (
        read_csv_table,
        "gap.csv",
        "time,Biceps,Triceps\n0,1,1\n0.001,1,1\n0.002,1,\n",
        r"'Triceps'.*row 2 \(time 0\.002 s\)",
    ),
    (read_csv_table, "backwards.csv", "time,a\n0.2,1\n0.1,1\n", "Time must increase"),
]


@pytest.mark.parametrize(
    ("reader", "name", "text", "message"), MALFORMED, ids=[row[1] for row in MALFORMED]
)
def test_a_malformed_file_is_refused_with_what_is_wrong(tmp_path, reader, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        reader(path)


WRONG_KIND = [
    # reader, a file of another kind (written into the folder), what the error must say
    (
        read_storage,
        lambda d: write_csv(d / "table.csv", TIME, {"a": TIME}),
        r"no 'endheader'.*read_csv_table",
    ),
    (
        read_storage,
        lambda d: write_c3d(d / "emg.c3d", ["EMG"], np.zeros((200, 1))),
        r"binary file, not an OpenSim storage.*read_c3d_analogs",
    ),
    (
        read_csv_table,
        lambda d: write_storage(d / "ik.mot", TIME, DEGREES, True, ",", ",,,"),
        r"OpenSim storage file .*read_storage",
    ),
    (
        read_csv_table,
        lambda d: write_c3d(d / "emg.c3d", ["EMG"], np.zeros((200, 1))),
        r"binary file, not a csv table.*read_c3d_analogs",
    ),
    (
        read_c3d_analogs,
        lambda d: write_storage(d / "ik.mot", TIME, DEGREES, True),
        r"not a c3d .*OpenSim storage file",
    ),
    (
        read_c3d_analogs,
        lambda d: write_csv(d / "emg.c3d", TIME, {"a": TIME}),
        r"not a c3d .*text file",
    ),
]


@pytest.mark.parametrize(("reader", "write", "message"), WRONG_KIND)
def test_a_file_of_another_kind_is_refused_with_the_reader_to_use(tmp_path, reader, write, message):
    with pytest.raises(ValueError, match=message):
        reader(write(tmp_path))


def test_storage_nan_names_column_and_time(tmp_path):
    angles = dict(DEGREES)
    angles["pro_sup"] = angles["pro_sup"].copy()
    angles["pro_sup"][7] = np.nan
    path = write_storage(tmp_path / "gap.mot", TIME, angles, True)
    with pytest.raises(ValueError, match=r"'pro_sup'.*row 7 \(time 0\.07 s\)"):
        read_storage(path)


def test_storage_time_must_increase(tmp_path):
    time = TIME.copy()
    time[10] = time[9]
    path = write_storage(tmp_path / "repeat.mot", time, DEGREES, True)
    with pytest.raises(ValueError, match=r"row 10 \(t = 0\.09 s\) does not come after row 9"):
        read_storage(path)


def test_storage_is_a_plain_picklable_dataclass(tmp_path):
    storage = read_storage(write_storage(tmp_path / "ik.mot", TIME, DEGREES, True))
    again = pickle.loads(pickle.dumps(storage))
    np.testing.assert_array_equal(again.data, storage.data)
    assert "50 samples x 5 columns at 100 Hz" in repr(storage)


# ---------------------------------------------------------------------- c3d
def test_c3d_round_trip_and_channel_selection(tmp_path):
    rng = np.random.default_rng(0)
    analogs = rng.normal(size=(400, 3))
    path = write_c3d(
        tmp_path / "trial.c3d", ["Force", "Biceps.EMG4", "Triceps.EMG5"], analogs, 2000.0, 100.0,
        units=["N", "V", "mV"],
    )  # fmt: skip
    everything = read_c3d_analogs(path)
    assert everything.labels == ["Force", "Biceps.EMG4", "Triceps.EMG5"]
    assert everything.rate == 2000.0
    assert everything.point_rate == 100.0
    assert everything.units == ["N", "V", "mV"]
    np.testing.assert_allclose(everything.data, analogs, rtol=1e-6, atol=1e-6)  # float32 file
    np.testing.assert_allclose(everything.time, np.arange(400) / 2000.0)
    emg = read_c3d_analogs(path, channels=["Triceps.EMG5", "Biceps.EMG4"])
    assert emg.labels == ["Triceps.EMG5", "Biceps.EMG4"]
    assert emg.units == ["mV", "V"]
    np.testing.assert_allclose(emg.data, analogs[:, [2, 1]], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(emg.column("Biceps.EMG4"), analogs[:, 1], rtol=1e-6, atol=1e-6)


def test_c3d_missing_channel_names_it_and_lists_the_others(tmp_path):
    path = write_c3d(tmp_path / "t.c3d", ["Biceps.EMG4", "Triceps.EMG5"], np.zeros((200, 2)))
    with pytest.raises(ValueError, match=r"'Biceps'.*did you mean \['Biceps\.EMG4'") as info:
        read_c3d_analogs(path, channels=["Biceps", "Deltoid"])
    assert "'Deltoid'" in str(info.value)
    assert "['Biceps.EMG4', 'Triceps.EMG5']" in str(info.value)


def test_c3d_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected a c3d"):
        read_c3d_analogs(tmp_path / "missing.c3d")
    good = write_c3d(tmp_path / "good.c3d", ["EMG"], np.zeros((4000, 1)))
    truncated = tmp_path / "truncated.c3d"
    truncated.write_bytes(good.read_bytes()[:1500])
    with pytest.raises(ValueError, match=r"could not read .* truncated or damaged"):
        read_c3d_analogs(truncated)


def test_c3d_nan_names_channel_and_time(tmp_path):
    analogs = np.zeros((400, 2))
    analogs[150, 1] = np.nan
    path = write_c3d(tmp_path / "gap.c3d", ["Biceps", "Triceps"], analogs, rate=1000.0)
    with pytest.raises(ValueError, match=r"'Triceps'.*row 150 \(time 0\.15 s\)"):
        read_c3d_analogs(path)
    read_c3d_analogs(path, channels=["Biceps"])  # the gap is in a channel not read


# ---------------------------------------------------------------------- csv
def test_csv_round_trip(tmp_path):
    time = np.arange(0, 0.01, 0.001)
    path = write_csv(tmp_path / "emg.csv", time, {"Biceps": np.sin(time), "Triceps": time})
    table = read_csv_table(path)
    assert table.labels == ["Biceps", "Triceps"]
    assert table.rate == pytest.approx(1000.0)
    np.testing.assert_allclose(table.column("Biceps"), np.sin(time))
    semicolons = write_csv(tmp_path / "emg_eu.csv", time, {"Biceps": time}, sep=";")
    assert read_csv_table(semicolons).labels == ["Biceps"]
    other_name = tmp_path / "t.csv"
    other_name.write_text("Frame,Time,EMG\n0,0.0,1\n1,0.5,2\n")
    table = read_csv_table(other_name, time_column="time")  # found ignoring case
    assert table.labels == ["Frame", "EMG"]
    assert table.rate == 2.0


def test_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected a csv table"):
        read_csv_table(tmp_path / "missing.csv")


def test_resample_is_linear_and_stays_inside():
    time = np.array([0.0, 1.0, 2.0])
    data = np.array([[0.0, 10.0], [1.0, 20.0], [4.0, 0.0]])
    np.testing.assert_allclose(
        resample(time, data, [0.0, 0.5, 1.5, 2.0]), [[0, 10], [0.5, 15], [2.5, 10], [4, 0]]
    )
    np.testing.assert_allclose(resample(time, data[:, 0], [1.25]), [1.75])
    with pytest.raises(ValueError, match=r"covers t = 0-2 s but times 1-2\.5 s"):
        resample(time, data, [1.0, 2.5])


# ---------------------------------------------------------------------- load_trials
RATE = 100.0


def analytic_angle(t):
    """q = 1.2 + 0.6 sin(pi t) rad and its exact derivatives."""
    w = np.pi
    return 1.2 + 0.6 * np.sin(w * t), 0.6 * w * np.cos(w * t), -0.6 * w * w * np.sin(w * t)


def write_ik(path, duration, rate=RATE, column="r_elbow_flex"):
    time = np.arange(round(duration * rate) + 1) / rate
    angle, _, _ = analytic_angle(time)
    return write_storage(path, time, {column: np.degrees(angle)}, in_degrees=True)


def write_emg(path, duration, amplitude: dict, rate=2000.0):
    """Raw EMG: a 97 Hz carrier of constant amplitude per channel (envelope 2 A / pi)."""
    time = np.arange(round(duration * rate) + 1) / rate
    carrier = np.sin(2 * np.pi * 97.0 * time)
    return write_csv(path, time, {label: a * carrier for label, a in amplitude.items()})


def test_load_trials_kinematics_and_opensim_torque(tmp_path, elbow):
    ik = write_ik(tmp_path / "ik.mot", 3.0)
    data = load_trials([{"kinematics": ik, "load_mass": 2.0, "subject": "S1"}])
    assert data.X.shape == (1, 301, 5)
    assert data.y.shape == (1, 301, 7)
    assert data.channels == [
        "elbow_angle",
        "elbow_velocity",
        "elbow_acceleration",
        "load_mass",
        "elbow_torque",
    ]
    assert data.muscles == ["BIClong", "BICshort", "BRA", "BRD", "TRIlong", "TRIlat", "TRImed"]
    assert np.isnan(data.y).all()
    assert data.X.dtype == np.float64
    assert data.groups.tolist() == ["S1"]
    assert data.trial_index.tolist() == [0]
    time = data.time[0]
    np.testing.assert_allclose(time, np.arange(301) / RATE, atol=1e-12)
    angle, velocity, acceleration = analytic_angle(time)
    X = data.X[0]
    np.testing.assert_allclose(X[:, 0], angle, atol=1e-8)
    np.testing.assert_allclose(X[:, 1], velocity, atol=1e-4)  # cubic Savitzky-Golay, 0.11 s
    np.testing.assert_allclose(X[:, 2], acceleration, atol=0.02)  # 0.3 % of its amplitude
    np.testing.assert_allclose(X[:, 3], 2.0)
    # OpenSim inverse dynamics on the computed derivatives = deepemg's torch inverse dynamics
    as_tensor = [torch.as_tensor(X[:, k], dtype=torch.float64) for k in range(3)]
    torch_torque = elbow.inverse_dynamics(*as_tensor, load_mass=2.0).numpy()
    np.testing.assert_allclose(X[:, 4], torch_torque, atol=1e-10)
    exact = elbow.inverse_dynamics(
        *[torch.as_tensor(v, dtype=torch.float64) for v in (angle, velocity, acceleration)],
        load_mass=2.0,
    ).numpy()
    np.testing.assert_allclose(X[:, 4], exact, atol=5e-3)  # inertia x acceleration error


def test_load_trials_names_channels_by_the_models_joint(tmp_path, arm26_with_load):
    """A model file's channels are named by its coordinate; the built-in elbow's stay elbow_*."""
    ik = write_ik(tmp_path / "ik.mot", 1.0)
    emg = write_emg(tmp_path / "emg.csv", 1.0, {"Biceps": 1e-3})
    trial = {
        "kinematics": ik,
        "load_mass": 1.0,
        "subject": "S1",
        "emg": emg,
        "emg_channels": {"BIClong": "Biceps"},
    }
    arm26 = load_trials(
        [trial], model=arm26_with_load, coordinate="r_elbow_flex", locked=ARM26_LOCKED
    )
    assert arm26.channels == [
        "r_elbow_flex_angle",
        "r_elbow_flex_velocity",
        "r_elbow_flex_acceleration",
        "load_mass",
        "r_elbow_flex_torque",
        "emg_BIClong",
    ]
    assert arm26.channels == layout_for(arm26_with_load).default_channels(["BIClong"])
    assert arm26.muscles == ["TRIlong", "TRIlat", "TRImed", "BIClong", "BICshort", "BRA"]
    elbow = load_trials([trial])
    assert KINEMATIC_CHANNELS == (
        "elbow_angle",
        "elbow_velocity",
        "elbow_acceleration",
        "load_mass",
        "elbow_torque",
    )
    assert elbow.channels == [*KINEMATIC_CHANNELS, "emg_BIClong"]  # unchanged
    np.testing.assert_array_equal(arm26.X[..., :4], elbow.X[..., :4])  # same kinematics, load
    np.testing.assert_array_equal(arm26.X[..., 5], elbow.X[..., 5])
    assert np.isfinite(arm26.X[..., 4]).all()  # OpenSim inverse dynamics of Arm26
    picked = load_trials(
        [trial],
        model=arm26_with_load,
        locked=ARM26_LOCKED,
        channels=["r_elbow_flex_angle", "load_mass"],
    )
    assert picked.X.shape == (1, 101, 2)
    with pytest.raises(ValueError, match=r"No channel named 'elbow_angle'.*r_elbow_flex_angle"):
        load_trials([trial], model=arm26_with_load, locked=ARM26_LOCKED, channels=["elbow_angle"])


def test_load_trials_downsamples_and_refuses_to_upsample(tmp_path):
    fast = write_ik(tmp_path / "fast.mot", 1.0, rate=200.0)
    data = load_trials([{"kinematics": fast, "load_mass": 0.0, "subject": 1}], rate=RATE)
    assert data.X.shape == (1, 101, 5)
    np.testing.assert_allclose(data.X[0, :, 0], analytic_angle(data.time[0])[0], atol=1e-8)
    slow = write_ik(tmp_path / "slow.mot", 1.0, rate=50.0)
    with pytest.raises(ValueError, match=r"sampled at 50 Hz, below rate=100 Hz.*rate=50"):
        load_trials([{"kinematics": slow, "load_mass": 0.0, "subject": 1}], rate=RATE)


def test_load_trials_torque_file_emg_and_subject_normalisation(tmp_path):
    trials = []
    for subject, gains in (("S1", (1.0, 2.0)), ("S2", (4.0, 1.0))):
        for k, gain in enumerate(gains):
            stem = f"{subject}_{k}"
            duration = 2.0 + k  # 201 and 301 frames
            ik = write_ik(tmp_path / f"{stem}.mot", duration)
            time = np.arange(int(duration * RATE) + 1) / RATE
            torque = write_storage(
                tmp_path / f"{stem}_id.sto", time, {"r_elbow_flex_moment": 3.0 + time}, False
            )
            emg = write_emg(
                tmp_path / f"{stem}_emg.csv",
                duration,
                {"Biceps": gain * 1e-3, "Triceps": 2e-4, "Brachioradialis": gain * 5e-4},
            )
            trials.append(
                {
                    "kinematics": ik,
                    "load_mass": float(k),
                    "subject": subject,
                    "torque": torque,
                    "emg": emg,
                    "emg_channels": {"TRIlong": "Triceps", "BIClong": "Biceps"}
                    | ({"BRD": "Brachioradialis"} if subject == "S1" else {}),
                }
            )
    with pytest.warns(UserWarning, match="some trials only|cropped to the shortest") as record:
        data = load_trials(trials)
    messages = " ".join(str(w.message) for w in record)
    assert "BRD" in messages
    assert "some trials only" in messages
    assert "cropped to the shortest trial (201 samples" in messages
    assert "S1_1.mot" in messages
    assert "S2_1.mot" in messages
    assert "S1_0.mot" not in messages
    assert data.channels[5:] == ["emg_BIClong", "emg_TRIlong"]  # ELBOW_CHANNELS order
    assert data.X.shape == (4, 201, 7)
    assert data.y.shape == (4, 201, 7)
    assert data.groups.tolist() == ["S1", "S1", "S2", "S2"]
    np.testing.assert_allclose(data.X[:, :, 4], 3.0 + data.time)  # torque from the file
    np.testing.assert_allclose(data.X[:, :, 3], [[0.0], [1.0], [0.0], [1.0]] * np.ones(201))
    biceps = data.y[:, :, data.muscles.index("BIClong")]
    # each subject's trials are normalised to that subject's largest envelope
    np.testing.assert_allclose(biceps.mean(axis=1), [0.5, 1.0, 1.0, 0.25], rtol=0.01)
    assert np.nanmax(data.y) <= 1.0
    assert np.nanmin(data.y) >= 0.0
    np.testing.assert_array_equal(data.X[:, :, 5], biceps)
    triceps = data.y[:, :, data.muscles.index("TRIlong")]
    np.testing.assert_allclose(triceps, 1.0, atol=0.03)  # same amplitude in every trial
    brd = data.y[:, :, data.muscles.index("BRD")]
    assert not np.isnan(brd[:2]).any()
    assert np.isnan(brd[2:]).all()
    for deep in ("BRA", "TRImed", "BICshort", "TRIlat"):
        assert np.isnan(data.y[:, :, data.muscles.index(deep)]).all()


def test_load_trials_windows_and_channels(tmp_path):
    trials = [
        {"kinematics": write_ik(tmp_path / "a.mot", 2.5), "load_mass": 1.0, "subject": "A"},
        {"kinematics": write_ik(tmp_path / "b.mot", 0.6), "load_mass": 3.0, "subject": "B"},
    ]
    with pytest.warns(UserWarning, match=r"shorter than one window.*b\.mot'\): 61 samples"):
        data = load_trials(trials, n_timesteps=100, channels=["elbow_angle", "load_mass"])
    assert data.X.shape == (2, 100, 2)
    assert data.trial_index.tolist() == [0, 0]
    np.testing.assert_allclose(data.time[:, 0], [0.0, 1.0])
    np.testing.assert_allclose(data.X[:, :, 1], 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        windows = load_trials(trials, n_timesteps=30)
    assert windows.X.shape == (10, 30, 5)
    assert windows.trial_index.tolist() == [0] * 8 + [1] * 2
    assert windows.groups.tolist() == ["A"] * 8 + ["B"] * 2
    with pytest.raises(ValueError, match=r"No channel named 'emg_BIClong'.*elbow_torque"):
        load_trials(trials, channels=["elbow_angle", "emg_BIClong"])
    with pytest.raises(ValueError, match="No trial holds a window of n_timesteps=1000"):
        load_trials(trials, n_timesteps=1000)


def test_load_trials_errors(tmp_path):
    ik = write_ik(tmp_path / "ik.mot", 1.0)
    emg = write_emg(tmp_path / "emg.csv", 1.0, {"Biceps": 1.0})
    base = {"kinematics": ik, "load_mass": 1.0, "subject": "S1"}
    with pytest.raises(FileNotFoundError, match=r"missing\.mot"):
        load_trials([base | {"kinematics": tmp_path / "missing.mot"}])
    with pytest.raises(
        ValueError, match=r"lacks \['subject'\] and has unknown keys \['emg_file'\]"
    ):
        load_trials([{"kinematics": ik, "load_mass": 1.0, "emg_file": emg}])
    with pytest.raises(ValueError, match="load_mass must be a finite number of kg >= 0"):
        load_trials([base | {"load_mass": -1.0}])
    with pytest.raises(KeyError, match=r"No column named 'elbow_flexion'.*angle_column"):
        load_trials([base | {"angle_column": "elbow_flexion"}])
    with pytest.raises(ValueError, match=r"give 'emg' .* and 'emg_channels'"):
        load_trials([base | {"emg": emg}])
    with pytest.raises(ValueError, match=r"No EMG channel named 'Biceps.EMG4'.*\['Biceps'\]"):
        load_trials([base | {"emg": emg, "emg_channels": {"BIClong": "Biceps.EMG4"}}])
    with pytest.raises(ValueError, match=r"names \['Biceps'\], which are not muscles"):
        load_trials([base | {"emg": emg, "emg_channels": {"Biceps": "Biceps"}}])
    short_emg = write_emg(tmp_path / "short.csv", 0.5, {"Biceps": 1.0})
    with pytest.raises(ValueError, match=r"EMG samples in .* cover t = 0-0\.5 s.* 0-1 s"):
        load_trials([base | {"emg": short_emg, "emg_channels": {"BIClong": "Biceps"}}])
    slow_emg = write_emg(tmp_path / "slow.csv", 1.0, {"Biceps": 1.0}, rate=500.0)
    with pytest.raises(ValueError, match=r"slow\.csv.*450 Hz is not below .*rate=500 Hz"):
        load_trials([base | {"emg": slow_emg, "emg_channels": {"BIClong": "Biceps"}}])
    with pytest.raises(ValueError, match="no muscle named 'DELT1'"):
        load_trials([base], muscles=["BIClong", "DELT1"])
    with pytest.raises(ValueError, match="no coordinate 'elbow_flexion'"):
        load_trials([base], coordinate="elbow_flexion")
    gap = write_storage(
        tmp_path / "gap.mot", np.arange(3) / RATE, {"r_elbow_flex": [10.0, np.nan, 12.0]}, True
    )
    with pytest.raises(ValueError, match=r"'r_elbow_flex'.*row 1 \(time 0\.01 s\)"):
        load_trials([base | {"kinematics": gap}])
    tiny = write_ik(tmp_path / "tiny.mot", 0.05)
    with pytest.raises(ValueError, match=r"fewer than the 11 of the 0\.1 s derivative window"):
        load_trials([base | {"kinematics": tiny}])
    with pytest.raises(ValueError, match="trials is empty"):
        load_trials([])
