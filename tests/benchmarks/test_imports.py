"""`import datasets` must be this repo's package, or fail with a message that says so."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from benchmarks._imports import REPO_ROOT, ensure_local_datasets


def test_datasets_is_this_repo():
    import datasets

    assert datasets.__particle_bench__ is True
    assert str(REPO_ROOT) in datasets.__file__


def test_foreign_datasets_package_gives_clear_error(monkeypatch):
    fake = types.ModuleType("datasets")
    fake.__file__ = "/site-packages/datasets/__init__.py"
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(ImportError, match="Hugging Face"):
        ensure_local_datasets()


def test_local_package_wins_over_a_shadowing_package_on_sys_path(tmp_path):
    shadow = tmp_path / "datasets"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("HF = True\n")
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import benchmarks, datasets; "
        "print(getattr(datasets, '__particle_bench__', False))"
    )
    # with a shadowing 'datasets' first on sys.path, importing benchmarks first still binds
    # 'datasets' to this repo (the guard puts the repo root in front)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
