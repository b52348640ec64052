"""Hostile but realistic files for the readers: an over-long manifest cell, a muscle or an
electrode mapped twice, a trial listed twice, a manifest that is not UTF-8, and c3d files whose
analog rate is not a whole multiple of their marker rate."""

from __future__ import annotations

import csv
import struct

import numpy as np
import pytest

from deepemg.cli import main
from deepemg.io import load_trials, read_c3d_analogs, read_manifest

from .test_io import write_c3d
from .test_reliability_io import _folder

LIMIT = csv.field_size_limit()
EMG_HEADER = "subject,load_mass,kinematics,emg,emg_channels"


def _emg_folder(tmp_path, mapping: str):
    """A folder whose one trial maps EMG channels by ``mapping`` (the emg file is ik.mot)."""
    return _folder(tmp_path, f"S01,1,ik.mot,ik.mot,{mapping}\n", header=EMG_HEADER)


# ------------------------------------------------------------- 1. an over-long cell
def test_over_long_cell_names_the_file_line_and_column(tmp_path):
    long = "x" * (LIMIT + 10)
    folder = _folder(tmp_path, f"S01,1,ik.mot\nS01,1,{long}\n")
    with pytest.raises(ValueError, match=r"trials\.csv, line 3, column kinematics: a cell of more"):
        read_manifest(folder)
    # in another column, quoted over several lines: the line where the cell passes the limit
    folder = _folder(tmp_path, f'S01,1,ik.mot,ik.mot,"BIClong={long[:100]}\n{long}"\n',
                     header=EMG_HEADER)  # fmt: skip
    with pytest.raises(
        ValueError, match=r"line 3, column emg_channels \(in the row that begins on line 2\): a"
    ):
        read_manifest(folder)
    # in the header row, and beyond the header's columns
    folder = _folder(tmp_path, "S01,1,ik.mot\n", header=f"subject,load_mass,{long}")
    with pytest.raises(ValueError, match=r"trials\.csv, line 1, column 3: a cell of more"):
        read_manifest(folder)
    folder = _folder(tmp_path, f"S01,1,ik.mot,{long}\n")
    with pytest.raises(ValueError, match=r"line 2, column 4 \(beyond the header's 3 columns\)"):
        read_manifest(folder)
    assert csv.field_size_limit() == LIMIT  # the csv module's limit is left as it was
    # a long cell under the limit is read as before: here a file that does not exist
    folder = _folder(tmp_path, f"S01,1,{'y' * 200}.mot\n")
    with pytest.raises(FileNotFoundError, match="line 2: kinematics file"):
        read_manifest(folder)


def test_over_long_cell_is_one_line_from_the_command(tmp_path, capsys):
    folder = _folder(tmp_path, f"S01,1,{'x' * (LIMIT + 1)}\n")
    assert main(["fit", "--data", str(folder), "--out", str(tmp_path / "m.deepemg")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("deepemg fit: error: "), err
    assert err.count("\n") == 1, err
    assert "trials.csv, line 2, column kinematics: a cell of more than" in err
    assert "not a path or a label" in err


# ------------------------------------------------------------- 2. a mapping given twice
def test_muscle_mapped_twice_is_refused(tmp_path):
    folder = _emg_folder(tmp_path, "BIClong=EMG_BIClong;BIClong=EMG_BICshort")
    with pytest.raises(ValueError, match=r"trials\.csv, line 2: emg_channels maps BIClong twice"):
        read_manifest(folder)
    folder = _emg_folder(tmp_path, "BIClong=EMG1; BIClong =EMG1")  # the same pair twice, too
    with pytest.raises(ValueError, match="maps BIClong twice"):
        read_manifest(folder)


def test_electrode_mapped_to_two_muscles_is_refused(tmp_path):
    folder = _emg_folder(tmp_path, "BIClong=EMG1;TRIlong=EMG1")
    with pytest.raises(
        ValueError, match=r"line 2: emg_channels gives the channel 'EMG1' to BIClong and TRIlong"
    ):
        read_manifest(folder)
    # the same rule for trial dicts, before any file is read
    trial = {
        "kinematics": tmp_path / "none.mot",
        "load_mass": 1.0,
        "subject": "S01",
        "emg": tmp_path / "none.csv",
        "emg_channels": {"BIClong": "EMG1", "BICshort": "EMG1"},
    }
    with pytest.raises(ValueError, match="trial 0: emg_channels gives the channel 'EMG1' to BIC"):
        load_trials([trial])


def test_mapping_cell_neighbours(tmp_path):
    for mapping in ("=EMG1", "BIClong=", "BIClong=EMG1;;TRIlong=EMG2", "BIClong"):
        with pytest.raises(ValueError, match="emg_channels must read 'muscle=channel"):
            read_manifest(_emg_folder(tmp_path, mapping))
    (trial,) = read_manifest(_emg_folder(tmp_path, " BIClong = EMG1 ;TRIlong=EMG2"))
    assert trial["emg_channels"] == {"BIClong": "EMG1", "TRIlong": "EMG2"}
    # labels differ in case: two electrodes
    (trial,) = read_manifest(_emg_folder(tmp_path, "BIClong=emg1;TRIlong=EMG1"))
    assert trial["emg_channels"] == {"BIClong": "emg1", "TRIlong": "EMG1"}


# ------------------------------------------------------------- 4. a trial listed twice
def test_duplicated_row_names_both_lines(tmp_path):
    folder = _folder(tmp_path, "S01,1,ik.mot\nS01,2,other.mot\nS01,1,ik.mot\n")
    (folder / "other.mot").write_text("")
    with pytest.raises(ValueError, match=r"trials\.csv, lines 2 and 4 both read ik\.mot"):
        read_manifest(folder)
    # the same file however it is spelled, whatever the other cells say
    (folder / "sub").mkdir()
    folder = _folder(tmp_path, "S01,1,ik.mot\nS01,2,./sub/../ik.mot\n")
    with pytest.raises(ValueError, match=r"lines 2 and 3 both read ik\.mot"):
        read_manifest(folder)
    folder = _folder(tmp_path, "S01,1,ik.mot\nS02,1,ik.mot\n")  # under two subjects: a leak
    with pytest.raises(ValueError, match=r"lines 2 and 3 .*subjects 'S01' and 'S02'"):
        read_manifest(folder)


def test_one_file_read_twice_where_that_is_two_trials(tmp_path):
    # two angles of one kinematics file (both arms) are two trials
    header = "subject,load_mass,kinematics,angle_column"
    rows = "S01,1,ik.mot,r_elbow_flex\nS01,1,ik.mot,l_elbow_flex\n"
    assert len(read_manifest(_folder(tmp_path, rows, header=header))) == 2
    rows = "S01,1,ik.mot,r_elbow_flex\nS01,1,ik.mot,r_elbow_flex\n"
    with pytest.raises(ValueError, match=r"lines 2 and 3 both read ik\.mot"):
        read_manifest(_folder(tmp_path, rows, header=header))
    # one EMG recording (and one MVC file) shared by two trials cut from it: allowed
    folder = _folder(tmp_path, "S01,1,ik.mot,emg.csv,BIClong=EMG1\n"
                     "S01,1,ik2.mot,emg.csv,BIClong=EMG1\n", header=EMG_HEADER)  # fmt: skip
    for name in ("ik2.mot", "emg.csv"):
        (folder / name).write_text("")
    assert [t["emg"].name for t in read_manifest(folder)] == ["emg.csv", "emg.csv"]


# ------------------------------------------------------------- 5. not UTF-8
def test_latin1_manifest_names_the_file_and_line(tmp_path):
    folder = _folder(tmp_path, "")
    text = "subject,load_mass,kinematics\nS01,1,ik.mot\nRené,1,ik2.mot\n"
    (folder / "trials.csv").write_bytes(text.encode("latin-1"))
    offset = text.encode("latin-1").index(b"\xe9")
    with pytest.raises(ValueError, match=rf"trials\.csv is not UTF-8: byte {offset} \(line 3\)"):
        read_manifest(folder)
    with pytest.raises(ValueError, match="save it as UTF-8"):
        read_manifest(folder)
    # with a byte-order mark and Windows line ends the offset is still the file's
    raw = b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("cp1252")
    (folder / "trials.csv").write_bytes(raw)
    offset = raw.index(b"\xe9")
    with pytest.raises(ValueError, match=rf"byte {offset} \(line 3\)"):
        read_manifest(folder)
    # UTF-16 (a spreadsheet's "Unicode text"): the same error
    (folder / "trials.csv").write_bytes(text.encode("utf-16"))
    with pytest.raises(ValueError, match=r"is not UTF-8: byte 0 \(line 1\)"):
        read_manifest(folder)


def test_latin1_manifest_is_one_line_from_the_command(tmp_path, capsys):
    folder = _folder(tmp_path, "")
    (folder / "trials.csv").write_bytes(b"subject,load_mass,kinematics\nS\xe9,1,ik.mot\n")
    assert main(["fit", "--data", str(folder), "--out", str(tmp_path / "m.deepemg")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "trials.csv is not UTF-8" in err, err


def test_utf8_bom_crlf_and_accents_still_read(tmp_path):
    folder = _folder(tmp_path, "")
    (folder / "ik2.mot").write_text("")
    text = "subject,load_mass,kinematics\r\nRené,1,ik.mot\r\nS02,2,ik2.mot\r\n"
    (folder / "trials.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    trials = read_manifest(folder)
    assert [(t["subject"], t["load_mass"], t["kinematics"].name) for t in trials] == [
        ("René", 1.0, "ik.mot"),
        ("S02", 2.0, "ik2.mot"),
    ]
    (folder / "trials.csv").write_bytes(text.replace("\r\n", "\r").encode("utf-8"))  # old Mac
    assert len(read_manifest(folder)) == 2


# ------------------------------------------------------------- 3. c3d rates
def _ramp(n):
    """Two channels whose every sample says where it belongs: +i and -i."""
    i = np.arange(1.0, n + 1)
    return np.column_stack([i, -i])


def _set_analog_rate(path, old: float, new: float):
    """Change ANALOG:RATE in the parameter section of a c3d written by ezc3d (header kept)."""
    raw = bytearray(path.read_bytes())
    data_start = struct.unpack("<H", raw[16:18])[0]
    section = raw[512 : (data_start - 1) * 512]
    assert section.count(struct.pack("<f", old)) == 1
    at = 512 + section.index(struct.pack("<f", old))
    raw[at : at + 4] = struct.pack("<f", new)
    path.write_bytes(bytes(raw))
    return path


def test_c3d_analog_rate_not_a_multiple_of_the_point_rate(tmp_path):
    # ezc3d writes 8 samples per frame for 1000 Hz at 120 Hz: read back as 960 Hz until now
    path = write_c3d(tmp_path / "t.c3d", ["A", "B"], _ramp(2000), rate=1000.0, point_rate=120.0)
    with pytest.raises(
        ValueError,
        match=r"t\.c3d': its analog rate, 1000 Hz \(ANALOG:RATE\), is not a whole multiple of "
        r"its marker \(point\) rate, 120 Hz",
    ):
        read_c3d_analogs(path)
    # below the marker rate
    path = write_c3d(tmp_path / "slow.c3d", ["A"], np.ones((100, 1)), rate=50.0, point_rate=100.0)
    with pytest.raises(
        ValueError, match=r"slow\.c3d': its analog rate, 50 Hz \(ANALOG:RATE\), is not a whole"
    ):
        read_c3d_analogs(path)


@pytest.mark.parametrize(("written", "claimed"), [(1080.0, 1200.0), (1080.0, 1000.0)])
def test_c3d_header_and_analog_rate_disagree(tmp_path, written, claimed):
    """9 samples per frame in the header and the data, ANALOG:RATE another rate: ezc3d reads
    10 (or 8) per frame, marker values and the wrong samples in the EMG (or a short file)."""
    path = write_c3d(tmp_path / "t.c3d", ["A", "B"], _ramp(2160), rate=written, point_rate=120.0)
    _set_analog_rate(path, written, claimed)
    with pytest.raises(ValueError, match=rf"t\.c3d': .*{claimed:g} Hz.*120 Hz") as info:
        read_c3d_analogs(path)
    assert "9 analog samples per marker frame" in str(info.value)
    assert "truncated" not in str(info.value)


@pytest.mark.parametrize(("rate", "point_rate"), [(100.0, 100.0), (2000.0, 100.0), (1200.0, 120.0)])
def test_c3d_whole_multiples_are_read_exactly(tmp_path, rate, point_rate):
    """The legal neighbours: analog rate equal to the marker rate, or a whole multiple of it."""
    analogs = _ramp(int(2 * rate))
    path = write_c3d(tmp_path / "t.c3d", ["A", "B"], analogs, rate=rate, point_rate=point_rate)
    read = read_c3d_analogs(path)
    assert read.rate == rate
    assert read.point_rate == point_rate
    np.testing.assert_array_equal(read.data, analogs)
    np.testing.assert_allclose(read.time[-1], (len(analogs) - 1) / rate)
