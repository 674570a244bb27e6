"""DMPS scaling: spectral-fit and transport-step time against the number N of targets.

Targets: N i.i.d. N(0, I_16) points (d = 16), K = 500 modes, m = 1024 particles, 2 threads.
For each N: the kernel fit (bandwidth, degrees), the eigensolve (``solver="auto"``: dense
LAPACK up to N = 3000, block Lanczos until converged above), the largest relative
eigen-residual |P v - lam v| / |lam_1| of the K returned pairs in float64 (a reference-free
accuracy check; ``converged``: at most 1e-6), the fast transport step
(median of ``--repeats``) and, unless ``--no-brute``, the brute-force (m, N, d) step
(particle chunks of 128, so at most 128 x N x d floats per chunk), the reference notebook's
literal O(m^2 N d) form (same chunks) and the speed-ups over both.

    python -m benchmarks.studies.scaling_dmps            # writes results/dmps/scaling.{md,csv}
    python -m benchmarks.studies.scaling_dmps --sizes 1000 2000 --no-brute --out /tmp/scaling

The machine load (os.getloadavg) is recorded: on a shared machine absolute times inflate,
while ratios measured in one process stay meaningful.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from threadpoolctl import threadpool_limits

import benchmarks._imports  # noqa: F401  (guards the local ``datasets`` package)
from benchmarks.execution.provenance import produced_by
from benchmarks.presentation.tables import markdown_table
from samplers.core.eigensolvers import EIG_TOL, relative_residuals
from samplers.core.spectral import (
    DENSE_MAX_N,
    DiffusionMapKernel,
    brute_force_transport_step,
    diffusion_map_spectrum,
    lawgd_weights,
    notebook_transport_step,
    spectral_transport_step,
)

COMMAND = "python -m benchmarks.studies.scaling_dmps"


def gaussian_points(n: int, d: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen, dtype=torch.float64)


def time_call(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2], out


def measure(n: int, *, d: int, k: int, m: int, repeats: int, brute: bool, seed: int) -> dict:
    X = gaussian_points(n, d, seed)
    t0 = time.perf_counter()
    kernel = DiffusionMapKernel.fit(X)
    t_kernel = time.perf_counter() - t0
    spec = diffusion_map_spectrum(kernel, k, seed=seed)
    t_fit = time.perf_counter() - t0
    lam, Phi = spec.eigenvalues, spec.eigenvectors
    if "eig_max_residual" in spec.info:  # the truncated solver measured its own, in float64
        residual, converged = spec.info["eig_max_residual"], spec.info["eig_converged"]
    else:
        P = kernel.markov_matrix()
        res = relative_residuals(P.numpy(), lam.numpy(), Phi.numpy())
        residual, converged = float(res.max()), bool(res.max() <= EIG_TOL)
        del P
    w = lawgd_weights(lam, kernel.eps)
    keep = w > 0
    Phi, w = Phi[:, keep].contiguous(), w[keep]
    x = 0.5 * gaussian_points(m, d, seed + 1)
    h = 1.0
    t_step, fast = time_call(lambda: spectral_transport_step(x, kernel, Phi, w, h), repeats)
    row = {
        "N": n,
        "d": d,
        "K": k,
        "m": m,
        "solver": spec.solver,
        "kernel_fit_s": t_kernel,
        "eigensolve_s": spec.seconds,
        "fit_total_s": t_fit,
        "max_residual": residual,
        "converged": converged,
        "lambda_K": float(lam[-1]),
        "step_s": t_step,
    }
    if brute:
        t_brute, slow = time_call(
            lambda: brute_force_transport_step(x, kernel, Phi, w, h, chunk_size=128), 1
        )
        t_nb, literal = time_call(
            lambda: notebook_transport_step(x, kernel, Phi, w, h, chunk_size=128), 1
        )
        row["brute_step_s"] = t_brute
        row["notebook_step_s"] = t_nb
        row["speedup_vs_brute"] = t_brute / t_step
        row["speedup_vs_notebook"] = t_nb / t_step
        row["max_abs_diff"] = max(
            float((fast - slow).abs().max()), float((fast - literal).abs().max())
        )
    return row


def write(rows: list[dict], out: Path, args: argparse.Namespace, load: tuple) -> None:
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df.to_csv(out / "scaling.csv", index=False)
    cmd = " ".join([COMMAND, *sys.argv[1:]])
    lines = [
        "# DMPS scaling: spectral fit and one transport step",
        "",
        produced_by(cmd),
        "",
        f"d = {args.dim}, K = {args.modes}, m = {args.particles}, float64 (block-Lanczos "
        "products in float32, residuals in float64), "
        f"torch threads = {torch.get_num_threads()}, {platform.machine()}, "
        f"dense solver up to N = {DENSE_MAX_N}. Load average at start / end: "
        f"{load[0]:.1f} / {os.getloadavg()[0]:.1f} (shared machine: absolute times inflate, "
        "ratios within one run hold).",
        "",
        markdown_table(df),
        "",
    ]
    (out / "scaling.md").write_text("\n".join(lines))


DEFAULT_SIZES = [1000, 2000, 5000, 10000, 20000]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--modes", type=int, default=500)
    parser.add_argument("--particles", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-brute", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/dmps"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    rows = []
    with threadpool_limits(args.threads):
        for n in args.sizes:
            row = measure(
                n,
                d=args.dim,
                k=args.modes,
                m=args.particles,
                repeats=args.repeats,
                brute=not args.no_brute,
                seed=args.seed,
            )
            print(row, flush=True)
            rows.append(row)
            write(rows, args.out, args, load)


if __name__ == "__main__":
    main()
