"""The committed suite results are current at HEAD: for every committed suite folder, one
cheap cell (the first target, the first seed, the ``exact`` row and DMPS, the method whose
numbers change most with the code) is re-run with the suite recorded beside the rows
(``suite.json``, tuned settings included) and compared bit for bit with the committed rows.
A failure names the suite and the command that refreshes it. Folders of the named suites
(``benchmarks.suites.SUITES``) are checked; study runs with their own suite files
(``results/dmps/...``, ``results/edmd/...``) are refreshed through
``python -m benchmarks.studies`` instead."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

import pytest

from benchmarks.execution.environment import REPO_ROOT
from benchmarks.execution.parallel import with_threads
from benchmarks.execution.provenance import original_command
from benchmarks.execution.runner import execute_unit, plan
from benchmarks.execution.store import ROWS_FILE, load_rows
from benchmarks.suites import SUITES, Suite

RESULTS = REPO_ROOT / "results"
#: the samplers re-run per suite (where the suite ran them): exact (data, splits, metrics)
#: and DMPS (the spectral code, the transport, the step rule)
CHECKED = ("exact", "dmps")


def _suite_folders() -> list[Path]:
    return sorted(
        p.parent
        for p in RESULTS.rglob(ROWS_FILE)
        if (p.parent / "suite.json").exists()
        and json.loads((p.parent / "suite.json").read_text(encoding="utf-8")).get("name") in SUITES
    )


def _suite(folder: Path) -> Suite:
    raw = json.loads((folder / "suite.json").read_text(encoding="utf-8"))
    known = {f.name for f in fields(Suite)}
    kw = {k: v for k, v in raw.items() if k in known}
    for k in ("targets", "seeds", "inits", "metrics", "samplers"):
        if kw.get(k) is not None:
            kw[k] = tuple(kw[k])
    return Suite(**kw)


@pytest.fixture
def restore_threads():
    """``with_threads`` pins this process to one thread; give the other tests theirs back."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("folder", _suite_folders(), ids=lambda p: str(p.relative_to(RESULTS)))
def test_committed_rows_are_reproduced_at_head(folder: Path, restore_threads: None) -> None:
    rows = load_rows(folder / ROWS_FILE).rows
    suite = _suite(folder)
    ran = {r["sampler"] for r in rows}
    committed = {
        (r["config_key"], r["init"], r["metric"]): r
        for r in rows
        if r["target"] == suite.targets[0] and r["rep"] == suite.seeds[0]
    }
    specs = [
        s
        for s in plan(
            suite, [n for n in CHECKED if n != "exact" and n in ran], save_particles=False
        )
        if s.target == suite.targets[0] and s.rep == suite.seeds[0]
    ]
    if not specs or not committed:
        pytest.skip(f"{folder.name}: no cell to re-run")
    fix = f"refresh it: {original_command(folder) or 'python -m benchmarks run --suite ...'}"
    compared = 0
    for spec in specs:
        # the runner's thread rule (one torch and BLAS thread a unit): a reduction over two
        # threads differs in the last bits
        for row in with_threads(execute_unit, spec, threads=1).rows:
            key = (row["config_key"], row["init"], row["metric"])
            if key not in committed:
                continue
            old = committed[key]
            compared += 1
            # a row scored later from the saved float32 particles (``--resume`` after a metric
            # was added, metric_info "rescored_from") differs from this float64 run by the
            # particles' rounding (6e-8 relative): a nearest-neighbour distance of 0.05 at a
            # radius of 1 moves ~1e-6 relative, a z of the copying test ~3e-5; 1e-3 allows that
            rescored = "rescored_from" in str(old.get("metric_info", ""))
            close = (
                rescored
                and isinstance(row["value"], float)
                and isinstance(old["value"], float)
                and math.isclose(row["value"], old["value"], rel_tol=0.0, abs_tol=1e-3)
            )
            same = row["status"] == old["status"] and (
                close
                or row["value"] == old["value"]
                or (row["value"] is None and old["value"] is None)
                or (
                    isinstance(row["value"], float)
                    and isinstance(old["value"], float)
                    and math.isnan(row["value"])
                    and math.isnan(old["value"])
                )
            )
            assert same, (
                f"results/{folder.relative_to(RESULTS)} is stale at HEAD: {key} was "
                f"{old['status']} {old['value']!r}, is now {row['status']} {row['value']!r}; "
                f"{fix}"
            )
    assert compared > 0, f"{folder.name}: no re-run row matched a committed row; {fix}"


@pytest.mark.parametrize("folder", _suite_folders(), ids=lambda p: str(p.relative_to(RESULTS)))
def test_committed_leaderboards_are_what_their_rows_give_at_head(
    folder: Path, tmp_path: Path
) -> None:
    """A folder's leaderboard.md (above its environment section) and leaderboard.csv are a
    pure function of the files beside them (rows, suite.json, run.json, tuned.json): rebuilt
    by this commit's code in a copy, they must read the same. A changed table or caption, or
    a tuned.json continued while its rows needed no run (``run --resume``: nothing to run),
    leaves them stale; ``python -m benchmarks leaderboard --suite S --out results`` rewrites
    them."""
    import shutil

    from benchmarks.verdict.leaderboard import write_leaderboard

    copy = tmp_path / folder.name
    copy.mkdir()
    for path in folder.iterdir():
        if path.is_file() and path.suffix in (".json", ".jsonl"):
            shutil.copy(path, copy / path.name)
    suite = json.loads((folder / "suite.json").read_text(encoding="utf-8"))["name"]
    write_leaderboard(load_rows(copy / ROWS_FILE).rows, copy, suite, None)
    fix = f"rewrite it: python -m benchmarks leaderboard --suite {suite} --out {folder.parent}"
    for name in ("leaderboard.md", "leaderboard.csv"):
        committed = (folder / name).read_text(encoding="utf-8").split("\n## Environment")[0]
        rebuilt = (copy / name).read_text(encoding="utf-8").split("\n## Environment")[0]
        assert rebuilt == committed, f"results/{folder.relative_to(RESULTS)}/{name} is stale; {fix}"


def test_every_committed_html_page_renders_its_markdown_at_head() -> None:
    """``python -m benchmarks report`` renders every markdown file under results/ to an HTML
    page beside it; a markdown file refreshed without the report leaves its page stale."""
    from benchmarks.presentation.report import _title, markdown_to_html

    stale = [
        str(md.relative_to(REPO_ROOT))
        for md in sorted(RESULTS.rglob("*.md"))
        if not md.with_suffix(".html").is_file()
        or md.with_suffix(".html").read_text(encoding="utf-8")
        != markdown_to_html(md.read_text(encoding="utf-8"), _title(md))
    ]
    assert not stale, f"stale or missing HTML pages: {stale}; python -m benchmarks report"
