"""Report modes: every solver together, or the Metamizer paper's comparisons.

A paper grouping names the solvers (config names, shell-style patterns allowed)
of one comparison in the paper and the sweep preset that runs it
(``conf/sweep/<name>.yaml``). Members absent from the results are reported as
"unavailable" rows with the likely reason, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

import pandas as pd

from harness.results import CELL

ALL_FIGURES = ("headline", "families", "msr_time", "msr_iterations", "mse_time", "scaling", "setup_solve")


@dataclass(frozen=True)
class Grouping:
    name: str            # also the sweep preset's sweep_name
    title: str
    paper: str           # where in the paper
    solvers: tuple[str, ...]
    figures: tuple[str, ...] = ALL_FIGURES
    extra_sweeps: tuple[str, ...] = ()   # further presets that belong to this comparison
    statements: dict[str, str] | None = None   # figure kind ("*": any other) -> the paper's statement it tests

    def statement(self, kind: str) -> str | None:
        s = self.statements or {}
        return s.get(kind, s.get("*"))

    @property
    def sweeps(self) -> tuple[str, ...]:
        return (self.name, *self.extra_sweeps)



CITE = "Wandel et al., ICLR 2025"


def _quote(text: str, where: str) -> str:
    note = " Square brackets: our insertion or omission." if "[" in text else ""
    return f"\u201c{text}\u201d ({CITE}, {where}).{note}"


# The paper's statements each comparison tests, quoted (figure kind -> statement; "*" = every other figure).
MAIN_GPU = _quote("Figure 6 shows that traditional gradient based approaches are not competitive with current sparse "
                  "linear system solvers regarding runtime or accuracy.", "Sec. 5.1.1")
MAIN_CPU = _quote("On a [100 x 100] grid, CPU based solvers are actually slightly faster than GPU based solvers and "
                  "Metamizer (see Figure 15). [...] However, on a larger grid, GPU parallelization pays off "
                  "significantly resulting in faster convergence speed of Metamizer compared to CPU based solvers "
                  "(see Figure 16).", "App. B.2")
MAIN_SCALING = _quote("On a larger grid (see Figure 14), Metamizer demonstrates improved scaling behavior compared to "
                      "sparse linear system solvers", "App. B.1")
AMG = _quote("AMG preconditioning resulted in a significant speed-up over non-preconditioned solvers on the CPU as "
             "well as the GPU (see e.g. Figure 17 and Figure 18). While Metamizer is still faster than CPU based AMG "
             "methods, the highly optimized AMGX package by Nvidia is up to 10 times faster than Metamizer on the "
             "GPU.", "App. C.1")
JACOBI = _quote("Since the diagonal of the Laplace operator on a regular grid corresponds closely to the identity "
                "matrix, this preconditioner did not help to significantly reduce the number of iterations but "
                "resulted in a slight computational overhead and thus a slowdown of convergence (see Figure 19).",
                "App. C.2")
QUASI = _quote("As can be seen in Figure 20, optimizers like Newton-CG, Nonlinear CG or L-BFGS exhibit much slower "
               "convergence.", "App. D")
LR = _quote("We compared various different learning rates for all gradient descent solvers and only reported results "
            "for learning rates that resulted in good trade-offs between convergence speed and accuracy in "
            "Figure 6.", "App. E")
TRUTH = _quote("We compared the mean squared errors of Metamizer and various GPU based linear system solvers to "
               "analytical ground truth values of the Laplace equation. Figure 22 shows fast convergence to highly "
               "accurate results as already indicated by the mean residual errors in Figure 14.", "App. F")

PAPER: tuple[Grouping, ...] = (
    Grouping("paper_main", "Metamizer vs first-order optimisers vs Krylov solvers",
             "Fig. 6 (GPU), 14 (large grid), 15-16 (CPU)",
             ("metamizer", "metamizer_paper", "sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta",
              "cg", "minres", "gmres", "lsmr", "cupy_cg", "cupy_minres", "cupy_gmres", "cupy_lsmr", "dst"),
             statements={"*": MAIN_GPU, "headline": MAIN_CPU, "msr_time": MAIN_CPU, "scaling": MAIN_SCALING}),
    Grouping("paper_amg_ilu", "AMG and ILU preconditioning", "App. C.1, Fig. 17-18",
             ("metamizer", "metamizer_paper", "cg", "cg_ilu", "pyamg_sa", "pyamg_rs", "cg_pyamg_sa", "cg_pyamg_rs",
              "amgx_*", "dst"), statements={"*": AMG}),
    Grouping("paper_jacobi", "Jacobi preconditioning", "App. C.2, Fig. 19",
             ("metamizer", "metamizer_paper", "cg", "cg_jacobi", "minres", "gmres", "dst"),
             extra_sweeps=("paper_jacobi_krylov",),
             statements={"*": JACOBI}),
    Grouping("paper_quasi_newton", "Newton-CG, nonlinear CG and L-BFGS-B", "App. D, Fig. 20",
             ("metamizer", "metamizer_paper", "newton_cg", "nonlinear_cg", "lbfgsb", "cg", "dst"),
             statements={"*": QUASI}),
    Grouping("paper_lr_adam", "Learning rates: Adam", "App. E, Fig. 21",
             ("metamizer", "metamizer_paper", "adam", "cg", "dst"), ("msr_time", "msr_iterations", "setup_solve"),
             statements={"*": LR}),
    Grouping("paper_lr_adamw", "Learning rates: AdamW", "App. E, Fig. 21",
             ("metamizer", "metamizer_paper", "adamw", "cg", "dst"), ("msr_time", "msr_iterations", "setup_solve"),
             statements={"*": LR}),
    Grouping("paper_lr_adagrad", "Learning rates: Adagrad", "App. E, Fig. 21",
             ("metamizer", "metamizer_paper", "adagrad", "cg", "dst"), ("msr_time", "msr_iterations", "setup_solve"),
             statements={"*": LR}),
    Grouping("paper_ground_truth", "Error to ground truth (MSE)", "App. F, Fig. 22",
             ("metamizer", "metamizer_paper", "cg", "minres", "gmres", "lsmr", "cupy_cg", "cupy_minres", "cupy_gmres",
              "cupy_lsmr", "dst", "splu"), ("mse_time", "msr_time"), statements={"*": TRUTH}),
)
ALL = Grouping("all", "All solvers", "", ("*",))
MODES = {"all": (ALL,), "paper": PAPER, **{g.name: (g,) for g in PAPER}}


def groupings(mode: str) -> tuple[Grouping, ...]:
    if mode not in MODES:
        raise ValueError(f"unknown --mode {mode!r}; choose one of: {', '.join(MODES)}")
    return MODES[mode]


def absent_reason(pattern: str) -> str:
    if pattern.startswith(("cupy_", "amgx")):
        return "no results: GPU solver (needs CUDA and cupy / pyamgx); run the sweep on a GPU machine"
    return "no results: not run in the sweeps loaded (give a folder holding all paper_* sweeps, e.g. results/)"


def one_sweep_per_cell(df: pd.DataFrame) -> pd.Series:
    """Rows of the newest sweep (by when its traces were written) that holds each cell (problem, n,
    label): a cell run by several sweeps, whose budgets may differ, is read from one of them."""
    written = df.groupby([*CELL, "sweep"], as_index=False)["written"].max()
    chosen = written.sort_values(["written", "sweep"]).drop_duplicates(CELL, keep="last")
    return pd.Series(pd.MultiIndex.from_frame(df[[*CELL, "sweep"]])
                     .isin(pd.MultiIndex.from_frame(chosen[[*CELL, "sweep"]])), index=df.index)


def select(df: pd.DataFrame, grouping: Grouping) -> tuple[pd.DataFrame, list[str]]:
    """Rows of ``df`` whose solver belongs to the grouping, and the members with no rows.

    A solver that was run in this grouping's own presets (``grouping.sweeps``)
    is taken from them only; a member they lack (e.g. Metamizer and CG for the
    learning-rate studies) is taken from another sweep in ``df``, at the
    problems and grid sizes of the own presets (any, if none is loaded). Rows
    not from the own presets (all of them for ``ALL``) are read one sweep per
    cell (``one_sweep_per_cell``).
    """
    if grouping is ALL:
        return df[one_sweep_per_cell(df)], []
    solvers = df["solver"].astype(str)
    member = solvers.map(lambda s: any(fnmatchcase(s, p) for p in grouping.solvers))
    own = df["sweep"].isin(grouping.sweeps)
    in_own = set(solvers[member & own])
    borrow = ~solvers.isin(in_own) & member & ~own
    if own.any():
        cases = pd.MultiIndex.from_frame(df.loc[own, ["problem", "n"]])
        borrow &= pd.MultiIndex.from_frame(df[["problem", "n"]]).isin(cases)
    if borrow.any():
        borrow &= one_sweep_per_cell(df[borrow]).reindex(df.index, fill_value=False)
    keep = member & (own | borrow)
    present = set(solvers[keep])
    missing = [p for p in grouping.solvers if not any(fnmatchcase(s, p) for s in present)]
    return df[keep], missing


def absent_rows(missing: list[str], problems: list[str], status: str = "unavailable") -> pd.DataFrame:
    """Job-table rows ("unavailable", with reason) for grouping members that have no results."""
    rows = [{"problem": p, "label": m, "solver": m, "status": status, "message": absent_reason(m)}
            for p in problems for m in missing]
    return pd.DataFrame(rows, columns=["problem", "label", "solver", "status", "message"])
