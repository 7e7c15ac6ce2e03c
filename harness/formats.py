"""Numbers as table text, the same way everywhere: the console summary, the report's tables, the check's table."""

from __future__ import annotations

import pandas as pd

MISSING = "-"  # a value that does not exist (never ran, not recorded)


def number(v, spec: str) -> str:
    """``format(v, spec)``, or ``MISSING`` for None and NaN.

    >>> number(1.234e-11, ".2e"), number(None, ".2e"), number(float("nan"), ".3f")
    ('1.23e-11', '-', '-')
    """
    return MISSING if v is None or pd.isna(v) else format(v, spec)


def count(v) -> str:
    """An iteration count: whole numbers as integers, interpolated ones with one decimal; ``MISSING`` for None/NaN.

    >>> count(12.0), count(12.25), count(None)
    ('12', '12.2', '-')
    """
    if v is None or pd.isna(v):
        return MISSING
    return str(int(v)) if float(v).is_integer() else f"{float(v):.1f}"
