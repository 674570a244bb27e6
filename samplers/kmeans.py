"""Trivial baseline: the m k-means centroids of the training split (scikit-learn KMeans).

Quantising the training set places m points where they minimise the squared transport
cost to the N training points, so this baseline can score *below* the ``exact`` row (m fresh
i.i.d. samples): S(centroids, ref) tracks the quantisation error (which shrinks with m
faster than the i.i.d. error does) plus the train/reference sampling noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.cluster import KMeans as SKKMeans
from torch import Tensor

from samplers.base import RunRequest, SampleResult, register_sampler
from samplers.core.one_shot import TrainingSplitBaseline, generator_seed, one_shot_result
from samplers.params import Positive, Seed


def kmeans_centroids(train: np.ndarray, m: int, seed: int, n_init: int = 3) -> np.ndarray:
    """(m, d) centroids of scikit-learn's KMeans(n_clusters=m, random_state=seed, n_init)
    on train (N, d) float64 (Lloyd's algorithm, k-means++ starts)."""
    km = SKKMeans(n_clusters=m, random_state=seed, n_init=n_init)
    return km.fit(train).cluster_centers_


@register_sampler
class KMeans(TrainingSplitBaseline):
    """m k-means centroids of the training split.

    Parameters: ``seed`` = None (scikit-learn's random_state; None = drawn from the run's
    seeded generator, so each repetition differs), ``n_init`` = 3 (k-means++ restarts, the
    best inertia kept). Ignores x0's values and ``n_steps``; needs m <= N.
    """

    name = "kmeans"
    defaults: dict[str, Any] = {"seed": None, "n_init": 3}
    param_specs = {"seed": Seed(also=(None,)), "n_init": Positive(int)}

    def _run(self, run: RunRequest) -> SampleResult:
        train = self._training_split(run, "centroids")
        seed = self.params["seed"]
        seed = generator_seed(run) if seed is None else int(seed)
        data = train.detach().cpu().to(torch.float64).numpy()

        def draw(m: int) -> Tensor:
            return torch.from_numpy(kmeans_centroids(data, m, seed, self.params["n_init"]))

        return one_shot_result(run, draw, kmeans_seed=seed)
