"""Every GPU check of issue 25 in one run that fits a lent GPU's few minutes.

``python -m benchmarks.studies.gpu_study --out DIR`` (``scripts/gpu_check.sh DIR`` installs
the carried wheels first) writes at most 7 files under ``DIR/gpu/``, each with the device
name, the command and the commit, each written as soon as its part ends:

- ``pytest_gpu.txt``: ``pytest -m gpu`` (CPU-vs-CUDA equality of every sampler, the metric);
- ``smoke.md``: the smoke suite on the device and on the CPU (samplers ok, values, times);
- ``manifolds.md``: the manifolds suite, seed 0, on the device and on the CPU (``--jobs``);
- ``metric.md``: the Sinkhorn divergence at n = 5,000 to 100,000, d = 16 (time, peak device
  memory, value) on its streaming and dense paths, geomloss and flash-sinkhorn when installed;
- ``dmps.md``: DMPS fit and step at N = 5,000 and 20,000 (dense kernel; every eigenpair's
  residual) and 60,000 (sparse kernel, d = 6), the sparse step on the device and on the CPU;
- ``summary.md`` (one line a part: status, seconds, headline) and ``log.txt``.

Each part runs in its own try/except within its own time budget (``BUDGET_S``, cut to what
is left of ``--total-s``), so one failure or overrun never loses the others. ``--quick``
shrinks every size for a dry run on a CPU (``--device cpu --quick``: every code path but
the CUDA-only peers runs, in about two minutes on the 2-core machine).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.execution.provenance import produced_by

if TYPE_CHECKING:  # torch is imported where the device is chosen
    import torch

PARTS = ("pytest", "smoke", "metric", "dmps", "manifolds")
"""In the order they run: the issue's acceptance checks first, the longest suite last."""
BUDGET_S = {"pytest": 75, "smoke": 80, "metric": 90, "dmps": 90, "manifolds": 110}
"""Seconds per part on the GPU machine (445 s in all, inside its 8 minutes)."""
TOTAL_S = 450.0
METRIC_N = (5_000, 20_000, 50_000, 100_000)
METRIC_N_QUICK = (500, 1_500)
METRIC_D = 16
REPEAT_BELOW_S = 5.0
"""A metric call faster than this is timed twice and the faster call kept (Triton autotuning
and allocator warm-up at a new size land in the first call)."""
DMPS_DENSE_N = (5_000, 20_000)
DMPS_SPARSE_N = 60_000
DMPS_QUICK = ((600, 1_200), 3_000)
DMPS_MODES = 500
DMPS_PARTICLES = 1_024
REPO = Path(__file__).resolve().parents[2]


class Study:
    """Output folder, clock, budgets and the header every file carries."""

    def __init__(
        self, out: Path, device: str, quick: bool, total_s: float, commit: str | None = None
    ) -> None:
        import torch

        self.dir = out / "gpu"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.device, self.quick = device, quick
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + total_s
        if device.startswith("cuda"):
            name = torch.cuda.get_device_name(torch.device(device))
        else:
            name = f"CPU only ({platform.processor() or platform.machine()})"
        self.device_name = name
        self.command = (
            "python -m benchmarks.studies.gpu_study " + shlex.join(sys.argv[1:])
        ).strip()
        self.header = (
            produced_by(self.command, commit) + " (from `scripts/gpu_check.sh` on the device)\n"
            f"Device: {name}; torch {torch.__version__}; {os.cpu_count()} CPU cores; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
        )
        self.summary: dict[str, str] = {}
        (self.dir / "log.txt").write_text(self.header)

    def log(self, msg: str) -> None:
        line = f"[{time.perf_counter() - self.t0:7.1f} s] {msg}"
        print(line, flush=True)
        with (self.dir / "log.txt").open("a") as fh:
            fh.write(line + "\n")

    def write(self, name: str, body: str) -> None:
        (self.dir / name).write_text(self.header + "\n" + body.rstrip() + "\n")

    def budget(self, part: str) -> float:
        """Seconds this part may take: its own budget, or what is left if less."""
        left = self.deadline - time.perf_counter()
        return max(5.0, min(BUDGET_S[part], left))

    def run(self, part: str, fn: Callable[[float], str]) -> None:
        """fn(budget) -> headline; any exception is logged and recorded, never raised."""
        start = time.perf_counter()
        budget = self.budget(part)
        self.log(f"{part}: start (budget {budget:.0f} s)")
        try:
            headline = fn(budget)
            status = "ok"
        except Exception as err:  # noqa: BLE001 (one part's failure must not stop the others)
            headline = f"{type(err).__name__}: {err}"
            status = "failed"
            self.log(traceback.format_exc())
        seconds = time.perf_counter() - start
        self.summary[part] = f"| {part} | {status} | {seconds:.1f} | {headline} |"
        self.log(f"{part}: {status} in {seconds:.1f} s: {headline}")
        rows = "\n".join(self.summary.values())
        self.write(
            "summary.md",
            "| part | status | seconds | headline |\n|---|---|---|---|\n" + rows + "\n\n"
            f"Total so far: {time.perf_counter() - self.t0:.1f} s.",
        )


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _subprocess(cmd: list[str], timeout: float) -> tuple[int, str, float]:
    """(exit status or 124 on timeout, stdout + stderr, seconds); the child gets this
    process's environment (PYTHONPATH with the carried wheels)."""
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        return res.returncode, res.stdout + res.stderr, time.perf_counter() - t0
    except subprocess.TimeoutExpired as err:
        text = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else err.stdout or ""
        return 124, text + f"\n(timed out after {timeout:.0f} s)", time.perf_counter() - t0


# -- (a) pytest -m gpu ---------------------------------------------------------------------------
def part_pytest(study: Study, budget: float) -> str:
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"]
    rc, text, secs = _subprocess(cmd, budget)
    tail = "\n".join(text.strip().splitlines()[-60:])
    (study.dir / "pytest_gpu.txt").write_text(
        study.header + f"\n$ {shlex.join(cmd[1:])}  (exit {rc}, {secs:.1f} s)\n\n{tail}\n"
    )
    last = text.strip().splitlines()[-1] if text.strip() else "no output"
    return f"exit {rc}: {last}"


# -- (b, c) suites on the device and on the CPU -------------------------------------------------
def _suite_rows(folder: Path, suite: str) -> list[dict[str, Any]]:
    from benchmarks.execution.store import ROWS_FILE, load_rows

    path = folder / suite / ROWS_FILE
    return load_rows(path).rows if path.exists() else []


def _run_suite(
    study: Study, suite: str, device: str, extra: list[str], timeout: float, tmp: Path
) -> tuple[list[dict[str, Any]], str, float]:
    out = tmp / f"{suite}-{device.replace(':', '')}"
    cmd = [sys.executable, "-m", "benchmarks", "run", "--suite", suite, "--device", device]
    cmd += ["--out", str(out), "--no-progress", *extra]
    study.log(f"  {shlex.join(cmd[1:])} (timeout {timeout:.0f} s)")
    rc, text, secs = _subprocess(cmd, timeout)
    if rc != 0:
        study.log(f"  exit {rc}; last lines:\n" + "\n".join(text.strip().splitlines()[-15:]))
    return _suite_rows(out, suite), f"`{shlex.join(cmd[1:])}` exit {rc}", secs


def _by_sampler(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per sampler: statuses, mean headline value over ok rows, fit + sampling seconds."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("metric") != "sinkhorn":
            continue
        s = out.setdefault(r["sampler"], {"status": [], "values": [], "seconds": 0.0})
        s["status"].append(r["status"])
        if r["status"] == "ok" and r.get("value") is not None and math.isfinite(r["value"]):
            s["values"].append(float(r["value"]))
        s["seconds"] += float(r.get("fit_seconds") or 0) + float(r.get("sample_seconds") or 0)
    return out


def _sampler_ok(s: dict[str, Any]) -> bool:
    return "ok" in s["status"] and all(x in ("ok", "skipped") for x in s["status"])


def _suite_table(
    runs: dict[str, tuple[list[dict[str, Any]], str, float]], names: list[str]
) -> tuple[str, dict[str, str]]:
    per = {dev: _by_sampler(rows) for dev, (rows, _, _) in runs.items()}
    samplers = sorted({s for p in per.values() for s in p})
    head = "| sampler | " + " | ".join(
        f"{d}: status | {d}: mean S_eps | {d}: fit+sample s" for d in names
    )
    if len(names) == 2:
        head += " | rel. diff of means"
    lines = [head + " |", "|" + "---|" * (1 + 3 * len(names) + (len(names) == 2))]
    counts = {}
    for dev in names:
        p = per.get(dev, {})
        methods = {k: v for k, v in p.items() if k != "exact"}  # exact: reference draws
        counts[dev] = f"{sum(_sampler_ok(s) for s in methods.values())}/{len(methods)}"
    for name in samplers:
        cells, means = [], []
        for dev in names:
            s = per.get(dev, {}).get(name)
            if s is None:
                cells += ["-", "-", "-"]
                means.append(None)
                continue
            mean = sum(s["values"]) / len(s["values"]) if s["values"] else None
            means.append(mean)
            st = ",".join(f"{k} {s['status'].count(k)}" for k in sorted(set(s["status"])))
            cells += [st, "-" if mean is None else f"{mean:.6g}", f"{s['seconds']:.2f}"]
        if len(names) == 2:
            a, b = means
            cells.append("-" if a is None or b is None or b == 0 else f"{abs(a - b) / abs(b):.2e}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines), counts


def _suite_part(study: Study, budget: float, suite: str, file: str) -> str:
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=f"gpu-study-{suite}-"))
    devices = [study.device] + (["cpu"] if study.device != "cpu" else [])
    cores = os.cpu_count() or 1
    runs = {}
    start = time.perf_counter()
    for i, dev in enumerate(devices):
        extra: list[str] = []
        if suite == "manifolds":
            extra = ["--seeds", "0", "--timeout", "60"]
            jobs = min(4, cores) if dev.startswith("cuda") else min(16, cores)
            extra += ["--jobs", str(jobs)]
            if study.quick:
                extra += ["--samplers", "ula,svgd,dmps,kde", "--targets", "circle"]
        left = budget - (time.perf_counter() - start)
        share = left * (0.6 if i == 0 and len(devices) == 2 else 1.0)
        runs[dev] = _run_suite(study, suite, dev, extra, share, tmp)
    table, counts = _suite_table(runs, devices)
    cmds = "\n".join(f"- {dev}: {cmd}, {secs:.1f} s wall" for dev, (_, cmd, secs) in runs.items())
    ok = "; ".join(f"{dev}: {counts[dev]} samplers ok" for dev in devices)
    study.write(
        file,
        f"# {suite} suite on {' and '.join(devices)}\n\n{cmds}\n\n{ok} (a sampler is ok when "
        "every headline row is ok or skipped for an unmet need, and one is ok).\n\n"
        "Mean S_eps over the sampler's ok rows; seconds = fit + sampling summed over its "
        "rows (metrics excluded).\n\n" + table,
    )
    return ok


# -- (d) the metric ---------------------------------------------------------------------------
def _clouds(n: int, d: int, device: str):

    from common import random

    gen = random.make_generator(n)
    x = random.randn(n, d, generator=gen, device=device)
    y = 1.2 * random.randn(n, d, generator=gen, device=device) + 0.3
    return x, y


def _measure(fn: Callable[[], float], device: str) -> dict[str, Any]:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    _sync(device)
    t0 = time.perf_counter()
    value = fn()
    _sync(device)
    secs = time.perf_counter() - t0
    peak = (
        torch.cuda.max_memory_allocated() / 2**30
        if device.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    return {"seconds": secs, "peak_GB": peak, "value": value}


def _metric_methods(device: str) -> dict[str, Callable]:
    """name -> f(x, y, eps) -> value; peers only where importable (and on CUDA for flash)."""
    from metrics.sinkhorn import sinkhorn_divergence

    def ours(path: str, softmin: str = "torch") -> Callable:
        def run(x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
            res = sinkhorn_divergence(x, y, eps=eps, path=path, softmin_kernel=softmin)
            if not res.converged:
                raise RuntimeError(res.info["message"])
            return res.value

        return run

    methods: dict[str, Callable] = {
        "streaming (ours)": ours("streaming"),
        "dense (ours, POT)": ours("dense"),
    }
    if device.startswith("cuda"):  # the opt-in fused kernel (metrics/triton_softmin.py)
        methods["streaming (ours, fused Triton softmin)"] = ours("streaming", "triton")
    try:
        from geomloss import SamplesLoss as GeomLoss

        def geomloss_run(x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
            # geomloss's p = 2 cost is |x - y|^2 / 2 and eps = blur^2 on it: OT_eps(C) equals
            # 2 x OT_{eps/2}(C / 2), so blur = sqrt(eps / 2) and the value doubles
            loss = GeomLoss(
                "sinkhorn",
                p=2,
                blur=math.sqrt(eps / 2),
                debias=True,
                scaling=0.9,
                backend="tensorized",
            )
            return 2.0 * float(loss(x, y))

        methods["geomloss 0.3.1 (tensorized, float64, scaling 0.9)"] = geomloss_run
    except ImportError:
        pass
    if device.startswith("cuda"):
        try:
            from flash_sinkhorn import SamplesLoss as FlashLoss

            def flash_run(x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
                # full cost |x - y|^2 (half_cost=False), eps = blur^2, float32 inputs
                loss = FlashLoss("sinkhorn", blur=math.sqrt(eps), debias=True)
                return float(loss(x.float(), y.float()))

            methods["flash-sinkhorn 0.4.1 (float32, defaults)"] = flash_run
        except ImportError:
            pass
    return methods


def part_metric(study: Study, budget: float) -> str:
    import torch

    from common.geometry import relative_eps
    from metrics.sinkhorn import DENSE_COPIES

    dev = study.device
    sizes = METRIC_N_QUICK if study.quick else METRIC_N
    start = time.perf_counter()
    methods = _metric_methods(dev)
    free = torch.cuda.mem_get_info()[0] if dev.startswith("cuda") else 8 * 2**30
    # warm-up: CUDA context, POT import, Triton compilation, at a small size
    xw, yw = _clouds(256, METRIC_D, dev)
    for name, fn in methods.items():
        try:
            fn(xw, yw, relative_eps(yw, 0.05))
        except Exception as err:  # noqa: BLE001
            study.log(f"  warm-up {name}: {type(err).__name__}: {err}")
    last: dict[str, tuple[int, float]] = {}
    rows = []
    for n in sizes:
        x, y = _clouds(n, METRIC_D, dev)
        eps = relative_eps(y, 0.05)
        ref = None
        for name, fn in methods.items():
            left = budget - (time.perf_counter() - start)
            if name.startswith("dense") and DENSE_COPIES * n * n * 8 > 0.8 * free:
                rows.append((n, name, "skipped: would not fit in memory", None))
                continue
            if name.startswith("geomloss") and n > 20_000:
                rows.append((n, name, "skipped: tensorized needs n^2 memory (no pykeops)", None))
                continue
            if name in last:
                n0, t0 = last[name]
                guess = t0 * (n / n0) ** 2
                if guess > left:
                    rows.append(
                        (n, name, f"skipped: predicted {guess:.0f} s > {left:.0f} s left", None)
                    )
                    continue
            try:
                m = _measure(lambda fn=fn, x=x, y=y, eps=eps: fn(x, y, eps), dev)
                if m["seconds"] < REPEAT_BELOW_S:  # again, without first-call costs (autotune)
                    m2 = _measure(lambda fn=fn, x=x, y=y, eps=eps: fn(x, y, eps), dev)
                    m = m2 if m2["seconds"] < m["seconds"] else m
            except Exception as err:  # noqa: BLE001
                rows.append((n, name, f"failed: {type(err).__name__}: {str(err)[:120]}", None))
                study.log(f"  n={n} {name}: {type(err).__name__}: {err}")
                continue
            last[name] = (n, m["seconds"])
            if name == "streaming (ours)":
                ref = m["value"]
            m["ref"] = ref  # the streaming value at this n (it runs first)
            rows.append((n, name, "ok", m))
            study.log(
                f"  n={n} {name}: {m['seconds']:.3f} s, {m['peak_GB']:.2f} GB, {m['value']:.10g}"
            )
        _write_metric(study, rows, eps_rule="0.05 x median |y - y'|^2 of y")
    big = [(nm, m) for nn, nm, st, m in rows if m and nn == sizes[-1] and "ours" in nm]
    return (
        "; ".join(
            f"{nm} n = {sizes[-1]:,}: {m['seconds']:.2f} s, {m['peak_GB']:.2f} GB" for nm, m in big
        )
        or "ours did not reach the largest n"
    )


def _write_metric(study: Study, rows: list, eps_rule: str) -> None:
    mem = (
        "peak GPU memory (torch.cuda.max_memory_allocated)"
        if study.device.startswith("cuda")
        else "process peak resident memory (ru_maxrss, monotone over the run)"
    )
    lines = [
        "# Debiased Sinkhorn divergence at scale",
        "",
        f"x ~ N(0, I_d), y ~ 1.2 N(0, I_d) + 0.3 (seeded by n), d = {METRIC_D}, eps = {eps_rule}; "
        "ours in float64 with tol 1e-5 (L1 marginal) and every solve checked; timed after a "
        "warm-up at n = 256 (CUDA context, imports, Triton compilation), the faster of two calls "
        f"where the first took under {REPEAT_BELOW_S:g} s; memory = "
        f"{mem}. rel. diff = |value - streaming (ours)| / |streaming (ours)| at the same n.",
        "",
        "| n | method | status | seconds | peak GB | value | rel. diff |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, name, status, m in rows:
        if m is None:
            lines.append(f"| {n:,} | {name} | {status} | - | - | - | - |")
            continue
        ref = m.get("ref")
        rel = "-" if not ref else f"{abs(m['value'] - ref) / abs(ref):.2e}"
        lines.append(
            f"| {n:,} | {name} | ok | {m['seconds']:.3f} | {m['peak_GB']:.3f} | "
            f"{m['value']:.10g} | {rel} |"
        )
    study.write("metric.md", "\n".join(lines))


# -- (e) DMPS -------------------------------------------------------------------------------------
def _dmps_target(d: int):
    from datasets.base import Target

    class Samples(Target):
        def __init__(self) -> None:
            super().__init__(name=f"gaussian{d}", dim=d, family="mixtures")

        def _sample(self, n, gen):
            import torch

            return torch.randn(n, d, generator=gen, dtype=torch.float64)

    return Samples()


def _dmps_case(study: Study, n: int, d: int, kernel: str, dev: str, cpu_step: bool) -> dict:
    import torch

    from common import random
    from samplers import get_sampler
    from samplers.core.sparse_diffusion_map import _build_tree

    gen = random.make_generator(n)
    X = random.randn(n, d, generator=gen, device=dev)
    x0 = random.randn(DMPS_PARTICLES, d, generator=gen, device=dev)
    modes = min(DMPS_MODES, n // 8)
    extra = {"solver": "block"} if kernel == "sparse" else {}  # the GPU-capable sparse solver
    sampler = get_sampler("dmps", kernel=kernel, n_modes=modes, **extra)
    _sync(dev)
    t0 = time.perf_counter()
    sampler.fit(X, _dmps_target(d))
    _sync(dev)
    fit_s = time.perf_counter() - t0
    info = sampler.fit_info
    sampler.run(x0, 2, seed=0)  # warm-up (kernels, kNN blocks)
    steps = 20
    _sync(dev)
    t0 = time.perf_counter()
    out = sampler.run(x0, steps, seed=0)
    _sync(dev)
    step_s = (time.perf_counter() - t0) / steps
    row = {
        "N": n,
        "d": d,
        "kernel": kernel,
        "device": dev,
        "fit_s": fit_s,
        "step_s": step_s,
        "eig_method": info.get("eig_method", info.get("solver")),
        "eig_max_residual": info.get("eig_max_residual"),
        "eig_converged": info.get("eig_converged"),
        "n_above_tol": sum(r > info.get("eig_tol", 1e-6) for r in info.get("eig_residuals", [])),
        "n_modes": modes,
        "finite": bool(torch.isfinite(out.particles).all()),
    }
    if cpu_step:
        if kernel == "sparse" and sampler.kernel.tree is None:
            sampler.kernel.tree = _build_tree(sampler.kernel.X.cpu())  # the CPU path's KD-tree
        xc = x0.cpu()
        sampler.run(xc, 1, seed=0)
        t0 = time.perf_counter()
        cpu_steps = 3
        sampler.run(xc, cpu_steps, seed=0)
        row["cpu_step_s"] = (time.perf_counter() - t0) / cpu_steps
    return row


def part_dmps(study: Study, budget: float) -> str:
    import torch

    dev = study.device
    dense_n, sparse_n = DMPS_QUICK if study.quick else (DMPS_DENSE_N, DMPS_SPARSE_N)
    torch.set_num_threads(os.cpu_count() or 1)
    cases = [(n, 16, "dense", False) for n in dense_n] + [(sparse_n, 6, "sparse", True)]
    rows, start = [], time.perf_counter()
    for n, d, kernel, cpu_step in cases:
        if time.perf_counter() - start > budget:
            rows.append({"N": n, "kernel": kernel, "error": "skipped: part budget spent"})
            continue
        try:
            rows.append(_dmps_case(study, n, d, kernel, dev, cpu_step))
        except Exception as err:  # noqa: BLE001
            study.log(traceback.format_exc())
            rows.append({"N": n, "kernel": kernel, "error": f"{type(err).__name__}: {err}"})
        study.log(f"  dmps: {rows[-1]}")
        _write_dmps(study, rows)
    sparse = [r for r in rows if r.get("kernel") == "sparse" and "cpu_step_s" in r]
    if sparse:
        r = sparse[0]
        ratio = r["cpu_step_s"] / r["step_s"]
        return (
            f"sparse N = {r['N']:,}: step {r['step_s']:.4f} s, CPU {r['cpu_step_s']:.4f} s "
            f"({ratio:.1f}x)"
        )
    return "sparse case did not finish"


def _write_dmps(study: Study, rows: list[dict]) -> None:
    lines = [
        "# DMPS fit and step on the device",
        "",
        f"X ~ N(0, I_d) training points, {DMPS_PARTICLES:,} particles from N(0, I_d), "
        f"K = min({DMPS_MODES}, N / 8) modes, default DMPS settings otherwise (float64); fit = "
        "kernel + eigensolve (+ float64 refinement when needed); step = mean of 20 steps after "
        "a 2-step warm-up; CPU step = the same fitted sampler with particles on the CPU "
        f"({os.cpu_count()} threads, KD-tree kNN as on a CPU fit), mean of 3 steps.",
        "",
        "| N | d | kernel | fit s | step s | CPU step s | CPU / device | eig method "
        "| max residual | pairs > tol | converged |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['N']:,} | - | {r['kernel']} | {r['error']} |" + " - |" * 7)
            continue
        cpu = r.get("cpu_step_s")
        res = r["eig_max_residual"]
        cpu_s = "-" if cpu is None else f"{cpu:.4f}"
        ratio = "-" if cpu is None else f"{cpu / r['step_s']:.1f}"
        res_s = "-" if res is None else f"{res:.2e}"
        lines.append(
            f"| {r['N']:,} | {r['d']} | {r['kernel']} | {r['fit_s']:.2f} | {r['step_s']:.4f} | "
            f"{cpu_s} | {ratio} | {r['eig_method']} | {res_s} | {r['n_above_tol']} | "
            f"{r['eig_converged']} |"
        )
    study.write("dmps.md", "\n".join(lines))


# -- main ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="writes OUT/gpu/*")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (dry run)")
    parser.add_argument("--quick", action="store_true", help="small sizes (dry run)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {PARTS}")
    parser.add_argument("--total-s", type=float, default=TOTAL_S, help="whole-run budget")
    parser.add_argument(
        "--commit",
        default=None,
        help="the commit the files name (default: HEAD's; the device's copy may have no git)",
    )
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no CUDA device")
    study = Study(args.out, args.device, args.quick, args.total_s, args.commit)
    study.log(f"device {study.device_name}; parts {parts}")
    fns = {
        "pytest": lambda b: part_pytest(study, b),
        "smoke": lambda b: _suite_part(study, b, "smoke", "smoke.md"),
        "metric": lambda b: part_metric(study, b),
        "dmps": lambda b: part_dmps(study, b),
        "manifolds": lambda b: _suite_part(study, b, "manifolds", "manifolds.md"),
    }
    for part in PARTS:
        if part in parts:
            study.run(part, fns[part])
    study.log(f"done in {time.perf_counter() - study.t0:.1f} s")


if __name__ == "__main__":
    main()
