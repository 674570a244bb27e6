"""``python -m benchmarks.presentation.readme`` copies the leaderboard excerpt with its caption
and the suites' measured wall times from files; nothing in those sections is typed."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.presentation.readme import main_table, suite_times, update

REPO = Path(__file__).resolve().parents[2]

BOARD = """# Leaderboard: suite `s`

Produced by: `python -m benchmarks run --suite s`

S_eps between particles and reference; mean ± sample standard deviation over seeds
(lower is better). Particles 300, seeds [0, 1, 2].

| sampler | t | wall s/run | avg rank |
|---|---|---|---|
| exact | 0.1 ± 0.01 | 0.00 | - |

## Secondary metric: other
"""


def _suite(results: Path, name: str, wall: float | None) -> None:
    d = results / name
    d.mkdir(parents=True)
    board = BOARD.replace("`s`", f"`{name}`").replace("--suite s", f"--suite {name}")
    (d / "leaderboard.md").write_text(board, encoding="utf-8")
    rows = [
        {"config_key": "a", "metric": "m1", "fit_seconds": 1.5, "sample_seconds": 2.0},
        {"config_key": "a", "metric": "m2", "fit_seconds": 1.5, "sample_seconds": 2.0},
        {"config_key": "b", "metric": "m1", "fit_seconds": None, "sample_seconds": 4.0},
    ]
    (d / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if wall is not None:
        run = {"command": f"python -m benchmarks run --suite {name}", "wall_seconds": wall}
        (d / "run.json").write_text(json.dumps(run))


def test_excerpt_keeps_the_caption():
    text = main_table(BOARD)
    assert text.startswith("Produced by: `python -m benchmarks run --suite s`")
    assert "mean ± sample standard deviation over seeds (lower is better)" in text
    assert "Particles 300, seeds [0, 1, 2]." in text
    assert "| exact |" in text and "Secondary" not in text


def test_suite_times_come_from_run_json_and_rows(tmp_path):
    _suite(tmp_path, "alpha", 123.4)
    _suite(tmp_path, "beta", None)
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "parallel_timing.md").write_text(
        "| suite | rows | serial s | --jobs 2 s |\n|---|---|---|---|\n| alpha | 3 | 10.5 | 6.1 |\n"
    )
    run = json.loads((tmp_path / "alpha" / "run.json").read_text())
    run["refreshed"] = [{"command": "python -m benchmarks run --suite alpha --resume"}] * 2
    (tmp_path / "alpha" / "run.json").write_text(json.dumps(run))
    table = suite_times(tmp_path)
    cmd = "`python -m benchmarks run --suite {}`"
    assert f"| alpha | {cmd.format('alpha')} | 123 | 2 | 8 | 10.5 / 6.1 |" in table
    assert f"| beta | {cmd.format('beta')} | not recorded | - | 8 | - / - |" in table


def test_update_fills_both_kinds_of_section(tmp_path):
    _suite(tmp_path, "alpha", 60.0)
    readme = tmp_path / "README.md"
    readme.write_text(
        "x\n<!-- leaderboard:alpha -->\nold\n<!-- /leaderboard:alpha -->\n"
        "<!-- suite-times -->\nold\n<!-- /suite-times -->\n"
    )
    assert update(readme, tmp_path) == ["alpha", "suite-times"]
    text = readme.read_text()
    assert "old" not in text and "mean ± sample standard deviation" in text
    assert "| alpha |" in text


def test_committed_readme_is_up_to_date(tmp_path):
    """Running the script on the committed README and results changes nothing."""
    copy = tmp_path / "README.md"
    copy.write_text((REPO / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    update(copy, REPO / "results")
    assert copy.read_text(encoding="utf-8") == (REPO / "README.md").read_text(encoding="utf-8")
