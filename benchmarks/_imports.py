"""Guard against Hugging Face's ``datasets`` shadowing this repo's ``datasets`` package."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def ensure_local_datasets() -> None:
    """Make ``import datasets`` resolve to ``REPO_ROOT/datasets`` or fail with a clear message."""
    mod = sys.modules.get("datasets")
    if mod is None:
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        mod = importlib.import_module("datasets")
    if not getattr(mod, "__particle_bench__", False):
        where = getattr(mod, "__file__", "?")
        raise ImportError(
            "particle-bench needs its own 'datasets' package "
            f"({REPO_ROOT / 'datasets'}), but 'import datasets' found {where} "
            "(probably Hugging Face 'datasets'). Run from the repository root, or import "
            "'benchmarks' before anything imports Hugging Face datasets."
        )
