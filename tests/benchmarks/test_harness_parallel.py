"""Serial, ``--jobs 2`` (loky) and Dask LocalCluster execution give the same rows; a killed
suite resumed gives every row exactly once; damaged row files are repaired via the CLI."""

from __future__ import annotations

import _thread
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.execution.runner import TIMING_FIELDS, without_timing
from benchmarks.execution.store import ROWS_FILE, load_rows
from tests.helpers import harness_plugin as hp

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, out: str, *extra: str) -> list[dict]:
    suite = hp.tiny_suite_file(tmp_path / "tiny.json")
    argv = ["run", "--suite-file", str(suite), "--out", str(tmp_path / out), "--no-progress"]
    main([*argv, "--import", "tests.helpers.harness_register", *extra])
    report = load_rows(tmp_path / out / "tiny" / ROWS_FILE)
    assert report.clean
    return report.rows


def _by_key(rows: list[dict]) -> dict[tuple[str, str], dict]:
    keyed = {(r["config_key"], r["metric"]): without_timing(r) for r in rows}
    assert len(keyed) == len(rows), "a configuration was recorded twice"
    return keyed


def test_serial_jobs_and_dask_cluster_give_identical_rows(tmp_path, plugin, capsys):
    distributed = pytest.importorskip("distributed")
    serial = _run(tmp_path, "serial", "--jobs", "1")
    # 1 target x 2 seeds x (exact, ula, svgd) x 1 init x 1 metric
    assert len(serial) == 6
    assert all(r["status"] == "ok" for r in serial)
    jobs = _run(tmp_path, "jobs", "--jobs", "2")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        dask = _run(tmp_path, "dask", "--scheduler", cluster.scheduler_address)
    ref = _by_key(serial)
    for other in (jobs, dask):
        got = _by_key(other)
        assert got.keys() == ref.keys()
        for k in ref:
            assert got[k] == ref[k], k  # every field but TIMING_FIELDS, floats bit for bit
    # the fields left out really are the only ones that may differ: wall times (and BLAS
    # thread counts); values are finite and not trivially equal across runs
    assert set(TIMING_FIELDS) == {"fit_seconds", "sample_seconds", "blas"}
    values = [r["value"] for r in serial if r["sampler"] != "exact"]
    assert len(set(values)) == len(values)
    # rows are in plan order in the leaderboard whatever the completion order
    md = (tmp_path / "jobs" / "tiny" / "leaderboard.md").read_text()
    assert md.index("| exact |") < md.index("| ula |")


def test_grid_from_cli_gives_one_unit_per_combination(tmp_path, plugin, capsys):
    rows = _run(tmp_path, "grid", "--param", "ula.step_size=0.01,0.1", "--seeds", "0")
    ula = [r for r in rows if r["sampler"] == "ula"]
    assert sorted(json.loads(r["params"])["step_size"] for r in ula) == [0.01, 0.1]
    assert len({r["config_key"] for r in ula}) == 2
    assert ula[0]["value"] != ula[1]["value"]
    md = (tmp_path / "grid" / "tiny" / "leaderboard.md").read_text()
    assert "ula[step_size=0.01]" in md and "ula[step_size=0.1]" in md
    suite = str(hp.tiny_suite_file(tmp_path / "tiny.json"))
    for param, message in (
        ("ula.stepsize=0.1", "unknown parameter"),
        ("mala.step_size=0.1", "not among the samplers"),
    ):  # refused before any run: exit status 2, one error line (tests/benchmarks/test_cli.py)
        argv = ["run", "--suite-file", suite, "--out", str(tmp_path / "bad"), "--param", param]
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def _keys_exactly_once(rows: list[dict], expected: int) -> None:
    keys = [(r["config_key"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys)) == expected


def _start_and_wait(cmd: list[str], rows_path: Path, n_rows: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 90
    while not (rows_path.exists() and len(load_rows(rows_path).rows) >= n_rows):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "suite did not start"
        time.sleep(0.02)
    return proc


def test_interrupted_then_killed_suite_resumes_with_every_row_exactly_once(
    tmp_path, plugin, capsys
):
    suite = hp.tiny_suite_file(tmp_path / "tiny.json", samplers=["ula", hp.SLOW], seeds=[0, 1, 2])
    out = tmp_path / "res"
    rows_path = out / "tiny" / ROWS_FILE
    cmd = [sys.executable, "-m", "benchmarks", "run", "--suite-file", str(suite)]
    cmd += ["--out", str(out), "--no-progress", "--import", "tests.helpers.harness_register"]
    cmd += ["--jobs", "1"]  # serial, as the counts below assume

    # 1. Ctrl-C (KeyboardInterrupt in the main thread, as Python's SIGINT handler raises it):
    # exact and ula of seed 0 finish at once; harness_slow takes ~0.75 s per run
    def press_ctrl_c() -> None:
        while not (rows_path.exists() and len(load_rows(rows_path).rows) >= 2):
            time.sleep(0.01)
        _thread.interrupt_main()

    # interrupt_main() only simulates SIGINT when Python handles it; a process started in the
    # background of a non-interactive shell (as CI may be) inherits SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        watcher = threading.Thread(target=press_ctrl_c, daemon=True)
        watcher.start()
        code = main(
            ["run", "--suite-file", str(suite), "--out", str(out), "--no-progress", "--jobs", "1"]
        )
        assert code == 130
        watcher.join(timeout=5)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "interrupted: finished rows are saved" in capsys.readouterr().err
    first = load_rows(rows_path).rows
    assert 2 <= len(first) < 9 and (out / "tiny" / "leaderboard.md").exists()
    # 2. SIGKILL (no clean-up at all) while the resumed run is going
    proc = _start_and_wait([*cmd, "--resume"], rows_path, len(first) + 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    before = load_rows(rows_path).rows
    assert len(first) < len(before) < 9, "the kill must land mid-suite"
    # 3. resume to the end
    main(
        [
            "run",
            "--suite-file",
            str(suite),
            "--out",
            str(out),
            "--no-progress",
            "--resume",
            "--jobs",
            "1",
        ]
    )
    after = load_rows(rows_path)
    assert after.clean
    _keys_exactly_once(after.rows, 9)
    assert {json.dumps(r, sort_keys=True) for r in before} <= {
        json.dumps(r, sort_keys=True) for r in after.rows
    }, "finished rows were rewritten"


def test_resume_repairs_truncated_and_corrupted_rows_file_via_cli(tmp_path, plugin, capsys):
    rows = _run(tmp_path, "res", "--jobs", "1")
    rows_path = tmp_path / "res" / "tiny" / ROWS_FILE
    lines = rows_path.read_text().splitlines(keepends=True)
    # a garbage line in the middle, the last row cut by a crash mid-write
    damaged = lines[:2] + ["{not json\n"] + lines[2:-1] + [lines[-1][:40]]
    rows_path.write_text("".join(damaged))
    suite = tmp_path / "tiny.json"
    capsys.readouterr()
    main(
        [
            "run",
            "--suite-file",
            str(suite),
            "--out",
            str(tmp_path / "res"),
            "--resume",
            "--jobs",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert "truncated last line" in err and "unreadable lines [3]" in err
    assert "resume: 5 of 6 units already recorded" in err
    quarantined = list(rows_path.parent.glob(f"{ROWS_FILE}.corrupt-*"))
    assert len(quarantined) == 1 and quarantined[0].read_text() == "".join(damaged)
    after = load_rows(rows_path)
    assert after.clean
    _keys_exactly_once(after.rows, 6)
    assert _by_key(after.rows) == _by_key(rows)


def test_mixtures_dmps_svgd_identical_serial_jobs_and_dask_by_default(tmp_path):
    """Default settings (no --threads): one thread per run on every backend, so a mixtures
    suite with DMPS and SVGD gives the same rows serially, with --jobs 2 and on a Dask
    LocalCluster (the issue measured 39 of 128 values differing before threads were pinned)."""
    distributed = pytest.importorskip("distributed")
    spec = {
        "name": "mix_small",
        "base": "mixtures",
        "targets": ["ring8", "unbalanced2"],
        "samplers": ["dmps", "svgd"],
        "seeds": [0, 1],
        "n_particles": 64,
        "n_steps": 20,
        "n_train": 200,
        "n_reference": 200,
        "metrics": ["sinkhorn", "mmd_gaussian"],
    }
    suite = tmp_path / "mix_small.json"
    suite.write_text(json.dumps(spec), encoding="utf-8")

    def rows(out: str, *extra: str) -> list[dict]:
        argv = ["run", "--suite-file", str(suite), "--out", str(tmp_path / out), "--no-progress"]
        assert main([*argv, *extra]) == 0
        report = load_rows(tmp_path / out / "mix_small" / ROWS_FILE)
        assert report.clean
        return report.rows

    serial = rows("serial", "--jobs", "1")
    assert len(serial) == 2 * 2 * 3 * 2 and all(r["status"] == "ok" for r in serial)
    jobs = rows("jobs", "--jobs", "2")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        dask = rows("dask", "--scheduler", cluster.scheduler_address)
    ref = _by_key(serial)
    for other in (jobs, dask):
        got = _by_key(other)
        assert got.keys() == ref.keys()
        for k in ref:
            assert got[k] == ref[k], k  # values bit for bit
