"""Comparison report for a sweep: ``python -m harness.report [RESULTS_DIR]``.

Modules, one job each: ``metrics`` (time to target, tables; pure pandas),
``tables`` (formatting), ``figures`` (seaborn), ``panels`` (the family-best headline and
per-family figures), ``interactive`` (plotly figures for index.html), ``costs`` (training bill,
thread speed-ups), ``groups`` (report modes, the paper's comparisons and statements),
``machine`` (the machine and software, from the metadata), ``markdown`` / ``html`` (writers), ``build`` (assembles a
report folder), ``__main__`` (the CLI).
"""

from .build import RULE, build

__all__ = ["RULE", "build"]
