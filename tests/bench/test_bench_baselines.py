"""Timing of one step of KSD descent, the Riesz MMD flow and MALA at m = 1024 particles,
N = 5000 training points, d = 16; exact vs sliced MMD gradient also at m = N = 20000.

Run: OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 pytest tests/bench/test_bench_baselines.py \
        --benchmark-only --benchmark-json results/benchmarks/baselines.json
Torch threads: BENCH_THREADS (default 1), set for this module and restored after (the
tests' conftest asks for 2, which on a shared, loaded machine makes small ops ~10x slower).
The exact MMD gradient at m = N = 20000 (8e8 pairs) is one chunked round (256 rows per
chunk, ~80 MB), marked slow; everything else uses pytest-benchmark's default rounds.
"""

from __future__ import annotations

import os

import pytest
import torch

from samplers import get_sampler
from samplers.core.riesz_mmd import riesz_gradient_exact, riesz_gradient_sliced
from samplers.core.scores import KDEScore
from samplers.core.stein_kernels import RadialKernel
from samplers.ksd_descent import DifferentiableScore, _LBFGSStepper, ksd_loss_and_grad
from tests.helpers.gaussian import GaussianTarget

M, N, D = 1024, 5000, 16
BENCH_THREADS = int(os.environ.get("BENCH_THREADS", "1"))


@pytest.fixture(scope="module", autouse=True)
def bench_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(BENCH_THREADS)
    yield
    torch.set_num_threads(before)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.fixture(scope="module")
def problem():
    cov = 0.5 * torch.eye(D, dtype=torch.float64) + 0.5
    target = GaussianTarget(torch.zeros(D), cov)
    return target, target.sample(N, seed=0), _randn(M, D, seed=1)


def _extra(benchmark, **kw):
    benchmark.extra_info.update({"m": M, "N": N, "d": D, "torch_threads": torch.get_num_threads()})
    benchmark.extra_info.update(kw)


@pytest.mark.parametrize("source", ["exact", "kde"])
def test_ksd_gd_step(benchmark, problem, source):
    """One gradient-descent step = one KSD^2 + gradient evaluation (score VJP included)."""
    target, train, x = problem
    fn = target.score if source == "exact" else KDEScore(train)
    score = DifferentiableScore(fn, target, source)
    kernel = RadialKernel("gaussian", 1.0)
    _extra(benchmark, what="ksd_descent gd step", score=source)
    value, grad = benchmark(ksd_loss_and_grad, x, score, kernel)
    assert torch.isfinite(grad).all()


def test_ksd_lbfgs_step(benchmark, problem):
    """One L-BFGS iteration from a fresh optimiser (initial evaluation + line search)."""
    target, train, x = problem
    score = DifferentiableScore(target.score, target, "exact")
    kernel = RadialKernel("gaussian", 1.0)
    counts = {"evals": 0}

    def loss_grad(z, beta):
        counts["evals"] += 1
        return ksd_loss_and_grad(z, score, kernel, beta)

    def setup():
        return (_LBFGSStepper(loss_grad, M, 1.0, 0), x), {}

    benchmark.pedantic(lambda stepper, z: stepper(z, 0), setup=setup, rounds=5)
    _extra(benchmark, what="ksd_descent lbfgs iteration", loss_evals_total=counts["evals"])


@pytest.mark.parametrize("gradient", ["exact", "sliced"])
def test_mmd_gradient_step(benchmark, problem, gradient):
    """One Euler step's gradient of the Riesz (r = 1) MMD flow; sliced with P = 256."""
    _, train, x = problem
    gen = torch.Generator().manual_seed(0)
    if gradient == "exact":
        g = benchmark(riesz_gradient_exact, x, train, 1.0, 2048)
    else:
        g = benchmark(riesz_gradient_sliced, x, train, 256, gen)
    _extra(benchmark, what=f"mmd_flow {gradient} gradient", n_projections=256)
    assert torch.isfinite(g).all()


def test_mala_step(benchmark, problem):
    """MALA run with n_steps = 1 (includes the initial log p and score evaluation)."""
    target, train, x = problem
    sampler = get_sampler("mala", adapt_fraction=0.0).fit(train, target)
    res = benchmark(sampler.run, x, 1, seed=0)
    _extra(benchmark, what="mala step (run with n_steps=1)")
    assert res.info["steps"] == 1


@pytest.fixture(scope="module")
def big_problem():
    return _randn(20_000, D, seed=2), _randn(20_000, D, seed=3) + 0.5


def test_mmd_sliced_gradient_20000(benchmark, big_problem):
    x, y = big_problem
    gen = torch.Generator().manual_seed(0)
    benchmark.pedantic(riesz_gradient_sliced, args=(x, y, 256, gen), rounds=3)
    benchmark.extra_info.update(
        {"m": 20_000, "N": 20_000, "d": D, "torch_threads": BENCH_THREADS, "n_projections": 256}
    )


@pytest.mark.slow
def test_mmd_exact_gradient_20000(benchmark, big_problem):
    """Exact pairwise gradient at m = N = 20000: one round, chunked by 256 rows."""
    x, y = big_problem
    benchmark.pedantic(riesz_gradient_exact, args=(x, y, 1.0, 256), rounds=1, iterations=1)
    benchmark.extra_info.update(
        {"m": 20_000, "N": 20_000, "d": D, "torch_threads": BENCH_THREADS, "chunk_size": 256}
    )
