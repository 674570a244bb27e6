"""MALA: stationarity on a Gaussian, acceptance vs step size, the MH ratio by brute force,
bounded supports (log p = -inf outside) and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from datasets.base import Target
from samplers import SamplerError, get_sampler
from samplers.mala import mala_accept_mask, mala_log_accept_ratio
from tests.helpers.gaussian import GaussianTarget, correlated_gaussian_2d


class HalfNormal(Target):
    """p(x) = 2 N(x; 0, 1) on x > 0 (1-D), log p = -inf for x <= 0; E[x] = sqrt(2/pi)."""

    def __init__(self) -> None:
        super().__init__(name="half_normal", dim=1, family="bounded")

    def _sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(n, 1, generator=gen, dtype=torch.float64).abs()

    def _log_prob(self, x: torch.Tensor) -> torch.Tensor:
        lp = -0.5 * x[:, 0] ** 2 + math.log(2 / math.sqrt(2 * math.pi))
        return torch.where(x[:, 0] > 0, lp, torch.full_like(lp, -math.inf))

    def _score(self, x: torch.Tensor) -> torch.Tensor:
        return -x


class UnitSquare(Target):
    """Uniform on [0, 1]^2: log p = 0 inside, -inf outside, and no score (a boundary delta)."""

    def __init__(self) -> None:
        super().__init__(name="unit_square", dim=2, family="bounded")

    def _sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return torch.rand(n, 2, generator=gen, dtype=torch.float64)

    def _log_prob(self, x: torch.Tensor) -> torch.Tensor:
        inside = ((x > 0) & (x < 1)).all(1)
        return torch.where(inside, torch.zeros_like(x[:, 0]), torch.full_like(x[:, 0], -math.inf))

    @property
    def has_score(self) -> bool:
        return False


class NoDensity(Target):
    def __init__(self) -> None:
        super().__init__(name="no_density", dim=2, family="mixtures")

    def _sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(n, 2, generator=gen, dtype=torch.float64)


def _run(target: Target, m: int, n_steps: int, seed: int = 0, **params):
    train = target.sample(100, seed=seed + 1)
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(m, target.dim, generator=gen, dtype=torch.float64)
    sampler = get_sampler("mala", **params).fit(train, target)
    return sampler.run(x0, n_steps, seed=seed)


def test_mala_matches_gaussian_mean_and_covariance():
    target = correlated_gaussian_2d()
    res = _run(target, m=4000, n_steps=150)
    x = res.particles
    assert not res.diverged
    # MALA is exact: 4,000 chains give standard errors 0.016 (mean) and 0.023 (covariance
    # entries); 0.06 / 0.08 are 3.5-4 of them; measured 0.018 and 0.032
    assert torch.allclose(x.mean(0), target.mean, atol=0.06)
    assert torch.allclose(torch.cov(x.T), target.cov, atol=0.08)
    assert 0.4 < res.info["accept_rate"] < 0.75  # adapted towards 0.574
    assert res.info["score_source"] == "exact"
    assert res.info["n_score_evals"] == 151


def test_acceptance_decreases_with_step_size():
    target = GaussianTarget(torch.zeros(4), torch.eye(4))
    rates = [
        _run(target, m=500, n_steps=30, step_size=h, adapt_fraction=0.0).info["accept_rate"]
        for h in (1e-3, 0.3, 1.5)
    ]
    assert rates[0] > 0.99
    assert rates[0] > rates[1] > rates[2]
    assert rates[2] < 0.6


def test_log_accept_ratio_matches_brute_force():
    target = correlated_gaussian_2d()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    x_new = x + 0.4 * torch.randn(5, 2, generator=gen, dtype=torch.float64)
    h = 0.17
    lp_x, lp_new = target.log_prob(x), target.log_prob(x_new)
    got = mala_log_accept_ratio(x, x_new, lp_x, lp_new, target.score(x), target.score(x_new), h)
    p = multivariate_normal(target.mean.numpy(), target.cov.numpy())
    for i in range(5):
        a, b = x[i].numpy(), x_new[i].numpy()
        sa = -np.linalg.solve(target.cov.numpy(), a - target.mean.numpy())
        sb = -np.linalg.solve(target.cov.numpy(), b - target.mean.numpy())
        q_fwd = multivariate_normal(a + h * sa, 2 * h * np.eye(2)).logpdf(b)
        q_bwd = multivariate_normal(b + h * sb, 2 * h * np.eye(2)).logpdf(a)
        want = p.logpdf(b) - p.logpdf(a) + q_bwd - q_fwd
        assert got[i].item() == pytest.approx(want, rel=1e-10, abs=1e-10)


def test_accept_mask_rejects_outside_support_and_nan():
    lp_x = torch.tensor([0.0, 0.0, -math.inf, -math.inf])
    lp_new = torch.tensor([-math.inf, 0.0, 0.0, -math.inf])
    log_r = torch.tensor([math.nan, math.nan, math.inf, math.nan])
    acc = mala_accept_mask(log_r, lp_x, lp_new, torch.full((4,), 0.5))
    assert acc.tolist() == [False, False, True, False]


def test_mala_respects_bounded_support():
    target = HalfNormal()
    train = target.sample(50, seed=1)
    x0 = target.sample(3000, seed=2)
    res = (
        get_sampler("mala", step_size=0.8, adapt_fraction=0.0)
        .fit(train, target)
        .run(x0, 100, seed=0)
    )
    assert bool((res.particles > 0).all())
    assert res.particles.mean().item() == pytest.approx(math.sqrt(2 / math.pi), abs=0.04)
    assert res.particles.var().item() == pytest.approx(1 - 2 / math.pi, abs=0.04)
    assert res.info["accept_rate"] < 0.95  # some proposals fell outside and were rejected


def test_mala_needs_log_density_and_checks_params():
    from samplers.mala import MALA

    assert MALA.unmet_needs(NoDensity()) == ["a log density"]
    with pytest.raises(SamplerError, match="lacks"):
        get_sampler("mala").fit(torch.zeros(5, 2), NoDensity())
    target = correlated_gaussian_2d()
    with pytest.raises(SamplerError, match="step_size"):
        get_sampler("mala", step_size=-1.0).fit(target.sample(10, seed=0), target)
    sampler = get_sampler("mala").fit(target.sample(10, seed=0), target)
    with pytest.raises(SamplerError, match="NaN"):
        sampler.run(torch.full((3, 2), math.nan, dtype=torch.float64), 5, seed=0)


def test_mala_is_reproducible_by_seed():
    target = correlated_gaussian_2d()
    a = _run(target, m=50, n_steps=10, seed=4).particles
    b = _run(target, m=50, n_steps=10, seed=4).particles
    assert torch.equal(a, b)


def test_mala_without_score_is_random_walk_metropolis_and_stays_inside():
    from samplers.mala import ZERO_DRIFT

    target = UnitSquare()
    x0 = 0.4 + 0.2 * target.sample(3000, seed=3)  # concentrated in [0.4, 0.6]^2
    res = get_sampler("mala", step_size=0.05, adapt_fraction=0.0).fit(x0[:50], target)
    res = res.run(x0, 100, seed=1)
    x = res.particles
    assert res.info["score_source"] == ZERO_DRIFT
    assert bool(((x > 0) & (x < 1)).all())
    torch.testing.assert_close(x.mean(0), torch.full((2,), 0.5).double(), atol=0.02, rtol=0)
    torch.testing.assert_close(x.var(0), torch.full((2,), 1 / 12).double(), atol=0.01, rtol=0)
    assert 0.3 < res.info["accept_rate"] < 0.9  # proposals crossing the boundary rejected
