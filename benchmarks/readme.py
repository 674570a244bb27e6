"""Copy committed leaderboards into README.md between markers, so no number is typed by hand.

    python -m benchmarks.readme          # rewrite the marked sections of README.md

A section looks like ``<!-- leaderboard:manifolds -->`` ... ``<!-- /leaderboard:manifolds -->``
and receives the main table of ``results/<suite>/leaderboard.md`` with its command line.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from benchmarks.environment import REPO_ROOT

MARK = re.compile(r"<!-- leaderboard:(\w+) -->.*?<!-- /leaderboard:\1 -->", re.S)


def main_table(leaderboard_md: str) -> str:
    """The 'Produced by' line and the first markdown table of a leaderboard file."""
    lines = leaderboard_md.splitlines()
    produced = next((ln for ln in lines if ln.startswith("Produced by")), "")
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| sampler"))
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join([produced, "", *lines[start:end]])


def update(readme: Path, results: Path) -> list[str]:
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

    readme.write_text(MARK.sub(fill, text), encoding="utf-8")
    return done


if __name__ == "__main__":
    filled = update(REPO_ROOT / "README.md", REPO_ROOT / "results")
    print(f"README.md: filled {', '.join(filled) or 'nothing'}", file=sys.stderr)
