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

Workers use one torch thread each by default (``threads``), so N workers do not
oversubscribe N cores. Units are deterministic functions of their spec, so every backend
gives the same rows; only wall times and the BLAS thread report differ
(``runner.TIMING_FIELDS``). Floating-point results can depend on the number of torch
threads for large reductions, so compare runs made with the same ``threads`` when tensors
are big (below torch's parallel grain, e.g. the test suites, it makes no difference).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence

import torch

from benchmarks.runner import RunSpec, UnitOutput, execute_unit, failure_output


def prepare_worker(imports: Sequence[str] = (), threads: int | None = None) -> None:
    """Import plug-in modules (extra targets/samplers/metrics registered on import) and set
    the torch thread count of this process."""
    for name in imports:
        importlib.import_module(name)
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def run_unit(spec: RunSpec, imports: Sequence[str] = (), threads: int | None = None) -> UnitOutput:
    """The worker function of every backend: one unit's output; never raises."""
    try:
        prepare_worker(imports, threads)
        return execute_unit(spec)
    except Exception as exc:  # a plug-in that fails to import, or a harness bug
        return failure_output(spec, "failed", f"worker: {type(exc).__name__}: {exc}")


def _indexed(
    i: int, spec: RunSpec, imports: Sequence[str], threads: int | None
) -> tuple[int, UnitOutput]:
    return i, run_unit(spec, imports, threads)


def completed_units(
    specs: Sequence[RunSpec],
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    imports: Sequence[str] = (),
    threads: int | None = None,
) -> Iterator[tuple[RunSpec, UnitOutput]]:
    """Yield ``(spec, output)`` as units complete: serially in order when ``jobs == 1`` and
    no ``scheduler``; otherwise in completion order. ``threads`` defaults to 1 in workers
    (the parent's setting is kept for serial runs)."""
    if scheduler is not None:
        yield from _dask(specs, scheduler, imports, 1 if threads is None else threads)
    elif jobs > 1:
        yield from _loky(specs, jobs, imports, 1 if threads is None else threads)
    else:
        prepare_worker(imports, threads)
        for spec in specs:
            yield spec, run_unit(spec)


def _loky(
    specs: Sequence[RunSpec], jobs: int, imports: Sequence[str], threads: int
) -> Iterator[tuple[RunSpec, UnitOutput]]:
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
    results = parallel(
        delayed(_indexed)(i, spec, tuple(imports), threads) for i, spec in enumerate(specs)
    )
    for i, output in results:
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
