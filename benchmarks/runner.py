"""Execute a suite: one unit of work = (target, repetition, sampler, params).

A unit fits the sampler once on the training split, runs it from every init scheme's x0,
scores the particles with every metric and returns long-format rows. Units are pure
functions of their :class:`RunSpec`, so they can run serially, in processes or on a cluster
and give the same rows. Failures become rows with a status and a message; they never stop
the suite.

Statuses: ``ok``, ``diverged``, ``failed`` (an exception), ``skipped`` (unmet needs or
missing data) and ``timeout`` (fit + sampling exceeded ``RunSpec.timeout`` seconds).
The limit is enforced in three layers: (1) cooperative: ``samplers.base.iterate`` stops at
the first step boundary after the deadline (keeping the steps done) and
``samplers.base.check_deadline`` lets long fits stop; (2) a hard stop for code that never
checks: where the unit runs in a process's main thread (serial runs and ``--jobs`` loky
workers), a ``SIGALRM`` timer raises :class:`~samplers.base.DeadlineExceeded` inside the
running Python code ``HARD_GRACE`` after the deadline (a single long C call finishes
first); (3) post hoc: a run whose measured fit + sampling time exceeds the limit is marked
``timeout`` whatever its sampler did. On Dask workers (threads) layers 1 and 3 apply.

Besides rows, :func:`execute_unit` returns the final particles of each run (float32, saved
by the parent as ``particles/*.npz``) and, with ``RunSpec.curve_every = K``, the first
metric evaluated every K steps along the trajectory (``curves.jsonl``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from benchmarks.data import PreparedTarget, prepare
from benchmarks.environment import environment
from benchmarks.grid import expand
from benchmarks.seeding import derive_seed
from benchmarks.suites import Suite
from datasets.base import DataMissingError
from metrics.base import get_metric
from metrics.memorisation import memorisation_ratio
from samplers.base import DeadlineExceeded, SampleResult, sampler_class

EXACT = "exact"
TIMEOUT = "timeout"
#: Row fields that legitimately differ between two executions of the same unit: wall
#: times, and the BLAS thread set-up of the process that ran it. Every other field, values
#: included, is identical bit for bit (serially, with ``--jobs`` and on a Dask cluster).
#: Inside the JSON fields ``sampler_info`` and ``metric_info`` keys ending in ``_seconds``
#: are wall times too (see :func:`without_timing`).
TIMING_FIELDS = ("fit_seconds", "sample_seconds", "blas")


@dataclass(frozen=True)
class RunSpec:
    """Everything one unit of work needs (picklable)."""

    suite: str
    target: str
    sampler: str
    rep: int
    n_particles: int
    n_steps: int
    n_train: int
    n_reference: int
    inits: tuple[str, ...]
    metrics: tuple[str, ...]
    suite_seed: int
    device: str = "cpu"
    params: dict[str, Any] = field(default_factory=dict)
    #: wall-time limit (seconds) of fit + sampling of each run; None = no limit
    timeout: float | None = None
    #: evaluate the first metric every ``curve_every`` steps along the trajectory (0: off)
    curve_every: int = 0
    #: return the final particles (float32) for ``particles/*.npz``
    save_particles: bool = True

    def config_key(self, init: str) -> str:
        """Identity of one (unit, init) configuration, used by ``--resume``. Execution
        options (device, timeout, curves, particle files) are not part of it."""
        d = asdict(self)
        for k in ("inits", "device", "timeout", "curve_every", "save_particles"):
            d.pop(k)
        d["init"] = init
        return json.dumps(d, sort_keys=True, default=str)


def plan(
    suite: Suite,
    samplers: list[str],
    device: str = "cpu",
    *,
    timeout: float | None = None,
    curve_every: int = 0,
    save_particles: bool = True,
) -> list[RunSpec]:
    """All units of ``suite`` for ``samplers`` (plus the ``exact`` row), in a stable order:
    one unit per (target, seed, sampler, parameter combination of ``suite.param_grid``)."""
    specs = []
    for target in suite.targets:
        for rep in suite.seeds:
            for name in [EXACT, *samplers]:
                fixed = _params(suite, name)
                for combo in expand(suite.param_grid.get(name)) if name != EXACT else [{}]:
                    specs.append(
                        RunSpec(
                            suite=suite.name,
                            target=target,
                            sampler=name,
                            rep=rep,
                            n_particles=suite.n_particles,
                            n_steps=suite.n_steps,
                            n_train=suite.n_train,
                            n_reference=suite.n_reference,
                            inits=suite.inits,
                            metrics=suite.metrics,
                            suite_seed=suite.suite_seed,
                            device=device,
                            params={**fixed, **combo},
                            timeout=timeout,
                            curve_every=curve_every,
                            save_particles=save_particles,
                        )
                    )
    return specs


def _params(suite: Suite, name: str) -> dict[str, Any]:
    """The suite's overrides of a sampler's defaults (smoke suites add its smoke_params)."""
    params: dict[str, Any] = {}
    if suite.use_smoke_params and name != EXACT:
        params.update(sampler_class(name).smoke_params)
    params.update(suite.sampler_params.get(name, {}))
    return params


#: seconds after the cooperative deadline at which the SIGALRM hard stop fires
HARD_GRACE = 1.0


@contextlib.contextmanager
def hard_deadline(deadline: float | None) -> Iterator[None]:
    """Raise :class:`DeadlineExceeded` in this thread's Python code at ``deadline +
    HARD_GRACE`` (a ``perf_counter`` value) via ``SIGALRM``; a no-op without a deadline,
    off the main thread or where ``signal.setitimer`` does not exist (Windows)."""
    usable = (
        deadline is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise DeadlineExceeded("interrupted by the hard wall-time stop")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(deadline + HARD_GRACE - time.perf_counter(), 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def without_timing(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without :data:`TIMING_FIELDS` and without ``*_seconds`` keys inside its JSON
    info fields: what must be equal between two executions of one configuration."""
    out = {k: v for k, v in row.items() if k not in TIMING_FIELDS}
    for k in ("sampler_info", "metric_info"):
        if isinstance(out.get(k), str):
            info = json.loads(out[k])
            out[k] = {a: b for a, b in info.items() if not str(a).endswith("_seconds")}
    return out


def particles_file(spec: RunSpec, init: str) -> str:
    """Relative path (inside the suite's folder) of one run's final particles."""
    digest = hashlib.sha256(spec.config_key(init).encode()).hexdigest()[:10]
    return f"particles/{spec.target}__{spec.sampler}__{init}__rep{spec.rep}__{digest}.npz"


@dataclass
class UnitOutput:
    """What one unit returns to the parent: its rows, its curve rows (metric along the
    trajectory) and arrays to save (relative path -> name -> float32 array)."""

    rows: list[dict[str, Any]]
    curves: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def _base_row(spec: RunSpec, init: str) -> dict[str, Any]:
    env = environment(spec.device)
    return {
        "suite": spec.suite,
        "target": spec.target,
        "family": None,
        "sampler": spec.sampler,
        "params": json.dumps(spec.params, sort_keys=True, default=str),
        "init": init,
        "rep": spec.rep,
        "seed": derive_seed(spec.suite_seed, spec.target, spec.sampler, spec.rep),
        "n_particles": spec.n_particles,
        "n_steps": spec.n_steps,
        "n_train": spec.n_train,
        "n_reference": spec.n_reference,
        "config_key": spec.config_key(init),
        "status": "ok",
        "message": "",
        "particles_file": None,
        "steps_done": None,
        "fit_seconds": None,
        "sample_seconds": None,
        "score_source": None,
        "sampler_info": "{}",
        "commit": env["commit"],
        "device": env["device"],
        "torch": env["torch"],
        "pot": env["pot"],
        "blas": env["blas"],
    }


#: not a registered metric (it needs the training split): median nearest-neighbour distance
#: of the particles to the training split over that to the reference (about 1 for an
#: independent sample, near 0 for copies of training points)
MEMORISATION = "memorisation"


def _metric_rows(
    base: dict[str, Any], particles: torch.Tensor | None, data: PreparedTarget, spec: RunSpec
) -> list[dict[str, Any]]:
    """One row per metric; NaN values with the failure recorded when particles are unusable."""
    rows = []
    for name in spec.metrics:
        row = {
            **base,
            "metric": name,
            "value": float("nan"),
            "converged": False,
            "metric_info": "{}",
        }
        if particles is not None and base["status"] == "ok":
            try:
                ref = data.reference.to(particles.device)
                if name == MEMORISATION:
                    res = memorisation_ratio(
                        particles.to(torch.float64), data.train.to(particles.device), ref
                    )
                else:
                    res = get_metric(name)(
                        particles.to(torch.float64),
                        ref,
                        scale=data.scale,
                        seed=_metric_seed(spec),
                    )
                row["value"] = float(res.value)
                row["converged"] = bool(res.converged)
                row["metric_info"] = json.dumps(res.info, sort_keys=True, default=str)
            except Exception as exc:
                row["status"] = "metric_failed"
                row["message"] = f"{name}: {type(exc).__name__}: {exc}"
                row["metric_info"] = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        rows.append(row)
    if data is not None and data.target.family == "latents":
        from benchmarks.latent_images import class_tv_row

        rows.append(class_tv_row(base, particles, data.target))
    return rows


def _jsonable(info: dict[str, Any]) -> str:
    small = {}
    for k, v in info.items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            small[k] = v
        elif isinstance(v, (list, tuple)) and len(v) <= 20:
            small[k] = list(v)
        elif isinstance(v, dict):
            small[k] = v
    return json.dumps(small, sort_keys=True, default=str)


def _metric_seed(spec: RunSpec) -> int:
    return derive_seed(spec.suite_seed, "metric", spec.target, spec.rep)


def _curve_rows(
    base: dict[str, Any], result: SampleResult, data: PreparedTarget, spec: RunSpec
) -> list[dict[str, Any]]:
    """The first metric on every recorded frame: (step, sampling seconds, value) rows."""
    if result.trajectory is None:
        return []
    name = spec.metrics[0]
    steps = result.info.get("record_steps")
    frames = result.trajectory
    if steps is None or len(steps) != frames.shape[0]:
        steps = [i * spec.curve_every for i in range(frames.shape[0])]
    ref = data.reference.to(frames.device)
    out = []
    for frame, step, seconds in zip(frames, steps, result.times, strict=False):
        row = {
            k: base[k]
            for k in ("suite", "target", "sampler", "params", "init", "rep", "config_key")
        }
        row.update(metric=name, step=int(step), seconds=float(seconds))
        try:
            if not bool(torch.isfinite(frame).all()):
                raise ValueError("non-finite particles")
            res = get_metric(name)(
                frame.to(torch.float64), ref, scale=data.scale, seed=_metric_seed(spec)
            )
            row.update(value=float(res.value), converged=bool(res.converged))
        except Exception as exc:
            row.update(value=float("nan"), converged=False, error=f"{type(exc).__name__}: {exc}")
        out.append(row)
    return out


def execute(spec: RunSpec, progress: bool = False) -> list[dict[str, Any]]:
    """Run one unit and return its rows (one per init and metric). Never raises for a
    failing target, sampler or metric: the failure is recorded in the rows."""
    return execute_unit(spec, progress).rows


def failure_output(spec: RunSpec, status: str, message: str) -> UnitOutput:
    """The rows of a unit that failed as a whole (every init and metric: ``status``)."""
    rows = []
    for init in spec.inits:
        base = _base_row(spec, init)
        base.update(status=status, message=message)
        rows.extend(_metric_rows(base, None, None, spec))  # type: ignore[arg-type]
    return UnitOutput(rows)


def execute_unit(spec: RunSpec, progress: bool = False) -> UnitOutput:
    """Run one unit: rows, curve rows and final particles (see :class:`UnitOutput`)."""
    try:
        data = prepare(
            spec.target,
            spec.rep,
            spec.n_train,
            spec.n_reference,
            spec.n_particles,
            spec.inits,
            spec.suite_seed,
        )
    except Exception as exc:
        missing = isinstance(exc, DataMissingError)
        return failure_output(
            spec,
            "skipped" if missing else "failed",
            f"{'data missing: ' if missing else ''}{type(exc).__name__}: {exc}",
        )
    out = UnitOutput(rows=[])
    bases = {init: _base_row(spec, init) for init in spec.inits}
    for base in bases.values():
        base["family"] = data.target.family
    device = torch.device(spec.device)

    def save(base: dict[str, Any], init: str, particles: torch.Tensor, **extra: Any) -> None:
        if spec.save_particles:
            rel = particles_file(spec, init)
            arrays = {"particles": particles.detach().cpu().to(torch.float32).numpy()}
            arrays.update({k: v.detach().cpu().to(torch.float32).numpy() for k, v in extra.items()})
            out.arrays[rel] = arrays
            base["particles_file"] = rel

    if spec.sampler == EXACT:
        for init, base in bases.items():
            base.update(steps_done=0, fit_seconds=0.0, sample_seconds=0.0)
            save(base, init, data.exact, reference=data.reference)
            out.rows.extend(_metric_rows(base, data.exact.to(device), data, spec))
        return out

    deadline = None if spec.timeout is None else time.perf_counter() + spec.timeout
    try:
        cls = sampler_class(spec.sampler)
        unmet = cls.unmet_needs(data.target)
        if unmet:
            return failure_output(spec, "skipped", f"{spec.sampler} needs {', '.join(unmet)}")
        sampler = cls(**spec.params)
        with hard_deadline(deadline):
            sampler.fit(data.train.to(device), data.target, deadline=deadline)
    except DeadlineExceeded as exc:
        return failure_output(spec, TIMEOUT, f"fit: {exc} ({spec.timeout:g} s limit)")
    except Exception as exc:
        return failure_output(spec, "failed", f"fit: {type(exc).__name__}: {exc} | {_where(exc)}")
    if spec.timeout is not None and sampler.fit_seconds > spec.timeout:
        return failure_output(
            spec, TIMEOUT, f"fit took {sampler.fit_seconds:.1f} s > {spec.timeout:g} s limit"
        )

    for init, base in bases.items():
        particles = None
        try:
            t0 = time.perf_counter()
            run_deadline = None if spec.timeout is None else t0 + spec.timeout - sampler.fit_seconds
            with hard_deadline(run_deadline):
                result: SampleResult = sampler.run(
                    data.x0[init].to(device),
                    spec.n_steps,
                    seed=base["seed"],
                    progress=progress,
                    record_every=spec.curve_every,
                    deadline=run_deadline,
                )
            wall = time.perf_counter() - t0
            info = dict(result.info)
            info.pop("record_steps", None)
            sample_seconds = info.get("sample_seconds", wall)
            base.update(
                steps_done=info.get("steps"),
                fit_seconds=sampler.fit_seconds,
                sample_seconds=sample_seconds,
                score_source=info.get("score_source"),
                sampler_info=_jsonable(info),
            )
            over = spec.timeout is not None and sampler.fit_seconds + sample_seconds > spec.timeout
            if result.diverged:
                base.update(status="diverged", message=str(info.get("diverged_reason", "")))
            elif result.timed_out or over:
                base.update(
                    status=TIMEOUT,
                    message=str(
                        info.get("timeout_reason")
                        or f"fit + sampling took {sampler.fit_seconds + sample_seconds:.1f} s"
                    )
                    + f" ({spec.timeout:g} s limit)",
                )
            else:
                particles = result.particles
                save(base, init, particles)
            if spec.curve_every > 0:
                out.curves.extend(_curve_rows(base, result, data, spec))
        except DeadlineExceeded as exc:
            base.update(
                status=TIMEOUT,
                message=f"run: {exc} ({spec.timeout:g} s limit)",
                sample_seconds=time.perf_counter() - t0,
                fit_seconds=sampler.fit_seconds,
            )
        except Exception as exc:
            base.update(
                status="failed", message=f"run: {type(exc).__name__}: {exc} | {_where(exc)}"
            )
        out.rows.extend(_metric_rows(base, particles, data, spec))
    return out


def _where(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    return f"{tb[-1].filename}:{tb[-1].lineno}" if tb else ""
