"""The one registry class: add, lookup errors, scoped registrations, loading errors."""

from __future__ import annotations

import sys
import threading
import types

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


def test_lookups_in_other_threads_wait_for_loading(tmp_path, monkeypatch):
    """Two threads look a name up while the first one's loading is still importing a slow
    module (as two Dask worker threads starting their first units do): both find it, none
    sees the half-filled registry ('unknown ...; known: ')."""
    pkg = tmp_path / "slowpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "slow.py").write_text(
        "import sys, time\ntime.sleep(0.5)\nsys.modules['slowpkg_holder'].REG.add('x', 1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[int] = Registry("plug-in", "slowpkg", KeyError)
    monkeypatch.setitem(sys.modules, "slowpkg_holder", types.SimpleNamespace(REG=reg))
    found, errors = [], []

    def look() -> None:
        try:
            found.append(reg.get("x"))
        except KeyError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=look) for _ in range(2)]
    threads[0].start()
    threading.Event().wait(0.1)  # the first thread is inside the slow import
    threads[1].start()
    for t in threads:
        t.join(10)
    assert errors == [] and found == [1, 1]
