"""pytest-benchmark: sparse (kNN, k = "auto", the DMPS default) DMPS fit and transport step.

Fit (kNN kernel + top-500 eigenpairs with residuals by DMPS's automatic sparse solver:
ARPACK at N = 20,000, d = 16; block Lanczos with float32 products at N = 60,000, d = 6); one
transport direction at m = 1,024 particles, K = 500 modes, N = 20,000 (d = 16, brute-force kNN) and
N = 60,000 (d = 6, the dimension of the Fashion-MNIST latents, KD-tree kNN).

Run: pytest tests/bench/test_bench_sparse_dmps.py --benchmark-only
"""

from __future__ import annotations

from functools import cache

import pytest
import torch

from samplers.core.eigensolvers import sparse_top_eigenpairs
from samplers.core.sparse_diffusion_map import SparseDiffusionMapKernel
from samplers.core.spectral import transport_direction
from samplers.dmps import sparse_solver_for

# k = "auto": 1,250 at N = 20,000 in d = 16 and 416 at N = 60,000 (the NNZ budget clip).
# A fixed small k would time a different kernel: k = 64 in d = 16 leaves P self-loop
# dominated (median P_aa 0.91) and its top-500 solve slower than the default's.
M, K, KNN = 1024, 500, "auto"


def _points(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@cache
def step_problem(n: int, d: int):
    """Sparse kernel on N(0, I_d), orthonormal (N, K) modes, positive weights, particles."""
    kernel = SparseDiffusionMapKernel.fit(_points(n, d, 0), KNN).to(dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    Phi = torch.linalg.qr(torch.randn(n, K, generator=gen, dtype=torch.float64)).Q
    w = torch.rand(K, generator=gen, dtype=torch.float64) + 0.1
    return kernel, Phi.contiguous(), w, _points(M, d, 2)


@pytest.mark.parametrize(("n", "d"), [(20000, 16), (60000, 6)])
def test_bench_sparse_step(benchmark, n, d):
    kernel, Phi, w, x = step_problem(n, d)
    benchmark.group = f"sparse dmps step m={M} N={n} d={d} K={K}"
    v = benchmark.pedantic(
        lambda: transport_direction(kernel, x, Phi, w), rounds=5, iterations=1, warmup_rounds=1
    )
    assert v.shape == (M, d) and bool(torch.isfinite(v).all())


@pytest.mark.parametrize(("n", "d"), [(20000, 16), (60000, 6)])
def test_bench_sparse_fit(benchmark, n, d):
    X = _points(n, d, 3)
    benchmark.group = f"sparse dmps fit N={n} d={d} K={K}"
    solver = sparse_solver_for(n)

    def fit():
        kernel = SparseDiffusionMapKernel.fit(X, KNN)
        return kernel, sparse_top_eigenpairs(kernel.markov_matrix(), K, method=solver)

    kernel, eig = benchmark.pedantic(fit, rounds=1, iterations=1, warmup_rounds=0)
    assert eig.eigenvectors.shape == (n, K)
    benchmark.extra_info["solver"] = eig.method
    benchmark.extra_info["n_tail_widened"] = kernel.n_widened
    benchmark.extra_info["max_residual"] = eig.max_residual
    benchmark.extra_info["eigensolve_seconds"] = eig.seconds
