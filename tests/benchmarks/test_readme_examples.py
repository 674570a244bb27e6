"""The README's 'Adding a metric' and 'Adding a suite' examples work as written: each is
one file, and the harness picks it up without edits."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from benchmarks.suite_file import load_suite_file
from benchmarks.verdict.leaderboard import leaderboard_table, rows_frame
from metrics.base import METRICS, MetricContext

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _block(section: str, lang: str) -> str:
    body = README[README.index(section) :]
    return re.search(rf"```{lang}\n(.*?)```", body, re.S).group(1)


def test_metric_example_registers_and_ranks():
    code = _block("## Adding a metric", "python")
    with METRICS.scoped():
        exec(compile(code, "README:mean_gap", "exec"), {})
        metric = METRICS.get("mean_gap")
        x = torch.zeros(5, 2, dtype=torch.float64)
        y = torch.ones(7, 2, dtype=torch.float64)
        assert metric(MetricContext(x, y)).value == 2.0
        rows = [
            {"sampler": s, "target": "t", "init": "gaussian", "metric": "mean_gap", "value": v,
             "status": "ok", "converged": True, "message": "", "fit_seconds": 0.0,
             "sample_seconds": 0.0, "rep": 0, "params": "{}"}
            for s, v in (("a", 3.0), ("b", 1.0))
        ]  # fmt: skip
        table = leaderboard_table(rows_frame(rows), "mean_gap")
        assert list(table.index) == ["b", "a"]  # lower is better, as declared
    assert "mean_gap" not in METRICS.names()  # the scope removed it


def test_suite_example_loads(tmp_path):
    path = tmp_path / "my_suite.toml"
    path.write_text(_block("## Adding a suite", "toml"), encoding="utf-8")
    suite = load_suite_file(path)
    assert suite.name == "rings" and suite.targets == ("ring8", "grid25")
    assert suite.headline_metric == "sinkhorn" and suite.param_grid["dmps"]["flow_step"]
