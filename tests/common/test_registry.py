"""The one registry class: add, lookup errors, scoped registrations, loading errors."""

from __future__ import annotations

import pytest

from common.registry import Registry


def test_add_get_scoped_and_errors():
    reg: Registry[int] = Registry("widget", "common", KeyError)
    reg.add("a", 1)
    reg.add("a", 1)  # the same entry again is a no-op
    with pytest.raises(KeyError, match="registered twice"):
        reg.add("a", 2)
    with reg.scoped():
        reg.register("b")(2)
        assert reg.get("b") == 2 and reg.names() == ["a", "b"]
    assert "b" not in reg
    with pytest.raises(KeyError, match="unknown widget 'c'; known: a"):
        reg.get("c")


def test_a_broken_plugin_module_is_named(tmp_path, monkeypatch):
    pkg = tmp_path / "plugpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text("")
    (pkg / "broken.py").write_text("import does_not_exist_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[int] = Registry("plug-in", "plugpkg", RuntimeError)
    with pytest.raises(RuntimeError, match="cannot load plug-in module plugpkg.broken"):
        reg.names()
    with pytest.raises(RuntimeError, match="plugpkg.broken"):  # still loud on the next lookup
        reg.names()
