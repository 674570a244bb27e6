"""Fault injection: every fault ends in a completed run or one ``error:`` line with exit
status 2, with no row lost and nothing moved or overwritten before the run could start.

Faults: a full disk (a small tmpfs where this process may mount one, and always a simulated
ENOSPC so CI covers it without mount rights), a read-only output folder (a read-only mount,
and a simulated EROFS), an unreachable Dask scheduler, a ``--jobs`` worker process killed
mid-unit, typed bad values in rows and suite files, a hard stop in a worker thread, and the
temporary file of a killed write.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.execution.runner import RunSpec, execute_unit
from benchmarks.execution.store import ROWS_FILE, load_rows
from tests.helpers import harness_plugin as hp

SW = "sliced_wasserstein"  # a second metric, so a configuration has more than one row


def _suite(tmp_path: Path, **overrides) -> Path:
    spec = {"metrics": [hp.METRIC, SW], "samplers": ["ula"], **overrides}
    return hp.tiny_suite_file(tmp_path / "tiny.json", **spec)


def _argv(suite: Path, out: Path, *extra: str) -> list[str]:
    # serial unless a test asks for workers: the plug-ins are registered in this process,
    # and `run` starts one worker per core by default
    jobs = [] if "--jobs" in extra or "--scheduler" in extra else ["--jobs", "1"]
    return ["run", "--suite-file", str(suite), "--out", str(out), "--no-progress", *jobs, *extra]


def _errors(err: str) -> list[str]:
    """The stderr lines that report an error (warnings and notes are other lines)."""
    return [line for line in err.splitlines() if "error" in line.lower()]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _keys(rows: list[dict]) -> list[tuple[str, str]]:
    return sorted((r["config_key"], r["metric"]) for r in rows)


# --- full disk ------------------------------------------------------------------------------


def _fail_appends_after(monkeypatch, n_ok: int) -> None:
    """``os.write`` in the row store fails with ENOSPC from the (n_ok + 1)-th append on,
    after writing the first 100 bytes of it (what a filling disk does)."""
    import benchmarks.execution.store as store

    real_write = os.write
    calls = {"n": 0}

    def write(fd: int, data) -> int:
        calls["n"] += 1
        if calls["n"] <= n_ok:
            return real_write(fd, data)
        if calls["n"] == n_ok + 1:
            return real_write(fd, bytes(data[:100]))  # a short write; the next one fails
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store.os, "write", write)


def test_simulated_full_disk_mid_run_keeps_whole_rows_and_resume_completes(
    tmp_path, plugin, monkeypatch, capsys
):
    suite, out = _suite(tmp_path), tmp_path / "res"
    assert main(_argv(suite, out)) == 0
    complete = load_rows(out / "tiny" / ROWS_FILE).rows
    assert len(complete) == 8  # 2 seeds x (exact, ula) x 2 metrics
    capsys.readouterr()
    with monkeypatch.context() as m:
        _fail_appends_after(m, 2)  # two units saved, the third hits the full disk
        assert main(_argv(suite, out)) == 2
    err = capsys.readouterr().err
    (line,) = _errors(err)
    assert line.startswith("error: writing to") and "No space left on device" in line
    assert "2 of 4 units saved" in line and "--resume" in line
    cut = load_rows(out / "tiny" / ROWS_FILE)
    assert cut.clean and len(cut.rows) == 4  # whole rows only: no half line left behind
    assert main(_argv(suite, out, "--resume")) == 0
    err = capsys.readouterr().err
    assert "resume: 2 of 4 units already recorded; 2 to run:" in err
    done = load_rows(out / "tiny" / ROWS_FILE)
    assert done.clean and _keys(done.rows) == _keys(complete)


def test_cut_rows_file_is_repaired_and_missing_metric_rows_are_named_and_recomputed(
    tmp_path, plugin, capsys
):
    """A rows file cut inside a unit's rows (a crash or a full disk mid-line): the half line
    is set aside, and a configuration that kept some of its metric rows gets only the
    missing ones, scored from its saved particles (or by rerunning its unit without them)."""
    suite = _suite(tmp_path)
    for out, extra, how, recorded in (
        (tmp_path / "particles", (), "scored again from particles/", "4 of 4"),
        (tmp_path / "none", ("--no-particles",), "unit rerun (no saved particles)", "3 of 4"),
    ):
        assert main(_argv(suite, out, *extra)) == 0
        path = out / "tiny" / ROWS_FILE
        complete = load_rows(path).rows
        lines = path.read_bytes().splitlines(keepends=True)
        last = json.loads(lines[-1])
        assert last["sampler"] == "ula" and last["metric"] == SW  # written last
        path.write_bytes(b"".join(lines[:-1]) + lines[-1][:50])  # cut mid-line
        capsys.readouterr()
        assert main(_argv(suite, out, *extra, "--resume")) == 0
        err = capsys.readouterr().err
        assert "found a truncated last line" in err and "kept 7 valid rows" in err
        assert f"resume: {recorded} units already recorded" in err
        assert f"ula/seed1 gaussian: missing ['{SW}']: {how}" in err
        rows = load_rows(path).rows
        assert _keys(rows) == _keys(complete)
        again = next(r for r in rows if r["config_key"] == last["config_key"] and r["metric"] == SW)
        if extra:  # the unit ran again: the same row bit for bit
            assert again["value"] == last["value"]
        else:  # scored on the float32 particles: equal to float32 rounding (~1e-7)
            assert again["value"] == pytest.approx(last["value"], rel=1e-5)
            assert json.loads(again["metric_info"])["rescored_from"] == last["particles_file"]


def test_missing_metric_row_with_a_damaged_particle_file_reruns_its_unit(tmp_path, plugin, capsys):
    suite, out = _suite(tmp_path), tmp_path / "res"
    assert main(_argv(suite, out)) == 0
    path = out / "tiny" / ROWS_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    path.write_bytes(b"".join(lines[:-1]))  # the last metric row lost
    (out / "tiny" / last["particles_file"]).write_bytes(b"not a zip file")
    capsys.readouterr()
    assert main(_argv(suite, out, "--resume")) == 0
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.endswith("; unit rerun")]
    assert line.startswith("resume: harness_gauss/ula/seed1: ValueError")  # np.load's words
    rows = load_rows(path).rows
    again = next(r for r in rows if r["config_key"] == last["config_key"] and r["metric"] == SW)
    assert again["value"] == last["value"] and len(rows) == 8


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    cmd = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)]
    return subprocess.run(cmd, capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_real_full_disk_on_a_small_tmpfs(tmp_path, plugin, capsys):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "size=200k"):
        pytest.skip("cannot mount a tmpfs here (not root or no mount rights)")
    try:
        suite, out = _suite(tmp_path, seeds=[0, 1, 2]), disk / "res"
        # fill the disk up to 4 pages: the start check (1 page, removed), environment.json
        # and suite.json (1 page each) fit, and the rows file fills its 2 pages mid-run
        filler = disk / "filler"
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler.write_bytes(b"\0" * (free - 4 * 4096))
        assert main(_argv(suite, out, "--no-particles")) == 2
        (line,) = _errors(capsys.readouterr().err)
        assert "No space left on device (errno 28)" in line and "--resume" in line
        cut = load_rows(out / "tiny" / ROWS_FILE)
        assert cut.clean and 0 < len(cut.rows) < 12
        filler.unlink()
        assert main(_argv(suite, out, "--no-particles", "--resume")) == 0
        done = load_rows(out / "tiny" / ROWS_FILE)
        assert done.clean and len(done.rows) == 12
        assert {r["status"] for r in done.rows} == {"ok"}
    finally:
        _umount(disk)


def test_full_disk_before_the_start_moves_nothing(tmp_path, plugin, monkeypatch, capsys):
    suite, out = _suite(tmp_path), tmp_path / "res"
    assert main(_argv(suite, out)) == 0
    before = _snapshot(out)
    import benchmarks.execution.suite_run as execution

    def full(folder: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / ".write-probe"))

    monkeypatch.setattr(execution, "check_writable", full)
    capsys.readouterr()
    assert main(_argv(suite, out)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: cannot write to") and "No space left on device" in line
    assert _snapshot(out) == before  # rows not moved aside, leaderboard and run.json intact


# --- read-only folder -----------------------------------------------------------------------


def test_read_only_out_is_one_error_line(tmp_path, plugin, monkeypatch, capsys):
    suite, out = _suite(tmp_path), tmp_path / "res"
    assert main(_argv(suite, out)) == 0
    before = _snapshot(out)
    import benchmarks.execution.locking as locking

    real = locking.FileLock

    def read_only(path: str, *a, **k):  # filelock opens the lock file for writing
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    monkeypatch.setattr(locking, "FileLock", read_only)
    capsys.readouterr()
    assert main(_argv(suite, out)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: cannot write to") and "Read-only file system" in line
    assert _snapshot(out) == before
    monkeypatch.setattr(locking, "FileLock", real)
    assert main(_argv(suite, out, "--resume")) == 0


def test_read_only_mount(tmp_path, plugin, capsys):
    disk = tmp_path / "ro"
    if not _mount_tmpfs(disk, "size=1m"):
        pytest.skip("cannot mount a tmpfs here (not root or no mount rights)")
    try:
        suite, out = _suite(tmp_path), disk / "res"
        assert main(_argv(suite, out, "--no-particles")) == 0
        before = _snapshot(out)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        capsys.readouterr()
        for extra in ((), ("--resume",)):
            assert main(_argv(suite, out, *extra)) == 2
            (line,) = capsys.readouterr().err.strip().splitlines()
            assert "Read-only file system (errno 30)" in line
        new = tmp_path / "ro" / "elsewhere"  # a folder that cannot even be made
        assert main(_argv(suite, new)) == 2
        assert "Read-only file system" in capsys.readouterr().err
        assert _snapshot(out) == before
    finally:
        _umount(disk)


# --- unreachable scheduler ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_moves_nothing(tmp_path, plugin, monkeypatch, capsys):
    pytest.importorskip("distributed")
    suite, out = _suite(tmp_path), tmp_path / "res"
    assert main(_argv(suite, out)) == 0
    before = _snapshot(out)
    monkeypatch.setenv("PARTICLE_BENCH_CONNECT_TIMEOUT", "2")
    address = f"tcp://127.0.0.1:{_free_port()}"
    capsys.readouterr()
    t0 = time.perf_counter()
    assert main(_argv(suite, out, "--scheduler", address)) == 2
    wall = time.perf_counter() - t0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: cannot reach the Dask scheduler at {address} within 2 s")
    assert "PARTICLE_BENCH_CONNECT_TIMEOUT" in line
    assert _snapshot(out) == before  # no runs.previous-*, no "_no rows_" board, no run.json
    assert wall < 20  # the 2 s timeout, not Dask's default 30 s


# --- lost --jobs worker ---------------------------------------------------------------------


def test_killed_jobs_worker_costs_at_most_its_unit(tmp_path, plugin, capsys):
    """Two units whose worker process dies in the fit: one every time, one only the first
    time (a grid over ``once_file``); the run goes on and finishes."""
    died = str(tmp_path / "died")
    suite = _suite(
        tmp_path,
        samplers=[hp.CRASH],
        seeds=[0],
        sampler_params={hp.CRASH: {"host_pid": os.getpid()}},
        grid={hp.CRASH: {"once_file": ["", died]}},
    )
    out = tmp_path / "res"
    argv = _argv(suite, out, "--jobs", "2", "--import", "tests.helpers.harness_register")
    assert main(argv) == 0  # the run goes on
    rows = load_rows(out / "tiny" / ROWS_FILE)
    assert rows.clean and len(rows.rows) == 6  # (exact + 2 crash settings) x 2 metrics
    status = {(r["sampler"], json.loads(r["params"]).get("once_file")): r for r in rows.rows}
    assert status[("exact", None)]["status"] == "ok"
    # died once, then ran again alone and finished
    assert status[(hp.CRASH, died)]["status"] == "ok" and Path(died).exists()
    # died, ran again alone, died again: recorded as failed with the reason
    always = status[(hp.CRASH, "")]
    assert always["status"] == "failed"
    assert always["message"].startswith("worker lost: its worker process died 2 times")
    assert "TerminatedWorkerError" in always["message"]


# --- typed bad values -----------------------------------------------------------------------


def test_wrongly_typed_rows_are_set_aside_and_recomputed(tmp_path, plugin, capsys):
    suite, out = _suite(tmp_path), tmp_path / "res"
    assert main(_argv(suite, out, "--no-particles")) == 0
    path = out / "tiny" / ROWS_FILE
    rows = load_rows(path).rows
    complete = {(r["config_key"], r["metric"]): r["value"] for r in rows}
    bad = [
        {"value": "0.0x1"},  # a string value
        {"value": None},  # no value on an ok, converged run
        {"rep": "0"},  # a string where an integer belongs
        {"value": True},
    ]
    damaged = [
        {**r, **b} for r, b in zip([r for r in rows if r["sampler"] == "ula"], bad, strict=True)
    ]
    keep = [r for r in rows if r["sampler"] != "ula"]
    path.write_text("".join(json.dumps(r) + "\n" for r in keep + damaged))
    report = load_rows(path)
    assert len(report.rows) == 4 and list(report.bad_types) == [5, 6, 7, 8]
    assert report.bad_types[5] == "value '0.0x1' is not a number"
    assert report.bad_types[6] == "value null on a run marked ok"
    assert report.bad_types[7] == "rep '0' is not an integer"
    capsys.readouterr()
    assert main(["leaderboard", "--suite", "tiny", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "rows with wrongly typed fields (line 5: value '0.0x1' is not a number" in captured.err
    assert main(_argv(suite, out, "--no-particles", "--resume")) == 0
    err = capsys.readouterr().err
    assert "rows with wrongly typed fields" in err and "original saved as" in err
    assert "resume: 2 of 4 units already recorded; 2 to run: harness_gauss/ula/seed0" in err
    final = load_rows(path)
    assert final.clean
    assert {(r["config_key"], r["metric"]): r["value"] for r in final.rows} == complete
    assert len(list(path.parent.glob(f"{ROWS_FILE}.corrupt-*"))) == 1


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("n_particles", "50", "n_particles = '50': expected a positive integer, got '50'"),
        ("n_steps", 20.5, "n_steps = 20.5: expected a positive integer, got 20.5"),
        ("seeds", ["0"], "seeds = ['0']: expected distinct comma-separated integers >= 0"),
        ("n_reference", True, "n_reference = True: expected an integer >= 2"),
        ("n_reference", 1, "n_reference = 1: expected an integer >= 2, got 1"),
        ("n_train", "some", "n_train = 'some': expected an integer >= 2 or 'all'"),
        ("n_train", 1, "n_train = 1: expected an integer >= 2 or 'all'"),
        ("name", "../../elsewhere", "name = '../../elsewhere': expected a folder name"),
        ("name", "a/b", "name = 'a/b': expected a folder name"),
        ("targets", [1], "targets = [1]: expected a non-empty list of names"),
        ("description", 3, "description = 3: expected a string"),
    ],
)
def test_suite_file_values_are_type_checked(tmp_path, plugin, key, value, message, capsys):
    suite, out = _suite(tmp_path, **{key: value}), tmp_path / "res"
    assert main(_argv(suite, out)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: suite file {suite}: {message}"), line
    assert not out.exists()


# --- hard stop in a worker thread -----------------------------------------------------------


def test_hard_stop_in_a_worker_thread_names_the_limit(plugin):
    spec = RunSpec(
        suite="tiny",
        target=hp.TARGET,
        sampler=hp.SLOW,
        rep=0,
        n_particles=8,
        n_steps=2,
        n_train=32,
        n_reference=32,
        inits=("gaussian",),
        metrics=(hp.METRIC,),
        suite_seed=0,
        params={"fit_sleep": 60.0, "cooperative": False},
        timeout=0.5,
    )
    out = []
    worker = threading.Thread(target=lambda: out.append(execute_unit(spec)))  # as on Dask
    t0 = time.perf_counter()
    worker.start()
    worker.join(30)
    assert not worker.is_alive() and time.perf_counter() - t0 < 20
    (row,) = out[0].rows
    assert row["status"] == "timeout"
    assert row["message"] == (
        "fit: timed out after the 0.5 s limit (--timeout 0.5): "
        "interrupted by the hard wall-time stop"
    )


# --- a killed write's temporary file --------------------------------------------------------


def test_temporary_files_of_a_killed_run_are_removed(tmp_path, plugin, capsys):
    suite, out = _suite(tmp_path), tmp_path / "res"
    folder = out / "tiny"
    (folder / "particles").mkdir(parents=True)
    stale = [folder / ".leaderboard.md.tmp-99999.md", folder / "particles" / ".x.npz.tmp-7.npz"]
    for p in stale:
        p.write_text("half a fi")
    assert main(_argv(suite, out)) == 0
    assert not any(p.exists() for p in stale)
    assert "removed .leaderboard.md.tmp-99999.md, left by a run that was killed" in (
        capsys.readouterr().err
    )
    assert not [p for p in folder.rglob("*") if ".tmp-" in p.name]
