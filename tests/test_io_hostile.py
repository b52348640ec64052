"""Hostile but realistic files for the readers: c3d files whose analog rate is not a whole
multiple of their marker rate."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from deepemg.io import read_c3d_analogs

from .test_io import write_c3d


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
    assert read.rate == rate and read.point_rate == point_rate
    np.testing.assert_array_equal(read.data, analogs)
    np.testing.assert_allclose(read.time[-1], (len(analogs) - 1) / rate)
