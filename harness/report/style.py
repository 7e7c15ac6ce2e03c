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
# Strong, mutually distinct colours on white (Trubetskoy's 20 distinct colours without the pale ones, then
# Kelly's maximum-contrast colours not already covered); assigned in legend order (family, then label), so
# the solvers of one family, which share a line style, get clearly different colours.
DISTINCT = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
            "#469990", "#800000", "#808000", "#000075", "#a9a9a9", "#000000", "#9acd32", "#d4a900",
            "#604e97", "#e68fac", "#0067a5", "#c2b280", "#2b3d26", "#882d17", "#a1caf1", "#f99379",
            "#00a36c", "#b3446c", "#654522"]
PART_COLOURS = {"setup": "#8c8c8c", "solve": "#1f4e79", "unreached": "#d9a441"}


def family_order(families: Iterable[str]) -> list[str]:
    present = set(families)
    return [f for f in FAMILIES if f in present] + sorted(present - set(FAMILIES))


def dashes(families: Iterable[str]) -> dict[str, tuple | str]:
    return {f: FAMILY_DASHES.get(f, "") for f in family_order(families)}


def markers(families: Iterable[str]) -> dict[str, str]:
    return {f: FAMILY_MARKERS.get(f, "o") for f in family_order(families)}


def label_order(labels: Iterable[str], families: Iterable[str]) -> list[str]:
    """Labels in legend order: by family (``FAMILIES`` order), then alphabetically."""
    family = dict(zip(labels, families, strict=True))
    rank = {f: i for i, f in enumerate(family_order(family.values()))}
    return sorted(family, key=lambda label: (rank[family[label]], label))


def palette(labels: Iterable[str], families: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """label -> colour, deterministic; the dict's order is the legend order (``label_order``).

    Built once per report from every label in the results, so a solver keeps its
    colour in every figure of the report.
    """
    ordered = label_order(labels, families)
    base = sns.color_palette(DISTINCT)
    if len(ordered) > len(base):
        base = base + sns.color_palette("husl", len(ordered) - len(base))
    return dict(zip(ordered, base, strict=False))
