"""A leaderboard depends on the rows, not on the order they were recorded in (parallel runs
record in completion order, a resumed run appends): rebuilding from shuffled rows gives the
same markdown and CSV, byte for byte."""

from __future__ import annotations

import json
import random

import numpy as np

from benchmarks.verdict.leaderboard import SUITE_FILE, write_leaderboard
from tests.helpers.leaderboard_rows import metric_row


def _rows() -> list[dict]:
    """5 samplers + exact on 3 targets x 2 inits x 4 seeds, two metrics; 'late' sorts between
    the others by name (a sampler appended by a resumed run must not move to the end)."""
    rng = np.random.default_rng(1)
    rows = []
    for target in ("t_b", "t_a", "t_c"):  # the suite's order is not alphabetical
        for init in ("gaussian", "cap"):
            for rep in range(4):
                for k, sampler in enumerate(("exact", "alpha", "late", "beta", "gamma", "zeta")):
                    for metric in ("score_y", "other_x"):
                        value = 1.0 + 0.1 * k + 0.2 * rng.normal()
                        rows.append(metric_row(sampler, target, init, rep, metric, value))
    return rows


def _build(tmp_path, name: str, rows: list[dict], suite: dict | None) -> tuple[str, str]:
    out = tmp_path / name
    out.mkdir()
    if suite is not None:
        (out / SUITE_FILE).write_text(json.dumps(suite), encoding="utf-8")
    path = write_leaderboard(rows, out, "order", "cmd", headline="score_y")
    return path.read_text(encoding="utf-8"), (out / "leaderboard.csv").read_text(encoding="utf-8")


def test_shuffled_rows_give_identical_leaderboards(tmp_path) -> None:
    rows = _rows()
    suite = {
        "targets": ["t_b", "t_a", "t_c"],
        "inits": ["gaussian", "cap"],
        "metrics": ["score_y", "other_x"],
        "headline": "score_y",
    }
    for with_suite in (True, False):
        texts = set()
        for k in range(3):
            shuffled = list(rows)
            random.Random(k).shuffle(shuffled)
            if k == 2:  # a resumed run: one sampler's rows appended at the end
                shuffled.sort(key=lambda r: r["sampler"] == "late")
            texts.add(_build(tmp_path, f"{with_suite}{k}", shuffled, suite if with_suite else None))
        assert len(texts) == 1, f"leaderboard depends on the row order (suite.json: {with_suite})"
    md, _ = _build(tmp_path, "check", rows, suite)
    header = next(ln for ln in md.splitlines() if ln.startswith("| sampler"))
    # columns follow the suite's target order, not the alphabet
    assert header.index("t_b / gaussian") < header.index("t_a / gaussian") < header.index("t_c")
    lines = md.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("## Paired comparisons"))
    header = start + 2  # heading, blank line, then the caption paragraph and the table
    while not lines[header].startswith("| a |"):
        header += 1
    end = header + 2
    while lines[end].startswith("|"):
        end += 1
    table = lines[header + 2 : end]
    assert len(table) == 10  # every pair of the 5 samplers, exact excluded
    pair_names = [tuple(c.strip() for c in ln.split("|")[1:3]) for ln in table]
    # every pair is written (a, b) with a before b by name
    assert pair_names and all(a < b for a, b in pair_names)


def test_environment_section_gives_the_threads_the_runs_used(tmp_path) -> None:
    """The parent process may have 2 torch threads; every run pins its own (the rows'
    ``blas`` says x1): the Environment section reports the runs' setting."""
    rows = [{**r, "blas": "openblas:SkylakeXx1 openmp:?x1 OPENBLAS_NUM_THREADS=1"} for r in _rows()]
    env = {"commit": "abc", "torch_threads": 2, "blas": "openblas:SkylakeXx2 openmp:?x2"}
    path = write_leaderboard(rows, tmp_path, "order", "cmd", env, headline="score_y")
    section = path.read_text(encoding="utf-8").split("## Environment")[1]
    assert "- threads per run (torch and BLAS): 1" in section
    assert "x2" not in section and "torch_threads" not in section
    assert "- commit: abc" in section
