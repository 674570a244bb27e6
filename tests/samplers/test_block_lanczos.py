"""Block Lanczos top-k eigensolver (the dense-kernel "topk" solver of DMPS), checked against
LAPACK's full eigh on a known spectrum and on a diffusion-map Markov matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samplers.core.eigensolvers import block_lanczos_eigenpairs, relative_residuals
from samplers.core.errors import SpectralError
from samplers.core.spectral import DiffusionMapKernel, diffusion_map_spectrum

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def known_operator(n: int, lam: torch.Tensor, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen(seed), dtype=F64))
    return q @ torch.diag(lam) @ q.T


def test_block_lanczos_recovers_a_known_spectrum() -> None:
    # 40 leading eigenvalues spread over [0.6, 1], then a slowly decaying tail: the cut at
    # k = 40 has a gap of 0.1 to the next eigenvalue, so every pair can converge to 1e-6
    n, k = 600, 40
    lam = torch.cat([torch.linspace(1.0, 0.6, k), 0.5 * 0.995 ** torch.arange(n - k)]).double()
    A = known_operator(n, lam, 0)
    res = block_lanczos_eigenpairs(lambda v: A @ v, n, k, block_size=8)
    assert res.method == "block_lanczos" and res.converged and res.warning is None
    # Ritz values of converged pairs are exact to residual^2 / gap: far below 1e-10
    torch.testing.assert_close(res.eigenvalues, lam[:k], rtol=0, atol=1e-10)
    V = res.eigenvectors
    torch.testing.assert_close(V.T @ V, torch.eye(k, dtype=F64), rtol=0, atol=1e-10)
    # residuals re-measured here, independently of the solver's own bookkeeping
    mine = relative_residuals(A.numpy(), res.eigenvalues.numpy(), V.numpy())
    assert float(mine.max()) <= 1e-6
    np.testing.assert_allclose(res.residuals.numpy(), mine, rtol=1e-6, atol=1e-14)


def test_topk_spectrum_matches_dense_eigh_on_a_diffusion_map() -> None:
    X = torch.randn(900, 5, generator=gen(1), dtype=F64)
    kernel = DiffusionMapKernel.fit(X)
    k = 60
    dense = diffusion_map_spectrum(kernel, k, solver="dense")
    topk = diffusion_map_spectrum(kernel, k, solver="topk")  # float32 products, float64 check
    info = topk.info
    assert topk.solver == "topk" and info["eig_converged"] and info["eig_n_returned"] == k
    assert info["eig_max_residual"] <= 1e-6 and len(info["eig_residuals"]) == k
    # eigenvalue error of a pair with residual r is at most r (Bauer-Fike, symmetric A)
    torch.testing.assert_close(topk.eigenvalues, dense.eigenvalues, rtol=0, atol=1e-6)
    P = kernel.markov_matrix()
    mine = relative_residuals(P.numpy(), topk.eigenvalues.numpy(), topk.eigenvectors.numpy())
    assert float(mine.max()) <= 1e-6
    # same invariant subspace where the cut falls in a gap (the top 60 are separated here)
    lam = dense.eigenvalues
    assert float(lam[k - 1] - torch.linalg.eigvalsh(P)[-(k + 1)]) > 1e-3
    proj_d = dense.eigenvectors @ dense.eigenvectors.T
    proj_t = topk.eigenvectors @ topk.eigenvectors.T
    assert float((proj_d - proj_t).abs().max()) < 1e-4


def test_unconverged_fit_says_so_and_residuals_come_from_the_checking_operator() -> None:
    n, k = 400, 20
    lam = torch.cat([torch.linspace(1.0, 0.9, k), 0.89 * 0.999 ** torch.arange(n - k)]).double()
    A = known_operator(n, lam, 2)
    # a space of 2k vectors cannot resolve 20 eigenvalues within 1e-2 of a dense tail
    short = block_lanczos_eigenpairs(lambda v: A @ v, n, k, block_size=4, max_dim=2 * k)
    assert not short.converged and short.max_residual > 1e-6
    assert "exceed the residual tolerance" in short.warning
    # a converged solve checked against a perturbed operator reports the perturbation
    E = torch.randn(n, n, generator=gen(3), dtype=F64)
    E = 1e-4 * (E + E.T) / torch.linalg.matrix_norm(E + E.T, ord=2)
    checked = block_lanczos_eigenpairs(
        lambda v: A @ v, n, k, block_size=4, residual_apply=lambda v: (A + E) @ v
    )
    assert 1e-7 < checked.max_residual <= 1e-4 and not checked.converged


def test_bad_requests_raise() -> None:
    A = torch.eye(10, dtype=F64)
    with pytest.raises(SpectralError, match="k <= N"):
        block_lanczos_eigenpairs(lambda v: A @ v, 10, 11)
    with pytest.raises(SpectralError, match="max_dim"):
        block_lanczos_eigenpairs(lambda v: A @ v, 10, 8, block_size=2, max_dim=4)


def test_low_precision_products_are_refined_in_float64_to_tolerance() -> None:
    # float16 products (10-bit mantissa, as TF32's, which a GPU may use for float32 products)
    # stall the Lanczos residuals far above 1e-6; the float64 Rayleigh-Ritz steps on
    # span[V, R, A R], R = A V - V lam, must bring every pair to the 1e-6 tolerance, measured
    # here with the float64 operator.
    n, k = 600, 40
    lam = torch.cat([torch.linspace(1.0, 0.6, k), 0.5 * 0.995 ** torch.arange(n - k)]).double()
    A = known_operator(n, lam, 0)
    A16 = A.to(torch.float16)
    coarse = block_lanczos_eigenpairs(lambda v: A16 @ v.to(torch.float16), n, k, block_size=8)
    assert coarse.method == "block_lanczos" and not coarse.converged  # no float64 check given
    res = block_lanczos_eigenpairs(
        lambda v: A16 @ v.to(torch.float16), n, k, block_size=8, residual_apply=lambda v: A @ v
    )
    assert res.method.startswith("block_lanczos+rr64x") and res.converged, res.warning
    mine = relative_residuals(A.numpy(), res.eigenvalues.numpy(), res.eigenvectors.numpy())
    assert float(mine.max()) <= 1e-6
    torch.testing.assert_close(res.eigenvalues, lam[:k], rtol=0, atol=1e-10)
