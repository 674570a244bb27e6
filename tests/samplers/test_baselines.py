"""Trivial baselines (train_subsample, kmeans, kde) are exactly what they claim."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans as SKKMeans

from samplers import get_sampler, sampler_class
from tests.helpers.gaussian import correlated_gaussian_2d

TARGET = correlated_gaussian_2d()
TRAIN = TARGET.sample(200, seed=1)


def _x0(m: int, seed: int = 5) -> torch.Tensor:
    return torch.randn(m, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_baselines_declare_their_role_and_ignore_x0():
    for name in ("train_subsample", "kmeans", "kde"):
        cls = sampler_class(name)
        assert cls.role == "baseline" and cls.uses_x0 is False
        s = get_sampler(name).fit(TRAIN, TARGET)
        a = s.run(_x0(30, 1), 10, seed=4).particles
        b = s.run(_x0(30, 2) * 100, 10, seed=4).particles
        assert torch.equal(a, b)  # x0's values play no part; the seed does
    assert sampler_class("svgd").role == "method" and sampler_class("svgd").uses_x0


def test_train_subsample_draws_distinct_training_points():
    x = get_sampler("train_subsample").fit(TRAIN, TARGET).run(_x0(50), 3, seed=0).particles
    rows = {tuple(r) for r in x.tolist()}
    assert len(rows) == 50 and rows <= {tuple(r) for r in TRAIN.tolist()}


def test_kmeans_centroids_equal_scikit_learns_for_the_seed():
    x = get_sampler("kmeans", seed=7).fit(TRAIN, TARGET).run(_x0(20), 3, seed=0).particles
    ref = SKKMeans(n_clusters=20, random_state=7, n_init=3).fit(TRAIN.numpy()).cluster_centers_
    np.testing.assert_array_equal(x.numpy(), ref)


def test_kde_draws_have_the_median_rule_spread_around_training_points():
    s = get_sampler("kde").fit(TRAIN, TARGET)
    x = s.run(_x0(4000), 1, seed=3).particles
    d = torch.cdist(x, TRAIN).min(1).values
    # every draw sits within a few bandwidths of a training point (P(|xi| > 6) ~ 1e-8 in 2-D)
    assert float(d.max()) < 6 * s.h
    assert abs(float(x.mean(0).norm()) - float(TRAIN.mean(0).norm())) < 0.2


def test_one_shot_draws_are_read_for_divergence_like_steps():
    """A one-shot sampler has no step loop, so a KDE at scale 1e300 returned particles near
    1e300 marked not diverged; the step loop's rule (non-finite or |x| > 1e8) now applies."""
    target = correlated_gaussian_2d()
    train = target.sample(50, seed=0)
    wild = get_sampler("kde", scale=1e300).fit(train, target).run(train[:5], 1, seed=0)
    assert wild.diverged and wild.info["diverged_reason"] == "|x| > 1e+08 particles drawn"
    tame = get_sampler("kde").fit(train, target).run(train[:5], 1, seed=0)
    assert not tame.diverged and "diverged_reason" not in tame.info


def test_kde_is_the_median_rule_mixture_by_its_bandwidth_and_covariance():
    """Independent of the implementation: h^2 from all pairs by numpy (torch's median is the
    lower middle value of an even count, taken the same way here), and the draws' covariance
    against the mixture's, cov(T) + h^2 I, entry by entry within 4 standard errors of a
    4,000-draw sample covariance (sqrt((C_ii C_jj + C_ij^2) / m); measured 0.5-1.7). A KDE
    that copied its training points (h = 0) misses the diagonal by 7.6 and 9 errors."""
    import math

    s = get_sampler("kde").fit(TRAIN, TARGET)
    x = TRAIN.numpy()
    d2 = np.sort(((x[:, None] - x[None]) ** 2).sum(-1)[np.triu_indices(len(x), 1)])
    h2 = d2[(len(d2) - 1) // 2] / (2 * math.log(len(x) + 1))
    assert s.h**2 == pytest.approx(h2, rel=1e-12)
    draws = s.run(_x0(4000), 1, seed=3).particles.numpy()
    mixture = np.cov(x.T, bias=True) + h2 * np.eye(2)
    se = np.sqrt((np.outer(np.diag(mixture), np.diag(mixture)) + mixture**2) / len(draws))
    assert (np.abs(np.cov(draws.T) - mixture) < 4 * se).all()
