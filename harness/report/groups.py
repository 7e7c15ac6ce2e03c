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

ALL_FIGURES = ("headline", "families", "msr_time", "msr_iterations", "mse_time", "scaling", "setup_solve")


@dataclass(frozen=True)
class Grouping:
    name: str            # also the sweep preset's sweep_name
    title: str
    paper: str           # where in the paper
    solvers: tuple[str, ...]
    figures: tuple[str, ...] = ALL_FIGURES
    extra_sweeps: tuple[str, ...] = ()   # further presets that belong to this comparison
    statements: dict[str, str] | None = None   # figure kind -> the paper's statement the figure tests

    @property
    def sweeps(self) -> tuple[str, ...]:
        return (self.name, *self.extra_sweeps)



PAPER: tuple[Grouping, ...] = (
    Grouping("paper_main", "Metamizer vs first-order optimisers vs Krylov solvers",
             "Fig. 6 (GPU), 14 (large grid), 15-16 (CPU)",
             ("metamizer", "sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta",
              "cg", "minres", "gmres", "lsmr", "cupy_cg", "cupy_minres", "cupy_gmres", "cupy_lsmr", "dst")),
    Grouping("paper_amg_ilu", "AMG and ILU preconditioning", "App. C.1, Fig. 17-18",
             ("metamizer", "cg", "cg_ilu", "pyamg_sa", "pyamg_rs", "cg_pyamg_sa", "cg_pyamg_rs",
              "amgx_*", "dst")),
    Grouping("paper_jacobi", "Jacobi preconditioning", "App. C.2, Fig. 19",
             ("metamizer", "cg", "cg_jacobi", "minres", "gmres", "dst"), extra_sweeps=("paper_jacobi_krylov",)),
    Grouping("paper_quasi_newton", "Newton-CG, nonlinear CG and L-BFGS-B", "App. D, Fig. 20",
             ("metamizer", "newton_cg", "nonlinear_cg", "lbfgsb", "cg", "dst")),
    Grouping("paper_lr_adam", "Learning rates: Adam", "App. E, Fig. 21",
             ("metamizer", "adam", "cg", "dst"), ("msr_time", "msr_iterations", "setup_solve")),
    Grouping("paper_lr_adamw", "Learning rates: AdamW", "App. E, Fig. 21",
             ("metamizer", "adamw", "cg", "dst"), ("msr_time", "msr_iterations", "setup_solve")),
    Grouping("paper_lr_adagrad", "Learning rates: Adagrad", "App. E, Fig. 21",
             ("metamizer", "adagrad", "cg", "dst"), ("msr_time", "msr_iterations", "setup_solve")),
    Grouping("paper_ground_truth", "Error to ground truth (MSE)", "App. F, Fig. 22",
             ("metamizer", "cg", "minres", "gmres", "lsmr", "cupy_cg", "cupy_minres", "cupy_gmres",
              "cupy_lsmr", "dst", "splu"), ("mse_time", "msr_time")),
)
ALL = Grouping("all", "All solvers", "", ("*",))
MODES = {"all": (ALL,), "paper": PAPER, **{g.name: (g,) for g in PAPER}}


def groupings(mode: str) -> tuple[Grouping, ...]:
    if mode not in MODES:
        raise ValueError(f"unknown --mode {mode!r}; choose one of: {', '.join(MODES)}")
    return MODES[mode]


def absent_reason(pattern: str) -> str:
    if pattern == "metamizer":
        return "no results: needs a trained checkpoint (python -m solvers.metamizer.train), then rerun the sweep"
    if pattern.startswith(("cupy_", "amgx")):
        return "no results: GPU solver (needs CUDA and cupy / pyamgx); run the sweep on a GPU machine"
    return "no results: not run in the sweeps loaded (give a folder holding all paper_* sweeps, e.g. results/)"


def select(df: pd.DataFrame, grouping: Grouping) -> tuple[pd.DataFrame, list[str]]:
    """Rows of ``df`` whose solver belongs to the grouping, and the members with no rows.

    A solver that was run in this grouping's own presets (``grouping.sweeps``)
    is taken from them only; a member they lack (e.g. Metamizer and CG for the
    learning-rate studies) is taken from any other sweep in ``df``, at the
    problems and grid sizes of the own presets (any, if none is loaded).
    """
    if grouping is ALL:
        return df, []
    solvers = df["solver"].astype(str)
    member = solvers.map(lambda s: any(fnmatchcase(s, p) for p in grouping.solvers))
    own = df["sweep"].isin(grouping.sweeps)
    in_own = set(solvers[member & own])
    borrow = ~solvers.isin(in_own)
    if own.any():
        cases = pd.MultiIndex.from_frame(df.loc[own, ["problem", "n"]])
        borrow &= pd.MultiIndex.from_frame(df[["problem", "n"]]).isin(cases)
    keep = member & (own | borrow)
    present = set(solvers[keep])
    missing = [p for p in grouping.solvers if not any(fnmatchcase(s, p) for s in present)]
    return df[keep], missing


def absent_rows(missing: list[str], problems: list[str], status: str = "unavailable") -> pd.DataFrame:
    """Job-table rows ("unavailable", with reason) for grouping members that have no results."""
    rows = [{"problem": p, "label": m, "solver": m, "status": status, "message": absent_reason(m)}
            for p in problems for m in missing]
    return pd.DataFrame(rows, columns=["problem", "label", "solver", "status", "message"])
