"""Metrics comparing particles with a reference sample; sinkhorn.py is the headline."""

from metrics.base import (
    MetricError,
    MetricResult,
    available_metrics,
    check_clouds,
    get_metric,
    register_metric,
)

__all__ = [
    "MetricError",
    "MetricResult",
    "available_metrics",
    "check_clouds",
    "get_metric",
    "register_metric",
]
