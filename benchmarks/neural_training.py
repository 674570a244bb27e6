"""Training time vs quality of the neural baselines (Sinkhorn generator, score diffusion).

For each 2D target and training budget: fit on a training split (timed: fit_seconds), generate
m particles (timed: sample_seconds) and score them against a disjoint reference split with the
debiased Sinkhorn divergence, eps = 0.05 x the reference's median squared distance. An
``exact`` row (fresh target samples) gives the noise floor. The metric is the registered
``sinkhorn`` metric when ``metrics/sinkhorn.py`` is present, else this repo's log-domain
``samplers.sinkhorn_loss.sinkhorn_divergence`` run to tol 1e-5 (checked against POT in
tests/test_neural.py); the table says which.

Run: ``PYTHONPATH=. python -m benchmarks.neural_training`` (writes results/neural/training.md).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from benchmarks.environment import blas_summary, git_commit
from datasets.base import Target, median_sq_distance
from samplers import get_sampler
from samplers.sinkhorn_loss import sinkhorn_divergence
from tests.gaussian import GaussianTarget, correlated_gaussian_2d

EPS_FRACTION = 0.05
COMMAND = "PYTHONPATH=. python -m benchmarks.neural_training"


class RingOfGaussians(Target):
    """Equal mixture of ``k`` isotropic Gaussians (std ``s``) at angles 2 pi j / k on a circle."""

    def __init__(self, k: int = 8, radius: float = 2.0, s: float = 0.15) -> None:
        super().__init__(name=f"ring{k}_2d", dim=2, family="mixtures")
        ang = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
        self.centres = radius * torch.stack([torch.cos(ang), torch.sin(ang)], 1)
        self.s = s

    def _sample(self, n: int, gen: torch.Generator) -> Tensor:
        idx = torch.randint(self.centres.shape[0], (n,), generator=gen)
        return self.centres[idx] + self.s * torch.randn(n, 2, generator=gen, dtype=torch.float64)


def targets() -> list[Target]:
    """Registered 2D targets when the catalogue has them, else the local stand-ins."""
    gauss: GaussianTarget = correlated_gaussian_2d()
    gauss.name = "gaussian_2d"
    return [gauss, RingOfGaussians()]


def divergence(x: Tensor, ref: Tensor) -> tuple[float, bool, str]:
    """(S_eps(x, ref), converged, metric name), eps = EPS_FRACTION x median |ref_a - ref_b|^2."""
    eps = EPS_FRACTION * median_sq_distance(ref)
    try:
        from metrics import available_metrics, get_metric

        if "sinkhorn" in available_metrics():
            res = get_metric("sinkhorn")(x, ref, scale=eps, seed=0)
            return float(res.value), bool(res.converged), "metrics.sinkhorn"
    except ImportError:
        pass
    value, info = sinkhorn_divergence(x, ref, eps, tol=1e-5, max_iters=5000, scaling=0.5)
    return float(value), bool(info["converged"]), "samplers.sinkhorn_loss (log domain, tol 1e-5)"


def configs() -> list[tuple[str, dict]]:
    return [
        ("sinkhorn_generator", {"iterations": 200}),
        ("sinkhorn_generator", {}),
        ("score_diffusion", {"iterations": 500}),
        ("score_diffusion", {}),
    ]


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
    metric_name = ""
    seeds = range(args.repeats)
    for target in targets():
        train = target.sample(args.n_train, seed=1)
        ref = target.sample(args.n_ref, seed=2)
        vals = []
        for r in seeds:
            value, conv, metric_name = divergence(target.sample(args.m, seed=100 + r), ref)
            vals.append(value if conv else float("nan"))
        rows.append((target.name, "exact", "-", args.m, 0.0, 0.0, vals))
        for name, params in configs():
            sampler = get_sampler(name, **params)
            sampler.fit(train, target)
            vals, sample_s = [], []
            for r in seeds:
                t0 = time.perf_counter()
                x0 = torch.zeros(args.m, 2, dtype=torch.float64)
                res = sampler.run(x0, args.steps, seed=200 + r)
                sample_s.append(time.perf_counter() - t0)
                value, conv, _ = divergence(res.particles, ref)
                vals.append(value if conv and not res.diverged else float("nan"))
            its = res.info["train_iterations"]
            budget = sampler.params["iterations"]
            rows.append(
                (
                    target.name,
                    name,
                    f"{its}/{budget}",
                    args.m,
                    res.info["fit_seconds"],
                    float(np.mean(sample_s)),
                    vals,
                )
            )
            print(rows[-1], flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Neural baselines: training time vs quality",
        "",
        f"Produced by: `{COMMAND}` (git {git_commit()}, torch threads {args.threads}, "
        f"BLAS {blas_summary()}).",
        f"n_train={args.n_train}, n_ref={args.n_ref}, m={args.m} generated, diffusion reverse "
        f"steps={args.steps}; metric: debiased Sinkhorn, eps = {EPS_FRACTION} x median squared "
        f"distance of the reference, computed by {metric_name}. Other parameters: defaults.",
        "Times are wall seconds on a shared machine (other jobs running): compare within a table.",
        "",
        f"S_eps: mean ± std over {args.repeats} sampling seeds (one fit per row; exact: "
        f"{args.repeats} fresh target samples); nan: metric not converged or run diverged.",
        "",
        "| target | sampler | train its (done/budget) | m | fit s | sample s (mean) | S_eps |",
        "|---|---|---|---|---|---|---|",
    ]
    for tname, name, its, m, fit_s, sample_s, value, conv in rows:
        lines.append(
            f"| {tname} | {name} | {its} | {m} | {fit_s:.1f} | {sample_s:.2f} | "
            f"{value:.4f} | {conv} |"
        )
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
