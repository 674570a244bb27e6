"""No double counting of samplers that ignore x0 (``Sampler.uses_x0 = False``).

Such a sampler (the neural generators, the trivial baselines) gives the same particles
from every init scheme's x0, so a unit runs it once, from the first init of the suite, and
*reuses* that run's rows for the other inits: each copy keeps its own ``init`` and
``config_key`` (so leaderboards keep one column per (target, init) and ``--resume`` finds
every configuration) and records ``x0_shared_from`` = the init that actually ran. The
leaderboard's average rank then counts this one run in each init column, like every other
method's; ``x0_shared_from`` says that those cells are one run, not independent ones.
Curves are recorded for the run that happened only.
"""

from __future__ import annotations

from typing import Any

from samplers.base import sampler_class

SHARED_FIELD = "x0_shared_from"


def run_inits(sampler: str, inits: tuple[str, ...]) -> tuple[str, ...]:
    """The inits a unit actually runs: all of them, or only the first when the sampler
    declares ``uses_x0 = False`` (unknown samplers: all; the unit reports the error)."""
    try:
        uses_x0 = sampler_class(sampler).uses_x0
    except Exception:
        return inits
    return inits if uses_x0 else inits[:1]


def reuse_rows(
    rows: list[dict[str, Any]], ran: str, bases: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Copies of the rows of init ``ran`` for every other init of ``bases`` (init -> base
    row), with that init's ``init`` and ``config_key`` and ``x0_shared_from = ran``."""
    out = []
    for init, base in bases.items():
        if init == ran:
            continue
        for row in rows:
            if row["init"] == ran:
                out.append(
                    {**row, "init": init, "config_key": base["config_key"], SHARED_FIELD: ran}
                )
    return out
