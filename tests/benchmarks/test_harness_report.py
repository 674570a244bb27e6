"""``python -m benchmarks report``: figures for every suite and an index.html whose every
link and image resolves to a file."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from benchmarks.__main__ import main
from benchmarks.execution.locking import HOLDER_FILE, LOCK_FILE
from benchmarks.execution.store import CURVES_FILE, ROWS_FILE, load_curves, load_rows, write_rows
from benchmarks.execution.suite_run import run_suite
from benchmarks.presentation.figure_cache import DRAWN_FILE
from benchmarks.presentation.plots import project_2d
from benchmarks.presentation.report import markdown_to_html, suite_dirs
from tests.helpers import harness_plugin as hp


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag == "img":
            self.srcs.append(a["src"])


def _links(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_report_links_and_images_resolve(tmp_path, plugin, capsys):
    suite = hp.tiny_suite(inits=("gaussian", "cap"))
    run_suite(suite, out_root=tmp_path, progress=False, curve_every=2)
    (tmp_path / "benchmarks").mkdir()
    timing = "# Timing\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    (tmp_path / "benchmarks" / "summary.md").write_text(timing)
    study_run = tmp_path / "study" / "runs_of_a_study" / "tiny"  # a harness run in a study
    shutil.copytree(tmp_path / "tiny", study_run, ignore=shutil.ignore_patterns(".lock*"))
    assert main(["report", "--out", str(tmp_path)]) == 0
    # a study run that keeps no figures gets none (they would be uncommitted files)
    assert not (study_run / "figures").exists()
    index = tmp_path / "index.html"
    links = _links(index)
    figures = {Path(s).name for s in links.srcs}
    assert figures == {
        "heatmap_harness_energy.png",
        "critical_difference_harness_energy.png",
        "particles_harness_gauss.png",
        "metric_vs_time_harness_gauss.png",
        "metric_vs_step_harness_gauss.png",
    }
    text = index.read_text()
    for ref in links.hrefs + links.srcs:
        assert not urlparse(ref).scheme and not ref.startswith("/"), f"not relative: {ref}"
        if ref.startswith("#"):
            assert f'id="{ref[1:]}"' in text, f"no anchor {ref}"
        else:
            assert (tmp_path / ref).is_file(), f"broken link {ref}"
    # every file under the results folder is reached from the index, but the run's lock
    # (git-ignored, absent from a clone: a dead link there)
    every = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert "tiny/.lock" in every
    assert every - set(links.hrefs) == {"index.html"} | {
        f for f in every if Path(f).name in (LOCK_FILE, HOLDER_FILE, DRAWN_FILE)
    }
    assert not [h for h in links.hrefs if Path(h).name in (LOCK_FILE, HOLDER_FILE)]
    err = capsys.readouterr().err
    assert f"report: writing {index}" in err and f"report: wrote {index}" in err
    assert "(1 suite," in err  # not "1 suites"
    for src in links.srcs:
        assert (tmp_path / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for needed in ("tiny/leaderboard.html", "tiny/environment.json", "benchmarks/summary.html"):
        assert needed in links.hrefs
    assert "commit" in text and "torch" in text and "device" in text
    board = (tmp_path / "tiny" / "leaderboard.html").read_text()
    assert "<table>" in board and "<td>exact</td>" in board
    # the leaderboard page's own links (its critical-difference figure) resolve
    for ref in _links(tmp_path / "tiny" / "leaderboard.html").hrefs:
        assert (tmp_path / "tiny" / ref).is_file(), f"broken link {ref}"


def test_a_second_report_draws_nothing_and_a_changed_row_redraws_its_suite(
    tmp_path, plugin, capsys
):
    """Figures are redrawn only where what they are drawn from changed (figure_cache): a
    second report on the same files leaves every figure untouched, a changed row (here one
    value) redraws that suite's figures, and a removed figure is drawn again."""
    suite = hp.tiny_suite(inits=("gaussian", "cap"))
    run_suite(suite, out_root=tmp_path, progress=False, curve_every=2)
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert "figures of 1 folder(s) redrawn" in capsys.readouterr().err
    figures = sorted((tmp_path / "tiny" / "figures").glob("*.png"))
    stamps = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in figures}
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert "figures of 0 folder(s) redrawn" in capsys.readouterr().err
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in figures} == stamps
    rows_path = tmp_path / "tiny" / ROWS_FILE
    rows = load_rows(rows_path).rows
    ok = next(r for r in rows if r["sampler"] != "exact" and r["status"] == "ok")
    ok["value"] = ok["value"] * 2
    write_rows(rows_path, rows)
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert "figures of 1 folder(s) redrawn" in capsys.readouterr().err
    assert any(p.stat().st_mtime_ns != stamps[p][0] for p in figures)
    figures[0].unlink()
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert "figures of 1 folder(s) redrawn" in capsys.readouterr().err
    assert figures[0].is_file()


def test_a_redraw_gives_the_same_files_as_the_first_drawing(tmp_path, plugin):
    """The cache is only a shortcut: drawing is deterministic, so skipping it loses nothing."""
    from benchmarks.presentation.plots import suite_figures

    suite = hp.tiny_suite(inits=("gaussian", "cap"))
    run_suite(suite, out_root=tmp_path, progress=False, curve_every=2)
    folder = tmp_path / "tiny"
    rows, curves = load_rows(folder / ROWS_FILE).rows, load_curves(folder / CURVES_FILE)
    first = {p.name: p.read_bytes() for p in suite_figures(folder, rows, curves)}
    again = {p.name: p.read_bytes() for p in suite_figures(folder, rows, curves)}
    assert first == again and len(first) == 5


def test_suites_listed_in_registry_order(tmp_path):
    """index.html opens with the suites in ``list suites`` order (the headline suite first),
    not the alphabet; unregistered folders come after, by name."""
    for name in ("bounded", "zzz_custom", "manifolds", "aaa_custom", "mixtures"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "runs.jsonl").write_text("")
    (tmp_path / "untuned" / "bounded").mkdir(parents=True)
    (tmp_path / "untuned" / "bounded" / "runs.jsonl").write_text("")
    got = [p.relative_to(tmp_path).as_posix() for p in suite_dirs(tmp_path)]
    assert got == [
        "manifolds",
        "mixtures",
        "bounded",
        "aaa_custom",
        "zzz_custom",
        "untuned/bounded",
    ]


def test_report_without_results_and_markdown_subset(tmp_path):
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert "No suite results yet" in (tmp_path / "index.html").read_text()
    page = markdown_to_html("# T <x>\n\ntext `a|b` **bold**\n\n- one\n- two\n", "t")
    assert "<h1>T &lt;x&gt;</h1>" in page
    assert "<code>a|b</code>" in page and "<b>bold</b>" in page
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in page


@pytest.mark.parametrize("d", [1, 2, 5])
def test_projection_is_identity_in_2d_and_pca_above(d):
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(200, d)) * np.arange(1, d + 1)
    mean, basis, _ = project_2d(ref)
    assert basis.shape == (d, 2)
    if d == 2:
        assert np.array_equal(basis, np.eye(2))
    if d == 5:
        # the top principal direction of a diagonal covariance is the widest axis
        assert abs(basis[4, 0]) > 0.95
        assert np.allclose(basis.T @ basis, np.eye(2), atol=1e-10)


def test_timing_summary_from_pytest_benchmark_json(tmp_path):
    from benchmarks.studies.timing_summary import main as timing_main

    stats = {"median": 0.0123, "mean": 0.0125, "stddev": 0.0004, "rounds": 7}
    info = {"sampler": "ula", "n_particles": 1024, "n_train": 5000, "dim": 16}
    info |= {"device": "cpu", "device_name": "cpu", "torch": "2.x", "torch_threads": 1}
    data = {
        "machine_info": {"python_version": "3.11", "cpu": {"brand_raw": "TestCPU", "count": 2}},
        "commit_info": {"id": "abcdef1234567890", "dirty": False},
        "datetime": "2026-01-01T00:00:00",
        "benchmarks": [
            {
                "name": "test_sampler_single_step[ula-cpu]",
                "group": "sampler step",
                "extra_info": info,
                "stats": stats,
            },
        ],
    }
    (tmp_path / "samplers.json").write_text(json.dumps(data))
    assert timing_main(["--dir", str(tmp_path)]) == 0
    md = (tmp_path / "summary.md").read_text()
    assert "Produced by: `python -m benchmarks.studies.timing_summary`" in md
    assert (
        "| ula | cpu | n_particles=1024, n_train=5000, dim=16 | 1 | 12.3 | 12.5 ± 0.4 | 7 |" in md
    )
    assert "TestCPU, 2 cores" in md and "commit abcdef123456" in md
    assert "- made by: `pytest tests/bench/test_bench_samplers.py --benchmark-only" in md


def test_timing_summary_run_records_the_code_commit_and_runs_every_quick_file(
    tmp_path, monkeypatch
):
    """``--run`` runs the four quick benchmark files, each into its JSON, and stamps each with
    the code commit taken before it ran (pytest-benchmark's own ``dirty`` also counts result
    files written by earlier studies); the summary shows that commit."""
    import benchmarks.studies.timing_summary as ts

    ran: list[str] = []

    def fake_call(cmd, cwd=None):
        path = Path(cmd[cmd.index("--benchmark-json") + 1])
        ran.append(path.name)
        data = {"commit_info": {"id": "abcdef1234567890", "dirty": True}, "benchmarks": []}
        path.write_text(json.dumps(data))
        return 0

    monkeypatch.setattr(ts.subprocess, "call", fake_call)
    monkeypatch.setattr(ts, "git_commit", lambda: "0123456789ab")
    assert ts.main(["--dir", str(tmp_path), "--run"]) == 0
    assert ran == ["samplers.json", "baselines.json", "latents.json", "metrics.json"]
    md = (tmp_path / "summary.md").read_text()
    assert md.count("commit 0123456789ab\n") == 4 and "(dirty)" not in md
    assert "- made by: `pytest tests/bench/test_bench_metrics.py --benchmark-only" in md
