"""Sparse (kNN) DMPS at N = 5,000-60,000: fit time, peak memory, eigen-residuals, step time.

For each N (one subprocess per N, so its peak resident memory is its own): N i.i.d.
N(0, I_16) training points (d = 16) or the 60,000 standardised Fashion-MNIST latent codes
(``--fashion``, d = 6, data under ``--data-root``); the sparse kernel with k = "auto" neighbours
and its tail rule (:class:`samplers.core.sparse_diffusion_map.SparseDiffusionMapKernel`), the
top K = 500 eigenpairs by DMPS's automatic sparse solver (ARPACK up to N = 20,000, block
Lanczos above: :func:`samplers.dmps.sparse_solver_for`) with every pair's relative residual
|P v - lam v| / |lam_1| measured (:func:`samplers.core.eigensolvers.sparse_top_eigenpairs`),
the graph's isolated points (self-weight > 0.99,
:func:`samplers.core.connectivity.sparse_graph_info`), LAWGD weights as sparse DMPS's,
then one transport direction at m = 1,024 particles (median of ``--repeats``; particles =
fresh points of the training distribution, or training codes plus N(0, 0.1^2) noise for
Fashion-MNIST).
Peak memory = ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the subprocess (Python,
torch and all). Threads are pinned (``--threads``, torch and BLAS alike); the load average
is recorded beside every time, since the machine is shared.

``--quality`` adds the sparse-against-dense table from the harness's ``runs.jsonl``
(``python -m benchmarks run --suite-file results/dmps/sparse_vs_dense/suite.toml
--param dmps.kernel=dense,sparse ...``): mean and std over seeds of every metric.

    python -m benchmarks.studies.scaling_sparse_dmps --sizes 5000 10000 20000 60000 --fashion \\
        --quality results/dmps/sparse_vs_dense --out results/dmps/sparse_scaling.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.execution.provenance import produced_by

COMMAND = "python -m benchmarks.studies.scaling_sparse_dmps"
D, K, M, N_NEIGHBORS = 16, 500, 1024, "auto"


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def measure(n: int, data: str, *, threads: int, repeats: int, data_root: str) -> dict:
    """One row (runs inside the per-N subprocess)."""
    import torch
    from threadpoolctl import threadpool_limits

    import benchmarks._imports  # noqa: F401  (guards the local ``datasets`` package)
    from samplers.core.connectivity import sparse_graph_info
    from samplers.core.eigensolvers import sparse_top_eigenpairs
    from samplers.core.sparse_diffusion_map import SparseDiffusionMapKernel
    from samplers.core.spectral import lawgd_weights, transport_direction
    from samplers.dmps import sparse_solver_for

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    if data == "gaussian16":
        X = torch.randn(n, D, generator=gen, dtype=torch.float64)
        x = torch.randn(M, D, generator=gen, dtype=torch.float64)
    else:
        from datasets.base import StandardisedTarget
        from datasets.latents import build_latent_target

        base = build_latent_target("fashion_mnist", data_root=data_root, progress=False)
        pool = base.pool("train")[:n]
        X = StandardisedTarget.from_samples(base, pool).to_standard(pool).contiguous()
        pick = torch.randperm(n, generator=gen)[:M]
        x = X[pick] + 0.1 * torch.randn(M, X.shape[1], generator=gen, dtype=torch.float64)
    load_start = _load()
    with threadpool_limits(threads):
        t0, c0 = time.perf_counter(), time.process_time()
        kernel = SparseDiffusionMapKernel.fit(X, N_NEIGHBORS)
        t1 = time.perf_counter()
        solver = sparse_solver_for(n)
        eig = sparse_top_eigenpairs(kernel.markov_matrix(), K, method=solver)
        t2, c2 = time.perf_counter(), time.process_time()
        graph = sparse_graph_info(kernel.markov_matrix(), eig.eigenvalues)
        w = lawgd_weights(eig.eigenvalues, kernel.eps, drop_non_decaying=True)
        keep = w > 0
        Phi, w = eig.eigenvectors[:, keep].contiguous(), w[keep]
        run_kernel = kernel.to(dtype=torch.float64)
        times, cpu = [], []
        for _ in range(repeats):
            s0, p0 = time.perf_counter(), time.process_time()
            v = transport_direction(run_kernel, x, Phi, w)
            times.append(time.perf_counter() - s0)
            cpu.append(time.process_time() - p0)
        assert bool(torch.isfinite(v).all())
    times.sort()
    cpu.sort()
    return {
        "data": "N(0, I_16)" if data == "gaussian16" else "Fashion-MNIST latents",
        "N": n,
        "d": X.shape[1],
        "k": kernel.n_neighbors,
        "tail_widened": kernel.n_widened,
        "nnz_per_row": kernel.markov_matrix().nnz / n,
        "solver": eig.method,
        "K": K,
        "m": M,
        "kernel_fit_s": t1 - t0,
        "eigensolve_s": t2 - t1,
        "fit_s": t2 - t0,
        "fit_cpu_s": c2 - c0,
        "peak_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "max_residual": eig.max_residual,
        "converged": eig.converged,
        "lambda_K": float(eig.eigenvalues[-1]),
        "lambda_1": float(eig.eigenvalues[1]),
        "n_isolated": graph["n_isolated"],
        "n_above_one": graph["n_eigenvalues_above_one"],
        "step_s": times[len(times) // 2],
        "step_cpu_s": cpu[len(cpu) // 2],
        "load_start": load_start,
        "load_end": _load(),
    }


def quality_table(folder: Path) -> list[str]:
    """Mean ± std over seeds per (target, kernel, metric) from every runs.jsonl under folder."""
    import pandas as pd

    rows = []
    for path in sorted(folder.rglob("runs.jsonl")):
        with path.open() as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    if not rows:
        return [f"(no runs.jsonl under {folder})"]
    df = pd.DataFrame(rows)
    df = df[df["sampler"].isin(["dmps", "exact"]) & (df["status"] == "ok")]
    kern = df["params"].map(lambda p: json.loads(p) if isinstance(p, str) else p or {})
    kern = kern.map(lambda p: p.get("kernel", "?"))
    df = df.assign(kernel=kern.where(df["sampler"] == "dmps", "exact"))
    g = df.groupby(["target", "metric", "kernel"])["value"].agg(["mean", "std", "count"])
    out = [
        "| target | metric | dense DMPS | sparse DMPS | exact (i.i.d.) | seeds dense/sparse |",
        "|---" * 6 + "|",
    ]
    for (target, metric), sub in g.groupby(level=[0, 1]):
        cells, counts = {}, {}
        for (_, _, kernel), r in sub.iterrows():
            cells[kernel] = f"{r['mean']:.4g} ± {r['std']:.2g}"
            counts[kernel] = int(r["count"])
        row = " | ".join(cells.get(c, "-") for c in ("dense", "sparse", "exact"))
        n = f"{counts.get('dense', 0)}/{counts.get('sparse', 0)}"
        out.append(f"| {target} | {metric} | {row} | {n} |")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[5000, 10000, 20000, 60000])
    ap.add_argument("--fashion", action="store_true", help="add the Fashion-MNIST row (N=60000)")
    ap.add_argument("--data-root", default="/usr/share/datasets")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quality", type=Path, help="harness output folder of the sparse/dense runs")
    ap.add_argument("--out", type=Path, default=Path("results/dmps/sparse_scaling.md"))
    ap.add_argument(
        "--quality-only", action="store_true", help="write only the --quality table to --out"
    )
    ap.add_argument("--one", nargs=2, metavar=("N", "DATA"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        row = measure(
            int(args.one[0]),
            args.one[1],
            threads=args.threads,
            repeats=args.repeats,
            data_root=args.data_root,
        )
        print("ROW " + json.dumps(row), flush=True)
        return
    if args.quality_only:
        cmd = " ".join(argv if argv is not None else sys.argv[1:])
        lines = [
            "# Sampling quality: sparse (kNN) against dense DMPS",
            "",
            produced_by(f"{COMMAND} {cmd}") + " from the harness rows of",
            "`python -m benchmarks run --suite-file results/dmps/sparse_vs_dense/suite.toml "
            "--param dmps.kernel=dense,sparse --out results/dmps/sparse_vs_dense --no-particles` "
            "(circle, ring8, half_sphere: N = 5,000) and the same with `--targets digits_latent "
            "--train-size all` (digits: its whole training split, 1,257 codes). Cap init, "
            "300 particles, 300 steps, seeds 0-2; mean ± std over seeds.",
            "",
            *quality_table(args.quality),
        ]
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
        return
    jobs = [(n, "gaussian16") for n in args.sizes] + ([(60000, "fashion")] if args.fashion else [])
    env = {**os.environ, **{v: str(args.threads) for v in _THREAD_VARS}}
    rows = []
    for n, data in jobs:
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.studies.scaling_sparse_dmps",
            "--one",
            str(n),
            data,
        ]
        cmd += ["--threads", str(args.threads), "--repeats", str(args.repeats)]
        cmd += ["--data-root", args.data_root]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("ROW ")]
        if proc.returncode or not line:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            raise SystemExit(f"measurement N={n} {data} failed (exit {proc.returncode})")
        rows.append(json.loads(line[0][4:]))
        print(rows[-1], flush=True)
        _write(args, argv, rows, final=False)  # a partial table survives an interrupted run
    _write(args, argv, rows, final=True)


def _write(args: argparse.Namespace, argv: list[str] | None, rows: list[dict], final: bool) -> None:
    """The markdown: the scaling rows so far and, when final, the quality table."""
    cols = list(rows[0])
    lines = [
        "# Sparse DMPS: fit, memory, eigen-residuals and step time at N = 5k-60k",
        "",
        produced_by(f"{COMMAND} {' '.join(argv if argv is not None else sys.argv[1:])}"),
        "",
        f"k = {N_NEIGHBORS} neighbours (the DMPS default; the k used is column k), "
        f"K = {K} modes, m = {M} particles, float64, "
        f"{args.threads} threads (torch and BLAS; OMP/MKL/OPENBLAS_NUM_THREADS={args.threads}), "
        f"{platform.machine()}, {os.cpu_count()} cores on a machine shared with other "
        "developers: the load average (1/5/15 min) at the start and end of each row is beside "
        "its times. tail_widened = training points the tail rule gave a wider bandwidth; "
        "n_above_one = modes beyond the constant with lam >= 1 (weight 0). "
        "Residual = max_j |P v_j - lam_j v_j| / |lam_1| over the 500 returned pairs "
        "(tolerance 1e-6). Peak memory = ru_maxrss of the per-N subprocess (Python and torch "
        "included). *_cpu_s = CPU seconds of the process (all its threads): on an overloaded "
        "machine wall times inflate by the load, CPU times much less.",
        "",
        "| " + " | ".join(cols) + " |",
        "|---" * len(cols) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    if not final:
        lines += ["", "(partial: the run is still going or was interrupted)"]
    if final and args.quality:
        lines += ["", "## Sampling quality: sparse against dense DMPS", ""]
        lines += quality_table(args.quality)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", flush=True)


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


if __name__ == "__main__":
    main()
