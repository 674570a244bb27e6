"""support_distance of the manifold and bounded targets against a brute-force distance to
a dense sample of the support.

The dense set D lies on the support S, so d(x, D) >= d(x, S) holds exactly for every x (a
closed form that is too small is caught at once), and d(x, D) <= d(x, S) + h where h is
the covering radius of D on S (the Hausdorff distance of D and S, by the triangle
inequality). h is estimated as the largest distance from fresh support points to D and
doubled for the tolerance (the estimate's maximum is over a finite probe)."""

from __future__ import annotations

import math

import pytest
import torch

from common.geometry import nearest_neighbour_distances
from datasets import get_target
from datasets.manifolds import SphericalShell

MANIFOLDS = {
    # name: dense sample size (random i.i.d. support points)
    "circle": 50_000,
    "two_moons": 50_000,
    "sphere": 100_000,
    "half_sphere": 100_000,
    "torus": 100_000,
    "swiss_roll": 100_000,
}


def _probe(target, seed: int) -> torch.Tensor:
    """Support points moved by Gaussian noise of 0, 1, 10 and 50 % of the target's RMS
    radius (on, near and far from the support), (64 * 4, d)."""
    x = target.sample(64, seed=seed)
    scale = float((x - x.mean(0)).norm(dim=1).pow(2).mean().sqrt())
    gen = torch.Generator().manual_seed(seed + 1)
    noise = torch.randn(4, 64, target.dim, generator=gen, dtype=torch.float64)
    levels = torch.tensor([0.0, 0.01, 0.1, 0.5], dtype=torch.float64)[:, None, None]
    return (x[None] + scale * levels * noise).reshape(-1, target.dim)


def _brute(x: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    return nearest_neighbour_distances(x, dense, chunk=256)


@pytest.mark.parametrize("name", sorted(MANIFOLDS))
def test_manifold_support_distance_matches_dense_sample(name: str) -> None:
    target = get_target(name)
    dense = target.sample(MANIFOLDS[name], seed=11)
    covering = float(_brute(target.sample(300, seed=12), dense).max())
    x = _probe(target, seed=13)
    exact = target.support_distance(x)
    brute = _brute(x, dense)
    assert exact.shape == (x.shape[0],)
    assert bool((brute >= exact - 1e-9).all()), float((exact - brute).max())
    assert bool((brute <= exact + 2 * covering).all()), (float((brute - exact).max()), covering)
    # support points themselves are at distance 0 (to rounding)
    assert float(target.support_distance(target.sample(500, seed=14)).max()) < 1e-9
    # off-support points are seen: the far probes are at a clearly positive distance
    assert float(exact[-64:].mean()) > 10 * covering


def test_shell_distance_is_distance_to_the_annulus() -> None:
    """Shell in R^3 (the same class as shell3 and shell100) against a dense annulus sample,
    and the closed form's radial identity in R^100, where no dense sample is possible."""
    shell = SphericalShell("s", 3, cap_threshold=0.7, metric_eps_fraction=0.05, r_min=0.9)
    dense = shell.sample(100_000, seed=1)
    covering = float(_brute(shell.sample(300, seed=2), dense).max())
    x = _probe(shell, seed=3)
    exact, brute = shell.support_distance(x), _brute(x, dense)
    assert bool((brute >= exact - 1e-9).all())
    assert bool((brute <= exact + 2 * covering).all())
    big = get_target("shell100")
    u = torch.randn(50, 100, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    r = torch.linspace(0.5, 1.5, 50, dtype=torch.float64)[:, None]
    want = (0.99 - r[:, 0]).clamp_min(0) + (r[:, 0] - 1.0).clamp_min(0)
    torch.testing.assert_close(big.support_distance(r * u), want)


def _grid(h: float) -> torch.Tensor:
    g = torch.arange(0.0, 1.0 + h / 2, h, dtype=torch.float64)
    return torch.cartesian_prod(g, g)


BOUNDED = {
    # name: (dense grid of the closed support with spacing h, covering radius bound)
    "uniform_square": lambda h: _grid(h),
    "beta_2_5x5_2": lambda h: _grid(h),
    "dirichlet3": lambda h: _grid(h)[_grid(h).sum(1) <= 1 + 1e-12],
    "uniform_disk": lambda h: torch.cat(
        [
            2 * _grid(h / 2) - 1,
            torch.stack(
                [
                    torch.cos(torch.linspace(0, 2 * math.pi, 20_000, dtype=torch.float64)),
                    torch.sin(torch.linspace(0, 2 * math.pi, 20_000, dtype=torch.float64)),
                ],
                1,
            ),
        ]
    ),
}


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_bounded_support_distance_matches_dense_grid(name: str) -> None:
    target = get_target(name)
    h = 1 / 200
    dense = BOUNDED[name](h)
    if name == "uniform_disk":
        dense = dense[dense.norm(dim=1) <= 1 + 1e-12]
    x = _probe(target, seed=21) * 1.0
    x = torch.cat([x, 0.5 + 3 * (x - 0.5)])  # also points well outside
    exact = target.support_distance(x)
    brute = _brute(x, dense)
    inside = exact == 0
    # a grid of spacing h covers a convex 2-D region within h / sqrt(2) (h on the disk rim,
    # sampled at 2 pi / 20000 there): inside points are within h of the grid, outside
    # points are at exactly their distance from the region up to h
    assert bool((brute >= exact - 1e-9).all())
    assert bool((brute <= exact + h).all()), float((brute - exact).max())
    assert 0 < int(inside.sum()) < x.shape[0]  # both cases are exercised
    assert float(target.support_distance(target.sample(500, seed=22)).max()) == 0.0
