"""Unadjusted Langevin algorithm (ULA).

x_{t+1} = x_t + h * s(x_t) + sqrt(2 h) * xi_t,  xi_t ~ N(0, I),  s = grad log pi
(the target's score, or a KDE score of the training split when none is known).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from common import random
from datasets.base import Target
from samplers.base import Sampler, register_sampler
from samplers.core.scores import SCORE_SOURCES, resolve_score
from samplers.params import OneOf, Positive


@register_sampler
class ULA(Sampler):
    """Unadjusted Langevin algorithm; each particle is an independent chain.

    Defaults: ``step_size = 0.01`` (h, in the standardised space of the suite),
    ``score = "auto"`` (exact score when the target has one, else KDE of the training split),
    ``kde_scale = 1.0`` (KDE bandwidth / median rule).
    """

    name = "ula"
    needs = frozenset({"score"})
    defaults = {"step_size": 0.01, "score": "auto", "kde_scale": 1.0}
    param_specs = {"step_size": Positive(), "score": OneOf(*SCORE_SOURCES), "kde_scale": Positive()}
    #: the KDE bandwidth is inert where the target has an exact score
    score_model_params = ("kde_scale",)
    #: h from 1e-3 (slow mixing in 300 steps) to 0.1 (large bias for steep scores)
    search_space = {"step_size": (0.001, 0.003, 0.01, 0.03, 0.1), "kde_scale": (1.0, 0.5, 0.25)}
    #: widening limits: step 1e-4-0.3 (ULA's bias grows like the step; above 0.3 it
    #: diverges on the suites' scores), KDE bandwidth as SVGD's
    search_limits = {"step_size": (1e-4, 0.3), "kde_scale": (1 / 16, 4.0)}

    def _fit(self, train: Tensor, target: Target) -> dict[str, Any]:
        p = self.params
        self.score_fn, source = resolve_score(target, train, p["score"], p["kde_scale"])
        return {"score_source": source}

    def _step(self, x: Tensor, t: int, gen: torch.Generator) -> Tensor:
        h = float(self.params["step_size"])
        xi = random.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
        return x + h * self.score_fn(x) + math.sqrt(2.0 * h) * xi
