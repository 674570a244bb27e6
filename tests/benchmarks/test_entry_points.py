"""What a newcomer meets at the command line: every entry point answers ``--help`` without
touching a file; a misspelt suite, sampler or init is refused before torch is imported;
the names read from source agree with the registry; missing data is loud (stderr names the
data set and the fix, exit status 3); a run ends with a short summary."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import build_parser, main
from benchmarks.options import MISSING_DATA_STATUS
from benchmarks.presentation.run_summary import (
    MISSING_DATA_PREFIX,
    default_jobs,
    end_summary,
    estimate,
    fully_missing,
    headline_top,
    missing_data_report,
    status_counts,
    usable_cores,
)
from benchmarks.static_names import declared_samplers
from samplers.base import available_samplers

REPO = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".benchmarks"}


def _entry_modules() -> list[str]:
    """Every ``python -m`` entry point under benchmarks/: packages with a ``__main__.py`` and
    modules with a ``__main__`` guard (found, not listed, so a new study is covered)."""
    found = []
    for path in sorted((REPO / "benchmarks").rglob("*.py")):
        if '__name__ == "__main__"' not in path.read_text(encoding="utf-8"):
            continue
        parts = path.relative_to(REPO).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__main__" else parts))
    return found


def _snapshot() -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every file of the working tree (caches and .git aside)."""
    out = {}
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            st = os.stat(os.path.join(root, name))
            out[os.path.relpath(os.path.join(root, name), REPO)] = (st.st_mtime_ns, st.st_size)
    return out


def test_entry_points_are_found():
    modules = _entry_modules()
    assert {"benchmarks", "benchmarks.presentation.readme", "benchmarks.studies"} <= set(modules)
    assert len([m for m in modules if m.startswith("benchmarks.studies.")]) >= 10


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # runpy, re-run
def test_every_entry_point_answers_help_without_side_effects(monkeypatch, capsys):
    """``python -m MODULE --help`` (and every subcommand's) prints a usage and exits 0;
    no file of the working tree is created, changed or removed (``readme --help`` used to
    rewrite README.md)."""
    monkeypatch.chdir(REPO)
    before = _snapshot()
    subcommands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    calls = [(m, ["--help"]) for m in _entry_modules()]
    calls += [("benchmarks", [name, "--help"]) for name in subcommands]
    assert {"run", "tune", "list", "leaderboard", "report"} <= set(subcommands)
    for module, argv in calls:
        monkeypatch.setattr(sys, "argv", [module, *argv])
        with pytest.raises(SystemExit) as stop:
            runpy.run_module(module, run_name="__main__", alter_sys=False)
        assert stop.value.code in (0, None), f"{module} {argv}: exit {stop.value.code}"
        assert "usage:" in capsys.readouterr().out, f"{module} {argv}: no usage printed"
    after = _snapshot()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"--help changed files: {changed[:10]}"


def test_top_level_help_lists_every_subcommand_and_run_every_init(capsys):
    from benchmarks.suites import INIT_SCHEMES

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "{run,tune,verify,list,leaderboard,report}" in text and "Exit status" in text
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ",".join(INIT_SCHEMES) in text and "--print-leaderboard" in text


def test_misspelt_names_are_refused_before_torch_is_imported():
    """The suite, sampler and init names are checked from torch-free sources (the suite
    table, the samplers' source files, INIT_SCHEMES): the error comes at once."""
    code = (
        "import runpy, sys\n"
        "for argv in (['--suite', 'nosuch'], ['--suite', 'smoke', '--samplers', 'nosuch'],\n"
        "             ['--suite', 'smoke', '--inits', 'nosuch']):\n"
        "    sys.argv = ['benchmarks', 'run', *argv]\n"
        "    try:\n"
        "        runpy.run_module('benchmarks', run_name='__main__')\n"
        "    except SystemExit as exc:\n"
        "        print('EXIT', exc.code)\n"
        "print('HEAVY', sorted(m for m in ('torch', 'ot', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.count("EXIT 2") == 3, out.stdout + out.stderr
    assert "HEAVY []" in out.stdout
    assert "unknown suite 'nosuch'" in out.stderr
    assert "unknown sampler(s) ['nosuch']" in out.stderr
    assert "unknown init scheme(s) ['nosuch']" in out.stderr


def test_sampler_names_read_from_source_match_the_registry():
    assert declared_samplers() == sorted(available_samplers())


def _row(target: str, status: str, message: str = "", metric: str = "m1") -> dict:
    return {"target": target, "status": status, "message": message, "metric": metric}


MISSING = f"{MISSING_DATA_PREFIX} DataMissingError: place x.gz in /d (or pass --data-root DIR)"


def test_missing_data_summary_and_which_targets_count():
    rows = []
    for _ in range(3):  # every run of 'gone' skipped for missing data, 1 of 3 of 'partly'
        rows += [_row("gone", "skipped", MISSING), _row("gone", "skipped", MISSING, "m2")]
        rows += [_row("fine", "ok"), _row("fine", "ok", metric="m2")]
    rows += [_row("partly", "skipped", MISSING), _row("partly", "ok"), _row("partly", "ok")]
    rows.append(_row("other", "skipped", "needs a score"))  # skipped, not for data
    assert fully_missing(rows, ["gone", "fine", "partly", "other"]) == ["gone"]
    assert status_counts(rows) == {"ok": 5, "skipped": 5}  # one row per run (first metric)
    report = missing_data_report(rows)
    assert report[0].startswith("missing data: 2 data set(s)")
    assert report[1] == "  gone: 3 of 3 runs skipped. place x.gz in /d (or pass --data-root DIR)"
    assert report[2].startswith("  partly: 1 of 3 runs skipped.")
    assert missing_data_report([_row("fine", "ok")]) == []


def test_run_with_missing_data_exits_3_and_says_why_on_stderr(tmp_path, capsys):
    """A requested target whose files are absent: every run skipped, the fix on stderr
    (files, --data-root, the Debian package), exit status 3; stdout has the short summary,
    not the whole leaderboard."""
    empty = tmp_path / "no_data"
    empty.mkdir()
    argv = ["run", "--suite", "latents", "--targets", "fashion_mnist_latent"]
    argv += ["--samplers", "kde", "--seeds", "0", "--data-root", str(empty)]
    argv += ["--out", str(tmp_path / "out"), "--no-progress", "--jobs", "1"]
    assert main(argv) == MISSING_DATA_STATUS
    out, err = capsys.readouterr()
    assert "missing data: 1 data set(s)" in err and "fashion_mnist_latent: 2 of 2 runs" in err
    assert "--data-root" in err and "apt-get install" in err and "exit status 3" in err
    assert "runs: 2 (skipped 2)" in out and "leaderboard:" in out
    assert "## Environment" not in out  # the whole leaderboard only with --print-leaderboard


def test_data_root_option_wins_over_an_earlier_set_data_root(tmp_path, monkeypatch, capsys):
    """A process that set a data root before (the studies do) and then runs the CLI in
    process: --data-root is the one searched, and the earlier setting comes back after."""
    import datasets.latents

    real = tmp_path / "elsewhere"
    real.mkdir()
    monkeypatch.setitem(datasets.latents._SETTINGS, "data_root", real)
    empty = tmp_path / "no_data"
    empty.mkdir()
    argv = ["run", "--suite", "latents", "--targets", "fashion_mnist_latent"]
    argv += ["--samplers", "kde", "--seeds", "0", "--data-root", str(empty)]
    argv += ["--out", str(tmp_path / "out"), "--no-progress", "--jobs", "1"]
    assert main(argv) == MISSING_DATA_STATUS
    assert str(empty) in capsys.readouterr().err  # searched there, not in `real`
    assert datasets.latents.get_data_root() == real


def test_headline_top_and_end_summary(tmp_path):
    table = ["| sampler | t1 | t2 | wall s/run | avg rank | ranked cols |", "|---" * 6 + "|"]
    table += [f"| s{i} | 1 | 2 | 0.1 | {i}.00 | 2/2 |" for i in range(9)]
    board = tmp_path / "leaderboard.md"
    board.write_text("# Leaderboard\n\ncaption\n\n" + "\n".join(table) + "\n\n## More\n")
    top = headline_top(board.read_text())
    assert top[0].split() == ["sampler", "wall", "s/run", "avg", "rank", "ranked", "cols"]
    assert [ln.split()[0] for ln in top[1:7]] == [f"s{i}" for i in range(6)]
    assert top[-1] == "  ... 3 more row(s)" and all(ln == ln.rstrip() for ln in top)
    lines = end_summary(board, [_row("t1", "ok"), _row("t1", "failed")], tmp_path)
    assert lines[0] == "runs: 2 (failed 1, ok 1)"
    assert str(board) in lines[1]


def test_default_jobs_and_estimate(tmp_path):
    assert default_jobs(10_000) == usable_cores() and default_jobs(1) == 1
    assert estimate(tmp_path, 10, 2) is None  # no run.json: no estimate
    (tmp_path / "run.json").write_text(
        '{"command": "python -m benchmarks run --suite x --jobs 2", "wall_seconds": 600,'
        ' "units": 100}'
    )
    # 600 s x 2 workers / 100 units = 12 core-s per unit; 100 units on 4 workers: 300 s
    assert estimate(tmp_path, 100, 4).startswith("estimate: about 5 min for 100 units on 4")
    # serial record (no --jobs): 6 core-s per unit; 10 units on 1 worker: 60 s
    (tmp_path / "run.json").write_text(
        '{"command": "python -m benchmarks run --suite x", "wall_seconds": 600, "units": 100}'
    )
    assert estimate(tmp_path, 10, 1).startswith("estimate: about 60 s for 10 units on 1")


def test_tune_writes_under_runs_unless_told_results():
    """A plain ``tune`` must not overwrite the committed results/<suite>/tuned.json."""
    assert build_parser().parse_args(["tune", "--suite", "smoke"]).out == "runs"
    args = build_parser().parse_args(["tune", "--suite", "smoke", "--out", "results"])
    assert args.out == "results"


def test_tune_continue_needs_the_tuned_file_it_continues(tmp_path, capsys):
    """``tune --continue`` reuses <out>/<suite>/tuned.json: without one it stops with one
    error line before any fit, and it refuses --samplers (it keeps the file's samplers)."""
    assert main(["tune", "--suite", "smoke", "--continue", "--out", str(tmp_path)]) == 2
    assert re.search(r"error: --continue: .*cannot be read", capsys.readouterr().err)
    argv = ["--suite", "smoke", "--continue", "--samplers", "ula", "--out", str(tmp_path)]
    assert main(["tune", *argv]) == 2
    assert "take no --samplers" in capsys.readouterr().err
    assert not any(tmp_path.rglob("tuning_trials.jsonl"))


def test_tune_continue_with_nothing_to_run_says_unchanged(tmp_path, capsys):
    """Idempotent from the command line: a second ``tune --continue`` runs no fit, leaves
    tuned.json byte for byte as it was and says "unchanged", not "wrote"."""
    common = ["--suite", "smoke", "--budget", "2", "--seeds", "1000", "--jobs", "1"]
    assert main(["tune", *common, "--samplers", "ula", "--out", str(tmp_path)]) == 0
    tuned = tmp_path / "smoke" / "tuned.json"
    written = tuned.read_bytes()
    assert "fits to run" in capsys.readouterr().err  # the first tuning ran its fits
    assert main(["tune", *common, "--continue", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert f"unchanged {tuned}" in out.out and "wrote" not in out.out
    assert "fits to run" not in out.err
    assert tuned.read_bytes() == written
