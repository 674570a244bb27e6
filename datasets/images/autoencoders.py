"""MLP and CNN autoencoders of the reference notebook, sized per image shape; seeded training.

Architectures (``forward(x) -> (reconstruction, z)``, images ``(n, C, H, W)`` in [0, 1]):

* :class:`MLPAutoencoder`: Flatten -> Linear/ReLU over ``hidden`` -> Linear to the latent;
  the decoder mirrors it and ends in a Sigmoid. The notebook's CIFAR MLP is
  ``hidden=(1024, 512, 256)``.
* :class:`CNNAutoencoder`: Conv3x3 stride 1 to ``channels[0]``, then one Conv3x3 stride 2
  per further entry of ``channels`` (each with BatchNorm + ReLU), Linear ``fc_width`` and
  Linear to the latent; the decoder mirrors it with ConvTranspose3x3 stride 2 and a final
  Conv3x3 + Sigmoid. ``channels=(64, 128, 256, 512), fc_width=512`` on 32x32x3 is exactly the
  notebook's CIFAR CNN (3x32x32 -> 512x4x4); on 28x28 two downsamplings reach 7x7.

Training: Adam on the MSE reconstruction loss, mini-batches from a seeded permutation, a
validation split (``val_fraction`` of the training images, seeded), early stopping when the
validation loss has not improved by a relative 1e-4 for ``patience`` epochs (the best
weights are restored), a tqdm bar over epochs. Weight initialisation reproduces PyTorch's
defaults but draws from an explicit ``torch.Generator`` (no global RNG is touched).
Determinism: the same seed, device and thread count give the same weights; a different
number of BLAS/OpenMP threads or a GPU may change float summation order and hence the
weights in the last digits (the cache key does not include the thread count).

Per-data-set defaults (:data:`DEFAULT_AUTOENCODERS`), sized for a 2-core CPU:

* ``digits``: MLP 64-256-128-4, Adam lr 3e-3, up to 300 epochs (early stopping, patience
  20, usually stops before 100), batch 64, all 1257 training images (10 % of them for
  validation); about 12 s on one CPU core.
* ``mnist`` / ``fashion_mnist``: CNN channels (16, 32, 64), fc 128, latent 6, 12 000 of the
  60 000 training images, 8 epochs, batch 128; about two minutes on one CPU core.
* ``mnist_5k`` (the 5,000-image subset): the same CNN on all 4,000 images of its training
  split, up to 30 epochs (early stopping, patience 5; stopped after 25 when measured), one
  thread: about the Adam steps ``mnist`` takes on 12,000 images in 8 epochs; 74 CPU seconds
  (141 s wall at load 5 on the 2-core machine), test MSE 0.024 against 0.068 for the mean
  image.
* ``cifar10``: the notebook CNN (64, 128, 256, 512), fc 512, latent 16, 20 000 training
  images, 10 epochs: meant for a GPU (tens of minutes on a CPU).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from common.random import make_generator
from datasets.images.early_stopping import EarlyStopping
from datasets.images.model_cache import CachedModule, cache_file, load_or_train
from datasets.images.readers import ImageDataset, check_image_shape

ARCHITECTURES = ("mlp", "cnn")


@dataclass(frozen=True)
class AutoencoderConfig:
    """Everything that determines a trained autoencoder (all of it is in the cache key)."""

    dataset: str
    arch: str
    latent_dim: int
    epochs: int
    seed: int = 0
    hidden: tuple[int, ...] = (128, 64)
    channels: tuple[int, ...] = (16, 32, 64)
    fc_width: int = 128
    max_train_images: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    val_fraction: float = 0.1
    patience: int = 5
    threads: int | None = None  # cap on torch threads while training (None: leave as set)

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; expected one of {ARCHITECTURES}")
        if self.latent_dim < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("latent_dim, epochs and batch_size must be positive")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {self.val_fraction}")

    def cache_meta(self) -> dict[str, Any]:
        meta = asdict(self)
        del meta["threads"]  # speed only, not the model (see the module doc on determinism)
        meta["hidden"] = ",".join(map(str, self.hidden))
        meta["channels"] = ",".join(map(str, self.channels))
        meta["max_train_images"] = -1 if self.max_train_images is None else self.max_train_images
        return meta


DEFAULT_AUTOENCODERS: dict[str, AutoencoderConfig] = {
    "digits": AutoencoderConfig(
        "digits",
        "mlp",
        latent_dim=4,
        epochs=300,
        hidden=(256, 128),
        batch_size=64,
        lr=3e-3,
        patience=20,
        threads=1,
    ),
    **{
        name: AutoencoderConfig(
            name,
            "cnn",
            latent_dim=6,
            epochs=8,
            channels=(16, 32, 64),
            fc_width=128,
            max_train_images=12_000,
        )
        for name in ("mnist", "fashion_mnist")
    },
    "mnist_5k": AutoencoderConfig(
        "mnist_5k",
        "cnn",
        latent_dim=6,
        epochs=30,
        channels=(16, 32, 64),
        fc_width=128,
        threads=1,
    ),
    "cifar10": AutoencoderConfig(
        "cifar10",
        "cnn",
        latent_dim=16,
        epochs=10,
        hidden=(1024, 512, 256),
        channels=(64, 128, 256, 512),
        fc_width=512,
        max_train_images=20_000,
    ),
}


def default_autoencoder_config(dataset: str, **overrides: Any) -> AutoencoderConfig:
    """The default config of ``dataset`` with fields replaced by ``overrides``."""
    if dataset not in DEFAULT_AUTOENCODERS:
        raise ValueError(f"no autoencoder defaults for {dataset!r}")
    return replace(DEFAULT_AUTOENCODERS[dataset], **overrides)


# ---------------------------------------------------------------------------------------
# Architectures
# ---------------------------------------------------------------------------------------
class MLPAutoencoder(nn.Module):
    """Fully connected autoencoder: C*H*W -> hidden... -> latent -> reversed hidden -> C*H*W."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.image_shape = tuple(image_shape)
        n_in = math.prod(image_shape)
        widths = [n_in, *hidden]
        enc: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            enc += [nn.Linear(a, b), nn.ReLU()]
        enc.append(nn.Linear(widths[-1], latent_dim))
        self.encoder = nn.Sequential(*enc)
        rev = [latent_dim, *reversed(hidden)]
        dec: list[nn.Module] = []
        for a, b in zip(rev[:-1], rev[1:], strict=True):
            dec += [nn.Linear(a, b), nn.ReLU()]
        dec += [nn.Linear(rev[-1], n_in), nn.Sigmoid()]
        self.decoder_net = nn.Sequential(*dec)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder_net(z).view(-1, *self.image_shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.encode(x)
        return self.decode(z), z


class CNNAutoencoder(nn.Module):
    """Convolutional autoencoder (the notebook's CNN, generalised to any H divisible by
    2^(len(channels)-1)): conv stride 1, then stride-2 convs, then two Linear layers."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        channels: tuple[int, ...],
        fc_width: int,
    ):
        super().__init__()
        c_in, h, w = image_shape
        n_down = len(channels) - 1
        if len(channels) < 1 or h % (2**n_down) or w % (2**n_down):
            raise ValueError(
                f"image {h}x{w} is not divisible by 2^{n_down} for channels {channels}"
            )
        self.image_shape = tuple(image_shape)
        self.bottom = (channels[-1], h // 2**n_down, w // 2**n_down)
        conv: list[nn.Module] = []
        prev = c_in
        for i, c in enumerate(channels):
            stride = 1 if i == 0 else 2
            conv += [nn.Conv2d(prev, c, 3, stride=stride, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
            prev = c
        self.conv = nn.Sequential(*conv)
        flat = math.prod(self.bottom)
        self.enc_fc = nn.Sequential(
            nn.Linear(flat, fc_width), nn.ReLU(), nn.Linear(fc_width, latent_dim)
        )
        self.dec_fc = nn.Sequential(
            nn.Linear(latent_dim, fc_width), nn.ReLU(), nn.Linear(fc_width, flat), nn.ReLU()
        )
        deconv: list[nn.Module] = []
        rev = list(reversed(channels))
        for a, b in zip(rev[:-1], rev[1:], strict=True):
            deconv += [
                nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1),
                nn.BatchNorm2d(b),
                nn.ReLU(),
            ]
        deconv += [nn.Conv2d(channels[0], c_in, 3, stride=1, padding=1), nn.Sigmoid()]
        self.deconv = nn.Sequential(*deconv)

    def encode(self, x: Tensor) -> Tensor:
        return self.enc_fc(self.conv(x).flatten(1))

    def decode(self, z: Tensor) -> Tensor:
        return self.deconv(self.dec_fc(z).view(-1, *self.bottom))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.encode(x)
        return self.decode(z), z


def build_autoencoder(
    config: AutoencoderConfig, image_shape: tuple[int, int, int], gen: torch.Generator
) -> nn.Module:
    """The untrained autoencoder of ``config`` with weights drawn from ``gen``."""
    # nn.Linear/Conv2d draw throwaway initial weights from the global RNG while being
    # constructed: fork_rng restores its state, and the real weights come from ``gen``.
    with torch.random.fork_rng(devices=[]):
        if config.arch == "mlp":
            model: nn.Module = MLPAutoencoder(image_shape, config.latent_dim, config.hidden)
        else:
            model = CNNAutoencoder(image_shape, config.latent_dim, config.channels, config.fc_width)
    init_parameters_(model, gen)
    return model


def init_parameters_(module: nn.Module, gen: torch.Generator) -> None:
    """PyTorch's default Linear/Conv initialisation, drawn from ``gen``:
    W ~ kaiming_uniform(a=sqrt(5)) i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), b likewise."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=gen)
                if m.bias is not None:
                    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(m.weight)
                    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                    nn.init.uniform_(m.bias, -bound, bound, generator=gen)


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------
def _batched(fn: Any, x: Tensor, batch: int) -> Tensor:
    return torch.cat([fn(x[i : i + batch]) for i in range(0, x.shape[0], batch)])


def mean_squared_error(model: nn.Module, images: Tensor, batch: int = 1024) -> float:
    """Mean over pixels and images of (model(x) - x)^2, evaluation mode, no grad."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            xb = images[i : i + batch].to(device)
            recon, _ = model(xb)
            total += float(((recon - xb) ** 2).sum())
    model.train(was_training)
    return total / images.numel()


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Lower torch's intra-op thread count to ``n`` inside the block, then restore it.

    Tiny models gain nothing from threads and lose a lot when cores are shared: the digits
    MLP trains 10x slower with 2 threads than with 1 on a loaded 2-core machine (measured:
    20 epochs, 2 vs 20 CPU seconds)."""
    old = torch.get_num_threads()
    if n is None or n >= old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def train_autoencoder(
    model: nn.Module,
    images: Tensor,
    config: AutoencoderConfig,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` in place on ``images`` ``(n, C, H, W)`` float32 in [0, 1].

    Adam(lr) on MSE; ``val_fraction`` of the images (seeded) held out for early stopping
    with ``patience``; the best-validation weights are restored. Returns the history
    (per-epoch train/val loss, best epoch, seconds) as plain python values. Runs with at
    most ``config.threads`` torch threads.
    """
    with torch_threads(config.threads):
        return _train_autoencoder(model, images, config, progress=progress)


def _train_autoencoder(
    model: nn.Module,
    images: Tensor,
    config: AutoencoderConfig,
    *,
    progress: bool,
) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from common.progress import finish, show

    n = images.shape[0]
    n_val = max(1, int(round(config.val_fraction * n)))
    if n - n_val < 1:
        raise ValueError(f"need at least 2 images to train with a validation split, got {n}")
    gen = make_generator(config.seed + 1)
    perm = torch.randperm(n, generator=gen)
    device = next(model.parameters()).device
    x_val = images[perm[:n_val]].to(device)
    x_train = images[perm[n_val:]].to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    # improvement: a relative 1e-4 drop of the validation loss
    stopper = EarlyStopping(config.patience, math.inf, lambda v, best: v < best * (1 - 1e-4))
    history: dict[str, Any] = {"train_loss": [], "val_loss": []}
    t0, c0 = time.perf_counter(), time.process_time()
    bar = tqdm(
        range(config.epochs),
        desc=f"autoencoder {config.dataset}",
        disable=not show(progress),
        leave=False,
    )
    for epoch in bar:
        model.train()
        order = torch.randperm(x_train.shape[0], generator=gen).to(device)
        running, seen = 0.0, 0
        for i in range(0, order.shape[0], config.batch_size):
            xb = x_train[order[i : i + config.batch_size]]
            if xb.shape[0] < 2 and order.shape[0] >= 2:
                continue  # BatchNorm cannot train on a single image
            opt.zero_grad(set_to_none=True)
            recon, _ = model(xb)
            loss = torch.mean((recon - xb) ** 2)
            loss.backward()
            opt.step()
            running += float(loss.detach()) * xb.shape[0]
            seen += xb.shape[0]
        val = mean_squared_error(model, x_val)
        history["train_loss"].append(running / max(seen, 1))
        history["val_loss"].append(val)
        bar.set_postfix(train=f"{running / max(seen, 1):.4f}", val=f"{val:.4f}")
        if not math.isfinite(val):
            raise RuntimeError(f"autoencoder training diverged at epoch {epoch + 1} (val {val})")
        if stopper.step(model, epoch, val):
            break
    finish(bar, len(history["val_loss"]))
    stopper.restore(model)
    history.update(
        best_epoch=stopper.best_epoch,
        best_val_loss=stopper.best,
        epochs_run=len(history["val_loss"]),
        train_seconds=time.perf_counter() - t0,
        train_cpu_seconds=time.process_time() - c0,
        n_train=int(x_train.shape[0]),
        n_val=int(n_val),
        torch_threads=torch.get_num_threads(),
    )
    return history


@dataclass
class TrainedAutoencoder:
    """A trained autoencoder with its config and training record.

    ``encode(images) -> (n, latent_dim)`` float64; ``decode(z) -> (n, C, H, W)`` float32
    in [0, 1]. ``from_cache`` tells whether the weights came from the disk cache.
    """

    model: nn.Module
    config: AutoencoderConfig
    image_shape: tuple[int, int, int]
    history: dict[str, Any]
    from_cache: bool
    path: os.PathLike[str] | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, images: Tensor, batch: int = 1024) -> Tensor:
        """Latent codes ``(n, latent_dim)`` float64 of ``images`` ``(n, C, H, W)`` in [0, 1]."""
        check_image_shape(images, self.image_shape)
        self.model.eval()
        with torch.no_grad(), torch_threads(self.config.threads):
            z = _batched(
                lambda xb: self.model.encode(xb.to(self.device, torch.float32)), images, batch
            )
        return z.to(torch.float64).cpu()

    def decode(self, z: Tensor, batch: int = 1024) -> Tensor:
        """Images ``(n, C, H, W)`` float32 in [0, 1] of latent codes ``z`` ``(n, latent_dim)``."""
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(
                f"latent codes must have shape (n, {self.config.latent_dim}), got {tuple(z.shape)}"
            )
        self.model.eval()
        with torch.no_grad(), torch_threads(self.config.threads):
            x = _batched(lambda zb: self.model.decode(zb.to(self.device, torch.float32)), z, batch)
        return x.to(z.device)

    def reconstruction_mse(self, images: Tensor) -> float:
        """Per-pixel mean squared reconstruction error on ``images``."""
        return mean_squared_error(self.model, images.to(torch.float32))


def load_or_train_autoencoder(
    data: ImageDataset,
    config: AutoencoderConfig,
    *,
    cache_dir: str | os.PathLike[str],
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> TrainedAutoencoder:
    """The autoencoder of ``config`` trained on ``data`` (training split), from the cache
    under ``cache_dir`` when a valid file exists, else trained and cached atomically.

    With ``config.max_train_images`` set, that many training images are drawn (seeded by
    ``config.seed``) from ``data``.
    """
    if data.name != config.dataset:
        raise ValueError(f"config is for {config.dataset!r} but the data are {data.name!r}")
    image_shape = data.image_shape
    meta = config.cache_meta()
    meta["image_shape"] = "x".join(map(str, image_shape))
    meta["n_images"] = len(data)
    path = cache_file(cache_dir, "autoencoder", meta)

    def build() -> nn.Module:
        return build_autoencoder(config, image_shape, make_generator(config.seed)).to(device)

    def train(model: nn.Module) -> dict[str, Any]:
        index = data.subset_index(config.max_train_images, seed=config.seed + 2)
        return train_autoencoder(model, data.images(index), config, progress=progress)

    cached: CachedModule = load_or_train(path, meta, build, train)
    return TrainedAutoencoder(
        model=cached.module,
        config=config,
        image_shape=image_shape,
        history=cached.extra,
        from_cache=cached.from_cache,
        path=cached.path,
    )
