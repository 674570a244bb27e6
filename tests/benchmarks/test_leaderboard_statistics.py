"""Leaderboard cells with t intervals and verdicts against exact, flag marks from a
metric's own threshold, the declared ranking (failures last, copying after clean cells,
skipped samplers apart, the CD figure over the table's columns) and the paired-comparison
section (the leaderboard names no metric)."""

from __future__ import annotations

import numpy as np

from benchmarks.verdict.intervals import t_interval
from benchmarks.verdict.leaderboard import (
    flag_marks,
    leaderboard_table,
    rank_summary,
    rows_frame,
    verdicts,
    write_leaderboard,
)
from metrics.base import METRICS, MetricResult, register_metric
from tests.helpers.leaderboard_rows import metric_row


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
                    rows.append(metric_row(sampler, target, "gaussian", rep, metric, value))
    return rows


def _register() -> None:
    register_metric("score_x", description="a test score")(lambda ctx: MetricResult(0.0))
    register_metric(
        "copy_test_x", ranked=False, flag_below=-3.0, flag_label="copying", description="t"
    )(lambda ctx: MetricResult(0.0))


def test_cells_show_t_interval_verdicts_and_flags(tmp_path) -> None:
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
        lo, hi = t_interval(vals)
        # 'good' is 0.2 above exact on every seed: worse than exact (paired t)
        assert table.loc["good", "t1"] == f"{vals.mean():.4f} [{lo:.4f}, {hi:.4f}] ▼"
        # copier is flagged in 5/5 runs: read as copying, ranked after the clean 'bad'
        assert list(table.index) == ["exact", "good", "bad", "copier"]
        assert verdicts(df, "score_x").loc["copier"].tolist() == ["copying", "copying"]
        assert flag_marks(df) == {("copier", "t1"): "copying 5/5", ("copier", "t2"): "copying 5/5"}
        assert "[copying 5/5]" in table.loc["copier", "t1"]
        assert "copying" not in table.loc["bad", "t1"]
        path = write_leaderboard(rows, tmp_path, "tiny", "cmd", headline="score_x")
        md = path.read_text()
        assert "## Paired comparisons: score_x" in md
        assert "| bad | good | 0/0/2 |" in md  # pairs (a, b) in name order; good wins both
        assert "figures/critical_difference_score_x.png" in md
        assert "Flagged runs" in md and "copier on t1: copying 5/5" in md
        # an unranked metric gets no paired section
        assert "## Paired comparisons: copy_test_x" not in md


def test_tuned_settings_keep_names_and_are_listed(tmp_path) -> None:
    import json

    from benchmarks.verdict.leaderboard import settings_section

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


def _cell_rows(sampler, target, init, values, *, status="ok", metric="score_x"):
    return [
        {
            "sampler": sampler,
            "target": target,
            "init": init,
            "rep": rep,
            "metric": metric,
            "value": v,
            "status": status,
            "converged": status == "ok",
            "message": "",
            "fit_seconds": 0.1,
            "sample_seconds": 0.2,
            "n_particles": 30,
            "n_steps": 5,
            "n_train": 10,
            "n_reference": 20,
        }
        for rep, v in enumerate(values)
    ]


def test_failures_rank_last_skips_stand_apart_and_the_cd_uses_the_table_columns() -> None:
    """'fast' finishes every run but scores worst; 'fragile' would be best but diverges in
    one of its runs on t2: it ranks last there (not on its finished runs' mean). 'needy' is
    skipped on t2 (an unmet need): not ranked, shown apart with the reason. The CD summary
    covers exactly the ranked samplers and columns the table's avg rank uses."""
    with METRICS.scoped():
        _register()
        rows = []
        for t in ("t1", "t2"):
            rows += _cell_rows("exact", t, "g", [1.0, 1.1, 0.9])
            rows += _cell_rows("fast", t, "g", [3.0, 3.1, 2.9])
            rows += _cell_rows("mid", t, "g", [2.0, 2.1, 1.9])
        rows += _cell_rows("fragile", "t1", "g", [1.2, 1.3, 1.1])
        rows += _cell_rows("fragile", "t2", "g", [1.2, 1.3])
        rows += _cell_rows("fragile", "t2", "g", [float("nan")], status="diverged")
        rows[-1]["rep"] = 2
        rows += _cell_rows("needy", "t1", "g", [1.5, 1.5, 1.5])
        rows += _cell_rows("needy", "t2", "g", [float("nan")] * 3, status="skipped")
        df = rows_frame(rows)
        ranking = rank_summary(df, "score_x")
        assert ranking.ranks.loc["fragile"].tolist() == [1.0, 3.0]
        assert ranking.ranks.loc["fast"].tolist() == [3.0, 2.0]
        assert list(ranking.average.index) == ["mid", "fragile", "fast"]  # 1.5, 2, 2.5
        assert "needy" in ranking.unranked and ranking.columns == ["t1", "t2"]
        table = leaderboard_table(df, "score_x")
        assert list(table.index) == ["exact", "mid", "fragile", "fast", "needy"]
        assert table.loc["fragile", "avg rank"] == "2.00"
        assert table.loc["needy", "avg rank"] == "-"
        assert table.loc["needy", "ranked"].startswith("no: skipped in 1/2")
        assert table.loc["needy", "t2"] == "skipped"
        # a column every sampler skipped (a data set without files) is left out, not a
        # reason to unrank everyone
        rows2 = rows + [
            r
            for s in ("exact", "fast", "mid", "fragile", "needy")
            for r in _cell_rows(s, "t3", "g", [float("nan")] * 3, status="skipped")
        ]
        r2 = rank_summary(rows_frame(rows2), "score_x")
        assert r2.columns == ["t1", "t2"] and r2.dropped_columns == {"t3": "every sampler skipped"}
        assert list(r2.average.index) == ["mid", "fragile", "fast"]
        # the CD figure is built from the same RankTable: same samplers, same columns
        assert set(ranking.average.index) == {
            i for i in table.index if table.loc[i, "avg rank"] != "-"
        }


def test_an_x0_ignoring_sampler_counts_once_per_target_and_seed(tmp_path) -> None:
    """Two inits x 2 targets x 4 seeds: a sampler that ignores x0 repeats its values in both
    init columns, and the two inits of one (target, seed) share the data. The paired test
    must count 2 x 4 = 8 units, not 16 (the floor of its p-value is then 2/2^8, not
    2/2^16)."""
    from benchmarks.verdict.leaderboard import metric_values
    from benchmarks.verdict.paired import independent_units, pairwise_table

    with METRICS.scoped():
        _register()
        rows = []
        for t in ("t1", "t2"):
            for init in ("g", "c"):
                rows += _cell_rows("gen", t, init, [1.0, 1.1, 1.2, 1.3])  # ignores x0
                rows += _cell_rows("flow", t, init, [2.0, 2.2, 2.1, 2.4])
        v = metric_values(rows_frame(rows), "score_x")
        assert len(independent_units(v, "flow", "gen")) == 8
        table = pairwise_table(v, lower_is_better=True).set_index(["a", "b"])
        row = table.loc[("flow", "gen")]
        assert row.units == 8 and row.p == 2 / 2**8
        assert (row.wins, row.ties, row.losses) == (0, 0, 4)


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


def test_a_guard_metric_beyond_its_tolerance_makes_the_cell_worse() -> None:
    """The support-error path of the verdict: ``wide`` and ``near`` match exact on the headline
    (the same value per seed, a tie) but sit off the support by 0.06 and 0.02 (with 0.005
    seed noise) where exact sits on it; the guard's tolerance is 0.03, so only ``wide`` is
    worse than exact (paired t on d - 0.03: mean 0.03 over a sd of ~0.005 at 5 seeds), and
    ``near`` stays indistinguishable."""
    rng = np.random.default_rng(4)
    rows = []
    for rep in range(5):
        base = 1.0 + 0.05 * rng.normal()
        for sampler, off in [("exact", 0.0), ("wide", 0.06), ("near", 0.02)]:
            noise = 0.0 if sampler == "exact" else 0.005 * rng.normal()
            for metric, value in (("score_g", base), ("support_g", off + noise)):
                rows.append(metric_row(sampler, "t1", "gaussian", rep, metric, value))
    with METRICS.scoped():
        register_metric("score_g", description="a test score")(lambda ctx: MetricResult(0.0))
        register_metric("support_g", ranked=False, guards_verdict=True, verdict_tolerance=0.03)(
            lambda ctx: MetricResult(0.0)
        )
        calls = verdicts(rows_frame(rows), "score_g")
    assert calls.at["wide", "t1"] == "worse"
    assert calls.at["near", "t1"] == "≈ exact"
