"""One look for every figure: a fixed colour per solver label, a line style per family."""

from __future__ import annotations

import colorsys
from collections.abc import Iterable

from matplotlib.colors import to_rgb

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
FAMILY_WORDS = {"neural": "neural", "first_order": "first-order", "krylov": "Krylov", "multigrid": "multigrid",
                "quasi_newton": "quasi-Newton", "direct": "direct"}
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


# Every solver configuration of the harness, in a fixed order: the i-th gets colour i, whatever else a report
# holds (the neural variants sit where the colours are most unlike Metamizer's red: magenta, black),
# so a solver has one colour in every figure of every report. (Colour only; family membership comes
# from the traces.) Labels not listed (new solvers, parameter variants like "adam(lr=0.1)", thread
# variants) take their solver's colour when it is free in the report, else the next spare colour.
KNOWN = ("metamizer", "cg", "minres", "gmres", "lsmr", "bicgstab", "metamizer_groupnorm", "lgmres", "cg_jacobi",
         "cg_ilu", "pyamg_sa", "pyamg_rs", "cg_pyamg_sa", "metamizer_paper", "newton_cg", "nonlinear_cg", "lbfgsb",
         "sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "splu", "dst", "gcrotmk", "cg_pyamg_rs",
         "cupy_cg", "cupy_minres", "cupy_gmres", "cupy_lsmr", "metamizer_cuda", "adam_cuda",
         "amgx_pcg_aggregation_jacobi", "amgx_aggregation_gs", "amgx_amg_classical_l1_trunc",
         "amgx_fgmres_classical_aggressive_hmis", "amgx_pbicgstab", "metamizer_faithful")
EXTRA = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#1f78b4", "#33a02c", "#fb9a99",
         "#cab2d6", "#6a3d9a", "#b15928"]


def _colours(count: int) -> list[tuple[float, float, float]]:
    """The fixed colours, then evenly spaced hues for any beyond them."""
    base = [to_rgb(c) for c in DISTINCT + EXTRA]
    more = max(0, count - len(base))
    return base + [colorsys.hls_to_rgb((i + 0.5) / more, 0.45, 0.75) for i in range(more)]


def palette(labels: Iterable[str], families: Iterable[str],
            solvers: Iterable[str] | None = None) -> dict[str, tuple[float, float, float]]:
    """label -> colour, deterministic; the dict's order is the legend order (``label_order``).

    Known solver names (``KNOWN``) always get the same colour; see ``KNOWN`` for other labels.
    """
    labels = list(labels)
    ordered = label_order(labels, families)
    solver_of = dict(zip(labels, solvers, strict=True)) if solvers is not None else {}
    fixed = _colours(len(KNOWN) + len(labels))
    spare = iter(fixed[len(KNOWN):])
    out: dict[str, tuple[float, float, float]] = {}
    used: set[tuple[float, float, float]] = set()
    for label in ordered:           # known names first, so a variant never takes their colour
        if label in KNOWN:
            out[label] = fixed[KNOWN.index(label)]
            used.add(out[label])
    for label in sorted(set(ordered) - set(out)):
        solver = solver_of.get(label, label)
        colour = fixed[KNOWN.index(solver)] if solver in KNOWN else None
        if colour is None or colour in used:
            colour = next(c for c in spare if c not in used)
        out[label] = colour
        used.add(colour)
    return {label: out[label] for label in ordered}
