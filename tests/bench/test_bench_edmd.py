"""Timing of the EDMD-KSWGD fit pieces (pytest-benchmark; skipped by default).

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=. pytest tests/bench/test_bench_edmd.py --benchmark-only
--benchmark-json results/benchmarks/edmd.json``. N = 1000 points of a 2-D two-mode mixture.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.random import make_generator
from samplers.core.edmd import (
    SparseDictionary,
    edmd_spectrum,
    kernel_edmd_spectrum,
    langevin_pairs,
    transport_modes,
)

N = 1000


def _points() -> torch.Tensor:
    gen = make_generator(0)
    z = 0.4 * torch.randn(N, 2, generator=gen, dtype=torch.float64)
    side = (torch.rand(N, generator=gen) < 0.5).double() * 2 - 1
    return z + torch.stack([1.2 * side, torch.zeros(N, dtype=torch.float64)], 1)


@pytest.fixture(scope="module")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    x = _points()
    y, _ = langevin_pairs(x, 0.1, make_generator(1))
    return x.numpy(), y.numpy()


def test_bench_langevin_pairs(benchmark) -> None:
    x = _points()
    y, _ = benchmark(langevin_pairs, x, 0.1, make_generator(1))
    assert y.shape == x.shape and math.isfinite(float(y.abs().max()))


def test_bench_sparse_dictionary_fit(benchmark, pairs) -> None:
    x, _ = pairs
    d = benchmark(lambda: SparseDictionary().fit(x, seed=0))
    assert d.transform(x).shape == (N, 101)


def test_bench_dictionary_edmd_eig(benchmark, pairs) -> None:
    x, y = pairs
    d = SparseDictionary().fit(x, seed=0)
    psi_x, psi_y = d.transform(x), d.transform(y)
    modes = benchmark(lambda: transport_modes(edmd_spectrum(psi_x, psi_y, 0.1)))
    assert modes.phi.shape[0] == N and np.all(modes.weights > 0)


def test_bench_kernel_edmd(benchmark, pairs) -> None:
    x, y = pairs
    spec = benchmark(kernel_edmd_spectrum, x, y, 0.1)
    assert spec.efuns.shape[0] == N
