"""Leaderboards from long-format rows: samplers x targets, mean and 95 % bootstrap interval
over seeds, wall time, average rank, with the ``exact`` row (fresh i.i.d. target samples);
per ranked headline a paired win/tie/loss table (Holm-corrected Wilcoxon tests) and the
critical difference of average ranks (``benchmarks.statistics``); runs that a metric's own
threshold flags (``Metric.flag_below``, e.g. data-copying) and the flags runs raise themselves
(a ``"flags"`` list in the sampler's info, e.g. a run set by its step cap) are marked in every
table.

Which metric heads the table, how each metric ranks and what its caption says come from the
metric registry (``metrics.base.Metric``) and the suite (``Suite.headline``, saved as
``suite.json`` beside the rows); nothing here names a metric."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.baselines import CAPTION as BASELINE_CAPTION
from benchmarks.baselines import mark_unbeaten
from benchmarks.provenance import original_command
from benchmarks.statistics import average_ranks, bootstrap_interval, nemenyi_cd, pairwise_table
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
    parameter sets in the same column (a grid): ``dmps[step_size=0.1]``; plain names
    otherwise (tuned runs, whose settings differ between columns but not within one, keep
    their names; :func:`settings_section` lists their settings)."""
    labels = df["sampler"].astype(str).copy()
    if "params" not in df:
        return labels
    per_column = df.groupby(["sampler", "target", "init"], sort=False)["params"].nunique()
    for sampler, g in df.groupby("sampler", sort=False):
        if int(per_column.loc[sampler].max()) < 2:
            continue
        distinct = g["params"].unique()
        parsed = {p: json.loads(p) for p in distinct}
        keys = sorted({k for d in parsed.values() for k in d})
        swept = [k for k in keys if len({json.dumps(d.get(k)) for d in parsed.values()}) > 1]
        for p, d in parsed.items():
            tag = ",".join(f"{k}={d.get(k)}" for k in swept)
            labels[(df["sampler"] == sampler) & (df["params"] == p)] = f"{sampler}[{tag}]"
    return labels


def settings_section(df: pd.DataFrame) -> list[str]:
    """Markdown lines: the parameter overrides every sampler ran with in each column, and
    whether they came from the suite's tuned.json ("tuned") or are the defaults; [] when no
    row is tuned (every cell would read "defaults")."""
    if "tuning" not in df or not (df["tuning"] == "tuned").any():
        return []
    first = df[df["metric"] == df["metric"].iloc[0]]
    cells: dict[str, dict[str, str]] = {}
    for (sampler, column), g in first.groupby(["sampler", "column"], sort=False):
        params = json.loads(g["params"].iloc[0]) if "params" in g else {}
        text = ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "defaults"
        tag = "" if (g["tuning"] == "tuned").all() else " (not tuned)"
        cells.setdefault(str(sampler), {})[str(column)] = text + tag
    table = pd.DataFrame(cells).T.reindex(columns=list(dict.fromkeys(first["column"])))
    table.index.name = "sampler"
    return [
        "## Settings per column",
        "",
        "Parameter overrides of each sampler's documented defaults in every column: the "
        "setting chosen by `python -m benchmarks tune` on the validation split (see "
        "`tuned.json` beside this file for every trial's score); `defaults` where the "
        "default setting won. `(not tuned)`: the rows ran without tuned settings.",
        "",
        markdown_table(table.fillna("-"), index="sampler"),
        "",
    ]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


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


def _num(v: float) -> str:
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4):
        return f"{v:.2e}"
    return f"{v:.4f}"


def _fmt(mean: float, lo: float, hi: float) -> str:
    """'mean [lo, hi]' (the 95 % bootstrap interval over seeds)."""
    if math.isnan(mean):
        return "nan"
    return f"{_num(mean)} [{_num(lo)}, {_num(hi)}]"


def _ok(g: pd.DataFrame) -> pd.DataFrame:
    """The runs of ``g`` with a usable value (status ok, converged, finite)."""
    return g[(g["status"] == "ok") & g["converged"].astype(bool) & np.isfinite(g["value"])]


def run_flags(sampler_info: Any) -> list[str]:
    """The run's own flags: the list under ``"flags"`` in its ``sampler_info`` JSON (a
    sampler's statement that its result is suspect, e.g. set by a safeguard); [] if none."""
    try:
        info = json.loads(sampler_info) if isinstance(sampler_info, str) else {}
    except ValueError:
        return []
    flags = info.get("flags") if isinstance(info, dict) else None
    return [str(f) for f in flags] if isinstance(flags, list) else []


def flag_marks(df: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(sampler, column) -> 'copying 2/3'-style marks: for every metric that declares a flag
    threshold, the runs whose value crosses it, out of the runs it scored; then every flag
    the runs raise themselves (:func:`run_flags`), out of the runs (one row each, read from
    the first metric's rows)."""
    marks: dict[tuple[str, str], list[str]] = {}
    for metric in df["metric"].unique():
        spec = metric_spec(metric)
        if spec.flag_below is None:
            continue
        for (sampler, column), g in _ok(df[df["metric"] == metric]).groupby(
            ["sampler", "column"], sort=False
        ):
            n = int(sum(spec.flags(float(v)) for v in g["value"]))
            if n:
                label = spec.flag_label or f"{metric} flag"
                marks.setdefault((sampler, column), []).append(f"{label} {n}/{len(g)}")
    if "sampler_info" in df.columns and len(df):
        runs = df[df["metric"] == df["metric"].iloc[0]]
        for (sampler, column), g in runs.groupby(["sampler", "column"], sort=False):
            counts: dict[str, int] = {}
            for info in g["sampler_info"]:
                for f in dict.fromkeys(run_flags(info)):
                    counts[f] = counts.get(f, 0) + 1
            for f, n in counts.items():
                marks.setdefault((sampler, column), []).append(f"{f} {n}/{len(g)}")
    return {k: ", ".join(v) for k, v in marks.items()}


def summarise(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (sampler, column): mean, std, counts of ok/failed runs, status text."""
    d = df[df["metric"] == metric]
    out = []
    for (sampler, column), g in d.groupby(["sampler", "column"], sort=False):
        good = _ok(g).sort_values("rep") if "rep" in g else _ok(g)
        vals = good["value"].to_numpy(dtype=float)
        statuses = g["status"].value_counts().to_dict()
        lo, hi = bootstrap_interval(vals, seed=0)
        out.append(
            {
                "sampler": sampler,
                "column": column,
                "mean": float(vals.mean()) if len(vals) else float("nan"),
                "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                "ci_low": lo,
                "ci_high": hi,
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
    text = _fmt(r["mean"], r["ci_low"], r["ci_high"])
    if r["n_ok"] < r["n_runs"]:
        text += f" ({r['n_ok']}/{r['n_runs']} ok)"
    return text


def leaderboard_table(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Wide table: rows samplers (``exact`` first, then by average rank), columns targets,
    cells 'mean [95 % bootstrap interval]' (with the flag marks of :func:`flag_marks` and the
    marks of methods that do not beat the best trivial baseline), plus mean wall seconds per
    run, average rank (exact excluded; none for an unranked metric; higher ranks first where
    higher is better) and the number of columns that average used (``ranked cols``)."""
    s = summarise(df, metric)
    if s.empty:
        return pd.DataFrame()
    columns = list(dict.fromkeys(df["column"]))
    means = s.pivot(index="sampler", columns="column", values="mean").reindex(columns=columns)
    spec = metric_spec(metric)
    sign = (1.0 if spec.lower_is_better else -1.0) if spec.ranked else float("nan")
    ranks = (sign * means.drop(index=EXACT, errors="ignore")).rank(axis=0, method="average")
    avg_rank = ranks.mean(axis=1)
    marks = flag_marks(df)
    s["cell"] = [
        _cell(r)
        + (
            f" **[{marks[(r['sampler'], r['column'])]}]**"
            if (r["sampler"], r["column"]) in marks
            else ""
        )
        for _, r in s.iterrows()
    ]
    cells = s.pivot(index="sampler", columns="column", values="cell").reindex(columns=columns)
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


def metric_values(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Usable values of ``metric`` without the ``exact`` row: sampler, column, rep, value."""
    d = _ok(df[(df["metric"] == metric) & (df["sampler"] != EXACT)])
    return d[["sampler", "column", "rep", "value"]].reset_index(drop=True)


def rank_summary(df: pd.DataFrame, metric: str) -> tuple[pd.Series, float, int]:
    """(average ranks over the columns every sampler has a value in, Nemenyi CD, number of
    columns) of a ranked metric, ``exact`` excluded (Demšar 2006)."""
    v = metric_values(df, metric)
    if v.empty:
        return pd.Series(dtype=float), float("nan"), 0
    means = v.groupby(["sampler", "column"])["value"].mean().unstack("column")
    ranks = average_ranks(means, metric_spec(metric).lower_is_better)
    n = int(means.dropna(axis=1, how="any").shape[1])
    return ranks, nemenyi_cd(len(ranks), n), n


def comparison_section(df: pd.DataFrame, metric: str, figure: str | None = None) -> list[str]:
    """Markdown: the pairwise win/tie/loss table with Holm-corrected paired tests, and the
    average ranks with their critical difference (link to ``figure`` when given)."""
    spec = metric_spec(metric)
    v = metric_values(df, metric)
    if not spec.ranked or v["sampler"].nunique() < 2:
        return []
    table = pairwise_table(v, spec.lower_is_better)
    ranks, cd, n = rank_summary(df, metric)
    shown = table.assign(
        **{
            "W/T/L": [f"{r.wins}/{r.ties}/{r.losses}" for r in table.itertuples()],
            "median scaled diff": table["median_scaled_diff"].map(lambda x: f"{x:+.3f}"),
            "p": table["p"].map(lambda x: f"{x:.3g}"),
            "p (Holm)": table["p_holm"].map(lambda x: f"{x:.3g}"),
        }
    )[["a", "b", "W/T/L", "units", "median scaled diff", "p", "p (Holm)", "verdict"]]
    lines = [
        f"## Paired comparisons: {metric}",
        "",
        "Runs share data and x0 per seed, so samplers are compared pairwise on the same "
        "(target, seed) units. W/T/L: targets where a's 95 % paired bootstrap interval of "
        "the mean difference over seeds lies entirely on the better (worse) side of 0, else a "
        "tie. p: two-sided Wilcoxon signed-rank test over all units of the difference divided "
        "by the target's mean |value| (negative = a better); Holm-corrected across the "
        f"{len(table)} pairs; verdict at alpha = 0.05.",
        "",
        markdown_table(shown.set_index("a"), index="a"),
        "",
        f"Average ranks over {n} targets (1 = best; Nemenyi critical difference "
        f"CD = {cd:.2f} at alpha = 0.05, Demšar 2006): "
        + ", ".join(f"{k} {r:.2f}" for k, r in ranks.items())
        + ".",
    ]
    if figure:
        lines += ["", f"Critical-difference figure: [{figure}]({figure})"]
    return lines + [""]


def write_leaderboard(
    rows: list[dict[str, Any]],
    out_dir: Path,
    suite: str,
    command: str | None,
    env: dict[str, Any] | None = None,
    headline: str | None = None,
) -> Path:
    """Write ``leaderboard.md`` and ``leaderboard.csv`` (the long summary) into ``out_dir``.
    ``headline``: the metric of the main table (default: :func:`headline_of`); ``command``:
    the command that produced the rows (None when rebuilding: the recorded one is kept,
    see :func:`benchmarks.provenance.original_command`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    command = command or original_command(out_dir) or "unknown (no run.json)"
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
            f"{what}, in the standardised space; mean [95 % bootstrap interval of the mean over "
            f"seeds] ({order}). `exact` = fresh i.i.d. target samples of the same size: what "
            "an ideal random sampler scores, not a lower bound (methods that quantise the "
            "training split or spread particles more evenly than random draws, e.g. k-means "
            "centroids, MMD flows, can go below it). "
            f"Particles {first['n_particles']}, steps {first['n_steps']}, training split "
            f"{first['n_train']}, reference {first['n_reference']}, "
            f"seeds {sorted(df['rep'].unique().tolist())}. `wall s/run` = fit + sampling "
            "seconds (metrics excluded). " + BASELINE_CAPTION,
            "",
            markdown_table(leaderboard_table(df, headline), index="sampler"),
        ]
        marks = flag_marks(df)
        if marks:
            md += [
                "",
                "**Flagged runs** (a metric's own threshold or the run's own flag, shown in "
                "bold brackets in every table): "
                + "; ".join(f"{s} on {c}: {m}" for (s, c), m in marks.items())
                + ".",
            ]
        md += [""] + settings_section(df)
        md += comparison_section(df, headline, f"figures/critical_difference_{_slug(headline)}.png")
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
            notes: dict[str, int] = {}  # full message -> footnote number (shared if repeated)
            keys = ["sampler", "target", "init", "status"]
            for (sampler, target, init, status), g in problems.groupby(keys, sort=False):
                msg = " ".join(str(next((m for m in g["message"] if m), "")).split())
                ref = f"note [{notes.setdefault(msg, len(notes) + 1)}]" if msg else ""
                seeds = ",".join(str(v) for v in sorted(g["rep"].unique()))
                md.append(f"| {sampler} | {target} | {init} | {seeds} | {status} | {ref} |")
            if notes:
                md += ["", "Messages in full:", ""]
                md += [f"- [{n}] {msg}" for msg, n in notes.items()]
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
