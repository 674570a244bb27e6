"""Energy distance (Szekely & Rizzo): E = 2 E|X - Y| - E|X - X'| - E|Y - Y'| >= 0.

V-statistics over the empirical measures (all pairs, diagonal included), Euclidean norm.
This is the square of what ``scipy.stats.energy_distance`` returns in 1-D
(sqrt(2) x the L2 distance between the CDFs), in distance units (not squared).
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.geometry import pairwise_sq_distances
from metrics.base import MetricContext, MetricResult, check_clouds, register_metric


def _mean_distance(u: Tensor, v: Tensor) -> Tensor:
    return pairwise_sq_distances(u, v, form="product_first").sqrt_().mean()


def energy_distance(x: Tensor, y: Tensor) -> MetricResult:
    """E between x (m, d) and y (n, d); info["statistic"] = "V"."""
    x, y = check_clouds(x, y)
    centre = torch.cat([x, y]).mean(0)
    x, y = x - centre, y - centre
    value = 2.0 * _mean_distance(x, y) - _mean_distance(x, x) - _mean_distance(y, y)
    return MetricResult(float(value), True, {"statistic": "V", "norm": "euclidean"})


@register_metric("energy_distance", description="Energy distance (V-statistic) to the reference")
def energy_distance_metric(ctx: MetricContext) -> MetricResult:
    """Energy distance between the particles and the reference (deterministic)."""
    return energy_distance(ctx.particles, ctx.reference)
