"""pytest-benchmark: DMPS transport step (fast vs (m, N, d) forms) and spectral fit.

One step at m = 1024 particles, N = 5000 and 20000 targets, d = 16, K = 500 modes:
``fast`` (samplers.core.spectral.spectral_transport_step, O(m N d + N K)), ``brute`` (the full
(m, N, d) gradient tensor contracted with s = S sum_l Kt(x_l)) and ``notebook`` (the
reference notebook's literal double sum, O(m^2 N d)). Both reference forms build the
gradient in particle chunks of 128 (at most 128 x N x d floats, 330 MB at N = 20000 in
float64; the unchunked tensor would be 2.6 GB, plus temporaries). Spectral fit: kernel,
P in float64 and float32 and the block-Lanczos top-500 at N = 20000, d = 16, grown until
every pair converges (relative residual <= 1e-6, measured in float64).

Run: pytest tests/bench/test_bench_dmps.py --benchmark-only
     --benchmark-json results/benchmarks/dmps.json
"""

from __future__ import annotations

from functools import cache

import pytest
import torch

from samplers.core.spectral import (
    DiffusionMapKernel,
    brute_force_transport_step,
    diffusion_map_spectrum,
    notebook_transport_step,
    spectral_transport_step,
)

M, D, K, CHUNK = 1024, 16, 500, 128


def _points(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=gen, dtype=torch.float64)


@cache
def step_problem(n: int):
    """Kernel on N(0, I_16) targets, orthonormal (N, K) modes, positive weights, particles."""
    kernel = DiffusionMapKernel.fit(_points(n, 0))
    gen = torch.Generator().manual_seed(1)
    Phi = torch.linalg.qr(torch.randn(n, K, generator=gen, dtype=torch.float64)).Q
    w = torch.rand(K, generator=gen, dtype=torch.float64) + 0.1
    return kernel, Phi.contiguous(), w, 0.5 * _points(M, 2)


FORMS = {
    "fast": lambda x, kern, Phi, w: spectral_transport_step(x, kern, Phi, w, 1.0),
    "brute": lambda x, kern, Phi, w: brute_force_transport_step(x, kern, Phi, w, 1.0, CHUNK),
    "notebook": lambda x, kern, Phi, w: notebook_transport_step(x, kern, Phi, w, 1.0, CHUNK),
}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("n", [5000, 20000])
def test_bench_transport_step(benchmark, n, form):
    kernel, Phi, w, x = step_problem(n)
    benchmark.group = f"dmps step m={M} N={n} d={D} K={K}"
    fn = FORMS[form]
    rounds = 5 if form == "fast" else 1
    out = benchmark.pedantic(
        lambda: fn(x, kernel, Phi, w), rounds=rounds, iterations=1, warmup_rounds=0
    )
    if form != "fast":
        fast = FORMS["fast"](x, kernel, Phi, w)
        assert float((out - fast).abs().max()) < 1e-10


def test_bench_spectral_fit_20000(benchmark):
    X = _points(20000, 3)
    benchmark.group = "dmps spectral fit N=20000 d=16 K=500"

    def fit():
        kernel = DiffusionMapKernel.fit(X)
        return diffusion_map_spectrum(kernel, K, solver="auto")

    spec = benchmark.pedantic(fit, rounds=1, iterations=1, warmup_rounds=0)
    assert spec.solver == "topk" and spec.eigenvectors.shape == (20000, K)
    assert spec.info["eig_converged"], spec.info["eig_warning"]
    benchmark.extra_info["eigensolve_seconds"] = spec.seconds
    benchmark.extra_info["max_residual"] = spec.info["eig_max_residual"]
