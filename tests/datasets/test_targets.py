"""Contract and correctness tests for every registered synthetic target (families
``mixtures``, ``manifolds``, ``bounded``): sampling contract, sampler vs analytic truth,
log_prob normalisation, score vs autograd, cap regions, and the metric calibration.

New targets in these families are picked up through ``available_targets``; the sampler
checks are keyed by name, and a test fails when a target has none.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from common.geometry import median_sq_distance
from datasets import StandardisedTarget, TargetError, available_targets, get_target
from datasets.calibration import wrong_sample
from datasets.mixtures import GaussianMixture
from metrics.sinkhorn import sinkhorn_divergence

FAMILIES = ("mixtures", "manifolds", "bounded")
NAMES = [name for family in FAMILIES for name in available_targets(family)]
P_MIN = 1e-3  # KS / binomial tests: fixed seeds, so a pass is deterministic


def _ks(values: torch.Tensor, cdf) -> float:
    return float(stats.kstest(values.numpy(), cdf).pvalue)


def test_catalogue_complete() -> None:
    expected = {
        "mixtures": {"gaussian_2d", "ring8", "grid25", "unbalanced2", "mixture10d"},
        "manifolds": {
            "circle",
            "sphere",
            "shell3",
            "shell100",
            "half_sphere",
            "swiss_roll",
            "torus",
            "two_moons",
        },
        "bounded": {"uniform_square", "beta_2_5x5_2", "dirichlet3", "uniform_disk"},
    }
    for family, names in expected.items():
        assert names <= set(available_targets(family)), family


# ---------------------------------------------------------------------------------------
# Sampling contract
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_sample_contract(name: str) -> None:
    target = get_target(name)
    assert target.family in FAMILIES and name in available_targets(target.family)
    assert target.description
    x = target.sample(64, seed=0)
    assert x.shape == (64, target.dim) and x.dtype == torch.float64
    assert bool(torch.isfinite(x).all())
    assert torch.equal(x, target.sample(64, seed=0))
    assert not torch.equal(x, target.sample(64, seed=1))
    assert target.sample(0, seed=0).shape == (0, target.dim)
    assert 0 < target.metric_eps_fraction <= 1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [-1, 2.5, "10", None])
def test_bad_n_is_a_clear_error(name: str, bad: object) -> None:
    target = get_target(name)
    with pytest.raises(TargetError, match="n must be a non-negative int"):
        target.sample(bad, seed=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", NAMES)
def test_bad_points_are_clear_errors(name: str) -> None:
    target = get_target(name)
    if not target.has_log_prob:
        with pytest.raises(TargetError, match="has no log density"):
            target.log_prob(target.sample(3, seed=0))
        return
    with pytest.raises(TargetError, match="dimension"):
        target.log_prob(torch.zeros(3, target.dim + 1, dtype=torch.float64))
    bad = torch.zeros(3, target.dim, dtype=torch.float64)
    bad[1, 0] = math.nan
    with pytest.raises(TargetError, match="NaN"):
        target.log_prob(bad)


@pytest.mark.parametrize("name", NAMES)
def test_bounds_contain_the_samples(name: str) -> None:
    target = get_target(name)
    if target.bounds is None:
        return
    lo, hi = target.bounds
    x = target.sample(2000, seed=0)
    assert bool(((x >= lo) & (x <= hi)).all())


# ---------------------------------------------------------------------------------------
# The sampler matches the analytic truth (one check per target, keyed by name)
# ---------------------------------------------------------------------------------------
N_CHECK = 20_000


def _mixture_checks(target: GaussianMixture) -> None:
    x = target.sample(N_CHECK, seed=11)
    w, mu, cov = target.weights, target.means, target.covs
    mean = (w[:, None] * mu).sum(0)
    second = (w[:, None, None] * (cov + mu[:, :, None] * mu[:, None, :])).sum(0)
    full_cov = second - mean[:, None] * mean[None, :]
    sd = full_cov.diagonal().sqrt()
    # mean within 5 standard errors per coordinate; covariance within 5 %
    assert bool(((x.mean(0) - mean).abs() < 5 * sd / math.sqrt(N_CHECK)).all())
    torch.testing.assert_close(torch.cov(x.T), full_cov, rtol=0.05, atol=0.05 * float(sd.max()))
    # KS on two 1-D projections against the analytic marginal CDF (a 1-D Gaussian mixture)
    gen = torch.Generator().manual_seed(5)
    for v in (
        torch.eye(target.dim, dtype=torch.float64)[0],
        torch.randn(target.dim, generator=gen, dtype=torch.float64),
    ):
        m = (mu @ v).numpy()
        s = torch.einsum("i,kij,j->k", v, cov, v).sqrt().numpy()
        wn = w.numpy()

        def cdf(t, m=m, s=s, wn=wn):
            return (wn[None, :] * stats.norm.cdf((np.asarray(t)[:, None] - m) / s)).sum(1)

        assert _ks(x @ v, cdf) > P_MIN


def _check_log_prob_against_scipy_mixture(target: GaussianMixture) -> None:
    x = target.sample(200, seed=3)
    comps = np.stack(
        [
            stats.multivariate_normal(target.means[k].numpy(), target.covs[k].numpy()).logpdf(
                x.numpy()
            )
            for k in range(target.n_components)
        ],
        axis=1,
    )
    expected = torch.from_numpy(
        np.logaddexp.reduce(comps + np.log(target.weights.numpy())[None], axis=1)
    )
    torch.testing.assert_close(target.log_prob(x), expected, rtol=1e-10, atol=1e-10)


def _unit_sphere_checks(target) -> None:
    x = target.sample(N_CHECK, seed=11)
    torch.testing.assert_close(x.norm(dim=1), torch.ones(N_CHECK, dtype=torch.float64))
    if target.dim == 2:  # angle uniform on [0, 2 pi)
        angle = torch.atan2(x[:, 1], x[:, 0]) % (2 * math.pi)
        assert _ks(angle, stats.uniform(0, 2 * math.pi).cdf) > P_MIN
    else:  # Archimedes: each coordinate of a uniform point on S^2 is U[-1, 1]
        for i in range(3):
            assert _ks(x[:, i], stats.uniform(-1, 2).cdf) > P_MIN


def _shell_checks(target) -> None:
    d = target.dim
    x = target.sample(N_CHECK, seed=11)
    r = x.norm(dim=1)
    assert float(r.min()) >= 0.99 - 1e-12 and float(r.max()) <= 1 + 1e-12
    # radial law for the uniform measure on the annulus: P(R <= r) = (r^d - .99^d)/(1 - .99^d)
    assert _ks(r, lambda t: (np.clip(t, 0.99, 1.0) ** d - 0.99**d) / (1 - 0.99**d)) > P_MIN
    u1 = x[:, 0] / r  # first coordinate of a uniform direction: u1^2 ~ Beta(1/2, (d-1)/2)
    assert _ks(u1.pow(2), stats.beta(0.5, 0.5 * (d - 1)).cdf) > P_MIN
    assert (
        _ks(u1, lambda t: 0.5 + 0.5 * np.sign(t) * stats.beta(0.5, 0.5 * (d - 1)).cdf(t**2)) > P_MIN
    )
    # log_prob: constant 1 / vol(annulus) inside, -inf outside
    vol = math.pi ** (d / 2) / math.gamma(d / 2 + 1) * (1 - 0.99**d)
    torch.testing.assert_close(
        target.log_prob(x[:5]), torch.full((5,), -math.log(vol), dtype=torch.float64)
    )
    outside = torch.cat([0.5 * x[:2], 1.5 * x[2:4]])
    assert bool(torch.isneginf(target.log_prob(outside)).all())


def _half_sphere_checks(target) -> None:
    x = target.sample(N_CHECK, seed=11)
    torch.testing.assert_close(x.norm(dim=1), torch.ones(N_CHECK, dtype=torch.float64))
    assert bool((x[:, 2] >= 0).all())
    assert _ks(x[:, 2], stats.uniform(0, 1).cdf) > P_MIN  # Archimedes on the half-sphere
    assert _ks(x[:, 0], stats.uniform(-1, 2).cdf) > P_MIN


def _swiss_roll_checks(target) -> None:
    x = target.sample(N_CHECK, seed=11)
    t = torch.hypot(x[:, 0], x[:, 2])
    torch.testing.assert_close(x[:, 0], t * torch.cos(t))
    torch.testing.assert_close(x[:, 2], t * torch.sin(t))
    assert _ks(t, stats.uniform(1.5 * math.pi, 3 * math.pi).cdf) > P_MIN
    assert _ks(x[:, 1], stats.uniform(0, 21).cdf) > P_MIN


def _torus_checks(target) -> None:
    big, small = 2.0, 0.5
    x = target.sample(N_CHECK, seed=11)
    rho = torch.hypot(x[:, 0], x[:, 1])
    torch.testing.assert_close((rho - big).pow(2) + x[:, 2].pow(2), torch.full_like(rho, small**2))
    around = torch.atan2(x[:, 1], x[:, 0]) % (2 * math.pi)
    assert _ks(around, stats.uniform(0, 2 * math.pi).cdf) > P_MIN
    # tube angle: area element (R + r cos a) da db => CDF (a + (r/R) sin a) / (2 pi)
    tube = torch.atan2(x[:, 2], rho - big) % (2 * math.pi)
    assert _ks(tube, lambda a: (a + small / big * np.sin(a)) / (2 * math.pi)) > P_MIN


def _two_moons_checks(target) -> None:
    x = target.sample(N_CHECK, seed=11)
    on_outer = ((x.norm(dim=1) - 1).abs() < 1e-12) & (x[:, 1] >= -1e-12)
    shifted = x - torch.tensor([1.0, 0.5], dtype=torch.float64)
    on_inner = ((shifted.norm(dim=1) - 1).abs() < 1e-12) & (shifted[:, 1] <= 1e-12)
    assert bool((on_outer | on_inner).all())
    assert stats.binomtest(int(on_outer.sum()), N_CHECK, 0.5).pvalue > P_MIN
    t_outer = torch.atan2(x[on_outer, 1], x[on_outer, 0])
    assert _ks(t_outer, stats.uniform(0, math.pi).cdf) > P_MIN


def _uniform_square_checks(target) -> None:
    x = target.sample(N_CHECK, seed=11)
    for i in range(2):
        assert _ks(x[:, i], stats.uniform(0, 1).cdf) > P_MIN
    assert abs(float(torch.corrcoef(x.T)[0, 1])) < 5 / math.sqrt(N_CHECK)


def _beta_checks(target) -> None:
    x = target.sample(N_CHECK, seed=11)
    assert _ks(x[:, 0], stats.beta(2, 5).cdf) > P_MIN
    assert _ks(x[:, 1], stats.beta(5, 2).cdf) > P_MIN
    assert abs(float(torch.corrcoef(x.T)[0, 1])) < 5 / math.sqrt(N_CHECK)
    inside = x[:200]
    expected = stats.beta(2, 5).logpdf(inside[:, 0].numpy()) + stats.beta(5, 2).logpdf(
        inside[:, 1].numpy()
    )
    torch.testing.assert_close(target.log_prob(inside), torch.from_numpy(expected))


def _dirichlet_checks(target) -> None:
    x = target.sample(N_CHECK, seed=11)
    # marginals of Dirichlet(2, 3, 4): x1 ~ Beta(2, 7), x2 ~ Beta(3, 6), x1 + x2 ~ Beta(5, 4)
    assert _ks(x[:, 0], stats.beta(2, 7).cdf) > P_MIN
    assert _ks(x[:, 1], stats.beta(3, 6).cdf) > P_MIN
    assert _ks(x.sum(1), stats.beta(5, 4).cdf) > P_MIN
    full = torch.cat([x[:200], 1 - x[:200].sum(1, keepdim=True)], dim=1).numpy()
    expected = np.array([stats.dirichlet([2, 3, 4]).logpdf(p / p.sum()) for p in full])
    torch.testing.assert_close(target.log_prob(x[:200]), torch.from_numpy(expected))


def _uniform_disk_checks(target) -> None:
    x = target.sample(N_CHECK, seed=11)
    r2 = x.pow(2).sum(1)
    assert float(r2.max()) <= 1
    assert _ks(r2, stats.uniform(0, 1).cdf) > P_MIN  # |x|^2 ~ U[0, 1] for the uniform disk
    angle = torch.atan2(x[:, 1], x[:, 0]) % (2 * math.pi)
    assert _ks(angle, stats.uniform(0, 2 * math.pi).cdf) > P_MIN


SAMPLER_CHECKS = {
    "gaussian_2d": _mixture_checks,
    "ring8": _mixture_checks,
    "grid25": _mixture_checks,
    "unbalanced2": _mixture_checks,
    "mixture10d": _mixture_checks,
    "circle": _unit_sphere_checks,
    "sphere": _unit_sphere_checks,
    "shell3": _shell_checks,
    "shell100": _shell_checks,
    "half_sphere": _half_sphere_checks,
    "swiss_roll": _swiss_roll_checks,
    "torus": _torus_checks,
    "two_moons": _two_moons_checks,
    "uniform_square": _uniform_square_checks,
    "beta_2_5x5_2": _beta_checks,
    "dirichlet3": _dirichlet_checks,
    "uniform_disk": _uniform_disk_checks,
}


@pytest.mark.parametrize("name", NAMES)
def test_sampler_matches_truth(name: str) -> None:
    assert name in SAMPLER_CHECKS, f"target {name!r} has no sampler check in this file"
    target = get_target(name)
    SAMPLER_CHECKS[name](target)
    if isinstance(target, GaussianMixture):
        _check_log_prob_against_scipy_mixture(target)


# ---------------------------------------------------------------------------------------
# log_prob: normalised, and consistent with the sampler (grid quadrature in 2-D)
# ---------------------------------------------------------------------------------------
DENSITY_2D = [n for n in NAMES if get_target(n).has_log_prob and get_target(n).dim == 2]


@pytest.mark.parametrize("name", DENSITY_2D)
def test_2d_density_normalised_and_matches_sample_moments(name: str) -> None:
    target = get_target(name)
    x = target.sample(N_CHECK, seed=21)
    lo = x.min(0).values - 0.5 * x.std(0)
    hi = x.max(0).values + 0.5 * x.std(0)
    m = 500
    ticks = [
        lo[i] + (hi[i] - lo[i]) * (torch.arange(m, dtype=torch.float64) + 0.5) / m for i in range(2)
    ]
    gx, gy = torch.meshgrid(ticks[0], ticks[1], indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    cell = float((hi[0] - lo[0]) * (hi[1] - lo[1])) / m**2
    p = target.log_prob(grid).exp() * cell
    assert abs(float(p.sum()) - 1) < 3e-3, float(p.sum())
    p = p / p.sum()
    mean = p @ grid
    cov = (grid - mean).T @ ((grid - mean) * p[:, None])
    sd = cov.diagonal().sqrt()
    assert bool(((x.mean(0) - mean).abs() < 5 * sd / math.sqrt(N_CHECK)).all())
    torch.testing.assert_close(torch.cov(x.T), cov, rtol=0.05, atol=0.05 * float(sd.max()))


SCORED = [n for n in NAMES if get_target(n).has_score]


@pytest.mark.parametrize("name", SCORED)
def test_score_equals_autograd_of_log_prob(name: str) -> None:
    target = get_target(name)
    assert target.has_log_prob
    x = target.sample(300, seed=4)
    with torch.enable_grad():
        xr = x.clone().requires_grad_(True)
        (auto,) = torch.autograd.grad(target.log_prob(xr).sum(), xr)
    torch.testing.assert_close(target.score(x), auto, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "name", [n for n in NAMES if n not in SCORED and get_target(n).has_log_prob]
)
def test_uniform_densities_report_no_score(name: str) -> None:
    """Uniform supports have log_prob but no usable score (zero inside): has_score False."""
    target = get_target(name)
    with pytest.raises(TargetError, match="has no score"):
        target.score(target.sample(3, seed=0))
    x = target.sample(50, seed=0)
    lp = target.log_prob(x)
    torch.testing.assert_close(lp, lp[:1].expand(50))  # constant on the support


@pytest.mark.parametrize("name", ["beta_2_5x5_2", "dirichlet3", "uniform_square", "uniform_disk"])
def test_bounded_outside_support(name: str) -> None:
    target = get_target(name)
    outside = torch.tensor([[-1.1, 0.5], [0.5, 1.2], [1.5, 1.5]], dtype=torch.float64)
    assert bool(torch.isneginf(target.log_prob(outside)).all())
    if target.has_score:  # the score is undefined outside: NaN, never an invented gradient
        assert bool(torch.isnan(target.score(outside)).all())


# ---------------------------------------------------------------------------------------
# Cap regions (the ``cap`` init scheme)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_cap_is_a_strict_nonempty_subset(name: str) -> None:
    target = get_target(name)
    x = target.sample(4000, seed=2)
    frac = float(target.cap_mask(x).double().mean())
    assert 0.01 < frac < 0.3, frac
    cap = target.sample_cap(100, seed=3)
    assert cap.shape == (100, target.dim)
    assert bool(target.cap_mask(cap).all())
    assert torch.equal(cap, target.sample_cap(100, seed=3))


EXPLICIT_CAPS = {  # the DMPS / KSWGD regions
    "sphere": lambda x: x[:, 1] > 0.7,
    "shell3": lambda x: x[:, 1] > 0.7,
    "half_sphere": lambda x: x[:, 1] > 0.7,
    "shell100": lambda x: x[:, 1] > 0.2,
    "circle": lambda x: x[:, 1] > 0.9,
}


@pytest.mark.parametrize("name", sorted(EXPLICIT_CAPS))
def test_manifold_caps_are_the_documented_regions(name: str) -> None:
    target = get_target(name)
    x = target.sample(3000, seed=8)
    assert torch.equal(target.cap_mask(x), EXPLICIT_CAPS[name](x))
    std = StandardisedTarget.from_samples(target, target.sample(1000, seed=9))
    assert torch.equal(std.cap_mask(std.to_standard(x)), EXPLICIT_CAPS[name](x))


# ---------------------------------------------------------------------------------------
# Wrong samples and the metric calibration
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_wrong_sample_is_wrong(name: str) -> None:
    target = get_target(name)
    w = wrong_sample(target, 400, seed=5)
    assert w.shape == (400, target.dim) and w.dtype == torch.float64
    assert torch.equal(w, wrong_sample(target, 400, seed=5))
    if isinstance(target, GaussianMixture) and target.n_components > 1:
        dropped = target.dropped_components()
        assert float(target.weights[dropped].sum()) >= 0.1 - 1e-12
        nearest = target._component_log_probs(w)[0].argmax(1)
        assert not bool(torch.isin(nearest, torch.tensor(dropped)).any())
    elif hasattr(target, "wrong_mask"):
        assert bool(target.wrong_mask(w).all())
        frac = float(target.wrong_mask(target.sample(4000, seed=6)).double().mean())
        assert frac < 0.6


N_CAL = 500


def _standardised_clouds(name: str):
    base = get_target(name)
    std = StandardisedTarget.from_samples(base, base.sample(2000, seed=0))
    reference = std.sample(N_CAL, seed=1)
    exact = std.sample(N_CAL, seed=2)
    wrong = wrong_sample(std, N_CAL, seed=3)
    eps = base.metric_eps_fraction * median_sq_distance(reference)
    return reference, exact, wrong, eps


@pytest.mark.parametrize("name", NAMES)
def test_metric_calibration_exact_vs_wrong(name: str) -> None:
    """S(fresh exact sample, reference) is at least 3x below S(wrong sample, reference) in the
    standardised space at the target's declared eps, n = 500 (``metrics.sinkhorn``)."""
    reference, exact, wrong, eps = _standardised_clouds(name)
    s = {}
    for label, cloud in (("exact", exact), ("wrong", wrong)):
        res = sinkhorn_divergence(cloud, reference, eps=eps)
        assert res.converged, (name, label, res.info)
        s[label] = res.value
    assert s["exact"] > -1e-6
    assert s["wrong"] > 3 * s["exact"], (name, s)


def test_generic_wrong_sample_is_a_half_space() -> None:
    """Targets without ``corrupted_sample`` get the half-space above the median of x_1."""
    from tests.helpers.gaussian import correlated_gaussian_2d

    target = correlated_gaussian_2d()
    w = wrong_sample(target, 300, seed=0)
    assert w.shape == (300, 2)
    assert float(w[:, 0].min()) > 1.0 - 0.1  # the median of x_1 is the mean 1.0
    assert torch.equal(w, wrong_sample(target, 300, seed=0))


def test_mixture_constructor_errors() -> None:
    means = [[0.0, 0.0], [1.0, 1.0]]
    with pytest.raises(TargetError, match="exactly one of covs"):
        GaussianMixture("m", means)
    with pytest.raises(TargetError, match="exactly one of covs"):
        GaussianMixture("m", means, stds=[1.0, 1.0], covs=[[[1.0, 0], [0, 1]]] * 2)
    with pytest.raises(TargetError, match="weights must be 2 positive"):
        GaussianMixture("m", means, weights=[1.0, -1.0], stds=[1.0, 1.0])
    with pytest.raises(TargetError, match="positive definite"):
        GaussianMixture("m", means, covs=[[[1.0, 2.0], [2.0, 1.0]]] * 2)
    with pytest.raises(TargetError, match=r"shape \(K, d\)"):
        GaussianMixture("m", [0.0, 1.0], stds=[1.0])


def test_bounded_shapes_must_be_integers() -> None:
    from datasets.bounded import Dirichlet2Simplex, ProductBeta

    with pytest.raises(TargetError, match="integers >= 1"):
        ProductBeta("b", a=(2.5,), b=(2,))
    with pytest.raises(TargetError, match="integers >= 1"):
        Dirichlet2Simplex("d", alpha=(2, 0, 3))


def test_rejection_sampling_reports_an_empty_region() -> None:
    from common.random import make_generator
    from datasets.calibration import sample_where

    target = get_target("circle")

    def never(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], dtype=torch.bool)

    with pytest.raises(TargetError, match="rejection sampling got 0 of 10 points"):
        sample_where(target._sample, never, 10, make_generator(0), max_batches=3)
