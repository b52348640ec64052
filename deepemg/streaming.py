"""Streaming prediction: EMG from samples as they arrive, equal to offline ``predict``.

:class:`StreamingPredictor` wraps a fitted :class:`~deepemg.NMMRegressor` or
:class:`~deepemg.NMMEnsemble` for real-time use (e.g. feeding a CEINMS-RT-style pipeline).
Samples come in a few at a time; each :meth:`~StreamingPredictor.update` returns the EMG of the
samples that are now final, and :meth:`~StreamingPredictor.finish` ends the sequence and returns
the rest.

**The network's EMG** (``predict_physics="none"``, or ``"level"`` with the subject's EMG level):
concatenated, the outputs equal ``estimator.predict(X[None], predict_physics=...)[0]`` for the
whole sequence. Offline
``predict`` runs the network on windows of ``window`` steps starting every ``stride`` steps
(``stride = round(window * (1 - predict_overlap))``), plus one last window aligned with the end
of the sequence, and averages the windows that overlap each step. While streaming, the end is
unknown: after ``n`` samples the end-aligned window could still start at any step from
``n - window`` on. A sample's network EMG is therefore final once every regular window covering
it has run and the end-aligned window can no longer reach it: the first ``n - window`` samples
(one more when ``n - window`` is itself a window start). :meth:`~StreamingPredictor.finish`
knows the end: it runs the end-aligned window when offline ``predict`` would.

**The corrected EMG** (``predict_physics="torque"``, and ``"auto"``, the default, for a subject
whose model adequacy is not poor): the correction by the
physics (:func:`deepemg.correction.correct_emg`) is solved over *spans* of ``C = window``
samples starting every ``S = C // 2`` samples: span ``k`` covers ``[k S, k S + C)``, is solved
once the network EMG of all its samples is final, and gives the samples of its middle,
``[k S + C // 4, (k + 1) S + C // 4)`` (span 0 also ``[0, C // 4)``). :meth:`finish` adds a
span aligned with the end, ``[n - C, n)``, for the samples no span gave yet. Each emitted sample
equals ``correct_emg`` of its span's network EMG (offline ``predict(X, predict_physics="level")``
over the span, to float32 rounding); a sequence of exactly ``C`` samples is one span and equals
offline ``predict`` with ``predict_physics="torque"``. Equal means: bit for bit for one network
with a torque channel, given the same network EMG; otherwise within the rounding the
correction's float32 conjugate gradients amplify (up to a few 1e-4 where a step-length choice
flips; ``benchmarks/bench_streaming.py`` measures it). A span's correction (about
10 ms) is spread over many updates: the work is a queue of small units, and each update runs a
fixed number of them per new sample (:attr:`StreamingPredictor.units_per_update`), so no update
blocks; the outputs lag more (:attr:`StreamingPredictor.latency`).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import warnings
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .adequacy import trusts_physics
from .channels import layout_for
from .correction import (
    CG_ITERATIONS,
    GAUSS_NEWTON_ITERATIONS,
    MuscleDrive,
    correct_emg,
    solve_in_steps,
)
from .threads import limit_threads
from .validation import (
    MAX_LOAD_KG,
    SequenceInputs,
    check_envelopes,
    check_plausible,
    check_subject_ids,
    torque_target,
)
from .windows import window_starts

__all__ = [
    "NETWORK_COST",
    "PREPARE_COSTS",
    "STEP_COSTS",
    "StreamOutput",
    "StreamingPredictor",
    "span_corrections",
]

NETWORK_COST = 3
"""Cost, in units, of one member's network on one window (0.9-1.0 ms for the default network).

A unit is about 0.3 ms of one core (measured, ``benchmarks/bench_streaming.py``)."""

PREPARE_COSTS = (3, 1)
"""Cost of a span's preparation, in two units: the muscles' torque of its kinematics (and the
inverse dynamics of its new samples without a torque channel), then the torque's derivative
and the span's set-up."""

STEP_COSTS = (
    1,
    *((1, 2, *(1,) * (CG_ITERATIONS - 1), 2) * GAUSS_NEWTON_ITERATIONS),
    1,
)
"""Cost of each Gauss-Newton unit of a span (:func:`deepemg.correction.solve_in_steps`), in order.

The set-up (1), then per iteration the linearisation (1), the gradient with the first
conjugate-gradient iteration (2), the other conjugate-gradient iterations (1 each) and the
step length (2: three losses), and the corrected EMG (1): 0.1-0.6 ms each."""

SPAN_COST = sum(PREPARE_COSTS) + sum(STEP_COSTS)
"""Cost of one span's correction (all members at once)."""


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
            stacklevel=5,
        )
        return np.array([population])
    return np.array([known.index(label)])


def _members_and_mode(estimator, predict_physics, subject) -> tuple[list, str, np.ndarray]:
    """The fitted networks streamed (one, or an ensemble's members), the mode and subject row.

    Raises for an unfitted estimator and for ``predict_physics="emg"``; warns when the
    estimator's own mode is ``"emg"`` (streamed as ``"torque"``). ``"auto"`` is resolved for
    ``subject`` (:func:`deepemg.adequacy.trusts_physics`; an ensemble's members by majority).
    """
    from .ensemble import NMMEnsemble

    if predict_physics == "emg":
        raise ValueError(
            "predict_physics='emg' (EMG-assisted: measured EMG drives its muscles) is not "
            "streamed; use predict_physics='torque' (the network's EMG corrected to the "
            "inverse-dynamics torque) or 'none' (the network alone)."
        )
    if predict_physics not in (None, "auto", "torque", "level", "none"):
        raise ValueError(
            f"predict_physics={predict_physics!r}; choose 'auto', 'torque', 'level', 'none' or "
            "None (the estimator's)."
        )
    if isinstance(estimator, NMMEnsemble):
        check_is_fitted(estimator, "estimators_")
        members = list(estimator.fitted_members())  # with the template's parameters now
    else:
        check_is_fitted(estimator, "net_")
        members = [estimator]
    mode = predict_physics
    if mode is None:
        mode = str(getattr(members[0], "predict_physics", "none"))
        if mode == "emg":
            warnings.warn(
                "the estimator predicts with predict_physics='emg' (EMG-assisted), which is "
                "not streamed: the stream corrects the EMG to the torque alone "
                "(predict_physics='torque'). Pass predict_physics='torque' or 'none' to "
                "silence this warning.",
                UserWarning,
                stacklevel=3,
            )
            mode = "torque"
    row = _subject_row(members[0], subject)
    if mode == "auto":
        votes = [
            trusts_physics(getattr(m, "model_adequacy_", None) or {}, m.subjects_.tolist(), row)
            for m in members
        ]
        mode = "torque" if 2 * int(np.sum(votes)) >= len(votes) else "none"
    if mode == "torque" and members[0].correction_solver != "gauss-newton":
        warnings.warn(
            f"the estimator solves its correction with correction_solver="
            f"{members[0].correction_solver!r}; the stream solves it by Gauss-Newton (the "
            "default), which reaches the same loss: the streamed EMG differs from its predict "
            "by the solvers' difference.",
            UserWarning,
            stacklevel=3,
        )
    return members, mode, row


class _Task:
    """A queued piece of work: a generator that yields the cost of its next unit before it."""

    __slots__ = ("cost", "steps")

    def __init__(self, steps: Generator[int, None, None]) -> None:
        self.steps = steps
        self.cost = next(steps)  # no work before the first yield


_MOST_CREDIT = max(NETWORK_COST, *PREPARE_COSTS, *STEP_COSTS)
"""Credit carried from one update to the next: enough for the costliest unit."""


def _run_units(network: deque, spans: deque, credit: int, limit: int | None) -> tuple[int, int]:
    """Run queued units, networks first, then spans in order; the credit left and units run.

    With a ``limit`` (an update's ``units_per_update * n_new``): while the credit covers the
    next unit's cost and, after the first unit, the update's units stay within ``limit`` (a
    unit costlier than ``limit`` runs alone); the credit left is capped at
    :data:`_MOST_CREDIT`, and an empty queue clears it. Without: every unit.
    """
    spent = units = 0
    while True:
        queue = network or spans
        if not queue:
            return 0, units
        task = queue[0]
        if limit is not None:
            if task.cost > credit or (spent and spent + task.cost > limit):
                return min(credit, _MOST_CREDIT), units
            credit -= task.cost
            spent += task.cost
        units += 1
        try:
            task.cost = next(task.steps)
        except StopIteration:
            queue.popleft()


def _final_bound(n: int, window: int, stride: int) -> int:
    """One past the last sample whose network EMG is final after ``n`` samples.

    The regular windows covering it have run and the end-aligned window (from ``n - window``
    on, off the grid) cannot cover it: ``n - window``, one more when that is a grid start.
    """
    if n < window:
        return 0
    first = n - window
    return first + 1 if first % stride == 0 else first


def _simulate(window: int, stride: int, n_members: int, corrected: bool, units: int):
    """The stream's schedule, one sample per update, on the units' costs alone.

    Returns the most samples the newest output was behind the newest input once outputs
    began and the samples by which the first output came, or None when the queue does not
    keep up. Over the start and four periods of the schedule (``lcm(window // 2, stride)``
    samples), after which it repeats.
    """
    step, quarter = window // 2, window // 4
    period = math.lcm(step, stride) if corrected else stride
    state = {"n": 0, "runs": 0, "next_span": 0, "emitted": 0}
    network: deque[_Task] = deque()
    spans: deque[_Task] = deque()

    def final() -> int:
        bound = _final_bound(state["n"], window, stride)
        return min(bound, (state["runs"] // n_members) * stride)

    def span_task(start: int) -> Generator[int, None, None]:
        yield from PREPARE_COSTS
        yield from STEP_COSTS
        state["emitted"] = start + step + quarter

    def network_task() -> Generator[int, None, None]:
        yield NETWORK_COST
        state["runs"] += 1
        while corrected and state["next_span"] * step + window <= final():
            spans.append(_Task(span_task(state["next_span"] * step)))
            state["next_span"] += 1

    credit = lag = first = windows = 0
    for n in range(1, 2 * window + 4 * period + 1):
        state["n"] = n
        for _ in range(windows, (n - window) // stride + 1):
            network.extend(_Task(network_task()) for _ in range(n_members))
            windows += 1
        credit += units
        while corrected and state["next_span"] * step + window <= final():
            spans.append(_Task(span_task(state["next_span"] * step)))
            state["next_span"] += 1
        credit, _ = _run_units(network, spans, credit, units)
        emitted = state["emitted"] if corrected else final()
        if emitted:
            lag = max(lag, n - emitted)
        else:
            first = n + 1
    if len(spans) > 1 or len(network) > n_members:
        return None
    return lag, first


def _schedule(window: int, stride: int, n_members: int, corrected: bool) -> tuple[int, int, int]:
    """Units per new sample, the latency and the startup (:class:`StreamingPredictor`).

    With the correction: the fewest units per sample with which, one sample per update
    (:func:`_simulate`), the newest output stays within the network's latency plus one window
    (``2 * window``, or ``2 * window - 1`` when ``stride`` is 1). Without (an ensemble's
    networks): one network per update, :data:`NETWORK_COST` units.
    """
    if not corrected:
        units = max(NETWORK_COST, math.ceil(n_members * NETWORK_COST / stride))
        result = _simulate(window, stride, n_members, False, units)
        assert result is not None
        return units, result[0], result[1]
    target = 2 * window - (stride == 1)
    units = max(1, math.ceil(n_members * NETWORK_COST / stride))
    while True:
        result = _simulate(window, stride, n_members, True, units)
        if result is not None and result[0] <= target:
            return units, result[0], result[1]
        units += 1


class _MemberPhysics:
    """The members' muscle models for a stream's spans: what is fixed, computed once.

    Every member's subject parameters (of the streamed subject's row) as one batch, one row
    per member: the spans of all members are solved together, each row on its own (the
    correction's loss couples no rows). The model is the first member's (an ensemble's
    members share their template's). Copied to the CPU: later changes to the estimator do not
    reach the stream.
    """

    def __init__(self, members: list, row: int, window: int) -> None:
        modules = [member.net_.module_ for member in members]
        self.model = copy.deepcopy(modules[0].physics).to("cpu")
        index = torch.tensor([int(row)])
        with torch.no_grad():
            values = [
                {k: v.detach().to("cpu") for k, v in m.subject_parameters._values(index).items()}
                for m in modules
            ]
        self.params = {name: torch.cat([v[name] for v in values]) for name in values[0]}
        self.n_members = len(members)
        # the drive of a span by the correction's own constructor, once: its activation filter
        # and whatever else depends on the subjects and the length only; each span replaces
        # the parts that depend on its samples (drive)
        middle = float(np.mean(self.model.coordinate_range))
        rest = torch.zeros((self.n_members, window), dtype=torch.float64)
        with torch.no_grad():
            self._template = MuscleDrive(
                self.model, self.params, float(modules[0].rate), rest + middle, rest
            )
        self.torque_scale = torch.tensor(
            [float(m.torque_scale_) for m in members], dtype=torch.float64
        )
        self.weight = torch.tensor(
            [float(m.correction_weight) for m in members], dtype=torch.float64
        )
        self.affine = bool(self.model.muscle_law.affine_in_activation)

    def _rows(self, values: np.ndarray) -> torch.Tensor:
        """``values`` ``(n,)`` as ``(n_members, n)`` (a view)."""
        return torch.from_numpy(np.ascontiguousarray(values))[None].expand(self.n_members, -1)

    def muscle_torque(self, angle: np.ndarray, velocity: np.ndarray) -> Callable:
        """The members' joint torque of a ``(n_members, n_muscles, n)`` activation."""
        angle_, velocity_ = self._rows(angle), self._rows(velocity)
        return lambda a: self.model._joint_torque(a.transpose(1, 2), angle_, velocity_, self.params)

    @torch.no_grad()
    def inverse_dynamics(self, kinematics: np.ndarray) -> np.ndarray:
        """Torque (N·m) of ``(n, 4)`` angle, velocity, acceleration and load, per sample."""
        columns = (torch.from_numpy(np.ascontiguousarray(c)) for c in kinematics[:, :4].T)
        return self.model.inverse_dynamics(*columns).numpy()

    def torque_graph(self, angle: np.ndarray, velocity: np.ndarray) -> tuple:
        """The muscles' torque at no activation, with its graph: :meth:`gain`'s input.

        The first half of :meth:`linearised` (``MuscleDrive.linearised_muscles`` in two units).
        """
        shape = (self.n_members, self.model.n_muscles, len(angle))
        zero = torch.zeros(shape, dtype=torch.float64).requires_grad_(True)
        with torch.enable_grad():
            return zero, self.muscle_torque(angle, velocity)(zero)

    @staticmethod
    def gain(graph: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Gain ``(n_members, n_muscles, n)`` and passive torque ``(n_members, n)``.

        Of :meth:`torque_graph`'s output: the torque of an affine law is
        ``sum gain * activation + passive`` (:class:`deepemg.correction.MuscleDrive`).
        """
        zero, torque = graph
        (gain,) = torch.autograd.grad(torque.sum(), [zero])
        return gain, torque.detach()

    def linearised(self, angle: np.ndarray, velocity: np.ndarray) -> tuple:
        """:meth:`gain` of :meth:`torque_graph`: the gain and passive torque per sample."""
        return self.gain(self.torque_graph(angle, velocity))

    def drive(self, gain, passive, angle, velocity) -> MuscleDrive:
        """The span's drive: the stream's, with the parts of the span's samples.

        The muscles' torque of the span's kinematics and, for a law affine in the activation,
        its gain and passive part (:meth:`gain`).
        """
        return self._template.at_samples(self._rows(angle), self._rows(velocity), gain, passive)


@contextlib.contextmanager
def _one_torch_thread():
    """Hold torch at one thread inside the block (the caller's count restored after)."""
    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads != 1:
            torch.set_num_threads(threads)


def span_corrections(
    members: Sequence,
    X: np.ndarray,
    *,
    subject=None,
    row: int | None = None,
    priors=None,
    torque=None,
) -> np.ndarray:
    """What a corrected stream promises, computed offline: each span's :func:`correct_emg`.

    Spans of ``C = window`` samples every ``C // 2``; span ``k`` gives the samples
    ``[k S + C // 4, (k + 1) S + C // 4)`` (span 0 from 0) and one span aligned with the end the
    rest. Each span's prior is offline ``predict(X, subject, predict_physics="level")`` of the
    whole sequence (or ``priors``, one per member); the result is the mean over the members of
    each member's correction. For checking a stream (the tests, ``benchmarks/bench_streaming.py``)
    through another path than the stream's own.

    Parameters
    ----------
    members : sequence of NMMRegressor
        The fitted networks (one, or an ensemble's ``estimators_``).
    X : ndarray of shape (n_timesteps, n_channels)
        One sequence, ``n_timesteps >= window``, in the members' ``channels_``.
    subject : label, optional
        The subject of the priors (``predict``'s ``subject_ids``).
    row : int, optional
        The subject-parameter row corrected with; None: the population's (-1, or 0 after a
        fit on one subject).
    priors : list of ndarray (n_timesteps, n_muscles), optional
        Each member's network EMG instead of offline ``predict``'s.
    torque : ndarray (n_timesteps,), optional
        The torque (N·m) instead of ``X``'s (or its inverse dynamics).

    Returns
    -------
    ndarray of shape (n_timesteps, n_muscles)
    """
    first = members[0]
    n, c = len(X), int(first.window)
    step, quarter = c // 2, c // 4
    pieces = [(k, k + quarter if k else 0, k + step + quarter) for k in range(0, n - c + 1, step)]
    if pieces[-1][2] < n:
        pieces.append((n - c, pieces[-1][2], n))
    if priors is None:
        subjects = None if subject is None else [subject]
        priors = [m.predict(X[None], subjects, predict_physics="level")[0] for m in members]
    if torque is None:
        torque = torque_target(X[None], first.channels_, first.physics_)[0]
    if row is None:
        row = -1 if len(first.subjects_) > 1 else 0
    emg = np.full((n, len(first.muscles_)), np.nan)
    for start, low, high in pieces:
        span = slice(start, start + c)
        runs = [
            correct_emg(
                m.net_.module_,
                torch.as_tensor(prior[None, span]),
                torch.as_tensor(X[None, span, 0]),
                torch.as_tensor(X[None, span, 1]),
                torch.as_tensor(torque[None, span]),
                torch.tensor([row]),
                torque_scale=m.torque_scale_,
                weight=m.correction_weight,
            )[0].numpy()
            for m, prior in zip(members, priors, strict=True)
        ]
        emg[low:high] = np.mean(runs, axis=0)[low - start : high - start]
    return emg


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


def _copied_network(estimator, row: np.ndarray, with_level: bool) -> tuple:
    """A member's network (a CPU copy in evaluation mode) and the subject's code, or None.

    ``with_level``: the subject's EMG level in the copy's output bias (else the network
    alone, without the fitted subjects' mean level either).
    """
    module = estimator.net_.module_
    network = copy.deepcopy(module.network).to("cpu")
    network = network.eval().requires_grad_(False)
    with torch.no_grad():
        level = module.level_offset(torch.as_tensor(row))
        if level is not None:
            shift = level[0] if with_level else -module.level_shift
            network.head.bias += shift.to("cpu", network.head.bias.dtype)
    code = None  # (1, subject_embedding): the subject's code, when the EMG uses one
    if getattr(estimator, "subject_embedding", 0):
        with torch.no_grad():
            codes = estimator.net_.module_.subject_parameters.codes(torch.as_tensor(row))
        code = codes.detach().to("cpu", torch.float32)
    return network, code


def _timing(window: int, stride: int, n_members: int, corrected: bool) -> tuple[int, int, int]:
    """A stream's units per new sample, latency and startup.

    :func:`_schedule`'s with a queue (the correction, or an ensemble); the single network
    without the correction runs no queue: 0, its latency (``window``, ``window - 1`` when
    ``stride`` is 1) and ``window``.
    """
    if corrected or n_members > 1:
        return _schedule(window, stride, n_members, corrected)
    return 0, window if stride > 1 else window - 1, window


def _check_usable(broken: str | None, finished: bool, call: str) -> None:
    """Raise when a stream that is ``broken`` (its error) or ``finished`` cannot ``call``."""
    if broken is not None:
        raise RuntimeError(
            f"this stream is broken: a unit of its work failed ({broken}); its queue "
            f"is lost. Call reset() to start a new sequence before {call}()."
        )
    if finished:
        raise RuntimeError(
            "this stream was finished; call reset() to start a new sequence."
            if call == "update"
            else "this stream was already finished; call reset() first."
        )


class _SampleChecks:
    """What a stream checks in the samples it receives: their columns, values and derivatives.

    ``channels`` (``estimator``'s ``channels_`` by default) name the samples' columns: the
    network's inputs are taken from theirs (:attr:`columns`) and, with the correction
    (``corrected``), its torque target from the torque channel when they include it
    (:attr:`torque_column`; None: the stream computes it). Errors name the first bad sample by
    its index in the stream.
    """

    def __init__(self, estimator, channels, corrected: bool) -> None:
        self.physics, self.rate = estimator.physics_, float(estimator.rate)
        self.window = int(estimator.window)
        self.layout = layout = layout_for(self.physics)
        if isinstance(channels, str):
            raise TypeError("channels must be a sequence of channel names, not one string.")
        self.channels = list(estimator.channels_ if channels is None else channels)
        missing = [c for c in layout.inputs if c not in self.channels]
        if missing:
            raise ValueError(
                f"channels lack {missing}, which the network needs; channels are "
                f"{self.channels}. Name the columns of the samples you will send, in order "
                f"(the estimator's: {list(estimator.channels_)})."
            )
        self.emg = list(estimator.emg_inputs_)  # the surface EMG the network reads
        missing = [c for c in self.emg if c not in self.channels]
        if missing:
            raise ValueError(
                f"channels lack {missing}: the network reads the surface EMG {self.emg} "
                "(emg_inputs), so every sample must carry it. Name the columns of the samples "
                f"you will send, in order (the estimator's: {list(estimator.channels_)})."
            )
        self.names = [*layout.inputs, *self.emg]
        self.columns = [self.channels.index(c) for c in self.names]
        self.torque_column = None  # the correction's torque from this column (else computed)
        if corrected and layout.torque in self.channels:
            self.torque_column = self.channels.index(layout.torque)
        self.low, self.high = (float(v) for v in self.physics.coordinate_range)

    def samples(self, samples, offset: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The new samples' network inputs (kinematics, load, EMG read; float64) and torque.

        The torque: the torque channel's values when the correction uses it, else None. The
        first new sample is the stream's sample ``offset``.
        """
        samples = np.asarray(samples)
        if not np.issubdtype(samples.dtype, np.number) or np.iscomplexobj(samples):
            raise ValueError(f"samples must be real numbers, got dtype {samples.dtype}.")
        width, layout = len(self.channels), self.layout
        if samples.ndim == 1 and samples.shape[0] == width:
            samples = samples[None]
        if samples.ndim != 2 or samples.shape[1] != width:
            raise ValueError(
                f"samples must be shaped (n_new, {width}), one row per sample and one column "
                f"per channel {self.channels}, got shape {samples.shape}."
                + (" Transpose them: channels go last." if samples.shape[:1] == (width,) else "")
            )
        raw = samples[:, self.columns].astype(np.float64)
        bad = ~np.isfinite(raw)
        if bad.any():
            row, column = np.argwhere(bad)[0]
            raise ValueError(
                f"sample {offset + row} holds {raw[row, column]} in "
                f"'{self.names[column]}'; interpolate or hold the last value before "
                "sending it."
            )
        torque = None
        if self.torque_column is not None:
            torque = samples[:, self.torque_column].astype(np.float64)
            if not np.isfinite(torque).all():
                row = int(np.argmax(~np.isfinite(torque)))
                raise ValueError(
                    f"sample {offset + row} holds {torque[row]} in '{layout.torque}', "
                    "the torque the correction reproduces. Send it, or leave it out of "
                    "channels: the stream then computes the torque by the model's inverse "
                    "dynamics."
                )
        self._check_ranges(raw, offset)
        return raw, torque

    def _check_ranges(self, raw: np.ndarray, offset: int) -> None:
        """The angle within the coordinate's range, the load within 0..50 kg, EMG envelopes."""
        if self.emg:
            try:
                check_envelopes(raw[:, 4:], "the samples' EMG channels", self.emg)
            except ValueError as error:
                raise ValueError(f"samples {offset}..{offset + len(raw) - 1}: {error}") from None
        angle, load, low, high = raw[:, 0], raw[:, 3], self.low, self.high
        outside = (angle < low - 1e-9) | (angle > high + 1e-9)
        if outside.any():
            row = int(np.argmax(outside))
            hint = " Angles are in radians: did you send degrees?" if angle[row] > 2 * np.pi else ""
            raise ValueError(
                f"sample {offset + row}: '{self.layout.angle}' = {angle[row]:.4g} rad lies "
                f"outside the range of '{self.physics.coordinate}', [{low:.4g}, "
                f"{high:.4g}] rad ([{np.degrees(low):.1f}, "
                f"{np.degrees(high):.1f}] deg).{hint} Clip the angle to the range."
            )
        heavy = (load < 0) | (load > MAX_LOAD_KG)
        if heavy.any():
            row = int(np.argmax(heavy))
            raise ValueError(
                f"sample {offset + row}: '{self.layout.load}' = {load[row]:.4g}; it is the "
                f"mass of the lifted load in kg, between 0 and {MAX_LOAD_KG:g} (not grams, not "
                "newtons)."
            )

    def windows(self, raw: np.ndarray, origin: int, starts: list[int]) -> None:
        """The derivative check of the windows starting at ``starts`` (stream indices).

        ``raw``: the stream's inputs from its sample ``origin`` on.
        """
        w, layout = self.window, self.layout
        for start in starts:
            window = raw[start - origin : start - origin + w, :4]
            inputs = SequenceInputs(window[None], list(layout.inputs), layout, window[None])
            try:
                check_plausible(inputs, self.physics, self.rate)
            except ValueError as error:
                message = str(error).replace("X's ", "", 1)
                raise ValueError(
                    f"samples {start}..{start + w - 1} (one window): {message}"
                ) from None


class _WorkQueue:
    """A stream's queued work: the networks' units first, then the spans' in order.

    Each update adds :attr:`credit` (``units_per_update`` per new sample) and :meth:`run` runs
    the units it covers (:func:`_run_units`). :attr:`units` counts the units run, and
    :attr:`broken` holds the error a unit raised (its queue lost).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Empty, no credit, no unit run, not broken."""
        self.network: deque[_Task] = deque()
        self.spans: deque[_Task] = deque()
        self.credit = 0
        self.units = 0
        self.broken: str | None = None

    def run(self, limit: int | None) -> None:
        """Run queued units: an update's share (:func:`_run_units`), or (None) all.

        An error inside a unit breaks the queue (its units are lost) until :meth:`reset`;
        the error propagates.
        """
        try:
            with _one_torch_thread():
                self.credit, units = _run_units(self.network, self.spans, self.credit, limit)
            self.units += units
        except BaseException as error:
            self.broken = f"{type(error).__name__}: {error}"
            self.network.clear()
            self.spans.clear()
            raise


class _NetworkWindows:
    """The network side of a stream: its samples' buffers and the windows run on them.

    Sliding buffers, one row per sample from the stream's sample :attr:`origin` on: the inputs
    (angle, velocity, acceleration, load), their standardisation per member, each member's sum
    of the EMG of the windows run over the sample and their count, and (``corrected``) the
    correction's torque target (N·m). Copies of the members' networks and subject codes run on
    windows of ``window`` samples (:meth:`forward`); :meth:`final` says up to where every
    window over a sample has run.
    """

    def __init__(
        self,
        members: list,
        row: np.ndarray,
        stride: int,
        queued: bool,
        corrected: bool,
        with_level: bool,
    ) -> None:
        self.window, self.stride = int(members[0].window), stride
        self.n_members, self.n_muscles = len(members), len(members[0].muscles_)
        self.n_inputs = len(members[0].feature_mean_)  # 4, plus the EMG channels read
        self.queued, self.corrected = queued, corrected
        self.mean = np.stack([np.asarray(m.feature_mean_, dtype=np.float64) for m in members])
        self.std = np.stack([np.asarray(m.feature_std_, dtype=np.float64) for m in members])
        self.networks = [_copied_network(m, row, with_level) for m in members]
        self.allocate(4 * self.window + 64)
        self.reset()

    def allocate(self, capacity: int) -> None:
        """The buffers, ``capacity`` rows each."""
        b, m = self.n_members, self.n_muscles
        # angle, velocity, acceleration, load, then the EMG channels the networks read
        self.raw = np.zeros((capacity, self.n_inputs))
        self.features = np.zeros((capacity, b, self.n_inputs), dtype=np.float32)  # standardised
        self.total = np.zeros((capacity, b, m))  # sum of window outputs, per member
        self.count = np.zeros((capacity, b))  # windows summed
        if self.corrected:
            self.torque = np.zeros(capacity)  # the correction's target (N·m)

    def reset(self) -> None:
        """No sample yet: the next one is the stream's sample 0."""
        self.origin = 0  # stream index of buffer row 0
        self.next_window = 0  # index k of the next grid window, starting at k * stride
        self.runs = 0  # networks run on a window (one per member and window)
        self.end_known = False  # finish ran the end-aligned window

    def write(self, n: int, raw: np.ndarray, torque: np.ndarray | None) -> None:
        """The new samples from the stream's sample ``n`` on (room reserved by :meth:`slide`).

        Their inputs, standardised for each member, no window's EMG yet, and their torque.
        """
        at, new = n - self.origin, len(raw)
        self.raw[at : at + new] = raw
        self.features[at : at + new] = (raw[:, None] - self.mean) / self.std
        self.total[at : at + new] = 0.0
        self.count[at : at + new] = 0.0
        if torque is not None:
            self.torque[at : at + new] = torque

    def slide(self, n: int, new: int, keep: int) -> None:
        """Keep the rows of samples ``keep .. n - 1`` first, room after them for ``new`` more.

        In place, or grown when they do not fit (one copy every few hundred samples).
        """
        rows, capacity = n - keep, len(self.raw)
        names: tuple[str, ...] = ("raw", "features", "total", "count")
        if self.corrected:
            names += ("torque",)
        if rows + new > capacity:
            capacity = max(2 * capacity, rows + new + self.window)
            for name in names:
                old = getattr(self, name)
                grown = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
                grown[:rows] = old[keep - self.origin : n - self.origin]
                setattr(self, name, grown)
        else:
            for name in names:
                array = getattr(self, name)
                array[:rows] = array[keep - self.origin : n - self.origin].copy()
        self.origin = keep

    def forward(self, starts: list[int], member: int) -> None:
        """Run member ``member``'s network on the windows starting at ``starts``.

        Its EMG is added to the member's running sums.
        """
        w, origin = self.window, self.origin
        features = self.features[:, member]
        if len(starts) == 1:
            batch = features[starts[0] - origin : starts[0] - origin + w][None]
        else:
            batch = np.stack([features[s - origin : s - origin + w] for s in starts])
        network, code = self.networks[member]
        with _one_torch_thread(), torch.inference_mode():
            code = None if code is None else code.expand(len(batch), -1)
            emg = network(torch.from_numpy(batch), code).numpy().astype(np.float64)
        for start, values in zip(starts, emg, strict=True):
            self.total[start - origin : start - origin + w, member] += values
            self.count[start - origin : start - origin + w, member] += 1.0
        self.runs += len(starts)

    def final(self, n: int) -> int:
        """One past the last sample whose network EMG (every member's) is final, of ``n``."""
        if self.end_known:
            return n
        bound = _final_bound(n, self.window, self.stride)
        if not self.queued:
            return bound
        # the windows every member has run: those starting before windows * stride
        return min(bound, (self.runs // self.n_members) * self.stride)

    def prior(self, start: int, stop: int) -> np.ndarray:
        """Network EMG of samples ``start .. stop - 1``, ``(n, n_members, n_muscles)``.

        Each member's mean of the windows over each sample.
        """
        rows = slice(start - self.origin, stop - self.origin)
        return self.total[rows] / self.count[rows][..., None]


class _PhysicsSpans:
    """The physics side of a corrected stream: its spans, queued and solved unit by unit.

    Span ``k`` covers the samples ``[k S, k S + window)``, ``S = window // 2``.
    :meth:`queue_final` queues the spans whose network EMG is final (on ``work``); a
    span's units prepare it and run its Gauss-Newton solver
    (:func:`~deepemg.correction.solve_in_steps`, every member at once) and give the corrected
    EMG of the samples of its middle (:attr:`ready`; :attr:`emitted` counts the samples given).
    The samples, their network EMG and torque target are read from the stream's buffers
    (``windows``), where, without a torque channel (``computed_torque``), the torque target is
    written by inverse dynamics.
    """

    def __init__(
        self,
        physics: _MemberPhysics,
        windows: _NetworkWindows,
        work: _WorkQueue,
        computed_torque: bool,
    ) -> None:
        self.physics, self.windows, self.window = physics, windows, windows.window
        self.work, self.computed_torque = work, computed_torque
        self.reset()

    def reset(self) -> None:
        """No span yet: the next sequence's."""
        self.emitted = 0  # samples whose corrected EMG was given
        self.next_span = 0  # index k of the next span, starting at k * (window // 2)
        self.unprepared = 0  # start of the oldest span not prepared yet
        self.prepared = 0  # samples whose torque target is computed
        self.ready: list[np.ndarray] = []  # EMG given by spans, not returned yet
        self.last_span: tuple[int, np.ndarray] | None = None  # the latest span's start, EMG

    def queue_final(self, final: int) -> None:
        """Queue the spans whose every sample's network EMG is final (those before ``final``)."""
        step = self.window // 2
        while self.next_span * step + self.window <= final:
            start = self.next_span * step
            self.work.spans.append(_Task(self._task(start, start + step + self.window // 4)))
            self.next_span += 1

    def queue_end(self, n: int) -> None:
        """Give the samples no span gave (at the end) from the span ``[n - window, n)``."""
        start = n - self.window
        if self.last_span is not None and self.last_span[0] == start:  # solved already
            self.ready.append(self.last_span[1][self.emitted - start :])
            self.emitted = n
            return
        self.work.spans.append(_Task(self._task(start, n)))

    def output(self) -> StreamOutput:
        """The EMG the spans gave since the last call, of samples ``.. emitted - 1``."""
        if not self.ready:
            return StreamOutput(self.emitted, np.zeros((0, self.windows.n_muscles)))
        emg = self.ready[0] if len(self.ready) == 1 else np.concatenate(self.ready)
        self.ready = []
        return StreamOutput(self.emitted - len(emg), emg)

    def _task(self, start: int, stop: int) -> Generator[int, None, None]:
        """The correction of the span from ``start``, giving samples ``emitted .. stop - 1``."""
        yield PREPARE_COSTS[0]
        graph = self._linearise(start)
        yield PREPARE_COSTS[1]
        steps = self._prepared_span(start, graph)
        for cost in itertools.chain(STEP_COSTS, itertools.repeat(1)):
            yield cost
            try:
                next(steps)
            except StopIteration as done:
                emg = done.value.mean(dim=0).numpy()  # the members' mean, (window, n_muscles)
                break
        self.last_span = (start, emg)
        self.ready.append(emg[self.emitted - start : stop - start])
        self.emitted = stop

    def _linearise(self, start: int) -> tuple | None:
        """Begin the span from ``start``: the muscles' torque of its kinematics, with its graph.

        For a law affine in the activation (else None), which :meth:`_prepared_span`
        differentiates; also the torque target of the samples not computed yet.
        """
        physics, stop, windows = self.physics, start + self.window, self.windows
        origin = windows.origin
        if self.computed_torque and stop > self.prepared:
            new = slice(self.prepared - origin, stop - origin)
            windows.torque[new] = physics.inverse_dynamics(windows.raw[new])
        self.prepared = max(self.prepared, stop)
        if not physics.affine:
            return None
        raw = windows.raw[start - origin : stop - origin]
        return physics.torque_graph(raw[:, 0], raw[:, 1])

    def _prepared_span(self, start: int, graph: tuple | None) -> Generator:
        """The solver of the span from ``start`` (:func:`~deepemg.correction.solve_in_steps`).

        Ends the linearisation :meth:`_linearise` began (``graph``), then takes the span's
        network EMG, kinematics and torque target.
        """
        physics, stop, windows = self.physics, start + self.window, self.windows
        gain, passive = (None, None) if graph is None else physics.gain(graph)
        rows = slice(start - windows.origin, stop - windows.origin)
        self.unprepared = start + self.window // 2
        prior = windows.prior(start, stop)  # (window, members, muscles)
        raw = windows.raw[rows]
        drive = physics.drive(gain, passive, raw[:, 0], raw[:, 1])
        torque = physics._rows(windows.torque[rows])
        prior_ = torch.from_numpy(prior.transpose(1, 0, 2).copy())
        return solve_in_steps(drive, prior_, torque, physics.torque_scale, physics.weight)


class StreamingPredictor:
    """EMG of a fitted :class:`~deepemg.NMMRegressor` or :class:`~deepemg.NMMEnsemble`, live.

    Feed one sequence with :meth:`update` (any number of samples per call), end it with
    :meth:`finish`, start the next with :meth:`reset`. Everything returned for a sequence,
    concatenated, is its EMG (see the module's docstring for what equals what offline):

    * ``predict_physics="none"``: the network's EMG, equal to ``estimator.predict(X[None],
      predict_physics="none")[0]`` (``predict(X[None], [subject], ...)`` with a ``subject``;
      up to float32 rounding of the network's batching); ``"level"`` likewise, with the
      subject's EMG level on the muscles without EMG;
    * ``"torque"`` (the estimator's default): the network's EMG corrected by the physics
      (:func:`deepemg.correction.correct_emg`) over spans of ``window`` samples every
      ``window // 2``, each sample from the span it is in the middle of: equal to offline
      ``predict`` with ``"torque"`` for a sequence of ``window`` samples, and to the
      correction of each span's network EMG for a longer one. The correction needs the
      sequence's inverse-dynamics torque: the channel ``<joint>_torque`` when ``channels``
      includes it (as offline ``predict`` uses it), else the model's rigid-body inverse
      dynamics of the kinematics and load, per sample;
    * an :class:`~deepemg.NMMEnsemble`: every member's network (its copy, standardisation and
      subject code) and, with ``"torque"``, every member's correction (its subject
      parameters, ``torque_scale_``): the mean over the members of each member's EMG, as
      ``NMMEnsemble.predict``.

    **No update blocks.** With the correction, or with an ensemble, the work is a queue of
    pieces, each costed in units of about 0.3 ms of one core: each member's network on each
    window (:data:`NETWORK_COST`), and each span's correction, solved for all members at once:
    a preparation (:data:`PREPARE_COSTS`) and the Gauss-Newton steps (:data:`STEP_COSTS`).
    Each update adds :attr:`units_per_update` units per new sample to a credit and runs the
    queue's pieces, networks first then spans in order, while the credit covers the next
    one's cost and the update's pieces stay within ``units_per_update * n_new`` units (a piece
    costlier than that runs alone, once the credit carried from earlier updates covers it):
    :func:`_run_units`. :attr:`units_per_update` is fixed at construction, the smallest with
    which the outputs stay within the network's latency plus one window (:attr:`latency`).
    :meth:`finish` runs everything left. The single network without the correction runs, as
    before, in the update that completes its window.

    Parameters
    ----------
    estimator : NMMRegressor or NMMEnsemble
        A fitted estimator. Its networks are copied (to the CPU, in evaluation mode), as are
        their standardisation, ``window`` and ``predict_overlap``, and its subject
        parameters: later changes to the estimator do not affect the stream.
    channels : sequence of str, optional
        Names of the columns of the samples :meth:`update` receives; the estimator's
        ``channels_`` by default. They must include the joint's angle (rad), velocity
        (rad/s), acceleration (rad/s²) and ``load_mass`` (kg); other columns are ignored and
        may be NaN, except the torque channel with ``predict_physics="torque"`` (the
        correction's target: leave it out of ``channels`` to use the inverse dynamics). A
        real-time source can send the four inputs alone, e.g. ``channels=["elbow_angle",
        "elbow_velocity", "elbow_acceleration", "load_mass"]``.
    check_derivatives : bool, default=True
        Check, in each window before the network runs on it, that the velocity is the time
        derivative of the angle and the acceleration that of the velocity at the estimator's
        ``rate`` (:func:`deepemg.validation.check_plausible`, which offline ``predict`` runs on
        whole sequences; a window has too few samples before that). A failing update changes
        nothing.
    subject : label, optional
        The subject streamed (seen in fit or personalised; an unknown one gets the
        population's, with an :class:`~deepemg.metrics.UnseenSubjectWarning`): its code
        (``subject_embedding > 0``) and, with the correction, its muscle parameters, as
        ``predict(X, subject_ids)`` uses them. None: the population's, as ``predict(X)``.
    predict_physics : {"auto", "torque", "level", "none"}, optional
        None: the estimator's (an ensemble's template's); ``"auto"`` is ``"torque"`` or
        ``"none"`` for ``subject`` as ``predict`` resolves it (an ensemble's members by
        majority); an estimator set to ``"emg"`` (EMG-assisted, not streamed) streams
        ``"torque"``, with a warning. ``"emg"`` is an error.

    Attributes
    ----------
    window, stride : int
        Window length and the step between the offline grid's windows; spans are ``window``
        samples long and start every ``window // 2``.
    predict_physics : str
        ``"torque"``, ``"level"`` or ``"none"``.
    n_members : int
        Networks streamed (1, or an ensemble's members).
    units_per_update : int
        Units of work each update may run per new sample (0 when nothing is queued: the
        single network without the correction).
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
    >>> corrected = StreamingPredictor(nmm, predict_physics="torque")
    >>> first = corrected.update(trial[:20])     # one span: the whole 20-sample sequence
    >>> last = corrected.finish()
    >>> emg = np.concatenate([first.emg, last.emg])
    >>> offline = nmm.predict(trial[None, :20], predict_physics="torque")[0]
    >>> bool(np.allclose(emg, offline, atol=1e-3))  # the correction's float32 steps: 6e-6 here
    True
    """

    def __init__(
        self,
        estimator,
        *,
        channels: Sequence[str] | None = None,
        check_derivatives: bool = True,
        subject=None,
        predict_physics: str | None = None,
    ) -> None:
        members, self.predict_physics, row = _members_and_mode(estimator, predict_physics, subject)
        first = members[0]
        self.n_members = len(members)
        self.window = int(first.window)
        self.overlap = float(first.predict_overlap)
        # the offline grid's stride, from the offline code itself
        self.stride = int(window_starts(2 * self.window, self.window, self.overlap)[1])
        self.rate = float(first.rate)
        self.muscles = list(first.muscles_)
        corrected = self.predict_physics == "torque"
        self._checks = _SampleChecks(first, channels, corrected)
        self.physics, self.layout = self._checks.physics, self._checks.layout
        self.channels = self._checks.channels
        self.check_derivatives = bool(check_derivatives)
        self.subject = subject
        self._queued = corrected or self.n_members > 1
        # the samples' buffers and the networks (copied), and with the correction its spans
        with_level = self.predict_physics != "none"
        self._windows = _NetworkWindows(
            members, row, self.stride, self._queued, corrected, with_level
        )
        self._work_queue = _WorkQueue()
        if corrected and self.window < 4:
            raise ValueError(
                f"window={self.window}: the stream corrects spans of window samples every "
                "window // 2 and gives each its middle half, which needs window >= 4."
            )
        self._physics = _MemberPhysics(members, int(row[0]), self.window) if corrected else None
        computed = self._checks.torque_column is None  # no torque channel: inverse dynamics
        self._spans = (
            None
            if self._physics is None
            else _PhysicsSpans(self._physics, self._windows, self._work_queue, computed)
        )
        self.units_per_update, self._latency, self._startup = _timing(
            self.window, self.stride, self.n_members, corrected
        )
        self._threads: contextlib.ExitStack | None = None
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> StreamingPredictor:
        """Forget the current sequence and start a new one (sample index 0); returns self.

        Also makes a predictor broken by an error inside a unit of work usable again.
        """
        self.n_seen = 0
        self.n_emitted = 0
        self._windows.reset()
        if self._spans is not None:
            self._spans.reset()
        self._work_queue.reset()
        self._finished = False
        return self

    @property
    def latency(self) -> int:
        """Most samples the newest output can be behind the newest input, once outputs began.

        The single network alone: ``window`` (``window - 1`` when ``stride`` is 1): a sample's
        EMG is final when the end-aligned window can no longer reach it. An ensemble's
        networks: one or two more (its networks run one per update). With the correction: a
        span is solved once its last sample's network EMG is final and gives samples up to
        ``window // 4`` before that, ``window // 2`` at a time, and its solution is spread
        over updates: :attr:`units_per_update` is the smallest with which this stays within
        the network's latency plus one window, ``2 * window``; the value is the exact
        schedule's, one sample per update (:func:`_simulate`; more samples per update lag no
        more). Seconds: ``latency / rate``.
        """
        return self._latency

    @property
    def startup(self) -> int:
        """Samples by which the first output has come, at the latest (one sample per update).

        ``window`` for the single network alone (its first window), about :attr:`latency`
        for an ensemble's, and about ``window // 4`` more with the correction (the first span
        gives its samples from the first one on).
        """
        return self._startup

    @property
    def n_windows(self) -> int:
        """Networks run on a window since the last :meth:`reset` (one per member and window)."""
        return self._windows.runs

    @property
    def n_units(self) -> int:
        """Queued units of work run since the last :meth:`reset`."""
        return self._work_queue.units

    @property
    def pending(self) -> int:
        """Samples received whose EMG is not returned yet (at most :attr:`startup`)."""
        return self.n_seen - self.n_emitted

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` ended the sequence (call :meth:`reset` for the next)."""
        return self._finished

    def __enter__(self) -> StreamingPredictor:
        """Hold torch and BLAS at one thread until the block ends.

        Hold torch and BLAS at one thread (:func:`deepemg.threads.limit_threads`) until
        the block ends. Not required: :meth:`update` runs the networks and the correction on
        one torch thread anyway; this also pins BLAS and saves the per-update switch.
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
            f"predict_physics={self.predict_physics!r}, n_members={self.n_members}, "
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
            call ``stop = n_seen - pending``, with ``pending`` <= :attr:`latency` once the
            first output has come (by :attr:`startup` samples).

        Raises
        ------
        ValueError
            For a wrong shape, NaN or infinite values (in the torque channel too when the
            correction uses it), an angle outside the coordinate's range, a load outside
            0..50 kg (each with the stream index of the first bad sample), or a window whose
            velocity/acceleration is not the derivative of the angle/velocity. A failing call
            changes nothing: fix the samples and send them again.
        RuntimeError
            After :meth:`finish`, until :meth:`reset`; or after an error inside a unit of work
            (the error itself is raised by the update in which it happened), until
            :meth:`reset`.
        """
        _check_usable(self._work_queue.broken, self._finished, "update")
        raw, torque = self._checks.samples(samples, self.n_seen)
        n, new, windows = self.n_seen, len(raw), self._windows
        if new == 0:
            return self._empty()
        self._reserve(new)
        windows.write(n, raw, torque)
        # the grid windows that this update completes: k * stride + window <= n + new
        last = (n + new - self.window) // self.stride
        starts = [k * self.stride for k in range(windows.next_window, last + 1)]
        self._check_windows(starts)  # before anything changes
        self._run_windows(starts)
        self.n_seen = n + new
        if not self._queued:
            return self._emit(self._network_final())
        self._work_queue.credit += self.units_per_update * new
        self._queue_spans()
        self._work(self.units_per_update * new)
        return self._output()

    def finish(self) -> StreamOutput:
        """End the sequence and return the EMG not returned yet.

        End the sequence: run the end-aligned window when offline ``predict`` would, run every
        unit of work left, with the correction a span aligned with the end for the samples
        no span gave, and return the EMG of every sample not returned yet.

        A sequence needs at least ``window`` samples, as offline; an empty one returns an
        empty output. Call :meth:`reset` before the next sequence.
        """
        _check_usable(self._work_queue.broken, self._finished, "finish")
        n, windows = self.n_seen, self._windows
        if n == 0:
            self._finished = True
            return self._empty()
        if n < self.window:
            raise ValueError(
                f"the stream has {n} samples, fewer than the window of {self.window}: offline "
                "predict refuses such a sequence too. Send more samples, or reset()."
            )
        starts = window_starts(n, self.window, self.overlap)[windows.next_window :].tolist()
        self._check_windows(starts)  # offline's end-aligned window, off the grid
        self._run_windows(starts)
        if not self._queued:
            self._finished = True
            return self._emit(n)
        self._work(None)
        windows.end_known = True  # every window has run: every sample's network EMG is final
        self._queue_spans()
        self._work(None)
        if self._spans is not None and self.n_emitted < n:
            self._spans.queue_end(n)
            self._work(None)
        self._finished = True
        return self._output()

    # ------------------------------------------------------------------ internals
    def _empty(self) -> StreamOutput:
        return StreamOutput(self.n_emitted, np.zeros((0, len(self.muscles))))

    def _network_final(self) -> int:
        """One past the last sample whose network EMG (every member's) is final now."""
        return self._windows.final(self.n_seen)

    def _check_windows(self, starts: list[int]) -> None:
        """The derivative check of the windows starting at ``starts`` (stream indices)."""
        if self.check_derivatives:
            self._checks.windows(self._windows.raw, self._windows.origin, starts)

    def _reserve(self, new: int) -> None:
        """Room for ``new`` more rows.

        Room for ``new`` more rows: drop the rows nothing needs any more (a window not run
        yet, a span not prepared yet, an output not returned yet without the correction, the
        last ``window``; one copy every few hundred samples), growing if needed.
        """
        n, windows = self.n_seen, self._windows
        if n - windows.origin + new <= len(windows.raw):
            return
        needed = [n - self.window]
        needed.append(self.n_emitted if self._spans is None else self._spans.unprepared)
        if self._work_queue.network:
            needed.append((windows.runs // self.n_members) * self.stride)
        windows.slide(n, new, max(min(needed), windows.origin))

    def _emit(self, bound: int) -> StreamOutput:
        """The network EMG of samples ``n_emitted .. bound - 1``: the mean of their windows.

        The mean over the members of each member's mean of its windows.
        """
        first = self.n_emitted
        if bound <= first:
            return self._empty()
        emg = self._windows.prior(first, bound)
        self.n_emitted = bound
        return StreamOutput(first, emg[:, 0] if self.n_members == 1 else emg.mean(axis=1))

    # the buffers and the credit by their names before the parts (the tests read them)
    @property
    def _origin(self) -> int:
        return self._windows.origin

    @property
    def _total(self) -> np.ndarray:
        return self._windows.total

    @property
    def _count(self) -> np.ndarray:
        return self._windows.count

    @property
    def _networks(self) -> list[tuple]:
        return self._windows.networks

    @property
    def _credit(self) -> int:
        return self._work_queue.credit

    # ------------------------------------------------------------------ the queue
    def _run_windows(self, starts: list[int]) -> None:
        """Every member's network on the grid's next windows, starting at ``starts`` (checked).

        Queued; the single network without the correction runs them now.
        """
        if not self._queued:
            if starts:
                self._windows.forward(starts, 0)
        else:
            for start in starts:
                for member in range(self.n_members):
                    self._work_queue.network.append(_Task(self._network_task(start, member)))
        self._windows.next_window += len(starts)

    def _network_task(self, start: int, member: int) -> Generator[int, None, None]:
        yield NETWORK_COST
        self._windows.forward([start], member)
        self._queue_spans()

    def _queue_spans(self) -> None:
        """Queue the spans whose every sample's network EMG is final now."""
        if self._spans is not None:
            self._spans.queue_final(self._network_final())

    def _work(self, limit: int | None) -> None:
        """Run queued units: an update's share, or (None) all (:meth:`_WorkQueue.run`).

        An error inside a unit breaks the stream (its queue is lost) until :meth:`reset`;
        the error propagates.
        """
        try:
            self._work_queue.run(limit)
        finally:
            if self._spans is not None:  # the samples the spans gave
                self.n_emitted = self._spans.emitted

    def _output(self) -> StreamOutput:
        """What this call returns: the spans' EMG given, or the networks' final EMG."""
        if self._spans is None:
            return self._emit(self._network_final())
        return self._spans.output()
