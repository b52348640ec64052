"""StreamingPredictor: streamed EMG equals offline predict, outputs lag by at most one window,
incoming samples are checked, and reset starts a new sequence."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from deepemg import NMMRegressor
from deepemg.streaming import StreamingPredictor, StreamOutput
from deepemg.windows import window_starts
from tests.conftest import FAST_NMM, simulated

WINDOW = FAST_NMM["window"]
INPUTS = ["elbow_angle", "elbow_velocity", "elbow_acceleration", "load_mass"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return simulated(tmp_path_factory, 1, 2, 2.0)


@pytest.fixture(scope="module")
def long_trial(tmp_path_factory):
    """One 6 s trial (600 steps): longer than the predictor's first buffer."""
    return simulated(tmp_path_factory, 1, 1, 6.0).X[0]


@pytest.fixture(scope="module")
def nmm(data):
    return NMMRegressor(random_state=0, **FAST_NMM).fit(data.X, data.y)


@pytest.fixture(scope="module")
def at_overlap(nmm):
    """The fitted estimator with another predict_overlap (copies, made once each)."""
    cache = {}

    def get(overlap):
        if overlap not in cache:
            cache[overlap] = copy.deepcopy(nmm).set_params(predict_overlap=overlap)
        return cache[overlap]

    return get


def stream(predictor, X, chunk):
    """Feed ``X`` in chunks; the outputs (finish's last) and ``pending`` after each update."""
    outputs, pending = [], []
    for t in range(0, len(X), chunk):
        outputs.append(predictor.update(X[t : t + chunk]))
        pending.append(predictor.pending)
    outputs.append(predictor.finish())
    return outputs, pending


def joined(outputs) -> np.ndarray:
    """The outputs concatenated, after checking that each starts where the last stopped."""
    stop = 0
    for out in outputs:
        assert isinstance(out, StreamOutput)
        assert out.start == stop
        stop = out.stop
    return np.concatenate([out.emg for out in outputs])


# ---------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
@pytest.mark.parametrize("length", [WINDOW, WINDOW + 1, 200, 173])
def test_streamed_emg_equals_offline_predict(data, at_overlap, overlap, length):
    estimator = at_overlap(overlap)
    X = data.X[1, :length]
    offline = estimator.predict(X[None])[0]
    predictor = StreamingPredictor(estimator)
    for chunk in (1, 3, 7, 100):
        outputs, pending = stream(predictor.reset(), X, chunk)
        emg = joined(outputs)
        assert emg.shape == offline.shape == (length, 7)
        np.testing.assert_allclose(emg, offline, rtol=0, atol=1e-6)
        assert max(pending) <= predictor.latency == WINDOW
        assert predictor.n_emitted == predictor.n_seen == length
        assert predictor.finished


def test_latency_is_one_window_and_tight(data, nmm):
    """One sample per update: the newest output is never more than ``window`` samples behind,
    and is exactly that far behind whenever ``n - window`` is off the grid."""
    predictor = StreamingPredictor(nmm)  # predict_overlap 0.25: stride 38
    assert predictor.stride == int(np.diff(window_starts(400, WINDOW, 0.25))[0]) == 38
    for n, sample in enumerate(data.X[0], start=1):
        out = predictor.update(sample)
        if n < WINDOW:
            assert len(out) == 0
            assert out.start == 0
            continue
        behind = n - predictor.n_emitted
        on_grid = (n - WINDOW) % predictor.stride == 0
        assert behind == (WINDOW - 1 if on_grid else WINDOW) <= predictor.latency
    assert predictor.latency / nmm.rate == pytest.approx(0.5)  # s


def test_end_aligned_window_is_why_outputs_wait(data, at_overlap):
    """Emitting a sample once its grid windows ran would be wrong: offline's end-aligned
    window (only known at finish) also covers the last window's samples."""
    estimator = at_overlap(0.5)  # stride 25
    full = estimator.predict(data.X[:1, :190])[0]  # windows ..., 125, 140 (end-aligned)
    longer = estimator.predict(data.X[:1, :200])[0]  # windows ..., 125, 150: none at 140
    assert not np.allclose(full[140:175], longer[140:175], atol=1e-6)
    np.testing.assert_allclose(full[:140], longer[:140], rtol=0, atol=1e-6)


def test_stride_one_has_latency_window_minus_one(data, at_overlap):
    estimator = at_overlap(0.99)  # round(0.5) = 0 -> stride 1: a window at every step
    predictor = StreamingPredictor(estimator)
    assert predictor.stride == 1
    assert predictor.latency == WINDOW - 1
    X = data.X[0, :120]
    outputs, pending = stream(predictor, X, 7)
    np.testing.assert_allclose(joined(outputs), estimator.predict(X[None])[0], atol=1e-6)
    assert max(pending) <= WINDOW - 1


def test_long_stream_compacts_its_buffer(long_trial, nmm):
    """600 samples pass through a buffer of 264 rows (compacted), and a 600-sample chunk
    makes it grow: both give offline's EMG."""
    offline = nmm.predict(long_trial[None])[0]
    predictor = StreamingPredictor(nmm)
    for chunk in (1, 5, 600):
        outputs, _ = stream(predictor.reset(), long_trial, chunk)
        np.testing.assert_allclose(joined(outputs), offline, rtol=0, atol=1e-6)


def test_inputs_alone_and_unused_nan_channels(data, nmm):
    """A source with only the four inputs, or with NaN torque/EMG, gives the same EMG."""
    X = data.X[0]
    offline = nmm.predict(X[None])[0]
    inputs = [nmm.channels_.index(c) for c in INPUTS]
    alone = StreamingPredictor(nmm, channels=INPUTS)
    np.testing.assert_allclose(joined(stream(alone, X[:, inputs], 3)[0]), offline, atol=1e-6)
    holey = X.copy()
    holey[:, 4:] = np.nan  # torque and surface EMG not available in real time
    full = StreamingPredictor(nmm)
    np.testing.assert_allclose(joined(stream(full, holey, 3)[0]), offline, atol=1e-6)


# ---------------------------------------------------------------------- checks


@pytest.fixture
def started(data, nmm):
    """A predictor that has seen the first 10 samples of trial 0."""
    predictor = StreamingPredictor(nmm)
    predictor.update(data.X[0, :10])
    return predictor


def test_wrong_shapes_say_what_to_send(started, data):
    with pytest.raises(ValueError, match=r"shaped \(n_new, 10\).*got shape \(3, 4\)"):
        started.update(data.X[0, 10:13, :4])
    with pytest.raises(ValueError, match="Transpose them"):
        started.update(data.X[0, 10:13].T)
    with pytest.raises(ValueError, match="real numbers"):
        started.update(data.X[0, 10:13].astype(complex))
    assert started.n_seen == 10
    assert len(started.update(data.X[0, 10])) == 0
    assert started.n_seen == 11
    assert len(started.update(np.empty((0, 10)))) == 0
    assert started.n_seen == 11


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (0, np.nan, r"sample 12 holds nan in 'elbow_angle'; interpolate"),
        (2, np.inf, r"sample 12 holds inf in 'elbow_acceleration'"),
        (0, 90.0, r"sample 12: 'elbow_angle' = 90 rad .*did you send degrees"),
        (0, -0.5, r"sample 12: 'elbow_angle' = -0.5 rad lies outside the range"),
        (3, 5000.0, r"sample 12: 'load_mass' = 5000; .* kg, between 0 and 50"),
        (3, -1.0, r"sample 12: 'load_mass' = -1; "),
    ],
)
def test_bad_samples_are_refused_with_their_index(started, data, column, value, message):
    chunk = data.X[0, 10:15].copy()
    chunk[2, column] = value
    with pytest.raises(ValueError, match=message):
        started.update(chunk)
    assert started.n_seen == 10
    assert started.n_emitted == 0
    started.update(data.X[0, 10:15])  # the corrected samples are accepted
    assert started.n_seen == 15


def test_velocity_in_degrees_fails_at_the_window(data, nmm):
    """The derivative check runs per window (a few samples cannot tell); a failing update
    changes nothing, and the corrected samples then give offline's EMG."""
    X = data.X[0]
    degrees = X.copy()
    degrees[:, 1] = np.degrees(degrees[:, 1])
    predictor = StreamingPredictor(nmm)  # windows every 38 samples; at rest until ~50
    predictor.update(X[:76])
    with pytest.raises(
        ValueError,
        match=r"samples 38\.\.87 \(one window\): 'elbow_acceleration' is not the time deriv",
    ):
        predictor.update(degrees[76:126])
    assert predictor.n_seen == 76
    outputs = [predictor.update(X[76:])]
    outputs.append(predictor.finish())
    rest = np.concatenate([out.emg for out in outputs])
    np.testing.assert_allclose(rest[-124:], nmm.predict(X[None])[0, -124:], atol=1e-6)
    unchecked = StreamingPredictor(nmm, check_derivatives=False)
    unchecked.update(degrees)  # no error without the check


def test_channels_must_hold_the_inputs(nmm):
    with pytest.raises(ValueError, match=r"channels lack \['load_mass'\]"):
        StreamingPredictor(nmm, channels=INPUTS[:3])
    with pytest.raises(TypeError, match="not one string"):
        StreamingPredictor(nmm, channels="elbow_angle")
    with pytest.raises(Exception, match="not fitted"):
        StreamingPredictor(NMMRegressor())


def test_finish_and_reset(data, nmm):
    X = data.X
    predictor = StreamingPredictor(nmm)
    predictor.update(X[0, : WINDOW - 1])
    with pytest.raises(ValueError, match="fewer than the window of 50: offline predict"):
        predictor.finish()
    predictor.update(X[0, WINDOW - 1 : 120])
    predictor.finish()
    with pytest.raises(RuntimeError, match="call reset"):
        predictor.update(X[0, 120:121])
    with pytest.raises(RuntimeError, match="reset"):
        predictor.finish()
    # a new sequence: indices from 0, the first one forgotten
    outputs, _ = stream(predictor.reset(), X[1], 7)
    np.testing.assert_allclose(joined(outputs), nmm.predict(X[1:])[0], atol=1e-6)
    # reset in the middle of a sequence
    predictor.reset().update(X[0, :130])
    outputs, _ = stream(predictor.reset(), X[1], 100)
    np.testing.assert_allclose(joined(outputs), nmm.predict(X[1:])[0], atol=1e-6)
    # an empty stream finishes empty
    assert len(predictor.reset().finish()) == 0


# ---------------------------------------------------------------------- threads and state


def test_threads_and_the_estimator_are_left_alone(data, nmm):
    before_threads = torch.get_num_threads()
    network = nmm.net_.module_.network
    before_mode = network.training
    reference = nmm.predict(data.X[:1])[0]
    predictor = StreamingPredictor(nmm)
    assert predictor._network is not network
    with predictor:
        assert torch.get_num_threads() == 1
        predictor.update(data.X[0, :100])
        with pytest.raises(RuntimeError, match="already in a with-block"):
            predictor.__enter__()
    assert torch.get_num_threads() == before_threads
    predictor.update(data.X[0, 100:])
    assert torch.get_num_threads() == before_threads
    assert network.training == before_mode
    np.testing.assert_array_equal(nmm.predict(data.X[:1])[0], reference)


def test_whole_trial_physics_streams_the_network_with_a_warning(nmm, data):
    corrected = copy.deepcopy(nmm).set_params(predict_physics="torque")
    with pytest.warns(UserWarning, match="gives the network's EMG"):
        stream = StreamingPredictor(corrected)
    emg = np.concatenate([stream.update(data.X[0]).emg, stream.finish().emg])
    np.testing.assert_allclose(emg, nmm.predict(data.X[:1])[0], atol=1e-6)  # "none"
    assert not np.allclose(emg, corrected.predict(data.X[:1])[0], atol=1e-3)
