"""Riesz MMD flow: exact gradient vs autograd of a brute-force MMD^2, the sliced constant,
sliced gradient vs exact (exact in 1-D, error shrinking with P in 3-D), the flow lowering
MMD^2, the auto choice and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from samplers import SamplerError, get_sampler
from samplers.core.riesz_mmd import (
    AUTO_EXACT_MAX_PAIRS,
    random_directions,
    riesz_gradient_exact,
    riesz_gradient_sliced,
    riesz_mmd_squared,
    sliced_constant,
)
from samplers.mmd_flow import choose_gradient
from tests.helpers.gaussian import GaussianTarget


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _mmd2_brute_force(x, y, r):
    """Broadcast (m, n, d) differences; self pairs excluded so autograd stays finite."""

    def mean_k(a, b, same):
        diff = a[:, None, :] - b[None, :, :]
        if same:
            off = ~torch.eye(a.shape[0], dtype=torch.bool)
            return -(diff[off] ** 2).sum(-1).pow(r / 2).sum() / a.shape[0] ** 2
        return -(diff**2).sum(-1).pow(r / 2).mean()

    return mean_k(x, x, True) - 2 * mean_k(x, y, False) + mean_k(y, y, True)


@pytest.mark.parametrize("r", [0.5, 1.0, 1.5])
def test_exact_gradient_matches_autograd(r):
    x, y = _randn(30, 3, seed=1), _randn(45, 3, seed=2) + 0.5
    xr = x.clone().requires_grad_(True)
    value = _mmd2_brute_force(xr, y, r)
    (want,) = torch.autograd.grad(value, xr)
    got = riesz_gradient_exact(x, y, r, chunk_size=7)  # several chunks
    torch.testing.assert_close(got, x.shape[0] * want, rtol=1e-9, atol=1e-11)
    mmd2 = float(riesz_mmd_squared(x, y, r, chunk_size=11))
    assert mmd2 == pytest.approx(value.item(), rel=1e-12)


def test_sliced_constant_is_inverse_mean_abs_projection():
    assert sliced_constant(1) == pytest.approx(1.0)
    assert sliced_constant(2) == pytest.approx(math.pi / 2)
    assert sliced_constant(3) == pytest.approx(2.0)
    xi = random_directions(400_000, 5, torch.Generator().manual_seed(0), torch.zeros(1).double())
    assert float(xi[:, 0].abs().mean()) * sliced_constant(5) == pytest.approx(1.0, abs=3e-3)


def test_sliced_gradient_is_exact_in_one_dimension():
    x, y = _randn(40, 1, seed=3), _randn(70, 1, seed=4) * 2
    sliced = riesz_gradient_sliced(x, y, 3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(sliced, riesz_gradient_exact(x, y, 1.0), rtol=1e-10, atol=1e-12)


def test_sliced_gradient_error_shrinks_with_projections():
    x, y = _randn(40, 3, seed=5), _randn(60, 3, seed=6) + 0.5
    exact = riesz_gradient_exact(x, y, 1.0)

    def rel_err(p, seed):
        g = riesz_gradient_sliced(x, y, p, torch.Generator().manual_seed(seed), 4096)
        return float((g - exact).norm() / exact.norm())

    small = sum(rel_err(100, s) for s in range(3)) / 3
    large = sum(rel_err(40_000, s) for s in range(3)) / 3
    # Monte Carlo error ~ P^(-1/2): measured about 0.16 at P = 100, 0.01 at P = 40000.
    assert large < 0.03
    assert large < small / 5


def test_flow_lowers_mmd_and_matches_target_moments():
    target = GaussianTarget(torch.tensor([1.0, -1.0]), torch.tensor([[1.0, 0.3], [0.3, 0.5]]))
    train = target.sample(600, seed=0)
    x0 = _randn(150, 2, seed=7) * 0.3
    for params in ({}, {"momentum": 0.5}, {"gradient": "sliced", "n_projections": 64}):
        res = get_sampler("mmd_flow", **params).fit(train, target).run(x0, 150, seed=0)
        assert not res.diverged
        # the flow targets the empirical training measure: 95 % of the initial MMD^2 gone,
        # and 150 particles' mean / covariance within about 2 standard errors of the
        # training split's (0.08 ~ 2 x sqrt(1 / 150), 0.1 ~ 2 x sqrt(2 / 150) x 0.6)
        assert res.info["mmd2_final"] < 0.05 * res.info["mmd2_init"], params
        torch.testing.assert_close(res.particles.mean(0), train.mean(0), atol=0.08, rtol=0)
        torch.testing.assert_close(torch.cov(res.particles.T), torch.cov(train.T), atol=0.1, rtol=0)


def test_auto_choice_and_bad_input():
    assert choose_gradient("auto", 1.0, 100, 1000) == "exact"
    m = int(math.sqrt(AUTO_EXACT_MAX_PAIRS)) + 1
    assert choose_gradient("auto", 1.0, m, m) == "sliced"
    assert choose_gradient("auto", 1.5, m, m) == "exact"
    target = GaussianTarget(torch.zeros(2), torch.eye(2))
    train = target.sample(50, seed=0)
    for params, match in [
        ({"r": 2.0}, "r must"),
        ({"r": 1.5, "gradient": "sliced"}, "sliced gradient needs r = 1"),
        ({"gradient": "fast"}, "gradient must"),
        ({"momentum": 1.0}, "momentum"),
        ({"step_size": 0.0}, "step_size"),
        ({"n_projections": 0}, "n_projections"),
    ]:
        with pytest.raises(SamplerError, match=match):
            get_sampler("mmd_flow", **params).fit(train, target)
    with pytest.raises(SamplerError, match="train"):
        get_sampler("mmd_flow").fit(train[:1], target)
    res = get_sampler("mmd_flow", step_size=1e12).fit(train, target).run(_randn(20, 2), 5, seed=0)
    assert res.diverged and res.info["mmd2_final"] is None
