"""Speed of the debiased Sinkhorn divergence vs three standard POT solves, same eps/tol.

Writes results/metrics/speed.md. Clouds: x ~ N(0, I_d), y ~ N(0.3, 1.44 I_d), d = 2,
eps = 0.05 x median squared distance of y (the default target fraction). Baseline: three
``ot.sinkhorn`` calls (numpy float64, standard iterations) on (x, y), (x, x), (y, y) with the
same stop threshold as the metric's cross solve and the same iteration cap; each timed in the
same process, best of ``--repeats``.

Usage: python -m benchmarks.studies.metric_speed [--sizes 1000 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import ot
import torch

from benchmarks.execution.provenance import produced_by, study_command
from common.geometry import relative_eps
from metrics.sinkhorn import DEFAULT_MAX_ITER, DEFAULT_TOL, sinkhorn_divergence

#: the committed result file (this module sits in benchmarks/studies/, three levels down)
OUT = Path(__file__).resolve().parents[2] / "results" / "metrics" / "speed.md"


def clouds(n: int, d: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x ~ N(0, I), y ~ N(0.3, 1.44 I): (n, d) float64 each."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = 1.2 * torch.randn(n, d, generator=gen, dtype=torch.float64) + 0.3
    return x, y


def three_pot_solves(x: np.ndarray, y: np.ndarray, eps: float) -> list[int]:
    """Three standard POT Sinkhorn solves (numpy float64); returns their iteration counts."""
    n = x.shape[0]
    w = np.full(n, 1.0 / n)
    iters = []
    for p, q in ((x, y), (x, x), (y, y)):
        _, log = ot.sinkhorn(
            w,
            w,
            ot.dist(p, q),
            eps,
            numItermax=DEFAULT_MAX_ITER,
            stopThr=DEFAULT_TOL / math.sqrt(n),
            log=True,
        )
        iters.append(int(log["niter"]) + 1)
    return iters


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    command = study_command("benchmarks.studies.metric_speed")
    rows = []
    for n in args.sizes:
        x, y = clouds(n)
        eps = relative_eps(y, 0.05)
        t_ours, res = best_time(partial(sinkhorn_divergence, x, y, eps=eps), args.repeats)
        t_pot, pot_iters = best_time(
            partial(three_pot_solves, x.numpy(), y.numpy(), eps), args.repeats
        )
        rows.append((n, eps, res, t_ours, t_pot, pot_iters))
        print(f"n={n}: ours {t_ours:.2f}s, 3x POT {t_pot:.2f}s, ratio {t_ours / t_pot:.2f}")
    lines = [
        "# Sinkhorn divergence speed vs three standard POT solves",
        "",
        produced_by(command.strip()),
        "",
        f"torch {torch.__version__}, POT {ot.__version__}, numpy {np.__version__}, "
        f"{platform.machine()}, torch threads {torch.get_num_threads()}; "
        f"d = 2, eps = 0.05 x median |y - y'|^2, tol {DEFAULT_TOL} (L1 marginal), "
        f"best of {args.repeats}. The machine is shared: ratios (same process) matter, "
        "absolute times are noisy.",
        "",
        "| n | eps | S_eps | converged | iterations (xy, xx, yy) | cross method | ours (s) "
        "| 3x POT (s) | POT iterations | ratio ours / POT |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, eps, res, t_ours, t_pot, pot_iters in rows:
        its = res.info["iterations"]
        lines.append(
            f"| {n} | {eps:.4g} | {res.value:.6g} | {res.converged} | "
            f"{its['xy']}, {its['xx']}, {its['yy']} | {res.info['method']['xy']} | "
            f"{t_ours:.2f} | {t_pot:.2f} | {', '.join(map(str, pot_iters))} | "
            f"{t_ours / t_pot:.2f} |"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
