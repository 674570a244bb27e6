"""DMPS widens a disconnected diffusion-map graph (samplers/core/connectivity.py)."""

from __future__ import annotations

import torch

from samplers import get_sampler
from samplers.core.connectivity import GAP_TOL, connected_spectrum
from tests.helpers.gaussian import GaussianTarget


def _two_clusters(n: int = 200) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    x[: n // 5, 0] += 1.0  # unbalanced: 20 % of the points 10 cluster-widths away
    return x - x.mean(0)


def test_disconnected_graph_is_widened_until_the_gap_opens():
    X = _two_clusters()
    _, _, off = connected_spectrum(X, None, 10, "dense", rule="off")
    assert off["spectral_gap"] < GAP_TOL and off["n_widened"] == 0
    kernel, _, on = connected_spectrum(X, None, 10, "dense")
    assert on["graph_connected"] and on["spectral_gap"] >= GAP_TOL and on["n_widened"] >= 1
    assert on["bandwidth_factor"] == 2.0 ** on["n_widened"]


def test_connected_graph_is_left_alone_and_recorded_in_the_fit_info():
    X = torch.randn(200, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    target = GaussianTarget(torch.zeros(2), torch.eye(2))
    dmps = get_sampler("dmps", n_modes=20).fit(X, target)
    assert dmps.fit_info["n_widened"] == 0 and dmps.fit_info["graph_connected"]
    widened = get_sampler("dmps", n_modes=20).fit(_two_clusters(), target)
    assert widened.fit_info["n_widened"] >= 1
