"""Classifier two-sample test (C2ST): can a classifier tell the particles from the target?

acc = cross-validated accuracy of a nearest-neighbour (1-NN) classifier trained to separate the
particles x (label 1) from held-out target samples y (label 0), with the larger cloud
subsampled (seeded) to the smaller one's size so chance is exactly 1/2:

    acc = (1/F) sum_f (1/|fold_f|) #{correct predictions on fold f},  F = ``FOLDS`` stratified,
    shuffled folds (``seed``); k = ``NEIGHBOURS``.

0.5: indistinguishable; 1: disjoint. Ranked, lower is better (values below 0.5 are
sampling noise). As reported by sbibm (Lueckmann et al. 2021) and sampler benchmarks, with
a nearest-neighbour classifier instead of their MLP (the 1-NN two-sample test of Friedman &
Rafsky 1979 / Schilling 1986 in cross-validated form): deterministic, milliseconds.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from metrics.base import MetricContext, MetricError, MetricResult, check_clouds, register_metric

FOLDS = 5
NEIGHBOURS = 1
"""k of the k-NN classifier. Measured on the circle (300 particles vs 300 reference points,
3 seeds, standardised blur 0.05 / 0.1): accuracy 0.65-0.69 / 0.74-0.79 at k = 1, 0.54-0.57 /
0.62-0.66 at k = 5, 0.46-0.50 / 0.44-0.49 at k = 23 (= sqrt(n)), and 0.48-0.53 for exact
samples at every k: only a local classifier sees off-manifold blur."""


def c2st_accuracy(x: Tensor, y: Tensor, *, seed: int = 0) -> MetricResult:
    """Cross-validated 1-NN accuracy separating x (m, d) from y (n, d). info: k, folds,
    per-fold accuracies, sizes used."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier

    x, y = check_clouds(x, y)
    n = min(x.shape[0], y.shape[0])
    if n < FOLDS:
        raise MetricError(f"c2st needs >= {FOLDS} points per cloud ({FOLDS} folds), got {n}")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    xs = x[torch.randperm(x.shape[0], generator=gen)[:n].to(x.device)]
    ys = y[torch.randperm(y.shape[0], generator=gen)[:n].to(y.device)]
    data = torch.cat([xs, ys]).cpu().numpy()
    labels = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=int(seed))
    k = NEIGHBOURS
    accs = []
    for fit, test in folds.split(data, labels):
        clf = KNeighborsClassifier(n_neighbors=k).fit(data[fit], labels[fit])
        accs.append(float((clf.predict(data[test]) == labels[test]).mean()))
    info = {"k": k, "folds": FOLDS, "fold_accuracy": accs, "n_per_class": n}
    return MetricResult(float(np.mean(accs)), True, info)


@register_metric(
    "c2st",
    needs={"reference", "seed"},
    description="C2ST: cross-validated 1-NN accuracy telling the particles from held-out "
    "target samples (0.5 = indistinguishable, 1 = disjoint)",
)
def c2st_metric(ctx: MetricContext) -> MetricResult:
    """:func:`c2st_accuracy` of the particles against the reference, seeded by ``ctx.seed``."""
    return c2st_accuracy(ctx.particles, ctx.reference, seed=ctx.seed)
