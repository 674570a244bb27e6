"""Memory and agreement of the Sinkhorn divergence's two paths on the CPU.

``python -m benchmarks.studies.metric_memory`` runs each case in a fresh process (one torch
thread) and reads its peak resident memory with ``resource.getrusage`` (ru_maxrss), then
writes ``results/metrics/streaming_memory.md``: the streaming path at n = 12,000 and 30,000,
d = 16 (the issue's bar: <= 1.5 GB resident at 12,000), the dense path up to 12,000, the two
paths' values at n = 2,000 (the bar: 1e-8 relative), and the time per entry of one streaming
soft-min pass by block size (the choice of ``metrics.streaming_sinkhorn.CHUNK_BYTES``).
Data as ``benchmarks.studies.gpu_study``: x ~ N(0, I_16), y ~ 1.2 N(0, I_16) + 0.3,
eps = 0.05 x median |y - y'|^2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.execution.environment import git_commit
from benchmarks.execution.provenance import produced_by

OUT = Path("results/metrics/streaming_memory.md")
CASES = (
    (2_000, "dense"),
    (2_000, "streaming"),
    (5_000, "dense"),
    (12_000, "dense"),
    (12_000, "streaming"),
    (30_000, "streaming"),
)
D = 16
BLOCK_SIZES_MIB = (32, 8, 2, 1)
"""Streaming block sizes timed for one soft-min pass (the choice of ``CHUNK_BYTES["cpu"]``)."""
BLOCK_SIZE_N = (2_000, 12_000)

OBJECTIVE = """\
## Which objective

All three report the full entropic OT_eps(a, b) = min_P <P, C> + eps KL(P | a x b), read off
the dual potentials, not the "linear term only" <C, P> that POT's `sinkhorn2` returns:

- this project: <a, f> + <b, g> - eps (sum P - 1) (the dual value; the mass term vanishes at
  convergence), cost |x - y|^2, debiased S = OT(a, b) - OT(a, a) / 2 - OT(b, b) / 2
  (`metrics/sinkhorn.py`, both paths);
- geomloss `SamplesLoss("sinkhorn", p=2, debias=True)`: <a, f> + <b, g> on the cost
  |x - y|^2 / 2 with eps = blur^2, reached by eps-scaling (annealing, `scaling`) for a fixed
  number of steps, with no marginal check (so OT_eps(C) = 2 x its value at blur = sqrt(eps/2));
- flash-sinkhorn `SamplesLoss("sinkhorn", debias=True)`: the same dual value <a, f> + <b, g>
  on the full cost |x - y|^2 (`half_cost=False`, eps = blur^2), by default in float32 with
  TF32 products and eps-scaling.

So a difference between them is not the objective: it is the annealed, unchecked
convergence of the peers and their float32/TF32 arithmetic (`benchmarks.studies.gpu_study`
measures the agreement in `results/gpu/metric.md`).
"""


def child(n: int, path: str) -> dict:
    import resource

    import torch

    from common import random
    from common.geometry import relative_eps
    from metrics.sinkhorn import sinkhorn_divergence

    torch.set_num_threads(1)
    gen = random.make_generator(n)
    x = random.randn(n, D, generator=gen)
    y = 1.2 * random.randn(n, D, generator=gen) + 0.3
    eps = relative_eps(y, 0.05)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0 = time.perf_counter()
    res = sinkhorn_divergence(x, y, eps=eps, path=path)
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {
        "n": n,
        "path": res.info["path"],
        "value": res.value,
        "converged": res.converged,
        "iterations": res.info["iterations"],
        "seconds": secs,
        "peak_GB": peak,
        "before_GB": base,
    }


def block_sizes() -> list[dict]:
    """Seconds per entry of one soft-min pass (median of 3, after one warm-up) by block size."""
    import torch

    from common import random
    from metrics.streaming_sinkhorn import chunk_rows, softmin_rows

    torch.set_num_threads(1)
    rows = []
    for n in BLOCK_SIZE_N:
        gen = random.make_generator(n)
        x = random.randn(n, D, generator=gen)
        y = 1.2 * random.randn(n, D, generator=gen) + 0.3
        h = random.randn(n, generator=gen)
        for mib in BLOCK_SIZES_MIB:
            chunk = chunk_rows(n, x.device, mib * 2**20)
            softmin_rows(x, y, h, 2.0, chunk=chunk)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                softmin_rows(x, y, h, 2.0, chunk=chunk)
                times.append(time.perf_counter() - t0)
            rows.append({"n": n, "MiB": mib, "rows": chunk, "ns": sorted(times)[1] / n / n * 1e9})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("N", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--child-blocks", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1])))
        return
    if args.child_blocks:
        print(json.dumps(block_sizes()))
        return
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    rows = []
    commit = git_commit()
    load0 = os.getloadavg()
    for n, path in CASES:
        cmd = [sys.executable, "-m", "benchmarks.studies.metric_memory", "--child", str(n), path]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    cmd = [sys.executable, "-m", "benchmarks.studies.metric_memory", "--child-blocks"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    blocks = json.loads(out.stdout.strip().splitlines()[-1])
    load1 = os.getloadavg()
    import torch

    from metrics.streaming_sinkhorn import CHUNK_BYTES

    pair = {r["path"]: r["value"] for r in rows if r["n"] == 2_000}
    rel = abs(pair["streaming"] - pair["dense"]) / abs(pair["dense"])
    lines = [
        "# Sinkhorn divergence: streaming vs dense path, memory on the CPU",
        "",
        produced_by("python -m benchmarks.studies.metric_memory", commit),
        "",
        f"torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} cores, one torch "
        f"and BLAS thread, each case in a fresh process; load average {load0[0]:.1f} before, "
        f"{load1[0]:.1f} after (a shared machine: times are indicative). x ~ N(0, I_{D}), "
        f"y ~ 1.2 N(0, I_{D}) + 0.3, eps = 0.05 x median |y - y'|^2, tol 1e-5 (L1 marginal). "
        "Peak = ru_maxrss of the process (torch and the imports included; `before` = after "
        "the imports and data).",
        "",
        "| n | path | S_eps | converged | iterations (xy, xx, yy) | seconds | before GB "
        "| peak GB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        it = r["iterations"]
        lines.append(
            f"| {r['n']:,} | {r['path']} | {r['value']:.12g} | {r['converged']} | "
            f"{it['xy']}, {it['xx']}, {it['yy']} | {r['seconds']:.1f} | {r['before_GB']:.2f} | "
            f"{r['peak_GB']:.2f} |"
        )
    lines += [
        "",
        f"Agreement at n = 2,000: |streaming - dense| / |dense| = {rel:.2e} (bar: 1e-8; the "
        "same iterations in the log domain, so rounding only; tested in "
        "`tests/metrics/test_streaming_sinkhorn.py`).",
        "",
        "## Block size",
        "",
        "One streaming soft-min pass T(h)_i = -eps logsumexp_j(h_j - |x_i - y_j|^2 / eps), "
        "n x n entries, float64, one thread, median of 3: the default CPU block "
        f"(`CHUNK_BYTES['cpu']`) is {CHUNK_BYTES['cpu'] / 2**20:g} MiB.",
        "",
        "| n | block MiB | rows per block | ns per entry |",
        "|---|---|---|---|",
        *(f"| {b['n']:,} | {b['MiB']} | {b['rows']} | {b['ns']:.2f} |" for b in blocks),
        "",
        OBJECTIVE,
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
