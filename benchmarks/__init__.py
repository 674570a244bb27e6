"""particle-bench harness: suites, runner, result store, leaderboards (``python -m benchmarks``)."""

from benchmarks._imports import ensure_local_datasets

ensure_local_datasets()
