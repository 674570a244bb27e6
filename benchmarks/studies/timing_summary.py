"""Turn pytest-benchmark JSON files into ``results/benchmarks/summary.md``.

    python -m benchmarks.studies.timing_summary --run    # run the timing suite, then summarise
    python -m benchmarks.studies.timing_summary --spectral   # the DMPS benchmarks, then summarise
    python -m benchmarks.studies.timing_summary          # summarise results/benchmarks/*.json

``--run`` first executes ``pytest tests/bench/test_bench_X.py --benchmark-only
--benchmark-json results/benchmarks/X.json`` for the samplers, baselines, latents and metrics
benchmarks (:data:`RUN_FILES`; see those modules for the sizes).
One table per benchmark group: median and mean ± std of the wall time per call, rounds,
sizes and device, with the machine and versions each file was recorded on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.execution.environment import REPO_ROOT, git_commit
from benchmarks.execution.provenance import produced_by

DEFAULT_DIR = REPO_ROOT / "results" / "benchmarks"
RUN_FILES = {
    "samplers.json": ("tests/bench/test_bench_samplers.py",),
    "baselines.json": ("tests/bench/test_bench_baselines.py",),
    "latents.json": ("tests/bench/test_bench_latents.py",),
    "metrics.json": ("tests/bench/test_bench_metrics.py",),
}
"""``--run``: each JSON file and the benchmark modules it records (minutes on 2 cores)."""
SPECTRAL_FILES = {
    "spectral.json": ("tests/bench/test_bench_dmps.py", "tests/bench/test_bench_sparse_dmps.py")
}
"""``--spectral``: DMPS's dense and sparse fits (N = 20,000 and 60,000) and transport steps
(about 15 minutes on 2 cores)."""
MADE_BY = {
    name: f"pytest {' '.join(tests)} --benchmark-only --benchmark-json results/benchmarks/{name}"
    for name, tests in {**RUN_FILES, **SPECTRAL_FILES}.items()
}
"""The command behind each JSON file this module runs (shown in the summary)."""


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _case(b: dict[str, Any]) -> str:
    info = b.get("extra_info", {})
    name = info.get("sampler") or info.get("metric") or b["name"]
    return str(name)


def _sizes(b: dict[str, Any]) -> str:
    info = b.get("extra_info", {})
    keys = ("n_particles", "n_train", "dim", "n")
    return ", ".join(f"{k}={info[k]}" for k in keys if k in info)


def _first(data: dict[str, Any], key: str) -> str:
    return next(
        (
            str(b["extra_info"][key])
            for b in data.get("benchmarks", [])
            if key in b.get("extra_info", {})
        ),
        "?",
    )


def _devices(data: dict[str, Any]) -> str:
    devs = {b.get("extra_info", {}).get("device_name") for b in data.get("benchmarks", [])}
    return ", ".join(sorted(d for d in devs if d)) or "?"


def summarise(files: list[Path], command: str) -> str:
    """The markdown summary of pytest-benchmark JSON ``files``."""
    lines = [
        "# Timing suite",
        "",
        produced_by(command),
        "",
        "Wall time per call (ms): median, mean ± std over rounds. `sampler step` = one "
        "`Sampler.run(x0, 1)` after fitting (fit excluded); `metric` = one debiased "
        "Sinkhorn divergence. Sizes and method: `tests/bench/test_bench_samplers.py`.",
        "",
    ]
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        mi = data.get("machine_info", {})
        ci = data.get("commit_info", {})
        cpu = mi.get("cpu", {})
        lines += [
            f"## {path.name}",
            "",
            f"- recorded: {data.get('datetime', '?')}, commit "
            + (
                str(ci["code_commit"])  # dirty only where code differed (git_commit's rule)
                if "code_commit" in ci
                else f"{str(ci.get('id', '?'))[:12]}{' (dirty)' if ci.get('dirty') else ''}"
            ),
            *([f"- made by: `{MADE_BY[path.name]}`"] if path.name in MADE_BY else []),
            f"- machine: {cpu.get('brand_raw', mi.get('processor', '?'))}, "
            f"{cpu.get('count', '?')} cores, Python {mi.get('python_version', '?')}, "
            f"torch {_first(data, 'torch')}, device(s) {_devices(data)}",
            "",
        ]
        groups: dict[str, list[dict[str, Any]]] = {}
        for b in data.get("benchmarks", []):
            groups.setdefault(b.get("group") or "other", []).append(b)
        for group, benches in groups.items():
            lines += [
                f"### {group}",
                "",
                "| case | device | sizes | torch threads | median ms | mean ± std ms | rounds |",
                "|---|---|---|---|---|---|---|",
            ]
            for b in sorted(benches, key=lambda b: (_case(b), b["name"])):
                st = b["stats"]
                info = b.get("extra_info", {})
                dev, threads = info.get("device", "?"), info.get("torch_threads", "?")
                lines.append(
                    f"| {_case(b)} | {dev} | {_sizes(b)} | {threads} | {_ms(st['median'])} | "
                    f"{_ms(st['mean'])} ± {_ms(st['stddev'])} | {st['rounds']} |"
                )
            lines.append("")
    if not files:
        lines.append("_no benchmark JSON files found_")
    return "\n".join(lines) + "\n"


def record_code_commit(path: Path, commit: str) -> None:
    """Add ``commit_info.code_commit`` (:func:`~benchmarks.execution.environment.git_commit`:
    ``+dirty`` only when code outside ``results/`` differs) to a pytest-benchmark JSON file,
    whose own ``dirty`` counts the results written by the studies run before it."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("commit_info", {})["code_commit"] = commit
    path.write_text(json.dumps(data, indent=4) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.studies.timing_summary", description=__doc__
    )
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder of JSON files")
    p.add_argument("--run", action="store_true", help="run the timing suite first")
    p.add_argument(
        "--spectral", action="store_true", help="run the DMPS fit and step benchmarks first"
    )
    args = p.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    flags = [f for f, on in (("--run", args.run), ("--spectral", args.spectral)) if on]
    command = " ".join(["python -m benchmarks.studies.timing_summary", *flags])
    runs = {**(RUN_FILES if args.run else {}), **(SPECTRAL_FILES if args.spectral else {})}
    for name, tests in runs.items():
        code_commit = git_commit()  # before the run writes its JSON into results/
        cmd = [sys.executable, "-m", "pytest", *tests, "--benchmark-only"]
        cmd += ["--benchmark-json", str(args.dir / name), "-q"]
        rc = subprocess.call(cmd, cwd=REPO_ROOT)
        if rc != 0:
            print(f"timing suite failed (exit {rc}): {' '.join(tests)}", file=sys.stderr)
            return rc
        record_code_commit(args.dir / name, code_commit)
    files = sorted(args.dir.glob("*.json"))
    out = args.dir / "summary.md"
    out.write_text(summarise(files, command), encoding="utf-8")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
