"""A solver kept outside this repository: one class and one YAML, found through Hydra's search path.

From a temporary folder (not this checkout) a tiny solver package and its
``conf/solver/*.yaml`` are written; ``python -m harness.run`` sweeps it with
``hydra.searchpath=[file://...]`` and its ``_target_``; then the report and the
check read the sweep. Nothing of the harness is edited: this is the two-file
recipe of the README's "Extending" section.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from harness import check as hc
from harness import results

REPO = Path(__file__).resolve().parents[1]

SOLVER = '''
"""Damped Jacobi on the interior system: x <- x + omega D^-1 (b - A x)."""

import numpy as np

from solvers.base import Solver


class DampedJacobi(Solver):
    family = "stationary"     # a family the harness has never heard of
    bytes_per_node = 50       # the memory guard's estimate for this solver's work space

    def __init__(self, name: str, omega: float = 0.8, device: str = "cpu"):
        super().__init__(name, device=device, omega=omega)
        self.omega = omega

    def setup(self, problem):
        system = problem.linear_system()
        self.A, self.b = system.A, system.b
        self.inv_diag = 1.0 / system.A.diagonal()

    def solve(self, problem, monitor):
        x = np.zeros_like(self.b)
        self.matvecs = 0
        for k in range(1, monitor.max_iters + 1):
            x = x + self.omega * self.inv_diag * (self.b - self.A @ x)
            self.matvecs += 1
            monitor(k, x)
        return x
'''

CONFIG = """
_target_: my_solvers.jacobi.DampedJacobi
name: damped_jacobi
omega: 0.8
"""


def _outside(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    pkg = tmp_path / "my_solvers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "jacobi.py").write_text(textwrap.dedent(SOLVER))
    conf = tmp_path / "my_conf"
    (conf / "solver").mkdir(parents=True)
    (conf / "solver" / "damped_jacobi.yaml").write_text(textwrap.dedent(CONFIG))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")])}
    return conf, env


def _run(args: list[str], tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.run", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_solver_from_outside_the_repo_runs_in_a_sweep_and_is_reported_and_checked(tmp_path):
    conf, env = _outside(tmp_path)
    sweep = tmp_path / "results" / "outside"
    done = _run(["-m", f"hydra.searchpath=[file://{conf}]", "solver=damped_jacobi,cg", "problem=laplace_bilinear",
                 "problem.n=16,24", "budget.max_iters=60", "repeats=1", "verify_timing=false", "progress=false",
                 f"hydra.sweep.dir={sweep}"], tmp_path, env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    df = results.load(sweep)
    mine = df[df["solver"] == "damped_jacobi"]
    assert sorted(mine["n"].unique()) == [16, 24]
    assert set(mine["family"]) == {"stationary"} and set(mine["status"]) == {"budget"}
    last = mine.sort_values("iteration").groupby("n").tail(1)
    first = mine.sort_values("iteration").groupby("n").head(1)
    assert (last["msr"].to_numpy() < first["msr"].to_numpy()).all()  # it converges, as Jacobi does

    # The report: the new family and solver appear in its tables.
    from harness.report import build

    outcome = build(sweep, out=tmp_path / "report", draw=False)
    text = "\n".join(p.read_text() for p in outcome.folder.glob("*.md"))
    assert "damped_jacobi" in text and "stationary" in text

    # The check: bless the sweep as a baseline, compare it with itself (no deviation), then with a
    # copy whose outside solver is two decades worse at its checkpoints (a regression).
    base = tmp_path / "baseline"
    args = ["--current", str(sweep), "--baseline", str(base), "--no-plot", "--out", str(tmp_path / "check")]
    assert hc.main([*args, "--update"]) == 0
    assert hc.main(args) == 0
    worse = df.copy()
    worse.loc[worse["solver"] == "damped_jacobi", "msr"] *= 100.0
    worse_file = tmp_path / "worse.parquet"
    worse.drop(columns=["path"]).to_parquet(worse_file)
    assert hc.main(["--current", str(worse_file), *args[2:]]) == 1


def test_an_unknown_outside_solver_name_lists_the_outside_choices(tmp_path):
    conf, env = _outside(tmp_path)
    done = _run([f"hydra.searchpath=[file://{conf}]", "solver=damped_jacobbi", "problem.n=16"], tmp_path, env)
    assert done.returncode != 0
    assert "damped_jacobi" in (done.stdout + done.stderr)  # listed among the valid solvers


def test_outside_solver_parameters_are_validated(tmp_path):
    conf, env = _outside(tmp_path)
    done = _run([f"hydra.searchpath=[file://{conf}]", "solver=damped_jacobi", "solver.omega=fast",
                 "problem.n=16", f"hydra.run.dir={tmp_path / 'one'}"], tmp_path, env)
    assert done.returncode != 0
    assert "solver.omega" in (done.stdout + done.stderr)
    assert not (tmp_path / "one" / "trace.parquet").exists()
