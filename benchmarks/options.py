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
import re
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


class CannotRun(UsageError):
    """The output folder or the parallel backend cannot be used (read-only or full disk,
    an unreachable scheduler), or writing failed mid-run: one ``error:`` line, exit status
    2. Raised before anything in the folder moved, or after every finished row was kept."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Value checks: one home for what a count, a seed list or a time limit may be. Each takes
# an already-typed value (a suite file's JSON/TOML value, or the parse of a command-line
# string) and raises UsageError; ``shown`` is how the message quotes it (default repr).
# The argparse types below parse the text and call them.


def check_positive_int(value: Any, shown: str | None = None) -> int:
    """An integer >= 1 (not a bool, a float such as 20.5, or a string such as '50')."""
    if not _is_int(value) or value <= 0:
        raise UsageError(f"expected a positive integer, got {shown or repr(value)}")
    return value


def check_non_negative_int(value: Any, shown: str | None = None) -> int:
    """An integer >= 0."""
    if not _is_int(value) or value < 0:
        raise UsageError(f"expected an integer >= 0, got {shown or repr(value)}")
    return value


def _is_sample_size(value: Any) -> bool:
    """An integer >= 2: a split (training, reference) smaller than two points has no spread
    to standardise by and no pair for a kernel or a divergence."""
    return _is_int(value) and value >= 2


def check_sample_size(value: Any, shown: str | None = None) -> int:
    """An integer >= 2 (:func:`_is_sample_size`)."""
    if not _is_sample_size(value):
        raise UsageError(f"expected an integer >= 2, got {shown or repr(value)}")
    return value


def check_train_size(value: Any, shown: str | None = None) -> int | str:
    """An integer >= 2 (:func:`_is_sample_size`) or ``'all'``."""
    if value != "all" and not _is_sample_size(value):
        raise UsageError(f"expected an integer >= 2 or 'all', got {shown or repr(value)}")
    return value


#: a suite's name is its folder under ``--out``: one path component, no separators or ".."
SUITE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_suite_name(value: Any, shown: str | None = None) -> str:
    """A folder name: letters, digits, ``_``, ``.`` and ``-``, not starting with ``.`` or
    ``-``, without ``..`` (the rows are written to ``<out>/<name>/``)."""
    if not isinstance(value, str) or not SUITE_NAME.fullmatch(value) or ".." in value:
        raise UsageError(
            "expected a folder name (letters, digits, '_', '.', '-'; no '/' or '..'), "
            f"got {shown or repr(value)}"
        )
    return value


def check_positive_seconds(value: Any, shown: str | None = None) -> float:
    """A finite number of seconds > 0."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"expected finite seconds > 0, got {shown or repr(value)}")
    return float(value)


def check_seeds(values: Any, shown: str | None = None) -> tuple[int, ...]:
    """A non-empty sequence of distinct integers >= 0 (integers, not strings such as '0')."""
    seeds = tuple(values) if isinstance(values, (list, tuple)) else ()
    if not seeds or not all(_is_int(v) and v >= 0 for v in seeds) or len(set(seeds)) != len(seeds):
        raise UsageError(
            f"expected distinct comma-separated integers >= 0 (e.g. 0,1,2), "
            f"got {shown or repr(values)}"
        )
    return seeds


def check_name_list(values: Any, shown: str | None = None) -> tuple[str, ...]:
    """A non-empty sequence of distinct non-empty strings."""
    names = tuple(values) if isinstance(values, (list, tuple)) else ()
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise UsageError(f"expected a non-empty list of names, got {shown or repr(values)}")
    if len(set(names)) != len(names):
        raise UsageError(f"expected distinct names, got {shown or repr(values)}")
    return names


def _argtype(text: str, parse: Any, check: Any, unparsable: str) -> Any:
    """argparse glue: ``check(parse(text))``; a text that does not parse gives
    ``unparsable``, a parsed value that fails the check the check's message."""
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{unparsable}, got {text!r}") from None
    try:
        return check(value, repr(text))
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _argtype(text, int, check_positive_int, "expected a positive integer")


def train_size(text: str) -> int | str:
    """argparse type of ``--train-size``: a positive integer or ``all``."""
    parse = lambda t: t if t == "all" else int(t)  # noqa: E731
    return _argtype(text, parse, check_train_size, "expected an integer >= 2 or 'all'")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _argtype(text, int, check_non_negative_int, "expected an integer >= 0")


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    return _argtype(text, float, check_positive_seconds, "expected seconds > 0")


def seed_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated distinct integers >= 0, e.g. ``0,1,2``."""
    parse = lambda t: tuple(int(p.strip()) for p in t.split(",") if p.strip())  # noqa: E731
    return _argtype(text, parse, check_seeds, "expected comma-separated integers >= 0 (e.g. 0,1,2)")


def seeds_or_all(text: str) -> tuple[int, ...] | str:
    """argparse type: ``all`` or comma-separated distinct integers >= 0 (``verify --seeds``)."""
    return text if text == "all" else seed_list(text)


def tolerance(text: str) -> float:
    """argparse type: a finite number >= 0 (a comparison's rtol or atol)."""
    return _argtype(text, float, check_tolerance, "expected a number >= 0")


def check_tolerance(value: Any, shown: str | None = None) -> float:
    """A finite number >= 0."""
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise UsageError(f"expected a finite number >= 0, got {shown or repr(value)}")
    return float(value)


def check_device(device: str) -> None:
    """``cpu``, or ``cuda``/``cuda:K`` where torch sees a CUDA device (imports torch)."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda requested but torch sees no CUDA device")
    elif device != "cpu":
        raise UsageError(f"--device {device!r}: expected cpu, cuda or cuda:K")


def name_list(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated distinct names (at least one; :func:`check_name_list`)."""
    parse = lambda t: tuple(p.strip() for p in t.split(",") if p.strip())  # noqa: E731
    return _argtype(text, parse, check_name_list, "expected comma-separated names")


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
