"""Tests of the metrics against independent references (brute force, closed forms, scipy)."""

from __future__ import annotations

import math

import ot
import pytest
import scipy.stats
import torch

from common.geometry import relative_eps
from metrics.base import MetricError, available_metrics, get_metric
from metrics.energy import energy_distance
from metrics.memorisation import memorisation_ratio
from metrics.mmd import mmd_gaussian
from metrics.sinkhorn import STANDARD_MAX_COST_OVER_EPS, sinkhorn_divergence
from metrics.sliced import random_directions, sliced_wasserstein, wasserstein_1d_sq

F64 = torch.float64


def _cloud(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen, dtype=F64) + shift


def _brute_entropic_ot(x: torch.Tensor, y: torch.Tensor, eps: float, iters: int) -> float:
    """Independent log-domain Sinkhorn: alternate exact f, g updates (logsumexp over the full
    (m, n) cost |x - y|^2 built by broadcasting); OT_eps = <a, f> + <b, g> (full entropic
    value: after a g-update the plan has total mass 1, so the dual's mass term vanishes)."""
    c = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    log_a = torch.full((x.shape[0],), -math.log(x.shape[0]), dtype=F64)
    log_b = torch.full((y.shape[0],), -math.log(y.shape[0]), dtype=F64)
    f = torch.zeros(x.shape[0], dtype=F64)
    g = torch.zeros(y.shape[0], dtype=F64)
    for _ in range(iters):
        f_old = f
        f = -eps * torch.logsumexp(log_b[None, :] + (g[None, :] - c) / eps, dim=1)
        g = -eps * torch.logsumexp(log_a[:, None] + (f[:, None] - c) / eps, dim=0)
        if float((f - f_old).abs().max()) < 1e-12:
            break
    return float(log_a.exp() @ f + log_b.exp() @ g)


def _brute_divergence(x: torch.Tensor, y: torch.Tensor, eps: float, iters: int) -> float:
    return (
        _brute_entropic_ot(x, y, eps, iters)
        - 0.5 * _brute_entropic_ot(x, x, eps, iters)
        - 0.5 * _brute_entropic_ot(y, y, eps, iters)
    )


# -- Sinkhorn divergence ----------------------------------------------------------------------


def test_sinkhorn_zero_for_identical_clouds():
    x = _cloud(200, 2, 0)
    res = sinkhorn_divergence(x, x.clone(), eps=0.1)
    assert res.converged
    assert abs(res.value) < 1e-8


def test_sinkhorn_symmetric():
    x, y = _cloud(150, 3, 1), _cloud(120, 3, 2, shift=0.4)
    s_xy = sinkhorn_divergence(x, y, eps=0.2)
    s_yx = sinkhorn_divergence(y, x, eps=0.2)
    assert s_xy.converged and s_yx.converged
    assert s_xy.value == pytest.approx(s_yx.value, rel=1e-7, abs=1e-10)


def test_sinkhorn_monotone_in_shift():
    x = _cloud(200, 2, 3)
    y = _cloud(200, 2, 4)
    values = [sinkhorn_divergence(x, y + s, eps=0.1).value for s in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert all(b > a for a, b in zip(values, values[1:], strict=False)), values
    assert values[0] > 0  # two different samples: positive divergence


@pytest.mark.parametrize(
    ("fraction", "method"),
    [(0.5, "auto"), (0.05, "auto"), (0.05, "log"), (0.01, "standard"), (0.01, "auto")],
)
def test_sinkhorn_matches_brute_force_log_domain(fraction, method):
    x, y = _cloud(40, 2, 5), _cloud(30, 2, 6, shift=0.7)
    eps = relative_eps(y, fraction)
    res = sinkhorn_divergence(x, y, eps=eps, tol=1e-9, method=method, max_iter=20_000)
    assert res.converged, res.info
    ref = _brute_divergence(x, y, eps, iters=1500)
    assert res.value == pytest.approx(ref, rel=1e-6, abs=1e-9)


def test_generalisation_gap_is_the_ratio_of_two_brute_force_divergences():
    """gap = S_eps(x, train) / S_eps(x, reference), each S by the independent log-domain
    Sinkhorn above (train as large as the reference, so nothing is subsampled); rel 1e-4:
    the metric's solves stop at marginal error 1e-5 (DEFAULT_TOL)."""
    from metrics.copying import generalisation_gap

    x, train, ref = _cloud(40, 2, 41), _cloud(30, 2, 42, shift=0.3), _cloud(30, 2, 43)
    eps = relative_eps(ref, 0.1)
    res = generalisation_gap(x, train, ref, eps=eps)
    assert res.converged and res.info["n_train_used"] == 30
    ref_gap = _brute_divergence(x, train, eps, 1500) / _brute_divergence(x, ref, eps, 1500)
    assert res.value == pytest.approx(ref_gap, rel=1e-4)


def test_sinkhorn_auto_switches_to_log_domain_for_small_eps():
    x, y = _cloud(40, 2, 5), _cloud(30, 2, 6, shift=0.7)
    big = sinkhorn_divergence(x, y, eps=relative_eps(y, 0.5))
    small = sinkhorn_divergence(x, y, eps=relative_eps(y, 0.01))
    assert small.converged
    assert big.info["method"]["xy"] == "standard"
    assert small.info["method"]["xy"] == "log"
    assert small.info["max_cost_over_eps"] > STANDARD_MAX_COST_OVER_EPS


def test_sinkhorn_shift_identity_is_exact():
    # |x - y - mu|^2 = |x - y|^2 - 2 <x - y, mu> + |mu|^2 and P has marginals a, b, so for any
    # eps: S(x, y + mu) = S(x, y) + |mu|^2 - 2 <mean x - mean y, mu> (self terms unchanged).
    mu = torch.tensor([1.5, -1.0], dtype=F64)
    x, y = _cloud(150, 2, 7), _cloud(140, 2, 8)
    base = sinkhorn_divergence(x, y, eps=0.5, tol=1e-9)
    moved = sinkhorn_divergence(x, y + mu, eps=0.5, tol=1e-9)
    expected = base.value + float(mu @ mu) - 2 * float((x.mean(0) - y.mean(0)) @ mu)
    assert moved.value == pytest.approx(expected, rel=1e-7)


def test_sinkhorn_two_gaussians_approaches_squared_shift():
    # N(0, I) vs N(mu, I): S_eps -> |mu|^2 as n grows (S between two samples of one law -> 0).
    mu = torch.tensor([1.5, -1.0], dtype=F64)
    x, y = _cloud(400, 2, 7), _cloud(400, 2, 8) + mu
    res = sinkhorn_divergence(x, y, eps=0.5)
    assert res.converged
    assert res.value == pytest.approx(float(mu @ mu), rel=0.1)


def test_sinkhorn_reports_non_convergence_as_nan():
    x, y = _cloud(100, 2, 9), _cloud(100, 2, 10, shift=1.0)
    res = sinkhorn_divergence(x, y, eps=relative_eps(y, 0.001), max_iter=5)
    assert not res.converged
    assert math.isnan(res.value)
    assert "did not converge" in res.info["message"]
    assert res.info["iterations"]["xy"] == 5


def test_sinkhorn_records_solver_facts():
    x, y = _cloud(80, 2, 11), _cloud(90, 2, 12)
    res = sinkhorn_divergence(x, y, eps=0.3)
    info = res.info
    assert info["eps"] == 0.3 and info["cost"] == "squared_euclidean"
    assert set(info["iterations"]) == {"xy", "xx", "yy"}
    assert all(err <= info["tol"] for err in info["marginal_error"].values())
    assert all(abs(gap) < 1e-4 for gap in info["primal_dual_gap"].values())
    assert info["method"]["xx"] == "symmetric-standard"


def test_sinkhorn_float32_input_computed_in_float64():
    x, y = _cloud(100, 2, 13), _cloud(100, 2, 14, shift=0.3)
    x32, y32 = x.float(), y.float()
    r32 = sinkhorn_divergence(x32, y32, eps=0.5)
    r64 = sinkhorn_divergence(x32.double(), y32.double(), eps=0.5)
    assert r32.converged
    assert r32.value == r64.value


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (torch.full((5, 2), float("nan"), dtype=F64), torch.zeros(5, 2, dtype=F64), "NaN"),
        (torch.zeros(5, 2, dtype=F64), torch.zeros(5, 3, dtype=F64), "dimension mismatch"),
        (torch.zeros(0, 2, dtype=F64), torch.zeros(5, 2, dtype=F64), "non-empty"),
        (torch.zeros(5, dtype=F64), torch.zeros(5, 2, dtype=F64), "non-empty"),
        (torch.zeros(5, 0, dtype=F64), torch.zeros(5, 0, dtype=F64), "non-empty"),
    ],
)
def test_sinkhorn_bad_input(x, y, match):
    with pytest.raises(MetricError, match=match):
        sinkhorn_divergence(x, y, eps=0.1)


def test_sinkhorn_bad_eps_and_method():
    x = _cloud(10, 2, 0)
    for eps in (0.0, True):  # True was read as eps = 1
        with pytest.raises(MetricError, match="eps must be a positive"):
            sinkhorn_divergence(x, x, eps=eps)
    with pytest.raises(MetricError, match="unknown method"):
        sinkhorn_divergence(x, x, eps=0.1, method="greenkhorn")
    for max_iter in (2.5, None, 0, True):
        with pytest.raises(MetricError, match="max_iter must be an int >= 1"):
            sinkhorn_divergence(x, x, eps=0.1, max_iter=max_iter)
    with pytest.raises(MetricError, match="tol must be a number > 0"):
        sinkhorn_divergence(x, x, eps=0.1, tol=0.0)


def test_sinkhorn_refuses_an_eps_float64_cannot_resolve():
    """At eps ~ 3e13 x the largest cost S_eps came back as 0.42 for a true 0.754 (its
    eps -> infinity limit, the squared distance of the means), marked converged.
    Up to MAX_EPS_OVER_COST x the cost the value stays within 1e-5 of that limit."""
    x, y = _cloud(50, 2, 0), _cloud(60, 2, 1, shift=0.5)
    limit = float((x.mean(0) - y.mean(0)).pow(2).sum())
    top = float(torch.cdist(x, y).pow(2).max())
    near = sinkhorn_divergence(x, y, eps=1e6 * top)
    assert near.converged and abs(near.value - limit) < 1e-5 * limit
    for path in ("dense", "streaming"):
        with pytest.raises(MetricError, match="float64 cannot resolve"):
            sinkhorn_divergence(x, y, eps=1e15, path=path)


def test_registered_sinkhorn_requires_scale():
    fn = get_metric("sinkhorn")
    x, y = _cloud(50, 2, 1), _cloud(50, 2, 2)
    with pytest.raises(MetricError, match="needs scale"):
        fn.on(x, y)
    assert fn.on(x, y, scale=0.2).value == sinkhorn_divergence(x, y, eps=0.2).value


def test_relative_eps():
    y = _cloud(300, 3, 0)
    c = torch.cdist(y, y).pow(2)
    iu = torch.triu_indices(300, 300, offset=1)
    assert relative_eps(y, 0.05) == pytest.approx(0.05 * float(c[iu[0], iu[1]].median()))
    big = _cloud(3000, 3, 1)
    # random subsample of 2000 rows; for N(0, I_3), |x - y|^2 ~ 2 chi^2_3.
    assert relative_eps(big, 1.0) == pytest.approx(2 * scipy.stats.chi2.median(3), rel=0.03)
    # the one eps rule: above 2000 rows the first 2000 are used (runner and studies agree)
    assert relative_eps(big, 1.0) == relative_eps(big[:2000], 1.0)


# -- sliced Wasserstein ------------------------------------------------------------------------


def test_wasserstein_1d_matches_exact_linear_program_for_unequal_sizes():
    u = _cloud(37, 1, 20)
    v = _cloud(23, 1, 21, shift=0.8) * 1.5
    cost = (u - v.T) ** 2
    a = torch.full((37,), 1 / 37, dtype=F64)
    b = torch.full((23,), 1 / 23, dtype=F64)
    exact = float(ot.emd2(a, b, cost))
    assert float(wasserstein_1d_sq(u.T, v.T)[0]) == pytest.approx(exact, rel=1e-10)


def test_sliced_wasserstein_in_1d_is_w2_squared_of_gaussians():
    # W_2^2(N(m1, s1^2), N(m2, s2^2)) = (m1 - m2)^2 + (s1 - s2)^2, evaluated at the sample
    # moments (the sampling noise of the means dominates otherwise); large samples.
    x = _cloud(20_000, 1, 22)
    y = _cloud(15_000, 1, 23) * 2.0 + 1.0
    res = sliced_wasserstein(x, y, n_directions=3)
    closed = float((x.mean() - y.mean()) ** 2 + (x.std() - y.std()) ** 2)
    assert res.value == pytest.approx(closed, rel=0.01)
    assert res.value == pytest.approx(2.0, rel=0.1)


def test_sliced_wasserstein_of_a_shift():
    # A shift by mu moves each projection by <theta, mu>: W_2^2 = <theta, mu>^2 exactly, and
    # E_theta <theta, mu>^2 = mu^T E[theta theta^T] mu = |mu|^2 / d (E theta theta^T = I / d).
    d, mu = 4, torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=F64)
    x = _cloud(300, d, 24)
    res = sliced_wasserstein(x, x + mu, n_directions=4000, seed=3)
    theta = random_directions(d, 4000, seed=3, device=x.device)
    assert res.value == pytest.approx(float(((theta @ mu) ** 2).mean()), rel=1e-9)
    assert res.value == pytest.approx(float(mu @ mu) / d, abs=4 * res.info["std_error"])
    assert sliced_wasserstein(x, x.clone()).value == pytest.approx(0.0, abs=1e-24)


def test_sliced_wasserstein_seeded():
    x, y = _cloud(50, 3, 1), _cloud(60, 3, 2)
    fn = get_metric("sliced_wasserstein")
    assert fn.on(x, y, seed=5).value == fn.on(x, y, seed=5).value
    assert fn.on(x, y, seed=5).value != fn.on(x, y, seed=6).value


# -- MMD, energy distance, memorisation ---------------------------------------------------------


def _brute_mmd(x, y, s2, unbiased):
    def k(u, v):
        return math.exp(-float(((u - v) ** 2).sum()) / (2 * s2))

    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if not (unbiased and i == j))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if not (unbiased and i == j))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
    dx, dy = (m * (m - 1), n * (n - 1)) if unbiased else (m * m, n * n)
    return kxx / dx + kyy / dy - 2 * kxy / (m * n)


@pytest.mark.parametrize("unbiased", [False, True])
def test_mmd_matches_double_loop(unbiased):
    x, y = _cloud(15, 2, 30), _cloud(12, 2, 31, shift=0.5)
    z = torch.cat([x, y])
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    iu = torch.triu_indices(27, 27, offset=1)
    s2 = float(d2[iu[0], iu[1]].median())
    res = mmd_gaussian(x, y, unbiased=unbiased)
    assert res.info["bandwidth_sq"] == pytest.approx(s2, rel=1e-12)
    assert res.value == pytest.approx(_brute_mmd(x, y, s2, unbiased), rel=1e-10)


def test_mmd_zero_for_identical_and_grows_with_shift():
    x = _cloud(100, 2, 32)
    fn = get_metric("mmd_gaussian")
    assert fn.on(x, x.clone()).value == pytest.approx(0.0, abs=1e-14)
    values = [fn.on(x, x + s).value for s in (0.1, 0.5, 1.0)]
    assert values[0] < values[1] < values[2]


def test_energy_distance_matches_scipy_in_1d():
    x, y = _cloud(40, 1, 33), _cloud(55, 1, 34, shift=0.3) * 1.4
    ref = scipy.stats.energy_distance(x[:, 0].numpy(), y[:, 0].numpy()) ** 2
    assert get_metric("energy_distance").on(x, y).value == pytest.approx(ref, rel=1e-10)
    assert energy_distance(x, x.clone()).value == pytest.approx(0.0, abs=1e-12)


def test_energy_distance_in_3d_matches_a_double_loop():
    """Above 1-D the Euclidean and L1 norms differ: the V-statistic 2 E|X-Y| - E|X-X'| -
    E|Y-Y'| by an explicit double loop over pairs (math.dist), independent of the metric's
    product-form distances."""
    x, y = _cloud(12, 3, 35), _cloud(9, 3, 36, shift=0.4)
    xs, ys = x.tolist(), y.tolist()

    def mean_dist(a: list, b: list) -> float:
        return sum(math.dist(p, q) for p in a for q in b) / (len(a) * len(b))

    ref = 2 * mean_dist(xs, ys) - mean_dist(xs, xs) - mean_dist(ys, ys)
    assert energy_distance(x, y).value == pytest.approx(ref, rel=1e-9)


def test_memorisation_ratio():
    train, reference, fresh = _cloud(300, 2, 40), _cloud(300, 2, 41), _cloud(200, 2, 42)
    copied = train[:200] + 1e-3 * _cloud(200, 2, 43)
    assert memorisation_ratio(copied, train, reference).value < 0.05
    res = memorisation_ratio(fresh, train, reference)
    brute_train = torch.cdist(fresh, train).min(1).values.median()
    brute_ref = torch.cdist(fresh, reference).min(1).values.median()
    assert res.value == pytest.approx(float(brute_train / brute_ref), rel=1e-9)
    assert 0.7 < res.value < 1.4
    # registered as an unranked diagnostic that reads the training split from the context
    spec = get_metric("memorisation")
    assert spec.needs >= {"train"} and not spec.ranked
    via_registry = spec.on(fresh, reference, train=train).value
    assert via_registry == res.value
    with pytest.raises(MetricError, match="dimension mismatch"):
        memorisation_ratio(fresh, train[:, :1], reference)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metrics_on_cuda_match_cpu():
    x, y = _cloud(200, 2, 50), _cloud(180, 2, 51, shift=0.4)
    for name in available_metrics():
        fn = get_metric(name)
        if fn.unmet_needs(None) or "train" in fn.needs:
            continue
        cpu = fn.on(x, y, scale=0.3, seed=1)
        gpu = fn.on(x.cuda(), y.cuda(), scale=0.3, seed=1)
        assert gpu.value == pytest.approx(cpu.value, rel=1e-9, abs=1e-12), name
