"""Progress bars (one switch, honest ends, the running unit named), full skip messages as
footnotes, and provenance that survives a leaderboard rebuild (``run.json``)."""

from __future__ import annotations

import io
import json

import torch
from tqdm import tqdm

import benchmarks.execution.suite_run as execution
from benchmarks.__main__ import main
from benchmarks.execution.provenance import RUN_FILE, original_command, read_run
from benchmarks.execution.runner import execute, plan
from benchmarks.execution.suite_run import run_suite, unit_label
from benchmarks.suites import Suite
from benchmarks.verdict.leaderboard import write_leaderboard
from common.progress import PROGRESS_ENV, bars_allowed, finish, show
from samplers.base import iterate
from tests.helpers import harness_plugin as hp


def _suite(**kw) -> Suite:
    return hp.tiny_suite(**{"n_steps": 3, "samplers": ("ula",), **kw})


def test_finish_closes_an_early_stopped_bar_at_the_steps_done():
    bar = tqdm(total=100, file=io.StringIO(), disable=False)
    bar.update(27)  # e.g. early stopping after 27 of 100 epochs
    finish(bar, 27)
    assert (bar.n, bar.total) == (27, 27)
    assert "100%" in bar.fp.getvalue().split("\r")[-1]


def test_environment_switch_turns_every_bar_off(monkeypatch, capsys):
    assert show(True) and not show(False)
    monkeypatch.setenv(PROGRESS_ENV, "0")
    assert not bars_allowed() and not show(True)
    iterate(lambda x, t: x, torch.zeros(3, 2), 5, progress=True, desc="quiet")
    assert "quiet" not in capsys.readouterr().err


def test_no_progress_is_scoped_to_the_run(tmp_path, monkeypatch):
    """``run --no-progress`` turns bars off in this process and its workers during the run
    only: an in-process call leaves the environment as it found it."""
    from benchmarks.__main__ import environment_settings

    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    with environment_settings({PROGRESS_ENV: "0", "UNSET_HERE": None}):
        assert not bars_allowed()
    assert PROGRESS_ENV not in __import__("os").environ and bars_allowed()


def test_latent_training_bars_follow_the_switch(monkeypatch):
    from datasets.latents import get_progress, set_progress

    set_progress(True)
    assert get_progress()
    monkeypatch.setenv(PROGRESS_ENV, "0")
    assert not get_progress()


def test_suite_bar_names_the_unit_that_is_running(tmp_path, monkeypatch, plugin):
    events: list[str] = []

    class RecordingBar:
        def __init__(self, *args, **kwargs):
            pass

        def set_postfix_str(self, text, refresh=True):
            events.append(f"bar {text}")

        def update(self, n=1):
            pass

        def close(self):
            pass

    def executor(spec):
        events.append(f"exec {unit_label(spec)}")
        return execute(spec)

    monkeypatch.setattr(execution, "tqdm", RecordingBar)
    suite = _suite()
    run_suite(suite, out_root=tmp_path, executor=executor)
    specs = plan(suite, ["ula"])
    expected = []
    for spec in specs:
        expected += [f"bar running {unit_label(spec)}", f"exec {unit_label(spec)}"]
    assert events == [*expected, "bar done"]


def test_full_messages_become_footnotes(tmp_path):
    long = "data missing: " + "put the IDX files under /usr/share/datasets/fashion-mnist " * 6
    row = {
        "suite": "s",
        "target": "t",
        "sampler": "ula",
        "params": "{}",
        "init": "gaussian",
        "rep": 0,
        "status": "skipped",
        "message": long,
        "metric": hp.METRIC,
        "value": float("nan"),
        "converged": False,
        "fit_seconds": 0.0,
        "sample_seconds": 0.0,
        "n_particles": 4,
        "n_steps": 1,
        "n_train": 4,
        "n_reference": 4,
        "config_key": "k",
    }
    rows = [row, {**row, "sampler": "svgd", "config_key": "k2"}]
    text = write_leaderboard(rows, tmp_path, "s", "cmd").read_text()
    assert len(long) > 300
    assert f"- [1] {' '.join(long.split())}" in text
    assert text.count("| note [1] |") == 2 and "[2]" not in text


def test_leaderboard_rebuild_keeps_the_command_of_the_run(tmp_path, monkeypatch, capsys, plugin):
    command = "python -m benchmarks run --suite-file tiny.json --seeds 0,1"
    run_suite(_suite(), out_root=tmp_path, progress=False, command=command)
    record = read_run(tmp_path / "tiny")
    assert record["command"] == command and record["wall_seconds"] >= 0
    assert record["units"] == 4  # 1 target x 2 seeds x (exact + ula)
    assert main(["leaderboard", "--suite", "tiny", "--out", str(tmp_path)]) == 0
    board = (tmp_path / "tiny" / "leaderboard.md").read_text()
    assert f"Produced by: `{command}`" in board
    assert "python -m benchmarks leaderboard" not in board
    assert "## Environment" in board  # the rebuilt board keeps the run's environment
    # without run.json (older results) the existing leaderboard's line is kept
    (tmp_path / "tiny" / RUN_FILE).unlink()
    assert original_command(tmp_path / "tiny") == command
    assert main(["report", "--out", str(tmp_path), "--no-figures"]) == 0
    assert f"Produced by: `{command}`" in (tmp_path / "tiny" / "leaderboard.md").read_text()
    json.dumps(record)  # the record is plain JSON


def test_commit_is_dirty_for_code_changes_not_for_results(tmp_path, monkeypatch) -> None:
    """A run writing into the committed results (or a --resume / --rerun appending to them)
    changes no code, so its rows keep the clean commit; a changed source file marks it."""
    import subprocess

    import benchmarks.execution.environment as environment

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "runs.jsonl").write_text("{}\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(environment, "REPO_ROOT", tmp_path)
    clean = environment.git_commit()
    assert len(clean) == 12 and "+dirty" not in clean
    (tmp_path / "results" / "runs.jsonl").write_text("{}\n{}\n")
    assert environment.git_commit() == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert environment.git_commit() == clean + "+dirty"


def test_repeated_continuations_are_named_once_with_their_count(tmp_path) -> None:
    """Back-to-back identical continuations (e.g. five ``--resume`` after interruptions) are
    one "Refreshed by" line saying how many times they ran; a different command between
    them keeps the order of what happened."""
    from benchmarks.execution.provenance import record_run, refresh_commands

    record_run(tmp_path, "run A", 10.0, 4)
    for command in ["resume B", "resume B", "rerun C", "resume B"]:
        record_run(tmp_path, command, 1.0, 1, continued=True)
    assert refresh_commands(tmp_path) == [("resume B", 2), ("rerun C", 1), ("resume B", 1)]
    write_leaderboard([], tmp_path, "tiny", None)
    lines = [ln for ln in (tmp_path / "leaderboard.md").read_text().splitlines() if ln]
    assert lines[2:5] == [
        "Refreshed by: `resume B` (2 times, rows added, scored or run again)",
        "Refreshed by: `rerun C` (rows added, scored or run again)",
        "Refreshed by: `resume B` (rows added, scored or run again)",
    ]
