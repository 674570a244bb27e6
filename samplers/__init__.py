"""Particle samplers. Every module here registers its method on import (see base.py)."""

from samplers.base import (
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
    "SampleResult",
    "Sampler",
    "SamplerError",
    "available_samplers",
    "get_sampler",
    "iterate",
    "register_sampler",
    "sampler_class",
]
