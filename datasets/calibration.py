"""Deliberately wrong samples, for checking that the headline metric can see a failure.

``wrong_sample(target, n, seed)`` returns ``n`` i.i.d. points from a *corrupted* version of
``target``: one mixture mode dropped (mixtures) or one half of the support (manifolds,
bounded). A calibration test asserts that the Sinkhorn divergence at the target's declared
eps puts such a sample well above fresh exact samples (the noise floor).

Targets opt in by defining ``corrupted_sample(n, *, seed) -> Tensor``; any other target
gets the generic corruption: the half-space ``x_1 > median`` of its first coordinate.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from common.random import make_generator
from datasets.base import StandardisedTarget, Target, TargetError

Mask = Callable[[Tensor], Tensor]


def sample_where(
    sampler: Callable[[int, torch.Generator], Tensor],
    mask: Mask,
    n: int,
    gen: torch.Generator,
    *,
    what: str = "region",
    max_batches: int = 1000,
) -> Tensor:
    """``n`` i.i.d. draws of ``sampler`` conditioned on ``mask`` (rejection), ``(n, d)``.

    Batches of fresh draws are filtered by ``mask(x) -> bool (batch,)``; the acceptance rate
    of the first batch sizes the later ones. Exact whenever ``sampler`` is exact.
    """
    if not isinstance(n, int) or n < 0:
        raise TargetError(f"n must be a non-negative int, got {n!r}")
    kept: list[Tensor] = []
    got = 0
    batch = max(2 * n, 256)
    for _ in range(max_batches):
        x = sampler(batch, gen).to(torch.float64)
        keep = x[mask(x)]
        kept.append(keep)
        got += keep.shape[0]
        if got >= n:
            return torch.cat(kept)[:n]
        rate = max(keep.shape[0] / batch, 1e-3)
        batch = min(max(int(1.2 * (n - got) / rate) + 64, 256), 1_000_000)
    raise TargetError(f"{what}: rejection sampling got {got} of {n} points")


def half_space_mask(axis: int, threshold: float, upper: bool = True) -> Mask:
    """Mask of the half-space ``x[:, axis] > threshold`` (or ``<`` when ``upper`` is False)."""

    def mask(x: Tensor) -> Tensor:
        return x[:, axis] > threshold if upper else x[:, axis] < threshold

    return mask


def wrong_sample(target: Target, n: int, seed: int) -> Tensor:
    """``n`` points from a deliberately corrupted ``target`` (see module docstring), ``(n, dim)``.

    A :class:`StandardisedTarget` maps its base target's wrong sample into the standardised
    space, so the corruption is the same one in either space.
    """
    if isinstance(target, StandardisedTarget):
        return target.to_standard(wrong_sample(target.base, n, seed))
    corrupted = getattr(target, "corrupted_sample", None)
    if corrupted is not None:
        return corrupted(n, seed=seed)
    # Generic: the half-space above the median of the first coordinate (median estimated on
    # a separate large sample, so the region is fixed before the wrong sample is drawn).
    threshold = float(target.sample(4000, seed=seed + 7_919)[:, 0].median())
    gen = make_generator(seed)
    return sample_where(target._sample, half_space_mask(0, threshold), n, gen, what=target.name)


class HalfSupportCorruption:
    """Mixin: ``corrupted_sample`` = the target conditioned on ``wrong_mask`` (rejection).

    The class defines ``wrong_mask(x) -> bool (n,)``: usually a half of the support.
    """

    name: str

    def wrong_mask(self, x: Tensor) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError("subclasses define wrong_mask (abstract)")

    def corrupted_sample(self, n: int, *, seed: int) -> Tensor:
        """``n`` i.i.d. target points restricted to :meth:`wrong_mask`, ``(n, dim)``."""
        gen = make_generator(seed)
        return sample_where(self._sample, self.wrong_mask, n, gen, what=f"{self.name} wrong")
