"""Execution: plan a suite into units, run them (in process, in parallel or on Dask),
store rows atomically under a folder lock, and record provenance. Knows no method or
metric by name; the verdict (:mod:`benchmarks.verdict`) and the presentation
(:mod:`benchmarks.presentation`) read what it stores."""
