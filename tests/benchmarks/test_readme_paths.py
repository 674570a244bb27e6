"""Every repository path README.md names in backticks exists: ``results/...``,
``benchmarks/...`` and the other committed top-level folders. Braces ``{a,b}`` expand to
each alternative; a placeholder (``<suite>``) or glob must match at least one file."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: committed top-level folders a README path can start with (runs/ and data/ are ignored)
TOP = ("results", "benchmarks", "samplers", "datasets", "metrics", "common", "tests")


def expand_braces(text: str) -> list[str]:
    """``a/{b,c}/d`` -> ``['a/b/d', 'a/c/d']`` (nested and repeated braces too)."""
    m = re.search(r"\{([^{}]*)\}", text)
    if not m:
        return [text]
    return [
        out
        for alt in m.group(1).split(",")
        for out in expand_braces(text[: m.start()] + alt + text[m.end() :])
    ]


def readme_paths(text: str) -> list[str]:
    """Backticked spans without blanks that start with a :data:`TOP` folder and a slash."""
    spans = re.findall(r"`([^`\n]+)`", text)
    return [s.rstrip(".,;:") for s in spans if " " not in s and s.split("/")[0] in TOP and "/" in s]


def missing(path: str) -> bool:
    pattern = re.sub(r"<[^<>]+>", "*", path)
    if any(c in pattern for c in "*?["):
        return not any(REPO.glob(pattern.rstrip("/")))
    return not (REPO / pattern).exists()


def test_brace_expansion():
    assert expand_braces("r/{a,b}/x/{c,d}.md") == [
        "r/a/x/c.md",
        "r/a/x/d.md",
        "r/b/x/c.md",
        "r/b/x/d.md",
    ]
    assert expand_braces("plain/path") == ["plain/path"]


def test_missing_detects_absent_paths():
    assert not missing("results/<suite>/leaderboard.md")
    assert missing("results/<suite>/no_such_file.md")
    assert missing("results/no_such_folder/leaderboard.md")


def test_every_path_in_the_readme_exists():
    paths = readme_paths((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(paths) >= 20  # the README names many result files: the scan sees them
    bad = sorted({p for s in paths for p in expand_braces(s) if missing(p)})
    assert not bad, f"README.md names paths that do not exist: {bad}"
