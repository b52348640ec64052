"""Raw surface EMG to normalised envelopes: band-pass, rectify, low-pass, normalise."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import signal, sparse
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

if TYPE_CHECKING:
    from sklearn.utils import Tags

__all__ = ["EMGEnvelope"]

_LAYOUT = (
    "deepemg puts channels last: (n_sequences, n_timesteps, n_channels), or "
    "(n_timesteps, n_channels) for one recording (sktime and braindecode put channels first: "
    "transpose with X.transpose(0, 2, 1))"
)


class EMGEnvelope(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Envelope of raw surface EMG, normalised to the maximum seen in ``fit``.

    ``transform`` band-passes each channel (zero-phase Butterworth, removing movement artefact
    and high-frequency noise), rectifies it (absolute value), low-passes it (zero-phase
    Butterworth at ``lowpass`` Hz), clips negative values to 0 and, with ``normalize="max"``,
    divides each channel by its maximum envelope over all sequences given to ``fit``. Fit on
    all trials of one subject so that every envelope is relative to that subject's maximum.

    Parameters
    ----------
    rate : float
        Sampling rate of the raw EMG (Hz), e.g. 2000.
    band : tuple of float or None, default=(20.0, 450.0)
        Band-pass edges (Hz), both below the Nyquist frequency ``rate / 2``; None skips the
        band-pass (for EMG already filtered by the amplifier).
    lowpass : float, default=6.0
        Cut-off of the envelope low-pass (Hz).
    order : int, default=4
        Butterworth order of each filter (applied forward and backward, so the magnitude
        response is squared and there is no phase lag).
    normalize : {"max", None}, default="max"
        Divide each channel by its maximum envelope in the fit data (``max_``); None keeps the
        units of the input (an envelope of a sine of amplitude A is 2 A / pi).

    Attributes
    ----------
    max_ : ndarray of shape (n_channels,)
        Maximum envelope of each channel over the fit data (input units); present when
        ``normalize="max"``.
    n_features_in_ : int
        Number of EMG channels.

    Notes
    -----
    ``X`` is ``(n_sequences, n_timesteps, n_channels)`` (channels last) or one recording
    ``(n_timesteps, n_channels)``; the output has the same shape. Envelopes of data other than
    the fit data can exceed 1. Each recording needs at least 2 samples and at least as many
    samples as channels (fewer usually means that the axes are the wrong way round); one
    shorter than the padding of :func:`scipy.signal.sosfiltfilt` (``6 * order + 3`` samples)
    is padded by what it has, so an envelope of a recording much shorter than a period of
    the low-pass cut-off is mostly edge. The rectified signal is mirrored at the ends before
    the low-pass, so the envelope keeps its level up to the first and last samples (within a
    few per cent over the first and last ~0.1 s). The sequences (first axis of a 3-D ``X``)
    are filtered independently; the rows of a 2-D ``X`` are the time steps of one recording,
    not independent samples.

    Examples
    --------
    >>> import numpy as np
    >>> rate = 2000.0
    >>> t = np.arange(0, 2.0, 1 / rate)
    >>> raw = 0.3 * np.sin(2 * np.pi * 97.0 * t)[:, None]  # constant-amplitude burst, 1 channel
    >>> envelope = EMGEnvelope(rate=rate, normalize=None).fit_transform(raw)
    >>> envelope.shape
    (4000, 1)
    >>> round(2 * 0.3 / np.pi, 3)  # the mean of a rectified sine: 2 A / pi
    0.191
    >>> bool(np.allclose(envelope[400:-400], 2 * 0.3 / np.pi, rtol=0.01))  # 0.2 s in
    True
    >>> EMGEnvelope(rate=rate).fit_transform(raw).max()
    np.float64(1.0)
    """

    def __init__(
        self,
        rate: float,
        band: tuple[float, float] | None = (20.0, 450.0),
        lowpass: float = 6.0,
        order: int = 4,
        normalize: str | None = "max",
    ) -> None:
        self.rate = rate
        self.band = band
        self.lowpass = lowpass
        self.order = order
        self.normalize = normalize

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.requires_fit = True
        return tags

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        rate = self.rate
        if not isinstance(rate, numbers.Real) or not np.isfinite(rate) or rate <= 0:
            raise ValueError(f"rate must be the EMG sampling rate in Hz (> 0), got {rate!r}.")
        nyquist = rate / 2
        if self.band is not None:
            try:
                low, high = (float(edge) for edge in self.band)
            except (TypeError, ValueError):
                raise ValueError(
                    f"band must be (low, high) in Hz or None, got {self.band!r}."
                ) from None
            if not 0 < low < high:
                raise ValueError(f"band must satisfy 0 < low < high (Hz), got {self.band!r}.")
            if high >= nyquist:
                raise ValueError(
                    f"The band-pass edge {high:g} Hz is not below the Nyquist frequency "
                    f"{nyquist:g} Hz of rate={rate:g} Hz. Raw EMG is usually sampled at 1000 Hz "
                    "or more: check rate, or lower band (e.g. band=(20.0, "
                    f"{0.9 * nyquist:g})), or pass band=None for EMG filtered already."
                )
        lowpass = self.lowpass
        if not isinstance(lowpass, numbers.Real) or not 0 < lowpass < nyquist:
            raise ValueError(
                f"lowpass must be a cut-off in Hz between 0 and the Nyquist frequency "
                f"{nyquist:g} Hz of rate={rate:g} Hz, got {lowpass!r}."
            )
        if not isinstance(self.order, numbers.Integral) or self.order < 1:
            raise ValueError(f"order must be a positive integer, got {self.order!r}.")
        if self.normalize not in ("max", None):
            raise ValueError(f'normalize must be "max" or None, got {self.normalize!r}.')

    def _check_X(self, X: ArrayLike, reset: bool) -> tuple[np.ndarray, int]:
        """X as float64 (n_sequences, n_timesteps, n_channels) and its original ndim."""
        X = _float64_array(X)
        X3 = _three_d(X)
        _check_finite(X3, X.ndim, self.rate)
        n_channels = X3.shape[2]
        if reset:
            self.n_features_in_ = n_channels
        elif n_channels != self.n_features_in_:
            raise ValueError(
                f"X has {n_channels} features, but EMGEnvelope is expecting "
                f"{self.n_features_in_} features as input: {n_channels} channels on its last "
                f"axis but it was fitted with {self.n_features_in_}; {_LAYOUT}."
            )
        return X3, X.ndim

    def _filters(self) -> tuple[np.ndarray | None, np.ndarray]:
        band = None
        if self.band is not None:
            band = signal.butter(
                self.order, [float(e) for e in self.band], "bandpass", fs=self.rate, output="sos"
            )
        low = signal.butter(self.order, float(self.lowpass), "lowpass", fs=self.rate, output="sos")
        return band, low

    @staticmethod
    def _padding(sos: np.ndarray) -> int:
        """The default padding of scipy's sosfiltfilt for ``sos``."""
        trailing_zeros = min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum())
        return 3 * (2 * len(sos) + 1 - int(trailing_zeros))

    def _envelope(self, X3: np.ndarray) -> np.ndarray:
        band, low = self._filters()
        longest = X3.shape[1] - 1  # sosfiltfilt pads by less than the signal's length
        filtered = X3
        if band is not None:
            padlen = min(longest, self._padding(band))
            filtered = signal.sosfiltfilt(band, X3, axis=1, padlen=padlen)
        # The rectified signal is mirrored (not point-reflected) at the ends over three periods
        # of the cut-off, so the envelope keeps its level up to the first and last samples.
        padlen = max(self._padding(low), 3 * int(np.ceil(self.rate / self.lowpass)))
        padlen = min(longest, padlen)
        envelope = signal.sosfiltfilt(low, np.abs(filtered), axis=1, padtype="even", padlen=padlen)
        return np.clip(envelope, 0.0, None)

    # ------------------------------------------------------------------ API
    def fit(self, X: ArrayLike, y: object = None) -> EMGEnvelope:
        """Learn each channel's maximum envelope (``max_``) from raw EMG ``X``.

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_timesteps, n_channels) or (n_timesteps, n_channels)
            Raw EMG, channels last.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        X3, _ = self._check_X(X, reset=True)
        if self.normalize == "max":
            maximum = self._envelope(X3).max(axis=(0, 1))
            flat = np.flatnonzero(maximum <= 0)
            if flat.size:
                raise ValueError(
                    f"Channel(s) {flat.tolist()} of X are flat (zero envelope), so they cannot "
                    "be normalised to their maximum: drop unrecorded channels, or pass "
                    "normalize=None."
                )
            self.max_ = maximum
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Envelopes of raw EMG ``X``, same shape as ``X``.

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_timesteps, n_channels) or (n_timesteps, n_channels)
            Raw EMG, channels last, at the ``rate`` given.

        Returns
        -------
        ndarray, same shape as X
            Nonnegative envelopes; divided by ``max_`` when ``normalize="max"``.
        """
        check_is_fitted(self, "n_features_in_")
        self._check_params()
        X3, ndim = self._check_X(X, reset=False)
        envelope = self._envelope(X3)
        if self.normalize == "max":
            check_is_fitted(self, "max_")
            envelope = envelope / self.max_
        return envelope[0] if ndim == 2 else envelope


def _float64_array(X: Any) -> np.ndarray:
    """``X`` (an array-like, a pandas DataFrame) as a dense float64 array of real numbers."""
    if sparse.issparse(X):
        raise TypeError(
            "A sparse matrix was passed, but dense data is required: raw EMG is a dense "
            f"array; {_LAYOUT}."
        )
    if hasattr(X, "to_numpy"):  # a pandas DataFrame: (n_timesteps, n_channels)
        X = X.to_numpy()
    X = np.asarray(X)  # array-likes first: they may not support numpy's functions
    if np.iscomplexobj(X):
        raise ValueError("Complex data not supported: raw EMG is real-valued.")
    try:
        return X.astype(np.float64)
    except TypeError as exc:  # e.g. a dict in an object array
        raise TypeError(f"X must be an array of numbers; {exc}.") from None
    except ValueError as exc:  # e.g. a string that is not a number
        raise ValueError(f"X must be an array of numbers; {exc}.") from None


def _three_d(X: np.ndarray) -> np.ndarray:
    """2-D or 3-D ``X`` as (n_sequences, n_timesteps, n_channels), its sizes checked."""
    if X.ndim not in (2, 3):
        raise ValueError(
            f"X must be 2-D or 3-D, got shape {X.shape}. Reshape your data "
            f"(X.reshape(-1, 1) for one recording of one channel): {_LAYOUT}."
        )
    X3 = X[None] if X.ndim == 2 else X
    if X3.shape[2] == 0:
        raise ValueError(
            f"X has 0 feature(s) (shape={X.shape}) while a minimum of 1 is required: give "
            f"at least one EMG channel; {_LAYOUT}."
        )
    if X3.shape[0] == 0 or X3.shape[1] < 2:
        raise ValueError(
            f"X has {X3.shape[1]} timestep(s) per channel (n_samples = {X3.shape[1]}, "
            f"shape {X.shape}); an envelope needs at least 2; {_LAYOUT}."
        )
    if X3.shape[1] < X3.shape[2]:
        raise ValueError(
            f"X has fewer timesteps ({X3.shape[1]}) than channels ({X3.shape[2]}) (shape "
            f"{X.shape}): are its axes the wrong way round? {_LAYOUT}."
        )
    return X3


def _check_finite(X3: np.ndarray, ndim: int, rate: float) -> None:
    """A ValueError naming the first NaN or infinite value of ``X3`` (``ndim``: X's own)."""
    bad = ~np.isfinite(X3)
    if bad.any():
        s, t, c = (int(i) for i in np.argwhere(bad)[0])
        where = f"sequence {s}, " if ndim == 3 else ""
        raise ValueError(
            f"X holds NaN or infinite values, first at {where}timestep {t} "
            f"(t = {t / rate:.6g} s from the start), channel {c}. "
            "Fill or cut the gaps before computing envelopes."
        )
