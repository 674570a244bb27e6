"""Gaussian-kernel maximum mean discrepancy MMD^2 with the median bandwidth.

k(u, v) = exp(-|u - v|^2 / (2 s^2)), s^2 = median |z_a - z_b|^2 over the pooled sample
z = x U y (Gretton et al.'s median heuristic; seeded subsample of 2000 rows above that).
Biased (V-statistic, default): MMD_b^2 = mean_ij k(x_i, x_j) + mean_ij k(y_i, y_j)
- 2 mean_ij k(x_i, y_j) >= 0, zero for identical clouds. Unbiased (U-statistic): the two
within-sample means exclude the diagonal (i != j); it can be negative.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.geometry import median_sq_distance, pairwise_sq_distances
from metrics.base import MetricContext, MetricError, MetricResult, check_clouds, register_metric


def _mean_kernel(u: Tensor, v: Tensor, two_s2: float, exclude_diagonal: bool) -> Tensor:
    k = torch.exp(pairwise_sq_distances(u, v, form="product_first").div_(-two_s2))
    if not exclude_diagonal:
        return k.mean()
    n = u.shape[0]
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def mmd_gaussian(
    x: Tensor,
    y: Tensor,
    *,
    bandwidth_sq: float | None = None,
    unbiased: bool = False,
    seed: int = 0,
) -> MetricResult:
    """MMD^2 between x (m, d) and y (n, d) with a Gaussian kernel of variance s^2.

    bandwidth_sq: s^2; None -> median squared distance of the pooled sample (seed picks the
    subsample for large samples). info: bandwidth_sq, unbiased.
    """
    x, y = check_clouds(x, y)
    if unbiased and min(x.shape[0], y.shape[0]) < 2:
        raise MetricError("the unbiased MMD needs at least 2 points in each cloud")
    centre = torch.cat([x, y]).mean(0)
    x, y = x - centre, y - centre
    if bandwidth_sq is None:
        bandwidth_sq = median_sq_distance(
            torch.cat([x, y]), subset="random", seed=seed, centre=True, form="product_first"
        )
        if bandwidth_sq <= 0:
            bandwidth_sq = 1.0  # all pooled points (nearly) equal: any bandwidth gives ~0
    if not bandwidth_sq > 0:
        raise MetricError(f"bandwidth_sq must be > 0, got {bandwidth_sq}")
    two_s2 = 2.0 * bandwidth_sq
    value = (
        _mean_kernel(x, x, two_s2, unbiased)
        + _mean_kernel(y, y, two_s2, unbiased)
        - 2.0 * _mean_kernel(x, y, two_s2, False)
    )
    info = {"bandwidth_sq": bandwidth_sq, "unbiased": unbiased, "kernel": "gaussian"}
    return MetricResult(float(value), True, info)


@register_metric(
    "mmd_gaussian",
    needs={"reference", "seed"},
    description="Gaussian-kernel MMD^2 (median bandwidth of the pooled sample) to the reference",
)
def mmd_gaussian_metric(ctx: MetricContext) -> MetricResult:
    """Biased MMD^2, median bandwidth on the pooled sample (subset drawn from ``ctx.seed``)."""
    return mmd_gaussian(ctx.particles, ctx.reference, seed=ctx.seed)
