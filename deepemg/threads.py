"""CPU threads: each fit and predict chooses its own, so parallel work never oversubscribes.

torch starts one intra-op thread per core and BLAS libraries do the same; when folds run in
parallel, or when another process already holds a core, those threads fight over the cores and
a fit runs many times slower. deepemg's models are small (a Transformer of width 32 over
100-step windows), so one thread per fit is nearly as fast as several even on an idle machine,
and parallelism is better spent across fits (folds, ensemble members) than within one.

* :func:`limit_threads` runs a block with ``n`` torch and BLAS/OpenMP threads and restores the
  previous settings after it (also on errors and Ctrl-C).
* :func:`plan_workers` sizes ``n_jobs`` x threads to the cores this process may use.
* :func:`machine_info` describes the machine for reports (cores, CPU, versions).
"""

from __future__ import annotations

import contextlib
import os
import platform

__all__ = [
    "available_cores",
    "limit_threads",
    "machine_info",
    "plan_workers",
    "resolve_threads",
    "with_own_threads",
]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` elsewhere).

    Examples
    --------
    >>> available_cores() >= 1
    True
    """
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def resolve_threads(n_threads, work: str = "fit") -> int:
    """The thread count that ``n_threads`` (an int >= 1, or None) stands for.

    None is 1 for training (``work="fit"``): the batches are small, one thread is as fast as
    two on an idle machine and several times faster when another process holds a core
    (``benchmarks/bench_threads.py``). For prediction (``work="predict"``), whose batches of
    512 windows do gain from threads (141,000 against 218,000 steps/s with 1 and 2 threads on
    the 2-core machine), None keeps the process's torch thread count, which joblib and Dask
    workers already limit to their share of the cores.
    """
    if n_threads is None:
        if work == "predict":
            import torch

            return max(min(torch.get_num_threads(), available_cores()), 1)
        return 1
    n = int(n_threads)
    if n < 1:
        raise ValueError(f"n_threads must be None or >= 1, got {n_threads!r}.")
    return n


@contextlib.contextmanager
def limit_threads(n: int):
    """Run the block with ``n`` torch intra-op threads and ``n`` BLAS/OpenMP threads.

    The previous settings come back when the block ends, however it ends. torch's thread
    count is process-wide: do not run two blocks with different counts in threads of one
    process at the same time (use processes, as joblib's default backend does).

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with limit_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    import torch
    from threadpoolctl import threadpool_limits

    n = max(int(n), 1)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        torch.set_num_threads(before)


def with_own_threads(method=None, *, work: str = "fit"):
    """Decorate an estimator method to run under the estimator's own thread count.

    The method runs under :func:`limit_threads` of the estimator's ``n_threads`` parameter
    (:func:`resolve_threads` for ``work``).
    """
    import functools

    def decorate(method):
        @functools.wraps(method)
        def threaded(self, *args, **kwargs):
            n = resolve_threads(getattr(self, "n_threads", None), work)
            with limit_threads(n):
                return method(self, *args, **kwargs)

        return threaded

    return decorate(method) if method is not None else decorate


def plan_workers(n_jobs: int | None, n_tasks: int) -> tuple[int, int]:
    """``(n_jobs, threads per job)`` for ``n_tasks`` independent fits on this machine.

    ``n_jobs=None`` runs as many fits at once as there are cores (and tasks), one thread
    each; an explicit ``n_jobs`` is kept (``-1``: all cores) and the cores are shared out
    between the jobs, at least one thread each. ``n_jobs x threads`` never exceeds the cores.

    Examples
    --------
    >>> jobs, threads = plan_workers(None, 100)
    >>> jobs == available_cores() and threads == 1
    True
    >>> plan_workers(1, 10)[0]
    1
    """
    cores = available_cores()
    n_tasks = max(int(n_tasks), 1)
    if n_jobs is None:
        jobs = min(cores, n_tasks)
    elif int(n_jobs) < 0:
        jobs = min(max(cores + 1 + int(n_jobs), 1), n_tasks)
    else:
        jobs = max(int(n_jobs), 1)
    return jobs, max(cores // jobs, 1)


def machine_info() -> dict:
    """Cores, CPU model, platform and the versions that matter, for reports.

    Examples
    --------
    >>> sorted(machine_info())[:3]
    ['cores', 'cpu', 'deepemg']
    """
    import numpy
    import sklearn
    import torch

    from ._version import __version__

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import opensim

        opensim_version = opensim.GetVersion()
    except Exception:  # a broken or missing OpenSim must not stop a report
        opensim_version = "unavailable"
    return {
        "cores": available_cores(),
        "cpu": cpu,
        "deepemg": __version__,
        "machine": platform.machine(),
        "numpy": numpy.__version__,
        "opensim": opensim_version,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
