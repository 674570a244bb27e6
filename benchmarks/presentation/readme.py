"""Copy committed results into README.md between markers, so no number is typed by hand.

    python -m benchmarks.presentation.readme          # rewrite the marked sections of README.md

Two kinds of section:

* ``<!-- leaderboard:SUITE -->`` ... ``<!-- /leaderboard:SUITE -->`` receives the main table
  of ``results/SUITE/leaderboard.md`` with its "Produced by" line and its caption (metric,
  direction, what ± means, particle count, seeds);
* ``<!-- table:results/PATH.md -->`` ... ``<!-- /table:results/PATH.md -->`` receives the
  "Produced by" line and the first table of that results file (e.g. the DMPS claim);
* ``<!-- suite-times -->`` ... ``<!-- /suite-times -->`` receives, for every suite folder
  under ``results/``, its command and measured wall times: the whole command from the
  suite's ``run.json`` (written by every run), the fit + sampling seconds summed over its
  rows, and the serial / ``--jobs 2`` times of ``results/harness/parallel_timing.md``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from benchmarks.execution.environment import REPO_ROOT
from benchmarks.execution.provenance import original_command, read_run
from benchmarks.execution.store import ROWS_FILE, load_rows
from benchmarks.presentation.tables import markdown_table

MARK = re.compile(r"<!-- leaderboard:(\w+) -->.*?<!-- /leaderboard:\1 -->", re.S)
TABLE = re.compile(r"<!-- table:([\w./-]+) -->.*?<!-- /table:\1 -->", re.S)
TIMES = re.compile(r"<!-- suite-times -->.*?<!-- /suite-times -->", re.S)
PARALLEL_TIMING = Path("harness") / "parallel_timing.md"


def main_table(leaderboard_md: str) -> str:
    """The 'Produced by' line, the caption (the paragraph before the first table) and the
    first markdown table of a leaderboard file."""
    lines = leaderboard_md.splitlines()
    produced_at = next((i for i, ln in enumerate(lines) if ln.startswith("Produced by")), -1)
    produced = lines[produced_at] if produced_at >= 0 else ""
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| sampler"))
    paragraphs: list[list[str]] = [[]]
    for ln in lines[produced_at + 1 : start]:
        if not ln.strip():
            if paragraphs[-1]:
                paragraphs.append([])
        elif not ln.startswith("#"):
            paragraphs[-1].append(ln.strip())
    caption = [" ".join(p) for p in paragraphs if p]
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n\n".join([produced, *caption, "\n".join(lines[start:end])])


def parallel_times(results: Path) -> dict[str, tuple[str, str]]:
    """suite -> (serial s, --jobs 2 s) from the parallel-timing study ({} if absent)."""
    path = results / PARALLEL_TIMING
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 4 and re.fullmatch(r"[\d.]+", cells[2]):
            out[cells[0]] = (cells[2], cells[3])
    return out


def _fit_sample_seconds(suite_dir: Path) -> float:
    """Fit + sampling seconds summed over the runs of a suite (one row per run and metric:
    each run counted once)."""
    seen: dict[str, float] = {}
    for r in load_rows(suite_dir / ROWS_FILE, required=("config_key",)).rows:
        seen[r.get("config_key", "")] = float(r.get("fit_seconds") or 0.0) + float(
            r.get("sample_seconds") or 0.0
        )
    return sum(seen.values())


def suite_times(results: Path) -> str:
    """The measured-times table of every suite folder under ``results``."""
    parallel = parallel_times(results)
    rows = []
    for suite_dir in sorted(p.parent for p in results.glob(f"*/{ROWS_FILE}")):
        run = read_run(suite_dir)
        serial, jobs2 = parallel.get(suite_dir.name, ("-", "-"))
        rows.append(
            {
                "suite": suite_dir.name,
                "command": f"`{original_command(suite_dir) or '-'}`",
                "wall s (run.json)": f"{run['wall_seconds']:.0f}" if run else "not recorded",
                "continuations": len(run.get("refreshed", [])) if run else "-",
                "fit + sampling s (rows)": f"{_fit_sample_seconds(suite_dir):.0f}",
                "serial s / --jobs 2 s": f"{serial} / {jobs2}",
            }
        )
    if not rows:
        return "_no suite results_"
    note = (
        "Measured on the 2-core machine that produced `results/` (shared with other work): "
        "`wall s` is the suite's `run.json` time: its first command plus the `--resume` / "
        "`--retry-failed` continuations that added rows to it (listed there under "
        "`refreshed` and counted in `continuations`, `--rerun` refreshes included, whose "
        "time is not added); `fit + sampling s` sums "
        "the runs' recorded times (metrics, imports and data preparation excluded); the "
        "last column is `results/harness/parallel_timing.md` (whole command, serial and "
        "with `--jobs 2`)."
    )
    table = markdown_table(pd.DataFrame(rows).set_index("suite"), index="suite")
    return note + "\n\n" + table.rstrip()


def update(readme: Path, results: Path) -> list[str]:
    """Fill every marked section of ``readme`` from ``results``; returns what was filled."""
    text = readme.read_text(encoding="utf-8")
    done: list[str] = []

    def fill(m: re.Match) -> str:
        suite = m.group(1)
        lb = results / suite / "leaderboard.md"
        if not lb.exists():
            return m.group(0)
        done.append(suite)
        body = main_table(lb.read_text(encoding="utf-8"))
        return f"<!-- leaderboard:{suite} -->\n{body}\n<!-- /leaderboard:{suite} -->"

    def times(m: re.Match) -> str:
        done.append("suite-times")
        return f"<!-- suite-times -->\n{suite_times(results)}\n<!-- /suite-times -->"

    def table(m: re.Match) -> str:
        rel = m.group(1)
        path = results.parent / rel
        if not path.exists():
            return m.group(0)
        done.append(rel)
        lines = path.read_text(encoding="utf-8").splitlines()
        produced = next((ln for ln in lines if ln.startswith("Produced by")), "")
        start = next((i for i, ln in enumerate(lines) if ln.startswith("|")), len(lines))
        end = start
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        body = "\n\n".join([produced, "\n".join(lines[start:end])])
        return f"<!-- table:{rel} -->\n{body}\n<!-- /table:{rel} -->"

    text = TIMES.sub(times, TABLE.sub(table, MARK.sub(fill, text)))
    readme.write_text(text, encoding="utf-8")
    return done


def main(argv: list[str] | None = None) -> int:
    """Fill README.md from results/ (``--help`` answers without touching either)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.presentation.readme",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    filled = update(REPO_ROOT / "README.md", REPO_ROOT / "results")
    print(f"README.md: filled {', '.join(filled) or 'nothing'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
