"""Metric calibration of every synthetic target: S(exact) vs S(wrong) at the declared eps.

For each target of the families mixtures / manifolds / bounded and each seed: standardise
with a training split, then compute the debiased Sinkhorn divergence between the reference
split and (a) fresh exact samples (the noise floor a perfect sampler reaches) and (b) a
deliberately wrong sample (``datasets.calibration.wrong_sample``: a dropped mixture region
or half of the support), at eps = ``metric_eps_fraction`` x median squared pairwise distance
of the reference, in the standardised space. Two sizes: the suites' (300 particles vs a
1000-point reference) and the calibration test's (500 vs 500).

Produced files: ``results/targets/calibration.csv`` and ``calibration.md``. Command:
``OMP_NUM_THREADS=1 python -m benchmarks.studies.calibration_targets`` (Sinkhorn:
``metrics.sinkhorn.sinkhorn_divergence`` with its default tolerance).

``--readings``: every registered metric a synthetic target supports (support error,
data-copying, C2ST, ... found through the registry, none named here), at the suites' sizes
(300 particles, 1000-point training split and reference), on exact samples and five
corruptions in the standardised space: ``wrong`` (as above), ``blur5`` / ``blur10`` (exact
samples + N(0, s^2 I) with s = 0.05 / 0.1: 5 % / 10 % of every coordinate's std, off the
support on manifolds), ``kmeans`` (the 300 k-means centroids of the training split: a
quantised training set) and ``copies`` (300 training points). Written to
``calibration_readings.csv`` and as a section of ``calibration.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks.execution.provenance import produced_by
from common.geometry import median_sq_distance
from datasets import StandardisedTarget, available_targets, get_target
from datasets.calibration import wrong_sample
from metrics.sinkhorn import sinkhorn_divergence

FAMILIES = ("mixtures", "manifolds", "bounded")
SIZES = ((300, 1000), (500, 500))  # (particles, reference)
COMMAND = "OMP_NUM_THREADS=1 python -m benchmarks.studies.calibration_targets"


def _divergence(x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
    res = sinkhorn_divergence(x, y, eps=eps)
    if not res.converged:
        raise RuntimeError(f"sinkhorn did not converge: {res.info.get('message')}")
    return float(res.value)


def calibrate(names: list[str], seeds: list[int]) -> tuple[pd.DataFrame, str]:
    divergence, solver = _divergence, "metrics.sinkhorn.sinkhorn_divergence"
    rows = []
    for name in names:
        base = get_target(name)
        for seed in seeds:
            for n_part, n_ref in SIZES:
                s0 = 1000 * seed
                std = StandardisedTarget.from_samples(base, base.sample(2000, seed=s0))
                reference = std.sample(n_ref, seed=s0 + 1)
                exact = std.sample(n_part, seed=s0 + 2)
                wrong = wrong_sample(std, n_part, seed=s0 + 3)
                eps = base.metric_eps_fraction * median_sq_distance(reference)
                t0 = time.perf_counter()
                try:
                    s_exact = divergence(exact, reference, eps)
                    s_wrong = divergence(wrong, reference, eps)
                except RuntimeError as err:  # not converged: a recorded failure, no number
                    print(f"{name} seed {seed} ({n_part} vs {n_ref}): {err}")
                    s_exact = s_wrong = float("nan")
                rows.append(
                    {
                        "target": name,
                        "family": base.family,
                        "dim": base.dim,
                        "eps_fraction": base.metric_eps_fraction,
                        "n_particles": n_part,
                        "n_reference": n_ref,
                        "seed": seed,
                        "eps": eps,
                        "S_exact": s_exact,
                        "S_wrong": s_wrong,
                        "ratio": s_wrong / s_exact if s_exact > 0 else float("nan"),
                        "seconds": time.perf_counter() - t0,
                    }
                )
    return pd.DataFrame(rows), solver


def to_markdown(df: pd.DataFrame, solver: str, seeds: list[int]) -> str:
    lines = [
        "# Metric calibration of the synthetic targets",
        "",
        produced_by(COMMAND) + f" (seeds {seeds}; Sinkhorn solver: {solver}).",
        "",
        "Debiased Sinkhorn divergence in the standardised space at eps = fraction x median",
        "squared pairwise distance of the reference. `exact`: fresh i.i.d. target samples;",
        "`wrong`: `datasets.calibration.wrong_sample` (dropped mixture region, half of the",
        "support; the cap region for shell100). Mean over converged seeds, and the smallest ratio.",
        "",
    ]
    for (n_part, n_ref), grp in df.groupby(["n_particles", "n_reference"], sort=False):
        lines += [
            f"## {n_part} particles vs a {n_ref}-point reference",
            "",
            "| target | family | d | eps fraction | eps | S(exact) | S(wrong) | min ratio "
            "| not converged |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, g in grp.groupby("target", sort=False):
            lines.append(
                f"| {name} | {g.family.iloc[0]} | {g.dim.iloc[0]} | {g.eps_fraction.iloc[0]:g} "
                f"| {g.eps.mean():.3g} | {g.S_exact.mean():.4f} "
                f"| {g.S_wrong.mean():.4f} | {g.ratio.min():.1f} "
                f"| {int(g.S_exact.isna().sum())} of {len(g)} |"
            )
        lines.append("")
    return "\n".join(lines)


READINGS_SIZES = (300, 1000, 1000)  # particles, training split, reference
CASES = ("exact", "wrong", "blur5", "blur10", "kmeans", "copies")
READINGS_MARK = "<!-- readings: python -m benchmarks.studies.calibration_targets --readings -->"


def corrupted_cases(
    target: StandardisedTarget, train: torch.Tensor, n: int, seed: int
) -> dict[str, torch.Tensor]:
    """The particle sets of :data:`CASES` (n, d) each, standardised space, seeded."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    exact = target.sample(n, seed=seed + 2)
    gen = torch.Generator().manual_seed(seed + 4)
    noise = torch.randn(exact.shape, generator=gen, dtype=torch.float64)
    with threadpool_limits(1):
        km = KMeans(n_clusters=n, n_init=1, random_state=seed).fit(train.numpy())
    perm = torch.randperm(train.shape[0], generator=gen)[:n]
    return {
        "exact": exact,
        "wrong": wrong_sample(target, n, seed=seed + 3),
        "blur5": exact + 0.05 * noise,
        "blur10": exact + 0.1 * noise,
        "kmeans": torch.as_tensor(km.cluster_centers_, dtype=torch.float64),
        "copies": train[perm],
    }


def readings(names: list[str], seeds: list[int]) -> pd.DataFrame:
    """Long rows (target, seed, case, metric, value) of every applicable registered metric."""
    from metrics.base import available_metrics, get_metric

    n_part, n_train, n_ref = READINGS_SIZES
    rows = []
    for name in names:
        base = get_target(name)
        for seed in seeds:
            s0 = 1000 * seed
            train_raw = base.sample(n_train, seed=s0)
            std = StandardisedTarget.from_samples(base, train_raw)
            train = std.to_standard(train_raw)
            reference = std.sample(n_ref, seed=s0 + 1)
            eps = base.metric_eps_fraction * median_sq_distance(reference)
            metrics = [get_metric(m) for m in available_metrics()]
            metrics = [m for m in metrics if not m.unmet_needs(std)]
            for case, x in corrupted_cases(std, train, n_part, s0).items():
                for metric in metrics:
                    t0 = time.perf_counter()
                    try:
                        res = metric.on(x, reference, train=train, scale=eps, seed=seed, target=std)
                        value = res.value if res.converged else float("nan")
                    except Exception as err:  # a recorded failure, no number
                        print(f"{name} {seed} {case} {metric.name}: {err}")
                        value = float("nan")
                    rows.append(
                        {
                            "target": name,
                            "family": base.family,
                            "seed": seed,
                            "case": case,
                            "metric": metric.name,
                            "value": value,
                            "seconds": time.perf_counter() - t0,
                        }
                    )
            print(f"{name} seed {seed} done", flush=True)
    return pd.DataFrame(rows)


def separated(a: pd.Series, b: pd.Series) -> bool:
    """The seed ranges of two cases do not overlap (every value of one beyond the other's)."""
    a, b = a.dropna(), b.dropna()
    return bool(len(a) and len(b) and (a.min() > b.max() or a.max() < b.min()))


def readings_markdown(df: pd.DataFrame, seeds: list[int], command: str) -> str:
    lines = [
        READINGS_MARK,
        "## Readings on corrupted samples (suite sizes)",
        "",
        produced_by(command) + f" (seeds {seeds}: few, to keep the run within ~10 min on",
        "2 shared cores). 300 particles against a 1000-point reference, 1000-point training",
        "split, standardised space. Cases: `exact` fresh samples; `wrong` dropped mode / half",
        "support; `blur5`/`blur10` exact + N(0, s^2 I), s = 0.05 / 0.1 standardised units (5 % /",
        "10 % of each coordinate's std); `kmeans` 300 k-means centroids of the training split;",
        "`copies` 300 training points. Mean over seeds; a case in **bold** is separated from",
        "`exact` (its seed range does not overlap exact's).",
        "",
    ]
    summary: dict[str, list[str]] = {}
    for family, fam in df.groupby("family", sort=False):
        lines += [f"### {family}", "", "| target | metric | " + " | ".join(CASES) + " |"]
        lines.append("|---|---|" + "---|" * len(CASES))
        for (target, metric), g in fam.groupby(["target", "metric"], sort=False):
            by = {c: g[g["case"] == c]["value"] for c in CASES}
            cells = []
            for c in CASES:
                v = by[c].mean()
                text = "nan" if pd.isna(v) else f"{v:.3g}"
                if c != "exact" and separated(by[c], by["exact"]):
                    text = f"**{text}**"
                cells.append(text)
            if separated(by["blur10"], by["exact"]):
                summary.setdefault(target, []).append(metric)
            lines.append(f"| {target} | {metric} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["### Which readings separate 10 % blur from exact samples", ""]
    for target in dict.fromkeys(df["target"]):
        lines.append(f"- {target}: {', '.join(summary.get(target, [])) or 'none'}")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", nargs="*", default=None)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("results/targets"))
    parser.add_argument(
        "--readings", action="store_true", help="every metric on exact and corrupted samples"
    )
    args = parser.parse_args(argv)
    names = args.targets or [n for f in FAMILIES for n in available_targets(f)]
    if args.readings:
        command = f"{COMMAND} --readings --seeds {' '.join(map(str, args.seeds))}"
        df = readings(names, args.seeds)
        args.out.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.out / "calibration_readings.csv", index=False)
        path = args.out / "calibration.md"
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        old = old.split(READINGS_MARK)[0].rstrip() + "\n\n"
        path.write_text(old + readings_markdown(df, args.seeds, command) + "\n", encoding="utf-8")
        print(readings_markdown(df, args.seeds, command))
        return
    df, solver = calibrate(names, args.seeds)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "calibration.csv", index=False)
    (args.out / "calibration.md").write_text(to_markdown(df, solver, args.seeds) + "\n")
    print(to_markdown(df, solver, args.seeds))


if __name__ == "__main__":
    main()
