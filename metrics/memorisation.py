"""Memorisation check: do generated points sit closer to the training set than to fresh data?

ratio = median_i min_k |x_i - train_k| / median_i min_l |x_i - ref_l|

for generated x (m, d), training set train (N, d) and a held-out reference ref (N', d) from
the same distribution. A sampler that copies (or collapses onto) training points gives a
ratio well below 1; a sampler independent of the training draw gives about
(N' / N)^{1/d} (1 when the two sets have the same size). A diagnostic: about 1 is right,
lower means copying, so it is not ranked.
"""

from __future__ import annotations

from torch import Tensor

from common.geometry import nearest_neighbour_distances
from metrics.base import MetricContext, MetricError, MetricResult, check_clouds, register_metric


def memorisation_ratio(x: Tensor, train: Tensor, reference: Tensor) -> MetricResult:
    """MetricResult(value=ratio, info={median_nn_train, median_nn_reference, sizes})."""
    x, train = check_clouds(x, train)
    _, reference = check_clouds(x, reference)
    to_train = nearest_neighbour_distances(x, train).median()
    to_ref = nearest_neighbour_distances(x, reference).median()
    if float(to_ref) == 0.0:
        raise MetricError("generated points coincide with reference points: ratio undefined")
    info = {
        "median_nn_train": float(to_train),
        "median_nn_reference": float(to_ref),
        "n_train": train.shape[0],
        "n_reference": reference.shape[0],
    }
    return MetricResult(float(to_train / to_ref), True, info)


@register_metric(
    "memorisation",
    needs={"reference", "train"},
    ranked=False,
    description="Memorisation ratio: median nearest-training-point distance over median "
    "nearest-reference distance (about 1 for an independent sample, near 0 for copies)",
)
def memorisation_metric(ctx: MetricContext) -> MetricResult:
    """:func:`memorisation_ratio` of the particles against the training split."""
    if ctx.train is None:
        raise MetricError("memorisation needs the training split (ctx.train)")
    return memorisation_ratio(ctx.particles, ctx.train.to(ctx.particles.device), ctx.reference)
