"""What every entropic OT solve of :mod:`metrics.sinkhorn` returns, and how its value and
convergence facts are read off the dual potentials (shared by the dense and streaming paths)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Solve:
    """One entropic OT solve: value, potentials and the facts recorded in ``info``."""

    value: float
    f: Tensor
    g: Tensor
    iterations: int
    method: str
    marginal_error: float
    gap: float
    converged: bool
    message: str = ""


def finish(
    a: Tensor, b: Tensor, f: Tensor, g: Tensor, row: Tensor, col: Tensor, eps: float
) -> tuple[float, float, float, bool]:
    """Dual value <a,f> + <b,g> - eps (mass - 1), L1 marginal error, primal-dual gap, finite.

    The primal objective of the current (slightly infeasible) plan P, <P,C> + eps KL(P|a b),
    equals <r,f> + <c,g> - eps (mass - 1) for row/col sums r, c, so the gap to the dual value
    is <r - a, f> + <c - b, g>: an indicator of how far the value is from converged.
    """
    mass = row.sum()
    value = float(a @ f + b @ g - eps * (mass - 1.0))
    err = float((row - a).abs().sum() + (col - b).abs().sum())
    gap = float((row - a) @ f + (col - b) @ g)
    finite = bool(torch.isfinite(f).all() and torch.isfinite(g).all()) and math.isfinite(value)
    return value, err, gap, finite and math.isfinite(err)
