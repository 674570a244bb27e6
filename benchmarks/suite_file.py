"""Suites from a file (``--suite-file my_suite.toml`` or ``.json``).

Keys (all optional except ``name``): ``base`` (a named suite to start from), ``targets``,
``samplers``, ``seeds``, ``inits``, ``metrics``, ``n_particles``, ``n_steps``, ``n_train``,
``n_reference``, ``suite_seed``, ``description``, ``headline`` (the metric that heads
the leaderboard; default the first of ``metrics``), ``sampler_params`` (sampler -> fixed
parameters) and ``grid`` (sampler -> parameter -> list of values to sweep). TOML example::

    name = "dmps_steps"
    base = "manifolds"
    samplers = ["dmps", "svgd"]
    seeds = [0, 1]
    [grid.dmps]
    step_size = [0.1, 1.0, 5.0]
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from benchmarks import options
from benchmarks.suites import Suite, get_suite

_TUPLES = ("targets", "samplers", "seeds", "inits", "metrics")
_SCALARS = (
    "n_particles",
    "n_steps",
    "n_train",
    "n_reference",
    "suite_seed",
    "description",
    "headline",
)
KNOWN_KEYS = {"name", "base", "sampler_params", "grid", *_TUPLES, *_SCALARS}


def _text(value: Any, shown: str | None = None) -> str:
    if not isinstance(value, str):
        raise options.UsageError(f"expected a string, got {shown or repr(value)}")
    return value


#: the check of every typed key: the command-line option's check where the key has one
#: (``--particles``, ``--steps``, ``--train-size``, ``--seeds``, ...), so a suite file and
#: the command line accept the same values
CHECKS = {
    "targets": options.check_name_list,
    "samplers": options.check_name_list,
    "inits": options.check_name_list,
    "metrics": options.check_name_list,
    "seeds": options.check_seeds,
    "n_particles": options.check_positive_int,
    "n_steps": options.check_positive_int,
    "n_train": options.check_train_size,
    "n_reference": options.check_sample_size,
    "suite_seed": options.check_non_negative_int,
    "description": _text,
    "headline": _text,
}


class SuiteFileError(ValueError):
    """A suite file that cannot be read or has unknown keys or wrong types."""


def _toml() -> Any:
    """The TOML reader: ``tomllib`` (Python >= 3.11) or the ``tomli`` backport."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise SuiteFileError(
                "TOML suite files need Python >= 3.11 or 'pip install tomli'; "
                "or write the suite file as JSON"
            ) from None
    return tomllib


def load_suite_file(path: Path) -> Suite:
    """Read a TOML or JSON suite file into a :class:`Suite` (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise SuiteFileError(f"suite file {path} does not exist")
    if not path.is_file():
        raise SuiteFileError(f"suite file {path} is not a file")
    if path.suffix not in (".toml", ".json"):
        raise SuiteFileError(f"suite file {path}: expected a .toml or .json file")
    try:
        text = path.read_text(encoding="utf-8")
        spec: dict[str, Any] = _toml().loads(text) if path.suffix == ".toml" else json.loads(text)
    except ValueError as exc:  # TOMLDecodeError, JSONDecodeError and UnicodeDecodeError
        raise SuiteFileError(f"suite file {path}: {exc}") from None
    if not isinstance(spec, dict):
        raise SuiteFileError(f"suite file {path}: expected a table/object at the top level")
    unknown = sorted(set(spec) - KNOWN_KEYS)
    if unknown:
        raise SuiteFileError(
            f"suite file {path}: unknown keys {unknown}; known {sorted(KNOWN_KEYS)}"
        )
    if not isinstance(spec.get("name"), str) or not spec["name"]:
        raise SuiteFileError(f"suite file {path}: 'name' (a non-empty string) is required")
    try:
        options.check_suite_name(spec["name"])
    except options.UsageError as exc:
        raise SuiteFileError(f"suite file {path}: name = {spec['name']!r}: {exc}") from None
    try:
        base = get_suite(spec["base"]) if "base" in spec else None
    except KeyError as exc:
        raise SuiteFileError(f"suite file {path}: {exc.args[0]}") from None
    kw: dict[str, Any] = {"name": spec["name"]}
    for key in _TUPLES:
        if key in spec and not isinstance(spec[key], list):
            raise SuiteFileError(f"suite file {path}: {key!r} must be a list")
    for key in (*_TUPLES, *_SCALARS):
        if key in spec:
            try:
                kw[key] = CHECKS[key](spec[key])
            except options.UsageError as exc:
                raise SuiteFileError(f"suite file {path}: {key} = {spec[key]!r}: {exc}") from None
    for key in ("sampler_params", "grid"):
        table = spec.get(key, {})
        if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
            raise SuiteFileError(f"suite file {path}: {key!r} must map sampler -> table")
    if "sampler_params" in spec:
        kw["sampler_params"] = {s: dict(p) for s, p in spec["sampler_params"].items()}
    if "grid" in spec:
        grid = {}
        for sampler, axes in spec["grid"].items():
            for k, v in axes.items():
                if not isinstance(v, list) or not v:
                    raise SuiteFileError(
                        f"suite file {path}: grid.{sampler}.{k} must be a non-empty list"
                    )
            grid[sampler] = {k: tuple(v) for k, v in axes.items()}
        kw["param_grid"] = grid
    if base is None:
        if "targets" not in kw:
            raise SuiteFileError(f"suite file {path}: 'targets' is required without 'base'")
        return Suite(**kw)
    names = {f.name for f in fields(Suite)}
    return base.with_overrides(**{k: v for k, v in kw.items() if k in names})
