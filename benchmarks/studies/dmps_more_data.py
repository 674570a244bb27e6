"""DMPS with more training data: the step rules and bandwidths from N = 1,000 to 60,000.

For every (target / init, N, seed) it fits DMPS once per bandwidth rule and runs each step
rule from the same x0 (the suites' splits and starts, ``benchmarks.execution.data.prepare``):

- ``old``: ``step_rule="first_step"`` (h fixed once so that the first step moves the median
  particle 0.2 sqrt(eps), moves capped at sqrt(eps), ``step_control="off"``), median bandwidth
  median|X_a - X_b|^2 / (2 log(N + 1)), and above N = 20,000 the sparse kernel's eps
  narrowed to its kNN budget (``landmarks="off"``): the rule before issue 24;
- ``new``: the defaults: the same step rule with per-particle stability control
  (``step_control="damp"``), ``bandwidth_rule="capped_median"``
  (eps = median / (2 log(min(N, 1000) + 1)): the median heuristic, fixed from N = 1,000 on)
  and, where the kNN budget cannot hold that kernel, a seeded subset of landmarks
  (``landmarks="auto"``);
- ``flow`` (``--rules``): ``step_rule="flow"`` (time steps tau_t <= 0.2 of the N-independent
  LAWGD field (N / eps^2) v / m, every move <= 0.5 sqrt(eps), tau_t <= 1 / (the field's
  secant Lipschitz estimate)) with the capped bandwidth;
- ``flow_median`` (``--rules``): the flow step with the median bandwidth.

Per run it records what the issue asks for: eps, the kept spectrum (modes kept, lambda_1,
sum and largest LAWGD weight, and the sum times N / eps^2), the transport field's size
along the run (median and max of
|(N / eps^2) v / m| at the first and last step), the first step (h in code units and tau in
flow time), the flow time run, the clipped share of particle-steps, the largest particle
radius (standardised units; the overshoot), S_eps against the reference split and the
support error; fit and step seconds.

    python -m benchmarks.studies.dmps_more_data            # the full spec (hours)
    python -m benchmarks.studies.dmps_more_data --columns circle/cap circle/gaussian \\
        --sizes 1000 3000 10000 --seeds 0 --no-fashion --label reduced   # a reduced run

Writes ``results/dmps/more_data.md`` and ``results/dmps/more_data.csv``.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from threadpoolctl import threadpool_limits

import benchmarks._imports  # noqa: F401  (guards the local ``datasets`` package)
from benchmarks.execution.data import PreparedTarget, prepare
from benchmarks.execution.provenance import produced_by
from benchmarks.presentation.tables import markdown_table
from metrics.base import MetricContext, get_metric
from samplers import get_sampler
from samplers.core.spectral import lawgd_transport_scale, transport_direction
from samplers.dmps import DMPS

COMMAND = "python -m benchmarks.studies.dmps_more_data"
PARTIAL = "more_data.partial.csv"
"""Rows as they finish: a rerun of the same command resumes from them (deleted at the end)."""
SUITE_SEED = 20261125
"""The suites' seed (``benchmarks.suites.Suite.suite_seed``): the same splits and starts."""
COLUMNS = (
    "circle/cap",
    "circle/gaussian",
    "half_sphere/cap",
    "two_moons/gaussian",
    "mixture10d/gaussian",
)
SIZES = (1000, 3000, 10000, 30000)
FASHION = "fashion_mnist_latent/gaussian"
FASHION_SIZES = (1200, 6000, 60000)
RULES = {
    "old": {
        "step_rule": "first_step",
        "bandwidth_rule": "median",
        "landmarks": "off",
        "step_control": "off",
    },
    "new": {},
    "flow": {"step_rule": "flow"},
    "flow_median": {
        "step_rule": "flow",
        "bandwidth_rule": "median",
        "landmarks": "off",
        "step_control": "off",
    },
}
DEFAULTS = get_sampler("dmps").params
LARGE_N = 20000
"""Sizes above this (the sparse kernel's, minutes a fit on 2 cores) run for ``--large-seeds``."""
#: budgets as in the suites: (particles, reference, steps)
BUDGET = {"latent": (200, 300, 300), "other": (300, 1000, 300)}
CSV_FIRST = (
    "rule",
    "target",
    "init",
    "n_train",
    "seed",
    "sinkhorn",
    "support_error",
    "clipped_fraction",
    "step_size",
    "eps",
)


def field_size(sampler: DMPS, x: torch.Tensor) -> tuple[float, float]:
    """(median, max) of |(N / eps^2) v_i / m| at particles x: the N-independent field."""
    v = transport_direction(sampler.kernel, x, sampler.Phi, sampler.w)
    norms = v.norm(dim=1) * lawgd_transport_scale(sampler.kernel) / x.shape[0]
    return float(norms.median()), float(norms.max())


def score(name: str, particles: torch.Tensor, data: PreparedTarget, seed: int) -> float:
    """One registered metric on the run's particles (NaN where it does not apply)."""
    metric = get_metric(name)
    if metric.unmet_needs(data.target):
        return float("nan")
    ctx = MetricContext(
        particles=particles.to(torch.float64),
        reference=data.reference,
        train=data.train,
        scale=data.scale,
        seed=seed,
        target=data.target,
    )
    res = metric(ctx)
    return float(res.value) if res.converged else float("nan")


def run_column(column: str, n_train: int, seed: int, rules: list[str]) -> list[dict]:
    """Rows of every rule on one (target / init, N, seed)."""
    target, init = column.split("/")
    m, n_ref, steps = BUDGET["latent" if target.endswith("_latent") else "other"]
    data = prepare(target, seed, n_train, n_ref, m, (init,), SUITE_SEED)
    x0 = data.x0[init]
    fits: dict[str, tuple] = {}
    rows = []
    for rule in rules:
        params = RULES[rule]
        fit_params = {k: params.get(k, DEFAULTS[k]) for k in ("bandwidth_rule", "landmarks")}
        key = tuple(fit_params.values())
        if key not in fits:
            t0 = time.perf_counter()
            fitted = get_sampler("dmps", **fit_params).fit(data.train, data.target)
            fits[key] = (fitted, time.perf_counter() - t0)
        fitted, fit_s = fits[key]
        sampler = copy.copy(fitted)  # the run rules only read params at run time
        sampler.params = {**fitted.params, **params}
        t0 = time.perf_counter()
        res = sampler.run(x0, steps, seed=seed)
        run_s = time.perf_counter() - t0
        info = res.info
        w = sampler.w
        eps = sampler.kernel.eps
        scale = lawgd_transport_scale(sampler.kernel)
        v0 = field_size(sampler, x0)
        v1 = field_size(sampler, res.particles)
        row = {
            "rule": rule,
            "target": target,
            "init": init,
            "n_train": n_train,
            "seed": seed,
            "sinkhorn": score("sinkhorn", res.particles, data, seed),
            "support_error": score("support_error", res.particles, data, seed),
            "clipped_fraction": info["clipped_fraction"],
            "step_size": info["step_size"],
            "eps": eps,
            "flow_step": info["flow_step"],
            "flow_time": info["flow_time"],
            "n_modes": int(w.numel()),
            "lambda_1": 1.0 - float(info["spectral_gap"]),
            "w_sum": float(w.sum()),
            "w_max": float(w.max()),
            "w_sum_scaled": float(w.sum()) * scale,
            "field_med_first": v0[0],
            "field_max_first": v0[1],
            "field_med_last": v1[0],
            "field_max_last": v1[1],
            "max_radius": float(res.particles.norm(dim=1).max()),
            "x0_max_radius": float(x0.norm(dim=1).max()),
            "diverged": bool(res.diverged),
            "fit_seconds": fit_s,
            "step_seconds": run_s / max(1, info["steps"]),
            "kernel": info.get("kernel"),
            "n_landmarks": int(sampler.fit_info.get("n_landmarks", n_train)),
        }
        print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
        rows.append(row)
    return rows


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per (target / init, rule): S_eps and clipped share by N (seed means), and the ratio
    S_eps(largest N) / S_eps(smallest N) over the seeds run at the largest N (the issue's
    mark: at most 1.1)."""
    out = []
    for (target, init, rule), g in df.groupby(["target", "init", "rule"], sort=False):
        means = g.groupby("n_train")[["sinkhorn", "clipped_fraction", "max_radius"]].mean()
        sizes = sorted(means.index)
        row = {"column": f"{target} / {init}", "rule": rule}
        for n in sizes:
            row[f"S N={n}"] = f"{means.loc[n, 'sinkhorn']:.4f}"
        for n in sizes:
            row[f"clip N={n}"] = f"{means.loc[n, 'clipped_fraction']:.4f}"
        # the same seeds at both ends (the large sizes may run fewer: --large-seeds)
        seeds = set(g.loc[g["n_train"] == sizes[-1], "seed"])
        paired = g[g["seed"].isin(seeds)].groupby("n_train")["sinkhorn"].mean()
        ratio = paired.loc[sizes[-1]] / paired.loc[sizes[0]]
        row["S ratio (largest / smallest N, same seeds)"] = f"{ratio:.2f}"
        out.append(row)
    # the study's column and rule order, whatever order a resumed run finished them in
    order = [c.replace("/", " / ") for c in (*COLUMNS, FASHION)]
    rank = {c: i for i, c in enumerate(order)}
    rules = list(RULES)
    out.sort(key=lambda r: (rank.get(r["column"], len(order)), rules.index(r["rule"])))
    return pd.DataFrame(out).fillna("")


def diagnostics_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per run (seed 0 only): the spectrum, field, step and overshoot facts."""
    cols = [
        "target",
        "init",
        "n_train",
        "rule",
        "kernel",
        "n_landmarks",
        "eps",
        "n_modes",
        "lambda_1",
        "w_sum",
        "w_max",
        "w_sum_scaled",
        "field_med_first",
        "field_max_first",
        "field_med_last",
        "step_size",
        "flow_step",
        "flow_time",
        "clipped_fraction",
        "max_radius",
        "fit_seconds",
        "step_seconds",
    ]
    d = df[df["seed"] == df["seed"].min()][cols].copy()
    for c in cols[6:]:
        d[c] = d[c].map(lambda v: f"{v:.4g}")
    return d


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--columns", nargs="*", default=list(COLUMNS), help="target/init pairs (none: Fashion only)"
    )
    p.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    p.add_argument("--fashion-sizes", nargs="+", type=int, default=list(FASHION_SIZES))
    p.add_argument("--no-fashion", action="store_true", help="leave out the Fashion column")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument(
        "--large-seeds",
        nargs="+",
        type=int,
        default=None,
        help=f"seeds of the sizes above {LARGE_N:,} (default: --seeds)",
    )
    p.add_argument("--rules", nargs="+", default=["old", "new"], choices=list(RULES))
    p.add_argument("--data-root", default="/usr/share/datasets")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--label", default="full", help="'full' or a label such as 'reduced'")
    p.add_argument("--out", type=Path, default=Path("results/dmps"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from datasets.latents import set_data_root

    set_data_root(args.data_root)
    plan = [(c, n) for c in args.columns for n in args.sizes]
    if not args.no_fashion:
        plan += [(FASHION, n) for n in args.fashion_sizes]
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / PARTIAL
    done = pd.read_csv(partial) if partial.exists() else pd.DataFrame()
    resumed = len(done)
    if resumed:
        print(f"resuming: {len(done)} rows of {partial} kept", flush=True)
    t_all = time.perf_counter()
    large_seeds = args.seeds if args.large_seeds is None else args.large_seeds
    # the small sizes of every seed first: minutes, where one large fit takes many
    order = [(s, c, n) for s in args.seeds for c, n in plan if n <= LARGE_N]
    order += [(s, c, n) for s in large_seeds for c, n in plan if n > LARGE_N]
    with threadpool_limits(args.threads):
        for seed, column, n in order:
            todo = [r for r in args.rules if not _has_row(done, r, column, n, seed)]
            if not todo:
                continue
            new = pd.DataFrame(run_column(column, n, seed, todo))
            done = pd.concat([done, new], ignore_index=True)
            # the whole file, replaced atomically: appending rows whose columns differ from
            # the file's header (a resumed run after a new column) made a ragged csv
            tmp = partial.with_suffix(".tmp")
            done.to_csv(tmp, index=False)
            os.replace(tmp, partial)
    wall = time.perf_counter() - t_all  # this invocation's (a resumed run kept earlier rows)
    keep = done["rule"].isin(args.rules) & done["seed"].isin(args.seeds)
    planned = set(plan)
    columns = done["target"] + "/" + done["init"]
    keep &= pd.Series(
        [
            (c, n) in planned and (n <= LARGE_N or seed in large_seeds)
            for c, n, seed in zip(columns, done["n_train"], done["seed"], strict=True)
        ],
        index=done.index,
    )
    df = done[keep].reset_index(drop=True)
    if "n_landmarks" not in df:  # rows from before the column: every fit kept all N points
        df["n_landmarks"] = df["n_train"]
    df["n_landmarks"] = df["n_landmarks"].fillna(df["n_train"]).astype(int)
    df[list(CSV_FIRST) + [c for c in df.columns if c not in CSV_FIRST]].to_csv(
        args.out / "more_data.csv", index=False
    )
    load = os.getloadavg()
    cmd = " ".join([COMMAND, *(sys.argv[1:] if argv is None else argv)])
    text = [
        "# DMPS with more training data: step rule and bandwidth across N (issue 24)",
        "",
        produced_by(f"OMP_NUM_THREADS={args.threads} {cmd}")
        + f" ({args.label} run; {wall / 60:.1f} min"
        + (f" after resuming from {resumed} finished rows" if resumed else "")
        + ", load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on a machine shared by other jobs).",
        "",
        "Rules: `old` = the first-step rule (h fixed so the first step moves the median "
        "particle 0.2 sqrt(eps), moves capped at sqrt(eps), the cap alone) with eps = median / "
        "(2 log(N + 1)), and above N = 20,000 the sparse kernel's eps narrowed to its kNN "
        "budget; `new` = the defaults: the same step rule with per-particle stability "
        "control (a move that hits the cap against the particle's previous move halves its "
        "step; `samplers.core.transport_run.damped_displacement`), eps = median / "
        "(2 log(min(N, 1000) + 1)) (the median heuristic, fixed from N = 1,000 on) and, above "
        "N = 20,000, the exact (dense) kernel on a seeded subset of 20,000 landmarks where the "
        "kNN budget holds fewer points (`samplers.dmps.auto_kernel_plan`; n_landmarks in the "
        "csv); `flow` = "
        "the flow step rule (time steps tau_t <= 0.2 of the N-independent LAWGD field "
        "(N / eps^2) v / m, every move <= 0.5 sqrt(eps), tau_t <= 1 / the field's secant "
        "Lipschitz estimate) with the new eps; `flow_median` = the flow rule with the old "
        "eps. "
        "Splits and starts of the suites (suite seed "
        f"{SUITE_SEED}); 300 particles, 300 steps, reference 1,000 (latents: 200, 300 "
        "steps, reference 300). Seeds: "
        + ", ".join(map(str, args.seeds))
        + (
            f" (above N = {LARGE_N:,}: " + ", ".join(map(str, large_seeds)) + ")"
            if large_seeds != args.seeds
            else ""
        )
        + ".",
        "",
        "## S_eps and clipped share by N",
        "",
        markdown_table(summary_table(df)),
        "",
        "## Diagnostics (first seed)",
        "",
        "field_* = |(N / eps^2) v_i / m| (median, max) at the first and last step: the "
        "N-independent LAWGD velocity; w_sum_scaled = sum_k w_k N / eps^2 (it grows with N: "
        "the N-independent factor of mode k is w_k lam_k^2 / eps^2 ~ eps / (1 - lam_k), not "
        "w_k); step_size = h of the first step in code units; flow_step = "
        "its time in the flow's units, flow_time = the time run; max_radius = the largest "
        "|x| of the final particles (standardised units).",
        "",
        markdown_table(diagnostics_table(df)),
        "",
    ]
    (args.out / "more_data.md").write_text("\n".join(text))
    partial.unlink()


def _has_row(done: pd.DataFrame, rule: str, column: str, n: int, seed: int) -> bool:
    """Whether the partial file already holds this (rule, target / init, N, seed) row."""
    if done.empty:
        return False
    target, init = column.split("/")
    hit = (done["rule"] == rule) & (done["target"] == target) & (done["init"] == init)
    return bool((hit & (done["n_train"] == n) & (done["seed"] == seed)).any())


if __name__ == "__main__":
    main()
