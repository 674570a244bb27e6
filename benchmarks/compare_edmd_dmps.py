"""EDMD-KSWGD vs DMPS with their documented defaults, same targets, budgets, x0 and metric.

For each target: 1000 training points (standardised with their statistics), 1000 held-out
reference points, 300 particles from the ``gaussian`` (N(0, I)) and ``cap`` inits, 300 steps;
score = debiased Sinkhorn divergence (``metrics.sinkhorn``, eps = target fraction of the
reference median squared distance); ``exact`` = a fresh i.i.d. sample of 300 points (the
noise floor). One seed: a quick look, not the leaderboard (the lead's suites run that).
Writes ``results/edmd/compare_dmps.csv`` and ``.md``.

Run: ``OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=. python -m benchmarks.compare_edmd_dmps``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks._imports import ensure_local_datasets

ensure_local_datasets()

from benchmarks.scaling_edmd import markdown_table  # noqa: E402
from common.random import make_generator  # noqa: E402
from datasets.base import StandardisedTarget, get_target  # noqa: E402
from metrics.base import get_metric  # noqa: E402
from metrics.sinkhorn import relative_eps  # noqa: E402
from samplers import get_sampler  # noqa: E402

COMMAND = "OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=. python -m benchmarks.compare_edmd_dmps"
TARGETS = "ring8,circle,two_moons,mixture10d,dirichlet3,uniform_square"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=TARGETS)
    parser.add_argument("--n-steps", type=int, default=300)
    parser.add_argument("--n-particles", type=int, default=300)
    parser.add_argument("--out", default="results/edmd")
    args = parser.parse_args()
    sinkhorn = get_metric("sinkhorn")
    rows = []
    for name in args.targets.split(","):
        base = get_target(name)
        train_raw, ref_raw = base.sample(1000, seed=1), base.sample(1000, seed=2)
        target = StandardisedTarget.from_samples(base, train_raw)
        train, ref = target.to_standard(train_raw), target.to_standard(ref_raw)
        eps = relative_eps(ref, target.metric_eps_fraction)

        def score(x: torch.Tensor, ref: torch.Tensor = ref, eps: float = eps) -> float:
            if not bool(torch.isfinite(x).all()):
                return float("nan")
            res = sinkhorn(x, ref, scale=eps)
            return res.value if res.converged else float("nan")

        m = args.n_particles
        gauss = torch.randn(m, base.dim, generator=make_generator(3), dtype=torch.float64)
        inits = {"gaussian": gauss, "cap": target.to_standard(base.sample_cap(m, seed=4))}
        exact = score(target.to_standard(base.sample(m, seed=5)))
        for sampler_name in ("dmps", "edmd_kswgd"):
            t0 = time.perf_counter()
            sampler = get_sampler(sampler_name).fit(train, target)
            fit_s = time.perf_counter() - t0
            for init, x0 in inits.items():
                result = sampler.run(x0, args.n_steps, seed=0)
                rows.append(
                    {
                        "target": name,
                        "init": init,
                        "sampler": sampler_name,
                        "sinkhorn": score(result.particles),
                        "init_score": score(x0),
                        "exact": exact,
                        "fit_s": fit_s,
                        "run_s": result.info["sample_seconds"],
                        "diverged": result.diverged,
                    }
                )
                print(rows[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame.from_records(rows)
    df.to_csv(out / "compare_dmps.csv", index=False)
    header = [
        "# EDMD-KSWGD vs DMPS (documented defaults, one seed)",
        "",
        f"Produced by: `{COMMAND}`",
        "",
        f"{args.n_particles} particles, {args.n_steps} steps, 1000 training / 1000 reference "
        "points, standardised space; `sinkhorn` = debiased Sinkhorn divergence to the "
        "reference (lower is better), `init_score` of x0, `exact` of a fresh i.i.d. sample.",
        "",
    ]
    (out / "compare_dmps.md").write_text("\n".join(header) + "\n" + markdown_table(df) + "\n")
    print(markdown_table(df))


if __name__ == "__main__":
    main()
