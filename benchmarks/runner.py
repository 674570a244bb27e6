"""Execute a suite: one unit of work = (target, repetition, sampler, params).

A unit fits the sampler once on the training split, runs it from every init scheme's x0,
scores the particles with every metric and returns long-format rows. Units are pure
functions of their :class:`RunSpec`, so they can run serially, in processes or on a cluster
and give the same rows. Failures become rows with a status and a message; they never stop
the suite.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from benchmarks.data import PreparedTarget, prepare
from benchmarks.environment import environment
from benchmarks.seeding import derive_seed
from benchmarks.suites import Suite
from metrics.base import get_metric
from samplers.base import SampleResult, sampler_class

EXACT = "exact"


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

    def config_key(self, init: str) -> str:
        """Identity of one (unit, init) configuration, used by ``--resume``."""
        d = asdict(self)
        d.pop("inits")
        d.pop("device")
        d["init"] = init
        return json.dumps(d, sort_keys=True, default=str)


def plan(suite: Suite, samplers: list[str], device: str = "cpu") -> list[RunSpec]:
    """All units of ``suite`` for ``samplers`` (plus the ``exact`` row), in a stable order."""
    specs = []
    for target in suite.targets:
        for rep in suite.seeds:
            for name in [EXACT, *samplers]:
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
                        params=dict(suite.sampler_params.get(name, {})),
                    )
                )
    return specs


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
                res = get_metric(name)(
                    particles.to(torch.float64),
                    ref,
                    scale=data.scale,
                    seed=derive_seed(spec.suite_seed, "metric", spec.target, spec.rep),
                )
                row["value"] = float(res.value)
                row["converged"] = bool(res.converged)
                row["metric_info"] = json.dumps(res.info, sort_keys=True, default=str)
            except Exception as exc:
                row["metric_info"] = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        rows.append(row)
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


def execute(spec: RunSpec, progress: bool = False) -> list[dict[str, Any]]:
    """Run one unit and return its rows (one per init and metric). Never raises for a
    failing target, sampler or metric: the failure is recorded in the rows."""
    rows: list[dict[str, Any]] = []
    bases = {init: _base_row(spec, init) for init in spec.inits}

    def fail_all(status: str, message: str) -> list[dict[str, Any]]:
        out = []
        for base in bases.values():
            base.update(status=status, message=message)
            out.extend(_metric_rows(base, None, None, spec))  # type: ignore[arg-type]
        return out

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
        missing = type(exc).__name__ == "DataMissingError"
        return fail_all(
            "skipped" if missing else "failed",
            f"{'data missing: ' if missing else ''}{type(exc).__name__}: {exc}",
        )
    for base in bases.values():
        base["family"] = data.target.family
    device = torch.device(spec.device)

    if spec.sampler == EXACT:
        for base in bases.values():
            base.update(steps_done=0, fit_seconds=0.0, sample_seconds=0.0)
            rows.extend(_metric_rows(base, data.exact.to(device), data, spec))
        return rows

    try:
        cls = sampler_class(spec.sampler)
        unmet = cls.unmet_needs(data.target)
        if unmet:
            return fail_all("skipped", f"{spec.sampler} needs {', '.join(unmet)}")
        sampler = cls(**spec.params)
        sampler.fit(data.train.to(device), data.target)
    except Exception as exc:
        return fail_all("failed", f"fit: {type(exc).__name__}: {exc} | {_where(exc)}")

    for init, base in bases.items():
        particles = None
        try:
            t0 = time.perf_counter()
            result: SampleResult = sampler.run(
                data.x0[init].to(device), spec.n_steps, seed=base["seed"], progress=progress
            )
            wall = time.perf_counter() - t0
            info = result.info
            base.update(
                steps_done=info.get("steps"),
                fit_seconds=sampler.fit_seconds,
                sample_seconds=info.get("sample_seconds", wall),
                score_source=info.get("score_source"),
                sampler_info=_jsonable(info),
            )
            if result.diverged:
                base.update(status="diverged", message=str(info.get("diverged_reason", "")))
            else:
                particles = result.particles
        except Exception as exc:
            base.update(
                status="failed", message=f"run: {type(exc).__name__}: {exc} | {_where(exc)}"
            )
        rows.extend(_metric_rows(base, particles, data, spec))
    return rows


def _where(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    return f"{tb[-1].filename}:{tb[-1].lineno}" if tb else ""
