"""Shared kernel helpers (pairwise squared distances, bandwidth heuristics)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def pairwise_sq_dists(x: Tensor, y: Tensor) -> Tensor:
    """|x_i - y_j|^2, shape (m, n), clamped at 0 (matmul form, no (m, n, d) tensor)."""
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return d2.clamp_min_(0.0)


def median_heuristic_svgd(d2: Tensor) -> float:
    """SVGD bandwidth h = med^2 / log(m + 1) (Liu & Wang 2016), med = median pairwise distance."""
    m = d2.shape[0]
    med2 = torch.median(d2.detach().flatten()).item()
    h = med2 / math.log(m + 1)
    return max(h, 1e-12)
