"""EMGEnvelope against closed forms, its errors, and scikit-learn conventions."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from deepemg.preprocessing import EMGEnvelope

RATE = 2000.0
TIME = np.arange(0.0, 3.0, 1 / RATE)
INTERIOR = slice(int(0.25 * RATE), -int(0.25 * RATE))  # away from filter edge effects
RECTIFIED_MEAN = 2 / np.pi  # mean of |sin|


def carrier(frequency=97.0):
    """A sine carrier; 97 Hz is not locked to the 2 kHz sampling (see the 100 Hz test)."""
    return np.sin(2 * np.pi * frequency * TIME)


def test_constant_amplitude_sine_gives_flat_envelope_of_two_over_pi():
    amplitude = 0.4
    raw = amplitude * carrier()[:, None]
    envelope = EMGEnvelope(rate=RATE, normalize=None).fit_transform(raw)
    assert envelope.shape == raw.shape
    np.testing.assert_allclose(envelope[INTERIOR], RECTIFIED_MEAN * amplitude, rtol=2e-3)
    np.testing.assert_allclose(envelope, RECTIFIED_MEAN * amplitude, rtol=0.03)  # the ends too
    normalised = EMGEnvelope(rate=RATE).fit_transform(raw)
    assert normalised.max() == pytest.approx(1.0)
    np.testing.assert_allclose(normalised[INTERIOR], 1.0, rtol=0.01)  # the maximum is at an end


def test_sine_modulated_100hz_carrier_envelope_tracks_the_modulation():
    # EMG-like burst: a 100 Hz carrier whose amplitude follows 1 + 0.5 sin(2 pi 1 Hz t).
    modulation = 1.0 + 0.5 * np.sin(2 * np.pi * 1.0 * TIME)
    raw = (modulation * carrier(100.0))[:, None]
    envelope = EMGEnvelope(rate=RATE, normalize=None).fit_transform(raw)[:, 0]
    # The 6 Hz low-pass passes 1 Hz untouched and removes the 200 Hz ripple of the rectified
    # carrier. Sampled 20 times per period, the mean of |sin| at 100 Hz is 0.8 % below 2/pi.
    np.testing.assert_allclose(
        envelope[INTERIOR], RECTIFIED_MEAN * modulation[INTERIOR], rtol=0.012
    )
    normalised = EMGEnvelope(rate=RATE).fit_transform(raw)[:, 0]
    assert normalised.max() == pytest.approx(1.0)
    np.testing.assert_allclose(normalised[INTERIOR], modulation[INTERIOR] / 1.5, atol=0.01)


def test_band_pass_removes_movement_artefact_and_offset():
    clean = 0.3 * carrier()
    artefact = 2.0 * np.sin(2 * np.pi * 1.5 * TIME) + 0.7  # slow, large, with an offset
    envelope = EMGEnvelope(rate=RATE, normalize=None).fit_transform((clean + artefact)[:, None])
    np.testing.assert_allclose(envelope[INTERIOR, 0], RECTIFIED_MEAN * 0.3, rtol=0.01)
    unfiltered = EMGEnvelope(rate=RATE, band=None, normalize=None).fit_transform(
        (clean + artefact)[:, None]
    )
    assert np.abs(unfiltered[INTERIOR, 0] - RECTIFIED_MEAN * 0.3).max() > 0.3  # band=None keeps it


def test_three_d_input_is_normalised_per_channel_over_all_sequences():
    # two sequences, two channels; the second sequence is twice as strong on channel 0
    X = np.stack(
        [
            np.column_stack([1.0 * carrier(), 0.5 * carrier(113.0)]),
            np.column_stack([2.0 * carrier(), 0.5 * carrier(113.0)]),
        ]
    )
    envelope = EMGEnvelope(rate=RATE)
    out = envelope.fit(X).transform(X)
    assert out.shape == X.shape
    assert out.dtype == np.float64
    assert envelope.n_features_in_ == 2
    assert envelope.max_.shape == (2,)
    np.testing.assert_allclose(envelope.max_, RECTIFIED_MEAN * np.array([2.0, 0.5]), rtol=0.03)
    np.testing.assert_allclose(out.max(axis=(0, 1)), 1.0)
    assert out.min() >= 0.0
    np.testing.assert_allclose(out[0, INTERIOR, 0], 0.5, rtol=0.01)
    np.testing.assert_allclose(out[1, INTERIOR, 0], 1.0, rtol=0.01)
    # one recording (2-D) gives the same as a batch of one
    np.testing.assert_allclose(envelope.transform(X[1]), out[1])
    # new data is divided by the maximum learned in fit, so it may exceed 1
    assert envelope.transform(2 * X[1]).max() == pytest.approx(2.0)


def test_envelope_is_never_negative():
    rng = np.random.default_rng(0)
    bursts = rng.normal(size=(2, 3000, 3)) * (rng.uniform(size=(2, 1, 3)) > 0.3)
    bursts[:, :1500] *= 0.01  # quiet then active: the low-pass undershoots after the steps
    out = EMGEnvelope(rate=RATE).fit_transform(bursts + 1e-3 * rng.normal(size=bursts.shape))
    assert out.min() >= 0.0
    assert out.max() == pytest.approx(1.0)


def test_errors_are_clear():
    raw = carrier()[:, None]
    with pytest.raises(ValueError, match=r"450 Hz is not below the Nyquist frequency 400 Hz.*800"):
        EMGEnvelope(rate=800.0).fit(raw)
    with pytest.raises(ValueError, match="lowpass must be a cut-off"):
        EMGEnvelope(rate=RATE, lowpass=1500.0).fit(raw)
    with pytest.raises(ValueError, match="0 < low < high"):
        EMGEnvelope(rate=RATE, band=(300.0, 20.0)).fit(raw)
    with pytest.raises(ValueError, match="rate must be the EMG sampling rate"):
        EMGEnvelope(rate=-1.0).fit(raw)
    with pytest.raises(ValueError, match='normalize must be "max" or None'):
        EMGEnvelope(rate=RATE, normalize="mvc").fit(raw)
    with pytest.raises(ValueError, match="order must be a positive integer"):
        EMGEnvelope(rate=RATE, order=0).fit(raw)
    with pytest.raises(ValueError, match=r"channels last.*sktime and braindecode put channels"):
        EMGEnvelope(rate=RATE).fit(carrier())
    with pytest.raises(ValueError, match="wrong way round"):
        EMGEnvelope(rate=RATE).fit(np.ones((2, 8, 500)))
    X = np.stack([np.column_stack([carrier()] * 3)] * 2)
    X[1, 10, 2] = np.nan
    with pytest.raises(
        ValueError, match=r"NaN .* sequence 1, timestep 10 \(t = 0\.005 s .*channel 2"
    ):
        EMGEnvelope(rate=RATE).fit(X)
    fitted = EMGEnvelope(rate=RATE).fit(raw)
    with pytest.raises(ValueError, match=r"3 channels on its last axis but .* fitted with 1"):
        fitted.transform(np.ones((4000, 3)))
    with pytest.raises(NotFittedError):
        EMGEnvelope(rate=RATE).transform(raw)
    flat = np.column_stack([carrier(), np.zeros_like(TIME)])
    with pytest.raises(ValueError, match=r"Channel\(s\) \[1\] of X are flat"):
        EMGEnvelope(rate=RATE).fit(flat)
    assert EMGEnvelope(rate=RATE, normalize=None).fit_transform(flat)[:, 1].max() == 0.0


def test_sklearn_conventions():
    raw = np.column_stack([carrier(), 0.5 * carrier(131.0)])
    envelope = EMGEnvelope(rate=RATE, band=(10.0, 400.0), lowpass=4.0)
    assert not hasattr(envelope, "max_")  # no work in __init__
    copy = clone(envelope)
    assert copy.get_params() == envelope.get_params()
    out = envelope.fit_transform(raw)
    np.testing.assert_allclose(out, EMGEnvelope(**envelope.get_params()).fit(raw).transform(raw))
    assert not hasattr(clone(envelope), "max_")
    again = pickle.loads(pickle.dumps(envelope))
    np.testing.assert_array_equal(again.transform(raw), out)
    assert list(envelope.get_feature_names_out(["Biceps", "Triceps"])) == ["Biceps", "Triceps"]
    assert list(envelope.get_feature_names_out()) == ["x0", "x1"]
    envelope.set_params(lowpass=8.0)
    assert envelope.lowpass == 8.0
    pipeline = make_pipeline(EMGEnvelope(rate=RATE, normalize=None))
    np.testing.assert_allclose(pipeline.fit_transform(raw)[INTERIOR, 0], RECTIFIED_MEAN, rtol=0.01)
