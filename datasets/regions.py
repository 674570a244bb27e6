"""Pieces of target geometry shared across families (``bounded``, ``manifolds``).

* :class:`UniformDensity`: the uniform law on a support S. log p = -log vol(S) on S and
  -inf off it; no score: grad log p is zero inside S and undefined on its boundary, which
  gives Langevin-type samplers nothing to follow (``has_score`` is False).
* :class:`UpperCapRightHalf`: the regions of the supports symmetric under x_1 -> -x_1 and
  centred on the origin (spheres, shells, the disk): ``cap`` init region x_2 > t and
  wrong-sample region x_1 > 0 (half of the support, see :mod:`datasets.calibration`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from datasets.calibration import HalfSupportCorruption


class UniformDensity:
    """Mixin (before :class:`~datasets.base.Target`): ``_log_prob(x)`` ``(n,)`` =
    -``log_volume`` where ``inside(x)``, -inf elsewhere; ``has_score`` False."""

    log_volume: float

    def inside(self, x: Tensor) -> Tensor:  # pragma: no cover - overridden
        """Boolean ``(n,)``: the points of ``x`` ``(n, d)`` in the support."""
        raise NotImplementedError("subclasses define inside (abstract)")

    def _log_prob(self, x: Tensor) -> Tensor:
        return torch.where(
            self.inside(x), -self.log_volume + 0 * x[:, 0], torch.full_like(x[:, 0], -math.inf)
        )

    @property
    def has_score(self) -> bool:
        return False


class UpperCapRightHalf(HalfSupportCorruption):
    """Mixin: ``cap_mask`` = x_2 > ``cap_threshold``; ``wrong_mask`` = x_1 > 0."""

    cap_threshold: float

    def cap_mask(self, x: Tensor) -> Tensor:
        return x[:, 1] > self.cap_threshold

    def wrong_mask(self, x: Tensor) -> Tensor:
        return x[:, 0] > 0
