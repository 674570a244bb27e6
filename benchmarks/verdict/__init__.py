"""Rows -> verdict: the statistics, marks, ranks and tables that turn long-format rows into
what a leaderboard says. Pure functions of rows (no execution, no plotting), each
statistical statement checked at its stated level by simulation in ``tests/benchmarks``.

* :mod:`.intervals`: Student-t intervals of a cell's mean over seeds;
* :mod:`.paired`: paired t calls per column, Wilcoxon over independent units, Holm;
* :mod:`.yardstick`: every cell against the ``exact`` row of the same size;
* :mod:`.ranks`: column ranks (failures last, copying after clean cells), average ranks,
  the Nemenyi critical difference;
* :mod:`.leaderboard`: the markdown/CSV tables built from the above.
"""
