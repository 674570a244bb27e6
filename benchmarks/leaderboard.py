"""Leaderboards from long-format rows: samplers x targets, mean ± std over seeds,
wall time, average rank, with the ``exact`` row (fresh i.i.d. target samples).

Which metric heads the table, how each metric ranks and what its caption says come from the
metric registry (``metrics.base.Metric``) and the suite (``Suite.headline``, saved as
``suite.json`` beside the rows); nothing here names a metric."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.baselines import CAPTION as BASELINE_CAPTION
from benchmarks.baselines import mark_unbeaten
from benchmarks.store import atomic_path, atomic_write_text
from benchmarks.tables import markdown_table
from metrics.base import Metric, MetricError, MetricResult, get_metric

EXACT = "exact"
SUITE_FILE = "suite.json"


def metric_spec(name: str) -> Metric:
    """The registered metric ``name``; an unregistered name (rows of a plug-in not loaded
    now) is shown as a ranked, lower-is-better metric without a description."""
    try:
        return get_metric(name)
    except MetricError:
        return Metric(name=name, compute=_unavailable)


def _unavailable(ctx: object) -> MetricResult:
    raise MetricError("this metric is not registered in this process")


def headline_of(out_dir: Path, rows: list[dict[str, Any]]) -> str | None:
    """The headline metric of the suite in ``out_dir``: its ``suite.json`` when present,
    else the first metric of the rows (the runner scores the suite's metrics in order)."""
    path = out_dir / SUITE_FILE
    if path.exists():
        suite = json.loads(path.read_text(encoding="utf-8"))
        return suite.get("headline") or suite["metrics"][0]
    return next((r["metric"] for r in rows if r.get("metric")), None)


def grid_labels(df: pd.DataFrame) -> pd.Series:
    """Sampler names, with the swept parameters appended where one sampler ran with several
    parameter sets (a grid): ``dmps[step_size=0.1]``; plain names otherwise."""
    labels = df["sampler"].astype(str).copy()
    if "params" not in df:
        return labels
    for sampler, g in df.groupby("sampler", sort=False):
        distinct = g["params"].unique()
        if len(distinct) < 2:
            continue
        parsed = {p: json.loads(p) for p in distinct}
        keys = sorted({k for d in parsed.values() for k in d})
        swept = [k for k in keys if len({json.dumps(d.get(k)) for d in parsed.values()}) > 1]
        for p, d in parsed.items():
            tag = ",".join(f"{k}={d.get(k)}" for k in swept)
            labels[(df["sampler"] == sampler) & (df["params"] == p)] = f"{sampler}[{tag}]"
    return labels


def rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["sampler"] = grid_labels(df)
    df["column"] = df["target"]
    if df["init"].nunique() > 1:
        df["column"] = df["target"] + " / " + df["init"]
    df["wall_seconds"] = df["fit_seconds"].fillna(0.0) + df["sample_seconds"].fillna(0.0)
    return df


def _fmt(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "nan"
    if mean != 0 and (abs(mean) < 1e-3 or abs(mean) >= 1e4):
        return f"{mean:.2e} ± {std:.1e}"
    return f"{mean:.4f} ± {std:.4f}"


def summarise(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (sampler, column): mean, std, counts of ok/failed runs, status text."""
    d = df[df["metric"] == metric]
    out = []
    for (sampler, column), g in d.groupby(["sampler", "column"], sort=False):
        good = g[(g["status"] == "ok") & g["converged"].astype(bool) & np.isfinite(g["value"])]
        vals = good["value"].to_numpy(dtype=float)
        statuses = g["status"].value_counts().to_dict()
        out.append(
            {
                "sampler": sampler,
                "column": column,
                "mean": float(vals.mean()) if len(vals) else float("nan"),
                "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                "n_ok": int(len(vals)),
                "n_runs": int(len(g)),
                "statuses": ",".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
                "message": next((m for m in g["message"] if m), ""),
                "wall_seconds": float(g["wall_seconds"].mean()),
            }
        )
    return pd.DataFrame(out)


def _cell(r: pd.Series) -> str:
    if r["n_ok"] == 0:
        st = r["statuses"]
        if "skipped" in st:
            return "skipped"
        if "outside_support" in st:
            return "start outside support"
        if "diverged" in st:
            return "diverged"
        if "timeout" in st:
            return "timeout"
        if "metric_failed" in st:
            return "metric failed"
        return "failed" if ("failed" in st) else "not converged"
    text = _fmt(r["mean"], r["std"])
    if r["n_ok"] < r["n_runs"]:
        text += f" ({r['n_ok']}/{r['n_runs']} ok)"
    return text


def leaderboard_table(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Wide table: rows samplers (``exact`` first, then by average rank), columns targets,
    cells 'mean ± std', plus mean wall seconds per run, average rank (exact excluded;
    none for an unranked metric; higher ranks first where higher is better) and the number
    of columns that average used (``ranked cols``)."""
    s = summarise(df, metric)
    if s.empty:
        return pd.DataFrame()
    columns = list(dict.fromkeys(df["column"]))
    means = s.pivot(index="sampler", columns="column", values="mean").reindex(columns=columns)
    spec = metric_spec(metric)
    sign = (1.0 if spec.lower_is_better else -1.0) if spec.ranked else float("nan")
    ranks = (sign * means.drop(index=EXACT, errors="ignore")).rank(axis=0, method="average")
    avg_rank = ranks.mean(axis=1)
    cells = (
        s.assign(cell=s.apply(_cell, axis=1))
        .pivot(index="sampler", columns="column", values="cell")
        .reindex(columns=columns)
    )
    cells = mark_unbeaten(cells, means, sign)
    wall = df.groupby("sampler")["wall_seconds"].mean()
    table = cells.copy()
    table["wall s/run"] = wall.reindex(table.index).map(lambda v: f"{v:.2f}")
    table["avg rank"] = avg_rank.reindex(table.index).map(
        lambda v: "-" if pd.isna(v) else f"{v:.2f}"
    )
    # an average over 2 of 8 columns is not comparable with one over 8: say how many
    ranked = ranks.notna().sum(axis=1).reindex(table.index)
    table["ranked cols"] = ranked.map(lambda v: "-" if pd.isna(v) else f"{int(v)}/{len(columns)}")
    order = [EXACT] if EXACT in table.index else []
    order += list(avg_rank.sort_values().index)
    order += [i for i in table.index if i not in order]
    return table.loc[order]


def write_leaderboard(
    rows: list[dict[str, Any]],
    out_dir: Path,
    suite: str,
    command: str,
    env: dict[str, Any] | None = None,
    headline: str | None = None,
) -> Path:
    """Write ``leaderboard.md`` and ``leaderboard.csv`` (the long summary) into ``out_dir``.
    ``headline``: the metric of the main table (default: :func:`headline_of`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    df = rows_frame(rows)
    headline = headline or headline_of(out_dir, rows)
    md = [f"# Leaderboard: suite `{suite}`", "", f"Produced by: `{command}`", ""]
    if df.empty:
        md.append("_no rows_")
    else:
        first = df.iloc[0]
        spec = metric_spec(headline)
        what = spec.description or f"`{headline}`"
        order = "lower is better" if spec.lower_is_better else "higher is better"
        md += [
            f"{what}, in the standardised space; mean ± std over seeds ({order}). `exact` = "
            "fresh i.i.d. target samples of the same size (not a floor: methods that quantise "
            "the training split can go below it). "
            f"Particles {first['n_particles']}, steps {first['n_steps']}, training split "
            f"{first['n_train']}, reference {first['n_reference']}, "
            f"seeds {sorted(df['rep'].unique().tolist())}. `wall s/run` = fit + sampling "
            "seconds (metrics excluded). " + BASELINE_CAPTION,
            "",
            markdown_table(leaderboard_table(df, headline), index="sampler"),
        ]
        for metric in [m for m in df["metric"].unique() if m != headline]:
            md += [
                f"## Secondary metric: {metric}",
                "",
                markdown_table(leaderboard_table(df, metric), index="sampler"),
            ]
        first_metric = df["metric"].iloc[0]
        problems = df[(df["status"] != "ok") & (df["metric"] == first_metric)]
        if not problems.empty:
            md += [
                "## Runs that did not finish normally",
                "",
                "| sampler | target | init | seeds | status | message |",
                "|---|---|---|---|---|---|",
            ]
            keys = ["sampler", "target", "init", "status"]
            for (sampler, target, init, status), g in problems.groupby(keys, sort=False):
                msg = str(next((m for m in g["message"] if m), "")).replace("|", "/")[:200]
                seeds = ",".join(str(v) for v in sorted(g["rep"].unique()))
                md.append(f"| {sampler} | {target} | {init} | {seeds} | {status} | {msg} |")
            md.append("")
        if env:
            md += ["## Environment", ""] + [f"- {k}: {v}" for k, v in env.items()] + [""]
    path = out_dir / "leaderboard.md"
    atomic_write_text(path, "\n".join(md))
    if not df.empty:
        summary = pd.concat(
            [summarise(df, m).assign(metric=m) for m in df["metric"].unique()], ignore_index=True
        )
        with atomic_path(out_dir / "leaderboard.csv") as tmp:
            summary.to_csv(tmp, index=False)
    return path
