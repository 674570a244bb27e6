"""What ``python -m benchmarks verify`` prints and writes: one line per folder on stdout,
and (``--report``) a markdown file with the command, the commit, the machine's load and a
row per folder, then every difference found."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from benchmarks.execution.verify import FolderVerification, row_label

#: differences listed per folder and kind before "... and N more"
SHOWN = 10


def _rel(folder: Path) -> str:
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


def _worst(v: FolderVerification) -> str:
    finite = [x for x in v.rows.worst.values() if not math.isinf(x)]
    return f"{max(finite):.1e}" if finite else "-"


def summary_line(v: FolderVerification) -> str:
    """One line: the verdict and the counts."""
    r, p = v.rows, v.particles
    if v.data_missing:
        return f"{_rel(v.folder)}: NOT CHECKED: its data are not on disk (below); {v.seconds:.0f} s"
    verdict = "reproduced" if v.reproduced else "DIFFERS"
    parts = [f"{r.identical} identical"]
    if r.close:
        parts.append(f"{len(r.close)} close")
    for name, items in (("different", r.different), ("missing", r.missing), ("extra", r.extra)):
        if items:
            parts.append(f"{len(items)} {name}")
    files = f"particles {p.identical}/{p.identical + len(p.different) + len(p.missing)} identical"
    seeds = ",".join(str(s) for s in v.seeds)
    return (
        f"{_rel(v.folder)} (seeds {seeds}): {verdict}: {r.compared} rows compared, "
        f"{', '.join(parts)}; {files}; {v.seconds:.0f} s"
    )


def difference_lines(v: FolderVerification, shown: int = SHOWN) -> list[str]:
    """Each difference of one folder (at most ``shown`` per kind), then the environment;
    the missing-data report instead where the re-run could not read its data."""
    if v.data_missing:
        return [f"  {line}" for line in v.data_missing]
    out: list[str] = []
    kinds = (
        ("different", [f"{row_label(k)}: {what}" for k, what in v.rows.different]),
        ("missing from the re-run", [row_label(k) for k in v.rows.missing]),
        ("made by the re-run only", [row_label(k) for k in v.rows.extra]),
        ("close", [f"{row_label(k)}: relative {rel:.1e}" for k, rel in v.rows.close]),
        ("particles differing", [f"{f}: max |diff| {d:.2e}" for f, d in v.particles.different]),
        ("particles missing", list(v.particles.missing)),
    )
    for name, items in kinds:
        for line in items[:shown]:
            out.append(f"  {name}: {line}")
        if len(items) > shown:
            out.append(f"  {name}: ... and {len(items) - shown} more")
    for k, (was, now) in sorted(v.rows.environment.items()):
        out.append(f"  environment: {k} {was} (committed) -> {now} (re-run)")
    return out


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover (not on every platform)
        return "unknown"


def markdown_report(
    results: Sequence[FolderVerification],
    produced_by: str,
    *,
    load_before: str,
    rtol: float,
    atol: float,
) -> str:
    """The ``--report`` file: provenance, the rule, a table of folders, the differences."""
    total = sum(v.rows.compared for v in results)
    same = sum(v.rows.identical for v in results)
    lines = [
        "# Committed suite results, run again",
        "",
        produced_by,
        "",
        f"Load average (1, 5, 15 min) before: {load_before}; after: {load_average()}.",
        "",
        "Each folder's suite (`suite.json`: targets, budgets, metrics, tuned settings) is run "
        "again for the seeds shown into a scratch folder, and every row is paired with the "
        "committed row of the same (configuration, metric). *identical*: every field but wall "
        "times and the environment equal, the value bit for bit; *close*: only the value "
        f"differs, within atol {atol:g} + rtol {rtol:g} x |committed|; *different*, *missing* "
        "(committed, not made again) and *extra* (made again, not committed) fail. Saved "
        "final particles are compared array by array.",
        "",
        f"**{same:,} of {total:,} rows identical** over {len(results)} folders; "
        f"{sum(v.reproduced for v in results)} of {len(results)} folders reproduced.",
        "",
        "| folder | seeds | committed at | reproduced | rows | identical | close | different "
        "| missing | extra | particles identical | largest relative value gap | re-run s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in results:
        r, p = v.rows, v.particles
        n_files = p.identical + len(p.different) + len(p.missing)
        verdict = "not checked: data missing" if v.data_missing else "yes" if v.reproduced else "NO"
        lines.append(
            f"| {_rel(v.folder)} | {','.join(map(str, v.seeds))} | {', '.join(v.commits) or '-'} "
            f"| {verdict} "
            f"| {r.compared} | {r.identical} | {len(r.close)} | {len(r.different)} "
            f"| {len(r.missing)} | {len(r.extra)} | {p.identical}/{n_files} | {_worst(v)} "
            f"| {v.seconds:.0f} |"
        )
    notes = [(v, difference_lines(v)) for v in results]
    if any(d for _, d in notes):
        lines += ["", "## Differences", ""]
        for v, diff in notes:
            if diff:
                lines += [f"{_rel(v.folder)}:", "", "```", *diff, "```", ""]
    return "\n".join(lines).rstrip() + "\n"
