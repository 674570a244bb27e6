"""Timings of the latent-target machinery (run with --benchmark-only).

    pytest tests/bench/test_bench_latents.py --benchmark-only \
        --benchmark-json results/benchmarks/latents.json
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.random import make_generator
from datasets.images.autoencoders import (
    build_autoencoder,
    default_autoencoder_config,
    load_or_train_autoencoder,
    train_autoencoder,
)
from datasets.images.diagnostics import diffusion_map
from datasets.images.readers import load_images


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", "train")


def test_bench_digits_autoencoder_epoch(benchmark, digits) -> None:
    """Five epochs of the default digits autoencoder (MLP 64-256-128-4) on 1257 images."""
    cfg = default_autoencoder_config("digits", epochs=5, patience=5)
    images = digits.images()

    def run():
        model = build_autoencoder(cfg, (1, 8, 8), make_generator(0))
        return train_autoencoder(model, images, cfg, progress=False)

    history = benchmark.pedantic(run, rounds=3, iterations=1)
    assert history["epochs_run"] == 5


def test_bench_digits_encode_decode(benchmark, digits, tmp_path: Path) -> None:
    """Encode and decode all 1257 training digits with a (briefly trained) autoencoder."""
    cfg = default_autoencoder_config("digits", epochs=2)
    ae = load_or_train_autoencoder(digits, cfg, cache_dir=tmp_path, progress=False)
    images = digits.images()
    out = benchmark(lambda: ae.decode(ae.encode(images)))
    assert out.shape == images.shape


@pytest.mark.parametrize("n", [500, 2000])
def test_bench_diffusion_map(benchmark, n: int) -> None:
    """Dense diffusion map (eigh) of n latent codes in d = 6."""
    z = torch.randn(n, 6, generator=make_generator(0), dtype=torch.float64)
    dm = benchmark.pedantic(lambda: diffusion_map(z, 3, max_points=n), rounds=2, iterations=1)
    assert dm.coords.shape == (n, 3)
