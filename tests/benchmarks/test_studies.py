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
