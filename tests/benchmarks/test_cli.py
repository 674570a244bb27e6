"""``python -m benchmarks run`` refuses bad options before any run starts: one ``error:``
line on stderr, exit status 2, and no suite folder written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import _checked_suite, build_parser, main
from benchmarks.options import USAGE_STATUS, UsageError, check_value
from benchmarks.suites import SUITES

REPO = Path(__file__).resolve().parents[2]

CASES = {
    "param_not_a_number": (
        ["--param", "dmps.step_fraction=notanumber"],
        "dmps.step_fraction='notanumber': expected a number",
    ),
    "param_negative": (["--param", "dmps.step_fraction=-0.2"], "dmps.step_fraction=-0.2"),
    "param_not_integer": (["--param", "dmps.n_modes=2.5"], "expected an integer"),
    "param_unknown_key": (["--param", "dmps.nokey=1"], "unknown parameter(s) ['nokey']"),
    "param_malformed": (["--param", "dmps.step_size"], "expected SAMPLER.PARAMETER=VALUE"),
    "seeds_letters": (["--seeds", "a"], "argument --seeds: expected comma-separated integers"),
    "seeds_negative": (["--seeds", "0,-1"], "argument --seeds"),
    "data_root_missing": (
        ["--data-root", "/nonexistent"],
        "argument --data-root: '/nonexistent' is not an existing folder",
    ),
    "unknown_sampler": (["--samplers", "ula,nosuch"], "unknown sampler(s) ['nosuch']"),
    "unknown_target": (["--targets", "nosuch"], "unknown target(s) ['nosuch']"),
    "unknown_init": (["--inits", "sideways"], "unknown init scheme(s) ['sideways']"),
    "jobs_zero": (["--jobs", "0"], "argument --jobs: expected a positive integer, got '0'"),
    "jobs_text": (["--jobs", "two"], "argument --jobs: expected a positive integer"),
    "timeout_negative": (["--timeout", "-5"], "argument --timeout: expected finite seconds > 0"),
    "timeout_text": (["--timeout", "soon"], "argument --timeout: expected seconds > 0"),
    "timeout_nan": (["--timeout", "nan"], "argument --timeout"),
    "curve_every_negative": (["--curve-every", "-1"], "argument --curve-every"),
    "particles_zero": (["--particles", "0"], "argument --particles"),
    "device_unknown": (["--device", "tpu"], "--device 'tpu'"),
    "tuned_missing": (["--tuned", "/nonexistent/tuned.json"], "no tuned settings at"),
    # values of the right type that the sampler's own rules refuse: these used to pass the
    # up-front check and fail in every run's fit, with exit status 0
    "param_sampler_rule": (["--param", "ula.step_size=0"], "ula: step_size must be a positive"),
    "param_not_a_choice": (["--param", "ula.score=bogus"], "ula: score must be one of"),
    "param_grid_value": (["--param", "mmd_flow.momentum=0.5,1.0"], "mmd_flow: momentum must"),
    "param_twice": (["--param", "ula.step_size=0.1", "--param", "ula.step_size=0.2"], "twice"),
    "samplers_repeated": (["--samplers", "ula,ula"], "expected distinct names"),
    "train_size_one": (["--train-size", "1"], "expected an integer >= 2 or 'all'"),
}


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI in process; assert status 2 and one stderr line; return that line."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == USAGE_STATUS, err
    assert len(err.splitlines()) == 1, err
    assert "error:" in err and "Traceback" not in err
    return err


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_option_is_refused_before_any_run(name, tmp_path, capsys):
    extra, message = CASES[name]
    argv = ["run", "--suite", "smoke", "--out", str(tmp_path), *extra]
    assert message in _refused(argv, capsys)
    assert not (tmp_path / "smoke").exists(), "a run started before the refusal"


TUNE_CASES = {
    "unknown_suite": (["--suite", "nosuch"], "unknown suite 'nosuch'"),
    "budget_zero": (["--budget", "0"], "argument --budget: expected a positive integer"),
    "jobs_zero": (["--jobs", "0"], "argument --jobs: expected a positive integer"),
    "threads_text": (["--threads", "two"], "argument --threads: expected a positive integer"),
    "steps_zero": (["--steps", "0"], "argument --steps: expected a positive integer"),
    "seeds_text": (["--seeds", "a"], "argument --seeds: expected comma-separated integers"),
    "seeds_repeated": (["--seeds", "1000,1000"], "expected distinct"),
    "seeds_evaluated": (["--seeds", "0"], "repetitions the smoke leaderboard evaluates"),
    "unknown_sampler": (["--samplers", "ula,nosuch"], "unknown sampler(s) ['nosuch']"),
    "unknown_retune": (["--retune", "nosuch"], "unknown sampler(s) ['nosuch']"),
    "unknown_target": (["--targets", "nosuch"], "unknown target(s) ['nosuch']"),
    "unknown_init": (["--inits", "sideways"], "unknown init scheme(s) ['sideways']"),
}


@pytest.mark.parametrize("name", sorted(TUNE_CASES))
def test_bad_tune_option_is_refused_before_any_fit(name, tmp_path, capsys):
    """``tune`` keeps ``run``'s contract: one ``error:`` line, exit status 2, nothing
    written (a misspelt target used to end in a traceback after the suite was loaded)."""
    extra, message = TUNE_CASES[name]
    argv = ["tune", "--suite", "smoke", "--out", str(tmp_path), *extra]
    if extra[0] == "--suite":
        argv = ["tune", *extra, "--out", str(tmp_path)]
    assert message in _refused(argv, capsys)
    assert not any(tmp_path.iterdir()), "tuning started before the refusal"


def _suite_file(tmp_path: Path, **spec: object) -> Path:
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"name": "mine", "base": "smoke", **spec}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"metrics": ["sinkhorn", "nosuch_metric"]}, "unknown metric(s) ['nosuch_metric'] in"),
        ({"samplers": ["ula", "nosuch"]}, "unknown sampler(s) ['nosuch'] in"),
        ({"targets": ["nosuch"]}, "unknown target(s) ['nosuch'] in"),
        ({"sampler_params": {"ula": {"step_size": "big"}}}, "ula.step_size='big'"),
        ({"sampler_params": {"ula": {"step_size": 0.0}}}, "ula: step_size must be a positive"),
        ({"grid": {"svgd": {"step_size": [0.1, "x"]}}}, "svgd.step_size='x'"),
        ({"sampler_params": {"nosuch": {"a": 1}}}, "unknown sampler(s) ['nosuch'] in"),
    ],
)
def test_bad_suite_file_is_refused(spec, message, tmp_path, capsys):
    argv = ["run", "--suite-file", str(_suite_file(tmp_path, **spec)), "--out", str(tmp_path)]
    assert message in _refused(argv, capsys)
    assert not (tmp_path / "mine").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nope", "JSONDecodeError"),
        ("[1]", "AttributeError"),
        ("{}", "KeyError: 'chosen'"),
        ('{"chosen": [1]}', "'chosen' is a list"),
        (None, "IsADirectoryError"),
    ],
)
def test_unreadable_tuned_file_is_refused(content, message, tmp_path, capsys):
    """``--tuned`` on a file tune did not write gave a raw traceback (exit status 1)."""
    path = tmp_path / "tuned.json"
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
    out = tmp_path / "out"
    err = _refused(["run", "--suite", "smoke", "--tuned", str(path), "--out", str(out)], capsys)
    assert "is not a tuned.json that tune wrote" in err and message in err
    assert not out.exists()


def test_suite_file_of_another_kind_is_named_once(tmp_path, capsys):
    (tmp_path / "suite.txt").write_text("x")
    (tmp_path / "dir.toml").mkdir()
    err = _refused(["run", "--suite-file", str(tmp_path / "suite.txt")], capsys)
    assert err.count("suite file") == 1 and "expected a .toml or .json file" in err
    err = _refused(["run", "--suite-file", str(tmp_path / "dir.toml")], capsys)
    assert err.endswith("is not a file")


def test_suite_and_suite_file_are_exclusive(tmp_path, capsys):
    assert "exactly one of --suite" in _refused(["run", "--out", str(tmp_path)], capsys)


def test_unknown_suite_and_missing_suite_file(tmp_path, capsys):
    assert "unknown suite 'nosuch'" in _refused(["run", "--suite", "nosuch"], capsys)
    missing = str(tmp_path / "none.toml")
    assert "does not exist" in _refused(["run", "--suite-file", missing], capsys)


def test_param_refusal_as_a_subprocess_names_the_parameter(tmp_path):
    """The case of the issue, end to end: it used to exit 0 after every DMPS run failed."""
    argv = ["run", "--suite", "smoke", "--param", "dmps.step_fraction=notanumber"]
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", *argv, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == USAGE_STATUS
    assert out.stderr.strip().splitlines() == [
        "error: dmps.step_fraction='notanumber': expected a number (default 0.2)"
    ]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", sorted(SUITES))
def test_every_named_suite_passes_the_checks(name):
    args = build_parser().parse_args(["run", "--suite", name])
    suite, samplers = _checked_suite(args)
    assert suite.name == name and samplers


def test_good_values_pass_and_types_follow_the_default():
    check_value("x.a", 0.5, 0.2)
    check_value("x.a", 3, 0.2)  # an int where a float is documented is fine
    check_value("x.a", 0.5, "auto")  # a mode parameter that also takes a number
    check_value("x.a", "median", None)
    check_value("x.a", True, False)
    with pytest.raises(UsageError, match="true or false"):
        check_value("x.a", 1, False)
    with pytest.raises(UsageError, match="finite"):
        check_value("x.a", float("inf"), 0.2)


def test_help_does_not_import_heavy_libraries():
    """``--help`` and ``list suites`` answer without torch, POT, scikit-learn or pandas."""
    code = (
        "import runpy, sys\n"
        "for argv in (['--help'], ['run', '--help'], ['verify', '--help'], ['list', 'suites']):\n"
        "    sys.argv = ['benchmarks', *argv]\n"
        "    try:\n"
        "        runpy.run_module('benchmarks', run_name='__main__')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('torch', 'ot', 'sklearn', 'pandas', 'matplotlib')\n"
        "print('HEAVY', sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    assert "suites:" in out.stdout and "manifolds" in out.stdout


def test_leaderboard_of_unreadable_rows_says_why(tmp_path, capsys):
    """A runs.jsonl whose every line is unreadable said "run the suite first"."""
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "runs.jsonl").write_text('garbage\n{"a": 1}\n')
    err = _refused(["leaderboard", "--suite", "x", "--out", str(tmp_path)], capsys)
    assert "no readable rows" in err and "unreadable lines [1]" in err
    err = _refused(["leaderboard", "--suite", "y", "--out", str(tmp_path)], capsys)
    assert "run the suite first" in err
