"""KSD descent: the Stein kernel against a brute-force double loop with autograd derivatives,
the analytic gradient against autograd of the loss, KSD of exact vs shifted samples, descent
from a shifted start (both optimisers, annealing), the spurious-minimum failure, bad input."""

from __future__ import annotations

import math
import re

import pytest
import torch

from datasets.base import Target
from samplers import SamplerError, get_sampler
from samplers.core.stein_kernels import RadialKernel, ksd_squared, stein_kernel_matrix
from samplers.ksd_descent import DifferentiableScore, ksd_loss_and_grad
from tests.helpers.gaussian import GaussianTarget, correlated_gaussian_2d


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _base(kind: str, h: float, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    u = ((x - y) ** 2).sum()
    if kind == "gaussian":
        return torch.exp(-u / (2 * h**2))
    return (1 + u / h**2) ** -0.5


def _stein_brute_force(x, s, kind, h):
    """Double loop; grad_x k, grad_y k and tr(grad_x grad_y k) all by autograd."""
    m, d = x.shape
    out = torch.empty(m, m, dtype=torch.float64)
    for i in range(m):
        for j in range(m):
            xi = x[i].clone().requires_grad_(True)
            yj = x[j].clone().requires_grad_(True)
            k = _base(kind, h, xi, yj)
            gx, gy = torch.autograd.grad(k, (xi, yj), create_graph=True)
            trace = sum(torch.autograd.grad(gx[c], yj, retain_graph=True)[0][c] for c in range(d))
            out[i, j] = (s[i] @ s[j]) * k + s[i] @ gy + s[j] @ gx + trace
    return out.detach()


@pytest.mark.parametrize("kind,h", [("gaussian", 0.9), ("imq", 1.3)])
def test_stein_kernel_matches_brute_force(kind, h):
    x = _randn(6, 3, seed=1)
    s = _randn(6, 3, seed=2)
    kernel = RadialKernel(kind, h)
    got = stein_kernel_matrix(x, s, kernel)
    want = _stein_brute_force(x, s, kind, h)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


class LogProbOnlyGaussian(Target):
    """N(0, I_2) given only by log p (its score comes from autograd, detached)."""

    def __init__(self) -> None:
        super().__init__(name="logprob_gauss", dim=2, family="mixtures")

    def _sample(self, n, gen):
        return torch.randn(n, 2, generator=gen, dtype=torch.float64)

    def _log_prob(self, x):
        return -0.5 * (x**2).sum(1)


@pytest.mark.parametrize("kind", ["gaussian", "imq"])
def test_gradient_matches_autograd_of_loss(kind):
    target = correlated_gaussian_2d()
    x = _randn(7, 2, seed=3)
    kernel = RadialKernel(kind, 0.8)
    beta = 0.7
    xr = x.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(ksd_squared(xr, beta * target.score(xr), kernel), xr)
    score = DifferentiableScore(target.score, target, "exact")
    value, got = ksd_loss_and_grad(x, score, kernel, beta)
    assert score.jacobian == "autograd"
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert float(value) == pytest.approx(float(ksd_squared(x, beta * target.score(x), kernel)))


def test_gradient_through_log_prob_and_finite_difference_agree():
    target = LogProbOnlyGaussian()
    x = _randn(9, 2, seed=4)
    kernel = RadialKernel("gaussian", 1.0)
    exact = DifferentiableScore(target.score, target, "exact")
    _, g_exact = ksd_loss_and_grad(x, exact, kernel)
    assert exact.jacobian == "autograd_log_prob"
    fd = DifferentiableScore(lambda z: target.score(z), None, "custom")
    _, g_fd = ksd_loss_and_grad(x, fd, kernel)
    assert fd.jacobian == "finite_difference"
    ref = GaussianTarget(torch.zeros(2), torch.eye(2))
    _, g_ref = ksd_loss_and_grad(x, DifferentiableScore(ref.score, ref, "exact"), kernel)
    torch.testing.assert_close(g_exact, g_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_fd, g_ref, rtol=1e-6, atol=1e-8)


def test_ksd_small_for_exact_samples_large_for_shifted():
    target = GaussianTarget(torch.zeros(2), torch.eye(2))
    kernel = RadialKernel("gaussian", 1.0)
    x = target.sample(1000, seed=0)
    ksd_exact = float(ksd_squared(x, target.score(x), kernel))
    xs = x + torch.tensor([1.5, 0.0], dtype=torch.float64)
    ksd_shift = float(ksd_squared(xs, target.score(xs), kernel))
    assert ksd_exact < 1e-2  # V-statistic bias is E k_p(x, x) / m = 2 d / m = 4e-3
    assert ksd_shift > 100 * ksd_exact


@pytest.mark.parametrize(
    "params",
    [
        {"optimiser": "lbfgs"},
        {"optimiser": "gd", "n_steps": 250},
        {"optimiser": "lbfgs", "kernel": "imq", "anneal_beta": 0.5},
    ],
)
def test_descent_lowers_ksd_from_shifted_start(params):
    target = GaussianTarget(torch.zeros(2), torch.eye(2))
    x0 = _randn(100, 2, seed=5) * 0.5 + 2.0
    n_steps = params.pop("n_steps", 60)
    sampler = get_sampler("ksd_descent", **params).fit(target.sample(50, seed=1), target)
    res = sampler.run(x0, n_steps, seed=0)
    assert not res.diverged
    # from a start 2 sd away: 95 % of the initial KSD^2 gone, and the mean of 100 particles
    # within 0.25 of 0 (2.5 x the 0.1 standard error of i.i.d. draws; the start is 2 off)
    assert res.info["ksd2_final"] < 0.05 * res.info["ksd2_init"]
    assert res.particles.mean(0).abs().max() < 0.25
    assert res.info["score_source"] == "exact"
    assert res.info["n_score_evals"] >= n_steps


def test_kde_score_source_is_recorded():
    class SamplesOnly(Target):
        def __init__(self):
            super().__init__(name="samples_only", dim=2, family="mixtures")

        def _sample(self, n, gen):
            return torch.randn(n, 2, generator=gen, dtype=torch.float64)

    target = SamplesOnly()
    sampler = get_sampler("ksd_descent").fit(target.sample(300, seed=0), target)
    res = sampler.run(_randn(40, 2, seed=6) + 1.0, 15, seed=0)
    assert res.info["score_source"].startswith("kde(")
    assert res.info["score_jacobian"] == "autograd"
    assert res.info["ksd2_final"] < res.info["ksd2_init"]


def test_spurious_minimum_on_separated_mixture():
    """The documented failure: from x0 in one mode of a balanced, well separated mixture,
    KSD descent reaches a tiny KSD while leaving the other mode (almost) empty."""

    class TwoModes(Target):
        def __init__(self):
            super().__init__(name="two_modes", dim=1, family="mixtures")

        def _sample(self, n, gen):
            sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
            return (sign * 4.0 + 0.5 * torch.randn(n, generator=gen)).double()[:, None]

        def _log_prob(self, x):
            a = -((x[:, 0] - 4.0) ** 2) / 0.5
            b = -((x[:, 0] + 4.0) ** 2) / 0.5
            return torch.logaddexp(a, b) - math.log(2 * math.sqrt(2 * math.pi * 0.25))

    target = TwoModes()
    x0 = -4.0 + 0.5 * _randn(80, 1, seed=7)
    res = get_sampler("ksd_descent").fit(target.sample(50, seed=0), target).run(x0, 80, seed=0)
    right = float((res.particles[:, 0] > 0).double().mean())
    assert res.info["ksd2_final"] < 0.05
    assert right < 0.1  # the true mass there is 0.5


def test_bad_parameters_give_clear_errors():
    target = correlated_gaussian_2d()
    train = target.sample(20, seed=0)
    for params, match in [
        ({"kernel": "laplace"}, "kernel"),
        ({"optimiser": "adam"}, "optimiser"),
        ({"bandwidth": -1.0}, "bandwidth"),
        ({"anneal_beta": 0.0}, "anneal_beta"),
        ({"score": "magic"}, "score"),
    ]:
        with pytest.raises(SamplerError, match=match):
            get_sampler("ksd_descent", **params).fit(train, target)
    sampler = get_sampler("ksd_descent", bandwidth="median").fit(train, target)
    with pytest.raises(SamplerError, match="dimension"):
        sampler.run(torch.zeros(4, 3, dtype=torch.float64), 3, seed=0)


def test_annealing_targets_the_tempered_score_then_the_true_one():
    """beta * score of N(0, I) is the score of N(0, I / beta): with anneal_fraction = 1 the
    cloud spreads to std 1/sqrt(beta); with the switch at 50 % it returns to std 1."""
    target = GaussianTarget(torch.zeros(2), torch.eye(2))
    train = target.sample(50, seed=1)
    x0 = _randn(120, 2, seed=8)
    tempered = get_sampler("ksd_descent", anneal_beta=0.5, anneal_fraction=1.0).fit(train, target)
    std_tempered = tempered.run(x0, 50, seed=0).particles.std(0)
    torch.testing.assert_close(std_tempered, torch.full((2,), 2**0.5).double(), atol=0.1, rtol=0)
    switched = get_sampler("ksd_descent", anneal_beta=0.5, anneal_fraction=0.5).fit(train, target)
    std_switched = switched.run(x0, 100, seed=0).particles.std(0)
    torch.testing.assert_close(std_switched, torch.ones(2).double(), atol=0.05, rtol=0)


def test_gradient_descent_divergence_is_recorded():
    target = GaussianTarget(torch.zeros(2), 1e-4 * torch.eye(2))  # score of size 1e4 |x|
    sampler = get_sampler("ksd_descent", optimiser="gd").fit(target.sample(20, seed=0), target)
    res = sampler.run(_randn(30, 2, seed=9), 50, seed=0)
    # the step loop's rule names which bound broke (here |x| passes 1e8 before overflowing)
    reason = res.info["diverged_reason"]
    assert res.diverged
    assert re.fullmatch(r"(non-finite|\|x\| > 1e\+08) particles at step \d+", reason)
    assert "ksd2_final" not in res.info


class PositiveHalfLine(Target):
    """Half-normal on x > 0 whose score is NaN outside the support (like the Beta targets)."""

    def __init__(self):
        super().__init__(name="half_line", dim=1, family="bounded")

    def _sample(self, n, gen):
        return torch.randn(n, 1, generator=gen, dtype=torch.float64).abs()

    def _score(self, x):
        return torch.where(x > 0, -x, torch.full_like(x, math.nan))


@pytest.mark.parametrize("optimiser", ["lbfgs", "gd"])
def test_non_finite_score_is_a_recorded_divergence(optimiser):
    target = PositiveHalfLine()
    sampler = get_sampler("ksd_descent", optimiser=optimiser).fit(target.sample(30, seed=0), target)
    res = sampler.run(_randn(20, 1, seed=10), 10, seed=0)  # about half start outside
    assert res.diverged and res.info["steps"] == 1
    assert "score is non-finite at" in res.info["diverged_reason"]
    assert math.isnan(res.info["ksd2_init"])


def test_a_bandwidth_whose_square_underflows_is_a_sampler_error():
    """h = 1e-300 passes "positive float" but h^2 = 0 divided every kernel derivative
    (ZeroDivisionError inside a step); the fit now refuses it by name."""
    from datasets import get_target
    from samplers import SamplerError, get_sampler

    target = get_target("circle")
    with pytest.raises(SamplerError, match="squared leaves float64's range"):
        get_sampler("ksd_descent", bandwidth=1e-300).fit(target.sample(50, seed=0), target)
