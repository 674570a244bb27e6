"""Particle samplers: one module per method, each registering its class on import (see
base.py); the maths they share lives in the sub-package ``samplers.core``."""

from samplers.base import (
    SAMPLERS,
    RunRequest,
    Sampler,
    SamplerError,
    SampleResult,
    available_samplers,
    get_sampler,
    iterate,
    register_sampler,
    sampler_class,
)

__all__ = [
    "SAMPLERS",
    "RunRequest",
    "SampleResult",
    "Sampler",
    "SamplerError",
    "available_samplers",
    "get_sampler",
    "iterate",
    "register_sampler",
    "sampler_class",
]
