"""Score sources for score-driven samplers: the target's own score, or a KDE estimate.

KDE score of a Gaussian kernel density estimate on training points X (N, d) with bandwidth h:
    s(x) = (sum_j w_j(x) X_j / sum_j w_j(x) - x) / h^2,   w_j(x) = exp(-|x - X_j|^2 / (2 h^2)),
which is exactly grad log (1/N) sum_j N(x; X_j, h^2 I).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from common.geometry import median_bandwidth_sq, pairwise_sq_distances
from datasets.base import Target

ScoreFn = Callable[[Tensor], Tensor]
SCORE_SOURCES = ("auto", "exact", "kde")


class KDEScore:
    """Score of a Gaussian KDE on ``train`` (N, d); call on x (m, d) -> (m, d).

    ``bandwidth`` is h (not h^2); "median" uses :func:`median_bandwidth_sq`. Computed in
    chunks of x with a log-sum-exp-stable softmax, so no (m, N, d) tensor is formed.
    """

    def __init__(self, train: Tensor, bandwidth: float | str = "median", chunk: int = 4096):
        self.train = train
        if bandwidth == "median":
            self.h2 = median_bandwidth_sq(train)
        elif isinstance(bandwidth, (int, float)) and bandwidth > 0:
            self.h2 = float(bandwidth) ** 2
        else:
            raise ValueError(f"bandwidth must be 'median' or a positive float, got {bandwidth!r}")
        self.chunk = chunk
        self._sq = (train**2).sum(1)

    @property
    def bandwidth(self) -> float:
        return math.sqrt(self.h2)

    def log_density(self, x: Tensor) -> Tensor:
        """log (1/N) sum_j N(x; X_j, h^2 I), shape (m,)."""
        X = self.train.to(x)
        d2 = pairwise_sq_distances(x, X, form="cdist")
        n, d = X.shape
        return (
            torch.logsumexp(-d2 / (2 * self.h2), dim=1)
            - math.log(n)
            - 0.5 * d * math.log(2 * math.pi * self.h2)
        )

    def __call__(self, x: Tensor) -> Tensor:
        X = self.train.to(x)
        sq = self._sq.to(x)
        out = []
        for xs in x.split(self.chunk):
            d2 = (xs**2).sum(1, keepdim=True) + sq[None, :] - 2.0 * xs @ X.T
            w = torch.softmax(-d2 / (2 * self.h2), dim=1)
            out.append((w @ X - xs) / self.h2)
        return torch.cat(out)


def resolve_score(
    target: Target, train: Tensor, source: str = "auto", kde_scale: float = 1.0
) -> tuple[ScoreFn, str]:
    """Pick the score a score-driven sampler uses and name its source for the result rows.

    "auto": the target's analytic score when it has one, else a KDE on ``train``;
    "exact": the target's score (error if none); "kde": always the KDE estimate, with
    bandwidth h = ``kde_scale`` * h_median (h_median^2 = :func:`median_bandwidth_sq`; the
    median rule over-smooths manifolds, so the tuner searches smaller scales).
    """
    if source not in SCORE_SOURCES:
        raise ValueError(f"score source must be one of {SCORE_SOURCES}, got {source!r}")
    if source in ("auto", "exact") and target.has_score:
        return target.score, "exact"
    if source == "exact":
        raise ValueError(f"target {target.name!r} has no analytic score; use score='kde'")
    if kde_scale == 1.0:
        kde = KDEScore(train)
    else:
        kde = KDEScore(train, bandwidth=float(kde_scale) * math.sqrt(median_bandwidth_sq(train)))
    return kde, f"kde(h={kde.bandwidth:.4g})"
