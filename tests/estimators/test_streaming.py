"""StreamingPredictor: streamed EMG equals offline predict, outputs lag by at most one window,
incoming samples are checked, and reset starts a new sequence; with the physics
(predict_physics="torque"), each sample equals the offline correction of its span, for one
network and an ensemble, within the stream's latency, and no update runs more than its share of
the work."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

from deepemg import NMMEnsemble, NMMRegressor, streaming
from deepemg.correction import CG_ITERATIONS, GAUSS_NEWTON_ITERATIONS
from deepemg.streaming import (
    NETWORK_COST,
    PREPARE_COSTS,
    STEP_COSTS,
    StreamingPredictor,
    StreamOutput,
    _schedule,
    _simulate,
    span_corrections,
)
from deepemg.validation import torque_target
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


def test_inputs_alone_and_unused_nan_channels(data):
    """A network that reads no EMG (emg_inputs=False): a source with only the four inputs, or
    with NaN torque/EMG, gives the same EMG."""
    nmm = NMMRegressor(random_state=0, emg_inputs=False, **FAST_NMM).fit(data.X, data.y)
    X = data.X[0]
    offline = nmm.predict(X[None])[0]
    inputs = [nmm.channels_.index(c) for c in INPUTS]
    alone = StreamingPredictor(nmm, channels=INPUTS)
    np.testing.assert_allclose(joined(stream(alone, X[:, inputs], 3)[0]), offline, atol=1e-6)
    holey = X.copy()
    holey[:, 4:] = np.nan  # torque and surface EMG not available in real time
    full = StreamingPredictor(nmm)
    np.testing.assert_allclose(joined(stream(full, holey, 3)[0]), offline, atol=1e-6)


def test_a_network_that_reads_emg_needs_it_in_every_sample(data, nmm):
    """The default network reads the surface EMG: the stream streams it as offline, in any
    column order, and refuses a source without it or a gap in it, saying what to do."""
    assert nmm.emg_inputs_ == [c for c in nmm.channels_ if c.startswith("emg_")]
    X = data.X[0]
    order = [*INPUTS, *reversed(nmm.emg_inputs_)]
    columns = [nmm.channels_.index(c) for c in order]
    shuffled = StreamingPredictor(nmm, channels=order)
    offline = nmm.predict(X[None])[0]
    np.testing.assert_allclose(joined(stream(shuffled, X[:, columns], 3)[0]), offline, atol=1e-6)
    with pytest.raises(ValueError, match=r"channels lack \['emg_BIClong'.*emg_inputs"):
        StreamingPredictor(nmm, channels=INPUTS)
    holey = X.copy()
    holey[40, nmm.channels_.index("emg_BRD")] = np.nan
    with pytest.raises(ValueError, match="sample 40 holds nan in 'emg_BRD'; interpolate"):
        StreamingPredictor(nmm).update(holey)
    negative = X.copy()
    negative[40, nmm.channels_.index("emg_BRD")] = -0.5
    with pytest.raises(ValueError, match=r"samples 0\.\.199: the samples' EMG .* negative"):
        StreamingPredictor(nmm).update(negative)


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
    assert predictor._networks[0][0] is not network
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


# ---------------------------------------------------------------------- with the physics


@pytest.fixture(scope="module")
def corrected(nmm):
    """The fitted estimator with the default physics, predict_physics="torque"."""
    return copy.deepcopy(nmm).set_params(predict_physics="torque")


@pytest.fixture(scope="module")
def ensemble(data):
    """Two small members, with the physics."""
    template = NMMRegressor(**{**FAST_NMM, "predict_physics": "torque"})
    return NMMEnsemble(template, n_members=2, n_jobs=1, random_state=0).fit(data.X, data.y)


OFFLINE_ATOL = 1e-3
"""Streamed against a reference whose inputs differ from the stream's by rounding.

The correction's conjugate gradients run in float32 (since c1a343a): rounding-level changes of
its inputs (the network EMG, <= 6e-8 from offline's, its windows batched differently; the
inverse-dynamics torque computed a block at a time; the members solved as one batch) can move
its answer by up to 5e-4 (measured) where a step-length choice flips (more for the ensemble's
members: :data:`MEMBERS_OFFLINE_ATOL`). From the stream's own
network EMG, one network with a torque channel equals the offline correction to 1e-6
(bit for bit, measured)."""


MEMBERS_OFFLINE_ATOL = 2.5e-2
"""The ensemble test's streamed mean against the offline one, on every sample: a span whose
Gauss-Newton step choice flips on rounding moves as a whole (measured: 1.9e-2 at most, 12 % of
the samples beyond :data:`OFFLINE_ATOL`, since the synergist level term changed the members'
fits; 4.7e-3 on 4 % before it). The stream equals the reference computed from its own network
EMG within :data:`OFFLINE_ATOL` there, which is the test's sharp check."""

MEMBERS_WITHIN_OFFLINE_ATOL = 0.85
"""The share of that test's samples within :data:`OFFLINE_ATOL` of offline (measured 0.88)."""


def stream_priors(predictor) -> list[np.ndarray]:
    """Each member's network EMG of the sequence the predictor streamed (its buffer)."""
    assert predictor._origin == 0
    n = predictor.n_seen
    prior = predictor._total[:n] / predictor._count[:n][..., None]
    return [prior[:, b] for b in range(predictor.n_members)]


def span_reference(members, X, subject=None, row=0, torque=None, priors=None) -> np.ndarray:
    """Each sample's EMG as the offline correction of its span, by the documented rule
    (:func:`deepemg.streaming.span_corrections`: ``correct_emg`` on each span, not the stream's
    queue, batched members and prepared drives)."""
    emg = span_corrections(members, X, subject=subject, row=row, priors=priors, torque=torque)
    assert not np.isnan(emg).any()
    return emg


@pytest.mark.parametrize("length", [WINDOW, WINDOW + 1, WINDOW + 13, 173, 200])
def test_corrected_stream_equals_each_spans_offline_correction(data, corrected, length):
    X = data.X[1, :length]
    offline = span_reference([corrected], X)
    network = corrected.predict(X[None], predict_physics="level")[0]
    predictor = StreamingPredictor(corrected)  # the estimator's "torque"
    assert predictor.predict_physics == "torque"
    for chunk in (1, 7, 100):
        emg = joined(stream(predictor.reset(), X, chunk)[0])
        priors = stream_priors(predictor)
        np.testing.assert_allclose(priors[0], network, rtol=0, atol=1e-7)
        expected = span_reference([corrected], X, priors=priors)
        np.testing.assert_allclose(emg, expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(emg, offline, rtol=0, atol=OFFLINE_ATOL)
        assert predictor.n_emitted == predictor.n_seen == length
    # the correction moves the EMG: a stream that gave the network's EMG would fail above
    assert np.abs(expected - network).max() > 1e-2


@pytest.mark.parametrize("which", ["single", "ensemble"])
def test_one_span_sequence_equals_offline_predict_with_the_physics(
    data, corrected, ensemble, which
):
    estimator = corrected if which == "single" else ensemble
    X = data.X[0, :WINDOW]
    offline = estimator.predict(X[None])[0]  # predict_physics="torque"
    for chunk in (1, WINDOW):
        predictor = StreamingPredictor(estimator)
        np.testing.assert_allclose(joined(stream(predictor, X, chunk)[0]), offline, atol=1e-6)


def test_ensemble_streams_the_mean_of_its_members(data, ensemble):
    X = data.X[1, :173]
    offline = span_reference(ensemble.estimators_, X)
    predictor = StreamingPredictor(ensemble)
    assert predictor.n_members == 2
    assert predictor.predict_physics == "torque"
    for chunk in (1, 13):
        emg = joined(stream(predictor.reset(), X, chunk)[0])
        priors = stream_priors(predictor)
        expected = span_reference(ensemble.estimators_, X, priors=priors)
        np.testing.assert_allclose(emg, expected, rtol=0, atol=OFFLINE_ATOL)  # one batch
        gap = np.abs(emg - offline)  # a span whose step choice flipped moves as a whole
        assert (gap <= OFFLINE_ATOL).mean() >= MEMBERS_WITHIN_OFFLINE_ATOL, (gap <= 1e-3).mean()
        np.testing.assert_allclose(emg, offline, rtol=0, atol=MEMBERS_OFFLINE_ATOL)
    # each member's own correction: not the first member's alone
    alone = span_reference(ensemble.estimators_[:1], X, priors=priors[:1])
    assert np.abs(alone - expected).max() > 1e-2
    # the networks alone: the members' mean network EMG, as offline
    network = StreamingPredictor(ensemble, predict_physics="none")
    outputs, pending = stream(network, X, 1)
    offline = ensemble.predict(X[None], predict_physics="none")
    np.testing.assert_allclose(joined(outputs), offline[0], rtol=0, atol=1e-6)
    assert max(pending) <= network.latency <= WINDOW + 1  # the networks one per update


def test_subjects_parameters_and_code_are_the_streamed_subjects(two_subjects):
    data = two_subjects
    nmm = NMMRegressor(random_state=0, **{**FAST_NMM, "subject_embedding": 2})
    nmm.fit(data.X, data.y, subject_ids=data.groups)
    label = nmm.subjects_[1]
    X = data.X[np.flatnonzero(data.groups == label)[0]]
    predictor = StreamingPredictor(nmm, subject=label, predict_physics="torque")
    emg = joined(stream(predictor, X, 5)[0])
    np.testing.assert_allclose(emg, span_reference([nmm], X, label, row=1), atol=OFFLINE_ATOL)
    population = span_reference([nmm], X, row=-1)
    assert np.abs(population - emg).max() > 1e-3


def test_the_streamed_subjects_deep_emg_level_is_offline_predicts(two_subjects):
    """The network with the EMG level of a subject whose level is not 0 (its deep muscles',
    in the stream's copy of the network's output bias) equals predict with it; the network
    alone ("none", without the level and the subjects' mean level) equals predict's and is
    every subject's."""
    data = two_subjects
    nmm = NMMRegressor(random_state=0, **FAST_NMM).fit(data.X, data.y, subject_ids=data.groups)
    module = nmm.net_.module_
    assert module.levelled  # the muscles without EMG
    level = module.level_offset(torch.tensor([0, 1]))[:, module.levelled]
    assert float(level.abs().min()) > 1e-3  # each subject its own level (mean 0)
    for row, label in enumerate(nmm.subjects_):
        X = data.X[np.flatnonzero(data.groups == label)[0]]
        predictor = StreamingPredictor(nmm, subject=label, predict_physics="level")
        emg = joined(stream(predictor, X, 5)[0])
        offline = nmm.predict(X[None], [label], predict_physics="level")[0]
        np.testing.assert_allclose(emg, offline, rtol=0, atol=1e-6)
        other = nmm.predict(X[None], [nmm.subjects_[1 - row]], predict_physics="level")[0]
        assert np.abs(other - emg)[:, module.levelled].max() > 1e-4  # the level tells them apart
        alone = joined(
            stream(StreamingPredictor(nmm, subject=label, predict_physics="none"), X, 5)[0]
        )
        offline = nmm.predict(X[None], [nmm.subjects_[1 - row]], predict_physics="none")[0]
        np.testing.assert_allclose(alone, offline, rtol=0, atol=1e-6)
        assert np.abs(alone - emg)[:, module.levelled].min() > 1e-4  # no level at all


def test_without_a_torque_channel_the_torque_is_the_inverse_dynamics(data, corrected):
    """The torque channel is the target when sent (as offline); without it, the model's
    rigid-body inverse dynamics of each sample."""
    X = data.X[1, :130]
    inputs = [corrected.channels_.index(c) for c in INPUTS]
    dynamics = torque_target(X[None][..., inputs], INPUTS, corrected.physics_)[0]
    channel = torque_target(X[None], corrected.channels_, corrected.physics_)[0]
    assert np.abs(dynamics - channel).max() > 0.05  # the simulated channel is measured
    sent = [*INPUTS, *corrected.emg_inputs_]  # all but the torque channel
    columns = [corrected.channels_.index(c) for c in sent]
    predictor = StreamingPredictor(corrected, channels=sent)
    emg = joined(stream(predictor, X[:, columns], 3)[0])
    np.testing.assert_allclose(
        emg, span_reference([corrected], X, torque=dynamics), atol=OFFLINE_ATOL
    )
    holey = X.copy()
    holey[60, corrected.channels_.index("elbow_torque")] = np.nan
    with pytest.raises(ValueError, match=r"sample 60 holds nan in 'elbow_torque'.*leave it out"):
        StreamingPredictor(corrected).update(holey)


def test_inverse_dynamics_is_per_sample():
    """The stream computes the torque a few samples at a time: block by block equals whole."""
    from deepemg.opensim import elbow_model

    physics = elbow_model()
    rng = np.random.default_rng(0)
    X = np.column_stack(
        [
            rng.uniform(0.2, 2.0, 97),
            rng.normal(0, 2, 97),
            rng.normal(0, 20, 97),
            rng.uniform(0, 9, 97),
        ]
    )
    whole = torque_target(X[None], INPUTS, physics)[0]
    blocks = np.concatenate(
        [torque_target(X[None, t : t + 10], INPUTS, physics)[0] for t in range(0, 97, 10)]
    )
    np.testing.assert_allclose(blocks, whole, rtol=1e-13, atol=1e-12)


# ---------------------------------------------------------------------- latency and the queue


@pytest.mark.parametrize("which", ["single", "ensemble"])
def test_corrected_latency_holds_and_is_tight(long_trial, corrected, ensemble, which):
    """One sample per update over 6 s: the first output by ``startup``, then never more than
    ``latency`` behind, within 2 windows plus the networks' delay; the bound is nearly met."""
    estimator = corrected if which == "single" else ensemble
    predictor = StreamingPredictor(estimator)
    lags, first = [], None
    for n, sample in enumerate(long_trial, start=1):
        out = predictor.update(sample)
        if first is None and len(out):
            first = n
        if first is not None:
            lags.append(predictor.pending)
        else:
            assert n < predictor.startup
    assert first is not None
    assert first <= predictor.startup
    assert max(lags) == predictor.latency <= 2 * WINDOW  # the schedule's exact lag
    assert predictor.startup <= predictor.latency + WINDOW // 4 + 5
    assert first == predictor.startup  # the schedule's exact start
    predictor.finish()
    assert predictor.n_emitted == len(long_trial)


@pytest.mark.parametrize("chunks", ["steady", "random"])
def test_corrected_latency_holds_for_any_chunking(long_trial, corrected, chunks):
    rng = np.random.default_rng(1)
    sizes = [3] * 200 if chunks == "steady" else rng.integers(0, 40, 200).tolist()
    predictor = StreamingPredictor(corrected)
    t = 0
    for size in sizes:
        if t >= len(long_trial):
            break
        predictor.update(long_trial[t : t + size])
        t += size
        if predictor.n_emitted:
            assert predictor.pending <= predictor.latency
        else:
            assert predictor.n_seen < predictor.startup + size


def test_schedule_of_the_default_sizes():
    """Window 100, stride 75: the units per sample, and the lag, within 2 windows."""
    assert sum(PREPARE_COSTS) + sum(STEP_COSTS) == streaming.SPAN_COST
    assert len(STEP_COSTS) == GAUSS_NEWTON_ITERATIONS * (CG_ITERATIONS + 2) + 2
    for members in (1, 3):
        units, latency, startup = _schedule(100, 75, members, True)
        assert latency <= 200 < startup <= latency + 100 // 4 + 5
        assert _schedule(100, 75, members, True) == (units, latency, startup)  # deterministic
        # one unit fewer would not keep the lag within 2 windows
        lag = _simulate(100, 75, members, True, units - 1)
        assert lag is None or lag[0] > 200
    assert _schedule(100, 75, 3, False)[:2] == (3, 101)  # one network per update


def test_each_update_runs_at_most_its_share(long_trial, corrected, ensemble):
    """The units run per update stay within ``units_per_update * n_new``, or one piece."""
    costs = []  # each update's
    original = streaming._Task
    for estimator in (corrected, ensemble):
        predictor = StreamingPredictor(estimator)

        class Counted(original):
            def __init__(self, steps):
                super().__init__(self.counted(steps))

            @staticmethod
            def counted(steps):
                cost = next(steps)
                while True:
                    yield cost
                    costs[-1] += cost
                    try:
                        cost = next(steps)
                    except StopIteration:
                        return

        streaming._Task = Counted
        try:
            for chunk in (1, 3):
                for t in range(0, 400, chunk):
                    costs.append(0)
                    predictor.update(long_trial[t : t + chunk])
                    limit = predictor.units_per_update * chunk
                    assert costs[-1] <= max(limit, NETWORK_COST, *PREPARE_COSTS)
                    assert predictor._credit <= max(NETWORK_COST, *PREPARE_COSTS)
                predictor.reset()
        finally:
            streaming._Task = original
        assert max(costs) > 0


def test_span_costs_follow_the_solver(corrected):
    """One cost per unit of the Gauss-Newton solver: a change of its steps shows here."""
    from deepemg.correction import solve_in_steps
    from deepemg.streaming import _MemberPhysics

    physics = _MemberPhysics([corrected], 0, WINDOW)
    angle = np.full(WINDOW, 1.2)
    gain, passive = physics.linearised(angle, np.zeros(WINDOW))
    drive = physics.drive(gain, passive, angle, np.zeros(WINDOW))
    prior = torch.full((1, WINDOW, 7), 0.1, dtype=torch.float64)
    torque = torch.full((1, WINDOW), 10.0, dtype=torch.float64)
    steps = solve_in_steps(drive, prior, torque, physics.torque_scale, physics.weight)
    calls = 0
    while True:
        calls += 1
        try:
            next(steps)
        except StopIteration:
            break
    assert calls == len(STEP_COSTS)


# ---------------------------------------------------------------------- modes, errors, state


def test_modes_warnings_and_errors(nmm, corrected, ensemble):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert StreamingPredictor(corrected).predict_physics == "torque"
        assert StreamingPredictor(nmm).predict_physics == "none"  # FAST_NMM's own
        assert StreamingPredictor(corrected, predict_physics="none").units_per_update == 0
        assert StreamingPredictor(nmm, predict_physics="torque").units_per_update > 0
        assert StreamingPredictor(ensemble, predict_physics="none").n_members == 2
    assisted = copy.deepcopy(nmm).set_params(predict_physics="emg")
    with pytest.warns(UserWarning, match="predict_physics='emg'.*not streamed.*'torque'"):
        assert StreamingPredictor(assisted).predict_physics == "torque"
    with pytest.raises(ValueError, match=r"'emg' .*is not streamed; use predict_physics='torque'"):
        StreamingPredictor(nmm, predict_physics="emg")
    with pytest.raises(ValueError, match="choose 'auto', 'torque', 'level', 'none' or None"):
        StreamingPredictor(nmm, predict_physics="Torque")
    adam = copy.deepcopy(corrected).set_params(correction_solver="adam")
    with pytest.warns(UserWarning, match="solves it by Gauss-Newton"):
        StreamingPredictor(adam)
    with pytest.raises(Exception, match="not fitted"):
        StreamingPredictor(NMMEnsemble(NMMRegressor(), n_members=2))


def test_corrected_finish_on_short_sequences_and_reset(data, corrected):
    X = data.X
    predictor = StreamingPredictor(corrected)
    predictor.update(X[0, : WINDOW - 1])
    assert predictor.pending == WINDOW - 1
    with pytest.raises(ValueError, match="fewer than the window of 50"):
        predictor.finish()
    assert len(predictor.reset().finish()) == 0  # empty
    for length in (WINDOW, WINDOW + 1, 2 * WINDOW - 1):
        out = predictor.reset().update(X[1, :length])
        assert len(out) == 0  # a span's network EMG is final only at the end
        rest = predictor.finish()
        assert (rest.start, rest.stop) == (0, length)
        np.testing.assert_allclose(
            rest.emg, span_reference([corrected], X[1, :length]), atol=OFFLINE_ATOL
        )
    # reset in the middle of a sequence, with work queued: the next sequence from 0
    predictor.reset().update(X[0, :150])
    assert predictor.n_emitted < 150
    outputs, _ = stream(predictor.reset(), X[1, :173], 1)
    np.testing.assert_allclose(
        joined(outputs), span_reference([corrected], X[1, :173]), atol=OFFLINE_ATOL
    )
    with pytest.raises(RuntimeError, match="call reset"):
        predictor.update(X[0, :1])


def test_a_failing_update_changes_nothing_with_the_physics(data, corrected):
    X = data.X[1, :173]
    predictor = StreamingPredictor(corrected)
    outputs = [predictor.update(X[:40])]
    degrees = X[40:90].copy()  # the arm moves here: a velocity in degrees shows at once
    degrees[:, 1] = np.degrees(degrees[:, 1])
    with pytest.raises(ValueError, match=r"samples 0\.\.49 \(one window\): 'elbow_velocity'"):
        predictor.update(degrees)
    assert (predictor.n_seen, predictor.n_emitted, predictor.n_units) == (40, 0, 0)
    for t in range(40, 120, 20):  # to where spans are queued and solved
        outputs.append(predictor.update(X[t : t + 20]))
    state = (predictor.n_seen, predictor.n_emitted, predictor.n_units, predictor._credit)
    assert predictor.n_units > 0
    bad = X[120:140].copy()
    bad[5, 0] = np.nan
    with pytest.raises(ValueError, match="sample 125 holds nan"):
        predictor.update(bad)
    assert (predictor.n_seen, predictor.n_emitted, predictor.n_units, predictor._credit) == state
    for t in range(120, 173, 4):
        outputs.append(predictor.update(X[t : t + 4]))
    outputs.append(predictor.finish())
    np.testing.assert_allclose(joined(outputs), span_reference([corrected], X), atol=OFFLINE_ATOL)


def test_an_error_inside_a_unit_breaks_the_stream_until_reset(data, corrected):
    """A unit that raises: the error propagates, the stream then refuses to go on (its queue
    is lost) and says to reset; after reset it streams correctly."""
    X = data.X[1, :173]
    predictor = StreamingPredictor(corrected)
    physics = predictor._physics
    original = physics.torque_graph

    def failing(*args):
        raise FloatingPointError("injected")

    physics.torque_graph = failing
    predictor.update(X[:90])  # no span ready yet
    with pytest.raises(FloatingPointError, match="injected"):
        predictor.update(X[90:])
    with pytest.raises(RuntimeError, match=r"broken: a unit of its work failed \(FloatingPoint"):
        predictor.update(X[:1])
    with pytest.raises(RuntimeError, match="reset"):
        predictor.finish()
    physics.torque_graph = original
    outputs, _ = stream(predictor.reset(), X, 2)
    np.testing.assert_allclose(joined(outputs), span_reference([corrected], X), atol=OFFLINE_ATOL)


def test_a_law_not_affine_in_the_activation_is_streamed_too(data):
    """The compliant tendon's torque is not affine in the activation: no per-sample gain,
    the muscles evaluated at every step; the same promise."""
    settings = {**FAST_NMM, "max_epochs": 1, "predict_physics": "torque"}
    law = "compliant_tendon_degroote_fregly"
    nmm = NMMRegressor(random_state=0, muscle_law=law, **settings).fit(data.X, data.y)
    X = data.X[1, :80]
    predictor = StreamingPredictor(nmm)
    assert not predictor._physics.affine
    emg = joined(stream(predictor, X, 5)[0])
    np.testing.assert_allclose(emg, span_reference([nmm], X), rtol=0, atol=OFFLINE_ATOL)
