"""Figures a reviewer can read: sizes, a positive log time axis that spans every curve,
placeholders for samplers without particles, a categorical class legend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from PIL import Image

from benchmarks.execution.store import CURVES_FILE, ROWS_FILE, load_curves, load_rows
from benchmarks.execution.suite_run import run_suite
from benchmarks.presentation.plots import (
    MIN_SECONDS,
    draw_metric_vs_step,
    draw_metric_vs_time,
    draw_particles,
    sampler_styles,
    suite_figures,
)
from benchmarks.verdict.leaderboard import grid_labels, rows_frame
from tests.helpers import harness_plugin as hp

#: the report shows figures at up to 1400 px; below 600 px wide a figure's text is too
#: small to read once shown, above 4000 px it is a poster (both mean a layout bug)
MIN_WIDTH, MAX_WIDTH = 600, 4000


@pytest.fixture
def tiny(tmp_path, monkeypatch, plugin):
    """A finished tiny suite with curves in which ``ula`` diverges (a huge step)."""
    suite = hp.tiny_suite(
        n_steps=6,
        inits=("gaussian", "cap"),
        samplers=("ula", "svgd", "mala"),
        sampler_params={"ula": {"step_size": 1e6}},
    )
    run_suite(suite, out_root=tmp_path, progress=False, curve_every=2)
    out = tmp_path / "tiny"
    rows = load_rows(out / ROWS_FILE).rows
    curves = pd.DataFrame(load_curves(out / CURVES_FILE))
    curves["sampler"] = grid_labels(curves)
    return out, rows, curves


def test_figure_files_have_readable_pixel_sizes(tiny):
    out, rows, curves = tiny
    paths = suite_figures(out, rows, curves.to_dict("records"))
    names = {p.name for p in paths}
    assert {f"particles_{hp.TARGET}.png", f"metric_vs_time_{hp.TARGET}.png"} <= names
    for path in paths:
        width, height = Image.open(path).size
        assert MIN_WIDTH <= width <= MAX_WIDTH, (path.name, width)
        assert 300 <= height <= MAX_WIDTH, (path.name, height)


def test_time_axis_is_positive_log_and_spans_every_curve(tiny):
    out, rows, curves = tiny
    df = rows_frame(rows)
    fig = draw_metric_vs_time(df, curves, hp.TARGET, hp.METRIC)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert ax.get_xscale() == "log" and lo > 0
    visible = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert visible and min(visible) > 0, visible
    for line in ax.get_lines():
        x = np.asarray(line.get_xdata(), dtype=float)
        if len(x) > 2:  # a curve (the exact level is a 2-point axhline in axes units)
            assert x.min() >= lo and x.max() <= hi
    ok = df[(df["status"] == "ok") & (df["sampler"] != "exact")]
    assert ok["wall_seconds"].clip(lower=MIN_SECONDS).max() <= hi
    # samplers without a finished run: a footnote below the x label, not over it
    note = fig._supxlabel  # noqa: SLF001
    assert "ula (diverged)" in note.get_text()
    fig.canvas.draw()
    assert note.get_window_extent().y1 <= ax.xaxis.label.get_window_extent().y0
    # the exact level is named in the legend, not by a text on the points
    assert not ax.texts
    legend_text = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("exact") for t in legend_text)
    # the legend sits outside the plotting area, so it hides no point
    legend = ax.get_legend()
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert box.x0 >= ax.get_window_extent().x1
    plt.close(fig)


def _marker_key(path) -> tuple:
    return tuple(np.round(path.vertices, 3).ravel())


def test_style_map_gives_every_sampler_its_own_colour_and_marker():
    """One shared map: distinct (colour, marker) for every registered sampler plus grid
    labels, and a sampler keeps its style whichever samplers a figure shows."""
    from samplers.base import available_samplers

    names = [*available_samplers(), "dmps[step_fraction=0.1]", "dmps[step_fraction=0.2]", "x"]
    styles = sampler_styles(names)
    assert set(styles) == set(names)
    assert len(set(styles.values())) == len(names)
    # the colours of the registry's first 10 are 10 different hues (tab20's dark shades)
    assert len({c for c, _ in list(styles.values())[:10]}) == 10
    assert sampler_styles(["svgd", "ula"])["svgd"] == styles["svgd"]


def _distinct_styles_per_gid(artists: list, colour_of, marker_of) -> dict:
    """gid -> (colour, marker key), checking that every artist of one gid has one style."""
    seen: dict = {}
    for a in artists:
        gid = a.get_gid()
        if gid is None:
            continue
        style = (tuple(np.round(colour_of(a), 3)), marker_of(a))
        assert seen.setdefault(gid, style) == style, f"{gid} drawn in two styles"
    return seen


def test_metric_figures_give_each_sampler_a_distinct_colour_and_marker(tiny):
    """In every multi-sampler figure (metric vs time, metric vs step) the artists of each
    sampler share one (colour, marker), no two samplers share one, and it is the style
    map's."""
    out, rows, curves = tiny
    df = rows_frame(rows)
    fig = draw_metric_vs_time(df, curves, hp.TARGET, hp.METRIC)
    ax = fig.axes[0]
    points = _distinct_styles_per_gid(
        ax.collections, lambda a: a.get_edgecolor()[0][:3], lambda a: _marker_key(a.get_paths()[0])
    )
    assert set(points) == {"svgd", "mala"}  # ula diverged: no point
    assert len(set(points.values())) == len(points)
    styles = sampler_styles(list(points))
    for name, (colour, _) in points.items():
        assert colour == tuple(np.round(styles[name][0][:3], 3))
    plt.close(fig)
    fig = draw_metric_vs_step(curves, hp.TARGET, hp.METRIC)
    lines = _distinct_styles_per_gid(
        fig.axes[0].get_lines(),
        lambda a: plt.matplotlib.colors.to_rgb(a.get_color()),
        lambda a: a.get_marker(),
    )
    assert len(lines) >= 2 and len(set(lines.values())) == len(lines)
    for name, (_colour, marker) in lines.items():
        assert marker == sampler_styles([name])[name][1]
    plt.close(fig)


def test_step_axis_spans_every_curve(tiny):
    _, _, curves = tiny
    fig = draw_metric_vs_step(curves, hp.TARGET, hp.METRIC)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, float(curves["step"].max()))
    plt.close(fig)


def test_particles_figure_has_a_placeholder_and_unclipped_titles(tiny):
    out, rows, _ = tiny
    fig = draw_particles(out, rows_frame(rows), hp.TARGET)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert "mala (gaussian)" in titles and "ula (cap)" in titles
    ula = next(ax for ax in fig.axes if ax.get_title() == "ula (gaussian)")
    assert ula.texts[0].get_text().startswith("diverged")
    fig.canvas.draw()
    top = min(ax.get_window_extent().y1 for ax in fig.axes if ax.get_visible())
    panel_titles = [ax.title.get_window_extent().y1 for ax in fig.axes if ax.get_visible()]
    # the overall title is above every panel title (constrained layout), not over one
    assert fig._suptitle.get_window_extent().y0 >= max(panel_titles) >= top
    plt.close(fig)


def test_diffusion_map_legend_is_categorical(tmp_path):
    from datasets.images.diagnostics import diffusion_map_plot

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    latents = rng.normal(size=(120, 4)) + labels[:, None] * 3.0
    path = diffusion_map_plot(latents, labels, tmp_path / "dm.png", title="t")
    assert Image.open(path).size[0] >= MIN_WIDTH
    # read back through the same figure code: one legend entry per class, no colour bar
    import matplotlib.figure

    captured = {}
    original = matplotlib.figure.Figure.savefig

    def keep(self, *args, **kwargs):
        captured["fig"] = self
        return original(self, *args, **kwargs)

    matplotlib.figure.Figure.savefig = keep
    try:
        diffusion_map_plot(latents, labels, tmp_path / "dm2.png")
    finally:
        matplotlib.figure.Figure.savefig = original
    fig = captured["fig"]
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["0", "1", "2"]
    assert all(ax.get_label() != "<colorbar>" for ax in fig.axes)


@pytest.mark.parametrize(("n_particles", "shown"), [(50, 50), (200, 64)])
def test_images_md_states_the_count_the_grids_draw(n_particles, shown):
    from benchmarks.diagnostics.latent_images import header_lines

    rows = [{"rep": 0, "init": "gaussian", "n_particles": n_particles}]
    caption = header_lines(rows)[2]
    assert f"the first {shown} of {n_particles} decoded particles" in caption


def test_shell_experiment_particles_have_a_colour_bar_for_x3():
    """The two particle panels coloured by x_3 share one scale (-1..1) and a colour bar
    says what the colour means."""
    from benchmarks.studies.shell_experiment import draw_figure

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    curves = {
        ("shell3", "cap init"): ([], [], x),
        ("shell3", "dmps (reference step)"): ([0, 10], [0.5, 0.1], x),
        ("shell100", "exact"): ([0, 10], [0.2, 0.2], x),
    }
    fig = draw_figure(curves)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylabel() == "x_3"
    scatters = [c for ax in fig.axes[2:4] for c in ax.collections]
    assert len(scatters) == 2 and all(c.get_clim() == (-1, 1) for c in scatters)
    plt.close(fig)
