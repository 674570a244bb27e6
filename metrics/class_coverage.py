"""Class coverage of decoded particles (image latents).

class_tv = (1/2) sum_c |q_c - p_c|: total variation between the class histogram q of the
particles, decoded to images and labelled by a small classifier trained on real images, and
the real class frequencies p. Needs a target that can decode and classify its points
(``image_report``); scored automatically for every such target.
"""

from __future__ import annotations

import numpy as np
import torch

from metrics.base import MetricContext, MetricError, MetricResult, register_metric


@register_metric(
    "class_tv",
    needs={"image_report"},
    automatic=True,
    description="Class TV: total variation between the class histogram of the decoded "
    "particles (classifier trained on real images) and the real class frequencies",
)
def class_tv_metric(ctx: MetricContext) -> MetricResult:
    """TV between decoded particles' class histogram and the real class frequencies."""
    target = ctx.target
    if target is None or not hasattr(getattr(target, "base", target), "image_report"):
        raise MetricError("class_tv needs a target with an image_report (decoder + classifier)")
    base = getattr(target, "base", target)
    original = (
        target.to_original(ctx.particles.to(torch.float64)) if target is not base else ctx.particles
    )
    report = base.image_report(original)
    info = {
        k: np.asarray(report[k]).tolist() for k in ("class_kl", "classes_missing", "class_counts")
    }
    return MetricResult(float(report["class_tv"]), True, info)
