"""What a result row must say about where it was produced: versions, device, commit, BLAS."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT_FILE = "environment.json"


def git_commit() -> str:
    """HEAD's hash with a ``+dirty`` suffix when tracked files outside ``results/`` differ
    (a run writing into the committed results, or a ``--resume`` appending to them, changes
    no code); 'unknown' outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head[:12] + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def blas_summary() -> str:
    """One line: BLAS libraries and threads (threadpoolctl) and the OPENBLAS_* variables."""
    parts = []
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            parts.append(
                f"{info.get('internal_api')}:{info.get('architecture', '?')}"
                f"x{info.get('num_threads')}"
            )
    except Exception as exc:  # threadpoolctl is optional at run time
        parts.append(f"threadpoolctl unavailable ({exc})")
    env = [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("OPENBLAS_")]
    return " ".join(sorted(set(parts)) + env)


@functools.cache
def environment(device: str = "cpu") -> dict[str, Any]:
    """Versions, device, commit and BLAS set-up, recorded with every suite run."""
    import numpy
    import ot
    import scipy
    import sklearn
    import torch

    dev = device
    if device.startswith("cuda") and torch.cuda.is_available():
        dev = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {
        "commit": git_commit(),
        "device": dev,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pot": ot.__version__,
        "sklearn": sklearn.__version__,
        "machine": f"{platform.machine()} x{os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(),
        "blas": blas_summary(),
    }


def read_environment(out_dir: Path) -> dict[str, Any] | None:
    """The ``environment.json`` record of a suite folder (None when absent or unreadable)."""
    import json

    try:
        record = json.loads((Path(out_dir) / ENVIRONMENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def continued_environment(
    previous: dict[str, Any] | None, current: dict[str, Any]
) -> dict[str, Any]:
    """The environment record of a folder that a ``--resume``, ``--retry-failed`` or
    ``--rerun`` run continues: the ``previous`` record (the one that made the kept rows) with
    ``current`` appended to its ``refreshed`` list when it differs from the last environment
    recorded; ``current`` alone when there is no usable previous record."""
    if not isinstance(previous, dict) or "commit" not in previous:
        return dict(current)
    history = [e for e in previous.get("refreshed", []) if isinstance(e, dict)]
    base = {k: v for k, v in previous.items() if k != "refreshed"}
    last = history[-1] if history else base
    if current != last:
        history.append(dict(current))
    return {**base, "refreshed": history} if history else base


@contextlib.contextmanager
def environment_settings(settings: dict[str, str | None]) -> Iterator[None]:
    """Set the non-None ``settings`` in ``os.environ`` (inherited by worker processes) for
    the block only, so an in-process call leaves the environment as it found it."""
    before = {k: os.environ.get(k) for k in settings}
    os.environ.update({k: v for k, v in settings.items() if v is not None})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
