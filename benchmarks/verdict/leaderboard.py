"""Leaderboards from long-format rows: samplers x columns (target / init), each cell the
mean and 95 % Student-t interval over seeds with its verdict against ``exact`` (fresh
i.i.d. target samples of the same size, the yardstick: ``benchmarks.verdict.yardstick``),
copying flags, failures ranked last and average ranks with the Nemenyi critical difference
over exactly the table's ranked samplers and columns (``benchmarks.verdict.ranks``); per
ranked headline a paired win/tie/loss table (paired t per column, Wilcoxon over
independent (target, seed) units, Holm-corrected: ``benchmarks.verdict.paired``).

Which metric heads the table, how each metric ranks, flags and guards the verdict, and what
its caption says come from the metric registry (``metrics.base.Metric``) and the suite
(``Suite.headline``, saved as ``suite.json`` beside the rows); nothing here names a metric
or a sampler."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.execution.provenance import original_command, refresh_commands
from benchmarks.execution.store import atomic_path, atomic_write_text, file_slug
from benchmarks.options import TUNED_FILE
from benchmarks.presentation.tables import markdown_table
from benchmarks.suites import EXACT
from benchmarks.verdict.cells import cell_states, usable, usable_mask
from benchmarks.verdict.intervals import t_interval
from benchmarks.verdict.paired import pairwise_table
from benchmarks.verdict.ranks import RankTable, rank_table
from benchmarks.verdict.yardstick import VERDICT_MARKS, cell_verdict, per_seed_table, versus_exact
from metrics.base import Metric, MetricError, MetricResult, get_metric

SUITE_FILE = "suite.json"

VERDICT_CAPTION = (
    "Each cell is read against `exact` (fresh i.i.d. target samples of the same size, "
    "scored against the same reference per seed: what a perfect sampler achieves) by "
    "Student's paired t test over seeds at alpha = 0.05: `▲` better than exact, `≈` "
    "indistinguishable from exact, `▼` worse than exact (also when a guard metric such as "
    "the support error exceeds exact's by more than its declared tolerance). A cell whose "
    "runs a flag metric flags in a majority of seeds (e.g. **[copying 4/5]**) is read as "
    "copying, not as better than exact, and ranks after every clean cell of its column; a "
    "cell with a failed, diverged, timed-out or unconverged run ranks last. `vs exact` "
    "counts the verdicts (c = copying, f = failed)."
)


def regime_sentence(n_train: Any, m: Any) -> str:
    """The caption's regime: generation (m >= N) or representation (m < N)."""
    try:
        n, k = int(n_train), int(m)
    except (TypeError, ValueError):
        return ""
    if k >= n:
        return (
            f"**Generation regime** (m = {k} particles >= N = {n} training points): the "
            "sample cannot be made by copying or quantising the training split."
        )
    return (
        f"**Representation regime** (m = {k} particles < N = {n} training points): how "
        "well m points summarise the target; here an optimal quantiser of the training "
        "split (k-means) beats fresh i.i.d. draws, so `exact` is not a floor."
    )


def _guard_rule_text(guard: dict[str, Any]) -> str:
    """The guard's rule in words, from ``tuned.json``'s ``guard.rules`` (per target, the flag
    metrics' rules; a file from before the rules were recorded read a vote of the flags)."""
    if "rules" not in guard:
        return "flagged, by a run flag or a flag metric, in a majority of tuning repetitions"
    rules = {
        (r["name"], r.get("guard_below"), r["flag_below"])
        for per_target in guard["rules"].values()
        for r in per_target
    }
    readings = [
        f"`{name}` averaging below {below:g} over them"
        if below is not None
        else f"`{name}` below {flag:g} in a majority of them"
        for name, below, flag in sorted(rules, key=str)
    ]
    runs = "a run flag in a majority of tuning repetitions"
    return runs + (", or " + " or ".join(readings) if readings else "")


def coverage_section(out_dir: Path) -> list[str]:
    """Markdown: how much of each sampler's search space its tuning trials covered and
    where a choice still sits on an edge (from ``tuned.json`` beside the rows, else from the
    file the run took its settings from: ``tuned_from`` in ``suite.json``)."""
    path = out_dir / TUNED_FILE
    source = ""
    if not path.exists():
        source = str((suite_meta(out_dir) or {}).get("tuned_from") or "")
        path = Path(source)
        if not source or not path.is_file():
            return []
    try:
        tuned = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    coverage = tuned.get("coverage")
    if not coverage:
        return []
    edges = tuned.get("edges", {})
    guard = tuned.get("guard")
    rows = {}
    for sampler in sorted(coverage):
        tried = sum(c["settings_tried"] for c in coverage[sampler].values())
        size = sum(c["space_size"] for c in coverage[sampler].values())
        states = [
            state
            for per_init in edges.get(sampler, {}).values()
            for knobs in per_init.values()
            for state in knobs.values()
        ]
        rows[sampler] = {
            "settings tried / space (all targets)": f"{tried}/{size} ({100 * tried / size:.0f} %)",
            "interior after widening": sum(s == "interior after widening" for s in states),
            "edge at a declared limit": sum(s == "edge: at limit" for s in states),
            "edge, rounds exhausted": sum(s == "edge: rounds exhausted" for s in states),
            "edge, no declared limit": sum(s == "edge: no declared limit" for s in states),
        }
        if guard is not None:
            fallbacks = [f for f in guard.get("fallbacks", []) if f[0] == sampler]
            moved = sum(
                1
                for target, per_init in guard.get("passed_over", {}).get(sampler, {}).items()
                for init, over in per_init.items()
                if over and [sampler, target, init] not in fallbacks
            )
            rows[sampler]["guard: flagged best passed over"] = moved
            rows[sampler]["guard: every setting flagged"] = len(fallbacks)
            if "margin_relaxed" in guard:
                relaxed = [f for f in guard["margin_relaxed"] if f[0] == sampler]
                rows[sampler]["guard: margin relaxed"] = len(relaxed)
            if "above_start" in guard:
                above = [f for f in guard["above_start"] if f[0] == sampler]
                rows[sampler]["guard: above start ceiling excluded"] = len(above)
    table = pd.DataFrame(rows).T
    table.index.name = "sampler"
    return [
        "## Tuning coverage",
        "",
        (f"From `{source}`, the tuned settings these rows ran with. " if source else "")
        + f"Tuned on repetitions {tuned.get('seeds')} (never evaluated here) with a budget of "
        f"{tuned.get('budget')} settings per (sampler, target), then widened past any edge "
        f"the choice sat on, up to {tuned.get('max_widen_rounds', '-')} rounds "
        "(`benchmarks.search_widening`). Settings tried out of the widened space's size, "
        "summed over targets; the edge columns count (target, init) choices still on an "
        "edge after the last round."
        + (
            " The guard columns count (target, init) choices where the best-scoring setting "
            f"was guarded ({_guard_rule_text(guard)}) and the best unguarded one was chosen "
            "instead (margin relaxed included), those where every setting was guarded even "
            "by the leaderboard's own rule (the best-scoring one stands), and those where no "
            "setting cleared the margin and the best one the leaderboard's rule lets through "
            "was chosen (margin relaxed; `benchmarks.tuning_guard`)."
            + (
                " Settings whose runs ended further from the target than they started (mean "
                "validation score above the start ceiling: the start clouds' score, at least "
                f"{guard.get('start_ceiling_exact_factor', 5):g} x the exact row's) are "
                "guarded too while any setting scores below the ceiling, so they never stand "
                "in for guarded settings that beat their start; the last column counts the "
                "choices where every setting below the ceiling was guarded and settings above "
                "it were passed over."
                if "above_start" in guard
                else ""
            )
            if guard is not None
            else ""
        ),
        "",
        markdown_table(table, index="sampler"),
        "",
    ]


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


def suite_meta(out_dir: Path) -> dict[str, Any] | None:
    """The suite saved beside the rows (``suite.json``), None when absent or unreadable."""
    path = out_dir / SUITE_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _positions(values: pd.Series, listed: list[str] | None) -> pd.Series:
    """Position of every value in ``listed`` (the suite's order), values not listed after
    them in sorted order: a key that does not depend on the order of the rows."""
    known = list(dict.fromkeys(str(v) for v in listed or []))
    known += sorted(set(values.astype(str)) - set(known))
    return values.astype(str).map({v: i for i, v in enumerate(known)})


def canonical_order(df: pd.DataFrame, suite: dict[str, Any] | None = None) -> pd.DataFrame:
    """The rows sorted by sampler label (``exact`` first, then by name), then target, init
    and metric in the suite's order (``suite.json``; sorted where it is absent or does not
    list them), then seed and configuration: every table, pair and figure built from the
    frame is the same whatever order the rows were recorded in (parallel runs record in
    completion order, a resumed run appends)."""
    suite = suite or {}
    keys = {
        "_not_exact": df["sampler"] != EXACT,
        "_sampler": df["sampler"].astype(str),
        "_target": _positions(df["target"], suite.get("targets")),
        "_init": _positions(df["init"], suite.get("inits")),
        "_metric": _positions(df["metric"], suite.get("metrics")),
    }
    for extra in ("rep", "config_key"):
        if extra in df:
            keys["_" + extra] = df[extra].astype(str) if extra == "config_key" else df[extra]
    order = df.assign(**keys).sort_values(list(keys), kind="stable")
    return order.drop(columns=list(keys)).reset_index(drop=True)


def rows_frame(rows: list[dict[str, Any]], suite: dict[str, Any] | None = None) -> pd.DataFrame:
    """The rows as a frame in :func:`canonical_order`, with grid labels, a ``column`` per
    (target, init) when the suite has several inits, and ``wall_seconds`` = fit + sampling
    seconds. Columns then appear in the suite's order (``suite``: its ``suite.json``)."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["sampler"] = grid_labels(df)
    df = canonical_order(df, suite)
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
    """'mean [lo, hi]' (the 95 % t interval over seeds); 'mean' alone for one seed."""
    if math.isnan(mean):
        return "nan"
    if math.isnan(lo):
        return _num(mean)
    return f"{_num(mean)} [{_num(lo)}, {_num(hi)}]"


def _ok(g: pd.DataFrame) -> pd.DataFrame:
    """The runs of ``g`` with a usable value (status ok, converged, finite)."""
    return usable(g)


def columns_of(df: pd.DataFrame) -> list[str]:
    """The table's columns in the frame's (suite) order."""
    return list(dict.fromkeys(df["column"]))


def flag_counts(df: pd.DataFrame) -> dict[tuple[str, str], list[tuple[str, int, int]]]:
    """(sampler, column) -> [(label, flagged runs, scored runs)] for every metric that
    declares a flag threshold (``Metric.flag_below``), where at least one run is flagged."""
    out: dict[tuple[str, str], list[tuple[str, int, int]]] = {}
    for metric in sorted(df["metric"].unique()):
        spec = metric_spec(metric)
        if spec.flag_below is None:
            continue
        for (sampler, column), g in _ok(df[df["metric"] == metric]).groupby(
            ["sampler", "column"], sort=True
        ):
            n = int(sum(spec.flags(float(v)) for v in g["value"]))
            if n:
                label = spec.flag_label or f"{metric} flag"
                out.setdefault((sampler, column), []).append((label, n, len(g)))
    return out


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
    the runs raise themselves (:func:`run_flags`, e.g. a step safeguard that decided too
    many moves), out of the runs (one row each, read from the first metric's rows). Only
    the metric flags enter the copying rule (:func:`copying_frame`)."""
    marks = {
        k: [f"{label} {n}/{total}" for label, n, total in v] for k, v in flag_counts(df).items()
    }
    if "sampler_info" in df.columns and len(df):
        runs = df[df["metric"] == df["metric"].iloc[0]]
        for (sampler, column), g in runs.groupby(["sampler", "column"], sort=True):
            counts: dict[str, int] = {}
            for info in g["sampler_info"]:
                for f in dict.fromkeys(run_flags(info)):
                    counts[f] = counts.get(f, 0) + 1
            for f, n in sorted(counts.items()):
                marks.setdefault((sampler, column), []).append(f"{f} {n}/{len(g)}")
    return {k: ", ".join(v) for k, v in marks.items()}


def copying_frame(df: pd.DataFrame) -> pd.DataFrame:
    """sampler x column booleans: True where a flag metric flags a strict majority of the
    cell's scored runs (the cell is read as copying, see ``benchmarks.verdict.yardstick``)."""
    flagged = {k: any(2 * n > total for _label, n, total in v) for k, v in flag_counts(df).items()}
    samplers = sorted(df["sampler"].unique())
    out = pd.DataFrame(False, index=samplers, columns=columns_of(df))
    for (sampler, column), value in flagged.items():
        out.at[sampler, column] = value
    return out


def summarise(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (sampler, column): mean, std, 95 % t interval, counts of ok/failed runs,
    status text, first message, mean wall seconds. One pass over numpy columns (a
    leaderboard summarises every metric several times; per-group pandas filtering was
    half its time); the values are those of :func:`_ok` per group, in rep order."""
    d = df[df["metric"] == metric]
    ok = usable_mask(d).to_numpy()
    values = pd.to_numeric(d["value"], errors="coerce").to_numpy(dtype=float)
    reps = d["rep"].to_numpy() if "rep" in d else None
    statuses = d["status"].to_numpy()
    messages = d["message"].to_numpy()
    walls = d["wall_seconds"].to_numpy(dtype=float)
    out = []
    for (sampler, column), idx in d.groupby(["sampler", "column"], sort=False).indices.items():
        good = idx[ok[idx]]
        if reps is not None:
            good = good[np.argsort(reps[good], kind="quicksort")]
        vals = values[good]
        lo, hi = t_interval(vals)
        counts = Counter(statuses[idx].tolist())
        out.append(
            {
                "sampler": sampler,
                "column": column,
                "mean": float(vals.mean()) if len(vals) else float("nan"),
                "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                "ci_low": lo,
                "ci_high": hi,
                "n_ok": int(len(vals)),
                "n_runs": int(len(idx)),
                "statuses": ",".join(f"{k}:{v}" for k, v in sorted(counts.items())),
                "message": next((m for m in messages[idx] if m), ""),
                "wall_seconds": float(pd.Series(walls[idx]).mean()),
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


def _means(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    s = summarise(df, metric)
    return s.pivot(index="sampler", columns="column", values="mean").reindex(columns=columns_of(df))


def rank_summary(df: pd.DataFrame, metric: str) -> RankTable:
    """The declared ranking of ``metric`` (``benchmarks.verdict.ranks``) over the samplers
    and columns of ``df``: what the table's ``avg rank`` and the critical-difference figure
    both show."""
    spec = metric_spec(metric)
    states = cell_states(df, metric)
    if states.empty:
        return RankTable(pd.DataFrame(), pd.Series(dtype=float), [])
    states = states.reindex(columns=columns_of(df))
    means = _means(df, metric).reindex(index=states.index)
    copying = copying_frame(df).reindex(index=states.index, columns=states.columns)
    units = df.drop_duplicates("column").set_index("column")["target"].astype(str).to_dict()
    return rank_table(means, states, copying.fillna(False), spec.lower_is_better, units=units)


def verdicts(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """sampler x column verdicts against ``exact`` (``benchmarks.verdict.yardstick``): the
    headline call, guard metrics (``Metric.guards_verdict``) and copying read together.
    Empty when the rows have no ``exact`` row."""
    if EXACT not in set(df["sampler"]):
        return pd.DataFrame()
    spec = metric_spec(metric)
    sign = 1.0 if spec.lower_is_better else -1.0
    states = cell_states(df, metric)
    copying = copying_frame(df)
    guards = [metric_spec(m) for m in sorted(df["metric"].unique())]
    guards = [g for g in guards if g.guards_verdict and g.name != metric]
    out = pd.DataFrame(index=states.index, columns=states.columns, dtype=object)
    table = per_seed_table(df[df["metric"].isin([metric, *(g.name for g in guards)])])
    for sampler in states.index:
        if sampler == EXACT:
            continue
        for column in states.columns:
            state = states.at[sampler, column]
            if pd.isna(state):
                continue
            call = versus_exact(table, metric, sampler, column, sign)
            guard_calls = [
                versus_exact(
                    table,
                    g.name,
                    sampler,
                    column,
                    1.0 if g.lower_is_better else -1.0,
                    tolerance=g.verdict_tolerance,
                )
                for g in guards
            ]
            out.at[sampler, column] = cell_verdict(
                state=state,
                copying=bool(copying.reindex(index=[sampler], columns=[column]).iloc[0, 0])
                if sampler in copying.index and column in copying.columns
                else False,
                headline_call=call,
                guard_calls=guard_calls,
            )
    return out.drop(index=EXACT, errors="ignore")


def _verdict_count(row: pd.Series) -> str:
    """'2▲ 3≈ 1▼ 2c' counts of one sampler's verdicts over the columns."""
    counts = row.value_counts()
    parts = [
        f"{int(counts.get(v, 0))}{mark}"
        for v, mark in (
            ("better", "▲"),
            ("≈ exact", "≈"),
            ("worse", "▼"),
            ("copying", "c"),
            ("failed", "f"),
        )
        if counts.get(v, 0)
    ]
    return " ".join(parts) or "-"


def leaderboard_table(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Wide table: rows samplers (``exact`` first, then the ranked samplers by average rank,
    then the unranked ones by name), columns the suite's columns, cells 'mean [95 % t
    interval]' with the verdict mark against exact (▲ better, ≈ indistinguishable, ▼ worse)
    and the flag marks; plus ``vs exact`` (verdict counts), mean wall seconds per run,
    ``avg rank`` (from :func:`rank_summary`; none for an unranked metric) and ``ranked``
    (how many columns the rank used, or why the sampler is not ranked)."""
    s = summarise(df, metric)
    if s.empty:
        return pd.DataFrame()
    columns = columns_of(df)
    spec = metric_spec(metric)
    marks = flag_marks(df)
    verdict = verdicts(df, metric) if spec.ranked else pd.DataFrame()
    s["cell"] = [
        _cell(r)
        + (
            VERDICT_MARKS.get(str(verdict.at[r["sampler"], r["column"]]), "")
            if not verdict.empty
            and r["sampler"] in verdict.index
            and r["column"] in verdict.columns
            and pd.notna(verdict.at[r["sampler"], r["column"]])
            else ""
        )
        + (
            f" **[{marks[(r['sampler'], r['column'])]}]**"
            if (r["sampler"], r["column"]) in marks
            else ""
        )
        for _, r in s.iterrows()
    ]
    table = s.pivot(index="sampler", columns="column", values="cell").reindex(columns=columns)
    if not verdict.empty:
        table["vs exact"] = [
            _verdict_count(verdict.loc[i]) if i in verdict.index else "-" for i in table.index
        ]
    wall = df.groupby("sampler")["wall_seconds"].mean()
    table["wall s/run"] = wall.reindex(table.index).map(lambda v: f"{v:.2f}")
    ranking = rank_summary(df, metric) if spec.ranked else None
    if ranking is not None and not ranking.average.empty:
        n = len(ranking.columns)
        table["avg rank"] = ranking.average.reindex(table.index).map(
            lambda v: "-" if pd.isna(v) else f"{v:.2f}"
        )
        table["ranked"] = [
            f"{n}/{len(columns)}"
            if i in ranking.average.index
            else ("-" if i == EXACT else f"no: {ranking.unranked.get(i, 'not ranked')}")
            for i in table.index
        ]
        order = [EXACT] if EXACT in table.index else []
        order += list(ranking.average.index)
    else:
        order = [EXACT] if EXACT in table.index else []
    order += sorted(i for i in table.index if i not in order)
    return table.loc[order]


def metric_values(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Usable values of ``metric`` without the ``exact`` row: sampler, column, target, init,
    rep, value."""
    d = _ok(df[(df["metric"] == metric) & (df["sampler"] != EXACT)])
    d = d.assign(value=pd.to_numeric(d["value"]))
    return d[["sampler", "column", "target", "init", "rep", "value"]].reset_index(drop=True)


def comparison_section(df: pd.DataFrame, metric: str, figure: str | None = None) -> list[str]:
    """Markdown: the pairwise win/tie/loss table with Holm-corrected paired tests, and the
    average ranks with their critical difference (link to ``figure`` when given)."""
    spec = metric_spec(metric)
    v = metric_values(df, metric)
    if not spec.ranked or v["sampler"].nunique() < 2:
        return []
    table = pairwise_table(v, spec.lower_is_better)
    ranking = rank_summary(df, metric)
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
        "Runs share data and x0 per (target, seed), so samplers are compared on paired "
        "values. W/T/L: columns where Student's paired t test over the seeds calls a "
        "better (worse) at alpha = 0.05, else a tie. p: two-sided Wilcoxon signed-rank test "
        "over independent units, one per (target, seed) (the init columns of a target share "
        "its data, and samplers that ignore x0 repeat their value in them, so they are "
        "averaged into one unit), of the difference divided by the target's mean |value| "
        f"(negative = a better); Holm-corrected across the {len(table)} pairs; verdict at "
        "alpha = 0.05. Only runs that finished enter these tests (failures are ranked last "
        "in the table instead).",
        "",
        markdown_table(shown.set_index("a"), index="a"),
        "",
    ]
    if not ranking.average.empty:
        lines.append(
            f"Average ranks over the table's {len(ranking.columns)} ranked columns, "
            f"{ranking.n_units} independent targets (a target's init columns share its data, "
            "so their ranks are averaged first; 1 = best; copying cells rank after clean "
            "ones, failed cells last; Nemenyi critical difference CD = "
            f"{ranking.cd:.2f} at alpha = 0.05 for {len(ranking.average)} samplers over "
            f"{ranking.n_units} targets, Demšar 2006): "
            + ", ".join(f"{k} {r:.2f}" for k, r in ranking.average.items())
            + "."
        )
        if ranking.unranked:
            lines.append(
                "Not ranked: "
                + "; ".join(f"{k} ({why})" for k, why in sorted(ranking.unranked.items()))
                + "."
            )
        if ranking.dropped_columns:
            lines.append(
                "Columns not ranked: "
                + "; ".join(f"{k} ({why})" for k, why in ranking.dropped_columns.items())
                + "."
            )
    if figure and len(ranking.average) >= 2 and ranking.columns:
        lines += ["", f"Critical-difference figure: [{figure}]({figure})"]
    elif figure:
        lines += [
            "",
            "No critical-difference figure: fewer than two samplers are ranked over the "
            "same columns.",
        ]
    return lines + [""]


def data_sources_line(rows: list[dict[str, Any]]) -> str:
    """``Data: `target` source; ...`` from the ``data_source`` of the rows' ``target_info``
    (targets without one left out; '' when none has one). A target whose rows name more than
    one source (rows of two runs on different data in one folder) is flagged."""
    sources: dict[str, list[str]] = {}
    for r in rows:
        source = json.loads(r.get("target_info") or "{}").get("data_source")
        if source:
            found = sources.setdefault(r["target"], [])
            if source not in found:
                found.append(source)
    if not sources:
        return ""
    parts = [
        f"`{t}` {s[0]}"
        if len(s) == 1
        else f"`{t}` **rows from {len(s)} data sources**: " + ", ".join(s)
        for t, s in sorted(sources.items())
    ]
    return "Data: " + "; ".join(parts) + "."


def _at(df: pd.DataFrame) -> str:
    """' at commit X' from the rows' recorded commit(s) ('' when the rows record none)."""
    if df.empty or "commit" not in df:
        return ""
    commits = sorted({str(c) for c in df["commit"].dropna() if str(c)})
    if not commits:
        return ""
    return " at commit " + ", ".join(commits)


def run_environment(env: dict[str, Any], df: pd.DataFrame) -> dict[str, Any]:
    """``env`` (recorded by the parent process) with what the runs themselves recorded in
    place of the parent's: the commits of the rows (a ``--resume`` or ``--rerun`` adds rows
    made at a later commit) and their thread settings (every run pins torch and BLAS to its
    own thread count, so the parent's ``torch_threads`` / ``blas`` did not produce them).
    The environments of later continuations (``env["refreshed"]``) are shown by what
    differs from the first."""
    skip = ("torch_threads", "blas", "refreshed")
    shown = {k: v for k, v in env.items() if k not in skip}
    if "commit" in df:
        commits = sorted({str(c) for c in df["commit"].dropna() if str(c)})
        if commits:
            shown.pop("commit", None)
            shown["commit (per run)"] = ", ".join(commits)
    for i, later in enumerate(env.get("refreshed") or [], 1):
        changed = {
            k: v for k, v in later.items() if k not in skip and k != "commit" and env.get(k) != v
        }
        what = ", ".join(f"{k} {v}" for k, v in changed.items()) or "no version change"
        shown[f"continuation {i} (--resume / --rerun)"] = f"commit {later.get('commit')}; {what}"
    if "blas" in df and not df["blas"].isna().all():
        blas = sorted({str(b) for b in df["blas"].dropna()})
        threads = sorted({int(n) for b in blas for n in re.findall(r"x(\d+)\b", b)})
        if threads:
            shown["threads per run (torch and BLAS)"] = ", ".join(map(str, threads))
        shown["blas (per run)"] = "; ".join(blas)
    elif "blas" in env:
        shown["torch_threads"] = env.get("torch_threads")
        shown["blas"] = env["blas"]
    return shown


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
    see :func:`benchmarks.execution.provenance.original_command`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    command = command or original_command(out_dir) or "unknown (no run.json)"
    df = rows_frame(rows, suite_meta(out_dir))
    headline = headline or headline_of(out_dir, rows)
    md = [f"# Leaderboard: suite `{suite}`", "", f"Produced by: `{command}`" + _at(df), ""]
    for refresh, times in refresh_commands(out_dir):
        repeated = f"{times} times, " if times > 1 else ""
        md += [f"Refreshed by: `{refresh}` ({repeated}rows added, scored or run again)", ""]
    if df.empty:
        md.append("_no rows_")
    else:
        first = df.iloc[0]
        spec = metric_spec(headline)
        what = spec.description or f"`{headline}`"
        order = "lower is better" if spec.lower_is_better else "higher is better"
        n_train, m = first["n_train"], first["n_particles"]
        md += [
            f"{what}, in the standardised space; mean [95 % Student-t interval of the mean "
            f"over seeds] ({order}). " + regime_sentence(n_train, m) + " " + VERDICT_CAPTION,
            "",
            f"Particles {m}, steps {first['n_steps']}, training split {n_train}, reference "
            f"{first['n_reference']}, seeds {sorted(df['rep'].unique().tolist())}. "
            "`wall s/run` = fit + sampling seconds (metrics excluded). Trivial baselines "
            '(`role = "baseline"`: a training subsample, k-means centroids, KDE draws) are '
            "context: what copying or quantising the training split achieves.",
            "",
        ]
        data = data_sources_line(rows)
        if data:
            md += [data, ""]
        md += [markdown_table(leaderboard_table(df, headline), index="sampler")]
        marks = flag_marks(df)
        if marks:
            md += [
                "",
                "**Flagged runs** (a metric's own threshold, shown in bold brackets in every "
                "table): "
                + "; ".join(f"{s} on {c}: {m}" for (s, c), m in sorted(marks.items()))
                + ".",
            ]
        md += [""] + settings_section(df) + coverage_section(out_dir)
        md += comparison_section(
            df, headline, f"figures/critical_difference_{file_slug(headline)}.png"
        )
        for metric in sorted(m for m in df["metric"].unique() if m != headline):
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
            shown = run_environment(env, df)
            md += ["## Environment", ""] + [f"- {k}: {v}" for k, v in shown.items()] + [""]
    path = out_dir / "leaderboard.md"
    atomic_write_text(path, "\n".join(md))
    if not df.empty:
        summary = pd.concat(
            [summarise(df, m).assign(metric=m) for m in df["metric"].unique()], ignore_index=True
        )
        with atomic_path(out_dir / "leaderboard.csv") as tmp:
            summary.to_csv(tmp, index=False)
    return path
