"""Progress bars: one switch for every tqdm bar, and bars that end where the loop ended.

``PARTICLE_BENCH_PROGRESS=0`` (set by ``python -m benchmarks run --no-progress``, inherited
by worker processes) turns every bar off: the suite bar, sampler step bars and the
autoencoder and classifier training bars in ``datasets/``. :func:`finish` closes a bar at the
iterations actually done, so a loop that stops early (early stopping, divergence, a
deadline) ends at 100 % instead of looking interrupted.
"""

from __future__ import annotations

import os
from typing import Any

PROGRESS_ENV = "PARTICLE_BENCH_PROGRESS"


def bars_allowed() -> bool:
    """False when ``$PARTICLE_BENCH_PROGRESS`` is ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get(PROGRESS_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def show(flag: bool) -> bool:
    """Whether to draw a bar the caller asked for: ``flag`` and :func:`bars_allowed`."""
    return bool(flag) and bars_allowed()


def finish(bar: Any, done: int) -> None:
    """Close ``bar`` (a tqdm bar) with its total set to ``done`` iterations."""
    if not getattr(bar, "disable", True) and bar.total != done:
        bar.total = done
        bar.n = done
        bar.refresh()
    bar.close()
