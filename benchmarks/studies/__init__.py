"""One-off studies: each module is runnable as ``python -m benchmarks.studies.NAME`` and
writes a result file under ``results/`` that names the command that produced it.

Studies use the harness's own pieces (``benchmarks.execution.data.prepare`` for splits, eps and
x0; ``benchmarks.presentation.tables.markdown_table`` for tables) rather than redoing them. A
study that is really a suite with a parameter grid belongs in a suite file run by
``python -m benchmarks run --suite-file``.
"""
