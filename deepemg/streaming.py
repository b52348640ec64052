"""Streaming prediction: EMG from samples as they arrive, identical to offline ``predict``.

:class:`StreamingPredictor` wraps a fitted :class:`~deepemg.NMMRegressor` for real-time use
(e.g. feeding a CEINMS-RT-style pipeline). Samples come in a few at a time; each
:meth:`~StreamingPredictor.update` returns the EMG of the samples that are now final, and
:meth:`~StreamingPredictor.finish` ends the sequence and returns the rest. Concatenated, the
outputs equal ``estimator.predict(X[None])[0]`` for the whole sequence.

**Why the outputs lag.** Offline ``predict`` runs the network on windows of ``window`` steps
starting every ``stride`` steps (``stride = round(window * (1 - predict_overlap))``), plus one
last window aligned with the end of the sequence, and averages the windows that overlap each
step. While streaming, the end is unknown: after ``n`` samples the end-aligned window could
still start at any step from ``n - window`` on. A sample is therefore final once every regular
window covering it has run and the end-aligned window can no longer reach it: the first
``n - window`` samples (one more when ``n - window`` is itself a window start, since no
end-aligned window is then added there). The newest output is at most
:attr:`~StreamingPredictor.latency` = ``window`` samples behind the newest input
(``window - 1`` when the stride is 1); at 100 Hz with ``window=100``, 1 s.
:meth:`~StreamingPredictor.finish` knows the end: it runs the end-aligned window when offline
``predict`` would, and returns the remaining ``window`` or so samples.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .channels import layout_for
from .threads import limit_threads
from .validation import MAX_LOAD_KG, SequenceInputs, check_plausible, check_subject_ids
from .windows import window_starts

__all__ = ["StreamOutput", "StreamingPredictor"]


def _subject_row(estimator, subject) -> np.ndarray:
    """``subject``'s row in the fitted subjects, as the estimator's ``predict`` chooses it.

    None, and a subject not seen in fit (with an
    :class:`~deepemg.metrics.UnseenSubjectWarning`), get the population's: -1, or 0 after a
    fit on one subject.
    """
    known = list(estimator.subjects_.tolist())
    population = -1 if len(known) > 1 else 0
    if subject is None:
        return np.array([population])
    label = check_subject_ids([subject], 1).tolist()[0]
    if label not in known:
        from .metrics import UnseenSubjectWarning

        warnings.warn(
            f"subject {label!r} was not seen in fit (known: {known}): the stream uses the "
            "population's code. Call personalize(X, subject_ids=...) for it first.",
            UnseenSubjectWarning,
            stacklevel=3,
        )
        return np.array([population])
    return np.array([known.index(label)])


@dataclass(frozen=True)
class StreamOutput:
    """EMG of consecutive samples of a stream.

    Attributes
    ----------
    start : int
        Index (in the stream, from 0 since the last :meth:`StreamingPredictor.reset`) of the
        first row of ``emg``.
    emg : ndarray of shape (n, n_muscles)
        EMG envelopes (float64, 0..1) in the estimator's ``muscles_`` order; ``n`` may be 0.

    Examples
    --------
    >>> import numpy as np
    >>> out = StreamOutput(5, np.zeros((3, 7)))
    >>> len(out), out.stop, out.index.tolist()
    (3, 8, [5, 6, 7])
    """

    start: int
    emg: np.ndarray

    @property
    def stop(self) -> int:
        """Index one past the last row: the next output starts here."""
        return self.start + len(self.emg)

    @property
    def index(self) -> np.ndarray:
        """Sample index of every row, ``arange(start, stop)``."""
        return np.arange(self.start, self.stop)

    def __len__(self) -> int:
        return len(self.emg)


class StreamingPredictor:
    """EMG of a fitted :class:`~deepemg.NMMRegressor` from samples as they arrive.

    Feed one sequence with :meth:`update` (any number of samples per call), end it with
    :meth:`finish`, start the next with :meth:`reset`. Everything returned for a sequence,
    concatenated, equals ``estimator.predict(X[None])[0]`` (``predict(X[None], [subject])[0]``
    with a ``subject``; up to float32 rounding of the network's batching) with
    ``predict_physics="none"``: the correction by the physics needs the whole trial, so an
    estimator that uses it streams its network's EMG, with a warning. See the module's
    docstring for why outputs lag by up to :attr:`latency` samples.

    Per update, the new samples are checked, standardised into a sliding buffer, and the
    network runs (on one window, in inference mode, on one torch thread) only when a window of
    the offline grid completes: once every ``stride`` samples.

    Parameters
    ----------
    estimator : NMMRegressor
        A fitted estimator. Its network is copied (to the CPU, in evaluation mode), as are its
        standardisation, ``window`` and ``predict_overlap``: later changes to the estimator do
        not affect the stream.
    channels : sequence of str, optional
        Names of the columns of the samples :meth:`update` receives; the estimator's
        ``channels_`` by default. They must include the joint's angle (rad), velocity
        (rad/s), acceleration (rad/s²) and ``load_mass`` (kg); other columns (torque, EMG)
        are ignored and may be NaN. A real-time source without torque or EMG can send the
        four inputs alone, e.g. ``channels=["elbow_angle", "elbow_velocity",
        "elbow_acceleration", "load_mass"]``.
    check_derivatives : bool, default=True
        Check, in each window before the network runs on it, that the velocity is the time
        derivative of the angle and the acceleration that of the velocity at the estimator's
        ``rate`` (:func:`deepemg.validation.check_plausible`, which offline ``predict`` runs on
        whole sequences; a window has too few samples before that). A failing update changes
        nothing.
    subject : label, optional
        The subject streamed (seen in fit or personalised; an unknown one is an error): with
        ``subject_embedding > 0`` the network's EMG is conditioned on its learned code, as
        ``predict(X, subject_ids)`` does. None: the population's (code 0), as ``predict(X)``.

    Attributes
    ----------
    window, stride : int
        Window length and the step between the offline grid's windows.
    channels : list of str
    muscles : list of str
        Column order of the output EMG.
    n_seen : int
        Samples received since the last :meth:`reset`.
    n_emitted : int
        Samples whose EMG has been returned.

    Examples
    --------
    >>> import numpy as np
    >>> from deepemg import NMMRegressor
    >>> from deepemg.datasets import make_elbow_lifting
    >>> data = make_elbow_lifting(n_subjects=1, n_trials=2, duration=1.0, random_state=0,
    ...                           cache=False, progress=False)
    >>> nmm = NMMRegressor(max_epochs=1, window=20, d_model=8, n_heads=2, n_layers=1,
    ...                    predict_physics="none", random_state=0).fit(data.X, data.y)
    >>> stream = StreamingPredictor(nmm)
    >>> trial = data.X[0]                        # (100 steps, 10 channels)
    >>> outputs = [stream.update(trial[t : t + 5]) for t in range(0, 100, 5)]
    >>> outputs[-1].start, outputs[-1].stop, stream.n_seen, stream.latency
    (76, 80, 100, 20)
    >>> outputs.append(stream.finish())          # the last samples, the end now known
    >>> emg = np.concatenate([out.emg for out in outputs])
    >>> emg.shape, bool(np.allclose(emg, nmm.predict(trial[None])[0], atol=1e-6))
    ((100, 7), True)
    """

    def __init__(
        self,
        estimator,
        *,
        channels: Sequence[str] | None = None,
        check_derivatives: bool = True,
        subject=None,
    ) -> None:
        if hasattr(estimator, "estimators_"):
            raise ValueError(
                "StreamingPredictor follows one network sample by sample; this estimator is "
                "an ensemble (NMMEnsemble). Stream one of its members (estimators_[0]), or a "
                "single NMMRegressor."
            )
        check_is_fitted(estimator, "net_")
        if getattr(estimator, "predict_physics", "none") != "none":
            warnings.warn(
                f"the estimator corrects its EMG with the physics over whole trials "
                f"(predict_physics={estimator.predict_physics!r}); a stream has no whole "
                "trial, so it gives the network's EMG, as predict with "
                "predict_physics='none' does (set it so to silence this warning).",
                UserWarning,
                stacklevel=2,
            )
        self.window = int(estimator.window)
        self.overlap = float(estimator.predict_overlap)
        # the offline grid's stride, from the offline code itself
        self.stride = int(window_starts(2 * self.window, self.window, self.overlap)[1])
        self.rate = float(estimator.rate)
        self.muscles = list(estimator.muscles_)
        self.physics = estimator.physics_
        self.layout = layout_for(self.physics)
        if isinstance(channels, str):
            raise TypeError("channels must be a sequence of channel names, not one string.")
        self.channels = list(estimator.channels_ if channels is None else channels)
        missing = [c for c in self.layout.inputs if c not in self.channels]
        if missing:
            raise ValueError(
                f"channels lack {missing}, which the network needs; channels are "
                f"{self.channels}. Name the columns of the samples you will send, in order "
                f"(the estimator's: {list(estimator.channels_)})."
            )
        self._columns = [self.channels.index(c) for c in self.layout.inputs]
        self.check_derivatives = bool(check_derivatives)
        self._mean = np.asarray(estimator.feature_mean_, dtype=np.float64)
        self._std = np.asarray(estimator.feature_std_, dtype=np.float64)
        self._low, self._high = (float(v) for v in self.physics.coordinate_range)
        network = copy.deepcopy(estimator.net_.module_.network).to("cpu")
        self._network = network.eval().requires_grad_(False)
        self.subject = subject
        index = _subject_row(estimator, subject)
        self._code = None  # (1, subject_embedding): the subject's code, when the EMG uses one
        if getattr(estimator, "subject_embedding", 0):
            with torch.no_grad():
                codes = estimator.net_.module_.subject_parameters.codes(torch.as_tensor(index))
            self._code = codes.detach().to("cpu", torch.float32)
        self._threads: contextlib.ExitStack | None = None
        capacity = 4 * self.window + 64
        self._raw = np.zeros((capacity, 4))  # angle, velocity, acceleration, load
        self._features = np.zeros((capacity, 4), dtype=np.float32)  # standardised
        self._total = np.zeros((capacity, len(self.muscles)))  # sum of window outputs
        self._count = np.zeros(capacity)  # windows summed
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> StreamingPredictor:
        """Forget the current sequence and start a new one (sample index 0); returns self."""
        self.n_seen = 0
        self.n_emitted = 0
        self._origin = 0  # stream index of buffer row 0
        self._next_window = 0  # index k of the next grid window, starting at k * stride
        self._finished = False
        return self

    @property
    def latency(self) -> int:
        """Most samples the newest output can be behind the newest input.

        Most samples the newest output can be behind the newest input: ``window`` (one
        window; ``window - 1`` when ``stride`` is 1). Seconds: ``latency / rate``.
        """
        return self.window if self.stride > 1 else self.window - 1

    @property
    def n_windows(self) -> int:
        """Windows the network has run on since the last :meth:`reset`."""
        return self._next_window

    @property
    def pending(self) -> int:
        """Samples received whose EMG is not returned yet (at most :attr:`latency`)."""
        return self.n_seen - self.n_emitted

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` ended the sequence (call :meth:`reset` for the next)."""
        return self._finished

    def __enter__(self) -> StreamingPredictor:
        """Hold torch and BLAS at one thread until the block ends.

        Hold torch and BLAS at one thread (:func:`deepemg.threads.limit_threads`) until
        the block ends. Not required: :meth:`update` runs the network on one torch thread
        anyway; this also pins BLAS and saves the per-window switch.
        """
        if self._threads is not None:
            raise RuntimeError("this StreamingPredictor is already in a with-block.")
        stack = contextlib.ExitStack()
        stack.enter_context(limit_threads(1))
        self._threads = stack
        return self

    def __exit__(self, *exc) -> None:
        stack, self._threads = self._threads, None
        if stack is not None:
            stack.close()

    def __repr__(self) -> str:
        return (
            f"StreamingPredictor(window={self.window}, stride={self.stride}, "
            f"n_seen={self.n_seen}, n_emitted={self.n_emitted}, finished={self._finished})"
        )

    # ------------------------------------------------------------------ streaming
    def update(self, samples) -> StreamOutput:
        """Add new samples; return the EMG of the samples that are now final.

        Parameters
        ----------
        samples : array-like of shape (n_new, n_channels), or (n_channels,) for one sample
            In the order of :attr:`channels`; angle in rad, velocity in rad/s, acceleration in
            rad/s², load in kg. ``n_new`` may be 0.

        Returns
        -------
        StreamOutput
            Rows ``start`` .. ``stop - 1`` of the sequence's EMG (possibly none). After this
            call ``stop = n_seen - pending``, with ``pending`` <= :attr:`latency`.

        Raises
        ------
        ValueError
            For a wrong shape, NaN or infinite values, an angle outside the coordinate's
            range, a load outside 0..50 kg (each with the stream index of the first bad
            sample), or a window whose velocity/acceleration is not the derivative of the
            angle/velocity. A failing call changes nothing: fix the samples and send them again.
        RuntimeError
            After :meth:`finish`, until :meth:`reset`.
        """
        if self._finished:
            raise RuntimeError("this stream was finished; call reset() to start a new sequence.")
        raw = self._check(samples)
        n, new = self.n_seen, len(raw)
        if new == 0:
            return self._empty()
        self._reserve(new)
        at = n - self._origin
        self._raw[at : at + new] = raw
        self._features[at : at + new] = (raw - self._mean) / self._std
        self._total[at : at + new] = 0.0
        self._count[at : at + new] = 0.0
        # the grid windows that this update completes: k * stride + window <= n + new
        last = (n + new - self.window) // self.stride
        starts = [k * self.stride for k in range(self._next_window, last + 1)]
        if starts:
            self._run(starts)
            self._next_window = last + 1
        self.n_seen = n + new
        return self._emit(self._final_bound(self.n_seen))

    def finish(self) -> StreamOutput:
        """End the sequence and return the EMG not returned yet.

        End the sequence: run the end-aligned window when offline ``predict`` would, and
        return the EMG of every sample not returned yet.

        A sequence needs at least ``window`` samples, as offline; an empty one returns an
        empty output. Call :meth:`reset` before the next sequence.
        """
        if self._finished:
            raise RuntimeError("this stream was already finished; call reset() first.")
        n = self.n_seen
        if n == 0:
            self._finished = True
            return self._empty()
        if n < self.window:
            raise ValueError(
                f"the stream has {n} samples, fewer than the window of {self.window}: offline "
                "predict refuses such a sequence too. Send more samples, or reset()."
            )
        starts = window_starts(n, self.window, self.overlap)
        if len(starts) > self._next_window:  # offline's end-aligned window, off the grid
            self._run(starts[self._next_window :].tolist())
            self._next_window = len(starts)
        self._finished = True
        return self._emit(n)

    # ------------------------------------------------------------------ internals
    def _empty(self) -> StreamOutput:
        return StreamOutput(self.n_emitted, np.zeros((0, len(self.muscles))))

    def _final_bound(self, n: int) -> int:
        """One past the last final sample after ``n`` samples.

        One past the last final sample after ``n`` samples: the regular windows covering
        it have run and the end-aligned window (from ``n - window`` on, off the grid) cannot
        cover it.
        """
        if n < self.window:
            return 0
        first = n - self.window
        return first + 1 if first % self.stride == 0 else first

    def _check(self, samples) -> np.ndarray:
        """The new samples' angle, velocity, acceleration and load (float64), or an error."""
        samples = np.asarray(samples)
        if not np.issubdtype(samples.dtype, np.number) or np.iscomplexobj(samples):
            raise ValueError(f"samples must be real numbers, got dtype {samples.dtype}.")
        width = len(self.channels)
        if samples.ndim == 1 and samples.shape[0] == width:
            samples = samples[None]
        if samples.ndim != 2 or samples.shape[1] != width:
            raise ValueError(
                f"samples must be shaped (n_new, {width}), one row per sample and one column "
                f"per channel {self.channels}, got shape {samples.shape}."
                + (" Transpose them: channels go last." if samples.shape[:1] == (width,) else "")
            )
        raw = samples[:, self._columns].astype(np.float64)
        bad = ~np.isfinite(raw)
        if bad.any():
            row, column = np.argwhere(bad)[0]
            raise ValueError(
                f"sample {self.n_seen + row} holds {raw[row, column]} in "
                f"'{self.layout.inputs[column]}'; interpolate or hold the last value before "
                "sending it."
            )
        angle, load = raw[:, 0], raw[:, 3]
        outside = (angle < self._low - 1e-9) | (angle > self._high + 1e-9)
        if outside.any():
            row = int(np.argmax(outside))
            hint = " Angles are in radians: did you send degrees?" if angle[row] > 2 * np.pi else ""
            raise ValueError(
                f"sample {self.n_seen + row}: '{self.layout.angle}' = {angle[row]:.4g} rad lies "
                f"outside the range of '{self.physics.coordinate}', [{self._low:.4g}, "
                f"{self._high:.4g}] rad ([{np.degrees(self._low):.1f}, "
                f"{np.degrees(self._high):.1f}] deg).{hint} Clip the angle to the range."
            )
        heavy = (load < 0) | (load > MAX_LOAD_KG)
        if heavy.any():
            row = int(np.argmax(heavy))
            raise ValueError(
                f"sample {self.n_seen + row}: '{self.layout.load}' = {load[row]:.4g}; it is the "
                f"mass of the lifted load in kg, between 0 and {MAX_LOAD_KG:g} (not grams, not "
                "newtons)."
            )
        return raw

    def _reserve(self, new: int) -> None:
        """Room for ``new`` more rows.

        Room for ``new`` more rows: drop the rows no window or output needs any more
        (all but the last ``window``; one copy every few hundred samples), growing if needed.
        """
        n, capacity = self.n_seen, len(self._raw)
        if n - self._origin + new <= capacity:
            return
        keep = max(min(n - self.window, self.n_emitted), self._origin)
        rows = n - keep
        arrays = ("_raw", "_features", "_total", "_count")
        if rows + new > capacity:
            capacity = max(2 * capacity, rows + new + self.window)
            for name in arrays:
                old = getattr(self, name)
                grown = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
                grown[:rows] = old[keep - self._origin : n - self._origin]
                setattr(self, name, grown)
        else:
            for name in arrays:
                array = getattr(self, name)
                array[:rows] = array[keep - self._origin : n - self._origin].copy()
        self._origin = keep

    def _run(self, starts: list[int]) -> None:
        """Run the network on the windows starting at ``starts``.

        Check the windows starting at ``starts`` (stream indices), run the network on them
        and add their EMG to the running sums; nothing changes when a check fails.
        """
        w, origin = self.window, self._origin
        if self.check_derivatives:
            for start in starts:
                window = self._raw[start - origin : start - origin + w]
                inputs = SequenceInputs(
                    window[None], list(self.layout.inputs), self.layout, window[None]
                )
                try:
                    check_plausible(inputs, self.physics, self.rate)
                except ValueError as error:
                    message = str(error).replace("X's ", "", 1)
                    raise ValueError(
                        f"samples {start}..{start + w - 1} (one window): {message}"
                    ) from None
        if len(starts) == 1:
            batch = self._features[starts[0] - origin : starts[0] - origin + w][None]
        else:
            batch = np.stack([self._features[s - origin : s - origin + w] for s in starts])
        threads = torch.get_num_threads()
        if threads != 1:
            torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                code = None if self._code is None else self._code.expand(len(batch), -1)
                emg = self._network(torch.from_numpy(batch), code).numpy().astype(np.float64)
        finally:
            if threads != 1:
                torch.set_num_threads(threads)
        for start, values in zip(starts, emg, strict=True):
            self._total[start - origin : start - origin + w] += values
            self._count[start - origin : start - origin + w] += 1.0

    def _emit(self, bound: int) -> StreamOutput:
        """The EMG of samples ``n_emitted .. bound - 1``: the average of their windows."""
        first, origin = self.n_emitted, self._origin
        if bound <= first:
            return self._empty()
        rows = slice(first - origin, bound - origin)
        emg = self._total[rows] / self._count[rows, None]
        self.n_emitted = bound
        return StreamOutput(first, emg)
