"""Timing suite: one step of every registered sampler and the Sinkhorn metric.

Run (one command; JSON in ``results/benchmarks/samplers.json``, table in
``results/benchmarks/summary.md``)::

    python -m benchmarks.studies.timing_summary --run

which is ``pytest tests/bench/test_bench_samplers.py --benchmark-only
--benchmark-json results/benchmarks/samplers.json`` followed by
``python -m benchmarks.studies.timing_summary``. Plain ``pytest`` skips these
(``--benchmark-skip``).

Standard sizes (``STANDARD``): m = 1024 particles, N = 5000 training points, d = 16, on a
Gaussian target with a diagonal covariance (exact score and log density, so every
sampler's needs are met). Each sampler is built with its documented defaults and fitted
once outside the timer; the timer measures ``run(x0, 1)``: one step plus the per-run
overhead of ``Sampler.run`` (input checks, generator seeding), which is what one step costs
inside a suite. ``SIZE_OVERRIDES`` lists the samplers measured at other sizes, and why.
The metric: the debiased Sinkhorn divergence at n = m = 1000 and 5000, d = 2, with the
runner's eps (0.05 x median squared distance of the reference).
CPU always; CUDA cases run when ``torch.cuda.is_available()`` (with
``torch.cuda.synchronize()`` before the clock stops) and are skipped cleanly otherwise.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch

from common.geometry import median_sq_distance
from metrics.base import available_metrics, get_metric
from samplers.base import available_samplers, sampler_class
from tests.helpers.gaussian import GaussianTarget

STANDARD = {"n_particles": 1024, "n_train": 5000, "dim": 16}
#: sampler -> sizes replacing STANDARD (and the reason); empty: every sampler at STANDARD
SIZE_OVERRIDES: dict[str, dict[str, Any]] = {}
METRIC_SIZES = (1000, 5000)

CUDA = pytest.param(
    "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
)
DEVICES = ["cpu", CUDA]


def _info(device: str) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    return {
        "device": device,
        "device_name": name,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def sizes(name: str) -> dict[str, Any]:
    return {**STANDARD, **{k: v for k, v in SIZE_OVERRIDES.get(name, {}).items() if k != "why"}}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@functools.cache
def fitted(name: str, device: str) -> tuple[Any, torch.Tensor]:
    """The sampler fitted on N training points and x0 (m, d), on ``device`` (cached)."""
    s = sizes(name)
    d = s["dim"]
    cov = torch.diag(torch.linspace(0.5, 2.0, d, dtype=torch.float64))
    target = GaussianTarget(torch.zeros(d), cov, name=f"bench_gauss{d}")
    gen = torch.Generator().manual_seed(0)
    train = target.sample(s["n_train"], seed=1).to(device)
    x0 = torch.randn(s["n_particles"], d, generator=gen, dtype=torch.float64).to(device)
    sampler = sampler_class(name)(**s.get("params", {})).fit(train, target)
    _sync(device)
    return sampler, x0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", available_samplers())
def test_sampler_single_step(benchmark, name, device):
    sampler, x0 = fitted(name, device)
    benchmark.group = "sampler step"
    benchmark.extra_info.update(sizes(name), sampler=name, **_info(device))

    def one_step():
        out = sampler.run(x0, 1, seed=0)
        _sync(device)
        return out

    out = benchmark(one_step)
    # generators (sinkhorn_generator) sample in one forward pass and record the ignored budget
    expected_steps = 0 if "n_steps_ignored" in out.info else 1
    assert out.info["steps"] == expected_steps and out.particles.shape == x0.shape


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", METRIC_SIZES)
def test_sinkhorn_metric(benchmark, n, device):
    if "sinkhorn" not in available_metrics():
        pytest.skip("no 'sinkhorn' metric registered")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, generator=gen, dtype=torch.float64).to(device)
    y = (torch.randn(n, 2, generator=gen, dtype=torch.float64) * 1.2 + 0.3).to(device)
    scale = 0.05 * median_sq_distance(y)
    metric = get_metric("sinkhorn")
    benchmark.group = "metric"
    benchmark.extra_info.update(metric="sinkhorn", n=n, dim=2, scale=scale, **_info(device))

    def once():
        res = metric.on(x, y, scale=scale, seed=0)
        _sync(device)
        return res

    res = benchmark.pedantic(once, rounds=3 if n >= 5000 else 5, iterations=1, warmup_rounds=0)
    assert res.converged and res.value > 0
