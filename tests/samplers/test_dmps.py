"""DMPS and the shared spectral numerics: checked against autograd, brute force and closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from datasets.base import Target
from samplers import SamplerError, available_samplers, get_sampler
from samplers.core.spectral import (
    DiffusionMapKernel,
    SpectralError,
    auto_step_size,
    brute_force_transport_step,
    diffusion_map_spectrum,
    kernel_push,
    lawgd_weights,
    notebook_transport_step,
    spectral_transport_step,
    top_eigenpairs,
    transport_direction,
)
from samplers.core.transport_run import CLIP_FLAG, CLIP_FLAG_SHARE, clip_facts

F64 = torch.float64


class CircleTarget(Target):
    """Uniform on the unit circle in R^2 (test-local); cap = angle in [0, pi/4)."""

    def __init__(self) -> None:
        super().__init__(name="test_circle", dim=2, family="manifolds")

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        theta = 2 * math.pi * torch.rand(n, generator=gen, dtype=F64)
        return torch.stack([theta.cos(), theta.sin()], dim=1)


def gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def naive_kt(kernel: DiffusionMapKernel, x: Tensor) -> Tensor:
    """Direct transcription of Kt (no stabilisation, (m, N, d) differences)."""
    X, eps = kernel.X, kernel.eps
    k = torch.exp(-((x[:, None, :] - X[None, :, :]) ** 2).sum(-1) / (2 * eps))
    p = k.sum(1)
    M = k / torch.sqrt(p[:, None] * kernel.p[None, :])
    return 0.5 * (M / kernel.D[None, :] + M / M.sum(1, keepdim=True))


@pytest.fixture(scope="module")
def fitted() -> tuple[DiffusionMapKernel, Tensor, Tensor, Tensor]:
    X = torch.randn(60, 3, generator=gen(0), dtype=F64)
    kernel = DiffusionMapKernel.fit(X)
    spec = diffusion_map_spectrum(kernel, solver="dense")
    w = lawgd_weights(spec.eigenvalues, kernel.eps)
    keep = w > 0
    x = 1.3 * torch.randn(9, 3, generator=gen(1), dtype=F64)
    return kernel, spec.eigenvectors[:, keep], w[keep], x


def test_fit_matches_dense_formulas() -> None:
    X = torch.randn(40, 2, generator=gen(2), dtype=F64)
    kernel = DiffusionMapKernel.fit(X, chunk_size=7)
    n = X.shape[0]
    d2 = ((X[:, None] - X[None]) ** 2).sum(-1)
    med = d2[torch.triu_indices(n, n, 1).unbind()].median()
    assert kernel.eps == pytest.approx(float(med) / (2 * math.log(n + 1)), rel=1e-12)
    k = torch.exp(-d2 / (2 * kernel.eps))
    p = k.sum(1)
    kt = k / torch.sqrt(p[:, None] * p[None, :])
    D = kt.sum(0)
    P = (kt / D[None, :] + kt / D[:, None]) / 2
    torch.testing.assert_close(kernel.p, p, rtol=1e-12, atol=0)
    torch.testing.assert_close(kernel.D, D, rtol=1e-12, atol=0)
    torch.testing.assert_close(kernel.markov_matrix(chunk_size=9), P, rtol=1e-12, atol=1e-15)


def test_evaluate_matches_direct_formula(fitted) -> None:
    kernel, _, _, x = fitted
    torch.testing.assert_close(kernel.evaluate(x), naive_kt(kernel, x), rtol=1e-11, atol=1e-14)


def test_gradient_matches_autograd(fitted) -> None:
    kernel, _, _, x = fitted
    jac = torch.autograd.functional.jacobian(lambda z: naive_kt(kernel, z), x)  # (m,N,m,d)
    per_particle = torch.einsum("iaid->iad", jac)
    grad = kernel.gradient(x)
    assert grad.shape == (9, 60, 3)
    assert float((grad - per_particle).abs().max()) < 1e-8
    assert float(grad.abs().max()) > 1e-2  # not trivially zero


def test_transport_direction_matches_autograd(fitted) -> None:
    kernel, Phi, w, x = fitted
    s = Phi @ (w * (Phi.T @ kernel.evaluate(x).sum(0)))
    xr = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad((naive_kt(kernel, xr) @ s.detach()).sum(), xr)
    v = transport_direction(kernel, x, Phi, w)
    assert float((v - auto).abs().max()) < 1e-8 * max(1.0, float(auto.abs().max()))


@pytest.mark.parametrize("chunk", [None, 4])
def test_fast_step_matches_brute_force(fitted, chunk) -> None:
    kernel, Phi, w, x = fitted
    h = 50.0
    fast = spectral_transport_step(x, kernel, Phi, w, h)
    brute = brute_force_transport_step(x, kernel, Phi, w, h, chunk_size=chunk)
    assert float((fast - x).abs().max()) > 1e-3  # the step moves the particles
    assert float((fast - brute).abs().max()) < 1e-10


@pytest.mark.parametrize("chunk", [None, 4])
def test_fast_step_matches_notebook_double_sum(fitted, chunk) -> None:
    """The (N, m) push-matrix form of the reference: sum_l grad Kt(x_i) . S Kt(x_l)."""
    kernel, Phi, w, x = fitted
    fast = spectral_transport_step(x, kernel, Phi, w, 3.0)
    literal = notebook_transport_step(x, kernel, Phi, w, 3.0, chunk_size=chunk)
    assert float((fast - literal).abs().max()) < 1e-10


def test_kernel_push_matches_dense_form(fitted) -> None:
    kernel, Phi, w, x = fitted
    S = Phi @ torch.diag(w) @ Phi.T
    expected = S @ naive_kt(kernel, x).sum(0)
    torch.testing.assert_close(kernel_push(kernel, x, Phi, w), expected, rtol=1e-10, atol=1e-12)


def test_far_particles_stay_finite(fitted) -> None:
    kernel, Phi, w, _ = fitted
    far = torch.tensor([[40.0, -40.0, 40.0], [1e3, 0.0, 0.0]], dtype=F64)
    kt = kernel.evaluate(far)
    assert bool(torch.isfinite(kt).all())
    # k underflows: the 1/D part vanishes and the rows sum to 1/2 (the M/Q part)
    torch.testing.assert_close(kt.sum(1), torch.full((2,), 0.5, dtype=F64))
    assert bool(torch.isfinite(transport_direction(kernel, far, Phi, w)).all())


def test_dense_and_topk_eigenpairs_agree() -> None:
    X = torch.randn(400, 4, generator=gen(3), dtype=F64)
    kernel = DiffusionMapKernel.fit(X)
    k = 30
    dense = diffusion_map_spectrum(kernel, k, solver="dense")
    topk = diffusion_map_spectrum(kernel, k, solver="topk")  # float32 products with P
    assert dense.solver == "dense" and topk.solver == "topk"
    assert dense.eigenvectors.shape == topk.eigenvectors.shape == (400, k)
    assert bool((dense.eigenvalues[:-1] >= dense.eigenvalues[1:]).all())
    torch.testing.assert_close(topk.eigenvalues, dense.eigenvalues, rtol=0, atol=1e-5)
    # same invariant subspace (projectors agree) and orthonormal columns
    proj_d = dense.eigenvectors @ dense.eigenvectors.T
    proj_t = topk.eigenvectors @ topk.eigenvectors.T
    assert float((proj_d - proj_t).abs().max()) < 1e-3
    eye = torch.eye(k, dtype=F64)
    torch.testing.assert_close(topk.eigenvectors.T @ topk.eigenvectors, eye, atol=1e-10, rtol=0)
    # in float64 products the Krylov solver matches LAPACK to 1e-8 (convergence-limited)
    P = kernel.markov_matrix()
    lam64, vec64 = top_eigenpairs(P, k, matmul_dtype=None)
    torch.testing.assert_close(lam64, dense.eigenvalues, rtol=0, atol=1e-8)
    torch.testing.assert_close(P @ vec64, vec64 * lam64, rtol=0, atol=1e-5)


def test_top_eigenpairs_on_known_spectrum() -> None:
    q, _ = torch.linalg.qr(torch.randn(300, 300, generator=gen(4), dtype=F64))
    # twelve leading eigenvalues in [0.8, 1], a gap, then a slowly decaying tail below 0.5
    lam = torch.cat([torch.linspace(1.0, 0.8, 12), 0.5 * 0.99 ** torch.arange(288)]).double()
    A = q @ torch.diag(lam) @ q.T
    vals, vecs = top_eigenpairs(A, 12, block_size=4, n_blocks=20, matmul_dtype=None)
    torch.testing.assert_close(vals, lam[:12], atol=1e-10, rtol=0)
    torch.testing.assert_close(A @ vecs, vecs * vals, atol=1e-8, rtol=0)
    with pytest.raises(SpectralError, match="k <= N"):
        top_eigenpairs(A, 301)


def test_lawgd_weights_formula_and_notebook_variant() -> None:
    lam = torch.tensor([1.0002, 0.9, 0.5, 1e-3, 1e-7, -0.2], dtype=F64)
    eps, reg = 0.3, 1e-3
    w = lawgd_weights(lam, eps, reg=reg, tol=1e-6)
    expected = [0.0] + [(eps / (v + reg)) ** 2 * eps / (1 - v) for v in (0.9, 0.5, 1e-3)]
    torch.testing.assert_close(w, torch.tensor(expected + [0.0, 0.0], dtype=F64))
    nb = lawgd_weights(lam, eps, reg=reg, tol=1e-6, variant="notebook")
    # the notebook clips lam - 1 < 0 to 1e-12: the generator factor is eps * 1e12 for all modes
    ratio = nb[1:4] / (eps / (lam[1:4] + reg)) ** 2
    torch.testing.assert_close(ratio, torch.full((3,), eps * 1e12, dtype=F64))
    # so the relative weighting differs: intended w_1/w_2 carries (1 - 0.5) / (1 - 0.9) = 5
    assert float((w[1] / w[2]) / (nb[1] / nb[2])) == pytest.approx(5.0, rel=1e-9)
    with pytest.raises(SpectralError, match="unknown weights variant"):
        lawgd_weights(lam, eps, variant="clipped")
    # a second eigenvalue above 1: clamped to eps / machine-eps by default, dropped on request
    above = torch.tensor([1.003, 1.001, 0.9], dtype=F64)
    clamped = lawgd_weights(above, eps, reg=reg)
    assert float(clamped[1]) == pytest.approx(
        (eps / (1.001 + reg)) ** 2 * eps / torch.finfo(F64).eps, rel=1e-12
    )
    dropped = lawgd_weights(above, eps, reg=reg, drop_non_decaying=True)
    assert float(dropped[1]) == 0.0 and float(dropped[0]) == 0.0
    assert float(dropped[2]) == pytest.approx((eps / (0.9 + reg)) ** 2 * eps / 0.1, rel=1e-12)


def test_auto_step_size_rule(fitted) -> None:
    kernel, Phi, w, x = fitted
    h = auto_step_size(x, kernel, Phi, w, fraction=0.2)
    moved = (spectral_transport_step(x, kernel, Phi, w, h) - x).norm(dim=1)
    assert float(moved.median()) == pytest.approx(0.2 * math.sqrt(kernel.eps), rel=1e-10)


def angular_stats(x: Tensor) -> tuple[float, float]:
    """(largest empty angular gap, total-variation distance of a 16-bin angle histogram)."""
    theta = torch.sort(torch.atan2(x[:, 1], x[:, 0])).values
    gaps = torch.diff(torch.cat([theta, theta[:1] + 2 * math.pi]))
    hist = torch.histc(theta, bins=16, min=-math.pi, max=math.pi) / x.shape[0]
    return float(gaps.max()), float(0.5 * (hist - 1 / 16).abs().sum())


@pytest.fixture(scope="module")
def circle_run():
    target = CircleTarget()
    train = target.sample(200, seed=0)
    pool = target.sample(2000, seed=1)
    angle = torch.atan2(pool[:, 1], pool[:, 0])
    x0 = pool[(angle > 0) & (angle < math.pi / 4)][:100]
    # the new rules (issue 24), set explicitly: the defaults stay "first_step" / "median"
    # until the committed suites are refreshed with them
    sampler = get_sampler("dmps", step_rule="flow", bandwidth_rule="reference").fit(train, target)
    result = sampler.run(x0, 150, seed=0)
    return sampler, x0, result


def test_dmps_spreads_over_circle_from_a_cap(circle_run) -> None:
    _, x0, result = circle_run
    gap0, tv0 = angular_stats(x0)
    gap, tv = angular_stats(result.particles)
    assert not result.diverged
    assert gap0 > 5.4 and tv0 > 0.8  # the cap covers an eighth of the circle
    assert gap < 0.6, gap  # no large empty arc left (largest gap of the init: 5.5)
    assert tv < 0.25, tv  # 100 exact samples give about 0.15
    radius = result.particles.norm(dim=1)
    # the field only sees the particles through the kernel-smoothed Kt (sqrt(eps) = 0.43 here),
    # so the radius is loosely held at N = 200: it stays within the data's kernel reach
    assert float((radius - 1).abs().median()) < 0.35


def test_dmps_records_its_facts(circle_run) -> None:
    sampler, _, result = circle_run
    assert "dmps" in available_samplers()
    assert sampler.needs == frozenset({"samples"})
    info = result.info
    assert info["steps"] == 150 and info["step_size"] > 0
    assert info["step_rule"].startswith("flow")
    # the flow rule bounds every move by max_move sqrt(eps) < max_step sqrt(eps): no clipping
    assert info["n_clipped"] == 0 and info["clipped_fraction"] == 0.0 and info["flags"] == []
    assert 0 < info["min_flow_step"] <= info["flow_step"] <= 0.2
    assert info["flow_time"] >= 150 * info["min_flow_step"]
    assert info["step_size"] == pytest.approx(info["flow_step"] * info["transport_scale"])
    assert info["solver"] == "dense" and info["n_modes_used"] >= 10
    assert info["eps"] == pytest.approx(sampler.kernel.eps)


def test_dmps_float32_option(circle_run) -> None:
    sampler64, x0, result64 = circle_run
    target = sampler64.target
    s32 = get_sampler("dmps", dtype="float32", step_rule="flow", bandwidth_rule="reference").fit(
        sampler64.train, target
    )
    r32 = s32.run(x0, 20, seed=0)
    r64 = sampler64.run(x0, 20, seed=0)
    assert r32.particles.dtype == torch.float32
    assert r32.info["step_size"] == pytest.approx(r64.info["step_size"], rel=1e-3)
    assert float((r32.particles.double() - r64.particles).abs().max()) < 1e-3


def test_fixed_step_size_and_divergence_detection(circle_run) -> None:
    sampler, x0, _ = circle_run
    fixed = get_sampler("dmps", step_size=7.0).fit(sampler.train, sampler.target)
    res = fixed.run(x0, 3, seed=0)
    assert res.info["step_size"] == 7.0 and res.info["step_rule"] == "fixed"
    # the max_step safeguard holds a huge step to sqrt(eps) per particle per step
    capped = get_sampler("dmps", step_size=1e9).fit(sampler.train, sampler.target)
    res = capped.run(x0, 2, seed=0)
    moved = (res.particles - x0).norm(dim=1)
    assert float(moved.max()) <= 2 * math.sqrt(capped.kernel.eps) + 1e-12
    assert res.info["n_clipped"] == 2 * x0.shape[0]
    # every particle-step clipped: the run records the share and flags itself
    assert res.info["clipped_fraction"] == 1.0 and res.info["flags"] == [CLIP_FLAG]
    wild = get_sampler("dmps", step_size=1e9, max_step=None, max_abs=5.0).fit(
        sampler.train, sampler.target
    )
    bad = wild.run(x0, 10, seed=0)
    assert bad.diverged and bad.info["steps"] < 10


def test_bad_inputs_give_clear_errors() -> None:
    target = CircleTarget()
    train = target.sample(50, seed=0)
    nan_train = train.clone()
    nan_train[3, 1] = float("nan")
    with pytest.raises(SamplerError, match="NaN"):
        get_sampler("dmps").fit(nan_train, target)
    sampler = get_sampler("dmps").fit(train, target)
    with pytest.raises(SamplerError, match="dimension"):
        sampler.run(torch.zeros(5, 3, dtype=F64), 2, seed=0)
    with pytest.raises(SamplerError, match="zero particles"):
        sampler.run(torch.zeros(0, 2, dtype=F64), 2, seed=0)
    with pytest.raises(SamplerError, match="dtype"):
        get_sampler("dmps", dtype="float16").fit(train, target)
    with pytest.raises(SamplerError, match="step_size"):
        get_sampler("dmps", step_size=-1.0).fit(train, target)
    with pytest.raises(SamplerError, match="bandwidth"):
        get_sampler("dmps", bandwidth=-0.5).fit(train, target)
    kernel = DiffusionMapKernel.fit(train)
    with pytest.raises(SpectralError, match="Phi must have shape"):
        spectral_transport_step(train, kernel, torch.zeros(7, 2, dtype=F64), torch.ones(2), 1.0)
    with pytest.raises(SpectralError, match="NaN"):
        kernel.evaluate(nan_train)


def test_clip_facts_flag_above_one_percent() -> None:
    # 300 particles x 300 steps = 90,000 particle-steps: 900 clipped is exactly 1 % (not
    # flagged), 901 is above it (flagged); no step taken gives share 0
    assert CLIP_FLAG_SHARE == 0.01
    assert clip_facts(900, 300, 300) == {"n_clipped": 900, "clipped_fraction": 0.01, "flags": []}
    assert clip_facts(901, 300, 300)["flags"] == [CLIP_FLAG]
    assert clip_facts(0, 300, 0)["clipped_fraction"] == 0.0


def test_flow_step_bounds_the_fastest_particle() -> None:
    from samplers.core.spectral import flow_step_size

    v = torch.tensor([[3.0, 4.0], [0.1, 0.0]], dtype=F64)  # |v| = 5 and 0.1
    # the bound max_move sqrt(eps) / max |v| = 0.5 * 2 / 5 = 0.2 is below tau = 1
    assert flow_step_size(v, 1.0, 0.5, 4.0) == pytest.approx(0.2, rel=1e-15)
    assert flow_step_size(v, 0.1, 0.5, 4.0) == 0.1  # a slow field takes the full tau
    assert flow_step_size(torch.zeros(3, 2, dtype=F64), 0.1, 0.5, 4.0) == 0.1
    # Euler multiplies a mode of rate L by 1 - tau L: the secant estimate L caps tau at 1 / L
    assert flow_step_size(v, 1.0, 0.5, 4.0, lipschitz=10.0) == pytest.approx(0.1, rel=1e-15)
    assert flow_step_size(v, 1.0, 0.5, 4.0, lipschitz=1.0) == pytest.approx(0.2, rel=1e-15)
    assert flow_step_size(v, 1.0, 0.5, 4.0, lipschitz=float("inf")) == pytest.approx(0.2)
    with pytest.raises(SpectralError, match="not finite"):
        flow_step_size(torch.full((2, 2), float("nan"), dtype=F64), 0.1, 0.5, 4.0)


def test_flow_rule_is_invariant_to_duplicating_the_training_set() -> None:
    """The flow rule moves particles by the N-independent field (N / eps^2) v / m: with eps
    fixed, every training point repeated 10 times gives the same P spectrum (plus zeros),
    eigenvectors Phi (x) 1 / sqrt(10), Kt / 10 and p, D unchanged, so the code's kernel is
    1/10 of the original and N / eps^2 is 10x: the trajectory is the same. The old rule
    with a fixed step size moves 10x less on the copies: the test can tell them apart."""
    target = CircleTarget()
    train = target.sample(120, seed=3)
    x0 = target.sample(40, seed=4) * 1.05
    eps = 0.1  # fixed: the median rule's eps depends on N and on the duplicates
    one = get_sampler("dmps", bandwidth=eps).fit(train, target)
    ten = get_sampler("dmps", bandwidth=eps).fit(train.repeat(10, 1), target)
    a, b = one.run(x0, 15, seed=0), ten.run(x0, 15, seed=0)
    assert a.info["n_modes_used"] == b.info["n_modes_used"]
    moved = float((a.particles - x0).norm(dim=1).median())
    assert moved > 0.05  # the particles did move (a 15-step run of this field)
    # exact in exact arithmetic; measured 2e-13 in float64 (eigh of 120 vs 1,200 rows),
    # 1e-8 leaves room for other BLAS builds
    assert float((a.particles - b.particles).abs().max()) < 1e-8
    assert a.info["flow_time"] == pytest.approx(b.info["flow_time"], rel=1e-8)
    # the previous unnormalised transport with one fixed h: 10x smaller first move
    h = a.info["step_size"]
    old1 = get_sampler("dmps", bandwidth=eps, step_rule="first_step", step_size=h, max_step=None)
    old10 = get_sampler("dmps", bandwidth=eps, step_rule="first_step", step_size=h, max_step=None)
    d1 = old1.fit(train, target).run(x0, 1, seed=0).particles - x0
    d10 = old10.fit(train.repeat(10, 1), target).run(x0, 1, seed=0).particles - x0
    assert float(d1.norm() / d10.norm()) == pytest.approx(10.0, rel=1e-8)


def test_default_step_rule_is_invariant_to_duplicating_the_training_set() -> None:
    """The default "first_step" rule fixes h so that the first step moves the median particle
    0.2 sqrt(eps): with eps fixed, every training point repeated 10 times scales the code's
    field by 1/10 (as in the flow test above), h by 10, and the clip bound sqrt(eps) is
    unchanged, so the whole trajectory is the same. With the default bandwidth (median
    heuristic fixed from N = 1,000 on) eps itself moves by < 1 % under such duplication
    (tests/common/test_geometry.py), where the old median rule shrank it by 25 %."""
    target = CircleTarget()
    train = target.sample(120, seed=3)
    x0 = target.sample(40, seed=4) * 1.05
    eps = 0.1
    one = get_sampler("dmps", bandwidth=eps).fit(train, target)
    ten = get_sampler("dmps", bandwidth=eps).fit(train.repeat(10, 1), target)
    a, b = one.run(x0, 15, seed=0), ten.run(x0, 15, seed=0)
    assert a.info["step_rule"].startswith("auto: first step")
    assert float((a.particles - x0).norm(dim=1).median()) > 0.05  # it moved
    # exact in exact arithmetic; 2e-13 measured for the flow rule's same eigh, 1e-8 for BLAS
    assert float((a.particles - b.particles).abs().max()) < 1e-8
    assert b.info["step_size"] == pytest.approx(10 * a.info["step_size"], rel=1e-8)


def test_first_step_rule_is_kept_for_comparison(circle_run) -> None:
    sampler, x0, _ = circle_run
    old = get_sampler("dmps", step_rule="first_step").fit(sampler.train, sampler.target)
    res = old.run(x0, 1, seed=0)
    assert res.info["step_rule"].startswith("auto: first step")
    h = auto_step_size(x0, old.kernel, old.Phi, old.w, fraction=0.2)
    assert res.info["step_size"] == pytest.approx(h, rel=1e-12)
