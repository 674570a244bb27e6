"""Dask worker plugin of ``--scheduler`` runs (imported only when a run connects, since it
needs ``distributed``).

Where Dask's time went: its nanny starts every worker process with
``MALLOC_TRIM_THRESHOLD_=65536`` (``distributed.nanny.pre-spawn-environ``, to hand memory
back to the OS). Setting that variable also switches off glibc's dynamic mmap threshold,
which then stays at 128 KiB: every torch tensor above it is mmapped and unmapped again,
with page faults on each allocation: a sinkhorn_generator fit ran several times slower
there than in the same process without the variable (threads, the GIL and torch's thread
count made no difference; ``results/harness/dask_timing.md`` measures it).
:func:`relax_malloc_trimming` restores glibc's large thresholds in the worker process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

from distributed import WorkerPlugin


class WorkerThreads(WorkerPlugin):
    """On every worker (present and future): cap torch, OpenMP and BLAS threads at
    ``threads`` for the whole process, not only in the thread that runs a unit (the unit
    sets its own limits too: ``benchmarks.execution.parallel.with_threads``), and import the plug-in
    modules before any unit arrives."""

    def __init__(self, imports: tuple[str, ...], threads: int) -> None:
        self.imports = imports
        self.threads = threads

    def setup(self, worker: Any) -> None:
        from threadpoolctl import threadpool_limits

        from benchmarks.execution.parallel import prepare_worker

        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(self.threads)
        prepare_worker(self.imports, self.threads)
        threadpool_limits(limits=self.threads)
        relax_malloc_trimming()


#: glibc ``mallopt`` parameters and the values set: the upper ends of glibc's own dynamic
#: thresholds on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX = 32 MiB; trim at twice that)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 64 * 2**20


def relax_malloc_trimming() -> bool:
    """In this process, let glibc keep freed memory up to :data:`TRIM_THRESHOLD` and serve
    allocations up to :data:`MMAP_THRESHOLD` from the heap (``mallopt``), undoing the
    128 KiB mmap threshold that ``MALLOC_TRIM_THRESHOLD_`` freezes; True when applied
    (False without glibc)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
