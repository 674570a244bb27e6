"""Seeded random generators: every random draw in the project goes through an explicit
``torch.Generator`` (no global RNG state is read or changed).

Device convention (one for the whole project): a draw is made on the *generator's* device
and the result is then moved to the device where it is used (``randn``, ``rand``,
``randint``, ``randperm`` below). Run generators live on the CPU (``make_generator``'s
default, and ``Sampler.run``), so a seed draws the same numbers whether the particles are on
the CPU or on a GPU, and a CPU run draws exactly what it drew before the convention (the
draw itself is unchanged; only the final ``.to(device)`` is added, a no-op on the CPU).
Passing ``device=`` to a ``torch`` random function together with a generator on another
device fails ("Expected a 'cuda' device type for generator"); these helpers never do that.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

Device = torch.device | str | None

#: the largest seed every library here accepts (NumPy and scikit-learn stop at 2**32 - 1;
#: torch goes further); the harness derives 31-bit seeds (``derive_seed``)
SEED_MAX = 2**32 - 1


def is_seed(value: object) -> bool:
    """True for an integer (Python or NumPy, not a bool) in [0, SEED_MAX]."""
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and 0 <= int(value) <= SEED_MAX
    )


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def _moved(t: Tensor, device: Device) -> Tensor:
    return t if device is None else t.to(device)


def randn(
    *shape: int,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
    device: Device = None,
) -> Tensor:
    """Standard normal draws of ``shape`` from ``generator`` (made on its device, in ``dtype``),
    then moved to ``device`` (None: left on the generator's device)."""
    out = torch.randn(*shape, generator=generator, dtype=dtype, device=generator.device)
    return _moved(out, device)


def rand(
    *shape: int,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
    device: Device = None,
) -> Tensor:
    """Uniform [0, 1) draws of ``shape`` from ``generator`` on its device, then moved to
    ``device``."""
    out = torch.rand(*shape, generator=generator, dtype=dtype, device=generator.device)
    return _moved(out, device)


def randint(
    low: int,
    high: int,
    shape: tuple[int, ...],
    *,
    generator: torch.Generator,
    device: Device = None,
) -> Tensor:
    """Integers uniform in [low, high) of ``shape`` from ``generator`` on its device, then moved
    to ``device``."""
    out = torch.randint(low, high, shape, generator=generator, device=generator.device)
    return _moved(out, device)


def randperm(n: int, *, generator: torch.Generator, device: Device = None) -> Tensor:
    """A random permutation of 0..n-1 from ``generator`` on its device, then moved to
    ``device``."""
    return _moved(torch.randperm(n, generator=generator, device=generator.device), device)


def subsample_rows(z: Tensor, n: int, *, generator: torch.Generator) -> Tensor:
    """``n`` rows of ``z`` (N, ...) without replacement, chosen by the first ``n`` entries of
    a permutation drawn from ``generator``; ``z`` itself (no draw) when N <= n."""
    if z.shape[0] <= n:
        return z
    return z[randperm(z.shape[0], generator=generator, device=z.device)[:n]]
