"""Comparison report for a sweep: ``python -m harness.report [RESULTS_DIR]``.

Modules, one job each: ``metrics`` (time to target, tables; pure pandas),
``tables`` (formatting), ``figures`` (seaborn), ``groups`` (report modes and the
paper's comparisons), ``environment`` (machine metadata), ``markdown`` / ``html``
(writers), ``build`` (assembles a report folder), ``__main__`` (the CLI).
"""

from .build import RULE, build

__all__ = ["RULE", "build"]
