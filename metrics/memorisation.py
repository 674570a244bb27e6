"""Memorisation check: do generated points sit closer to the training set than to fresh data?

ratio = median_i min_k |x_i - train_k| / median_i min_l |x_i - ref_l|

for generated x (m, d), training set train (N, d) and a held-out reference ref (N', d) from
the same distribution. A sampler that copies (or collapses onto) training points gives a
ratio well below 1; a sampler independent of the training draw gives about
(N' / N)^{1/d} (1 when the two sets have the same size). Not in the metric registry: it needs
the training set, which the registry signature ``fn(x, y, *, scale, seed)`` does not carry.
The runner calls it as ``memorisation_ratio(particles, train, reference)``.
"""

from __future__ import annotations

from torch import Tensor

from common.geometry import nearest_neighbour_distances
from metrics.base import MetricError, MetricResult, check_clouds


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
