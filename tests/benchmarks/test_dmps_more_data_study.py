"""The issue-24 study keeps finished rows: a second invocation resumes, not recomputes."""

from __future__ import annotations

import pandas as pd

from benchmarks.studies import dmps_more_data as study


def test_study_resumes_from_its_partial_rows(tmp_path, monkeypatch) -> None:
    calls: list[tuple] = []
    real = study.run_column

    def counting(column, n, seed, rules):
        calls.append((column, n, seed, tuple(rules)))
        return real(column, n, seed, rules)

    import datasets.latents

    # the study's main sets the data root; put it back after the test
    monkeypatch.setitem(datasets.latents._SETTINGS, "data_root", None)
    monkeypatch.setattr(study, "run_column", counting)
    monkeypatch.setattr(study, "BUDGET", {"latent": (20, 30, 3), "other": (20, 30, 3)})
    args = ["--columns", "circle/cap", "--sizes", "60", "--seeds", "0", "--no-fashion"]
    args += ["--out", str(tmp_path)]
    # a crash after the first column: its rows stay in the partial file
    partial = tmp_path / study.PARTIAL
    study.main([*args, "--rules", "old"])
    first = pd.read_csv(tmp_path / "more_data.csv")
    assert len(first) == 1 and not partial.exists()
    # as if the run had stopped here, under a version without the newest column
    pd.DataFrame(first).drop(columns=["n_landmarks"]).to_csv(partial, index=False)
    calls.clear()
    study.main([*args, "--rules", "old", "new"])
    assert calls == [("circle/cap", 60, 0, ("new",))]  # only the missing rule ran
    both = pd.read_csv(tmp_path / "more_data.csv")
    assert sorted(both["rule"]) == ["new", "old"]
    assert list(both["n_landmarks"]) == [60, 60]  # filled for the older row, not ragged
    # at N = 60 < 1,000 the capped bandwidth is the median one: same eps, same particles
    assert both["eps"].nunique() == 1
    assert both["sinkhorn"].nunique() == 1
    assert "after resuming from 1 finished rows" in (tmp_path / "more_data.md").read_text()
