"""``python -m benchmarks verify``: a committed folder's rows are made again and compared.

The comparison rule is checked on hand-made rows (what counts as identical, close,
different, missing and extra); the whole command on a small real suite folder, first
untouched (every row identical), then with one committed value, one particle file and one
tuned setting changed by hand (each one found and named, exit status 4)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmarks.__main__ import main
from benchmarks.execution.store import ROWS_FILE, load_rows, write_rows
from benchmarks.execution.suite_run import run_suite
from benchmarks.execution.verify import (
    RESCORED_ATOL,
    compare_particles,
    compare_rows,
    prepare_scratch,
    suite_folders,
    suite_from_record,
    verify_folder,
)
from benchmarks.options import MISSING_DATA_STATUS
from benchmarks.suites import SUITES
from benchmarks.verify_cli import DIFFERS_STATUS


def _row(key: str = "k1", metric: str = "sinkhorn", value: float = 0.25, **kw) -> dict:
    base = {
        "config_key": key,
        "metric": metric,
        "value": value,
        "status": "ok",
        "sampler": "ula",
        "target": "ring8",
        "rep": 0,
        "fit_seconds": 1.0,
        "sample_seconds": 2.0,
        "commit": "aaaa",
        "blas": "openblas x1",
        "torch": "2.0",
        "pot": "0.9",
        "device": "cpu",
        "metric_info": json.dumps({"eps": 0.1, "solve_seconds": 0.3}),
        "sampler_info": "{}",
    }
    return {**base, **kw}


def test_times_and_environment_do_not_count_but_are_reported():
    old = [_row()]
    new = [
        _row(
            fit_seconds=9.0,
            commit="bbbb",
            blas="mkl x1",
            torch="2.1",
            metric_info=json.dumps({"eps": 0.1, "solve_seconds": 7.0}),
        )
    ]
    found = compare_rows(old, new)
    assert (found.identical, found.compared, found.reproduced) == (1, 1, True)
    # the commit always moves and is not an environment difference; torch is one
    assert found.environment == {"torch": ("2.0", "2.1")}


def test_a_value_one_ulp_apart_is_different_unless_a_tolerance_is_given():
    bumped = math.nextafter(0.25, 1.0)
    exact = compare_rows([_row()], [_row(value=bumped)])
    assert exact.identical == 0 and len(exact.different) == 1 and not exact.reproduced
    assert "value 0.25 -> 0.25000000000000006" in exact.different[0][1]
    loose = compare_rows([_row()], [_row(value=bumped)], rtol=1e-12)
    assert len(loose.close) == 1 and loose.reproduced
    assert loose.worst["sinkhorn"] == pytest.approx(2.2e-16, rel=0.01)
    # a tolerance never excuses a moved text (status, message) or a moved flag
    moved = compare_rows([_row()], [_row(value=bumped, status="diverged")], rtol=1.0)
    assert len(moved.different) == 1 and "status" in moved.different[0][1]


def test_a_tolerance_covers_the_numbers_inside_the_info_fields_too():
    # measured with an AVX2 code path on this AVX-512 machine: every row whose value moved
    # had its solver's eps, marginal errors and the like moved by the same rounding, so a
    # tolerance on the value alone would call every such row different
    def row(eps: float, value: float, flags: list, solver: str = "dense") -> dict:
        info = {"eps": eps, "errors": {"xy": [eps / 10, 1e-6]}, "path": solver}
        return _row(value=value, metric_info=json.dumps(info), sampler_info=json.dumps(
            {"flags": flags, "converged": True}
        ))  # fmt: skip

    old = row(0.1, 0.25, [])
    near = row(0.1 * (1 + 1e-9), 0.25 * (1 - 1e-9), [])
    assert len(compare_rows([old], [near]).different) == 1  # bit for bit by default
    assert len(compare_rows([old], [near], rtol=1e-8).close) == 1
    assert len(compare_rows([old], [near], rtol=1e-10).different) == 1  # beyond the tolerance
    # inside the info: a number beyond the tolerance, a text, a list's length or a flag fail
    for other in (
        row(0.1 * (1 + 1e-6), 0.25, []),
        row(0.1, 0.25, [], solver="lazy"),
        row(0.1, 0.25, ["clipped"]),
    ):
        assert len(compare_rows([old], [other], rtol=1e-8).different) == 1
    shorter_info = {"eps": 0.1, "errors": {"xy": [0.01]}, "path": "dense"}
    shorter = {**old, "metric_info": json.dumps(shorter_info)}
    assert len(compare_rows([old], [shorter], rtol=1.0).different) == 1
    # a boolean is not a number: True -> False is not within any tolerance
    flipped = {**old, "sampler_info": json.dumps({"flags": [], "converged": False})}
    assert len(compare_rows([old], [flipped], rtol=10.0, atol=10.0).different) == 1


def test_a_changed_message_is_named_where_it_parts_not_only_by_its_field():
    reason = "non-finite or |x| > 1e+08 particles at step 1"
    old = _row(
        value=float("nan"),
        status="diverged",
        message=f"start outside support (21 of 300 x0 points): {reason}",
        sampler_info=json.dumps({"diverged_reason": reason}),
    )
    new = {
        **old,
        "message": old["message"].replace(" or |x| > 1e+08", ""),
        "sampler_info": json.dumps({"diverged_reason": "non-finite particles at step 1"}),
    }
    ((key, what),) = compare_rows([old], [new]).different
    assert "value" not in what  # NaN and NaN: the value did not move
    assert (
        'sampler_info.diverged_reason "non-finite or |x| > 1e+08 particles at step 1" -> '
        '"non-finite particles at step 1"' in what
    )
    assert "message ...s): non-finite or |x|" in what


def test_nan_equals_nan_and_missing_and_extra_keys_are_named():
    old = [_row("a", value=float("nan")), _row("b"), _row("c")]
    new = [_row("a", value=float("nan")), _row("b"), _row("d")]
    found = compare_rows(old, new)
    assert found.identical == 2
    assert found.missing == [("c", "sinkhorn")] and found.extra == [("d", "sinkhorn")]
    assert not found.reproduced


def test_a_row_rescored_from_float32_particles_may_move_by_the_rescored_tolerance():
    info = json.dumps({"eps": 0.1, "rescored_from": "particles/x.npz"})
    old = [_row(metric_info=info)]
    within = compare_rows(old, [_row(value=0.25 + 0.5 * RESCORED_ATOL)])
    assert len(within.close) == 1 and within.reproduced
    beyond = compare_rows(old, [_row(value=0.25 + 2 * RESCORED_ATOL)])
    assert len(beyond.different) == 1
    # a row scored in its run gets no such allowance
    assert len(compare_rows([_row()], [_row(value=0.25 + 0.5 * RESCORED_ATOL)]).different) == 1


def test_negative_tolerances_are_refused():
    with pytest.raises(ValueError, match="tolerances"):
        compare_rows([], [], rtol=-1.0)


def test_particle_files_are_compared_array_by_array(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "particles").mkdir(parents=True)
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.savez(a / "particles/same.npz", x=x)
    np.savez(b / "particles/same.npz", x=x.copy())
    np.savez(a / "particles/moved.npz", x=x)
    np.savez(b / "particles/moved.npz", x=x + np.float32(0.5))
    np.savez(b / "particles/gone.npz", x=x)
    found = compare_particles(
        a, b, ["particles/same.npz", "particles/moved.npz", "particles/gone.npz"]
    )
    assert found.identical == 1
    assert found.different == [("particles/moved.npz", 0.5)]
    assert found.missing == ["particles/gone.npz"]
    # the rows' tolerance applies to the particles element by element: 0.5 on values 0..5
    # is within atol 0.5, not within rtol 0.1 (the first element is 0)
    names = ["particles/same.npz", "particles/moved.npz"]
    loose = compare_particles(a, b, names, atol=0.5)
    assert (loose.identical, loose.close, loose.different) == (
        1,
        [("particles/moved.npz", 0.5)],
        [],
    )
    assert compare_particles(a, b, names, rtol=0.1).different == [("particles/moved.npz", 0.5)]


def test_a_scratch_folder_not_made_by_verify_is_never_emptied(tmp_path):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not made by verify"):
        prepare_scratch(keep)
    assert (keep / "notes.txt").read_text() == "keep me"
    scratch = tmp_path / "scratch"
    prepare_scratch(scratch)
    (scratch / "old.jsonl").write_text("{}")
    prepare_scratch(scratch)  # made by verify: emptied
    assert not (scratch / "old.jsonl").exists()


@pytest.fixture
def committed(tmp_path):
    """A small real suite folder: the smoke suite's exact and ULA on ring8, both inits."""
    threads = torch.get_num_threads()
    suite = replace(SUITES["smoke"], targets=("ring8",), tuned={"ula": {"ring8": {"cap": {}}}})
    run_suite(suite, out_root=tmp_path / "results", samplers=["exact", "ula"], progress=False)
    torch.set_num_threads(threads)
    return tmp_path / "results" / "smoke"


def test_an_untouched_folder_reproduces_row_for_row(committed, tmp_path):
    assert suite_folders(tmp_path / "results") == [committed]
    assert suite_from_record(committed).targets == ("ring8",)
    found = verify_folder(committed, tmp_path / "work")
    n_rows = len(load_rows(committed / ROWS_FILE).rows)
    assert found.reproduced and found.rows.identical == n_rows > 0
    assert found.particles.identical >= 2 and not found.particles.different


def test_one_sampler_is_checked_with_the_exact_row_and_exact_alone_runs_alone(committed, tmp_path):
    rows = load_rows(committed / ROWS_FILE).rows
    per = {n: sum(r["sampler"] == n for r in rows) for n in ("exact", "ula")}
    ula = verify_folder(committed, tmp_path / "a", samplers=["ula"])
    assert ula.reproduced and ula.rows.identical == per["exact"] + per["ula"]
    exact = verify_folder(committed, tmp_path / "b", samplers=["exact"])
    assert exact.reproduced and exact.rows.identical == per["exact"]
    made = {r["sampler"] for r in load_rows(exact.scratch / ROWS_FILE).rows}
    assert made == {"exact"}


def test_a_changed_value_particle_file_or_setting_is_found_and_named(committed, tmp_path, capsys):
    rows = load_rows(committed / ROWS_FILE).rows
    victim = next(r for r in rows if r["sampler"] == "ula" and r["metric"] == "sinkhorn")
    victim["value"] = victim["value"] * (1 + 1e-12)
    write_rows(committed / ROWS_FILE, rows)
    npz = committed / victim["particles_file"]
    with np.load(npz) as f:
        arrays = {k: f[k] for k in f.files}
    first = next(iter(arrays))
    arrays[first] = arrays[first] + np.float32(1e-3)
    np.savez(npz, **arrays)
    argv = ["verify", str(committed), "--work", str(tmp_path / "work"), "--no-progress"]
    assert main(argv) == DIFFERS_STATUS
    out = capsys.readouterr().out
    assert "DIFFERS" in out
    assert f"different: ula ring8/{victim['init']} rep 0 [sinkhorn]: value " in out
    assert f"particles differing: {victim['particles_file']}" in out
    # a tuned setting changed after the run plans other configurations: missing and extra
    record = json.loads((committed / "suite.json").read_text())
    record["tuned"] = {"ula": {"ring8": {"gaussian": {"step_size": 0.01}}}}
    (committed / "suite.json").write_text(json.dumps(record))
    found = verify_folder(committed, tmp_path / "work2", samplers=["ula"])
    assert found.rows.missing and found.rows.extra and not found.reproduced


def test_the_report_names_its_command_commit_and_counts(committed, tmp_path):
    report = tmp_path / "reproduction.md"
    argv = [
        "verify",
        "--all",
        "--results",
        str(tmp_path / "results"),
        "--work",
        str(tmp_path / "w"),
    ]
    assert main([*argv, "--no-progress", "--report", str(report)]) == 0
    text = report.read_text()
    n_rows = len(load_rows(committed / ROWS_FILE).rows)
    assert text.startswith("# Committed suite results, run again\n\nProduced by: `")
    assert f"**{n_rows:,} of {n_rows:,} rows identical** over 1 folders" in text
    assert "## Differences" not in text


def test_a_folder_whose_data_are_not_on_disk_is_reported_not_checked(committed, tmp_path, capsys):
    """Without its data a re-run skips every run: that is no difference in the code, so the
    folder is "not checked", the missing files and the fix are named, and the exit status
    is run's missing-data status (3), not 4."""
    record = json.loads((committed / "suite.json").read_text())
    record["targets"] = ["fashion_mnist_latent"]
    (committed / "suite.json").write_text(json.dumps(record))
    empty = tmp_path / "no_data"
    empty.mkdir()
    argv = ["verify", str(committed), "--work", str(tmp_path / "w"), "--samplers", "exact"]
    assert main([*argv, "--data-root", str(empty), "--no-progress"]) == MISSING_DATA_STATUS
    out = capsys.readouterr().out
    assert "NOT CHECKED: its data are not on disk" in out
    assert "fashion_mnist_latent: " in out and "--data-root" in out


def test_a_target_the_committed_run_also_lacked_data_for_compares_like_any_other(tmp_path):
    """The committed latents folders hold CIFAR-10's runs as skipped (its files are on no
    registry here): a re-run that skips them too reproduces those rows; only data the
    committed run had make a folder "not checked"."""
    from datasets.latents import data_root_setting

    threads = torch.get_num_threads()
    empty = tmp_path / "no_data"
    empty.mkdir()
    suite = replace(SUITES["smoke"], targets=("fashion_mnist_latent",))
    with data_root_setting(empty):
        run_suite(suite, out_root=tmp_path / "results", samplers=["ula"], progress=False)
        found = verify_folder(tmp_path / "results" / "smoke", tmp_path / "w")
    torch.set_num_threads(threads)
    assert {r["status"] for r in load_rows(found.scratch / ROWS_FILE).rows} == {"skipped"}
    assert not found.data_missing and found.reproduced and found.rows.identical > 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--seeds", "7"], "seed(s) [7] not among"),
        (["--samplers", "svgd"], "no rows of sampler(s) ['svgd']"),
        (["--targets", "circle"], "target(s) ['circle'] not in its suite"),
    ],
)
def test_bad_options_are_refused_before_any_run(committed, tmp_path, capsys, extra, message):
    work = tmp_path / "work"
    assert main(["verify", str(committed), "--work", str(work), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not work.exists()


def test_all_leaves_out_the_folders_an_option_does_not_apply_to(committed, tmp_path, capsys):
    other = tmp_path / "results" / "other"
    other.mkdir()
    for name in ("suite.json", ROWS_FILE):  # a second folder whose suite has another target
        (other / name).write_bytes((committed / name).read_bytes())
    record = json.loads((other / "suite.json").read_text())
    record["targets"] = ["circle"]
    (other / "suite.json").write_text(json.dumps(record))
    argv = ["verify", "--all", "--results", str(tmp_path / "results"), "--no-progress"]
    assert main([*argv, "--work", str(tmp_path / "w"), "--targets", "ring8"]) == 0
    captured = capsys.readouterr()
    assert "1 folder(s) left out" in captured.err and str(other) in captured.err
    assert "smoke (seeds 0): reproduced" in captured.out
    assert main([*argv, "--targets", "no_such_target"]) == 2
    assert "no folder has all of the options' names" in capsys.readouterr().err


def test_a_negative_tolerance_is_refused_by_the_parser(committed, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["verify", str(committed), "--rtol", "-1"])
    assert stop.value.code == 2
    assert "expected a finite number >= 0" in capsys.readouterr().err


def test_a_folder_without_a_suite_record_or_a_work_folder_inside_it_is_refused(
    committed, tmp_path, capsys
):
    assert main(["verify", str(tmp_path)]) == 2
    assert "no suite.json" in capsys.readouterr().err
    assert main(["verify", str(committed), "--work", str(committed / "w")]) == 2
    assert "inside the committed folder" in capsys.readouterr().err
    assert main(["verify"]) == 2
    assert "or --all" in capsys.readouterr().err


@pytest.fixture
def three_seeds(tmp_path):
    """The smoke suite's exact and ULA on ring8 over three seeds (a verdict needs two)."""
    threads = torch.get_num_threads()
    suite = replace(SUITES["smoke"], targets=("ring8",), seeds=(0, 1, 2))
    run_suite(suite, out_root=tmp_path / "results", samplers=["exact", "ula"], progress=False)
    torch.set_num_threads(threads)
    return tmp_path / "results" / "smoke"


def test_verdicts_judges_by_the_calls_not_by_the_bits(three_seeds, tmp_path, capsys):
    folder = three_seeds
    rows = load_rows(folder / ROWS_FILE).rows
    ula = [r for r in rows if r["sampler"] == "ula" and r["metric"] == "sinkhorn"]
    ula[0]["value"] *= 1 + 1e-12  # as another CPU's rounding would move it
    write_rows(folder / ROWS_FILE, rows)
    argv = ["verify", str(folder), "--seeds", "all", "--no-progress"]
    assert main([*argv, "--work", str(tmp_path / "w1")]) == DIFFERS_STATUS  # rows differ
    report = tmp_path / "r.md"
    assert main([*argv, "--work", str(tmp_path / "w2"), "--verdicts", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "verdict same (" in out
    text = report.read_text()
    assert "0 of 1 folders reproduced; the verdict held in 1 of 1." in text
    assert "CPU code path: " in text and "torch CPU kernels " in text
    assert "*close*: only numbers differ (the value and those inside the info fields)" in text
    # the moved value, in seed sd: 1e-12 of a value over the spread of three seeds
    moves = text.split("## Moves per sampler (headline metric, in seed sd)")[1]
    (ula_line,) = [ln for ln in moves.splitlines() if ln.startswith("| ula |")]
    assert 0 < float(ula_line.split("|")[2]) < 1e-9
    assert "| exact | 0 |" in moves

    # committed ULA below exact by c (1 +- 1 %) in every seed, c half exact's smallest
    # value: the paired t test over three seeds calls it better (t ~ 100 on 2 df); the
    # re-run's real ULA is not better than exact draws
    exact = {
        (r["init"], r["rep"]): r["value"]
        for r in rows
        if r["sampler"] == "exact" and r["metric"] == "sinkhorn"
    }
    c = min(exact.values()) / 2
    for r in ula:
        r["value"] = exact[(r["init"], r["rep"])] - c * (1 + 0.01 * (-1) ** r["rep"])
    write_rows(folder / ROWS_FILE, rows)
    assert main([*argv, "--work", str(tmp_path / "w3"), "--verdicts"]) == DIFFERS_STATUS
    moved = [ln for ln in capsys.readouterr().out.splitlines() if "verdict: ula" in ln]
    assert moved and all(": better (p " in ln for ln in moved), moved
