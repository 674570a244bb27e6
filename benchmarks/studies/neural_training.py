"""Training time vs quality of the neural baselines (Sinkhorn generator, score diffusion).

For each registered 2D target (standardised with training statistics, as the runner does) and
training budget: fit on a training split (timed: fit_seconds), generate m particles (timed:
sample_seconds) and score them against a disjoint reference split with the headline metric
(``metrics.sinkhorn``, eps = target.metric_eps_fraction x the reference's median squared
distance). An ``exact`` row (fresh target samples) gives the noise floor.

Run: ``python -m benchmarks.studies.neural_training`` (writes results/neural/training.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from benchmarks.execution.environment import blas_summary
from benchmarks.execution.provenance import produced_by
from common.geometry import relative_eps
from datasets.base import StandardisedTarget, Target, get_target
from metrics import get_metric
from samplers import get_sampler

COMMAND = "python -m benchmarks.studies.neural_training"


TARGETS = ("gaussian_2d", "ring8", "two_moons")


def standardised(name: str, n_train: int, n_ref: int) -> tuple[Target, Tensor, Tensor]:
    """(standardised target, train, reference) as the runner does: statistics from train."""
    base = get_target(name)
    train_raw = base.sample(n_train, seed=1)
    target = StandardisedTarget.from_samples(base, train_raw)
    return target, target.sample(n_train, seed=1), target.sample(n_ref, seed=2)


def divergence(x: Tensor, ref: Tensor, fraction: float) -> tuple[float, bool]:
    """The headline metric: S_eps(x, ref), eps = fraction x median |ref_a - ref_b|^2."""
    res = get_metric("sinkhorn").on(x, ref, scale=relative_eps(ref, fraction), seed=0)
    return float(res.value), bool(res.converged)


def configs() -> list[tuple[str, dict]]:
    return [
        ("sinkhorn_generator", {"iterations": 200}),
        ("sinkhorn_generator", {}),
        ("score_diffusion", {"iterations": 500}),
        ("score_diffusion", {}),
    ]


def write_table(rows: list[tuple], args: argparse.Namespace) -> None:
    """Markdown table of rows (target, sampler, its, m, fit s, sample s, [S_eps per seed])."""
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Neural baselines: training time vs quality",
        "",
        produced_by(COMMAND) + f" (torch threads {args.threads}, BLAS {blas_summary()}).",
        f"n_train={args.n_train}, n_ref={args.n_ref}, m={args.m} generated, diffusion reverse "
        f"steps={args.steps}; standardised targets (train statistics); metric: `metrics.sinkhorn`, "
        "eps = target.metric_eps_fraction x median squared distance of the reference. "
        "Other parameters: defaults.",
        "Times are wall seconds on a shared machine (other jobs running): compare within a table.",
        f"S_eps: mean ± std over {args.repeats} sampling seeds (one fit per row; exact: "
        f"{args.repeats} fresh target samples); nan: metric not converged or run diverged.",
        "",
        "| target | sampler | train its (done/budget) | m | fit s | sample s (mean) | S_eps |",
        "|---|---|---|---|---|---|---|",
    ]
    for tname, name, its, m, fit_s, sample_s, vals in rows:
        v = np.asarray(vals, dtype=float)
        lines.append(
            f"| {tname} | {name} | {its} | {m} | {fit_s:.1f} | {sample_s:.2f} | "
            f"{v.mean():.4f} ± {v.std():.4f} |"
        )
    out.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-ref", type=int, default=600)
    ap.add_argument("--m", type=int, default=600, help="generated particles")
    ap.add_argument("--steps", type=int, default=200, help="runner step budget (diffusion)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="sampling seeds per row")
    ap.add_argument("--out", default="results/neural/training.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = []
    seeds = range(args.repeats)
    for tname in TARGETS:
        target, train, ref = standardised(tname, args.n_train, args.n_ref)
        frac = target.metric_eps_fraction
        vals = []
        for r in seeds:
            value, conv = divergence(target.sample(args.m, seed=100 + r), ref, frac)
            vals.append(value if conv else float("nan"))
        rows.append((tname, "exact", "-", args.m, 0.0, 0.0, vals))
        for name, params in configs():
            sampler = get_sampler(name, **params)
            sampler.fit(train, target)
            vals, sample_s = [], []
            for r in seeds:
                t0 = time.perf_counter()
                x0 = torch.zeros(args.m, 2, dtype=torch.float64)
                res = sampler.run(x0, args.steps, seed=200 + r)
                sample_s.append(time.perf_counter() - t0)
                value, conv = divergence(res.particles, ref, frac)
                vals.append(value if conv and not res.diverged else float("nan"))
            its = res.info["train_iterations"]
            budget = sampler.params["iterations"]
            rows.append(
                (
                    tname,
                    name,
                    f"{its}/{budget}",
                    args.m,
                    res.info["fit_seconds"],
                    float(np.mean(sample_s)),
                    vals,
                )
            )
            print(rows[-1], flush=True)
            write_table(rows, args)  # after every row: an interrupted run keeps its rows

    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
