"""The cases of docs/ROBUSTNESS.md's table (run by scripts/robustness_table.py), one class of fault per block.
Over 300 lines: a table of ~140 cases and the few files they need; each entry is one line of data.

A case is an entry point (``module``), its arguments, the text its line must hold (``key``),
the exit status it must give (``code``), and optionally a setup that puts files in the case's
folder first (``setup``: a name in ``SETUPS``; its placeholders, e.g. ``{trace}``, are filled
in the arguments). ``{tmp}`` is the case's folder. Refused cases (exit 2) must write nothing;
every case must leave the files that were there before untouched.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAULTY = "tests.faulty_solvers"
RUN, REPORT, CHECK, EVALUATE = "harness.run", "harness.report", "harness.check", "harness.evaluate"


@dataclass(frozen=True)
class Case:
    group: str                    # the class of fault (issue 19's list)
    args: tuple[str, ...]
    key: str                      # text the judged line must contain
    module: str = RUN
    code: int = 2                 # the exit status it must give
    setup: str | None = None      # a name in SETUPS
    last: bool = False            # judge the last line only (a job logs its own lines first)


def C(group: str, args: str | tuple, key: str, **kw) -> Case:  # noqa: N802 - a table row
    return Case(group, tuple(args.split()) if isinstance(args, str) else args, key, **kw)


INPUT, FOLDERS, READERS, FAULTS, EXITS = ("bad input", "nothing overwritten", "readers validate",
                                          "faults recorded", "exit status")
CASES: list[Case] = [
    # --- harness.run: one line naming the key, before anything is written (the first 46: docs/ROBUSTNESS.md, round 2)
    C(INPUT, "solver=nope", "solver"),
    C(INPUT, "problem=nope", "problem"),
    C(INPUT, "+sweep=nope", "sweep"),
    C(INPUT, "solver=", "solver"),
    C(INPUT, "problem.n=4", "problem.n"),
    C(INPUT, "problem.n=6.5", "problem.n"),
    C(INPUT, "problem.n=abc", "problem.n"),
    C(INPUT, "problem.h=5", "problem.h"),
    C(INPUT, "problem.n=null", "problem.n"),
    C(INPUT, "problem=laplace_harmonic problem.variant=zz", "problem.variant"),
    C(INPUT, "problem=laplace_obstacles problem.n_boxes=-1", "problem.n_boxes"),
    C(INPUT, "+problem.bogus=1", "problem.bogus"),
    C(INPUT, "problem.n=64,,", "problem.n"),
    C(INPUT, "-m +sweep=laplace_scaling problem.n=64,4", "problem.n"),
    C(INPUT, "budget.max_iters=-5", "budget.max_iters"),
    C(INPUT, "budget.max_iters=2.5", "budget.max_iters"),
    C(INPUT, "budget.max_seconds=0", "budget.max_seconds"),
    C(INPUT, "budget.target_msr=abc", "budget.target_msr"),
    C(INPUT, "budget.target_msr=-1", "budget.target_msr"),
    C(INPUT, "budget.divergence_factor=0", "budget.divergence_factor"),
    C(INPUT, "+budget.bogus=1", "budget.bogus"),
    C(INPUT, "threads=0", "threads"),
    C(INPUT, "threads=-1", "threads"),
    C(INPUT, "threads=abc", "threads"),
    C(INPUT, "seed=abc", "seed"),
    C(INPUT, "seed=-1", "seed"),
    C(INPUT, "repeats=0", "repeats"),
    C(INPUT, "verify_timing=maybe", "verify_timing"),
    C(INPUT, "job_timeout_s=0", "job_timeout_s"),
    C(INPUT, "isolate=2", "isolate"),
    C(INPUT, "sweep_name=a/b", "sweep_name"),
    C(INPUT, "+bogus=1", "bogus"),
    C(INPUT, "+solver.bogus=1", "solver.bogus"),
    C(INPUT, "solver=adam +solver.lrr=0.5", "solver.lrr"),
    C(INPUT, "solver.bogus=1", "solver.bogus"),
    C(INPUT, "solver=adam solver.lr=abc", "solver.lr"),
    C(INPUT, "solver=adam solver.lr=0", "solver.lr"),
    C(INPUT, "-m solver=adam solver.lr=0.1,-1", "solver.lr"),
    C(INPUT, "solver=cg solver.method=nope", "solver.method"),
    C(INPUT, "solver=adam solver.device=tpu", "solver.device"),
    C(INPUT, "solver=metamizer solver.checkpoint=/tmp", "solver.checkpoint"),
    C(INPUT, "solver=metamizer solver.checkpoint=/nonexistent", "checkpoint"),
    C(INPUT, "problem.n=40000", "problem.n"),
    C(INPUT, "hydra.run.dir={file}/sub", "hydra.run.dir", setup="file"),
    C(INPUT, "-m resume=/nonexistent", "resume"),
    C(INPUT, "-m hydra.sweep.subdir=fixed", "hydra.sweep.subdir"),
    # --- harness.run: round 3 (issue 19): every key, every sweep syntax
    C(INPUT, "warmup=no", "warmup"),
    C(INPUT, "warmup=1", "warmup"),
    C(INPUT, "-m repeat_solve_under_s=-1", "repeat_solve_under_s"),
    C(INPUT, "repeat_solve_under_s=abc", "repeat_solve_under_s"),
    C(INPUT, "repeats=1001", "repeats"),
    C(INPUT, "threads=5000", "threads"),
    C(INPUT, "budget.max_seconds=inf", "budget.max_seconds"),
    C(INPUT, "budget.max_seconds=nan", "budget.max_seconds"),
    C(INPUT, "job_timeout_s=inf", "job_timeout_s"),
    C(INPUT, "budget.target_msr=inf", "budget.target_msr"),
    C(INPUT, "budget.divergence_factor=1", "budget.divergence_factor"),
    C(INPUT, "seed=4294967296", "seed"),
    C(INPUT, "progress=maybe", "progress"),
    C(INPUT, "memory_check=yes", "memory_check"),
    C(INPUT, ("sweep_name=",), "sweep_name"),
    C(INPUT, "seed=${oops}", "seed"),
    C(INPUT, "budget.max_iters=${nope.x}", "budget.max_iters"),
    C(INPUT, ("solver=metamizer", "solver.checkpoint=''"), "solver.checkpoint"),
    C(INPUT, "problem=laplace_obstacles problem.seed=-1", "problem.seed"),
    C(INPUT, "problem.h=16 problem.w=5", "problem.w"),
    C(INPUT, "solver=adam solver.gradient=nope", "solver.gradient"),
    C(INPUT, "solver=pyamg_sa solver.cycle=Z", "solver.cycle"),
    C(INPUT, "solver=lbfgsb +solver.maxcor=0", "solver.maxcor"),
    C(INPUT, "solver=dst solver.workers=0", "solver.workers"),
    C(INPUT, "+sweep=ci problem.n=4", "problem.n"),
    C(INPUT, "-m solver=cg,nope", "solver"),
    C(INPUT, "-m problem.n=interval(8,16)", "problem.n"),
    C(INPUT, "-m solver=glob(zz*)", "solver"),
    C(INPUT, "-m problem.n=glob(1*)", "problem.n"),
    C(INPUT, "problem.n=choice(16,20)", "problem.n"),
    C(INPUT, "solver=cg,minres", "solver"),
    C(INPUT, ("hydra.run.dir=",), "hydra.run.dir"),
    C(INPUT, "resume={file}", "resume", setup="file"),
    # --- nothing written is replaced: folders, subfolders, locks, resume
    C(FOLDERS, "-m hydra.sweep.subdir=../escape/${hydra.job.num}", "hydra.sweep.subdir"),
    C(FOLDERS, "-m hydra.sweep.subdir=/abs/${hydra.job.num}", "hydra.sweep.subdir"),
    C(FOLDERS, "hydra.output_subdir=../../escape", "hydra.output_subdir"),
    C(FOLDERS, "hydra.run.dir={job}", "already holds a job's trace", setup="traced_job"),
    C(FOLDERS, "-m hydra.sweep.dir={sweep}", "already holds a sweep", setup="sweep_record"),
    C(FOLDERS, "-m resume={sweep} hydra.sweep.dir={other}", "is not inside resume=", setup="two_folders"),
    C(FOLDERS, "resume={sweep} hydra.run.dir={other}/job", "is not inside resume=", setup="two_folders"),
    C(FOLDERS, "problem.n=16 budget.max_iters=3 hydra.run.dir={job}", "", code=0, setup="hydra_only", last=True),
    C(FOLDERS, "-m problem.n=16 budget.max_iters=3 resume={sweep} hydra.sweep.subdir=${hydra.job.num}",
      "already complete", code=0, setup="complete_sweep", last=True),
    C(FOLDERS, "{sweep} --out {mine}", "--out", module=REPORT, setup="report_out_full"),
    C(FOLDERS, "{sweep} --out {file}", "--out", module=REPORT, setup="report_out_file"),
    C(FOLDERS, "--out {file}", "--out", module=CHECK, setup="file"),
    C(FOLDERS, "--out {mine}", "--out", module=CHECK, setup="report_out_full"),
    C(FOLDERS, "--update --baseline {job_trace} --current {current} --out {tmp}/o", "--update never overwrites",
      module=CHECK, setup="job_trace"),
    # --- every reader validates what it reads
    C(READERS, "{tmp}/nope", "does not exist", module=REPORT, code=1),
    C(READERS, "{file}", "is a file", module=REPORT, code=1, setup="file"),
    C(READERS, "{empty}", "no traces", module=REPORT, code=1, setup="empty"),
    C(READERS, "{sweep}", "unreadable", module=REPORT, code=1, setup="garbage_trace"),
    C(READERS, "{sweep}", "time_s is missing, NaN or negative", module=REPORT, code=1, setup="nan_time_trace"),
    C(READERS, "{sweep}", "msr is negative", module=REPORT, code=1, setup="negative_msr_trace"),
    C(READERS, "{sweep}", "missing columns ['msr']", module=REPORT, code=1, setup="no_msr_trace"),
    C(READERS, "{sweep} --target inf", "--target", module=REPORT, setup="nan_time_trace"),
    C(READERS, "{sweep} --target nan", "--target", module=REPORT, setup="nan_time_trace"),
    C(READERS, "{sweep} --target 0", "--target", module=REPORT, setup="nan_time_trace"),
    C(READERS, ("{sweep}", "--target=-1e-10"), "--target", module=REPORT, setup="nan_time_trace"),
    C(READERS, "{sweep} --target abc", "--target", module=REPORT, setup="nan_time_trace"),
    C(READERS, "{sweep} --mode nope", "--mode", module=REPORT, setup="nan_time_trace"),
    C(READERS, "{sweep} --reports-root {file}", "--reports-root", module=REPORT, setup="report_out_file"),
    C(READERS, "--baseline {empty}", "no baseline at", module=CHECK, setup="empty"),
    C(READERS, "--baseline {baseline}", "holds no job", module=CHECK, setup="empty_baseline"),
    C(READERS, "--baseline {baseline}", "is not a harness.check baseline", module=CHECK, setup="foreign_baseline"),
    C(READERS, "--baseline {baseline}", "is the baseline of sweep", module=CHECK, setup="other_sweep_baseline"),
    C(READERS, "--baseline {baseline}", "unreadable", module=CHECK, setup="garbage_baseline"),
    C(READERS, "--current {empty}", "no traces", module=CHECK, setup="empty"),
    C(READERS, "--current {tmp}/nope", "does not exist", module=CHECK),
    C(READERS, "--current {file}", "unreadable", module=CHECK, setup="file"),
    C(READERS, "--current {current}", "no job was compared", module=CHECK, setup="foreign_current"),
    C(READERS, "--max-rows abc", "--max-rows", module=CHECK),
    C(READERS, "--timing-factor 1", "--timing-factor", module=CHECK),
    C(READERS, "--timing-factor inf", "--timing-factor", module=CHECK),
    C(READERS, "--sweep nope", "--sweep", module=CHECK),
    C(READERS, "--solver nope", "--solver", module=EVALUATE),
    C(READERS, "--solver cg --sizes 4", "--sizes", module=EVALUATE),
    C(READERS, "--solver cg --sizes abc", "--sizes", module=EVALUATE),
    C(READERS, "--solver cg --iters 0", "--iters", module=EVALUATE),
    C(READERS, "--solver cg --threads 0", "--threads", module=EVALUATE),
    C(READERS, "--problems nope", "--problems", module=EVALUATE),
    C(READERS, "/nonexistent.safetensors", "checkpoint", module=EVALUATE),
    C(READERS, "/tmp", "checkpoint", module=EVALUATE),
    C(READERS, "--solver adam --device tpu", "--device", module=EVALUATE),
    # --- faults are recorded, never a traceback, and the exit status says so
    C(FAULTS, f"solver._target_={FAULTY}.Raises problem.n=16", "ended error", code=1, last=True),
    C(FAULTS, f"solver._target_={FAULTY}.Hangs problem.n=16 job_timeout_s=1", "ended timeout", code=1, last=True),
    C(FAULTS, f"solver._target_={FAULTY}.Segfaults problem.n=16", "SIGSEGV", code=1, last=True),
    C(FAULTS, f"solver._target_={FAULTY}.HangsInSetup problem.n=16 job_timeout_s=1", "during setup", code=1,
      last=True),
    C(FAULTS, "-m problem=laplace_obstacles problem.n=16 problem.n_boxes=10000000 job_timeout_s=1",
      "while building the problem", code=1, last=True),
    C(FAULTS, "--solver cupy_cg --sizes 16 --iters 5", "unavailable", module=EVALUATE, code=1),
    C(EXITS, "-m solver=cupy_cg,cg problem.n=16 budget.max_iters=5", "1 of 2 jobs failed (1 unavailable)", code=1,
      last=True),
    C(EXITS, f"-m solver._target_={FAULTY}.Raises,solvers.krylov.Krylov problem.n=16 budget.max_iters=5",
      "1 of 2 jobs failed (1 error)", code=1, last=True),
    C(EXITS, "-m solver=cupy_cg,cupy_minres problem.n=16", "2 of 2 jobs failed (2 unavailable)", code=1, last=True),
    C(EXITS, "-m problem.n=16,20 budget.max_iters=3", "", code=0, last=True),
    C(EXITS, "problem.n=16,20 budget.max_iters=3 -m", "", code=0, last=True),
]


# --- files the cases need ----------------------------------------------------------------------------------
def _baseline():
    sys.path.insert(0, str(REPO))
    from harness.check import load_baseline

    return load_baseline()


def _write(df, path: Path, meta: dict) -> Path:
    from harness.results import COLUMNS, write_trace

    return write_trace(df[list(COLUMNS)], path, meta, overwrite=True)


def _one_job():
    """One job of the committed baseline: cg on laplace_bilinear at n = 32."""
    base, _ = _baseline()
    return base[(base["solver"] == "cg") & (base["n"] == 32) & (base["problem"] == "laplace_bilinear")].copy()


def _trace_with(folder: Path, column: str, values) -> dict:
    """A sweep folder holding that job's trace with ``column`` replaced by ``values(job)`` (None: dropped)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.results import COLUMNS

    job = _one_job()
    df = job.drop(columns=[column]) if values is None else job.assign(**{column: values(job)})
    path = folder / "sweep" / "j" / "trace.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(df[[c for c in COLUMNS if c in df.columns]], preserve_index=False), path)
    return {"sweep": str(folder / "sweep")}


def _file(folder: Path) -> dict:
    (folder / "a_file").write_text("not a folder")
    return {"file": str(folder / "a_file")}


def _empty(folder: Path) -> dict:
    (folder / "empty").mkdir()
    return {"empty": str(folder / "empty")}


def _traced_job(folder: Path) -> dict:
    (folder / "job").mkdir()
    (folder / "job" / "trace.parquet").write_bytes(b"an earlier job's trace")
    return {"job": str(folder / "job")}


def _sweep_record(folder: Path) -> dict:
    (folder / "sweep").mkdir()
    (folder / "sweep" / "multirun.yaml").write_text("an earlier sweep")
    return {"sweep": str(folder / "sweep")}


def _two_folders(folder: Path) -> dict:
    for name in ("sweep", "other"):
        (folder / name).mkdir()
    return {"sweep": str(folder / "sweep"), "other": str(folder / "other")}


def _hydra_only(folder: Path) -> dict:
    (folder / "job" / ".hydra").mkdir(parents=True)
    (folder / "job" / ".hydra" / "config.yaml").write_text("an earlier run's config")
    return {"job": str(folder / "job")}


def _complete_sweep(folder: Path) -> dict:
    sweep = folder / "sweep"
    subprocess.run([sys.executable, "-m", RUN, "-m", "problem.n=16", "budget.max_iters=3", "progress=false",
                    f"hydra.sweep.dir={sweep}"], cwd=REPO, capture_output=True, check=True)
    return {"sweep": str(sweep)}


def _report_out_full(folder: Path) -> dict:
    (folder / "mine").mkdir()
    (folder / "mine" / "index.html").write_text("my own page")
    return {"mine": str(folder / "mine"), **_trace_with(folder, "msr", lambda j: j["msr"])}


def _report_out_file(folder: Path) -> dict:
    return {**_file(folder), **_trace_with(folder, "msr", lambda j: j["msr"])}


def _job_trace(folder: Path) -> dict:
    job = _one_job()
    return {"job_trace": str(_write(job, folder / "job" / "trace.parquet", {"kind": "a job's trace"})),
            "current": str(_write(job, folder / "cur" / "trace.parquet", {}))}


def _baseline_variant(folder: Path, meta_change: dict | None, rows: slice = slice(None)) -> dict:
    base, meta = _baseline()
    return {"baseline": str(_write(base.iloc[rows], folder / "b" / "trace.parquet", {**meta, **(meta_change or {})}))}


def _foreign_current(folder: Path) -> dict:
    base, _ = _baseline()
    specs = {s: json.dumps({**json.loads(s), "budget.max_iters": 400.0}, sort_keys=True) for s in base["spec"].unique()}
    other = base.assign(spec=base["spec"].map(specs))
    firsts = other.drop_duplicates("run_id")
    identities = {r: json.loads(s) for r, s in zip(firsts["run_id"], firsts["spec"], strict=True)}
    return {"current": str(_write(other, folder / "cur" / "trace.parquet", {"identities": identities}))}


def _garbage(path: Path) -> Path:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    return path


SETUPS: dict[str, Callable[[Path], dict]] = {
    "file": _file, "empty": _empty, "traced_job": _traced_job, "sweep_record": _sweep_record,
    "two_folders": _two_folders, "hydra_only": _hydra_only, "complete_sweep": _complete_sweep,
    "report_out_full": _report_out_full, "report_out_file": _report_out_file, "job_trace": _job_trace,
    "garbage_trace": lambda f: {"sweep": str(_garbage(f / "sweep" / "j" / "trace.parquet").parent.parent)},
    "nan_time_trace": lambda f: _trace_with(f, "time_s", lambda j: j["time_s"].where(j["iteration"] != 3)),
    "negative_msr_trace": lambda f: _trace_with(f, "msr", lambda j: j["msr"].where(j["iteration"] != 3, -1.0)),
    "no_msr_trace": lambda f: _trace_with(f, "msr", None),
    "empty_baseline": lambda f: _baseline_variant(f, None, slice(0, 0)),
    "foreign_baseline": lambda f: _baseline_variant(f, {"kind": "a job's trace"}),
    "other_sweep_baseline": lambda f: _baseline_variant(f, {"sweep": "laplace_scaling"}),
    "garbage_baseline": lambda f: {"baseline": str(_garbage(f / "b" / "trace.parquet"))},
    "foreign_current": _foreign_current,
}
