"""One small fit + run per registered sampler, on any device: what the CPU-vs-CUDA tests
and the CPU digest test compare.

``python -m tests.helpers.device_runs --write`` records the CPU particles' SHA-256 digests
of every sampler in ``tests/helpers/cpu_digests.json`` with the torch version and CPU
capability they were made with (a different BLAS or vector unit may round differently, so
the digest test only checks where both match).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
from pathlib import Path

import torch
from torch import Tensor

from samplers import available_samplers, sampler_class
from tests.helpers.gaussian import correlated_gaussian_2d

DIGESTS = Path(__file__).resolve().parent / "cpu_digests.json"
N_TRAIN, N_PARTICLES, N_STEPS, SEED = 120, 16, 5, 11


def smoke_run(name: str, device: str = "cpu") -> Tensor:
    """Fit ``name`` (its smoke_params) on 120 points of a correlated 2-D Gaussian and run
    16 particles for 5 steps with seed 11, everything on ``device``; final particles (16, 2)
    float64 on the CPU."""
    target = correlated_gaussian_2d()
    cls = sampler_class(name)
    train = target.sample(N_TRAIN, seed=0).to(device)
    x0 = torch.randn(N_PARTICLES, 2, generator=torch.Generator().manual_seed(7)).double()
    sampler = cls(**cls.smoke_params).fit(train, target)
    out = sampler.run(x0.to(device), N_STEPS, seed=SEED).particles
    assert out.device.type == torch.device(device).type, (name, out.device)
    return out.detach().to("cpu", torch.float64)


def digest(x: Tensor) -> str:
    """SHA-256 of a tensor's bytes (C order, CPU)."""
    return hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest()


def environment_key() -> dict[str, str]:
    """What the CPU digests depend on besides the code."""
    return {
        "torch": torch.__version__,
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "machine": platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {DIGESTS}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    digests = {name: digest(smoke_run(name)) for name in available_samplers()}
    record = {"environment": environment_key(), "threads": 1, "digests": digests}
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    if args.write:
        DIGESTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
