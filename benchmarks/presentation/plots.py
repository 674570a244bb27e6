"""Figures of one suite from its rows, curves and particle files (matplotlib Agg, seaborn).

* ``particles_<target>.png``: the final particles of every sampler (seed = the smallest;
  panels five a row, grouped by init scheme) over the held-out reference sample, in the
  first two coordinates when d = 2, else in the plane of the reference set's first two
  principal components; a run that left no particles (diverged, failed, skipped) gets a
  labelled grey placeholder panel;
* ``metric_vs_time_<target>.png``: the headline metric against wall time on a log axis of
  positive seconds: one point per run (fit + sampling seconds; init schemes told apart by
  the marker's fill), the ``exact`` mean as a dashed level (named in the legend), and with
  ``--curve-every`` the metric along each run against fit + sampling seconds so far;
  samplers without a finished run are named in a footnote under the x label;
* ``metric_vs_step_<target>.png`` (with ``--curve-every``): the metric against the step,
  mean over seeds per sampler, over the whole step range;
* ``heatmap_<metric>.png``: log10 of the leaderboard's mean metric, samplers x targets;
* ``critical_difference_<metric>.png`` (ranked headline): average ranks over targets on an
  axis with the Nemenyi critical difference, samplers closer than CD joined by a bar
  (Demšar 2006).

Every sampler has one (colour, marker) in every figure (:func:`sampler_styles`: tab20 and
12 markers by the sampler's place in the sorted registry). Legends sit outside the axes;
``draw_*`` functions return the figure (tests read its axes) and ``*_figure`` functions
save it.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmarks.execution.store import atomic_path, file_slug  # noqa: E402
from benchmarks.verdict.leaderboard import (  # noqa: E402
    EXACT,
    grid_labels,
    headline_of,
    metric_spec,
    rank_summary,
    rows_frame,
    suite_meta,
    summarise,
)

FIG_DIR = "figures"
#: wall times are drawn on a log axis, clipped below at this many seconds
MIN_SECONDS = 1e-4


def project_2d(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(mean, (d, 2) basis, axis label): identity for d <= 2, else the reference set's top
    two principal directions (SVD of the centred reference)."""
    d = reference.shape[1]
    mean = reference.mean(0)
    if d == 1:
        return mean, np.array([[1.0, 0.0]]), "x"
    if d == 2:
        return np.zeros(2), np.eye(2), "x"
    _, _, vt = np.linalg.svd(reference - mean, full_matrices=False)
    return mean, vt[:2].T, "PC"


def _project(x: np.ndarray, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    return (x - mean) @ basis


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


#: resolution of every figure; with the sizes below a panel is about 300 px wide, so tick
#: labels stay about 11 px high when the report shows a figure at up to 1400 px
DPI = 100
#: panels per row of a particle figure (5 x 3 in at 100 dpi = a 1500 px wide figure)
PANELS_PER_ROW = 5
#: status message characters shown in a placeholder panel (the leaderboard has them in full)
PLACEHOLDER_CHARS = 90


#: markers of the sampler style map; with 20 colours, (colour, marker) pairs stay distinct
#: for lcm(20, 12) = 60 samplers
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")


def _colours() -> list[tuple[float, float, float]]:
    """tab20 with its dark shades first (10 well-separated hues), then the light ones."""
    tab20 = list(plt.get_cmap("tab20").colors)
    return tab20[0::2] + tab20[1::2]


def style_order(names: list[str]) -> list[str]:
    """The registered samplers in sorted order, then the other names of ``names`` (grid
    labels, plug-ins not loaded now) sorted: a sampler's place, hence its style, does not
    depend on which samplers a figure shows."""
    from samplers.base import available_samplers

    registered = sorted(available_samplers())
    return registered + sorted(set(names) - set(registered))


def sampler_styles(names: list[str]) -> dict[str, tuple[tuple[float, ...], str]]:
    """sampler -> (colour, marker): one shared map for every multi-sampler figure, keyed by
    the sampler's place in :func:`style_order` (distinct pairs for up to 60 samplers)."""
    colours = _colours()
    order = style_order(names)
    return {
        name: (tuple(colours[i % len(colours)]), MARKERS[i % len(MARKERS)])
        for i, name in enumerate(order)
        if name in set(names)
    }


def _palette(samplers: list[str]) -> dict[str, Any]:
    """sampler -> colour of :func:`sampler_styles` (for seaborn's ``palette``)."""
    return {k: c for k, (c, _) in sampler_styles(samplers).items()}


def _status_text(g: pd.DataFrame) -> str:
    """'diverged: <start of the message>' for a (sampler, init) that left no particles."""
    status = str(g["status"].iloc[0]) if len(g) else "no run"
    msg = next((str(m) for m in g.get("message", []) if m), "")
    if len(msg) > PLACEHOLDER_CHARS:
        msg = msg[:PLACEHOLDER_CHARS].rsplit(" ", 1)[0] + " ..."
    return status + (f"\n{textwrap.fill(msg, 28)}" if msg else "")


def _placeholder(ax: plt.Axes, text: str) -> None:
    """A labelled empty panel for a sampler that diverged, failed or was skipped."""
    ax.set_facecolor("0.94")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, transform=ax.transAxes)


def draw_particles(suite_dir: Path, df: pd.DataFrame, target: str) -> plt.Figure | None:
    """Final particles over the reference: one panel per (init, sampler), every sampler of
    the suite included (a labelled placeholder where a run left no particles); None when the
    target has no saved reference (no ``exact`` particle file)."""
    d = df[df["target"] == target]
    saved = d[d["particles_file"].notna()]
    exact = saved[saved["sampler"] == EXACT]
    if exact.empty:
        return None
    rep = saved["rep"].min()
    d = d[d["rep"] == rep]
    with np.load(suite_dir / exact["particles_file"].iloc[0]) as z:
        reference = z["reference"].astype(np.float64)
    mean, basis, axis = project_2d(reference)
    ref2 = _project(reference, mean, basis)
    inits = list(dict.fromkeys(d["init"]))
    samplers = list(dict.fromkeys([EXACT, *d["sampler"]]))
    ncols = min(PANELS_PER_ROW, len(samplers))
    per_init = math.ceil(len(samplers) / ncols)
    fig, axes = plt.subplots(
        per_init * len(inits),
        ncols,
        figsize=(3.0 * ncols, 3.0 * per_init * len(inits) + 0.6),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    lim = np.abs(ref2).max() * 1.3 + 1e-9
    for i, init in enumerate(inits):
        for j, sampler in enumerate(samplers):
            ax = axes[i * per_init + j // ncols][j % ncols]
            ax.scatter(ref2[:, 0], ref2[:, 1], s=3, c="0.75", label="reference")
            g = d[(d["init"] == init) & (d["sampler"] == sampler)].drop_duplicates("config_key")
            files = g["particles_file"].dropna()
            if len(files):
                with np.load(suite_dir / files.iloc[0]) as z:
                    p2 = _project(z["particles"].astype(np.float64), mean, basis)
                ax.scatter(p2[:, 0], p2[:, 1], s=4, c="C3", label="particles")
            else:
                _placeholder(ax, _status_text(g))
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_title(sampler + (f" ({init})" if len(inits) > 1 else ""), fontsize=10)
            ax.tick_params(labelsize=8)
        for j in range(len(samplers), per_init * ncols):  # unused cells of the last row
            axes[i * per_init + j // ncols][j % ncols].set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(f"{axis}1", fontsize=9)
    for row in axes:
        row[0].set_ylabel(f"{axis}2", fontsize=9)
    fig.suptitle(
        f"{target}: final particles (red) over the held-out reference (grey), seed {rep}",
        fontsize=12,
    )
    return fig


def particles_figure(suite_dir: Path, df: pd.DataFrame, target: str) -> Path | None:
    """``particles_<target>.png`` (see :func:`draw_particles`); None without particles."""
    fig = draw_particles(suite_dir, df, target)
    if fig is None:
        return None
    return _save(fig, suite_dir / FIG_DIR / f"particles_{file_slug(target)}.png")


def _unfinished_note(df: pd.DataFrame, target: str, metric: str, shown: set[str]) -> str:
    """'not shown (no finished run): mala (skipped), ...' for the samplers of ``target``
    without a finite value of ``metric``."""
    d = df[(df["target"] == target) & (df["metric"] == metric) & (df["sampler"] != EXACT)]
    missing = [
        f"{s} ({'/'.join(sorted(set(g['status'])))})"
        for s, g in d.groupby("sampler", sort=False)
        if s not in shown
    ]
    return "not shown (no finished run): " + ", ".join(missing) if missing else ""


def _log_or_linear(ax: plt.Axes, values: np.ndarray) -> None:
    """Log y axis when every value is positive (metrics spanning decades), else linear."""
    if len(values) and bool((values > 0).all()):
        ax.set_yscale("log")


def draw_metric_vs_time(
    df: pd.DataFrame, curves: pd.DataFrame, target: str, metric: str
) -> plt.Figure | None:
    """The metric against wall seconds on a log axis: one point per finished run (fit +
    sampling seconds), the ``exact`` rows' mean as a dashed level (they take no time) and,
    with curves, the metric along each run against fit + sampling seconds so far. Times
    are clipped below at :data:`MIN_SECONDS` (a log axis has no zero), and the x range
    spans every point and curve."""
    d = df[(df["target"] == target) & (df["metric"] == metric) & (df["status"] == "ok")]
    d = d[np.isfinite(d["value"].astype(float))].copy()
    exact = d[d["sampler"] == EXACT]["value"].astype(float)
    d = d[d["sampler"] != EXACT]
    if d.empty:
        return None
    d["seconds"] = d["wall_seconds"].clip(lower=MIN_SECONDS)
    samplers = list(dict.fromkeys(d["sampler"]))
    palette = _palette(samplers)
    fig, ax = plt.subplots(figsize=(9.0, 5.5), layout="constrained")
    xs, ys = [d["seconds"].to_numpy(float)], [d["value"].to_numpy(float)]
    c = curves[(curves["target"] == target) & (curves["metric"] == metric)] if len(curves) else []
    if len(c):
        c = c[np.isfinite(c["value"].astype(float))]
        fit = d.drop_duplicates("config_key").set_index("config_key")["fit_seconds"].fillna(0.0)
        for key, g in c.groupby("config_key"):
            if key in fit.index:
                sampler = d[d["config_key"] == key]["sampler"].iloc[0]
                x = (g["seconds"] + fit[key]).clip(lower=MIN_SECONDS).to_numpy(float)
                ax.plot(x, g["value"], lw=1.0, alpha=0.6, color=palette[sampler])
                xs.append(x)
                ys.append(g["value"].to_numpy(float))
    inits = list(dict.fromkeys(d["init"]))
    styles = sampler_styles(samplers)
    for sampler in samplers:
        colour, marker = styles[sampler]
        for k, init in enumerate(inits):
            g = d[(d["sampler"] == sampler) & (d["init"] == init)]
            if len(g):
                ax.scatter(
                    g["seconds"],
                    g["value"],
                    s=50,
                    marker=marker,
                    facecolors=[_face(colour, k)],
                    edgecolors=[colour],
                    linewidths=1.2,
                    gid=sampler,
                )
    extra = []
    if len(exact):  # fresh target samples take no sampling time: a reference level
        ax.axhline(exact.mean(), color="0.3", ls="--", lw=1.2)
        extra.append(
            plt.Line2D([], [], color="0.3", ls="--", label="exact: fresh target samples (mean)")
        )
        ys.append(exact.to_numpy(float))
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    ax.set_xscale("log")
    ax.set_xlim(x_all.min() / 1.6, x_all.max() * 1.6)
    _log_or_linear(ax, y_all)
    ax.set_xlabel("wall seconds, fit + sampling (log scale)", fontsize=11)
    ax.set_ylabel(f"{metric} (lower is better)", fontsize=11)
    ax.set_title(f"{target}: {metric} against wall time", fontsize=12)
    ax.tick_params(labelsize=10)
    _style_legend(ax, samplers, inits, extra)
    note = _unfinished_note(df, target, metric, set(samplers))
    if note:  # a figure-level footnote: the layout keeps it clear of the x label
        fig.supxlabel(textwrap.fill(note, 110), fontsize=9, color="0.3")
    return fig


#: face opacity of the markers of the k-th init scheme (filled, hollow, half, ...)
FACE_ALPHA = (1.0, 0.0, 0.45, 0.75)
#: line styles of the k-th init scheme in metric-vs-step figures
INIT_LINES = ("-", "--", ":", "-.")


def _face(colour: tuple[float, ...], k: int) -> tuple[float, ...]:
    return (*colour[:3], FACE_ALPHA[k % len(FACE_ALPHA)])


def _style_legend(
    ax: plt.Axes, samplers: list[str], inits: list[str], extra: list[Any], lines: bool = False
) -> None:
    """A legend right of the axes: each sampler's (colour, marker), then how inits are
    drawn (fill or line style) when there are several, then ``extra`` handles."""
    styles = sampler_styles(samplers)
    handles = [
        plt.Line2D([], [], color=c, marker=m, ls="-" if lines else "none", markersize=7, label=name)
        for name, (c, m) in styles.items()
        if name in samplers
    ]
    if len(inits) > 1:
        grey = (0.35, 0.35, 0.35)
        for k, init in enumerate(inits):
            kw = {"ls": INIT_LINES[k % len(INIT_LINES)]} if lines else {"ls": "none"}
            handles.append(
                plt.Line2D(
                    [],
                    [],
                    color=grey,
                    marker=None if lines else "o",
                    markerfacecolor=_face(grey, k),
                    markeredgecolor=grey,
                    label=f"init: {init}",
                    **kw,
                )
            )
    ax.legend(
        handles=handles + extra,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=9,
        frameon=False,
    )


def metric_vs_time_figure(
    suite_dir: Path, df: pd.DataFrame, curves: pd.DataFrame, target: str, metric: str
) -> Path | None:
    """``metric_vs_time_<target>.png`` (see :func:`draw_metric_vs_time`)."""
    fig = draw_metric_vs_time(df, curves, target, metric)
    if fig is None:
        return None
    return _save(fig, suite_dir / FIG_DIR / f"metric_vs_time_{file_slug(target)}.png")


def draw_metric_vs_step(curves: pd.DataFrame, target: str, metric: str) -> plt.Figure | None:
    """The metric against the step, mean over seeds per sampler (and init), over the whole
    step range of every curve."""
    if not len(curves):
        return None
    c = curves[(curves["target"] == target) & (curves["metric"] == metric)]
    c = c[np.isfinite(c["value"].astype(float))]
    if c.empty:
        return None
    samplers = list(dict.fromkeys(c["sampler"]))
    inits = list(dict.fromkeys(c["init"]))
    styles = sampler_styles(samplers)
    fig, ax = plt.subplots(figsize=(9.0, 5.5), layout="constrained")
    means = c.groupby(["sampler", "init", "step"], sort=False)["value"].mean()
    for (sampler, init), g in means.groupby(level=["sampler", "init"], sort=False):
        colour, marker = styles[sampler]
        steps = g.index.get_level_values("step").to_numpy()
        order = np.argsort(steps, kind="stable")
        ax.plot(
            steps[order],
            g.to_numpy(float)[order],
            color=colour,
            marker=marker,
            markevery=max(1, len(steps) // 8),
            markersize=6,
            ls=INIT_LINES[inits.index(init) % len(INIT_LINES)],
            lw=1.4,
            gid=sampler,
        )
    ax.set_xlim(0, max(1, int(c["step"].max())))
    _log_or_linear(ax, c["value"].to_numpy(float))
    ax.set_xlabel("step", fontsize=11)
    ax.set_ylabel(f"{metric}, mean over seeds (lower is better)", fontsize=11)
    ax.set_title(f"{target}: {metric} along the run", fontsize=12)
    ax.tick_params(labelsize=10)
    _style_legend(ax, samplers, inits, [], lines=True)
    return fig


def metric_vs_step_figure(
    suite_dir: Path, curves: pd.DataFrame, target: str, metric: str
) -> Path | None:
    """``metric_vs_step_<target>.png`` (see :func:`draw_metric_vs_step`)."""
    fig = draw_metric_vs_step(curves, target, metric)
    if fig is None:
        return None
    return _save(fig, suite_dir / FIG_DIR / f"metric_vs_step_{file_slug(target)}.png")


def heatmap_figure(suite_dir: Path, df: pd.DataFrame, metric: str) -> Path | None:
    s = summarise(df, metric)
    if s.empty:
        return None
    columns = list(dict.fromkeys(df["column"]))
    means = s.pivot(index="sampler", columns="column", values="mean").reindex(columns=columns)
    order = [EXACT] if EXACT in means.index else []
    rest = means.drop(index=EXACT, errors="ignore")
    order += list(rest.rank(axis=0).mean(axis=1).sort_values().index)
    means = means.reindex(order)
    with np.errstate(divide="ignore", invalid="ignore"):
        logged = np.log10(means.clip(lower=1e-12).astype(float))
    fig, ax = plt.subplots(
        figsize=(max(6.5, 2.5 + 1.3 * len(columns)), 1.6 + 0.45 * len(means)),
        layout="constrained",
    )
    sns.heatmap(
        logged,
        annot=means.map(lambda v: "" if math.isnan(v) else f"{v:.3g}"),
        fmt="",
        cmap="viridis_r",
        cbar_kws={"label": f"log10 {metric}"},
        ax=ax,
        annot_kws={"fontsize": 7},
    )
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title(f"{metric}, mean over seeds\n(lower is better; blank: no finished run)")
    ax.tick_params(labelsize=7)
    return _save(fig, suite_dir / FIG_DIR / f"heatmap_{file_slug(metric)}.png")


def critical_difference_figure(suite_dir: Path, df: pd.DataFrame, metric: str) -> Path | None:
    """Average ranks (1 = best) of the samplers over the targets, the Nemenyi CD drawn as a
    bar above the axis, and thick lines under each maximal group of samplers whose average
    ranks differ by less than CD (not significantly different). None for an unranked
    metric or fewer than two samplers."""
    if not metric_spec(metric).ranked:
        return None
    ranking = rank_summary(df, metric)  # the table's ranked samplers and columns, no others
    ranks, cd, n = ranking.average, ranking.cd, ranking.n_units
    k = len(ranks)
    if k < 2 or n < 1:
        return None
    # at least 4 in high: after the tight crop (the axis is off) it stays >= 300 px at
    # DPI 100, so the labels stay readable in the report
    fig, ax = plt.subplots(figsize=(8, max(4.0, 1.2 + 0.28 * k)))
    ax.set_xlim(k + 0.5, 0.5)  # best (rank 1) on the right, as in Demšar's figures
    ax.set_ylim(-k - 1, 2)
    ax.axhline(0, color="k", lw=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.15], color="k", lw=1)
        ax.text(r, 0.3, str(r), ha="center", va="bottom", fontsize=8)
    for i, (name, r) in enumerate(ranks.items()):
        y = -(i + 1)
        ax.plot([r, r], [0, y], color="0.5", lw=0.8)
        ax.text(
            r,
            y,
            f" {name} ({r:.2f}) ",
            ha="right" if r < (k + 1) / 2 else "left",
            va="center",
            fontsize=10,
        )
    if np.isfinite(cd):
        ax.plot([1, 1 + cd], [1.3, 1.3], color="tab:red", lw=2)
        ax.text(1 + cd / 2, 1.45, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
        values = ranks.to_numpy()
        groups = []
        for i in range(k):
            j = max(j for j in range(i, k) if values[j] - values[i] < cd)
            if j > i and not any(a <= i and j <= b for a, b in groups):
                groups.append((i, j))
        for g, (i, j) in enumerate(groups):
            ax.plot([values[i], values[j]], [-0.4 - 0.25 * g] * 2, color="k", lw=3)
    ax.axis("off")
    ax.set_title(
        f"{metric}: average ranks over {len(ranking.columns)} ranked columns, {n} targets "
        "(Nemenyi, alpha = 0.05)",
        fontsize=9,
    )
    path = _save(fig, suite_dir / FIG_DIR / f"critical_difference_{file_slug(metric)}.png")
    return path


def suite_figures(
    suite_dir: Path, rows: list[dict[str, Any]], curves: list[dict[str, Any]]
) -> list[Path]:
    """Every figure of one suite (see the module docstring); returns the files written."""
    df = rows_frame(rows, suite_meta(suite_dir))
    if df.empty:
        return []
    if "particles_file" not in df:
        df["particles_file"] = None
    cf = pd.DataFrame(curves)
    if len(cf):
        cf["sampler"] = grid_labels(cf)
    metric = headline_of(suite_dir, rows) or str(df["metric"].iloc[0])
    out = [heatmap_figure(suite_dir, df, metric), critical_difference_figure(suite_dir, df, metric)]
    for target in dict.fromkeys(df["target"]):
        out.append(particles_figure(suite_dir, df, target))
        out.append(metric_vs_time_figure(suite_dir, df, cf, target, metric))
        out.append(metric_vs_step_figure(suite_dir, cf, target, metric))
    return [p for p in out if p is not None]
