"""Target distributions: the common interface, the registry and the standardising wrapper.

A :class:`Target` is a distribution on R^d with exact i.i.d. sampling and, where a density
exists, ``log_prob`` and ``score`` (grad log density). All tensors are ``(n, dim)`` float64
unless a caller asks otherwise.

Benchmark splits go through :meth:`Target.sample_split`: a fresh i.i.d. draw per seed for
the analytic targets, two disjoint finite pools (``finite_pool = True``) for the image
latents. A target whose files are absent raises :class:`DataMissingError` when it is built;
the harness records it as skipped. Targets register in :data:`TARGETS`
(:func:`register_target`) and are built by :func:`get_target`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from common.random import make_generator
from common.registry import Registry

FAMILIES = ("mixtures", "manifolds", "bounded", "latents")


class TargetError(ValueError):
    """Raised for bad input to a target (wrong shape, NaN, unknown name)."""


class DataMissingError(FileNotFoundError):
    """A target's data are not on disk (and no download was asked for).

    The message says which files to place where, and how to point the CLI at them
    (``--data-root``). The harness records such targets as skipped, not failed.
    """


def check_points(x: Tensor, dim: int, what: str = "points") -> Tensor:
    """Validate an ``(n, dim)`` floating tensor of finite values and return it unchanged."""
    if not isinstance(x, Tensor):
        raise TargetError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise TargetError(f"{what} must have shape (n, {dim}), got shape {tuple(x.shape)}")
    if x.shape[1] != dim:
        raise TargetError(f"{what} have dimension {x.shape[1]}, the target has dimension {dim}")
    if not x.dtype.is_floating_point:
        raise TargetError(f"{what} must be a floating tensor, got dtype {x.dtype}")
    if x.shape[0] > 0 and not bool(torch.isfinite(x).all()):
        raise TargetError(f"{what} contain NaN or infinite values")
    return x


@dataclass
class Target:
    """A benchmark target distribution.

    Subclasses implement :meth:`_sample`; they set ``log_prob``/``score`` where a density
    exists. ``metric_eps_fraction`` sets the Sinkhorn eps as a fraction of the reference
    set's median squared pairwise distance (see ``common.geometry.relative_eps``).
    """

    name: str
    dim: int
    family: str
    metric_eps_fraction: float = 0.05
    description: str = ""
    bounds: tuple[Tensor, Tensor] | None = None
    decode: Callable[[Tensor], Tensor] | None = None
    labels: Tensor | None = field(default=None, repr=False)
    #: facts about where the target's data come from (plain JSON values, e.g. an image
    #: data set's source); the harness stores them in every row as ``target_info``
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    finite_pool: ClassVar[bool] = False
    """True when :meth:`sample_split` draws from finite, disjoint train / held-out pools
    (image latents) rather than fresh i.i.d. samples."""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise TargetError(f"unknown family {self.family!r}; expected one of {FAMILIES}")

    # -- sampling ------------------------------------------------------------------------
    def sample(self, n: int, *, seed: int, device: torch.device | str = "cpu") -> Tensor:
        """Draw ``n`` exact i.i.d. samples, shape ``(n, dim)``, float64, reproducible by seed."""
        if not isinstance(n, int) or n < 0:
            raise TargetError(f"n must be a non-negative int, got {n!r}")
        gen = make_generator(seed)
        x = self._sample(n, gen).to(torch.float64)
        if x.shape != (n, self.dim):
            raise AssertionError(f"{self.name}: sampler returned {tuple(x.shape)}")
        return x.to(device)

    def sample_split(
        self, n: int, *, split: str, seed: int, device: torch.device | str = "cpu"
    ) -> Tensor:
        """``n`` points ``(n, dim)`` float64 for the benchmark split ``split`` ("train" or
        "reference"), reproducible by ``seed``.

        Default: ``sample(n, seed=seed)``, ignoring ``split``: fresh i.i.d. draws under
        distinct seeds are already independent. Finite-pool targets override it to draw
        from disjoint train / held-out pools.
        """
        return self.sample(n, seed=seed, device=device)

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _sample (abstract)")

    # -- density (optional) --------------------------------------------------------------
    @property
    def has_log_prob(self) -> bool:
        return type(self)._log_prob is not Target._log_prob

    @property
    def has_score(self) -> bool:
        return type(self)._score is not Target._score or self.has_log_prob

    def log_prob(self, x: Tensor) -> Tensor:
        """Log density (normalised where the family allows), shape ``(n,)``."""
        if not self.has_log_prob:
            raise TargetError(f"target {self.name!r} has no log density")
        return self._log_prob(check_points(x, self.dim))

    def score(self, x: Tensor) -> Tensor:
        """grad_x log p(x), shape ``(n, dim)``; analytic where the subclass gives it."""
        if not self.has_score:
            raise TargetError(f"target {self.name!r} has no score")
        check_points(x, self.dim)
        if type(self)._score is not Target._score:
            return self._score(x)
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self._log_prob(xr).sum(), xr)
        return g

    def _log_prob(self, x: Tensor) -> Tensor:  # pragma: no cover - overridden
        raise TargetError(f"target {self.name!r} has no log density")

    def _score(self, x: Tensor) -> Tensor:  # pragma: no cover - overridden
        raise TargetError(f"target {self.name!r} has no score")

    # -- initialisation region -----------------------------------------------------------
    def cap_mask(self, x: Tensor) -> Tensor:
        """Boolean mask (n,) of the 'cap' region used by the ``cap`` init scheme.

        Default: second coordinate (first when d = 1) above the target's own 85 % quantile,
        estimated once from 20 000 samples with a fixed seed (so the region does not depend
        on the batch). Manifold targets override it with the explicit regions of the
        DMPS/KSWGD experiments (e.g. x_2 > 0.7 on the sphere).
        """
        axis = 1 if self.dim > 1 else 0
        if getattr(self, "_cap_threshold", None) is None:
            ref = self.sample(20_000, seed=987_654_321)
            self._cap_threshold = float(torch.quantile(ref[:, axis], 0.85))
        return x[:, axis] > self._cap_threshold

    def sample_cap(self, n: int, *, seed: int, max_tries: int = 200) -> Tensor:
        """``n`` fresh target samples restricted to :meth:`cap_mask` (rejection), ``(n, dim)``."""
        out: list[Tensor] = []
        got = 0
        batch = max(4 * n, 1024)
        for attempt in range(max_tries):
            x = self.sample(batch, seed=seed * 1_000_003 + attempt)
            keep = x[self.cap_mask(x)]
            out.append(keep)
            got += keep.shape[0]
            if got >= n:
                return torch.cat(out)[:n]
        raise TargetError(
            f"target {self.name!r}: cap region too small, got {got} of {n} points "
            f"after {max_tries} batches"
        )


# ---------------------------------------------------------------------------------------
# Standardised view: every comparison runs in z = (x - mean) / std (training statistics).
# ---------------------------------------------------------------------------------------
class StandardisedTarget(Target):
    """The pushforward of ``base`` by z = (x - mean) / std, coordinatewise.

    log p_z(z) = log p_x(mean + std * z) + sum(log std);  score_z(z) = std * score_x(x).
    """

    def __init__(self, base: Target, mean: Tensor, std: Tensor) -> None:
        mean = mean.to(torch.float64).reshape(-1)
        std = std.to(torch.float64).reshape(-1)
        if mean.numel() != base.dim or std.numel() != base.dim:
            raise TargetError("mean/std must have one entry per dimension")
        if not bool(torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise TargetError("standardisation mean and std must be finite")
        if not bool((std > 0).all()):
            raise TargetError("standardisation std must be positive in every coordinate")
        bounds = None
        if base.bounds is not None:
            lo, hi = base.bounds
            bounds = ((lo - mean) / std, (hi - mean) / std)
        decode = None
        if base.decode is not None:
            base_decode = base.decode

            def decode(z: Tensor) -> Tensor:
                return base_decode(self.to_original(z))

        fields = (base.name, base.dim, base.family, base.metric_eps_fraction, base.description)
        super().__init__(
            *fields, bounds=bounds, decode=decode, labels=base.labels, info=dict(base.info)
        )
        self.base = base
        self.mean = mean
        self.std = std

    @classmethod
    def from_samples(cls, base: Target, train: Tensor) -> StandardisedTarget:
        """Standardise with the mean and std of the training split ``train`` (n >= 2, dim),
        finite values (a coordinate without spread keeps std 1)."""
        check_points(train, base.dim, "training points")
        if train.shape[0] < 2:
            raise TargetError(f"standardising needs >= 2 training points, got {train.shape[0]}")
        std = train.std(dim=0)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return cls(base, train.mean(dim=0), std)

    def to_standard(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x)) / self.std.to(x)

    def to_original(self, z: Tensor) -> Tensor:
        return self.mean.to(z) + self.std.to(z) * z

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        return self.to_standard(self.base._sample(n, gen).to(torch.float64))

    @property  # type: ignore[override]
    def finite_pool(self) -> bool:
        return self.base.finite_pool

    def sample_split(
        self, n: int, *, split: str, seed: int, device: torch.device | str = "cpu"
    ) -> Tensor:
        """The base target's ``sample_split`` in standardised coordinates."""
        return self.to_standard(self.base.sample_split(n, split=split, seed=seed)).to(device)

    @property
    def has_log_prob(self) -> bool:
        return self.base.has_log_prob

    @property
    def has_score(self) -> bool:
        return self.base.has_score

    def log_prob(self, x: Tensor) -> Tensor:
        check_points(x, self.dim)
        return self.base.log_prob(self.to_original(x)) + torch.log(self.std.to(x)).sum()

    def score(self, x: Tensor) -> Tensor:
        check_points(x, self.dim)
        return self.base.score(self.to_original(x)) * self.std.to(x)

    def cap_mask(self, x: Tensor) -> Tensor:
        return self.base.cap_mask(self.to_original(x))


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetEntry:
    """A registered target: its zero-argument ``factory`` and its ``family``."""

    factory: Callable[[], Target]
    family: str


TARGETS: Registry[TargetEntry] = Registry("target", "datasets", TargetError)
"""Name -> :class:`TargetEntry`; looking up imports every module of ``datasets`` first."""


def register_target(
    name: str, family: str
) -> Callable[[Callable[[], Target]], Callable[[], Target]]:
    """Register a zero-argument factory under ``name`` in ``family`` (decorator)."""
    if family not in FAMILIES:
        raise TargetError(f"unknown family {family!r}; expected one of {FAMILIES}")

    def deco(factory: Callable[[], Target]) -> Callable[[], Target]:
        TARGETS.add(name, TargetEntry(factory, family))
        return factory

    return deco


def get_target(name: str) -> Target:
    """Build the registered target ``name``; unknown names list the known ones."""
    target = TARGETS.get(name).factory()
    if target.name != name:
        raise AssertionError(f"factory for {name!r} built target named {target.name!r}")
    return target


def available_targets(family: str | None = None) -> list[str]:
    """Names of registered targets, optionally restricted to one family (cheap: no data)."""
    names = TARGETS.names()
    if family is None:
        return names
    return [n for n in names if TARGETS.get(n).family == family]


LOG_2PI = math.log(2 * math.pi)
