"""The committed suite results are current at HEAD: for every committed suite folder, one
cheap cell (the first target, the first seed, the ``exact`` row and DMPS, the method whose
numbers change most with the code) is re-run with the suite recorded beside the rows
(``suite.json``, tuned settings included) by ``python -m benchmarks verify``'s code and
compared bit for bit with the committed rows and particles. ``python -m benchmarks verify
--all --seeds 0`` does the same for every sampler (minutes).
A failure names the suite and the command that refreshes it. Folders of the named suites
(``benchmarks.suites.SUITES``) are checked; study runs with their own suite files
(``results/dmps/...``, ``results/edmd/...``) are refreshed through
``python -m benchmarks.studies`` instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.execution.environment import REPO_ROOT
from benchmarks.execution.provenance import original_command
from benchmarks.execution.store import ROWS_FILE, load_rows
from benchmarks.execution.verify import suite_folders, suite_from_record, verify_folder
from benchmarks.presentation.verification import difference_lines

RESULTS = REPO_ROOT / "results"
#: the samplers re-run per suite (where the suite ran them) beside the exact row (data,
#: splits, metrics): DMPS (the spectral code, the transport, the step rule)
CHECKED = ("dmps",)


@pytest.fixture
def restore_threads():
    """A run pins this process to one thread; give the other tests theirs back."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "folder", suite_folders(RESULTS), ids=lambda p: str(p.relative_to(RESULTS))
)
def test_committed_rows_are_reproduced_at_head(
    folder: Path, tmp_path: Path, restore_threads: None
) -> None:
    """``python -m benchmarks verify`` on one cheap cell: every field of every row but wall
    times and the environment, and the saved particles, bit for bit (a row rescored from
    float32 particles within ``RESCORED_ATOL``)."""
    suite = suite_from_record(folder)
    ran = {r["sampler"] for r in load_rows(folder / ROWS_FILE).rows}
    found = verify_folder(
        folder,
        tmp_path / "verify",
        samplers=[n for n in CHECKED if n in ran] or ["exact"],
        targets=suite.targets[:1],
    )
    fix = f"refresh it: {original_command(folder) or 'python -m benchmarks run --suite ...'}"
    assert found.rows.compared > 0, f"{folder.name}: no re-run row matched a committed row; {fix}"
    assert found.reproduced, (
        f"results/{folder.relative_to(RESULTS)} is stale at HEAD:\n"
        + "\n".join(difference_lines(found))
        + f"\n{fix}"
    )


@pytest.mark.parametrize(
    "folder", suite_folders(RESULTS), ids=lambda p: str(p.relative_to(RESULTS))
)
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
