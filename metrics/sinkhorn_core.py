"""What every entropic OT solve of :mod:`metrics.sinkhorn` returns, and how its value and
convergence facts are read off the dual potentials (shared by the dense and streaming paths)."""

from __future__ import annotations

import math
from collections.abc import Callable
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


def symmetric_fixed_point(
    a: Tensor,
    transform: Callable[[Tensor], Tensor],
    eps: float,
    max_iter: int,
    tol: float,
    *,
    what: str,
    label: str,
) -> Solve:
    """OT_eps(a, a) by the averaged symmetric fixed point f <- (f + T(f)) / 2 for a
    soft-min ``transform`` T (dense or blockwise): the row marginal of
    P_ij = a_i a_j e^{(f_i + f_j - C_ij)/eps} is r = a e^{(f - T(f))/eps}, and the loop stops
    when |r - a|_1 (times 2) <= ``tol``. ``what`` names the solver in messages, ``label`` in
    the result."""
    f = torch.zeros_like(a)
    tf = transform(f)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (iteration count is reported)
        f = 0.5 * (f + tf)
        tf = transform(f)
        row = a * torch.exp((f - tf) / eps)
        err = float(2.0 * (row - a).abs().sum())
        if not math.isfinite(err) or err <= tol:
            break
    row = a * torch.exp((f - tf) / eps)
    value, err, gap, finite = finish(a, a, f, f, row, row, eps)
    ok = finite and err <= tol
    msg = ""
    if not ok:
        msg = (
            f"{what} did not converge: marginal error {err:.3g} > tol {tol:.3g} after {it} "
            "iterations"
            if finite
            else f"{what} hit non-finite potentials"
        )
    return Solve(value, f, f, it, label, err, gap, ok, msg)
