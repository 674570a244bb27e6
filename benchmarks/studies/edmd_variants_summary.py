"""Summary of the EDMD-KSWGD variant study: Sinkhorn divergence mean ± std over seeds per
(target, init) for every variant and DMPS, and each variant's ratio to DMPS (mean / mean).

Reads ``results/edmd/variants/edmd_variants/runs.jsonl`` (written by the command in
``results/edmd/variants/edmd_variants/leaderboard.md``), writes
``results/edmd/variants/summary.md``. Run: ``python -m benchmarks.studies.edmd_variants_summary``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from benchmarks.execution.provenance import produced_by

HERE = Path(__file__).resolve().parents[2] / "results" / "edmd" / "variants"
RUNS = HERE / "edmd_variants" / "runs.jsonl"
COMMAND = "python -m benchmarks.studies.edmd_variants_summary"
ORDER = ["dmps", "koopman_markov", "notebook", "reweighted", "exact"]


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog=COMMAND, description=__doc__).parse_args(argv)
    values: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    cells: list[tuple[str, str]] = []
    for line in RUNS.read_text().splitlines():
        row = json.loads(line)
        if row["metric"] != "sinkhorn" or row["status"] != "ok":
            continue
        params = json.loads(row["config_key"])["params"]
        name = params.get("variant", row["sampler"])
        values[(name, row["target"], row["init"])].append(float(row["value"]))
        if (row["target"], row["init"]) not in cells:
            cells.append((row["target"], row["init"]))
    out = [
        "# EDMD-KSWGD variants vs DMPS: Sinkhorn divergence and ratio to DMPS",
        "",
        produced_by(COMMAND) + " (from the rows of `edmd_variants/runs.jsonl`)",
        "",
        "Mean ± std over seeds 0-2 (debiased Sinkhorn divergence, lower is better); "
        "`x DMPS` = variant mean / DMPS mean. Variants: `koopman_markov` (the default), "
        "`notebook` (the construction before issue 14), `reweighted`.",
        "",
        "| target / init | "
        + " | ".join(ORDER)
        + " | "
        + " | ".join(f"{v} x DMPS" for v in ORDER[1:4])
        + " |",
        "|---" * (len(ORDER) + 4) + "|",
    ]
    for target, init in cells:
        stats = {}
        for name in ORDER:
            v = values[(name, target, init)]
            stats[name] = (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
        cols = [f"{m:.4f} ± {s:.4f}" for m, s, _ in stats.values()]
        ratios = [f"{stats[n][0] / stats['dmps'][0]:.1f}" for n in ORDER[1:4]]
        out.append(f"| {target} / {init} | " + " | ".join(cols + ratios) + " |")
    (HERE / "summary.md").write_text("\n".join(out) + "\n", encoding="utf-8")
    print("\n".join(out))


if __name__ == "__main__":
    main()
