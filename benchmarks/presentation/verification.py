"""What ``python -m benchmarks verify`` prints and writes: one line per folder on stdout,
and (``--report``) a markdown file with the command, the commit, the machine's load and a
row per folder, then every difference found."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from benchmarks.execution.provenance import CODE_PATH_VARIABLES
from benchmarks.execution.verify import FolderVerification, row_label

#: differences listed per folder and kind before "... and N more"
SHOWN = 10


def _rel(folder: Path) -> str:
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


def _move(x: float | None) -> str:
    return "-" if x is None else "0" if x == 0 else f"{x:.2g}"


def sampler_moves(results: Sequence[FolderVerification]) -> list[str]:
    """Markdown: per sampler and folder, the largest move of a headline value in seed
    sd; nothing where no value moved."""
    moved = [v for v in results if any(x > 0 for x in v.noise.values())]
    if not moved:
        return []
    samplers = sorted({s for v in moved for (s, m) in v.noise if m == v.headline})
    lines = [
        "",
        "## Moves per sampler (headline metric, in seed sd)",
        "",
        "The largest |re-run - committed| headline value over a sampler's runs in a folder, "
        "divided by the seed-to-seed standard deviation of its configuration; 0: every "
        "value bit for bit.",
        "",
        "| sampler | " + " | ".join(_rel(v.folder) for v in moved) + " |",
        "|---|" + "---|" * len(moved),
    ]
    for s in samplers:
        cells = [_move(v.noise.get((s, v.headline))) for v in moved]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return lines


def _worst(v: FolderVerification) -> str:
    finite = [x for x in v.rows.worst.values() if not math.isinf(x)]
    return f"{max(finite):.1e}" if finite else "-"


def headline_noise(v: FolderVerification) -> float | None:
    """The largest move of a headline value in units of its seed spread (None: no pair)."""
    moves = [x for (_, metric), x in v.noise.items() if metric == v.headline]
    return max(moves) if moves else None


def verdict_text(v: FolderVerification) -> str:
    """'same (rows identical)', 'same (96 cells, 45 pairs)' or '2 of 96 cells, 1 of 45 pairs
    moved', then '; flags moved in 1 cell' where a flag count moved."""
    c = v.verdict
    if c is None:
        return "same (rows identical)"
    if not c.metric:
        return "-"
    if c.same:
        text = f"same ({c.cells} cells, {c.pairs} pairs)"
    else:
        text = (
            f"{len(c.changed)} of {c.cells} cells, {len(c.pairs_changed)} of {c.pairs} pairs moved"
        )
    n = len(c.flags_changed)
    return text + (f"; flags moved in {n} cell{'s' * (n != 1)}" if n else "")


def _p(x: float) -> str:
    return "p -" if math.isnan(x) else f"p {x:.2g}"


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
    files = f"particles {p.identical}/{p.compared} identical" + (
        f", {len(p.close)} close" if p.close else ""
    )
    seeds = ",".join(str(s) for s in v.seeds)
    noise = headline_noise(v)
    moved = f"; largest {v.headline} move {noise:.2g} seed sd" if noise else ""
    return (
        f"{_rel(v.folder)} (seeds {seeds}): {verdict}: {r.compared} rows compared, "
        f"{', '.join(parts)}; {files}; verdict {verdict_text(v)}{moved}; {v.seconds:.0f} s"
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
        ("particles close", [f"{f}: max |diff| {d:.2e}" for f, d in v.particles.close]),
        ("particles missing", list(v.particles.missing)),
    )
    for name, items in kinds:
        for line in items[:shown]:
            out.append(f"  {name}: {line}")
        if len(items) > shown:
            out.append(f"  {name}: ... and {len(items) - shown} more")
    c = v.verdict
    if c is not None:
        for sampler, column, was, now in c.changed:
            p_was, p_now = c.cell_p.get((sampler, column), (math.nan, math.nan))
            out.append(f"  verdict: {sampler} {column}: {was} ({_p(p_was)}) -> {now} ({_p(p_now)})")
        for a, b, was, now in c.pairs_changed:
            p_was, p_now = c.pair_p.get((a, b), (math.nan, math.nan))
            out.append(
                f"  paired call: {a} vs {b}: {was} (Holm {_p(p_was)}) -> {now} (Holm {_p(p_now)})"
            )
        for sampler, column, was, now in c.flags_changed:
            out.append(f"  flags: {sampler} {column}: [{was or 'none'}] -> [{now or 'none'}]")
        if c.order[0] != c.order[1]:
            out.append(
                f"  rank order: {', '.join(c.order[0])} -> {', '.join(c.order[1])} (largest "
                f"average-rank shift {c.rank_shift:.2f}; critical difference "
                f"{c.critical_difference:.2f})"
            )
    for k, (was, now) in sorted(v.rows.environment.items()):
        out.append(f"  environment: {k} {was} (committed) -> {now} (re-run)")
    return out


def code_path() -> str:
    """The CPU and the instruction sets the numerics ran with: the CPU model, torch's
    kernel capability and every code-path variable that is set."""
    import torch

    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if "model name" in ln), model)
    except OSError:  # pragma: no cover (not on every platform)
        pass
    chosen = [f"{k}={os.environ[k]}" for k in CODE_PATH_VARIABLES if os.environ.get(k)]
    return f"{model}; torch CPU kernels {torch.backends.cpu.get_cpu_capability()}; " + (
        ", ".join(chosen) if chosen else "no code-path variable set"
    )


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
        f"CPU code path: {code_path()}.",
        "",
        "Each folder's suite (`suite.json`: targets, budgets, metrics, tuned settings) is run "
        "again for the seeds shown into a scratch folder, and every row is paired with the "
        "committed row of the same (configuration, metric). *identical*: every field but wall "
        "times and the environment equal, the value bit for bit; *close*: only numbers "
        "differ (the value and those inside the info fields), each within atol "
        f"{atol:g} + rtol {rtol:g} x |committed|; *different*, *missing* (committed, not made "
        "again) and *extra* (made again, not committed) fail. Saved final particles are "
        "compared array by array (close: every element within the same tolerance). "
        "*verdict*: the headline metric's "
        "leaderboard read from the committed rows and again with the re-run rows in their "
        "place: every cell's mark against exact and every paired test's call (with their "
        "p-values where one moved; a call near the 0.05 level can flip as it can with "
        "another seed), and apart from them the flag counts such as 'copying 1/5' "
        "(`benchmarks.verdict.agreement`). *largest move*: the largest |re-run - "
        "committed| headline value of a run, in units of the standard deviation of its "
        "configuration's committed values over the seeds (the spread the intervals are "
        "built from).",
        "",
        f"**{same:,} of {total:,} rows identical** over {len(results)} folders; "
        f"{sum(v.reproduced for v in results)} of {len(results)} folders reproduced; the "
        f"verdict held in {sum(v.verdict_held for v in results)} of {len(results)}.",
        "",
        "| folder | seeds | committed at | reproduced | rows | identical | close | different "
        "| missing | extra | particles identical | largest relative value gap | verdict "
        "| largest move (seed sd) | re-run s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in results:
        r, p = v.rows, v.particles
        files = f"{p.identical}/{p.compared}" + (f" ({len(p.close)} close)" if p.close else "")
        verdict = "not checked: data missing" if v.data_missing else "yes" if v.reproduced else "NO"
        lines.append(
            f"| {_rel(v.folder)} | {','.join(map(str, v.seeds))} | {', '.join(v.commits) or '-'} "
            f"| {verdict} "
            f"| {r.compared} | {r.identical} | {len(r.close)} | {len(r.different)} "
            f"| {len(r.missing)} | {len(r.extra)} | {files} | {_worst(v)} "
            f"| {verdict_text(v)} | {_move(headline_noise(v))} | {v.seconds:.0f} |"
        )
    lines += sampler_moves(results)
    notes = [(v, difference_lines(v)) for v in results]
    if any(d for _, d in notes):
        lines += ["", "## Differences", ""]
        for v, diff in notes:
            if diff:
                lines += [f"{_rel(v.folder)}:", "", "```", *diff, "```", ""]
    return "\n".join(lines).rstrip() + "\n"
