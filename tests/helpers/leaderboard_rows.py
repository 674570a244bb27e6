"""One finished run's row of one metric, as the leaderboard tests build their frames."""

from __future__ import annotations

from typing import Any


def metric_row(
    sampler: str, target: str, init: str, rep: int, metric: str, value: float
) -> dict[str, Any]:
    """An ``ok`` row of ``metric`` for (sampler, target, init, rep) with tiny sizes and
    times: the fields ``benchmarks.verdict.leaderboard.rows_frame`` reads."""
    return {
        "sampler": sampler,
        "target": target,
        "init": init,
        "rep": rep,
        "metric": metric,
        "value": value,
        "status": "ok",
        "converged": True,
        "message": "",
        "fit_seconds": 0.1,
        "sample_seconds": 0.2,
        "n_particles": 10,
        "n_steps": 5,
        "n_train": 20,
        "n_reference": 20,
    }
