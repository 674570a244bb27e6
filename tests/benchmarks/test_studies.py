"""Every study imports, has a ``main`` and a ``--help``; every committed result file names a
command whose module exists."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import benchmarks.studies as studies

REPO = Path(__file__).resolve().parents[2]
STUDIES = sorted(m.name for m in pkgutil.iter_modules(studies.__path__))


def test_there_are_studies():
    assert len(STUDIES) >= 10


@pytest.mark.parametrize("name", STUDIES)
def test_study_imports_and_has_main(name):
    mod = importlib.import_module(f"benchmarks.studies.{name}")
    assert callable(getattr(mod, "main", None)), f"{name} has no main()"


def test_every_result_file_names_a_command_that_exists():
    """A 'Produced by' line names `python -m MODULE`; MODULE must be importable."""
    missing = []
    for md in sorted((REPO / "results").rglob("*.md")):
        text = md.read_text(encoding="utf-8")
        for module in re.findall(r"python -m ([A-Za-z_][\w.]*)", text):
            if importlib.util.find_spec(module) is None:
                missing.append(f"{md.relative_to(REPO)}: {module}")
    assert not missing, missing


def _suite_outputs() -> set[Path]:
    """Markdown written by ``python -m benchmarks run --suite NAME --out results`` into the
    named suites' folders, tuned (``results/NAME``) and at the defaults
    (``results/untuned/NAME``, ``--untuned``); suite runs nested in study folders are
    studies' outputs."""
    root = REPO / "results"
    return {
        md
        for rows in [*root.glob("*/runs.jsonl"), *root.glob("untuned/*/runs.jsonl")]
        for md in (rows.parent / "leaderboard.md", rows.parent / "images.md")
    }


def test_every_study_result_has_a_refresh_command():
    from benchmarks.studies.__main__ import STUDIES

    outputs = {REPO / out for s in STUDIES for out in s.outputs}
    # hand-written notes (README.md) explain a folder and name their commands themselves
    notes = set((REPO / "results").rglob("README.md"))
    committed = set((REPO / "results").rglob("*.md")) - _suite_outputs() - notes
    assert committed - outputs == set(), "result files without a refresh command"
    # a GPU study's files are committed from a GPU run; until one was lent they may be absent
    gpu_only = {REPO / out for s in STUDIES if s.gpu for out in s.outputs}
    assert outputs - committed - gpu_only == set(), "refresh commands of uncommitted files"
    modules = {s.full_module for s in STUDIES}
    assert {f"benchmarks.studies.{n}" for n in STUDIES_WITH_RESULTS} <= modules
    assert all(importlib.util.find_spec(m) is not None for m in modules)


#: study modules that write a committed result file (every study module)
STUDIES_WITH_RESULTS = [n for n in STUDIES if n != "__main__"]


def test_refresh_all_enumerates_every_study_in_order(monkeypatch, capsys):
    import benchmarks.studies.__main__ as refresh

    ran = []
    monkeypatch.setattr(refresh, "run_study", lambda study: ran.append(study) or 0)
    assert refresh.main(["--all"]) == 0
    assert ran == list(refresh.STUDIES)
    err = capsys.readouterr().err
    assert f"{len(ran)} of {len(ran)} studies refreshed" in err
    assert refresh.main(["--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("    # ")[0] for line in listed] == [s.command for s in ran]
    assert all(f"python -m {s.full_module}" in s.command for s in ran)


#: "Produced by: `COMMAND` at commit C" with C a clean commit (no ``+dirty``)
_PRODUCED_AT = re.compile(r"^Produced by: `[^`\n]+` at commit [0-9a-f]{7,40}(?![+0-9a-f])", re.M)

#: study outputs made before their writers named the commit; each is refreshed by its own
#: study (``python -m benchmarks.studies --list``), which then names it: strict, so a refreshed
#: file that names its commit fails here until it leaves this list
_MADE_BEFORE_COMMITS_WERE_NAMED: set[str] = set()  # more_data.md, the last, refreshed at 9fa46f2


def _study_outputs() -> list[str]:
    from benchmarks.studies.__main__ import STUDIES

    return sorted({out for s in STUDIES for out in s.outputs if (REPO / out).exists()})


@pytest.mark.parametrize(
    "output",
    [
        pytest.param(
            out,
            marks=pytest.mark.xfail(
                strict=True, reason="made before its writer named the commit; refresh it"
            ),
        )
        if out in _MADE_BEFORE_COMMITS_WERE_NAMED
        else out
        for out in _study_outputs()
    ],
)
def test_every_study_result_names_the_clean_commit_that_made_it(output):
    """Committed results name the commit that made them, from a clean tree: a result file
    whose "Produced by" line names no commit (or a dirty one) cannot be traced to code."""
    text = (REPO / output).read_text(encoding="utf-8")
    assert _PRODUCED_AT.search(text), f"{output}: no 'Produced by: `...` at commit C' line"


def test_the_provenance_pattern_reads_what_produced_by_writes():
    from benchmarks.execution.provenance import produced_by

    assert _PRODUCED_AT.search(produced_by("python -m x --y 1", "0123456789ab") + " (notes)")
    assert not _PRODUCED_AT.search(produced_by("python -m x", "0123456789ab+dirty"))
    assert not _PRODUCED_AT.search("Produced by: `python -m x` (git 0123456789ab)")


def test_skip_leaves_out_a_module_and_refuses_unknown_names(monkeypatch, capsys):
    import benchmarks.studies.__main__ as refresh

    ran = []
    monkeypatch.setattr(refresh, "run_study", lambda study: ran.append(study) or 0)
    assert refresh.main(["--all", "--skip", "dmps_more_data", "--skip", "gpu_study"]) == 0
    assert ran == [s for s in refresh.STUDIES if s.module not in {"dmps_more_data", "gpu_study"}]
    with pytest.raises(SystemExit) as err:
        refresh.main(["--all", "--skip", "no_such_study"])
    assert err.value.code == 2
    assert "no_such_study" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        refresh.main(["--only", "dmps_more_data", "--skip", "dmps_more_data"])


def _command_tokens(command: str) -> list[str]:
    """A command's words. A suite run's are compared as a multiset without the environment
    (``run`` records its own argv, options in its own order, ``--jobs`` added:
    ``provenance.command_line``; the thread variables it ran under are in its rows)."""
    words = command.split()
    if words[words.index("python") :][:4] == ["python", "-m", "benchmarks", "run"]:
        return sorted(w for w in words[words.index("python") :] if w not in {"--jobs", "2"})
    return words


def test_each_result_names_the_refresh_command_that_makes_it():
    """The command in a study output's "Produced by" line is the one
    ``python -m benchmarks.studies --list`` gives for that file, so the command written
    next to the numbers is the command that refreshes them."""
    from benchmarks.studies.__main__ import STUDIES

    pattern = re.compile(r"^Produced by: `([^`\n]+)`", re.M)
    wrong = []
    for out in _study_outputs():
        if out in _MADE_BEFORE_COMMITS_WERE_NAMED:
            continue
        named = pattern.search((REPO / out).read_text(encoding="utf-8"))
        commands = [s.command for s in STUDIES if out in s.outputs]
        if not named or _command_tokens(named.group(1)) not in [
            _command_tokens(c) for c in commands
        ]:
            wrong.append(f"{out}: names {named and named.group(1)!r}, made by {commands}")
    assert not wrong, wrong


def test_study_command_names_the_thread_variables_that_are_set(monkeypatch):
    from benchmarks.execution.provenance import study_command

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert study_command("m.x", ["--a", "1 2"]) == "python -m m.x --a '1 2'"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert study_command("m.x", []) == "OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 python -m m.x"


def test_command_lines_name_the_cpu_code_path_variables_that_are_set(monkeypatch):
    # the same seed rounds differently on another instruction set (measured: an AVX2 path
    # on this AVX-512 machine moves 342 of 892 manifolds rows of seed 0), so a result made
    # with a code path forced names it in its command
    from benchmarks.execution.provenance import CODE_PATH_VARIABLES, command_line, study_command

    for name in (*CODE_PATH_VARIABLES, "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert command_line(["run", "--suite", "smoke"]) == "python -m benchmarks run --suite smoke"
    monkeypatch.setenv("NPY_DISABLE_CPU_FEATURES", "X86_V4 AVX512_ICL")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert command_line(["verify", "--all"]) == (
        "ATEN_CPU_CAPABILITY=avx2 NPY_DISABLE_CPU_FEATURES='X86_V4 AVX512_ICL' "
        "python -m benchmarks verify --all"
    )
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert study_command("m.x", []) == (
        "OMP_NUM_THREADS=1 ATEN_CPU_CAPABILITY=avx2 NPY_DISABLE_CPU_FEATURES='X86_V4 AVX512_ICL' "
        "python -m m.x"
    )


def test_the_avx2_code_path_takes_effect_in_a_fresh_interpreter():
    """The study of another CPU's rounding forces torch, numpy and OpenBLAS onto their AVX2
    paths through environment variables; a library that renamed its variable or its
    targets would make the study compare this machine with itself, so each is read back.
    (MKL offers no query of its dispatch; its variable is Intel's documented one.)"""
    import json
    import os
    import subprocess
    import sys

    import torch

    from benchmarks.studies.__main__ import AVX2_CODE_PATH

    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        pytest.skip("not an AVX-512 machine: its own path is the AVX2 one or below")
    probe = (
        "import json, numpy as np, torch, threadpoolctl\n"
        "from numpy._core._multiarray_umath import __cpu_features__ as f\n"
        "blas = [i.get('architecture') for i in threadpoolctl.threadpool_info()"
        " if i.get('internal_api') == 'openblas']\n"
        "print(json.dumps({'torch': torch.backends.cpu.get_cpu_capability(),"
        " 'numpy_v4': f.get('X86_V4'), 'openblas': blas}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **AVX2_CODE_PATH},
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["torch"] == "AVX2"
    assert seen["numpy_v4"] is False  # numpy's AVX-512 group of loops is not dispatched
    assert seen["openblas"] and set(seen["openblas"]) == {"Haswell"}


def test_a_study_that_measures_differences_succeeds_with_its_declared_statuses(monkeypatch):
    """verify exits 4 when rows differ: for the study of another CPU's rounding that is the
    measurement, not a failed refresh; any other status still fails it."""
    import benchmarks.studies.__main__ as refresh

    studies = refresh.STUDIES
    study = next(s for s in studies if "avx2_reproduction" in " ".join(s.outputs))
    assert study.succeeds_with == (0, 4) and study.env == refresh.AVX2_CODE_PATH
    monkeypatch.setattr(refresh, "STUDIES", (study,))
    for status, overall in ((0, 0), (4, 0), (1, 1), (2, 1)):
        monkeypatch.setattr(refresh, "run_study", lambda s, code=status: code)
        assert refresh.main(["--all"]) == overall
    plain = next(s for s in studies if s.succeeds_with == (0,))
    monkeypatch.setattr(refresh, "STUDIES", (plain,))
    monkeypatch.setattr(refresh, "run_study", lambda s: 4)
    assert refresh.main(["--all"]) == 1
