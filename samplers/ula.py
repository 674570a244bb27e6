"""Unadjusted Langevin algorithm (ULA).

x_{t+1} = x_t + h * s(x_t) + sqrt(2 h) * xi_t,  xi_t ~ N(0, I),  s = grad log pi
(the target's score, or a KDE score of the training split when none is known).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from datasets.base import Target
from samplers.base import Sampler, SamplerError, register_sampler
from samplers.core.scores import resolve_score


@register_sampler
class ULA(Sampler):
    """Unadjusted Langevin algorithm; each particle is an independent chain.

    Defaults: ``step_size = 0.01`` (h, in the standardised space of the suite),
    ``score = "auto"`` (exact score when the target has one, else KDE of the training split).
    """

    name = "ula"
    needs = frozenset({"score"})
    defaults = {"step_size": 0.01, "score": "auto"}

    def _fit(self, train: Tensor, target: Target) -> dict[str, Any]:
        h = float(self.params["step_size"])
        if not h > 0:
            raise SamplerError(f"ula: step_size must be positive, got {h}")
        self.score_fn, source = resolve_score(target, train, self.params["score"])
        return {"score_source": source}

    def _step(self, x: Tensor, t: int, gen: torch.Generator) -> Tensor:
        h = float(self.params["step_size"])
        xi = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
        return x + h * self.score_fn(x) + math.sqrt(2.0 * h) * xi
