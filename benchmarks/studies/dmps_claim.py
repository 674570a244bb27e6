"""The DMPS paper's claim, answered from the committed leaderboard rows.

Claim (arXiv 2304.00200; ``shared/reference/dmps_paper_summary.txt``): DMPS achieves the
smallest regularised-OT error against SVGD, ULA and score-based generative models, on data
of moderate dimension, particularly on manifolds and bounded supports, with minimal tuning.

For every committed headline suite (both regimes) and every setting it was run with
(``defaults``: every sampler at its documented defaults, the "minimal tuning" reading;
``tuned``: every sampler tuned with the same budget on held-out repetitions), DMPS is
compared with each of the three on the suite's headline metric (S_eps): per column the
paired t call over seeds (W/T/L from DMPS's side), and over independent (target, seed) units
the Wilcoxon signed-rank test, Holm-corrected across the three comparisons
(``benchmarks.verdict.paired``). The answer per row: **holds** when DMPS is significantly
better than all three; **refuted** when any of them is significantly better; otherwise
**not shown** (no significant difference with these seeds). DMPS's own verdicts against
``exact`` are given beside it.

Command: ``python -m benchmarks.studies.dmps_claim`` (reads ``results/``; seconds); writes
``results/dmps/claim.md``. ``python -m benchmarks.presentation.readme`` copies its table into
the README.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from benchmarks.execution.environment import REPO_ROOT, environment
from benchmarks.execution.store import ROWS_FILE, load_rows
from benchmarks.presentation.tables import markdown_table
from benchmarks.verdict.leaderboard import (
    headline_of,
    metric_spec,
    metric_values,
    rows_frame,
    verdicts,
)
from benchmarks.verdict.paired import holm, pairwise_table

METHOD = "dmps"
COMPARATORS = ("svgd", "ula", "score_diffusion")
FAMILIES = ("manifolds", "bounded", "mixtures", "latents")
COMMAND = "python -m benchmarks.studies.dmps_claim"


def sources(results: Path) -> list[tuple[str, str, Path]]:
    """(suite, setting, folder) of every committed run of a headline suite: the suite's own
    folder (its rows say whether they ran tuned or at defaults) and ``untuned/<suite>``."""
    out = []
    for family in FAMILIES:
        for suite in (family, f"{family}_representation"):
            for folder in (results / suite, results / "untuned" / suite):
                if (folder / ROWS_FILE).exists():
                    out.append((suite, "", folder))
    return out


def answer_rows(folder: Path) -> list[dict[str, object]]:
    """One row per setting found in ``folder``'s rows (see the module docstring)."""
    rows = load_rows(folder / ROWS_FILE).rows
    df = rows_frame(rows)
    if df.empty or METHOD not in set(df["sampler"]):
        return []
    metric = headline_of(folder, rows)
    spec = metric_spec(metric)
    out = []
    setting = "tuned" if (df.get("tuning") == "tuned").any() else "defaults"
    v = metric_values(df, metric)
    v = v[v["sampler"].isin((METHOD, *COMPARATORS))]
    table = pairwise_table(v, spec.lower_is_better)
    mine = table[(table["a"] == METHOD) | (table["b"] == METHOD)].copy()
    if mine.empty:
        return []
    mine["p_holm3"] = holm(mine["p"].to_numpy())
    first = df.iloc[0]
    row: dict[str, object] = {
        "suite": folder.name,
        "regime": "generation"
        if int(first["n_particles"]) >= int(first["n_train"])
        else "representation",
        "N / m": f"{int(first['n_train'])} / {int(first['n_particles'])}",
        "settings": setting,
    }
    better = worse = 0
    for _, r in mine.iterrows():
        other = r["b"] if r["a"] == METHOD else r["a"]
        w, t, lo = (r["wins"], r["ties"], r["losses"])
        if r["b"] == METHOD:  # the table is from a's side
            w, lo = lo, w
        diff = r["median_scaled_diff"] * (1 if r["a"] == METHOD else -1)
        significant = r["p_holm3"] < 0.05
        better += significant and diff < 0
        worse += significant and diff > 0
        row[f"vs {other}: W/T/L, p (Holm)"] = f"{w}/{t}/{lo}, {r['p_holm3']:.3g}"
    verdict = verdicts(df, metric)
    if not verdict.empty and METHOD in verdict.index:
        counts = verdict.loc[METHOD].value_counts()
        row["dmps vs exact"] = ", ".join(f"{n} {k}" for k, n in counts.items())
    row["answer"] = "holds" if better == len(mine) else ("refuted" if worse else "not shown")
    out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default=str(REPO_ROOT / "results"))
    p.add_argument("--out", default=None, help="output file (default results/dmps/claim.md)")
    args = p.parse_args(argv)
    results = Path(args.results)
    rows = []
    for _suite, _setting, folder in sources(results):
        rows += answer_rows(folder)
    out = Path(args.out) if args.out else results / "dmps" / "claim.md"
    table = pd.DataFrame(rows)
    text = [
        "# The DMPS paper's claim, per suite and regime",
        "",
        f"Produced by: `{COMMAND}` at commit {environment('cpu')['commit']} from the "
        "committed rows under `results/` (each suite's `run.json` names the run's command "
        "and commit).",
        "",
        __doc__.split("\n\n", 1)[1].rsplit("\n\nCommand:", 1)[0],
        "",
        "W/T/L: columns where DMPS is better / tied / worse than the comparator (paired t "
        "over seeds, alpha = 0.05); p (Holm): Wilcoxon over independent (target, seed) "
        "units, Holm-corrected across the three comparators.",
        "",
        markdown_table(table.fillna("-")) if not table.empty else "_no committed rows_\n",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(text) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
