"""Names a package registers, read from its source without importing it (no torch): the
command line refuses a misspelt sampler in a fraction of a second instead of after the
registry's imports. The registry stays the authority (a test checks both agree)."""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path


def _decorated_names(source: str, decorator: str) -> list[str]:
    """``name = "..."`` of every class decorated with ``@decorator`` (or ``@x.decorator``)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        decos = {
            d.id if isinstance(d, ast.Name) else getattr(d, "attr", None)
            for d in node.decorator_list
        }
        if decorator not in decos:
            continue
        for stmt in node.body:
            if (
                isinstance(stmt, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "name" for t in stmt.targets)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                names.append(stmt.value.value)
    return names


def declared_names(package: str, decorator: str) -> list[str]:
    """Sorted names that the top-level modules of ``package`` declare on classes decorated
    with ``decorator``; the package itself is located, not imported."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    found: set[str] = set()
    for folder in spec.submodule_search_locations:
        for path in sorted(Path(folder).glob("*.py")):
            found.update(_decorated_names(path.read_text(encoding="utf-8"), decorator))
    return sorted(found)


@functools.cache
def declared_samplers() -> list[str]:
    """The samplers of this repository (``samplers/*.py``, ``@register_sampler``)."""
    return declared_names("samplers", "register_sampler")
