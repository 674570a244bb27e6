"""The sphere-shell study runs end to end at toy sizes (it once stopped running unnoticed: a
parameter check refused its ``n_modes=None``) and writes what the committed file shows."""

from __future__ import annotations

import pandas as pd

from benchmarks.studies import shell_experiment


def test_the_shell_study_runs_at_toy_sizes(tmp_path):
    argv = ["--train", "40", "--particles", "40", "--reference", "80", "--steps", "4"]
    argv += ["--record-every", "2", "--seeds", "1", "--threads", "1", "--out", str(tmp_path)]
    shell_experiment.main(argv)
    rows = pd.read_csv(tmp_path / "shell_experiment.csv")
    methods = {"exact", "cap init", "dmps (reference step)", "dmps (auto step, default)"}
    for target in ("shell3", "shell100"):
        assert set(rows[rows.target == target].method) == methods
    # every particle set is scored; the cap start sits in the cap
    assert rows.sinkhorn.notna().all()
    cap = rows[rows.method == "cap init"].set_index("target").cap_fraction
    assert (cap == 1.0).all()
    text = (tmp_path / "shell_experiment.md").read_text(encoding="utf-8")
    assert "Produced by: `python -m benchmarks.studies.shell_experiment --train 40" in text
    assert (tmp_path / "shell_experiment.png").exists()
