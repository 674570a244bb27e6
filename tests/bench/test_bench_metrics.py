"""pytest-benchmark: debiased Sinkhorn divergence vs three standard POT solves (d = 2).

Run: pytest tests/bench/test_bench_metrics.py --benchmark-only
     --benchmark-json results/benchmarks/metrics.json
"""

from __future__ import annotations

import pytest

from benchmarks.studies.metric_speed import clouds, three_pot_solves
from common.geometry import relative_eps
from metrics.sinkhorn import sinkhorn_divergence


@pytest.mark.parametrize("n", [1000, 5000])
def test_bench_sinkhorn_divergence(benchmark, n):
    x, y = clouds(n)
    eps = relative_eps(y, 0.05)
    benchmark.group = f"sinkhorn n={n}"
    res = benchmark.pedantic(
        lambda: sinkhorn_divergence(x, y, eps=eps), rounds=1, iterations=1, warmup_rounds=0
    )
    assert res.converged


@pytest.mark.parametrize("n", [1000, 5000])
def test_bench_three_pot_solves(benchmark, n):
    x, y = clouds(n)
    eps = relative_eps(y, 0.05)
    benchmark.group = f"sinkhorn n={n}"
    benchmark.pedantic(lambda: three_pot_solves(x.numpy(), y.numpy(), eps), rounds=1, iterations=1)
