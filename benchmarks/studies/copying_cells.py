"""Sensitivity of the data-copying statistic C_T to its number of cells k.

For each target, regime (N training points, m = 300 particles, a 1,000-point held-out
reference, as the headline suites) and seed: C_T of fresh exact samples, of copies of
training points (drawn with repeats where m > N), of the k-means centroids of the training
split (m <= N only), and of exact samples blurred by 10 % of each coordinate's sd, at every
k of ``metrics.copying.K_RANGE`` that an m-point sample can fill (k <= m / MIN_GENERATED).
Two combinations of the per-cell Z are shown: the weighted Stouffer Z the project reports
(sum w Z / sqrt(sum w^2), ~N(0, 1) for fresh samples at any k) and Meehan et al.'s weighted
mean (sum w Z / sum w, null sd ~ 1/sqrt(k)), with the share of runs each flags at -3.

Command: ``OMP_NUM_THREADS=1 python -m benchmarks.studies.copying_cells``; writes
``results/metrics/copying_cells.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.execution.environment import environment
from benchmarks.presentation.tables import markdown_table
from datasets import StandardisedTarget, get_target
from metrics.copying import (
    COPYING_THRESHOLD,
    K_RANGE,
    MIN_GENERATED,
    cell_count,
    data_copying_statistic,
)
from samplers.kmeans import kmeans_centroids

COMMAND = "OMP_NUM_THREADS=1 python -m benchmarks.studies.copying_cells"
TARGETS = ("circle", "shell3", "ring8")
REGIMES = (("generation", 100), ("representation", 1000))
M, N_REF = 300, 1000


def samples(
    case: str, target: StandardisedTarget, train: torch.Tensor, seed: int
) -> torch.Tensor | None:
    """The m-point sample of ``case`` (None where the case cannot make m points)."""
    gen = torch.Generator().manual_seed(seed)
    if case == "exact":
        return target.sample(M, seed=seed)
    if case == "copies":
        return train[torch.randint(0, train.shape[0], (M,), generator=gen)]
    if case == "kmeans":
        if M > train.shape[0]:
            return None
        return torch.as_tensor(kmeans_centroids(train.numpy(), M, seed), dtype=torch.float64)
    if case == "blur10":
        x = target.sample(M, seed=seed)
        return x + 0.1 * torch.randn(x.shape, generator=gen, dtype=x.dtype)
    raise ValueError(case)


def study(seeds: list[int]) -> pd.DataFrame:
    rows = []
    for name in TARGETS:
        base = get_target(name)
        for regime, n_train in REGIMES:
            for seed in seeds:
                raw = base.sample(n_train, seed=10_000 + seed)
                target = StandardisedTarget.from_samples(base, raw)
                train = target.to_standard(raw)
                ref = target.sample(N_REF, seed=20_000 + seed)
                for case in ("exact", "copies", "kmeans", "blur10"):
                    x = samples(case, target, train, 30_000 + seed)
                    if x is None:
                        continue
                    for k in [k for k in K_RANGE if k <= M // MIN_GENERATED]:
                        res = data_copying_statistic(x, train, ref, k=k, seed=seed)
                        z = np.asarray(res.info["cell_z"])
                        w = np.asarray(res.info["cell_weight"])
                        rows.append(
                            {
                                "target": name,
                                "regime": f"{regime} (N = {n_train})",
                                "case": case,
                                "k": k,
                                "seed": seed,
                                "stouffer": res.value,
                                "meehan_mean": float(np.dot(w, z) / w.sum()) if w.size else np.nan,
                            }
                        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=5, help="seeds per cell (default 5)")
    p.add_argument("--out", default="results/metrics", help="output folder")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    df = study(list(range(args.seeds)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "copying_cells.csv", index=False)
    flag = lambda v: float(np.mean(v < COPYING_THRESHOLD))  # noqa: E731
    summary = (
        df.groupby(["target", "regime", "case", "k"], sort=False)
        .agg(
            stouffer_mean=("stouffer", "mean"),
            stouffer_sd=("stouffer", "std"),
            stouffer_flagged=("stouffer", flag),
            meehan_mean=("meehan_mean", "mean"),
            meehan_flagged=("meehan_mean", flag),
        )
        .reset_index()
    )
    env = environment("cpu")
    text = [
        "# Data-copying statistic C_T against its number of cells k",
        "",
        f"Produced by: `{COMMAND}` at commit {env['commit']} "
        f"({time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f}).",
        "",
        __doc__.split("\n\n", 1)[1].rsplit("\n\nCommand:", 1)[0],
        "",
        f"m = {M} particles, reference {N_REF}, {args.seeds} seeds per row; the default "
        f"cell count is k = {cell_count(M, N_REF)} (``metrics.copying.cell_count``). "
        "`*_flagged`: share of the seeds below -3.",
        "",
        markdown_table(summary, floats="{:.2f}"),
    ]
    (out / "copying_cells.md").write_text("\n".join(text) + "\n", encoding="utf-8")
    print(f"wrote {out / 'copying_cells.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
