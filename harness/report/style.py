"""One look for every figure: a fixed colour per solver label, a line style per family."""

from __future__ import annotations

from collections.abc import Iterable

import seaborn as sns

# Families in a fixed order (legend order); unknown families go last, solid.
FAMILIES = ("neural", "first_order", "krylov", "multigrid", "quasi_newton", "direct")
FAMILY_DASHES: dict[str, tuple | str] = {
    "neural": "",               # solid
    "first_order": (1, 1.5),    # dotted
    "krylov": (4, 1.5),         # dashed
    "multigrid": (5, 1.5, 1, 1.5),  # dash-dot
    "quasi_newton": (2, 1, 2, 1, 6, 1),
    "direct": (8, 2, 1, 2, 1, 2),   # the limit line: long dash, two dots
}
FAMILY_MARKERS = {"neural": "o", "first_order": "v", "krylov": "s", "multigrid": "D",
                  "quasi_newton": "^", "direct": "X"}
# Strong, mutually distinct colours on white (after Trubetskoy's 20 distinct colours, light ones removed);
# alphabetically neighbouring labels (cg, cg_ilu, cg_jacobi, ...) get clearly different colours.
DISTINCT = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
            "#469990", "#800000", "#808000", "#000075", "#a9a9a9", "#000000", "#9acd32", "#d4a900"]
PART_COLOURS = {"setup": "#8c8c8c", "solve": "#1f4e79", "unreached": "#d9a441"}


def family_order(families: Iterable[str]) -> list[str]:
    present = set(families)
    return [f for f in FAMILIES if f in present] + sorted(present - set(FAMILIES))


def dashes(families: Iterable[str]) -> dict[str, tuple | str]:
    return {f: FAMILY_DASHES.get(f, "") for f in family_order(families)}


def markers(families: Iterable[str]) -> dict[str, str]:
    return {f: FAMILY_MARKERS.get(f, "o") for f in family_order(families)}


def palette(labels: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """label -> colour, deterministic: labels sorted, colours from a fixed list.

    Built once per report from every label in the results, so a solver keeps its
    colour in every figure of the report.
    """
    ordered = sorted(set(labels))
    base = sns.color_palette(DISTINCT) + sns.color_palette("tab10") + sns.color_palette("Dark2")
    if len(ordered) > len(base):
        base = base + sns.color_palette("husl", len(ordered) - len(base))
    return dict(zip(ordered, base, strict=False))
