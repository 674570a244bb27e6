"""Parameter grids: ``--param dmps.step_size=0.1,1,5`` sweeps one sampler parameter.

A grid maps sampler -> parameter -> tuple of values; a sampler's runs are the Cartesian
product of its swept values (keys in the order given), each on top of the suite's fixed
``sampler_params``. Every combination is one unit of work whose ``params`` are stored in its
rows (and so in its ``config_key``, which ``--resume`` uses).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from typing import Any

Grid = dict[str, dict[str, tuple[Any, ...]]]


class GridError(ValueError):
    """A malformed ``--param`` option or grid entry."""


def parse_value(text: str) -> Any:
    """``'0.1'`` -> 0.1, ``'5'`` -> 5, ``'true'`` -> True, ``'null'`` -> None, else the string."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_param(text: str) -> tuple[str, str, tuple[Any, ...]]:
    """Parse ``sampler.key=v1,v2,...`` into ``(sampler, key, (v1, v2, ...))``."""
    head, sep, values = text.partition("=")
    sampler, dot, key = head.strip().partition(".")
    if not sep or not dot or not sampler or not key or not values.strip():
        raise GridError(
            f"--param {text!r}: expected SAMPLER.PARAMETER=VALUE[,VALUE...], "
            "e.g. dmps.step_size=0.1,1,5"
        )
    parsed = tuple(parse_value(v) for v in values.split(",") if v.strip())
    if len(set(map(json.dumps, parsed))) != len(parsed):
        raise GridError(f"--param {text!r}: repeated values")
    return sampler, key, parsed


def grid_from_options(options: Iterable[str], base: Grid | None = None) -> Grid:
    """Merge the ``--param`` options into ``base`` (the suite file's grid, whose key an
    option replaces); one parameter given by two options is refused (which one was meant?)."""
    grid: Grid = {s: dict(kv) for s, kv in (base or {}).items()}
    given: set[tuple[str, str]] = set()
    for text in options:
        sampler, key, values = parse_param(text)
        if (sampler, key) in given:
            raise GridError(
                f"--param {sampler}.{key} is given twice; give its values once, "
                f"comma-separated ({sampler}.{key}=V1,V2)"
            )
        given.add((sampler, key))
        grid.setdefault(sampler, {})[key] = values
    return grid


def expand(axes: dict[str, tuple[Any, ...]] | None) -> list[dict[str, Any]]:
    """Every combination of the swept values, as parameter dicts ([{}] for no grid)."""
    if not axes:
        return [{}]
    keys = list(axes)
    for k in keys:
        if len(axes[k]) == 0:
            raise GridError(f"grid parameter {k!r} has no values")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]


def check_grid(grid: Grid, samplers: list[str], defaults: dict[str, dict[str, Any]]) -> None:
    """Every swept sampler is in the run and every swept key is one of its documented
    parameters; raises :class:`GridError` with the known names otherwise."""
    for sampler, axes in grid.items():
        if sampler not in samplers:
            raise GridError(
                f"parameter grid for {sampler!r}, which is not among the samplers of this run "
                f"({', '.join(samplers)})"
            )
        unknown = sorted(set(axes) - set(defaults[sampler]))
        if unknown:
            raise GridError(
                f"{sampler}: unknown parameter(s) {unknown} in the grid; "
                f"known: {sorted(defaults[sampler])}"
            )
