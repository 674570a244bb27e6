"""Validation of command-line options before any run starts (``python -m benchmarks run``).

Every check raises :class:`UsageError` with a one-line message; the CLI prints it as
``error: ...`` and exits with status 2 (the argparse convention for bad usage). The argparse
``type=`` converters here raise ``argparse.ArgumentTypeError`` so that argparse reports the
option by name. This module imports neither torch nor the registries: the checks that need
them receive the known names and defaults from the caller.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: exit status of a refused command line (as argparse uses)
USAGE_STATUS = 2
#: exit status of ``run`` when every run of a requested target was skipped for missing data
MISSING_DATA_STATUS = 3
#: default output root of ``run`` (git-ignored; ``--out results`` refreshes committed results)
RUNS_ROOT = "runs"


class UsageError(ValueError):
    """A command line refused before any run starts (one-line message, exit status 2)."""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def train_size(text: str) -> int | str:
    """argparse type of ``--train-size``: a positive integer or ``all``."""
    if text == "all":
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'all', got {text!r}"
        ) from None


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected finite seconds > 0, got {text!r}")
    return value


def seed_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated distinct integers >= 0, e.g. ``0,1,2``."""
    parts = [t.strip() for t in text.split(",") if t.strip()]
    try:
        seeds = tuple(int(t) for t in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers >= 0 (e.g. 0,1,2), got {text!r}"
        ) from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(
            f"expected distinct comma-separated integers >= 0 (e.g. 0,1,2), got {text!r}"
        )
    return seeds


def name_list(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated names (at least one)."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def existing_dir(text: str) -> Path:
    """argparse type: a folder that exists (``~`` expanded)."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not an existing folder")
    return path


def check_names(kind: str, names: Iterable[str], known: Iterable[str], where: str = "") -> None:
    """Every name is known; the message lists the unknown ones and every known name."""
    known = list(known)
    bad = [n for n in names if n not in known]
    if bad:
        origin = f" in {where}" if where else ""
        raise UsageError(f"unknown {kind} {bad}{origin}; known: {', '.join(known)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_value(label: str, value: Any, default: Any) -> None:
    """``value`` fits the type of the documented ``default`` of parameter ``label``.

    Rules: a bool default takes a bool; an int default an integer; a float default a
    number; a string default (a mode such as ``'auto'`` or ``'median'``, which several
    parameters also accept as a number) a string or a number; a ``None`` default anything.
    Numbers must be finite, and a parameter whose default is >= 0 must not be negative:
    every numeric sampler parameter here is a size, count, rate, tolerance, bound or seed,
    none of which has a meaningful negative value.
    """
    if default is None:
        return
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UsageError(f"{label}={value!r}: expected true or false (default {default})")
        return
    if isinstance(default, str):
        if not (isinstance(value, str) or _is_number(value)):
            raise UsageError(
                f"{label}={value!r}: expected a name or a number (default {default!r})"
            )
    elif _is_number(default):
        if not _is_number(value):
            raise UsageError(f"{label}={value!r}: expected a number (default {default!r})")
        if isinstance(default, int) and not isinstance(value, int):
            raise UsageError(f"{label}={value!r}: expected an integer (default {default!r})")
    if _is_number(value):
        if not math.isfinite(value):
            raise UsageError(f"{label}={value!r}: expected a finite number")
        if _is_number(default) and default >= 0 and value < 0:
            raise UsageError(f"{label}={value!r}: must be >= 0 (default {default!r})")


def check_params(
    grid: dict[str, dict[str, tuple[Any, ...]]],
    fixed: dict[str, dict[str, Any]],
    defaults: dict[str, dict[str, Any]],
) -> None:
    """Every swept (``grid``) and fixed (``fixed``) value of every sampler in ``defaults``
    passes :func:`check_value` against that sampler's documented default; a parameter the
    sampler does not document is refused too."""
    for sampler, known in defaults.items():
        values = [(k, v) for k, vs in grid.get(sampler, {}).items() for v in vs]
        values += list(fixed.get(sampler, {}).items())
        for key, value in values:
            if key not in known:
                raise UsageError(
                    f"{sampler}: unknown parameter {key!r}; known: {', '.join(sorted(known))}"
                )
            check_value(f"{sampler}.{key}", value, known[key])


#: settings per sampler that ``tune`` evaluates (the default setting among them)
DEFAULT_BUDGET = 8
#: tuned settings of a suite, beside its results
TUNED_FILE = "tuned.json"
#: sub-folder of the results root holding the suites run at their defaults (``run --untuned``)
UNTUNED_DIR = "untuned"
