"""Metric interface and registry: one definition of every metric.

A metric reads one :class:`MetricContext` (the particles and the prepared target: held-out
reference, training split, eps scale, seed, the standardised target itself) and returns a
:class:`MetricResult`. It declares what it needs beyond the particles and the reference
(``needs``: "train", or a capability the target must provide, e.g. "image_report") and how
it ranks (``lower_is_better``, ``ranked``), so the harness can score, rank and display it
without knowing it by name. A metric that fails (no convergence, bad input) returns
``value = nan`` with ``converged = False`` and a message, never a silent wrong number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from common.registry import Registry


class MetricError(ValueError):
    """Bad input to a metric (shape mismatch, NaN, empty cloud)."""


@dataclass(frozen=True)
class MetricResult:
    """value: the number; converged: False when the value must not be trusted; info: the
    solver facts (eps, cost, iterations, method, message)."""

    value: float
    converged: bool = True
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricContext:
    """Everything a metric may read, in the standardised space of one (target, seed).

    particles (m, d) and reference (n, d) float64; train (N, d) the split the samplers saw;
    scale: the target's Sinkhorn eps (``common.geometry.relative_eps``); seed: for
    randomised metrics; target: the standardised target (``to_original``, ``base``)."""

    particles: Tensor
    reference: Tensor
    train: Tensor | None = None
    scale: float | None = None
    seed: int = 0
    target: Any = None

    def __post_init__(self) -> None:
        """NumPy and DLPack clouds are viewed as torch tensors (no copy), as ``check_clouds``
        does, so a metric may call tensor methods on any field before validating it."""
        from common.interop import as_torch
        from common.random import is_seed

        for name in ("particles", "reference", "train"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, as_torch(value))
        if not is_seed(self.seed):
            raise MetricError(f"seed must be an int in [0, 2**32 - 1], got {self.seed!r}")


MetricFn = Callable[[MetricContext], MetricResult]

#: what every context carries; other needs name a capability of the (base) target
CONTEXT_FIELDS = frozenset({"reference", "train", "scale", "seed"})


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    compute: context -> result; needs: context fields or target capabilities it reads;
    lower_is_better / ranked: how leaderboards order it (an unranked metric is a diagnostic
    shown without ranks); automatic: scored for every target that meets ``needs`` even when
    a suite does not list it; description: one sentence for table captions; flag_below /
    flag_label: a run whose value lies below ``flag_below`` is marked ``flag_label`` in the
    leaderboards (a metric's own decision threshold, e.g. a data-copying test); guard_below:
    the tuning guard (``benchmarks.tuning_guard``) passes over a setting whose mean value over
    its tuning repetitions lies below this (None: when a strict majority of them lies below
    ``flag_below``); guards_verdict / verdict_tolerance: a cell whose value exceeds the
    ``exact`` row's by more than ``verdict_tolerance`` (paired over seeds) is worse than exact
    whatever its headline says (``benchmarks.verdict.yardstick``; e.g. mass off a known
    support); joins: the name of another metric beside which this one is scored wherever a
    suite lists that one (a successor reading added without changing the suites' metric
    lists)."""

    name: str
    compute: MetricFn
    needs: frozenset[str] = frozenset({"reference"})
    lower_is_better: bool = True
    ranked: bool = True
    automatic: bool = False
    description: str = ""
    flag_below: float | None = None
    flag_label: str = ""
    guard_below: float | None = None
    guards_verdict: bool = False
    verdict_tolerance: float = 0.0
    joins: str = ""

    def flags(self, value: float) -> bool:
        """True when ``value`` crosses this metric's declared flag threshold."""
        return self.flag_below is not None and value < self.flag_below

    def __call__(self, ctx: MetricContext) -> MetricResult:
        return self.compute(ctx)

    def on(self, particles: Tensor, reference: Tensor, **context: Any) -> MetricResult:
        """Score ``particles`` against ``reference`` with the other context fields given by
        keyword (``train``, ``scale``, ``seed``, ``target``): for studies and tests."""
        return self.compute(MetricContext(particles, reference, **context))

    def unmet_needs(self, target: Any) -> list[str]:
        """Capabilities in ``needs`` that ``target`` (or the target it standardises) lacks."""
        base = getattr(target, "base", target)
        return [n for n in sorted(self.needs - CONTEXT_FIELDS) if not hasattr(base, n)]


METRICS: Registry[Metric] = Registry("metric", "metrics", MetricError)


def register_metric(
    name: str,
    *,
    needs: frozenset[str] | set[str] = frozenset({"reference"}),
    lower_is_better: bool = True,
    ranked: bool = True,
    automatic: bool = False,
    description: str = "",
    flag_below: float | None = None,
    flag_label: str = "",
    guard_below: float | None = None,
    guards_verdict: bool = False,
    verdict_tolerance: float = 0.0,
    joins: str = "",
) -> Callable[[MetricFn], MetricFn]:
    """Register ``fn(ctx: MetricContext) -> MetricResult`` under ``name`` (decorator); the
    function itself is returned unchanged. ``flag_below`` / ``flag_label`` / ``guard_below`` /
    ``guards_verdict`` / ``verdict_tolerance`` / ``joins``: see :class:`Metric`."""

    def deco(
        fn: Callable[[MetricContext], MetricResult],
    ) -> Callable[[MetricContext], MetricResult]:
        metric = Metric(
            name=name,
            compute=fn,
            needs=frozenset(needs),
            lower_is_better=lower_is_better,
            ranked=ranked,
            automatic=automatic,
            description=description or (fn.__doc__ or "").strip().split("\n")[0],
            flag_below=flag_below,
            flag_label=flag_label,
            guard_below=guard_below,
            guards_verdict=guards_verdict,
            verdict_tolerance=verdict_tolerance,
            joins=joins,
        )
        METRICS.add(name, metric)
        return fn

    return deco


def available_metrics() -> list[str]:
    return METRICS.names()


def get_metric(name: str) -> Metric:
    return METRICS.get(name)


def metrics_for(names: tuple[str, ...] | list[str], target: Any | None) -> list[Metric]:
    """The metrics scored for a run whose suite lists ``names``: those, then every metric that
    ``joins`` one of them, then every ``automatic`` metric, the last two only where
    ``target``'s capabilities meet their needs (none of them when ``target`` is None: a
    target that could not be built)."""
    listed = [get_metric(name) for name in names]
    if target is None:
        return listed
    others = [get_metric(n) for n in available_metrics() if n not in names]
    joining = [m for m in others if m.joins and m.joins in names]
    auto = [m for m in others if m.automatic and m not in joining]
    return listed + [m for m in joining + auto if not m.unmet_needs(target)]


def check_cloud(t: Tensor, what: str = "x") -> Tensor:
    """Validate one point cloud: a torch tensor (n, d), n >= 1, d >= 1, finite values."""
    if not isinstance(t, Tensor):
        raise MetricError(f"{what} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise MetricError(f"{what} must be a non-empty (n, d) tensor, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise MetricError(f"{what} contains NaN or infinite values")
    return t


def check_clouds(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Validate two point clouds (m, d), (n, d) on one device; return them as float64.

    NumPy arrays and DLPack producers (CuPy) are accepted and viewed as torch tensors
    without a copy (``common.interop.as_torch``)."""
    from common.interop import as_torch

    x, y = check_cloud(as_torch(x), "x"), check_cloud(as_torch(y), "y")
    if x.shape[1] != y.shape[1]:
        raise MetricError(f"dimension mismatch: x has d={x.shape[1]}, y has d={y.shape[1]}")
    if x.device != y.device:
        raise MetricError(f"x is on {x.device}, y on {y.device}; put both on one device")
    return x.to(torch.float64), y.to(torch.float64)
