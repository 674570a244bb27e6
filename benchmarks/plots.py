"""Figures of one suite from its rows, curves and particle files (matplotlib Agg, seaborn).

* ``particles_<target>.png``: the final particles of every sampler (seed = the smallest,
  one row of panels per init scheme) over the held-out reference sample, in the first two
  coordinates when d = 2, else in the plane of the reference set's first two principal
  components;
* ``metric_vs_time_<target>.png``: the headline metric against wall time: one point per run
  (fit + sampling seconds), and with ``--curve-every`` the metric along each run against
  fit + sampling seconds so far;
* ``metric_vs_step_<target>.png`` (with ``--curve-every``): the metric against the step,
  mean over seeds per sampler;
* ``heatmap_<metric>.png``: log10 of the leaderboard's mean metric, samplers x targets;
* ``critical_difference_<metric>.png`` (ranked headline): average ranks over targets on an
  axis with the Nemenyi critical difference, samplers closer than CD joined by a bar
  (Demšar 2006).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmarks.leaderboard import (  # noqa: E402
    EXACT,
    grid_labels,
    headline_of,
    metric_spec,
    rank_summary,
    rows_frame,
    summarise,
)
from benchmarks.store import atomic_path  # noqa: E402

FIG_DIR = "figures"
#: wall times are drawn on a log axis, clipped below at this many seconds
MIN_SECONDS = 1e-4


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


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
        fig.savefig(tmp, dpi=90, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def particles_figure(suite_dir: Path, df: pd.DataFrame, target: str) -> Path | None:
    """Final particles over the reference, one panel per (init, sampler); None when no
    particle files were saved."""
    d = df[(df["target"] == target) & df["particles_file"].notna()]
    d = d[d["rep"] == d["rep"].min()] if not d.empty else d
    exact = d[d["sampler"] == EXACT]
    if d.empty or exact.empty:
        return None
    with np.load(suite_dir / exact["particles_file"].iloc[0]) as z:
        reference = z["reference"].astype(np.float64)
    mean, basis, axis = project_2d(reference)
    ref2 = _project(reference, mean, basis)
    inits = list(dict.fromkeys(d["init"]))
    samplers = list(dict.fromkeys([EXACT, *d["sampler"]]))
    fig, axes = plt.subplots(
        len(inits),
        len(samplers),
        figsize=(2.6 * len(samplers), 2.6 * len(inits)),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    lim = np.abs(ref2).max() * 1.3 + 1e-9
    for i, init in enumerate(inits):
        for j, sampler in enumerate(samplers):
            ax = axes[i][j]
            ax.scatter(ref2[:, 0], ref2[:, 1], s=3, c="0.75", label="reference")
            g = d[(d["init"] == init) & (d["sampler"] == sampler)].drop_duplicates("config_key")
            if not g.empty:
                with np.load(suite_dir / g["particles_file"].iloc[0]) as z:
                    p2 = _project(z["particles"].astype(np.float64), mean, basis)
                ax.scatter(p2[:, 0], p2[:, 1], s=4, c="C3", label="particles")
            else:
                ax.text(0.5, 0.5, "no particles", ha="center", transform=ax.transAxes)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_title(f"{sampler}" + (f"\n{init}" if len(inits) > 1 else ""), fontsize=8)
            ax.tick_params(labelsize=6)
    axes[-1][0].set_xlabel(f"{axis}1", fontsize=7)
    axes[0][0].set_ylabel(f"{axis}2", fontsize=7)
    fig.suptitle(f"{target}: final particles (red) over the reference (grey)", fontsize=9)
    return _save(fig, suite_dir / FIG_DIR / f"particles_{_slug(target)}.png")


def metric_vs_time_figure(
    suite_dir: Path, df: pd.DataFrame, curves: pd.DataFrame, target: str, metric: str
) -> Path | None:
    d = df[(df["target"] == target) & (df["metric"] == metric) & (df["status"] == "ok")]
    d = d[np.isfinite(d["value"].astype(float))]
    if d.empty:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    sns.scatterplot(data=d, x="wall_seconds", y="value", hue="sampler", style="init", ax=ax)
    c = curves[(curves["target"] == target) & (curves["metric"] == metric)] if len(curves) else []
    if len(c):
        fit = d.drop_duplicates("config_key").set_index("config_key")["fit_seconds"].fillna(0.0)
        colours = {s: f"C{i}" for i, s in enumerate(dict.fromkeys(d["sampler"]))}
        for key, g in c.groupby("config_key"):
            if key in fit.index:
                sampler = d[d["config_key"] == key]["sampler"].iloc[0]
                ax.plot(g["seconds"] + fit[key], g["value"], lw=0.8, alpha=0.6, c=colours[sampler])
    ax.set_xscale("symlog", linthresh=1e-2)
    ax.set_yscale("log")
    ax.set_xlabel("wall seconds (fit + sampling)")
    ax.set_ylabel(metric)
    ax.set_title(f"{target}: {metric} against wall time", fontsize=9)
    ax.legend(fontsize=6, loc="best")
    return _save(fig, suite_dir / FIG_DIR / f"metric_vs_time_{_slug(target)}.png")


def metric_vs_step_figure(
    suite_dir: Path, curves: pd.DataFrame, target: str, metric: str
) -> Path | None:
    if not len(curves):
        return None
    c = curves[(curves["target"] == target) & (curves["metric"] == metric)]
    c = c[np.isfinite(c["value"].astype(float))]
    if c.empty:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    sns.lineplot(data=c, x="step", y="value", hue="sampler", style="init", errorbar=None, ax=ax)
    ax.set_yscale("log")
    ax.set_ylabel(f"{metric} (mean over seeds)")
    ax.set_title(f"{target}: {metric} along the run", fontsize=9)
    ax.legend(fontsize=6, loc="best")
    return _save(fig, suite_dir / FIG_DIR / f"metric_vs_step_{_slug(target)}.png")


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
        figsize=(max(5.0, 2.5 + 1.3 * len(columns)), 1.2 + 0.45 * len(means)),
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
    return _save(fig, suite_dir / FIG_DIR / f"heatmap_{_slug(metric)}.png")


def critical_difference_figure(suite_dir: Path, df: pd.DataFrame, metric: str) -> Path | None:
    """Average ranks (1 = best) of the samplers over the targets, the Nemenyi CD drawn as a
    bar above the axis, and thick lines under each maximal group of samplers whose average
    ranks differ by less than CD (not significantly different). None for an unranked
    metric or fewer than two samplers."""
    if not metric_spec(metric).ranked:
        return None
    ranks, cd, n = rank_summary(df, metric)
    k = len(ranks)
    if k < 2 or n < 1:
        return None
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.28 * k))
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
            fontsize=8,
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
    ax.set_title(f"{metric}: average ranks over {n} targets (Nemenyi, alpha = 0.05)", fontsize=9)
    path = suite_dir / FIG_DIR / f"critical_difference_{_slug(metric)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def suite_figures(
    suite_dir: Path, rows: list[dict[str, Any]], curves: list[dict[str, Any]]
) -> list[Path]:
    """Every figure of one suite (see the module docstring); returns the files written."""
    df = rows_frame(rows)
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
