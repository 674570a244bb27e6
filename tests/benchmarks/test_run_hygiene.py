"""Runs that never mislead: one writer per folder, rows that are never averaged when in
doubt, files set aside instead of overwritten, atomic writes, retries, time limits on every
backend, no orphan workers, and a scale guard before any metric."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmarks.__main__ import main
from benchmarks.execution.environment import git_commit
from benchmarks.execution.locking import folder_lock
from benchmarks.execution.runner import SCALE_GUARD, scale_excess, without_timing
from benchmarks.execution.store import ROWS_FILE, atomic_path, atomic_write_text, load_rows, repair
from tests.helpers import harness_plugin as hp

REPO = Path(__file__).resolve().parents[2]


def _argv(tmp_path: Path, out: Path, *extra: str) -> list[str]:
    suite = hp.tiny_suite_file(tmp_path / "tiny.json")
    # --jobs 1: the harness plug-in is registered in this process only, workers lack it
    argv = ["run", "--suite-file", str(suite), "--out", str(out), "--no-progress", *extra]
    return argv if "--jobs" in extra else [*argv, "--jobs", "1"]


def test_second_run_on_a_locked_folder_refuses(tmp_path, plugin, capsys):
    out = tmp_path / "res"
    with folder_lock(out / "tiny", "python -m benchmarks run (the first)"):
        code = main(_argv(tmp_path, out))
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "in use by pid" in err[0] and str(os.getpid()) in err[0]
    assert not (out / "tiny" / ROWS_FILE).exists()  # nothing was run or written
    assert main(_argv(tmp_path, out)) == 0  # the lock is released with its holder


def test_doubtful_rows_are_set_aside_never_averaged(tmp_path):
    path = tmp_path / ROWS_FILE
    base = {"suite": "s", "target": "t", "sampler": "a", "metric": "m", "status": "ok"}
    good = {**base, "config_key": "k1", "value": 0.19, "fit_seconds": 1.0}
    same = {**good, "fit_seconds": 2.0}  # another execution: only a wall time differs
    conflict = {**base, "config_key": "k1", "value": 333.1}
    other = {**base, "config_key": "k2", "value": 0.5}
    lines = [json.dumps(r).encode() for r in (good, same, conflict, other, {"foo": 1})]
    path.write_bytes(b"\n".join(lines[:3]) + b"\n\xff\xfe broken\n" + b"\n".join(lines[3:]) + b"\n")
    report = load_rows(path)
    assert [r["value"] for r in report.rows] == [0.19, 0.5]
    assert report.duplicates == [2] and report.conflicts == [3]
    assert report.bad_lines == [4] and report.missing_fields == [6]
    fixed, msg = repair(path)
    assert "conflicting duplicate rows at lines [3]" in msg and "unreadable lines [4]" in msg
    assert load_rows(path).clean and len(load_rows(path).rows) == 2
    assert len(list(tmp_path.glob(f"{ROWS_FILE}.corrupt-*"))) == 1


def test_previous_rows_are_never_overwritten(tmp_path, plugin):
    out = tmp_path / "res"
    for _ in range(3):
        assert main(_argv(tmp_path, out)) == 0
    previous = sorted((out / "tiny").glob("runs.previous-*.jsonl"))
    assert len(previous) == 2  # one per earlier run, none overwritten
    assert all(len(load_rows(p).rows) == 6 for p in previous)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "leaderboard.md"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(path) as tmp:
        tmp.write_text("half a new fi", encoding="utf-8")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["leaderboard.md"]


def test_retry_failed_runs_failed_and_timed_out_rows_again(tmp_path, plugin):
    out = tmp_path / "res"
    assert main(_argv(tmp_path, out)) == 0
    rows_path = out / "tiny" / ROWS_FILE
    rows = load_rows(rows_path).rows
    victim = dict(next(r for r in rows if r["sampler"] == "svgd"))
    for r in rows:
        if r["config_key"] == victim["config_key"]:
            r.update(status="failed", value=float("nan"), message="boom")
    rows_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(_argv(tmp_path, out, "--resume")) == 0  # --resume keeps the failure
    assert any(r["status"] == "failed" for r in load_rows(rows_path).rows)
    assert main(_argv(tmp_path, out, "--retry-failed")) == 0
    after = load_rows(rows_path)
    assert after.clean and len(after.rows) == 6
    again = [r for r in after.rows if r["config_key"] == victim["config_key"]]
    assert [r["status"] for r in again] == ["ok"] and again[0]["value"] == victim["value"]
    (aside,) = (out / "tiny").glob("runs.retried-*.jsonl")
    assert [r["status"] for r in load_rows(aside).rows] == ["failed"]


def test_a_resume_with_nothing_to_do_leaves_the_folder_as_it_was(tmp_path, plugin, capsys):
    """Idempotent: ``--resume`` on a finished folder runs, scores and sets aside nothing, and
    rewrites nothing (no "Refreshed by" line, no run.json entry, same environment)."""
    out = tmp_path / "res"
    assert main(_argv(tmp_path, out)) == 0
    folder = out / "tiny"
    names = ("run.json", "leaderboard.md", "environment.json", "suite.json", ROWS_FILE)
    before = {n: (folder / n).read_bytes() for n in names}
    capsys.readouterr()
    assert main(_argv(tmp_path, out, "--resume")) == 0
    assert "nothing to run, score or set aside" in capsys.readouterr().err
    assert {n: (folder / n).read_bytes() for n in names} == before
    # a resume that does run something is still recorded
    rows = load_rows(folder / ROWS_FILE).rows
    key = rows[-1]["config_key"]
    kept = [r for r in rows if r["config_key"] != key]
    (folder / ROWS_FILE).write_text("".join(json.dumps(r) + "\n" for r in kept))
    assert main(_argv(tmp_path, out, "--resume")) == 0
    assert "Refreshed by:" in (folder / "leaderboard.md").read_text()


def test_rerun_runs_one_samplers_rows_again_and_keeps_the_others(tmp_path, plugin, capsys):
    """--rerun SAMPLERS: every recorded run of those samplers runs again (old rows set aside),
    the other samplers' rows are kept as they were (a refresh of a method whose code
    changed); an unknown name is refused before anything runs."""
    out = tmp_path / "res"
    assert main(_argv(tmp_path, out)) == 0
    rows_path = out / "tiny" / ROWS_FILE
    rows = load_rows(rows_path).rows
    svgd = {r["config_key"] for r in rows if r["sampler"] == "svgd"}
    assert svgd and len(svgd) < len({r["config_key"] for r in rows})
    first = json.loads((out / "tiny" / "run.json").read_text())
    marked = [{**r, "fit_seconds": -1.0} for r in rows]  # a mark the rerun must remove
    rows_path.write_text("".join(json.dumps(r) + "\n" for r in marked))
    assert main(_argv(tmp_path, out, "--rerun", "svgd")) == 0
    after = load_rows(rows_path)
    assert after.clean and len(after.rows) == len(rows)
    for r in after.rows:
        assert (r["fit_seconds"] == -1.0) == (r["config_key"] not in svgd)
    by_key = {(r["config_key"], r["metric"]): r["value"] for r in rows}
    assert all(by_key[(r["config_key"], r["metric"])] == r["value"] for r in after.rows)
    (aside,) = (out / "tiny").glob("runs.rerun-*.jsonl")
    assert {r["config_key"] for r in load_rows(aside).rows} == svgd
    # the old rows' particle files went aside with them; every file left is referenced
    (old_particles,) = (out / "tiny").glob("particles.rerun-*")
    moved = {r["particles_file"].split("/")[-1] for r in load_rows(aside).rows}
    assert moved and {p.name for p in old_particles.iterdir()} == moved
    referenced = {r["particles_file"] for r in after.rows if r.get("particles_file")}
    on_disk = {f"particles/{p.name}" for p in (out / "tiny" / "particles").iterdir()}
    assert on_disk == referenced
    assert "rerun: " in capsys.readouterr().err
    # provenance: the first run's record stays (its wall time and units), the refresh is
    # added beside it and named under the "Produced by" line of the leaderboard
    record = json.loads((out / "tiny" / "run.json").read_text())
    assert record["units"] == first["units"] and record["wall_seconds"] == first["wall_seconds"]
    assert [r["units"] for r in record["refreshed"]] == [len(svgd)]
    board = (out / "tiny" / "leaderboard.md").read_text().splitlines()
    assert board[2].startswith("Produced by: `") and board[4].startswith("Refreshed by: `")
    assert main(_argv(tmp_path, out, "--rerun", "svgdd")) == 2
    assert "unknown sampler(s) to --rerun ['svgdd']" in capsys.readouterr().err


def test_a_continued_run_keeps_the_environment_of_the_kept_rows(tmp_path, plugin):
    """--resume / --rerun add rows to a folder whose other rows were made elsewhere: the
    first environment stays on record, the later one is listed under ``refreshed`` (once
    per change), and the leaderboard's Environment section names every row's commit."""
    out = tmp_path / "res"
    assert main(_argv(tmp_path, out)) == 0
    env_path = out / "tiny" / "environment.json"
    first = json.loads(env_path.read_text())
    # as if the first run had been made at another commit with another torch
    old = {**first, "commit": "0123456789ab", "torch": "0.0-old"}
    env_path.write_text(json.dumps(old))
    rows_path = out / "tiny" / ROWS_FILE
    rows = load_rows(rows_path).rows
    rows_path.write_text("".join(json.dumps({**r, "commit": "0123456789ab"}) + "\n" for r in rows))
    for _ in range(2):  # the second refresh, in the same environment, adds no entry
        assert main(_argv(tmp_path, out, "--rerun", "svgd")) == 0
    env = json.loads(env_path.read_text())
    assert {k: v for k, v in env.items() if k != "refreshed"} == old
    assert len(env["refreshed"]) == 1 and env["refreshed"][0]["commit"] == first["commit"]
    assert env["refreshed"][0]["torch"] == first["torch"]
    section = (out / "tiny" / "leaderboard.md").read_text().split("## Environment")[1]
    commits = sorted({"0123456789ab", first["commit"]})
    assert f"- commit (per run): {', '.join(commits)}" in section
    assert f"- continuation 1 (--resume / --rerun): commit {first['commit']}; torch " in section


def test_resume_scores_a_metric_added_since_from_the_saved_particles(tmp_path, plugin, monkeypatch):
    """A metric that ``joins`` a listed one and was registered after a folder's runs (the
    copying flag's successor, metrics/proximity.py): ``--resume`` scores it from each finished
    run's saved particles, runs no unit again, and changes no recorded row."""
    from metrics.base import METRICS, Metric, MetricResult

    out = tmp_path / "res"
    assert main(_argv(tmp_path, out)) == 0
    rows_path = out / "tiny" / ROWS_FILE
    before = load_rows(rows_path).rows
    produced = (out / "tiny" / "leaderboard.md").read_text().splitlines()[2]

    def mean_norm(ctx):
        return MetricResult(float(ctx.particles.norm(dim=1).mean()), True, {})

    joining = Metric("_test_joining", mean_norm, joins=hp.METRIC, ranked=False)
    monkeypatch.setitem(METRICS.entries, "_test_joining", joining)
    assert main(_argv(tmp_path, out, "--resume")) == 0
    after = load_rows(rows_path).rows
    added = [r for r in after if r["metric"] == "_test_joining"]
    configs = {r["config_key"] for r in before}
    assert {r["config_key"] for r in added} == configs and len(added) == len(configs)
    assert all(json.loads(r["metric_info"]).get("rescored_from") for r in added)
    # the scoring commit is recorded beside the run's own (the row's "commit")
    assert {json.loads(r["metric_info"])["rescored_at"] for r in added} == {git_commit()}
    kept = {(r["config_key"], r["metric"]): r["value"] for r in after}
    assert all(kept[(r["config_key"], r["metric"])] == r["value"] for r in before)
    # the leaderboard still names the command that made the runs; the resume is listed below
    board = (out / "tiny" / "leaderboard.md").read_text().splitlines()
    assert board[2] == produced and board[4].startswith("Refreshed by: `")
    # a fresh run scores it too, beside the metric it joins
    fresh = tmp_path / "fresh"
    assert main(_argv(tmp_path, fresh)) == 0
    names = {r["metric"] for r in load_rows(fresh / "tiny" / ROWS_FILE).rows}
    assert names == {hp.METRIC, "_test_joining"}


def test_continued_environment_without_a_usable_record_is_the_current_one():
    from benchmarks.execution.environment import continued_environment

    now = {"commit": "b", "torch": "2"}
    assert continued_environment(None, now) == now
    assert continued_environment({"junk": 1}, now) == now
    assert continued_environment(now, dict(now)) == now  # nothing changed: no history


def test_scale_guard_marks_far_clouds_diverged_without_scoring():
    ref = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    radius = float((ref - ref.mean(0)).norm(dim=1).max())
    assert scale_excess(ref[:50], ref) <= 1.0
    far = ref[:50].clone()
    far[0] = ref.mean(0) + torch.tensor([20.0 * radius, 0.0], dtype=torch.float64)
    assert scale_excess(far, ref) == pytest.approx(20.0, rel=1e-9)
    assert scale_excess(far, ref) > SCALE_GUARD
    assert scale_excess(torch.full((3, 2), float("nan")), ref) == float("inf")


def test_dask_timeout_stops_a_fit_that_never_checks(tmp_path, plugin):
    distributed = pytest.importorskip("distributed")
    suite = hp.tiny_suite_file(
        tmp_path / "slow.json",
        samplers=[hp.SLOW],
        seeds=[0],
        sampler_params={hp.SLOW: {"fit_sleep": 60.0, "cooperative": False}},
    )
    out = tmp_path / "res"
    argv = ["run", "--suite-file", str(suite), "--out", str(out), "--no-progress"]
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        t0 = time.perf_counter()
        main([*argv, "--timeout", "1", "--scheduler", cluster.scheduler_address])
        wall = time.perf_counter() - t0
    rows = [r for r in load_rows(out / "tiny" / ROWS_FILE).rows if r["sampler"] == hp.SLOW]
    assert [r["status"] for r in rows] == ["timeout"]
    # the hard stop fires 1 s after the 1 s limit; far below the fit's 60 s
    assert rows[0]["fit_seconds"] is not None and rows[0]["fit_seconds"] < 10
    assert wall < 45


def _children(pid: int) -> set[int]:
    psutil = pytest.importorskip("psutil")
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _not_zombie(psutil, pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_killing_the_parent_of_a_jobs_run_leaves_no_worker(tmp_path):
    psutil = pytest.importorskip("psutil")
    suite = hp.tiny_suite_file(
        tmp_path / "slow.json",
        samplers=[hp.SLOW],
        sampler_params={hp.SLOW: {"step_sleep": 1.0}},
    )
    cmd = [sys.executable, "-m", "benchmarks", "run", "--suite-file", str(suite)]
    cmd += ["--out", str(tmp_path / "res"), "--no-progress", "--jobs", "2"]
    cmd += ["--import", "tests.helpers.harness_register"]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.time() + 180
    rows_path = tmp_path / "res" / "tiny" / ROWS_FILE
    workers: set[int] = set()
    # kill mid-run, as a user would: after the first units are recorded (the workers are
    # then busy with the slow sampler's 5 s runs)
    while time.time() < deadline and not (
        rows_path.exists() and len(load_rows(rows_path).rows) >= 2
    ):
        workers |= _children(proc.pid)
        time.sleep(0.2)
    workers |= _children(proc.pid)
    assert len(workers) >= 2, proc.stderr.read().decode() if proc.poll() is not None else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # workers poll their parent every 0.5 s; resource trackers exit with their last client
    limit = time.time() + 30
    alive = workers
    while time.time() < limit and alive:
        alive = {
            p for p in workers if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
        }
        time.sleep(0.5)
    assert not alive, [psutil.Process(p).cmdline() for p in alive if psutil.pid_exists(p)]


@pytest.mark.parametrize("name", ["sinkhorn_generator", "score_diffusion"])
def test_training_loops_stop_at_the_deadline(name):
    from samplers import get_sampler
    from samplers.base import DeadlineExceeded
    from tests.helpers.gaussian import correlated_gaussian_2d

    target = correlated_gaussian_2d()
    train = target.sample(200, seed=0)
    sampler = get_sampler(name, iterations=10**7)  # hours of training without the limit
    t0 = time.perf_counter()
    with pytest.raises(DeadlineExceeded, match="training"):
        sampler.fit(train, target, deadline=time.perf_counter() + 0.5)
    # one training iteration is milliseconds; 20 s allows a heavily loaded machine
    assert time.perf_counter() - t0 < 20


def test_resume_after_a_tuned_setting_changed_runs_the_cell_again_without_a_second_row(
    tmp_path, plugin, capsys
):
    """A re-tune that changes svgd's setting, then ``--resume``: svgd's old rows are made
    differently now, so they are set aside (not kept beside the new run as a second run of
    the same cell), its units run with the new setting, and ula's rows stay untouched."""
    out = tmp_path / "res"
    assert main(_argv(tmp_path, out)) == 0
    rows_path = out / "tiny" / ROWS_FILE
    before = load_rows(rows_path).rows
    tuned = tmp_path / "tuned.json"
    chosen = {"svgd": {hp.TARGET: {"gaussian": {"step_size": 0.05}}}}
    tuned.write_text(json.dumps({"seeds": [1000], "chosen": chosen}))
    assert main(_argv(tmp_path, out, "--resume", "--tuned", str(tuned))) == 0
    after = load_rows(rows_path).rows
    cells = [(r["sampler"], r["target"], r["rep"], r["init"], r["metric"]) for r in after]
    assert len(cells) == len(set(cells)) == len(before)
    svgd = [r for r in after if r["sampler"] == "svgd"]
    assert svgd and all(json.loads(r["config_key"])["params"] == {"step_size": 0.05} for r in svgd)
    kept = {r["config_key"] for r in before if r["sampler"] == "ula"}
    assert kept == {r["config_key"] for r in after if r["sampler"] == "ula"}
    (aside,) = (out / "tiny").glob("runs.superseded-*.jsonl")
    assert {r["sampler"] for r in load_rows(aside).rows} == {"svgd"}
    assert "made differently now" in capsys.readouterr().err
    # a resume of one sampler only leaves the other's rows alone, whatever their settings
    assert main(_argv(tmp_path, out, "--resume", "--samplers", "ula")) == 0
    assert load_rows(rows_path).rows == after
    assert len(list((out / "tiny").glob("runs.superseded-*.jsonl"))) == 1


def test_a_setting_changed_for_one_init_reruns_the_init_that_shared_its_run(tmp_path, plugin):
    """KDE ignores x0, so one run serves both inits: the second init's rows are copies of the
    first's (``x0_shared_from``) and name its particle file. A re-tune that changes the
    setting of the first init only supersedes its rows, and the copies too: kept, they would
    name a run of another setting as theirs (a fresh run makes the second init its own run,
    and ``verify`` found the difference in a committed folder). After ``--resume`` the folder
    holds what a fresh run with the new settings holds, and every file a row names exists
    (the shared file was once moved aside while a kept row still named it)."""
    suite = hp.tiny_suite_file(
        tmp_path / "tiny.json", samplers=["kde"], inits=["gaussian", "support"]
    )
    out = tmp_path / "res"
    base = ["run", "--suite-file", str(suite), "--out", str(out), "--no-progress", "--jobs", "1"]
    assert main(base) == 0
    rows_path = out / "tiny" / ROWS_FILE
    before = [r for r in load_rows(rows_path).rows if r["sampler"] == "kde"]
    shared = {r["particles_file"] for r in before if r["init"] == "support"}
    assert shared == {r["particles_file"] for r in before if r["init"] == "gaussian"}
    assert {r.get("x0_shared_from") for r in before if r["init"] == "support"} == {"gaussian"}
    tuned = tmp_path / "tuned.json"
    chosen = {"kde": {hp.TARGET: {"gaussian": {"scale": 0.5}}}}
    tuned.write_text(json.dumps({"seeds": [1000], "chosen": chosen}))
    assert main([*base, "--resume", "--tuned", str(tuned)]) == 0
    every = load_rows(rows_path).rows
    assert all((out / "tiny" / r["particles_file"]).is_file() for r in every)
    fresh_out = tmp_path / "fresh"
    fresh = [*base[:4], str(fresh_out), *base[5:], "--tuned", str(tuned)]
    assert main(fresh) == 0
    made = load_rows(fresh_out / "tiny" / ROWS_FILE).rows
    key = lambda r: (r["config_key"], r["metric"])  # noqa: E731
    resumed = {key(r): without_timing(r) for r in every}
    assert resumed == {key(r): without_timing(r) for r in made}
    support = [r for r in every if r["sampler"] == "kde" and r["init"] == "support"]
    assert {r.get("x0_shared_from") for r in support} == {None}  # its own run now
    assert {r["particles_file"] for r in support}.isdisjoint(shared)
    assert not any((out / "tiny" / name).exists() for name in shared)  # set aside, not left


def test_resume_with_nothing_to_run_rewrites_a_leaderboard_whose_tuning_changed(
    tmp_path, plugin, capsys
):
    """``tune --continue`` may rewrite tuned.json without moving a choice (the guard's new
    records, wider coverage): ``run --resume`` then has nothing to run, but the leaderboard's
    tuning section must follow tuned.json; once it does, a resume leaves the folder alone."""
    out = tmp_path / "res"
    folder = out / "tiny"
    folder.mkdir(parents=True)
    chosen = {"svgd": {hp.TARGET: {"gaussian": {"step_size": 0.05}}}}

    def tuned(tried: int) -> None:
        space = {"step_size": [0.1, 0.05]}
        coverage = {"svgd": {hp.TARGET: {"settings_tried": tried, "space_size": 2, "space": space}}}
        (folder / "tuned.json").write_text(
            json.dumps({"seeds": [1000], "budget": 2, "chosen": chosen, "coverage": coverage})
        )

    tuned(1)
    assert main(_argv(tmp_path, out)) == 0
    board = folder / "leaderboard.md"
    assert "| svgd | 1/2 (50 %) |" in board.read_text()
    rows = (folder / ROWS_FILE).read_bytes()
    tuned(2)  # the same choice, a wider coverage
    capsys.readouterr()
    assert main(_argv(tmp_path, out, "--resume")) == 0
    assert "leaderboard rewritten" in capsys.readouterr().err
    assert "| svgd | 2/2 (100 %) |" in board.read_text()
    assert (folder / ROWS_FILE).read_bytes() == rows  # nothing ran
    written = board.read_bytes()
    assert main(_argv(tmp_path, out, "--resume")) == 0
    assert "the folder is left as it was" in capsys.readouterr().err
    assert board.read_bytes() == written


def test_a_folder_run_with_another_folders_tuning_shows_that_tuning(tmp_path, plugin):
    """``run --tuned PATH --out OTHER`` (a newcomer's ``runs/`` with the committed tuning):
    suite.json records where the settings came from, and the leaderboard's tuning coverage
    is read from there, saying so, since OTHER holds no tuned.json."""
    tuned = tmp_path / "elsewhere" / "tuned.json"
    tuned.parent.mkdir()
    chosen = {"svgd": {hp.TARGET: {"gaussian": {"step_size": 0.05}}}}
    space = {"step_size": [0.1, 0.05]}
    coverage = {"svgd": {hp.TARGET: {"settings_tried": 2, "space_size": 2, "space": space}}}
    tuned.write_text(
        json.dumps({"seeds": [1000], "budget": 2, "chosen": chosen, "coverage": coverage})
    )
    out = tmp_path / "res"
    assert main(_argv(tmp_path, out, "--tuned", str(tuned))) == 0
    folder = out / "tiny"
    assert not (folder / "tuned.json").exists()
    assert json.loads((folder / "suite.json").read_text())["tuned_from"] == str(tuned)
    board = (folder / "leaderboard.md").read_text()
    assert "## Tuning coverage" in board and f"From `{tuned}`, the tuned settings" in board
    assert "| svgd | 2/2 (100 %) |" in board
