"""Where units run: serially, in local processes (joblib/loky) or on a Dask cluster.

One code path: every backend calls the same pure worker function :func:`run_unit` on a
picklable :class:`~benchmarks.runner.RunSpec` and hands the :class:`UnitOutput` back to the
parent as each unit completes (the parent writes rows incrementally; see ``execution.py``).
No home-made scheduling: ``joblib.Parallel(backend="loky", return_as="generator_unordered")``
for ``--jobs N`` and ``distributed.Client(address).map`` + ``as_completed`` for
``--scheduler ADDRESS``.

On a cluster (``--scheduler``) every worker must import this repository at the same commit
(``pip install -e .`` or the same checkout on ``PYTHONPATH``) and the modules given with
``--import``; no shared filesystem is needed, since rows, curves and particle arrays travel
back to the parent, which alone writes files.

Every run, serial or not, uses ``threads`` intra-op threads (default 1) for torch AND the
BLAS/OpenMP libraries (threadpoolctl), so parallelism comes from ``--jobs`` across runs, a
loaded machine slows a run by the share of cores it gets instead of oversubscribing, and
serial, ``--jobs N`` and Dask rows are bit-identical with default settings (float
reductions depend on the thread count). Only wall times differ (``runner.TIMING_FIELDS``).

Worker processes watch their parent: when it dies (even by SIGKILL) they exit within a
second, so no worker is left behind.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch
from threadpoolctl import threadpool_limits

from benchmarks.runner import RunSpec, UnitOutput, execute_unit, failure_output

T = TypeVar("T")

#: intra-op threads per run (torch and BLAS) unless ``--threads`` says otherwise
DEFAULT_THREADS = 1


def prepare_worker(imports: Sequence[str] = (), threads: int | None = None) -> None:
    """Import plug-in modules (extra targets/samplers/metrics registered on import) and set
    the torch thread count of this process (default :data:`DEFAULT_THREADS`)."""
    for name in imports:
        importlib.import_module(name)
    threads = DEFAULT_THREADS if threads is None else threads
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def with_threads(
    fn: Callable[..., T], *args: Any, threads: int | None = None, imports: Sequence[str] = ()
) -> T:
    """``fn(*args)`` with ``threads`` (default :data:`DEFAULT_THREADS`) torch AND BLAS/OpenMP
    threads, after importing the plug-in modules ``imports``: the thread rule of every unit
    the harness computes (runs and tuning trials alike)."""
    prepare_worker(imports, threads)
    with threadpool_limits(limits=DEFAULT_THREADS if threads is None else threads):
        return fn(*args)


def run_unit(spec: RunSpec, imports: Sequence[str] = (), threads: int | None = None) -> UnitOutput:
    """The worker function of every backend: one unit's output, computed with ``threads``
    torch and BLAS threads; never raises."""
    try:
        return with_threads(execute_unit, spec, threads=threads, imports=imports)
    except Exception as exc:  # a plug-in that fails to import, or a harness bug
        return failure_output(spec, "failed", f"worker: {type(exc).__name__}: {exc}")


def watch_parent(interval: float = 0.5) -> None:
    """In a worker process: exit (``os._exit``) as soon as the parent process is gone
    (re-parented to init or a subreaper), so killing the parent leaves no worker."""
    global _WATCHING
    if _WATCHING:
        return
    _WATCHING = True
    parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=loop, name="watch-parent", daemon=True).start()


_WATCHING = False


def _indexed_call(i: int, fn: Callable[..., T], args: tuple[Any, ...]) -> tuple[int, T]:
    watch_parent()
    return i, fn(*args)


def local_unordered(
    fn: Callable[..., T], calls: Sequence[tuple[Any, ...]], jobs: int
) -> Iterator[tuple[int, T]]:
    """``(i, fn(*calls[i]))`` for every call, computed in ``jobs`` local processes
    (joblib/loky; each exits when the parent dies) and yielded in completion order."""
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
    yield from parallel(delayed(_indexed_call)(i, fn, args) for i, args in enumerate(calls))


def completed_units(
    specs: Sequence[RunSpec],
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    imports: Sequence[str] = (),
    threads: int | None = None,
) -> Iterator[tuple[RunSpec, UnitOutput]]:
    """Yield ``(spec, output)`` as units complete: serially in order when ``jobs == 1`` and
    no ``scheduler``; otherwise in completion order. Every backend runs each unit with
    ``threads`` (default :data:`DEFAULT_THREADS`) torch and BLAS threads."""
    threads = DEFAULT_THREADS if threads is None else threads
    if scheduler is not None:
        yield from _dask(specs, scheduler, imports, threads)
    elif jobs > 1:
        yield from _loky(specs, jobs, imports, threads)
    else:
        for spec in specs:
            yield spec, run_unit(spec, imports, threads)


def _loky(
    specs: Sequence[RunSpec], jobs: int, imports: Sequence[str], threads: int
) -> Iterator[tuple[RunSpec, UnitOutput]]:
    calls = [(spec, tuple(imports), threads) for spec in specs]
    for i, output in local_unordered(run_unit, calls, jobs):
        yield specs[i], output


def _dask(
    specs: Sequence[RunSpec], address: str, imports: Sequence[str], threads: int
) -> Iterator[tuple[RunSpec, UnitOutput]]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise RuntimeError(
            "--scheduler needs Dask distributed: pip install 'particle-bench[dask]'"
        ) from None
    with Client(address, set_as_default=False) as client:
        futures = client.map(
            run_unit, list(specs), imports=tuple(imports), threads=threads, pure=False
        )
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in as_completed(futures, loop=client.loop):
                spec = specs[index[fut.key]]
                try:
                    output = fut.result()
                except Exception as exc:  # e.g. KilledWorker: the worker process died
                    output = failure_output(
                        spec, "failed", f"dask worker: {type(exc).__name__}: {exc}"
                    )
                yield spec, output
        finally:
            client.cancel(futures)
