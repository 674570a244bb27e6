"""The leaderboard marks methods that do not beat the best trivial baseline of a column."""

from __future__ import annotations

from benchmarks.baselines import UNBEATEN_MARK, is_baseline
from benchmarks.leaderboard import leaderboard_table, rows_frame


def _row(sampler: str, target: str, value: float, rep: int = 0) -> dict:
    return {
        "sampler": sampler,
        "target": target,
        "init": "gaussian",
        "metric": "sinkhorn",
        "value": value,
        "status": "ok",
        "converged": True,
        "message": "",
        "fit_seconds": 0.0,
        "sample_seconds": 0.0,
        "rep": rep,
        "params": "{}",
    }


def test_methods_not_beating_the_best_baseline_are_marked():
    rows = [
        _row("exact", "a", 0.1),
        _row("exact", "b", 0.1),
        _row("kmeans", "a", 0.05),
        _row("kmeans", "b", 0.5),
        _row("kde", "a", 0.3),
        _row("kde", "b", 0.4),
        _row("dmps", "a", 0.04),  # beats kmeans on a
        _row("dmps", "b", 0.45),  # loses to kde on b
        _row("svgd", "a", 0.06),
        _row("svgd", "b", 0.1),
    ]
    table = leaderboard_table(rows_frame(rows), "sinkhorn")
    assert not table.at["dmps", "a"].endswith(UNBEATEN_MARK)
    assert table.at["dmps", "b"].endswith(UNBEATEN_MARK)
    assert table.at["svgd", "a"].endswith(UNBEATEN_MARK)
    assert not table.at["svgd", "b"].endswith(UNBEATEN_MARK)
    for name in ("kmeans", "kde", "exact"):
        assert not any(str(c).endswith(UNBEATEN_MARK) for c in table.loc[name])


def test_baselines_come_from_the_sampler_class_not_the_name():
    assert is_baseline("kmeans") and is_baseline("kde[scale=0.5]")
    assert not is_baseline("dmps") and not is_baseline("a_plugin_not_registered")
