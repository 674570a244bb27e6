"""particle-bench targets (this repo's ``datasets`` package, not Hugging Face's).

``__particle_bench__`` marks this package so that the CLI and tests can detect the wrong
``datasets`` being imported (see ``benchmarks._imports``). The public names below come from
``datasets.base`` on first use (PEP 562), so that importing the package (which the CLI does
to run that check) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__particle_bench__ = True

__all__ = [
    "FAMILIES",
    "TARGETS",
    "DataMissingError",
    "StandardisedTarget",
    "Target",
    "TargetError",
    "available_targets",
    "get_target",
    "register_target",
]


def __getattr__(name: str) -> Any:
    """The public names of ``datasets.base``, imported when first asked for."""
    if name in __all__:
        return getattr(importlib.import_module("datasets.base"), name)
    raise AttributeError(f"module 'datasets' has no attribute {name!r}")
