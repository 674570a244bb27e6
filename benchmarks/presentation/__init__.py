"""Presentation: tables, figures, the HTML report and the README excerpts, all built from
stored rows and the verdict (:mod:`benchmarks.verdict`); nothing here runs a sampler."""
