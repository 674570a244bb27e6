"""Dask worker plugin of ``--scheduler`` runs (imported only when a run connects, since it
needs ``distributed``)."""

from __future__ import annotations

import os
from typing import Any

from distributed import WorkerPlugin


class WorkerThreads(WorkerPlugin):
    """On every worker (present and future): cap torch, OpenMP and BLAS threads at
    ``threads`` for the whole process, not only in the thread that runs a unit (the unit
    sets its own limits too: ``benchmarks.parallel.with_threads``), and import the plug-in
    modules before any unit arrives."""

    def __init__(self, imports: tuple[str, ...], threads: int) -> None:
        self.imports = imports
        self.threads = threads

    def setup(self, worker: Any) -> None:
        from threadpoolctl import threadpool_limits

        from benchmarks.parallel import prepare_worker

        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(self.threads)
        prepare_worker(self.imports, self.threads)
        threadpool_limits(limits=self.threads)
