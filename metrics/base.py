"""Metric interface and registry: one definition of every metric.

A metric compares generated particles ``x`` (m, d) with a reference sample ``y`` (n, d) and
returns a :class:`MetricResult`. A metric that fails (no convergence, bad input) returns
``value = nan`` with ``converged = False`` and a message, never a silent wrong number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


class MetricError(ValueError):
    """Bad input to a metric (shape mismatch, NaN, empty cloud)."""


@dataclass(frozen=True)
class MetricResult:
    """value: the number; converged: False when the value must not be trusted; info: the
    solver facts (eps, cost, iterations, method, message)."""

    value: float
    converged: bool = True
    info: dict[str, Any] = field(default_factory=dict)


MetricFn = Callable[..., MetricResult]
_METRICS: dict[str, MetricFn] = {}


def register_metric(name: str) -> Callable[[MetricFn], MetricFn]:
    """Register ``fn(x, y, *, scale, seed) -> MetricResult`` under ``name`` (decorator).

    ``scale`` is the reference set's median squared pairwise distance times the target's
    ``metric_eps_fraction`` (the Sinkhorn eps); metrics that need no scale ignore it.
    """

    def deco(fn: MetricFn) -> MetricFn:
        if name in _METRICS:
            raise MetricError(f"metric {name!r} registered twice")
        _METRICS[name] = fn
        return fn

    return deco


def _load_all() -> None:
    import importlib
    import pkgutil

    import metrics as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"metrics.{mod.name}")


def available_metrics() -> list[str]:
    _load_all()
    return sorted(_METRICS)


def get_metric(name: str) -> MetricFn:
    _load_all()
    if name not in _METRICS:
        raise MetricError(f"unknown metric {name!r}; known: {', '.join(sorted(_METRICS))}")
    return _METRICS[name]


def check_clouds(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Validate two point clouds (m, d), (n, d) on one device; return them as float64.

    NumPy arrays and DLPack producers (CuPy) are accepted and viewed as torch tensors
    without a copy (``common.interop.as_torch``)."""
    from common.interop import as_torch

    x, y = as_torch(x), as_torch(y)
    for what, t in (("x", x), ("y", y)):
        if not isinstance(t, Tensor):
            raise MetricError(f"{what} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 2 or t.shape[0] == 0:
            raise MetricError(f"{what} must be a non-empty (n, d) tensor, got {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise MetricError(f"{what} contains NaN or infinite values")
    if x.shape[1] != y.shape[1]:
        raise MetricError(f"dimension mismatch: x has d={x.shape[1]}, y has d={y.shape[1]}")
    if x.device != y.device:
        raise MetricError(f"x is on {x.device}, y on {y.device}; put both on one device")
    return x.to(torch.float64), y.to(torch.float64)
