"""Static HTML report: ``python -m benchmarks report`` -> ``<out>/index.html``.

One page that reaches every result file under ``<out>``: for every suite folder (one with a
``runs.jsonl``; also those under ``untuned/``, the suites at their defaults) it redraws the
figures whose inputs changed (``benchmarks.presentation.plots``, through
``figure_cache``: a second report on unchanged results draws nothing) and lists the
leaderboard, raw rows, environment, provenance (``run.json``) and figures (inline), the
headline suites first; every markdown file
(leaderboards, decoded-image pages, study results) is rendered to HTML beside it and linked;
the PNGs of studies are shown inline; and an index of every file closes the page. All links
are relative, so the folder can be copied or served as is. No external assets. A line on
stderr says what is written when it starts and how long it took when it ends.
"""

from __future__ import annotations

import html
import re
import sys
import time
from pathlib import Path

import pandas as pd

from benchmarks.execution.environment import ENVIRONMENT_FILE, read_environment
from benchmarks.execution.locking import HOLDER_FILE, LOCK_FILE
from benchmarks.execution.provenance import RUN_FILE
from benchmarks.execution.store import (
    CURVES_FILE,
    ROWS_FILE,
    atomic_write_text,
    load_curves,
    load_rows,
)
from benchmarks.options import UNTUNED_DIR
from benchmarks.presentation.figure_cache import DRAWN_FILE
from benchmarks.verdict.leaderboard import run_environment, write_leaderboard

INDEX = "index.html"
_STYLE = """<style>
body{font-family:system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f3f3f3} code{background:#f3f3f3;padding:0 3px}
img{max-width:100%;border:1px solid #eee;margin:4px 0}
td img{max-width:320px} details{margin:0.3em 0} summary{cursor:pointer}
</style>"""


def _inline(text: str) -> str:
    """Escape, then render `code`, **bold**, ![images](src) and [links](href)."""
    out = html.escape(text, quote=True)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", r'<img src="\2" alt="\1">', out)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)


def markdown_to_html(md: str, title: str) -> str:
    """The subset of markdown the result files use: headings, pipe tables, ``- `` lists,
    paragraphs, inline code, bold, images and links."""
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


def _suite_order(folders: list[Path]) -> list[Path]:
    """Folders of named suites in the registry's order (the headline suites first, as
    ``python -m benchmarks list suites`` shows them), then the others by name."""
    from benchmarks.suites import SUITES

    rank = {name: i for i, name in enumerate(SUITES)}
    return sorted(folders, key=lambda p: (rank.get(p.name, len(rank)), p.name))


def suite_dirs(root: Path) -> list[Path]:
    """Sub-folders of ``root`` holding a rows file (registry order, see
    :func:`_suite_order`), then those of ``root/untuned`` (the same suites at their default
    settings)."""
    if not root.is_dir():
        return []
    tuned = _suite_order([p.parent for p in root.glob(f"*/{ROWS_FILE}")])
    return tuned + _suite_order([p.parent for p in root.glob(f"{UNTUNED_DIR}/*/{ROWS_FILE}")])


def study_run_dirs(root: Path, suites: list[Path]) -> list[Path]:
    """Folders below ``root`` with a rows file that are not suites: harness runs made by a
    study (``results/dmps/sparse_vs_dense/...``)."""
    return sorted({p.parent for p in root.rglob(ROWS_FILE)} - set(suites))


def _suite_label(root: Path, suite_dir: Path) -> str:
    """``manifolds`` or ``untuned/manifolds``: the folder relative to the results root."""
    return suite_dir.relative_to(root).as_posix()


def _anchor(label: str) -> str:
    return "suite-" + re.sub(r"[^A-Za-z0-9_-]+", "-", label)


def _link(href: str, text: str) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'


def _img(src: str, caption: str) -> str:
    """A linked caption and the image itself."""
    tag = f'<img src="{html.escape(src)}" alt="{html.escape(caption)}">'
    return f"<p>{_link(src, caption)}<br>{tag}</p>"


def _title(md_path: Path) -> str:
    """The first heading of a markdown file (its file name when it has none)."""
    for line in md_path.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^#+\s+(.*)$", line):
            return m.group(1).strip()
    return md_path.stem


def render_markdown(root: Path) -> list[Path]:
    """Render every ``*.md`` under ``root`` to an ``.html`` page beside it; returns the
    markdown files rendered."""
    done = []
    for md in sorted(root.rglob("*.md")):
        page = markdown_to_html(md.read_text(encoding="utf-8"), _title(md))
        md.with_suffix(".html").write_text(page, encoding="utf-8")
        done.append(md)
    return done


def _suite_section(root: Path, suite_dir: Path, figures: bool, drawn: list[Path]) -> str:
    from benchmarks.presentation.figure_cache import draw_suite_figures
    from benchmarks.presentation.plots import FIG_DIR

    name = suite_dir.name
    label = _suite_label(root, suite_dir)
    rows = load_rows(suite_dir / ROWS_FILE).rows
    env = read_environment(suite_dir)
    if not (suite_dir / "leaderboard.md").exists():
        write_leaderboard(rows, suite_dir, name, None, env)
    if figures:  # redrawn where their inputs changed (figure_cache)
        if draw_suite_figures(suite_dir, rows, load_curves(suite_dir / CURVES_FILE))[1]:
            drawn.append(suite_dir)
    rel = suite_dir.relative_to(root).as_posix()
    links = [_link(f"{rel}/leaderboard.html", "leaderboard")]
    for fname, text in (
        ("leaderboard.md", "markdown"),
        ("leaderboard.csv", "CSV summary"),
        (ROWS_FILE, "raw rows (JSON lines)"),
        (CURVES_FILE, "curves (JSON lines)"),
        (ENVIRONMENT_FILE, "environment"),
        (RUN_FILE, "command and wall time"),
        ("images.html", "decoded images"),
    ):
        # an HTML page is written from its markdown later in this same report, so link it
        # when either exists (the first report of a fresh images.md links it too)
        source = suite_dir / (fname[: -len(".html")] + ".md" if fname.endswith(".html") else fname)
        if (suite_dir / fname).exists() or source.exists():
            links.append(_link(f"{rel}/{fname}", text))
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r.get("status", "?")] = statuses.get(r.get("status", "?"), 0) + 1
    parts = [
        f'<h2 id="{_anchor(label)}">Suite <code>{html.escape(label)}</code></h2>',
        "<p>" + " · ".join(links) + "</p>",
        f"<p>{len(rows)} rows; statuses: "
        + ", ".join(f"{html.escape(k)} {v}" for k, v in sorted(statuses.items()))
        + "</p>",
    ]
    if env:
        shown = run_environment(env, pd.DataFrame(rows))
        parts.append(
            "<table>"
            + "".join(
                f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                for k, v in shown.items()
            )
            + "</table>"
        )
    for png in sorted((suite_dir / FIG_DIR).glob("*.png")) + sorted(suite_dir.glob("*.png")):
        parts.append(_img(png.relative_to(root).as_posix(), png.stem))
    return "\n".join(parts)


def _study_section(root: Path, md_files: list[Path], suites: list[Path]) -> str:
    """Every markdown result outside the suites' own tables, with the PNGs of its folder
    (those not shown in a suite section) inline."""
    from benchmarks.presentation.plots import FIG_DIR

    parts = ['<h2 id="studies">Studies and other results</h2>']
    shown: set[Path] = set()
    suite_own = {d / n for d in suites for n in ("leaderboard.md", "images.md")}
    for md in [m for m in md_files if m not in suite_own]:
        rel = md.relative_to(root).as_posix()
        parts.append(
            f"<h3>{html.escape(_title(md))}</h3><p>"
            + _link(rel[:-3] + ".html", "page")
            + " · "
            + _link(rel, "markdown")
            + f" · <code>{html.escape(rel)}</code></p>"
        )
        if md.parent in suites:
            continue  # the suite section shows that folder's figures
        for png in sorted(md.parent.glob("*.png")) + sorted(md.parent.glob(f"{FIG_DIR}/*.png")):
            if png not in shown:
                shown.add(png)
                parts.append(_img(png.relative_to(root).as_posix(), png.stem))
    return "\n".join(parts)


#: files of a run in progress (the folder's lock, unfinished row files) and the figures' cache
#: record: never results, never committed (.gitignore), so never linked
TRANSIENT = (LOCK_FILE, HOLDER_FILE, "*.partial", DRAWN_FILE)


def _listed(path: Path) -> bool:
    return path.is_file() and path.name != INDEX and not any(path.match(t) for t in TRANSIENT)


def _file_index(root: Path) -> str:
    """Every file under ``root`` (but the index and :data:`TRANSIENT` files), grouped by
    top-level folder."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(p for p in root.rglob("*") if _listed(p)):
        rel = path.relative_to(root)
        groups.setdefault(rel.parts[0] if len(rel.parts) > 1 else ".", []).append(rel)
    parts = ['<h2 id="files">Every file</h2>']
    for group, files in groups.items():
        items = "".join(f"<li>{_link(f.as_posix(), f.as_posix())}</li>" for f in files)
        label = f"{html.escape(group)}/ ({len(files)} files)"
        parts.append(f"<details><summary>{label}</summary><ul>{items}</ul></details>")
    return "\n".join(parts)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def write_report(root: Path, *, figures: bool = True) -> Path:
    """Build figures, HTML pages of every markdown file and ``root/index.html`` (see the
    module docstring); logs what it writes at the start and how long it took at the end."""
    t0 = time.perf_counter()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    suites = suite_dirs(root)
    path = root / INDEX
    log(
        f"report: writing {path} ({len(suites)} suite{'' if len(suites) == 1 else 's'}"
        + (", redrawing the figures whose inputs changed" if figures else "")
        + ", HTML pages of every markdown file)"
    )
    drawn: list[Path] = []
    sections = [_suite_section(root, d, figures, drawn) for d in suites]
    if figures:  # harness runs inside study folders that keep figures (and may link them)
        from benchmarks.presentation.figure_cache import draw_suite_figures
        from benchmarks.presentation.plots import FIG_DIR

        for d in study_run_dirs(root, suites):
            if (d / FIG_DIR).is_dir():  # no new, uncommitted figure folders in a study
                rows = load_rows(d / ROWS_FILE).rows
                if draw_suite_figures(d, rows, load_curves(d / CURVES_FILE))[1]:
                    drawn.append(d)
    md_files = render_markdown(root)
    head = [
        "<h1>particle-bench results</h1>",
        "<p>Produced by: <code>python -m benchmarks report</code>. One section per suite "
        "(leaderboard, figures, the environment and command it ran with), then every study "
        "result, then an index of every file.</p>",
        "<p>"
        + " · ".join(
            [_link(f"#{_anchor(_suite_label(root, d))}", _suite_label(root, d)) for d in suites]
            + [_link("#studies", "studies"), _link("#files", "every file")]
        )
        + "</p>",
    ]
    if not sections:
        sections = ["<p>No suite results yet: run <code>python -m benchmarks run</code>.</p>"]
    sections += [_study_section(root, md_files, suites), _file_index(root)]
    atomic_write_text(path, _page("particle-bench results", "\n".join(head + sections)))
    redrawn = f"figures of {len(drawn)} folder(s) redrawn, the others current; " if figures else ""
    seconds = time.perf_counter() - t0
    log(f"report: wrote {path} and {len(md_files)} HTML pages ({redrawn}{seconds:.1f} s)")
    return path
