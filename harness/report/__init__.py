"""Comparison report for a sweep: ``python -m harness.report [RESULTS_DIR]``.

Modules, one job each: ``metrics`` (time to target, tables; pure pandas), ``verdict`` (the neural solvers
against the fastest classical ones, in numbers and words), ``tables`` (formatting), ``curves`` (the curves
as drawn: repeats pooled, thinned), ``canvas`` (a static figure's frame and files), ``figures``
(convergence, scaling, setup and training-bill figures), ``panels`` (the family-best headline and per-family
figures), ``render`` (draws the figures in parallel), ``interactive`` (plotly.js figures for index.html),
``costs`` (training bill, thread speed-ups), ``groups`` (report modes, the paper's comparisons and
statements), ``machine`` (the machine and software, from the metadata), ``sections`` (one grouping's
tables and figures), ``markdown`` / ``html`` (writers), ``build`` (assembles a report folder),
``__main__`` (the CLI).
"""

from .build import RULE, build

__all__ = ["RULE", "build"]
