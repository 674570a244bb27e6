"""Declarative parameter specs: what each sampler parameter may be, checked when a sampler
is made (``Sampler.__init__``), so a bad value fails at once with the parameter's name
instead of silently (a negative step) or deep inside a run (a zero bandwidth).

A sampler declares, next to ``defaults``::

    param_specs = {"step_size": Positive(), "optimizer": OneOf("adagrad", "sgd"),
                   "bandwidth": Positive(also=(None,)), "n_modes": Positive(int)}

Every spec has ``check(value) -> str | None``: None when the value is allowed, else the
reason. :func:`check_params` turns reasons into :class:`~samplers.base.SamplerError`
naming the sampler and the parameter.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.random import SEED_MAX


class ParamSpec(ABC):
    """One parameter's allowed values (subclasses implement :meth:`check`)."""

    @abstractmethod
    def check(self, value: Any) -> str | None:
        """None when ``value`` is allowed, else what is wrong with it."""

    @abstractmethod
    def describe(self) -> str:
        """The allowed values in words."""


def _is_number(value: Any, kind: type) -> bool:
    """True for an int (kind int) or an int/float (kind float); bools are not numbers."""
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, int)
    return isinstance(value, (int, float))


@dataclass(frozen=True)
class Number(ParamSpec):
    """A finite number of ``kind`` (int or float) in [lo, hi] (open ends with ``lo_open`` /
    ``hi_open``; None = unbounded), or one of the literal values in ``also`` (e.g. None,
    "auto", "median")."""

    kind: type = float
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    also: tuple[Any, ...] = ()

    def describe(self) -> str:
        what = "an int" if self.kind is int else "a finite number"
        if self.lo == 0 and self.lo_open and self.hi is None:
            what = "a positive int" if self.kind is int else "a positive finite number"
            return what + ("".join(f" or {a!r}" for a in self.also))
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {self._shown(self.lo)}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {self._shown(self.hi)}")
        text = what + (" " + " and ".join(parts) if parts else "")
        if self.also:
            text += " or one of " + ", ".join(repr(a) for a in self.also)
        return text

    def _shown(self, bound: float) -> str:
        return str(int(bound)) if self.kind is int else f"{bound:g}"

    def check(self, value: Any) -> str | None:
        if any(value is a or (isinstance(a, str) and value == a) for a in self.also):
            return None
        if not _is_number(value, self.kind) or not math.isfinite(value):
            return f"must be {self.describe()}, got {value!r}"
        lo_bad = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        hi_bad = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        if lo_bad or hi_bad:
            return f"must be {self.describe()}, got {value!r}"
        return None


def Positive(kind: type = float, also: tuple[Any, ...] = ()) -> Number:  # noqa: N802
    """A number > 0 (or a literal of ``also``)."""
    return Number(kind, lo=0, lo_open=True, also=also)


def NonNegative(kind: type = float, also: tuple[Any, ...] = ()) -> Number:  # noqa: N802
    """A number >= 0 (or a literal of ``also``)."""
    return Number(kind, lo=0, also=also)


def Interval(  # noqa: N802
    lo: float,
    hi: float,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    kind: type = float,
    also: tuple[Any, ...] = (),
) -> Number:
    """A number in the interval from ``lo`` to ``hi`` (closed unless ``*_open``)."""
    return Number(kind, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, also=also)


@dataclass(frozen=True)
class OneOf(ParamSpec):
    """One of a fixed set of values (compared with ==, bools and numbers kept apart)."""

    choices: tuple[Any, ...]

    def __init__(self, *choices: Any) -> None:
        object.__setattr__(self, "choices", tuple(choices))

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def check(self, value: Any) -> str | None:
        for c in self.choices:
            if type(value) is type(c) and value == c or (value is None and c is None):
                return None
        return f"must be {self.describe()}, got {value!r}"


@dataclass(frozen=True)
class Boolean(ParamSpec):
    """True or False."""

    def describe(self) -> str:
        return "True or False"

    def check(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else f"must be True or False, got {value!r}"


def Seed(also: tuple[Any, ...] = ()) -> Number:  # noqa: N802
    """A seed: an int in [0, 2**32 - 1] (``common.random.SEED_MAX``, the range NumPy and
    scikit-learn accept; torch's wider range is not needed), or a literal of ``also``."""
    return Number(int, lo=0, hi=SEED_MAX, also=also)


def param_errors(specs: Mapping[str, ParamSpec], params: Mapping[str, Any]) -> list[str]:
    """``"key must be ..., got ..."`` for every parameter of ``params`` its spec rejects
    (parameters without a spec are not checked here)."""
    out = []
    for key, spec in specs.items():
        if key in params:
            reason = spec.check(params[key])
            if reason is not None:
                out.append(f"{key} {reason}")
    return out
