"""The sphere-shell experiment of the DMPS reference code, with the suite's Sinkhorn metric.

Targets ``shell3`` and ``shell100`` (uniform on 0.99 <= |x| <= 1 in R^3 / R^100), in the
reference's raw coordinates (no standardisation). N = 500 training points, m = 500
particles started from fresh target samples restricted to the cap (x_2 > 0.7 in d = 3,
x_2 > 0.2 in d = 100), 1000 iterations, median-heuristic bandwidth, all modes above tol.

Step sizes: the reference code's kernel gradient carries an extra 1/eps factor (it divides
the analytic gradient of Kt by eps once more), so its step h_ref equals h = h_ref / eps in
this suite's units (``samplers.core.spectral``, exact gradient). Rows: the reference steps
(h_ref = 5 in d = 3, 20 in d = 100, converted), the suite's default automatic rule, the cap
init itself and ``exact`` (fresh target samples, m of them: the noise floor).

Score: debiased Sinkhorn divergence (``metrics.sinkhorn``) against 2000 fresh reference
samples, eps = the target's ``metric_eps_fraction`` x the reference's median squared
distance (0.05 for shell3, 1.0 for shell100). Mean +- std over ``--seeds`` seeds (each seed
draws its own training set, init, reference and exact sample).

    python -m benchmarks.studies.shell_experiment  # results/dmps/shell_experiment.{md,csv,png}
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

import benchmarks._imports  # noqa: F401  (guards the local ``datasets`` package)
from benchmarks.execution.provenance import produced_by
from benchmarks.presentation.tables import markdown_table
from common.geometry import median_bandwidth_sq, relative_eps
from datasets.base import get_target
from metrics.sinkhorn import sinkhorn_divergence
from samplers import get_sampler

COMMAND = "python -m benchmarks.studies.shell_experiment"
REFERENCE_STEP = {"shell3": 5.0, "shell100": 20.0}


def sinkhorn(x: torch.Tensor, ref: torch.Tensor, eps: float) -> float:
    res = sinkhorn_divergence(x, ref, eps=eps)
    return res.value if res.converged else float("nan")


def run_target(name: str, seed: int, args: argparse.Namespace, curves: dict) -> list[dict]:
    target = get_target(name)
    base = 1000 * seed
    train = target.sample(args.train, seed=base + 1)
    reference = target.sample(args.reference, seed=base + 2)
    exact = target.sample(args.particles, seed=base + 3)
    x0 = target.sample_cap(args.particles, seed=base + 4)
    eps_metric = relative_eps(reference, target.metric_eps_fraction)
    rows = []

    def row(label: str, x: torch.Tensor, **extra) -> dict:
        r = {
            "target": name,
            "dim": target.dim,
            "seed": seed,
            "method": label,
            "sinkhorn": sinkhorn(x, reference, eps_metric),
            "mean_radius": float(x.norm(dim=1).mean()),
            "cap_fraction": float(target.cap_mask(x).double().mean()),
            "metric_eps": eps_metric,
            **extra,
        }
        print(r, flush=True)
        return r

    rows.append(row("exact", exact))
    rows.append(row("cap init", x0))
    variants = {
        "dmps (reference step)": {"step_size": "ref"},
        "dmps (auto step, default)": {},
    }
    eps_kernel = median_bandwidth_sq(train)
    for label, params in variants.items():
        if params.get("step_size") == "ref":
            params = {"step_size": REFERENCE_STEP[name] / eps_kernel}
        sampler = get_sampler("dmps", n_modes=train.shape[0], **params).fit(train, target)
        t0 = time.perf_counter()
        res = sampler.run(x0, args.steps, seed=seed, record_every=args.record_every)
        wall = time.perf_counter() - t0
        rows.append(
            row(
                label,
                res.particles,
                step_size=res.info["step_size"],
                step_size_ref_units=res.info["step_size_ref_units"],
                bandwidth_eps=res.info["eps"],
                n_modes=res.info["n_modes_used"],
                diverged=res.diverged,
                run_seconds=wall,
            )
        )
        if seed == 0 and res.trajectory is not None:
            steps = [min(i * args.record_every, args.steps) for i in range(len(res.trajectory))]
            values = [sinkhorn(f, reference, eps_metric) for f in res.trajectory]
            curves[(name, label)] = (steps, values, res.particles)
    if seed == 0:
        curves[(name, "exact")] = ([0, args.steps], [rows[0]["sinkhorn"]] * 2, exact)
        curves[(name, "cap init")] = ([], [], x0)
    return rows


def draw_figure(curves: dict) -> plt.Figure:
    """Sinkhorn divergence against iteration for both targets, and the shell3 particles of
    the cap init and of DMPS projected on (x_1, x_2), coloured by x_3 on one shared scale
    (-1 to 1, the shell's extent) with its colour bar."""
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2), layout="constrained")
    for col, name in enumerate(("shell3", "shell100")):
        ax = axes[col]
        for (tname, label), (steps, values, _) in curves.items():
            if tname == name and steps:
                ax.plot(steps, values, label=label, ls="--" if label == "exact" else "-")
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("Sinkhorn divergence")
        ax.set_title(f"{name}: S vs iteration (seed 0)")
        ax.legend(fontsize=8)
    points = None
    for col, label in ((2, "cap init"), (3, "dmps (reference step)")):
        ax = axes[col]
        x = curves[("shell3", label)][2]
        points = ax.scatter(x[:, 0], x[:, 1], s=4, c=x[:, 2], cmap="viridis", vmin=-1, vmax=1)
        ax.set_aspect("equal")
        ax.set_xlim(-1.1, 1.1)
        ax.set_ylim(-1.1, 1.1)
        ax.set_xlabel("x_1")
        ax.set_ylabel("x_2")
        ax.set_title(f"shell3, {label} (colour: x_3)")
    fig.colorbar(points, ax=list(axes[2:]), label="x_3", shrink=0.9)
    return fig


def figure(curves: dict, path: Path) -> None:
    fig = draw_figure(curves)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=500)
    parser.add_argument("--particles", type=int, default=500)
    parser.add_argument("--reference", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--record-every", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/dmps"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    curves: dict = {}
    with threadpool_limits(args.threads):
        for name in ("shell3", "shell100"):
            for seed in range(args.seeds):
                rows.extend(run_target(name, seed, args, curves))
    df = pd.DataFrame(rows)
    df.to_csv(args.out / "shell_experiment.csv", index=False)
    summary = (
        df.groupby(["target", "method"], sort=False)
        .agg(
            sinkhorn_mean=("sinkhorn", "mean"),
            sinkhorn_std=("sinkhorn", "std"),
            mean_radius=("mean_radius", "mean"),
            cap_fraction=("cap_fraction", "mean"),
            step_size=("step_size", "mean"),
            step_size_ref_units=("step_size_ref_units", "mean"),
            metric_eps=("metric_eps", "mean"),
        )
        .reset_index()
    )
    figure(curves, args.out / "shell_experiment.png")
    cmd = " ".join([COMMAND, *(sys.argv[1:] if argv is None else argv)])
    text = [
        "# DMPS sphere-shell experiment (reference code's set-up)",
        "",
        produced_by(cmd),
        "",
        f"N = {args.train} training points, m = {args.particles} particles from the cap, "
        f"{args.steps} iterations, {args.seeds} seeds (mean and std), all modes above tol. "
        "Sinkhorn divergence vs "
        f"{args.reference} fresh reference samples; `exact` = {args.particles} fresh target "
        "samples (the noise floor). step_size is in this suite's units (exact gradient); "
        "step_size_ref_units = step_size x eps is the reference code's unit (its gradient "
        "carries an extra 1/eps). cap_fraction: share of particles in the cap region "
        "(target: 0.15 for x_2 > 0.7 in d = 3, about 0.025 for x_2 > 0.2 in d = 100).",
        "",
        markdown_table(summary),
        "",
        "![shell experiment](shell_experiment.png)",
        "",
    ]
    (args.out / "shell_experiment.md").write_text("\n".join(text))


if __name__ == "__main__":
    main()
