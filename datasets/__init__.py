"""particle-bench targets (this repo's ``datasets`` package, not Hugging Face's).

``__particle_bench__`` marks this package so that the CLI and tests can detect the wrong
``datasets`` being imported (see ``benchmarks._imports``).
"""

from datasets.base import (
    FAMILIES,
    TARGETS,
    DataMissingError,
    StandardisedTarget,
    Target,
    TargetError,
    available_targets,
    get_target,
    register_target,
)

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
