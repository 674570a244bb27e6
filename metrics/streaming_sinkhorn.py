"""Log-domain Sinkhorn solves in O(n) memory: the cost matrix is never stored.

Every update is a soft-min over one axis of C_ij = |x_i - y_j|^2,

    T(h)_i = -eps log sum_j exp(h_j - C_ij / eps),       (m,) from h (n,),

evaluated block by block: ``chunk`` rows of x at a time, their (chunk, n) block of
h_j - C_ij / eps made by one matrix product with a fused bias (|x_i|^2 / eps, constant along a
row, is taken out of the log-sum-exp and subtracted after it), used and freed (peak memory
~3 x chunk x n x 8 bytes on top of the
O(m + n) potentials; the rows of a block are independent, so no running maximum across
blocks is needed: each row's log-sum-exp is complete within its block). The iterations are
those of the dense solvers in :mod:`metrics.sinkhorn`, in the log domain:

- cross term OT_eps(a, b): the Sinkhorn-Knopp / POT iteration from f = 0,
  g = T_y(log a + f / eps) (the softmin over x), then f = T_x(log b + g / eps); every
  10th iteration (0, 10, 20, ...) it stops when the L2 column-marginal error is below
  tol / sqrt(max(m, n)) (POT's test; it implies the L1 test of :func:`finish`). The column
  marginal b exp((g - T_y(log a + f / eps)) / eps) needs the next g-update, so the check of
  iteration k is read off iteration k + 1's first half and, when it passes, iteration k's
  potentials are returned: the same iterates, stopping iteration and value as POT's
  ``sinkhorn_knopp`` / ``sinkhorn_log`` up to rounding (tested at n = 2,000).
- symmetric term OT_eps(a, a): Feydy's averaged fixed point f <- (f + T(f)) / 2 with the
  diagonal of C set to exactly 0, stopping on the L1 marginal error each iteration.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from metrics.sinkhorn_core import Solve, finish, symmetric_fixed_point

CHUNK_BYTES = {"cpu": 2 * 2**20, "cuda": 256 * 2**20}
"""Bytes of one (chunk, n) float64 block of C by device type (default 2 MiB elsewhere):
small on the CPU, so that a block and the log-sum-exp's one temporary stay in the caches
(on the 2-core machine, 2 MiB L2 a core, a soft-min pass costs about 3.5x less time per
entry with 2 MiB blocks than with 32 MiB ones: the "block size" table of
``results/metrics/streaming_memory.md``, ``python -m benchmarks.studies.metric_memory``);
larger on a GPU, where each block is a few kernel launches."""


def chunk_rows(n_cols: int, device: torch.device, chunk_bytes: int | None = None) -> int:
    """Rows per block so that one (rows, n_cols) float64 block takes ``chunk_bytes``."""
    budget = chunk_bytes or CHUNK_BYTES.get(device.type, 2 * 2**20)
    return max(1, min(budget // (8 * max(n_cols, 1)), 1 << 20))


def softmin_rows(
    x: Tensor,
    y: Tensor,
    h: Tensor,
    eps: float,
    *,
    chunk: int,
    zero_diagonal: bool = False,
    kernel: str = "torch",
) -> Tensor:
    """T(h)_i = -eps logsumexp_j(h_j - |x_i - y_j|^2 / eps) for x (m, d), y (n, d), h (n,)
    -> (m,), ``chunk`` rows of x per block; ``zero_diagonal``: C_ii = 0 exactly (x is y);
    ``kernel="triton"``: the fused online kernel of :mod:`metrics.triton_softmin` (CUDA or
    Triton's interpreter; same value to rounding, no block in memory)."""
    if kernel == "triton":
        from metrics.triton_softmin import softmin_rows_triton

        return softmin_rows_triton(x, y, h, eps, zero_diagonal=zero_diagonal)
    if kernel != "torch":
        raise ValueError(f"kernel must be 'torch' or 'triton', got {kernel!r}")
    # |x_i|^2 is constant along row i, so it leaves the log-sum-exp:
    # T(h)_i = |x_i|^2 - eps logsumexp_j(h_j - |y_j|^2 / eps + 2 x_i . y_j / eps),
    # one GEMM with the bias row fused (addmm) and the log-sum-exp: few passes over a block
    bias = h - (y * y).sum(1) / eps
    x_sq = (x * x).sum(1) / eps
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], chunk):
        stop = min(start + chunk, x.shape[0])
        block = torch.addmm(bias[None, :], x[start:stop], y.T, alpha=2.0 / eps)
        if zero_diagonal:  # C_ii = 0: the entry is h_i, before |x_i|^2 / eps is taken out
            block.diagonal(offset=start).copy_(h[start:stop] + x_sq[start:stop])
        out[start:stop] = torch.logsumexp(block, dim=1) - x_sq[start:stop]
        del block
    return out.mul_(-eps)


def max_sq_distance(x: Tensor, y: Tensor, *, chunk: int) -> float:
    """max_ij |x_i - y_j|^2, blockwise (O(chunk n) memory)."""
    y_sq = (y * y).sum(1)
    best = 0.0
    for xs in x.split(chunk):
        block = (xs @ y.T).mul_(-2.0).add_((xs * xs).sum(1)[:, None]).add_(y_sq[None, :])
        best = max(best, float(block.max()))
    return best


def cross_streaming(
    x: Tensor,
    y: Tensor,
    a: Tensor,
    b: Tensor,
    eps: float,
    max_iter: int,
    tol: float,
    *,
    chunk_bytes: int | None = None,
    kernel: str = "torch",
) -> Solve:
    """OT_eps(a, b) between x (m, d) and y (n, d) by blockwise log-domain Sinkhorn.

    Same iterates and stopping rule as POT's dense solvers (module docstring); returns the
    dual value with the potentials, L1 marginal error and primal-dual gap of :func:`finish`.
    """
    rows_x = chunk_rows(y.shape[0], x.device, chunk_bytes)
    rows_y = chunk_rows(x.shape[0], y.device, chunk_bytes)
    log_a, log_b = a.log(), b.log()
    stop = tol / math.sqrt(max(x.shape[0], y.shape[0]))
    f = torch.zeros_like(a)
    g = softmin_rows(y, x, log_a + f / eps, eps, chunk=rows_y, kernel=kernel)
    prev: tuple[Tensor, Tensor, int] | None = None  # (f, g, k) of a check to read next
    it = 0
    col = b
    for it in range(max_iter):
        if it > 0:
            g_next = softmin_rows(y, x, log_a + f / eps, eps, chunk=rows_y, kernel=kernel)
            if prev is not None:
                col = b * torch.exp((prev[1] - g_next) / eps)
                err_l2 = float((col - b).norm())
                if not math.isfinite(err_l2) or err_l2 < stop:
                    f, g, it = prev[0], prev[1], prev[2]
                    break
                prev = None
            g = g_next
        f = softmin_rows(x, y, log_b + g / eps, eps, chunk=rows_x, kernel=kernel)
        if it % 10 == 0:
            prev = (f, g, it)
    else:
        # max_iter reached (or a check pending on the last iteration): evaluate the last iterate
        g_next = softmin_rows(y, x, log_a + f / eps, eps, chunk=rows_y, kernel=kernel)
        col = b * torch.exp((g - g_next) / eps)
    row = a * torch.exp(
        (f - softmin_rows(x, y, log_b + g / eps, eps, chunk=rows_x, kernel=kernel)) / eps
    )
    value, err, gap, finite = finish(a, b, f, g, row, col, eps)
    ok = finite and err <= tol
    iterations = it + 1
    msg = ""
    if not ok:
        msg = (
            f"streaming Sinkhorn did not converge on the cross term: marginal error {err:.3g} "
            f"> tol {tol:.3g} after {iterations} iterations (max_iter {max_iter})"
            if finite
            else "streaming Sinkhorn hit non-finite potentials on the cross term"
        )
    return Solve(value, f, g, iterations, "streaming-log", err, gap, ok, msg)


def symmetric_streaming(
    x: Tensor,
    a: Tensor,
    eps: float,
    max_iter: int,
    tol: float,
    *,
    chunk_bytes: int | None = None,
    kernel: str = "torch",
) -> Solve:
    """OT_eps(a, a) for x (n, d) by the averaged fixed point f <- (f + T(f)) / 2, blockwise.

    T(f)_i = -eps logsumexp_j(log a_j + (f_j - C_ij) / eps) with C_ii = 0; the row marginal
    of P_ij = a_i a_j e^{(f_i + f_j - C_ij)/eps} is a e^{(f - T(f))/eps}; L1 stop each iteration.
    """
    rows = chunk_rows(x.shape[0], x.device, chunk_bytes)
    log_a = a.log()

    def transform(f: Tensor) -> Tensor:
        return softmin_rows(
            x, x, log_a + f / eps, eps, chunk=rows, zero_diagonal=True, kernel=kernel
        )

    return symmetric_fixed_point(
        a,
        transform,
        eps,
        max_iter,
        tol,
        what="symmetric streaming Sinkhorn",
        label="symmetric-streaming-log",
    )
