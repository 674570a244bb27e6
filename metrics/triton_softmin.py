"""Fused Triton kernel for the streaming soft-min (opt-in, CUDA): one pass per update, no
(chunk, n) block in memory at all.

T(h)_i = |x_i|^2 - eps logsumexp_j(bias_j + (2 / eps) x_i . y_j), bias_j = h_j - |y_j|^2 / eps
(the form of :func:`metrics.streaming_sinkhorn.softmin_rows`), in float64: each program holds
BLOCK_M rows of x, walks y in BLOCK_N columns and keeps a running maximum and a rescaled sum
per row (online log-sum-exp), so the only memory traffic is reading y once per row block.
The dot products are d outer-product updates (float64 FMA; no tensor-core dot). Used by
``softmin_rows`` when ``metrics.streaming_sinkhorn.USE_TRITON`` is set (default off until a
GPU run has compared it with the torch blocks: ``benchmarks.studies.gpu_study``); tested on
the CPU with Triton's interpreter (``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

BLOCK_M, BLOCK_N = 32, 64


@triton.jit
def _softmin_kernel(
    x_ptr, y_ptr, bias_ptr, diag_ptr, out_ptr, m, n, alpha,
    D: tl.constexpr, ZERO_DIAG: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    rmask = rows < m
    run_max = tl.full((BLOCK_M,), float("-inf"), tl.float64)
    run_sum = tl.zeros((BLOCK_M,), tl.float64)
    for start in range(0, n, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        cmask = cols < n
        acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float64)
        for k in tl.static_range(D):
            xk = tl.load(x_ptr + rows * D + k, mask=rmask, other=0.0)
            yk = tl.load(y_ptr + cols * D + k, mask=cmask, other=0.0)
            acc += xk[:, None] * yk[None, :]
        bias = tl.load(bias_ptr + cols, mask=cmask, other=0.0)
        val = alpha * acc + bias[None, :]
        if ZERO_DIAG:
            diag = tl.load(diag_ptr + rows, mask=rmask, other=0.0)
            val = tl.where(rows[:, None] == cols[None, :], diag[:, None], val)
        val = tl.where(cmask[None, :], val, float("-inf"))
        new_max = tl.maximum(run_max, tl.max(val, axis=1))
        run_sum = run_sum * tl.exp(run_max - new_max) + tl.sum(tl.exp(val - new_max[:, None]), 1)
        run_max = new_max
    tl.store(out_ptr + rows, run_max + tl.log(run_sum), mask=rmask)


def softmin_rows_triton(
    x: Tensor, y: Tensor, h: Tensor, eps: float, *, zero_diagonal: bool = False
) -> Tensor:
    """Same value as :func:`metrics.streaming_sinkhorn.softmin_rows` (float64, (m,))."""
    x, y, h = x.contiguous(), y.contiguous(), h.contiguous()
    bias = h - (y * y).sum(1) / eps
    x_sq = (x * x).sum(1) / eps
    diag = (h[: x.shape[0]] + x_sq) if zero_diagonal else x_sq
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    grid = (triton.cdiv(x.shape[0], BLOCK_M),)
    _softmin_kernel[grid](
        x, y, bias, diag.contiguous(), out, x.shape[0], y.shape[0], 2.0 / eps,
        D=x.shape[1], ZERO_DIAG=zero_diagonal, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N,
    )  # fmt: skip
    return (out - x_sq) * -eps
