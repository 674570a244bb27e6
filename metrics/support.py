"""Support error: how far the particles sit from the target's known support.

For a target that knows its support S (manifolds: the curve or surface; bounded targets: the
closed region) through ``support_distance(x) -> (n,)`` in its ORIGINAL units,

    support_error = (1/m) sum_i dist(T(z_i), S),

where z (m, d) are the particles in the standardised space and T = ``target.to_original``.
0 for a perfect sampler (and for exact samples, to rounding); it sees off-support blur that
a divergence at a coarse eps averages away. Reported beside it (``info``): the 90th
percentile, the maximum and the fraction of particles off the support (distance above
``OFF_SUPPORT_TOL``; for bounded targets the fraction outside the region). Scored
automatically for every target with a ``support_distance``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.interop import as_torch
from metrics.base import MetricContext, MetricError, MetricResult, check_cloud, register_metric

SUPPORT_VERDICT_TOLERANCE = 0.03
"""A cell is worse than exact on the support when its mean support error exceeds exact's
(0 up to round-off) by more than 0.03 original units, paired over seeds: 3 % of the unit
circle's radius, about what 5 % radial blur gives there (10 % gives 0.054,
``results/targets/calibration.md``), so small off-manifold noise that S_eps cannot see still
counts while round-off and sub-percent noise do not."""

OFF_SUPPORT_TOL = 1e-9
"""A particle counts as off the support above this distance (original units): the
standardise / un-standardise round trip of an exact support point moves it by ~1e-15 x the
target's size (sizes up to ~15 here), six orders of magnitude below."""


def support_distances(particles: Tensor, target: object) -> Tensor:
    """dist(T(z_i), S) for particles z (m, d) in the standardised space of ``target`` (a
    ``StandardisedTarget``, or a base target whose space the particles are in) -> (m,)."""
    base = getattr(target, "base", target)
    if target is None or not hasattr(base, "support_distance"):
        raise MetricError("support_error needs a target with a support_distance")
    z = check_cloud(as_torch(particles), "particles").to(torch.float64)
    if z.shape[1] != base.dim:
        raise MetricError(
            f"particles have dimension {z.shape[1]}, the target {base.name!r} has {base.dim}"
        )
    x = target.to_original(z) if target is not base else z
    return base.support_distance(x)


@register_metric(
    "support_error",
    needs={"support_distance"},
    automatic=True,
    guards_verdict=True,
    verdict_tolerance=SUPPORT_VERDICT_TOLERANCE,
    description="Support error: mean distance of the particles to the target's known "
    "support (manifold or bounded region), in the target's original units",
)
def support_error_metric(ctx: MetricContext) -> MetricResult:
    """Mean distance to the support; info: p90, max, fraction off the support."""
    d = support_distances(ctx.particles, ctx.target)
    info = {
        "p90": float(torch.quantile(d, 0.9)),
        "max": float(d.max()),
        "fraction_off_support": float((d > OFF_SUPPORT_TOL).to(torch.float64).mean()),
        "units": "original",
    }
    return MetricResult(float(d.mean()), True, info)
