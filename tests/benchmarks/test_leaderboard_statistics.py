"""Leaderboard cells with bootstrap intervals, flag marks from a metric's own threshold,
and the paired-comparison section (the leaderboard names no metric)."""

from __future__ import annotations

import numpy as np

from benchmarks.leaderboard import flag_marks, leaderboard_table, rows_frame, write_leaderboard
from benchmarks.statistics import bootstrap_interval
from metrics.base import METRICS, MetricResult, register_metric


def _rows() -> list[dict]:
    """3 samplers + exact on 2 targets x 5 seeds: 'good' is better than 'bad' by 0.5 on
    every unit; 'copier' scores -5 on the flagging test metric (below its threshold -3)."""
    rng = np.random.default_rng(0)
    rows = []
    for target in ("t1", "t2"):
        for rep in range(5):
            base = 1.0 + 0.05 * rng.normal()
            for sampler, score, test in [
                ("exact", base - 0.2, 0.1),
                ("good", base, 0.2),
                ("bad", base + 0.5, -0.5),
                ("copier", base + 0.2 + 0.05 * rng.normal(), -5.0),
            ]:
                for metric, value in (("score_x", score), ("copy_test_x", test)):
                    rows.append(
                        {
                            "sampler": sampler,
                            "target": target,
                            "init": "gaussian",
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
                    )
    return rows


def _register() -> None:
    register_metric("score_x", description="a test score")(lambda ctx: MetricResult(0.0))
    register_metric(
        "copy_test_x", ranked=False, flag_below=-3.0, flag_label="copying", description="t"
    )(lambda ctx: MetricResult(0.0))


def test_cells_show_bootstrap_interval_and_flags(tmp_path) -> None:
    with METRICS.scoped():
        _register()
        rows = _rows()
        df = rows_frame(rows)
        table = leaderboard_table(df, "score_x")
        vals = np.array(
            [
                r["value"]
                for r in rows
                if (r["sampler"], r["target"], r["metric"]) == ("good", "t1", "score_x")
            ]
        )
        lo, hi = bootstrap_interval(vals, seed=0)
        assert table.loc["good", "t1"] == f"{vals.mean():.4f} [{lo:.4f}, {hi:.4f}]"
        assert list(table.index)[:2] == ["exact", "good"]
        assert flag_marks(df) == {("copier", "t1"): "copying 5/5", ("copier", "t2"): "copying 5/5"}
        assert "[copying 5/5]" in table.loc["copier", "t1"]
        assert "copying" not in table.loc["bad", "t1"]
        path = write_leaderboard(rows, tmp_path, "tiny", "cmd", headline="score_x")
        md = path.read_text()
        assert "## Paired comparisons: score_x" in md
        assert "| good | bad | 2/0/0 |" in md
        assert "figures/critical_difference_score_x.png" in md
        assert "Flagged runs" in md and "copier on t1: copying 5/5" in md
        # an unranked metric gets no paired section
        assert "## Paired comparisons: copy_test_x" not in md


def test_tuned_settings_keep_names_and_are_listed(tmp_path) -> None:
    import json

    from benchmarks.leaderboard import settings_section

    rows = _rows()
    for r in rows:  # 'good' tuned differently per target: still one sampler, not a grid
        tuned = r["sampler"] == "good"
        r["params"] = json.dumps({"h": 0.1 if r["target"] == "t1" else 0.3} if tuned else {})
        r["tuning"] = "tuned" if tuned else "default"
    df = rows_frame(rows)
    assert set(df["sampler"]) == {"exact", "good", "bad", "copier"}
    text = "\n".join(settings_section(df))
    assert "| good | h=0.1 | h=0.3 |" in text
    assert "| bad | defaults (not tuned) | defaults (not tuned) |" in text
    # two settings in the same column are a grid and get labels
    rows += [dict(r, params=json.dumps({"h": 0.5})) for r in rows if r["sampler"] == "good"]
    assert {"good[h=0.1]", "good[h=0.5]", "good[h=0.3]"} <= set(rows_frame(rows)["sampler"])
    # untuned rows: no section
    assert settings_section(rows_frame(_rows())) == []


def test_runs_flag_themselves_through_sampler_info(tmp_path) -> None:
    """A generic ``"flags"`` list in a run's sampler_info is counted once per run (not once
    per metric row) and shown like a metric's flag; the harness names no flag."""
    import json

    with METRICS.scoped():
        _register()
        rows = _rows()
        for r in rows:  # 'bad' flags itself on t1 in reps 0 and 1, in every metric row
            flagged = r["sampler"] == "bad" and r["target"] == "t1" and r["rep"] < 2
            r["sampler_info"] = json.dumps({"flags": ["clip z"] if flagged else []})
        rows[0]["sampler_info"] = "not json"  # unreadable info: no flag, no crash
        df = rows_frame(rows)
        marks = flag_marks(df)
        assert marks[("bad", "t1")] == "clip z 2/5"
        assert ("bad", "t2") not in marks
        assert marks[("copier", "t1")] == "copying 5/5"
        assert "[clip z 2/5]" in leaderboard_table(df, "score_x").loc["bad", "t1"]
        md = write_leaderboard(rows, tmp_path, "tiny", "cmd", headline="score_x").read_text()
        assert "bad on t1: clip z 2/5" in md
