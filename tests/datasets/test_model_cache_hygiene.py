"""The model cache is an optimisation: an unwritable cache warns once and the trained model
is used; cache files are readable by group and others."""

from __future__ import annotations

import stat
import warnings

import torch
from torch import nn

from datasets.images import model_cache
from datasets.images.model_cache import load_or_train


def _build() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(3, 2)


def _train(module: nn.Module) -> dict:
    with torch.no_grad():
        module.weight.fill_(0.5)
    return {"epochs": 1}


def test_unwritable_cache_warns_once_and_keeps_the_trained_model(tmp_path, monkeypatch):
    monkeypatch.setattr(model_cache, "_WARNED", set())
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = load_or_train(blocker / "a.pt", {"v": 1}, _build, _train)
        second = load_or_train(blocker / "b.pt", {"v": 1}, _build, _train)
    assert not first.from_cache and not second.from_cache
    assert torch.all(first.module.weight == 0.5)  # the trained weights, not fresh ones
    msgs = [str(w.message) for w in caught if "not writable" in str(w.message)]
    assert len(msgs) == 1 and "PARTICLE_BENCH_CACHE" in msgs[0]


def test_cache_files_are_readable_by_others(tmp_path):
    out = load_or_train(tmp_path / "m.pt", {"v": 1}, _build, _train)
    assert stat.S_IMODE((tmp_path / "m.pt").stat().st_mode) == 0o644
    again = load_or_train(tmp_path / "m.pt", {"v": 1}, _build, _train)
    assert again.from_cache and torch.equal(again.module.weight, out.module.weight)
