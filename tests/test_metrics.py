"""Tests of the metrics against independent references (brute force, closed forms, scipy)."""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch

from metrics.base import MetricError, get_metric
from metrics.sinkhorn import relative_eps, sinkhorn_divergence

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
        f = -eps * torch.logsumexp(log_b[None, :] + (g[None, :] - c) / eps, dim=1)
        g = -eps * torch.logsumexp(log_a[:, None] + (f[:, None] - c) / eps, dim=0)
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
    [(0.5, "auto"), (0.05, "auto"), (0.05, "log"), (0.01, "standard"), (0.003, "auto")],
)
def test_sinkhorn_matches_brute_force_log_domain(fraction, method):
    x, y = _cloud(60, 2, 5), _cloud(50, 2, 6, shift=0.7)
    eps = relative_eps(y, fraction)
    res = sinkhorn_divergence(x, y, eps=eps, tol=1e-10, method=method, max_iter=100_000)
    assert res.converged, res.info
    ref = _brute_divergence(x, y, eps, iters=20_000 if fraction < 0.02 else 3000)
    assert res.value == pytest.approx(ref, rel=1e-6, abs=1e-9)


def test_sinkhorn_auto_switches_to_log_domain_for_small_eps():
    x, y = _cloud(60, 2, 5), _cloud(50, 2, 6, shift=0.7)
    big = sinkhorn_divergence(x, y, eps=relative_eps(y, 0.5))
    small = sinkhorn_divergence(x, y, eps=relative_eps(y, 0.002), max_iter=100_000)
    assert big.info["method"]["xy"] == "standard"
    assert small.info["method"]["xy"] == "log"
    assert small.info["max_cost_over_eps"] > 500


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
    ],
)
def test_sinkhorn_bad_input(x, y, match):
    with pytest.raises(MetricError, match=match):
        sinkhorn_divergence(x, y, eps=0.1)


def test_sinkhorn_bad_eps_and_method():
    x = _cloud(10, 2, 0)
    with pytest.raises(MetricError, match="eps must be a positive"):
        sinkhorn_divergence(x, x, eps=0.0)
    with pytest.raises(MetricError, match="unknown method"):
        sinkhorn_divergence(x, x, eps=0.1, method="greenkhorn")


def test_registered_sinkhorn_requires_scale():
    fn = get_metric("sinkhorn")
    x, y = _cloud(50, 2, 1), _cloud(50, 2, 2)
    with pytest.raises(MetricError, match="needs scale"):
        fn(x, y)
    assert fn(x, y, scale=0.2).value == sinkhorn_divergence(x, y, eps=0.2).value


def test_relative_eps():
    y = _cloud(300, 3, 0)
    c = torch.cdist(y, y).pow(2)
    iu = torch.triu_indices(300, 300, offset=1)
    assert relative_eps(y, 0.05) == pytest.approx(0.05 * float(c[iu[0], iu[1]].median()))
    big = _cloud(3000, 3, 1)
    # random subsample of 2000 rows; for N(0, I_3), |x - y|^2 ~ 2 chi^2_3.
    assert relative_eps(big, 1.0) == pytest.approx(2 * scipy.stats.chi2.median(3), rel=0.03)
    assert relative_eps(big, 1.0, seed=1) != relative_eps(big, 1.0, seed=2)
