"""The streaming (blockwise, O(n) memory) path of the Sinkhorn divergence against the dense
POT path and an independent brute-force log-domain solve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.geometry import relative_eps
from metrics.sinkhorn import DENSE_COPIES, sinkhorn_divergence
from metrics.streaming_sinkhorn import softmin_rows
from tests.metrics.test_metrics import _brute_divergence, _cloud

REPO = Path(__file__).resolve().parents[2]


def test_streaming_matches_the_dense_solve_at_n_2000():
    # The acceptance check: same iterations (POT's Sinkhorn-Knopp sequence, its
    # every-10th-iteration stop) in the log domain, so the values differ by rounding only;
    # 1e-8 relative is the bar, ~1e-15 is what identical iterates give.
    x, y = _cloud(2000, 16, 1), 1.2 * _cloud(2000, 16, 2, shift=0.25)
    eps = relative_eps(y, 0.05)
    dense = sinkhorn_divergence(x, y, eps=eps, path="dense")
    stream = sinkhorn_divergence(x, y, eps=eps, path="streaming")
    assert dense.converged and stream.converged, (dense.info, stream.info)
    assert dense.info["path"] == "dense" and stream.info["path"] == "streaming"
    assert stream.info["iterations"] == dense.info["iterations"]
    assert stream.value == pytest.approx(dense.value, rel=1e-8)
    for k, v in dense.info["ot_values"].items():
        assert stream.info["ot_values"][k] == pytest.approx(v, rel=1e-10)


@pytest.mark.parametrize("fraction", [0.5, 0.05])
def test_streaming_matches_brute_force_and_is_block_size_free(fraction):
    x, y = _cloud(40, 2, 5), _cloud(30, 2, 6, shift=0.7)
    eps = relative_eps(y, fraction)
    ref = _brute_divergence(x, y, eps, iters=1500)
    values = []
    for chunk_bytes in (8 * 30, 8 * 30 * 7, None):  # 1 row, 7 rows, everything per block
        res = sinkhorn_divergence(
            x, y, eps=eps, tol=1e-9, max_iter=20_000, path="streaming", chunk_bytes=chunk_bytes
        )
        assert res.converged, res.info
        values.append(res.value)
    assert values[0] == pytest.approx(ref, rel=1e-6, abs=1e-9)
    assert max(values) - min(values) <= 1e-12 * max(1.0, abs(ref))


def test_streaming_reports_the_same_unconverged_iterate_as_dense():
    # stopped by max_iter between two convergence checks: both paths evaluate the 7th iterate
    x, y = _cloud(300, 3, 3), _cloud(200, 3, 4, shift=0.5)
    eps = relative_eps(y, 0.01)
    dense = sinkhorn_divergence(x, y, eps=eps, max_iter=7, path="dense")
    stream = sinkhorn_divergence(x, y, eps=eps, max_iter=7, path="streaming")
    assert not dense.converged and not stream.converged
    assert stream.info["message"].startswith("streaming Sinkhorn did not converge")
    assert stream.info["iterations"]["xy"] == dense.info["iterations"]["xy"] == 7
    assert stream.info["ot_values"]["xy"] == pytest.approx(dense.info["ot_values"]["xy"], rel=1e-12)
    assert stream.info["marginal_error"]["xy"] == pytest.approx(
        dense.info["marginal_error"]["xy"], rel=1e-9
    )


@pytest.mark.slow  # ~3 min on the loaded 2-core machine: thousands of iterations at this eps
def test_streaming_stays_finite_where_the_scaling_domain_overflows():
    # 0.002 x median: max C / eps ~ 1e4 (e^{-C/eps} underflows), where the dense path has to
    # switch to POT's log solver; the streaming path is log-domain throughout
    x, y = _cloud(60, 2, 5), _cloud(50, 2, 6, shift=0.7)
    eps = relative_eps(y, 0.002)
    dense = sinkhorn_divergence(x, y, eps=eps, path="dense", method="log")
    stream = sinkhorn_divergence(x, y, eps=eps, path="streaming")
    assert stream.info["max_cost_over_eps"] > 5000
    assert dense.converged and stream.converged
    assert stream.value == pytest.approx(dense.value, rel=1e-9)


def test_auto_path_follows_the_memory_budget():
    x, y = _cloud(100, 2, 7), _cloud(80, 2, 8, shift=0.3)
    eps = relative_eps(y, 0.05)
    need = DENSE_COPIES * 100 * 80 * 8
    dense = sinkhorn_divergence(x, y, eps=eps, memory_budget=need)
    stream = sinkhorn_divergence(x, y, eps=eps, memory_budget=need - 1)
    assert (dense.info["path"], stream.info["path"]) == ("dense", "streaming")
    assert stream.value == pytest.approx(dense.value, rel=1e-9)


def test_softmin_rows_is_the_logsumexp_of_the_full_matrix():
    x, y = _cloud(13, 3, 9), _cloud(11, 3, 10)
    h = torch.linspace(-1, 1, 11, dtype=torch.float64)
    c = ((x[:, None] - y[None]) ** 2).sum(-1)
    ref = -0.3 * torch.logsumexp(h[None] - c / 0.3, dim=1)
    for chunk in (1, 4, 13):
        torch.testing.assert_close(softmin_rows(x, y, h, 0.3, chunk=chunk), ref)
    c_self = ((x[:, None] - x[None]) ** 2).sum(-1)
    ref_self = -0.3 * torch.logsumexp(-c_self / 0.3, dim=1)
    zero = torch.zeros(13, dtype=torch.float64)
    torch.testing.assert_close(softmin_rows(x, x, zero, 0.3, chunk=5, zero_diagonal=True), ref_self)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_streaming_on_cuda_matches_cpu():
    x, y = _cloud(500, 16, 11), _cloud(400, 16, 12, shift=0.2)
    eps = relative_eps(y, 0.05)
    cpu = sinkhorn_divergence(x, y, eps=eps, path="streaming")
    cuda = sinkhorn_divergence(x.cuda(), y.cuda(), eps=eps, path="streaming")
    dense_cuda = sinkhorn_divergence(x.cuda(), y.cuda(), eps=eps, path="dense")
    assert cpu.converged and cuda.converged
    assert cuda.value == pytest.approx(cpu.value, rel=1e-10)
    assert dense_cuda.value == pytest.approx(cpu.value, rel=1e-8)


_INTERPRETED = """
import torch
from metrics.streaming_sinkhorn import softmin_rows
from metrics.triton_softmin import softmin_rows_triton
g = torch.Generator().manual_seed(0)
x = torch.randn(70, 5, generator=g, dtype=torch.float64)  # not multiples of the block sizes
y = torch.randn(90, 5, generator=g, dtype=torch.float64)
h = torch.linspace(-2, 1, 90, dtype=torch.float64)
k = torch.linspace(-1, 1, 70, dtype=torch.float64)
e1 = (softmin_rows_triton(x, y, h, 0.3) - softmin_rows(x, y, h, 0.3, chunk=16)).abs().max()
e2 = (softmin_rows_triton(x, x, k, 0.3, zero_diagonal=True)
      - softmin_rows(x, x, k, 0.3, chunk=16, zero_diagonal=True)).abs().max()
print(float(max(e1, e2)))
"""


def test_fused_triton_softmin_matches_the_torch_blocks_in_the_interpreter():
    # Triton's interpreter (TRITON_INTERPRET=1, read when triton is imported: a fresh process)
    # runs the kernel's own code on the CPU; a GPU compiles the same code
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", _INTERPRETED], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    # values ~ eps log n: float64 rounding of the two summation orders, ~1e-15
    assert float(out.stdout.strip().splitlines()[-1]) <= 1e-12


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fused_triton_softmin_on_cuda_gives_the_torch_value():
    x, y = _cloud(3000, 16, 15).cuda(), _cloud(2500, 16, 16, shift=0.2).cuda()
    eps = relative_eps(y, 0.05)
    torch_path = sinkhorn_divergence(x, y, eps=eps, path="streaming")
    fused = sinkhorn_divergence(x, y, eps=eps, path="streaming", softmin_kernel="triton")
    assert fused.converged and fused.info["iterations"] == torch_path.info["iterations"]
    assert fused.value == pytest.approx(torch_path.value, rel=1e-10)
