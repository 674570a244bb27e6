"""Where units run: serially, in local processes (joblib/loky) or on a Dask cluster.

One code path: every backend calls the same pure worker function :func:`run_unit` on a
picklable :class:`~benchmarks.execution.runner.RunSpec` and hands the :class:`UnitOutput`
back to the parent as each unit completes (the parent writes rows incrementally; see
``suite_run.py``).
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

A lost worker costs at most its unit. With ``--jobs``, a worker process that dies (killed,
out of memory, a crash in C code) breaks joblib's pool (``TerminatedWorkerError``); the
units that were running then (each worker marks the unit it starts in a folder of the
parent's) are retried once, each alone in a fresh worker, while the others go on in a new
pool; a unit whose worker dies again is recorded as failed with the reason. On Dask the
scheduler retries a unit whose worker died and reports ``KilledWorker`` after
``distributed.scheduler.allowed-failures`` deaths; that unit is recorded as failed.

:func:`connect` reaches the scheduler before anything in the output folder moves; an
address where nobody answers within ``PARTICLE_BENCH_CONNECT_TIMEOUT`` seconds (default
10) raises :class:`BackendUnavailable`, one line. Dask workers run a unit in a worker
thread; a worker plugin (``benchmarks.execution.dask_plugin.WorkerThreads``) sets the thread rule in
every worker process when the run connects. For speed, start workers as processes with one
thread each (``dask worker ADDRESS --nworkers N --nthreads 1``, or ``LocalCluster(processes=True,
threads_per_worker=1)``): threads of one process share the GIL (see
``results/harness/dask_timing.md``).
"""

from __future__ import annotations

import importlib
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from threadpoolctl import threadpool_limits

from benchmarks.execution.runner import RunSpec, UnitOutput, execute_unit, failure_output

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


#: seconds :func:`connect` waits for the scheduler (overridden by the environment variable)
DEFAULT_CONNECT_TIMEOUT = 10.0
CONNECT_TIMEOUT_ENV = "PARTICLE_BENCH_CONNECT_TIMEOUT"
#: how many times a unit whose worker process died is run again (alone) before it is
#: recorded as failed
LOST_WORKER_RETRIES = 1


class BackendUnavailable(RuntimeError):
    """The parallel backend cannot be used (scheduler unreachable, Dask not installed);
    the message is one line."""


def _check_tcp(address: str, timeout: float) -> None:
    """Open and close a TCP connection to a ``tcp://host:port`` address (OSError when
    nobody listens there); other schemes are left to Dask."""
    from urllib.parse import urlsplit

    if not address.startswith("tcp://"):
        return
    parts = urlsplit(address)
    with socket.create_connection((parts.hostname, parts.port or 8786), timeout=timeout):
        pass


class WorkerLost(RuntimeError):
    """A unit's worker process died more than :data:`LOST_WORKER_RETRIES` + 1 times."""


def _indexed_call(
    i: int, fn: Callable[..., T], args: tuple[Any, ...], marks: str | None = None
) -> tuple[int, T]:
    """``(i, fn(*args))`` in a worker; ``marks``: a folder where the call is marked as
    running (``<marks>/<i>``) until it returns, so the parent knows which calls a dead
    worker was running."""
    watch_parent()
    mark = Path(marks) / str(i) if marks else None
    if mark is not None:
        mark.touch()
    result = fn(*args)
    if mark is not None:
        mark.unlink(missing_ok=True)
    return i, result


def _lost_reason(exc: BaseException) -> str:
    """'TerminatedWorkerError (exit codes {EXIT(1)})': one line on how a worker died."""
    codes = re.search(r"exit codes? of the workers? (?:are|is) (\{.*?\})", str(exc))
    return f"{type(exc).__name__}" + (f" (exit codes {codes.group(1)})" if codes else "")


def local_unordered(
    fn: Callable[..., T],
    calls: Sequence[tuple[Any, ...]],
    jobs: int,
    on_lost: Callable[[int, str], T] | None = None,
) -> Iterator[tuple[int, T]]:
    """``(i, fn(*calls[i]))`` for every call, computed in ``jobs`` local processes
    (joblib/loky; each exits when the parent dies) and yielded in completion order.

    When a worker process dies, the calls it was running are run again, one at a time in
    a fresh pool, and the rest go on in parallel; a call whose worker dies
    :data:`LOST_WORKER_RETRIES` + 1 times while running alone (a death in the shared pool
    may be collateral and only makes the call rerun alone) yields ``(i, on_lost(i, reason))``,
    or raises :class:`WorkerLost` without ``on_lost``."""
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    pending = list(range(len(calls)))
    deaths: dict[int, int] = {}  # deaths while running alone: certainly the call's own
    suspected: set[int] = set()
    with tempfile.TemporaryDirectory(prefix="particle-bench-running-") as marks:
        while pending:
            suspects = [i for i in pending if i in suspected]
            # a call that was running when a worker died runs alone in one fresh worker
            # process, so a second death is its own (never in this process)
            batch = suspects[:1] or pending
            finished: set[int] = set()
            try:
                for i, result in _pool(fn, calls, batch, 1 if suspects else jobs, marks):
                    finished.add(i)
                    yield i, result
            except TerminatedWorkerError as exc:
                reason = _lost_reason(exc)
                for i in [i for i in batch if (Path(marks) / str(i)).exists()]:
                    (Path(marks) / str(i)).unlink(missing_ok=True)
                    suspected.add(i)
                    if not suspects:
                        # a death in the shared pool may be another call's (loky ends every
                        # worker when one dies): it is not counted, the call reruns alone
                        continue
                    deaths[i] = deaths.get(i, 0) + 1
                    if deaths[i] > LOST_WORKER_RETRIES:
                        why = f"its worker process died {deaths[i]} times running alone: {reason}"
                        if on_lost is None:
                            raise WorkerLost(f"call {i}: {why}") from exc
                        finished.add(i)
                        yield i, on_lost(i, why)
            pending = [i for i in pending if i not in finished]


def _pool(
    fn: Callable[..., T],
    calls: Sequence[tuple[Any, ...]],
    batch: Sequence[int],
    workers: int,
    marks: str,
) -> Iterator[tuple[int, T]]:
    """``(i, fn(*calls[i]))`` for ``i`` in ``batch`` from ``workers`` loky processes, in
    completion order (one worker: loky's executor directly, since joblib runs
    ``n_jobs=1`` in this process)."""
    if workers > 1:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")
        yield from parallel(delayed(_indexed_call)(i, fn, calls[i], marks) for i in batch)
        return
    # a private executor: joblib's global reusable one must stay joblib's own kind
    from joblib.externals.loky.process_executor import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1) as executor:
        for i in batch:
            yield executor.submit(_indexed_call, i, fn, calls[i], marks).result()


def completed_units(
    specs: Sequence[RunSpec],
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    imports: Sequence[str] = (),
    threads: int | None = None,
) -> Iterator[tuple[RunSpec, UnitOutput]]:
    """Yield ``(spec, output)`` as units complete: serially in order when ``jobs == 1`` and
    no scheduler; otherwise in completion order. ``client``: a Dask client from
    :func:`connect` (else one is made for ``scheduler``). Every backend runs each unit with
    ``threads`` (default :data:`DEFAULT_THREADS`) torch and BLAS threads."""
    threads = DEFAULT_THREADS if threads is None else threads
    if client is not None or scheduler is not None:
        if client is None:
            with connect(scheduler, imports, threads) as client:
                yield from _dask(specs, client, imports, threads)
        else:
            yield from _dask(specs, client, imports, threads)
    elif jobs > 1:
        yield from _loky(specs, jobs, imports, threads)
    else:
        for spec in specs:
            yield spec, run_unit(spec, imports, threads)


def _loky(
    specs: Sequence[RunSpec], jobs: int, imports: Sequence[str], threads: int
) -> Iterator[tuple[RunSpec, UnitOutput]]:
    calls = [(spec, tuple(imports), threads) for spec in specs]

    def lost(i: int, why: str) -> UnitOutput:
        return failure_output(specs[i], "failed", f"worker lost: {why}")

    for i, output in local_unordered(run_unit, calls, jobs, on_lost=lost):
        yield specs[i], output


def connect_timeout() -> float:
    """Seconds to wait for a scheduler: ``$PARTICLE_BENCH_CONNECT_TIMEOUT`` or the default."""
    text = os.environ.get(CONNECT_TIMEOUT_ENV, "")
    try:
        value = float(text) if text else DEFAULT_CONNECT_TIMEOUT
    except ValueError:
        raise BackendUnavailable(f"{CONNECT_TIMEOUT_ENV}={text!r}: expected seconds") from None
    return value if value > 0 else DEFAULT_CONNECT_TIMEOUT


def connect(address: str, imports: Sequence[str] = (), threads: int | None = None) -> Any:
    """A ``distributed.Client`` on ``address`` with the worker plugin
    ``benchmarks.execution.dask_plugin.WorkerThreads`` registered, or
    :class:`BackendUnavailable` (one line) when Dask is missing or nobody answers there
    within :func:`connect_timeout` seconds."""
    try:
        from distributed import Client
    except ImportError:
        raise BackendUnavailable(
            "--scheduler needs Dask distributed: pip install 'particle-bench[dask]'"
        ) from None
    timeout = connect_timeout()

    def unavailable(exc: BaseException) -> BackendUnavailable:
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        return BackendUnavailable(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({why}); "
            f"check --scheduler, or set {CONNECT_TIMEOUT_ENV} to wait longer"
        )

    try:
        # a plain TCP connection first: a Client that fails to start leaves an object
        # whose clean-up waits 20 s more and prints a traceback at exit
        _check_tcp(address, timeout)
        client = Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # OSError, TimeoutError, ValueError (a malformed address)
        raise unavailable(exc) from None
    try:
        from benchmarks.execution.dask_plugin import WorkerThreads

        plugin = WorkerThreads(tuple(imports), DEFAULT_THREADS if threads is None else threads)
        client.register_plugin(plugin, name="particle-bench")
    except Exception as exc:  # a worker that cannot import a plug-in: the units report it
        import sys

        print(f"warning: worker set-up: {type(exc).__name__}: {exc}", file=sys.stderr)
    return client


def _dask(
    specs: Sequence[RunSpec], client: Any, imports: Sequence[str], threads: int
) -> Iterator[tuple[RunSpec, UnitOutput]]:
    from distributed import as_completed

    futures = client.map(run_unit, list(specs), imports=tuple(imports), threads=threads, pure=False)
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for fut in as_completed(futures, loop=client.loop):
            spec = specs[index[fut.key]]
            try:
                output = fut.result()
            except Exception as exc:  # e.g. KilledWorker: the worker process died
                output = failure_output(spec, "failed", f"dask worker: {type(exc).__name__}: {exc}")
            yield spec, output
    finally:
        client.cancel(futures)
