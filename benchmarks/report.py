"""Static HTML report: ``python -m benchmarks report`` -> ``<out>/index.html``.

For every suite folder under ``<out>`` holding a ``runs.jsonl``: rebuild the figures
(``benchmarks.plots``), render ``leaderboard.md`` to ``leaderboard.html`` and list, in the
index, links to the leaderboard (HTML, markdown, CSV), the raw rows, the environment
(``environment.json``: versions, device, commit) and every figure (inline images). The
timing summary ``benchmarks/summary.md`` is linked when present. All links are relative,
so the folder can be copied or served as is. No external assets.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from benchmarks.leaderboard import write_leaderboard
from benchmarks.store import CURVES_FILE, ROWS_FILE, load_curves, load_rows

INDEX = "index.html"
_STYLE = """<style>
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f3f3f3} code{background:#f3f3f3;padding:0 3px}
img{max-width:100%;border:1px solid #eee;margin:4px 0}
</style>"""


def _inline(text: str) -> str:
    """Escape, then render `code` and **bold**."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def markdown_to_html(md: str, title: str) -> str:
    """The subset of markdown the leaderboards and timing summary use: headings, pipe
    tables, ``- `` lists, paragraphs, inline code."""
    body: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line:
            i += 1
            continue
        if m := re.match(r"^(#{1,6})\s+(.*)$", line):
            level = len(m.group(1))
            body.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                    rows.append(cells)
                i += 1
            head, *rest = rows
            body.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>")
            for r in rest:
                body.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>")
            body.append("</table>")
        elif line.startswith("- "):
            body.append("<ul>")
            while i < len(lines) and lines[i].startswith("- "):
                body.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            body.append("</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"^(#|\||- )", lines[i]):
                para.append(lines[i].strip())
                i += 1
            body.append(f"<p>{_inline(' '.join(para))}</p>")
    return _page(title, "\n".join(body))


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>{_STYLE}</head>\n<body>\n{body}\n</body></html>\n"
    )


def suite_dirs(root: Path) -> list[Path]:
    """Sub-folders of ``root`` holding a rows file, sorted by name."""
    return sorted(p for p in root.iterdir() if (p / ROWS_FILE).is_file()) if root.is_dir() else []


def _link(href: str, text: str) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'


def _suite_section(root: Path, suite_dir: Path, figures: bool) -> str:
    from benchmarks.plots import FIG_DIR, suite_figures

    name = suite_dir.name
    rows = load_rows(suite_dir / ROWS_FILE).rows
    env_path = suite_dir / "environment.json"
    env = json.loads(env_path.read_text(encoding="utf-8")) if env_path.exists() else {}
    md_path = suite_dir / "leaderboard.md"
    if not md_path.exists():
        write_leaderboard(rows, suite_dir, name, None, env or None)
    (suite_dir / "leaderboard.html").write_text(
        markdown_to_html(md_path.read_text(encoding="utf-8"), f"Leaderboard: {name}"),
        encoding="utf-8",
    )
    if figures:
        suite_figures(suite_dir, rows, load_curves(suite_dir / CURVES_FILE))
    rel = suite_dir.relative_to(root).as_posix()
    links = [_link(f"{rel}/leaderboard.html", "leaderboard")]
    for fname, text in (
        ("leaderboard.md", "markdown"),
        ("leaderboard.csv", "CSV summary"),
        (ROWS_FILE, "raw rows (JSON lines)"),
        (CURVES_FILE, "curves (JSON lines)"),
        ("environment.json", "environment"),
    ):
        if (suite_dir / fname).exists():
            links.append(_link(f"{rel}/{fname}", text))
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r.get("status", "?")] = statuses.get(r.get("status", "?"), 0) + 1
    parts = [
        f"<h2>Suite <code>{html.escape(name)}</code></h2>",
        "<p>" + " · ".join(links) + "</p>",
        f"<p>{len(rows)} rows; statuses: "
        + ", ".join(f"{html.escape(k)} {v}" for k, v in sorted(statuses.items()))
        + "</p>",
    ]
    if env:
        keys = ("commit", "device", "torch", "pot", "numpy", "python", "machine", "blas")
        parts.append(
            "<table>"
            + "".join(
                f"<tr><th>{k}</th><td>{html.escape(str(env[k]))}</td></tr>"
                for k in keys
                if k in env
            )
            + "</table>"
        )
    for png in sorted((suite_dir / FIG_DIR).glob("*.png")):
        src = f"{rel}/{FIG_DIR}/{png.name}"
        parts.append(f'<p>{_link(src, png.stem)}<br><img src="{html.escape(src)}" alt=""></p>')
    return "\n".join(parts)


def write_report(root: Path, *, figures: bool = True) -> Path:
    """Build figures and ``root/index.html`` for every suite under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    sections = [_suite_section(root, d, figures) for d in suite_dirs(root)]
    timing = root / "benchmarks" / "summary.md"
    head = [
        "<h1>particle-bench results</h1>",
        "<p>Produced by: <code>python -m benchmarks report</code>. One section per suite: "
        "leaderboard, figures and the environment (versions, device, commit) it ran in.</p>",
    ]
    if timing.exists():
        (timing.with_suffix(".html")).write_text(
            markdown_to_html(timing.read_text(encoding="utf-8"), "Timing suite"),
            encoding="utf-8",
        )
        head.append(
            "<p>Timing suite (pytest-benchmark): "
            + _link("benchmarks/summary.html", "summary")
            + " · "
            + _link("benchmarks/summary.md", "markdown")
            + "</p>"
        )
    if not sections:
        sections = ["<p>No suite results yet: run <code>python -m benchmarks run</code>.</p>"]
    path = root / INDEX
    path.write_text(_page("particle-bench results", "\n".join(head + sections)), encoding="utf-8")
    return path
