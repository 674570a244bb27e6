"""Top-K eigensolvers for the DMPS spectral fit, and whether the truncated one samples as well.

Matrix: the symmetrised diffusion-map matrix P of N i.i.d. N(0, I_d) points (d = 16,
median-heuristic bandwidth), K = 500. Solvers, timed in one process (ratios hold on a
shared machine even when absolute times inflate):

- ``dense``: numpy LAPACK eigh (syevd) of the full float64 matrix, then the top K;
- ``lapack-subset-f32``: scipy.linalg.eigh(subset_by_index, driver="evr") on float32 P;
- ``krylov`` (the suite's ``topk`` until 66c196c, now :func:`spectral.top_eigenpairs`): one
  randomised block Krylov space of 4K vectors, float32 products, no convergence check;
- ``subspace-q4``: randomised subspace iteration, block 2K, 4 power iterations, float32.

Accuracy: the largest eigenvalue error against ``dense`` and the largest residual
|P v - lam v|. Sampling quality: DMPS (``n_modes = K``, default automatic step) run with the
``dense`` and the ``krylov`` eigenpairs from the same cap init (x_2 above its 85 % quantile),
``--particles`` particles for ``--steps`` steps, three seeds; Sinkhorn divergence against
2000 fresh samples, eps = 0.05 x median squared distance; ``exact`` = fresh samples.

    python -m benchmarks.studies.eigensolvers_dmps     # writes results/dmps/eigensolvers.md
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.linalg
import torch
from threadpoolctl import threadpool_limits

import benchmarks._imports  # noqa: F401  (guards the local ``datasets`` package)
from benchmarks.execution.provenance import produced_by
from benchmarks.presentation.tables import markdown_table
from benchmarks.studies.scaling_dmps import gaussian_points
from common.geometry import relative_eps
from metrics.sinkhorn import sinkhorn_divergence
from samplers.core.spectral import (
    DiffusionMapKernel,
    auto_step_size,
    lawgd_weights,
    symmetric_eigh,
    top_eigenpairs,
    transport_direction,
)
from samplers.dmps import clipped_displacement

COMMAND = "python -m benchmarks.studies.eigensolvers_dmps"


def subspace_iteration(P: torch.Tensor, k: int, q: int, seed: int) -> tuple:
    """Randomised subspace iteration: Q = orth(P^q Omega), Omega (N, 2k); Rayleigh-Ritz."""
    gen = torch.Generator().manual_seed(seed)
    Q = torch.randn(P.shape[0], 2 * k, generator=gen, dtype=P.dtype)
    for _ in range(q):
        Q = torch.linalg.qr(P @ Q).Q
    T = (Q.T @ (P @ Q)).double()
    lam, Y = symmetric_eigh(0.5 * (T + T.T))
    return lam[:k], Q.double() @ Y[:, :k]


def lapack_subset(P: torch.Tensor, k: int) -> tuple:
    n = P.shape[0]
    lam, vec = scipy.linalg.eigh(
        P.numpy(), subset_by_index=[n - k, n - 1], driver="evr", check_finite=False
    )
    return (
        torch.from_numpy(np.ascontiguousarray(lam[::-1])).double(),
        torch.from_numpy(np.ascontiguousarray(vec[:, ::-1])).double(),
    )


def run_dmps(
    kernel: DiffusionMapKernel,
    lam: torch.Tensor,
    vec: torch.Tensor,
    x0: torch.Tensor,
    steps: int,
    fraction: float = 0.2,
) -> torch.Tensor:
    w = lawgd_weights(lam, kernel.eps)
    keep = w > 0
    Phi, w = vec[:, keep].contiguous(), w[keep]
    h = auto_step_size(x0, kernel, Phi, w, fraction)
    max_disp = math.sqrt(kernel.eps)  # the sampler's default max_step = 1
    x = x0
    for _ in range(steps):
        v = transport_direction(kernel, x, Phi, w)
        x = x - clipped_displacement(v, h / x.shape[0], max_disp)[0]
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--modes", type=int, default=500)
    parser.add_argument("--particles", type=int, default=500)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/dmps"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    n, k = args.n, args.modes
    X = gaussian_points(n, args.dim, 0)
    kernel = DiffusionMapKernel.fit(X)
    P = kernel.markov_matrix()
    P32 = P.float()
    solvers = {
        "dense": lambda: tuple(t[:k] if t.ndim == 1 else t[:, :k] for t in symmetric_eigh(P)),
        "lapack-subset-f32": lambda: lapack_subset(P32, k),
        "krylov": lambda: top_eigenpairs(P32, k),
        "subspace-q4": lambda: subspace_iteration(P32, k, 4, 0),
    }
    results, rows = {}, []
    with threadpool_limits(args.threads):
        for name, fn in solvers.items():
            t0 = time.perf_counter()
            lam, vec = fn()
            seconds = time.perf_counter() - t0
            lam, vec = lam.double(), vec.double()
            results[name] = (lam, vec)
            res = float((P @ vec - vec * lam).norm(dim=0).max())
            err = float((lam - results["dense"][0]).abs().max())
            rows.append(
                {"solver": name, "seconds": seconds, "max_eig_error": err, "max_residual": res}
            )
            print(rows[-1], flush=True)
        reference = gaussian_points(2000, args.dim, 7)
        eps_metric = relative_eps(reference, 0.05)
        quality = []
        for seed in range(args.seeds):
            pool = gaussian_points(20 * args.particles, args.dim, 100 + seed)
            x0 = pool[pool[:, 1] > torch.quantile(pool[:, 1], 0.85)][: args.particles]
            exact = gaussian_points(args.particles, args.dim, 200 + seed)
            entry = {
                "seed": seed,
                "cap init": sinkhorn_divergence(x0, reference, eps=eps_metric).value,
            }
            entry["exact"] = sinkhorn_divergence(exact, reference, eps=eps_metric).value
            for name in ("dense", "krylov"):
                x = run_dmps(kernel, *results[name], x0, args.steps)
                entry[f"dmps ({name} eigenpairs)"] = sinkhorn_divergence(
                    x, reference, eps=eps_metric
                ).value
            print(entry, flush=True)
            quality.append(entry)
    qdf = pd.DataFrame(quality)
    summary = pd.DataFrame(
        {
            "sample": [c for c in qdf.columns if c != "seed"],
            "sinkhorn_mean": [qdf[c].mean() for c in qdf.columns if c != "seed"],
            "sinkhorn_std": [qdf[c].std() for c in qdf.columns if c != "seed"],
        }
    )
    args.out.mkdir(parents=True, exist_ok=True)
    cmd = " ".join([COMMAND, *sys.argv[1:]])
    text = [
        "# DMPS top-K eigensolvers: time, accuracy and sampling quality",
        "",
        produced_by(cmd),
        "",
        f"N = {n}, d = {args.dim}, K = {k}, torch/BLAS threads = {args.threads}, load average "
        f"at start / end {load:.1f} / {os.getloadavg()[0]:.1f} (shared machine: compare "
        "ratios). Errors against `dense` (numpy LAPACK eigh, float64).",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
        f"Sampling quality: DMPS with K = {k} modes, {args.particles} particles from a cap, "
        f"{args.steps} steps, automatic step (0.2 sqrt(eps)), max_step = 1 safeguard; "
        "Sinkhorn divergence vs 2000 fresh "
        f"samples, eps = {eps_metric:.3g} (0.05 x median squared distance); "
        f"{args.seeds} seeds.",
        "",
        markdown_table(summary),
        "",
        "Per seed:",
        "",
        markdown_table(qdf),
        "",
    ]
    (args.out / "eigensolvers.md").write_text("\n".join(text))


if __name__ == "__main__":
    main()
