"""The serial-vs-parallel study compares a really serial run with a ``--jobs N`` one:
``run``'s default is one worker per usable core, so the serial run must ask for one."""

from __future__ import annotations

from pathlib import Path

from benchmarks.studies import parallel_timing


def test_the_serial_run_asks_for_one_job_and_the_parallel_for_n(monkeypatch, tmp_path):
    calls: list[tuple[str, list[str]]] = []

    def fake_run(suite: str, out: Path, extra: list[str]) -> float:
        calls.append((out.name, list(extra)))
        rows = out / suite
        rows.mkdir(parents=True, exist_ok=True)
        (rows / "runs.jsonl").write_text("")
        return 2.0 if out.name == "serial" else 1.0

    monkeypatch.setattr(parallel_timing, "_run", fake_run)
    argv = ["--suites", "smoke", "--jobs", "3", "--out", str(tmp_path), "--", "--seeds", "0"]
    assert parallel_timing.main(argv) == 0
    serial, parallel = calls
    assert serial == ("serial", ["--seeds", "0", "--jobs", "1"])
    assert parallel == ("jobs", ["--seeds", "0", "--jobs", "3"])
    table = (tmp_path / "parallel_timing.md").read_text(encoding="utf-8")
    assert "| smoke | 0 | 2.0 | 1.0 | 2.00 | 0 | 0 |" in table


def test_dask_timings_serial_mode_asks_for_one_job(monkeypatch, tmp_path):
    from benchmarks.studies import dask_timing

    calls: list[tuple[str, list[str]]] = []

    def fake_run(out: Path, argv: list[str]) -> float:
        calls.append((out.name, list(argv)))
        (out / dask_timing.SUITE).mkdir(parents=True, exist_ok=True)
        (out / dask_timing.SUITE / "runs.jsonl").write_text("")
        return 1.0

    monkeypatch.setattr(dask_timing, "_run", fake_run)
    monkeypatch.setattr(dask_timing, "_allocator_rows", lambda: [])
    monkeypatch.setattr(dask_timing, "_unit_seconds", lambda rows: (0.0, "-"))
    assert dask_timing.main(["--modes", "serial,jobs", "--out", str(tmp_path)]) == 0
    (serial, serial_argv), (jobs, jobs_argv) = calls
    assert (serial, jobs) == ("serial", "jobs")
    assert serial_argv[-2:] == ["--jobs", "1"] and jobs_argv[-2:] == ["--jobs", "2"]
