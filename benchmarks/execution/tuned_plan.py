"""How ``run`` applies tuned settings: the units of one (sampler, target) grouped by init.

``Suite.tuned`` (sampler -> target -> init -> parameter overrides, from ``tuned.json``)
may choose different settings per init scheme; a unit runs every init of its group, so
inits that share a setting share a unit, and inits without a tuned setting run the defaults.
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks.suites import Suite


def tuned_groups(
    suite: Suite, sampler: str, target: str
) -> list[tuple[str, tuple[str, ...], dict[str, Any]]]:
    """[(tuning label, inits, overrides)] for one (sampler, target) of ``suite``, in the
    suite's init order: label "tuned" for inits with a chosen setting, else "default"."""
    chosen = suite.tuned.get(sampler, {}).get(target, {})
    groups: dict[str, tuple[str, list[str], dict[str, Any]]] = {}
    for init in suite.inits:
        params = chosen.get(init)
        label = "default" if params is None else "tuned"
        key = json.dumps([label, params or {}], sort_keys=True, default=str)
        groups.setdefault(key, (label, [], params or {}))[1].append(init)
    return [(label, tuple(inits), params) for label, inits, params in groups.values()]
