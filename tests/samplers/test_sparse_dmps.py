"""Sparse kNN diffusion-map kernel, residual-checked eigensolver and DMPS kernel option,
checked against the dense kernel, dense eigh and autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.geometry import capped_median_bandwidth_sq, median_bandwidth_sq, reference_bandwidth_sq
from datasets import get_target
from samplers import SamplerError, get_sampler
from samplers.core.eigensolvers import relative_residuals, sparse_top_eigenpairs
from samplers.core.sparse_diffusion_map import BANDWIDTH_C, SparseDiffusionMapKernel, knn_search
from samplers.core.spectral import DiffusionMapKernel, SpectralError, transport_direction
from tests.helpers.gaussian import GaussianTarget

F64 = torch.float64
BLOB = GaussianTarget(torch.zeros(2), torch.eye(2), name="blob")


def points(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def dense_kernel_matrix(X: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.exp(-torch.cdist(X, X).pow(2) / (2 * eps))


@pytest.mark.parametrize("d", [3, 12])  # KD-tree (d <= 8) and brute-force kNN
def test_knn_search_is_exact(d: int) -> None:
    X, q = points(300, d, 0), points(40, d, 1)
    tree_or_none = SparseDiffusionMapKernel.fit(X, 10).tree
    d2, idx = knn_search(q, X, 10, tree=tree_or_none)
    full = torch.cdist(q, X).pow(2)
    ref_d2, ref_idx = torch.topk(full, 10, dim=1, largest=False)
    torch.testing.assert_close(d2, ref_d2, rtol=1e-10, atol=1e-12)
    assert torch.equal(idx, ref_idx)  # continuous data: no ties


def test_sparse_entries_above_knn_cutoff_equal_dense_and_markov_rows_sum_to_one() -> None:
    X, k = points(200, 3, 2), 15
    eps = 0.3
    kern = SparseDiffusionMapKernel.fit(X, k, eps, neighbour_mass=0.0)  # one global eps
    dense = dense_kernel_matrix(X, eps)
    # rebuild W from P's pattern: every kept entry is the dense kernel value ...
    P = kern.markov_matrix().tocoo()
    W = torch.zeros(200, 200, dtype=F64)
    rows, cols = torch.from_numpy(P.row).long(), torch.from_numpy(P.col).long()
    W[rows, cols] = dense[rows, cols]
    # ... and every dense entry above its row's k-th neighbour value is kept
    cutoff = torch.topk(dense, k, dim=1).values[:, -1:]
    above = dense >= cutoff
    assert bool((W[above] == dense[above]).all())
    assert bool(((W > 0) == (above | above.T)).all())  # union symmetrisation, nothing more
    # normalisation as the dense kernel, applied to the truncated W
    p = W.sum(1)
    kt = W / torch.sqrt(p[:, None] * p[None, :])
    D = kt.sum(1)
    torch.testing.assert_close(kern.p, p, rtol=1e-12, atol=0)
    torch.testing.assert_close(kern.D, D, rtol=1e-12, atol=0)
    P_ref = 0.5 * (kt / D[None, :] + kt / D[:, None])
    torch.testing.assert_close(torch.from_numpy(kern.markov_matrix().toarray()), P_ref)
    # the Markov matrix diag(1/D) Kt is row-stochastic
    torch.testing.assert_close((kt / D[:, None]).sum(1), torch.ones(200, dtype=F64))


def test_all_neighbours_reproduce_the_dense_kernel() -> None:
    X, x = points(80, 2, 3), 1.2 * points(7, 2, 4)
    dense = DiffusionMapKernel.fit(X)
    sparse = SparseDiffusionMapKernel.fit(X, 80)  # k = N: every pair kept
    assert sparse.eps == pytest.approx(dense.eps, rel=1e-12)  # rule never exceeds the dense eps
    torch.testing.assert_close(sparse.p, dense.p, rtol=1e-12, atol=0)
    torch.testing.assert_close(sparse.D, dense.D, rtol=1e-12, atol=0)
    torch.testing.assert_close(
        torch.from_numpy(sparse.markov_matrix().toarray()), dense.markov_matrix()
    )
    torch.testing.assert_close(sparse.evaluate_dense(x), dense.evaluate(x), rtol=1e-10, atol=1e-14)
    Phi = torch.linalg.qr(points(80, 5, 5)).Q
    w = torch.rand(5, generator=torch.Generator().manual_seed(6), dtype=F64) + 0.1
    torch.testing.assert_close(
        transport_direction(sparse, x, Phi, w), transport_direction(dense, x, Phi, w)
    )


def test_bandwidth_rule() -> None:
    X, k = points(500, 2, 7), 12
    kern = SparseDiffusionMapKernel.fit(X, k)
    r_k = torch.topk(torch.cdist(X, X).pow(2), k, dim=1, largest=False).values[:, -1]
    rule = float(r_k.median()) / (2 * BANDWIDTH_C)
    assert kern.eps == pytest.approx(min(rule, median_bandwidth_sq(X)), rel=1e-12)
    assert kern.eps < median_bandwidth_sq(X)  # k = 12 of 500 in 2-d: the rule narrows it


def test_bandwidth_scale_widens_the_sparse_kernel_as_the_dense_one() -> None:
    """DMPS's tuner knob ``bandwidth_scale`` multiplies eps on both kernels: with every pair
    kept the sparse kernel at scale 2 is the dense kernel at twice the median eps."""
    X = points(80, 2, 3)
    sparse = SparseDiffusionMapKernel.fit(X, 80, scale=2.0)
    dense = DiffusionMapKernel.fit(X, 2.0 * median_bandwidth_sq(X))
    assert sparse.eps == pytest.approx(dense.eps, rel=1e-12)
    torch.testing.assert_close(
        torch.from_numpy(sparse.markov_matrix().toarray()), dense.markov_matrix()
    )
    narrow = SparseDiffusionMapKernel.fit(X, 12)
    assert SparseDiffusionMapKernel.fit(X, 12, scale=0.5).eps == pytest.approx(0.5 * narrow.eps)
    with pytest.raises(SpectralError, match="scale"):
        SparseDiffusionMapKernel.fit(X, 12, scale=0.0)


def test_tail_rule_against_brute_force() -> None:
    """The per-point bandwidths solve m_a(eps_a) = m where the global eps leaves a point's
    other neighbours less mass than m, and W_ab = exp(-r^2 / (2 max(eps_a, eps_b)))."""
    X, k, m = torch.cat([points(200, 3, 2), torch.tensor([[6.0, 0.0, 0.0]], dtype=F64)]), 15, 1.0
    kern = SparseDiffusionMapKernel.fit(X, k, neighbour_mass=m)
    eps, eps_a = kern.eps, kern.point_eps
    assert eps_a is not None and kern.n_widened > 0
    d2 = torch.cdist(X, X).pow(2)
    nearest = torch.topk(d2, k, dim=1, largest=False).values[:, 1:]  # others, self dropped

    def mass(e: torch.Tensor) -> torch.Tensor:
        return torch.exp(-nearest / (2 * e[:, None])).sum(1)

    cap = median_bandwidth_sq(X)  # the dense kernel's eps bounds every eps_a
    assert eps < cap
    wide, capped = eps_a > eps, eps_a >= cap * (1 - 1e-12)
    solved = wide & ~capped
    assert int(solved.sum()) > 0
    target = torch.full_like(eps_a[solved], m)
    torch.testing.assert_close(mass(eps_a)[solved], target, rtol=1e-9, atol=0)
    assert bool((mass(eps_a)[capped] <= m * (1 + 1e-9)).all())
    assert bool((eps_a <= cap * (1 + 1e-12)).all())
    assert bool((mass(torch.full_like(eps_a, eps))[~wide] >= m).all())
    assert bool((eps_a[~wide] == eps).all())
    assert float(eps_a[-1]) == pytest.approx(float(eps_a.max()))  # the outlier 6 sd out
    # W from the brute-force formula on P's pattern, then the usual normalisation
    P = kern.markov_matrix().tocoo()
    rows, cols = torch.from_numpy(P.row).long(), torch.from_numpy(P.col).long()
    W = torch.zeros(201, 201, dtype=F64)
    pair = torch.maximum(eps_a[rows], eps_a[cols])
    W[rows, cols] = torch.exp(-d2[rows, cols] / (2 * pair))
    p = W.sum(1)
    kt = W / torch.sqrt(p[:, None] * p[None, :])
    D = kt.sum(1)
    P_ref = 0.5 * (kt / D[None, :] + kt / D[:, None])
    torch.testing.assert_close(torch.from_numpy(kern.markov_matrix().toarray()), P_ref)
    # the widened points keep less of their mass on themselves than under the global eps
    old = SparseDiffusionMapKernel.fit(X, k, neighbour_mass=0.0).markov_matrix().diagonal()
    new = kern.markov_matrix().diagonal()
    assert bool((new[solved.numpy()] < old[solved.numpy()]).all())
    # the outlier reaches the cap, where the dense kernel isolates it as well (P_aa ~ 1):
    # connecting it is the dense kernel's connect rule's job, not the kNN budget's
    assert bool(capped[-1]) and new[-1] > 0.99
    assert float(DiffusionMapKernel.fit(X).markov_matrix()[-1, -1]) > 0.99


def test_tail_rule_leaves_well_sampled_data_alone() -> None:
    """Where the global eps already gives every point mass m from its neighbours (a circle
    with the automatic k, as the sparse-vs-dense study) the kernel is bit for bit the
    global-eps one."""
    theta = 2 * torch.pi * torch.rand(800, generator=torch.Generator().manual_seed(15), dtype=F64)
    X = torch.stack([theta.cos(), theta.sin()], dim=1)
    kern = SparseDiffusionMapKernel.fit(X)
    assert kern.point_eps is None and kern.n_widened == 0
    off = SparseDiffusionMapKernel.fit(X, neighbour_mass=0.0)
    assert (kern.markov_matrix() != off.markov_matrix()).nnz == 0
    with pytest.raises(SpectralError, match="neighbour_mass"):
        SparseDiffusionMapKernel.fit(X, 10, neighbour_mass=-1.0)


@pytest.fixture(scope="module", params=[1.0, 0.0], ids=["tail-rule", "global-eps"])
def sparse_setup(request):
    X = points(150, 3, 8)
    # k = 20 of 150: the tail rule widens 68 points (up to 19 eps); 0 switches it off
    kern = SparseDiffusionMapKernel.fit(X, 20, neighbour_mass=request.param)
    assert (kern.n_widened > 0) == (request.param > 0)
    res = sparse_top_eigenpairs(kern.markov_matrix(), 12, method="lanczos")
    w = torch.rand(12, generator=torch.Generator().manual_seed(9), dtype=F64) + 0.1
    x = 1.3 * points(9, 3, 10)
    return kern, res.eigenvectors, w, x


def test_gradient_matches_autograd(sparse_setup) -> None:
    kern, _, _, x = sparse_setup
    grad, idx = kern.gradient(x)
    xr = x.clone().requires_grad_(True)
    vals, _ = kern.evaluate(xr, idx)
    ref = torch.stack(
        [
            torch.autograd.grad(vals[:, j].sum(), xr, retain_graph=True)[0]
            for j in range(vals.shape[1])
        ],
        dim=1,
    )
    torch.testing.assert_close(grad, ref, rtol=1e-9, atol=1e-12)


def test_transport_direction_matches_autograd(sparse_setup) -> None:
    kern, Phi, w, x = sparse_setup
    v = kern.transport_direction(x, Phi, w)
    vals, idx = kern.evaluate(x)
    s = kern.push(vals, idx, Phi, w).detach()
    xr = x.clone().requires_grad_(True)
    vr, _ = kern.evaluate(xr, idx)  # same neighbour sets: s fixed, gradient in x_i only
    (ref,) = torch.autograd.grad((vr * s[idx]).sum(), xr)
    torch.testing.assert_close(v, ref, rtol=1e-9, atol=1e-12)


def test_lanczos_matches_dense_eigh() -> None:
    kern = SparseDiffusionMapKernel.fit(points(400, 3, 11), 25)
    P = kern.markov_matrix()
    res = sparse_top_eigenpairs(P, 30, method="lanczos", tol=1e-8)
    lam, V = np.linalg.eigh(P.toarray())
    lam, V = lam[::-1][:30], V[:, ::-1][:, :30]
    np.testing.assert_allclose(res.eigenvalues.numpy(), lam, rtol=0, atol=1e-10)
    # eigenvectors up to sign (the top 30 are simple here: smallest gap checked)
    assert float(np.diff(lam).__abs__().min()) > 1e-6
    overlap = np.abs(np.sum(res.eigenvectors.numpy() * V, axis=0))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-6)
    assert res.converged and res.max_residual <= 1e-8
    np.testing.assert_allclose(
        res.residuals.numpy(), relative_residuals(P, lam.copy(), V.copy()), atol=1e-8
    )


def test_block_method_matches_dense_eigh() -> None:
    """The block Lanczos on the sparse P (float32 products, float64 residuals): eigenvalues
    as LAPACK's to 1e-6 (the float32 products put a floor of ~1e-7 on the residuals, as on
    the dense kernel), residuals re-measured independently."""
    kern = SparseDiffusionMapKernel.fit(points(2000, 3, 11))  # auto k
    P = kern.markov_matrix()
    # K = 30 is small against the block of 64: the default cap 12 K + 64 stops at 8.5e-6
    res = sparse_top_eigenpairs(P, 30, method="block", max_dim=800)
    assert res.method == "block_lanczos" and res.converged and res.max_residual <= 1e-6
    lam, V = np.linalg.eigh(P.toarray())
    lam = lam[::-1][:30]
    np.testing.assert_allclose(res.eigenvalues.numpy(), lam, rtol=0, atol=1e-6)
    vec = res.eigenvectors.numpy()
    np.testing.assert_allclose(
        res.residuals.numpy(), relative_residuals(P, res.eigenvalues.numpy(), vec), atol=1e-9
    )
    # a cap far too small says so instead of passing
    capped = sparse_top_eigenpairs(P, 30, method="block", max_dim=64)
    assert not capped.converged and "exceed the residual tolerance" in capped.warning


def test_residual_tolerance_is_reported() -> None:
    P = SparseDiffusionMapKernel.fit(points(300, 3, 12), 20).markov_matrix()
    ok = sparse_top_eigenpairs(P, 10, tol=1e-6)
    assert ok.converged and ok.warning is None and ok.info()["eig_converged"]
    # ARPACK stopped on its own loose estimate: the measured residuals are held to tol
    bad = sparse_top_eigenpairs(P, 10, tol=1e-12, arpack_tol=1e-2)
    assert not bad.converged and bad.max_residual > 1e-12
    assert "exceed the residual tolerance" in bad.warning
    assert bad.info()["eig_warning"] == bad.warning and len(bad.info()["eig_residuals"]) > 0


def test_dmps_kernel_option_and_auto_threshold() -> None:
    from samplers.dmps import SPARSE_KERNEL_MIN_N

    train = points(400, 2, 13)
    x0 = 0.5 * points(30, 2, 14)
    s = get_sampler("dmps", n_modes=40, kernel="sparse", n_neighbors=30, bandwidth_rule="reference")
    s.fit(train, BLOB)
    info = s.fit_info
    assert info["kernel"] == "sparse" and info["eig_converged"]
    assert len(info["eig_residuals"]) == 40 and info["eig_max_residual"] <= 1e-6
    # the graph facts, recomputed from the same kernel (the reference bandwidth rule)
    from common.geometry import reference_bandwidth_sq

    P = SparseDiffusionMapKernel.fit(train, 30, rule_eps=reference_bandwidth_sq(train))
    P = P.markov_matrix()
    assert info["n_isolated"] == int((P.diagonal() > 0.99).sum())
    lam_1 = float(sparse_top_eigenpairs(P, 2, method="dense").eigenvalues[1])
    assert info["spectral_gap"] == pytest.approx(1 - lam_1, abs=1e-8)
    out = s.run(x0, 5, seed=0)
    assert out.particles.shape == (30, 2) and bool(torch.isfinite(out.particles).all())
    auto = get_sampler("dmps", n_modes=40)
    auto.fit(train, BLOB)
    assert auto.fit_info["kernel"] == "dense"  # 400 <= SPARSE_KERNEL_MIN_N
    assert SPARSE_KERNEL_MIN_N >= 400
    wide = get_sampler("dmps", n_modes=40, kernel="sparse", n_neighbors=30, bandwidth_scale=2.0)
    assert wide.fit(train, BLOB).fit_info["eps"] == pytest.approx(2 * info["eps"], rel=1e-12)
    with pytest.raises(SamplerError, match="kernel must be"):
        get_sampler("dmps", kernel="banded").fit(train, BLOB)
    with pytest.raises(SamplerError, match="sparse kernel takes solver"):
        get_sampler("dmps", kernel="sparse", solver="topk").fit(train, BLOB)
    # the automatic solver of the sparse kernel: ARPACK up to SPARSE_BLOCK_MIN_N, block above
    assert info["eig_method"] == "lanczos"
    import samplers.dmps

    old_min = samplers.dmps.SPARSE_BLOCK_MIN_N
    try:
        samplers.dmps.SPARSE_BLOCK_MIN_N = 300
        blk = get_sampler("dmps", n_modes=20, kernel="sparse").fit(train, BLOB).fit_info
    finally:
        samplers.dmps.SPARSE_BLOCK_MIN_N = old_min
    assert blk["eig_method"] == "block_lanczos" and blk["eig_converged"]
    assert samplers.dmps.sparse_solver_for(SPARSE_KERNEL_MIN_N + 1) == "block"


def test_auto_neighbours_hold_the_dense_kernel_on_a_circle() -> None:
    theta = 2 * torch.pi * torch.rand(2000, generator=torch.Generator().manual_seed(15), dtype=F64)
    X = torch.stack([theta.cos(), theta.sin()], dim=1)
    kern = SparseDiffusionMapKernel.fit(X)  # n_neighbors="auto"
    eps_dense = capped_median_bandwidth_sq(X)  # the kernels' default bandwidth rule
    # uniform on the circle: the radius sqrt(2 c eps) holds a fraction ~ 2 asin(r / 2) / pi
    r = (2 * BANDWIDTH_C * eps_dense) ** 0.5
    expected = 2000 * 2 * np.arcsin(r / 2) / np.pi
    assert abs(kern.n_neighbors - expected) < 0.1 * expected
    # the clip does not bind: eps is the dense one up to the sampling error of two medians
    assert kern.eps == pytest.approx(eps_dense, rel=0.03)


def test_lanczos_converges_on_a_fast_decaying_spectrum() -> None:
    # dense bandwidth on a circle: the eigenvalues decay fast towards a cluster at zero;
    # ARPACK's per-Ritz-value relative test could not stop there without the shift by I
    theta = 2 * torch.pi * torch.rand(600, generator=torch.Generator().manual_seed(16), dtype=F64)
    X = torch.stack([theta.cos(), theta.sin()], dim=1)
    P = SparseDiffusionMapKernel.fit(X).markov_matrix()
    res = sparse_top_eigenpairs(P, 150, maxiter=300)
    assert float(res.eigenvalues[-1]) < 1e-3  # deep into the decaying tail
    assert res.converged and res.residuals.numel() == 150


def test_sparse_dmps_follows_the_dense_trajectories_on_a_circle() -> None:
    """Both kernels with their automatic rules (sparse: auto k and eps) from the same start:
    the dropped kernel weights are below exp(-8) ~ 3e-4 of a row's largest, so after 100
    steps the sparse particles stay within 2 % of their displacement from the dense ones
    (measured 0.3 %; the former exp(-3) truncation drifted off the circle: 24 %)."""
    g = torch.Generator().manual_seed(0)
    theta = 2 * torch.pi * torch.rand(600, generator=g, dtype=F64)
    X = torch.stack([theta.cos(), theta.sin()], 1) + 0.05 * torch.randn(600, 2, generator=g)
    a = 0.6 * torch.rand(100, generator=g, dtype=F64)
    x0 = 1.15 * torch.stack([a.cos(), a.sin()], 1)
    end = {}
    for kind in ("dense", "sparse"):
        s = get_sampler("dmps", kernel=kind)
        s.fit(X.to(F64), get_target("circle"))
        end[kind] = s.run(x0, 100, seed=0).particles
    moved = (end["dense"] - x0).norm(dim=1).mean()
    assert float(moved) > 0.1  # the particles did travel along the circle
    gap = (end["dense"] - end["sparse"]).norm(dim=1).mean()
    assert float(gap / moved) < 0.02


def test_sparse_fit_reports_isolated_points_and_a_closed_gap() -> None:
    from samplers.core.connectivity import sparse_graph_info

    def facts(X: torch.Tensor, mass: float) -> dict:
        P = SparseDiffusionMapKernel.fit(X, neighbour_mass=mass).markov_matrix()  # k = "auto"
        return sparse_graph_info(P, sparse_top_eigenpairs(P, 5, method="dense").eigenvalues)

    blob = points(300, 3, 20)
    clean = facts(blob, 1.0)  # auto k = 216 of 300: no point keeps 99 % of its mass
    assert clean["n_isolated"] == 0 and clean["n_eigenvalues_above_one"] == 0
    assert clean["spectral_gap"] > 1e-2 and clean["max_self_weight"] < 0.99
    # with the tail rule off, a far outlier: its neighbours lie ~50 away,
    # exp(-r^2 / (2 eps)) underflows to 0, so it keeps all its mass (P_aa = 1) and adds an
    # eigenvalue 1 next to the constant mode
    with_outlier = torch.cat([blob, torch.tensor([[50.0, 0.0, 0.0]], dtype=F64)])
    out = facts(with_outlier, 0.0)
    assert out["n_isolated"] == 1 and out["max_self_weight"] == pytest.approx(1.0, abs=1e-12)
    assert out["spectral_gap"] < 1e-10
    # the tail rule widens no further than the dense kernel's eps, which isolates it too
    ruled = facts(with_outlier, 1.0)
    assert ruled["n_isolated"] == 1 and ruled["spectral_gap"] < 1e-10


def test_landmarks_keep_the_rule_bandwidth_when_the_knn_budget_binds(monkeypatch) -> None:
    """Uniform points on the unit circle: the share within r^2 <= 2 c eps is
    f = 2 asin(r / 2) / pi, so a budget B holds N' = sqrt(B / f) points (a closed form to
    hold landmark_count to). With a budget too small for every point, "auto" fits on N'
    seeded points at the rule's eps, while "off" keeps all N and narrows eps to the budget's
    k-th neighbour (the issue-24 failure at N = 60,000)."""
    import samplers.core.sparse_diffusion_map as sdm
    from datasets.base import Target
    from samplers.core.sparse_diffusion_map import landmark_count, neighbour_fraction

    class CircleTarget(Target):
        def __init__(self) -> None:
            super().__init__(name="unit_circle", dim=2, family="manifolds")

        def _sample(self, n, gen):
            t = 2 * torch.pi * torch.rand(n, generator=gen, dtype=F64)
            return torch.stack([t.cos(), t.sin()], dim=1)

    theta = 2 * torch.pi * torch.rand(3000, generator=torch.Generator().manual_seed(21), dtype=F64)
    X = torch.stack([theta.cos(), theta.sin()], dim=1)
    eps = 0.01
    r = (2 * sdm.BANDWIDTH_C * eps) ** 0.5
    f = 2 * np.arcsin(r / 2) / np.pi  # 0.127
    # the median over 512 probes of a binomial share: within a few % of f
    assert neighbour_fraction(X, eps) == pytest.approx(f, rel=0.05)
    assert landmark_count(X, eps, budget=200_000) == pytest.approx((200_000 / f) ** 0.5, rel=0.05)
    assert landmark_count(X, eps, budget=10**9) == 3000  # the budget holds every point

    monkeypatch.setattr(sdm, "NNZ_BUDGET", 200_000)  # N' ~ 1,250 of 3,000
    common = dict(n_modes=30, kernel="sparse", bandwidth_rule="reference", solver="lanczos")
    auto = get_sampler("dmps", **common).fit(X, CircleTarget()).fit_info
    off = get_sampler("dmps", landmarks="off", **common).fit(X, CircleTarget()).fit_info
    rule = reference_bandwidth_sq(X)
    assert auto["n_landmarks"] == landmark_count(X, rule) < 3000
    assert auto["n_train"] == 3000 and off["n_landmarks"] == 3000
    # the rule's eps, kept up to the sampling error of two medians (the automatic k counts
    # the rule's support, and eps = min(rule, median k-th neighbour distance^2 / 2c))
    assert auto["eps"] == pytest.approx(rule, rel=0.03)
    assert off["eps"] < 0.6 * rule  # the budget's k-th neighbour narrowed it
    again = get_sampler("dmps", **common).fit(X, CircleTarget())
    assert torch.equal(
        again.kernel.X, get_sampler("dmps", **common).fit(X, CircleTarget()).kernel.X
    )


def test_auto_kernel_above_the_dense_limit_is_the_dense_kernel_on_seeded_landmarks(
    monkeypatch,
) -> None:
    """Above SPARSE_KERNEL_MIN_N, "auto" fits the exact (dense) kernel on a seeded subset of
    SPARSE_KERNEL_MIN_N points when the kNN budget would hold fewer (issue 24: the kNN
    truncation perturbs the small eigenvalues the LAWGD weights amplify); the reference is
    the dense fit on that subset drawn by hand (at the rule's eps of all N), which must give
    the same modes and the same trajectory bit for bit. Where the budget holds more points,
    the sparse kernel stays."""
    import samplers.core.sparse_diffusion_map as sdm
    import samplers.dmps as dmps_mod

    train = points(400, 2, 31)
    x0 = 0.5 * points(20, 2, 32)
    monkeypatch.setattr(dmps_mod, "SPARSE_KERNEL_MIN_N", 300)
    monkeypatch.setattr(sdm, "NNZ_BUDGET", 20_000)  # f ~ 0.5 here: N' ~ 200 < 300
    auto = get_sampler("dmps", n_modes=40).fit(train, BLOB)
    info = auto.fit_info
    assert info["kernel"] == "dense" and info["n_landmarks"] == 300
    assert info["n_train"] == 400 and info["n_train_offered"] == 400
    gen = torch.Generator().manual_seed(0)
    subset = train[torch.randperm(400, generator=gen)[:300].sort().values]
    # the bandwidth rule reads all 400 points (as the sparse landmarks' does)
    eps = dmps_mod.rule_bandwidth(train, "capped_median")
    by_hand = get_sampler("dmps", n_modes=40, kernel="dense", bandwidth=eps).fit(subset, BLOB)
    assert torch.equal(auto.kernel.X, subset)
    assert torch.equal(auto.w, by_hand.w) and torch.equal(auto.Phi, by_hand.Phi)
    out, ref = auto.run(x0, 5, seed=0), by_hand.run(x0, 5, seed=0)
    assert torch.equal(out.particles, ref.particles)
    # a budget that holds more than SPARSE_KERNEL_MIN_N points keeps the sparse kernel
    monkeypatch.setattr(sdm, "NNZ_BUDGET", 10**9)
    wide = get_sampler("dmps", n_modes=40).fit(train, BLOB).fit_info
    assert wide["kernel"] == "sparse" and wide["n_landmarks"] == 400
    # forcing a kernel, or the old landmark rule, keeps every point
    off = get_sampler("dmps", n_modes=40, landmarks="off").fit(train, BLOB).fit_info
    assert off["kernel"] == "sparse" and off["n_landmarks"] == 400
