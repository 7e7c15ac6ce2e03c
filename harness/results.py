"""Parquet traces: one file per job, long format, one row per checkpoint.
Over 300 lines: the schema, its one writer and its readers (with the rules a trace must keep to be read)
are one contract between the runner, the report and the check.

The schema is the contract between the runner, the report and the check; see
``COLUMNS``. Job-level facts that are not per-row (environment, full config,
timing self-check) live in the file's schema metadata under the key
``harness`` as JSON.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness import identity

SCHEMA_VERSION = 1
TRACE_NAME = "trace.parquet"
METADATA_KEY = b"harness"

# Column -> arrow type. Order is the file's column order.
COLUMNS: dict[str, pa.DataType] = {
    "sweep": pa.string(),        # sweep name ("single" for one job)
    "run_id": pa.string(),       # unique per job
    "problem": pa.string(),
    "n": pa.int64(),             # grid size label (= h for square grids)
    "h": pa.int64(),
    "w": pa.int64(),
    "n_unknowns": pa.int64(),
    "solver": pa.string(),       # config name, e.g. "cg"
    "label": pa.string(),        # solver plus any parameters overridden for this job, e.g. "adam(lr=0.1)"
    "family": pa.string(),       # neural, first_order, krylov, multigrid, quasi_newton, direct
    "backend": pa.string(),      # scipy, torch, pyamg, cupy, amgx, ...
    "device": pa.string(),       # cpu, cuda
    "params": pa.string(),       # solver parameters as JSON
    "strategy": pa.string(),     # callback | rerun
    "exact_kind": pa.string(),   # analytic | direct | none  (what mse is measured against)
    "seed": pa.int64(),
    "threads": pa.int64(),
    "repeat": pa.int64(),
    "iteration": pa.int64(),     # null for jobs that never started (unavailable, error in setup)
    "time_s": pa.float64(),      # solve time up to this checkpoint (setup and monitor excluded)
    "setup_s": pa.float64(),
    "msr": pa.float64(),
    "mse": pa.float64(),
    "rel_res": pa.float64(),
    "matvecs": pa.int64(),       # operator applications so far; null where not countable
    "status": pa.string(),       # a harness.status.Status value: target | budget | stalled | diverged | ...
    "message": pa.string(),
}
ARROW_SCHEMA = pa.schema([pa.field(k, t) for k, t in COLUMNS.items()])
CHECKPOINT_FIELDS = ["iteration", "time_s", "msr", "mse", "rel_res", "matvecs"]  # one value per checkpoint
# every other column is one value per solve (the job and its outcome): ``job_rows`` sets them

# What identifies what, in these columns (one vocabulary for the runner, the report and the check):
# - a *solve*: one repeat of one job, ("run_id", "repeat") (``SOLVE``); its last row is its outcome;
# - a *cell*: one solver configuration on one problem at one grid size, aggregated over repeats and over
#   sweeps (the newest copy wins): ``CELL``, what the report tabulates;
# - a *job's identity*: everything that makes it a different experiment (``harness.identity``), as the
#   ``identity`` column (its key) and ``spec`` (the identity itself, JSON) that ``load`` adds; resume, the
#   report's de-duplication and the check's matching all use it;
# - the check keys on the solver's config name instead of its label (``harness.check.config.KEY``), so
#   that a run with a parameter overridden is compared with that solver's baseline.
SOLVE = ["run_id", "repeat"]
CELL = ["problem", "n", "label"]

# What ``load`` puts where a file has no value (an older schema, a solve that never ran): one place, so the
# report and the check read the same frame.
NUMERIC = tuple(c for c, t in COLUMNS.items() if pa.types.is_integer(t) or pa.types.is_floating(t))
TEXT_DEFAULTS = {"family": "unknown", "backend": "", "device": "", "strategy": "", "message": "",
                 "exact_kind": "none", "status": "unknown", "sweep": "", "path": "", "written": "", "params": "",
                 "identity": "", "spec": ""}
# Columns a trace must have to be read at all, and the rules its checkpoint rows must keep (``trace_faults``).
REQUIRED = ("solver", "problem", "n", "status", "iteration")
REQUIRED_TO_RUN = ("time_s", "msr")  # ... and a trace with a checkpoint must have its time and MSR


class ResultsError(RuntimeError):
    """A results folder that cannot be read (nothing usable in it)."""


class TraceExists(FileExistsError):
    """A trace file is already where a job wanted to write its own: it is never replaced."""


def trace_frame(rows: list[dict]) -> pd.DataFrame:
    """The monitor's checkpoint rows as a DataFrame of the ``CHECKPOINT_FIELDS`` columns."""
    return pd.DataFrame(rows, columns=CHECKPOINT_FIELDS)


def job_rows(trace: pd.DataFrame, per_solve: dict[str, Any]) -> pd.DataFrame:
    """One solve's trace file rows: its checkpoints plus the per-solve columns, in ``COLUMNS`` order.

    A solve that never ran gets one row that carries its status and message.
    """
    df = trace.copy() if not trace.empty else pd.DataFrame([{c: None for c in trace.columns}])
    for k, v in per_solve.items():
        df[k] = v
    return df[list(COLUMNS)]


def final_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The last checkpoint of each solve (or its only row)."""
    df = df.sort_values([*SOLVE, "iteration"], na_position="first")
    return df.groupby(SOLVE, as_index=False).tail(1)


def write_trace(df: pd.DataFrame, path: str | Path, metadata: dict[str, Any], *, overwrite: bool = False) -> Path:
    """Write one job's trace atomically: temp file in the same folder, then link it into place.

    A reader never sees a half-written trace.parquet; a killed job leaves at
    most a stray ``.tmp`` file, which ``load`` ignores. A file already at
    ``path`` is never replaced (``TraceExists``) unless ``overwrite`` (the
    check's own scratch files and a deliberate re-bless of its baseline).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"trace is missing columns {missing}")
    table = pa.Table.from_pandas(df[list(COLUMNS)], schema=ARROW_SCHEMA, preserve_index=False)
    meta = {"schema_version": SCHEMA_VERSION, **metadata}
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(meta, default=str).encode()})
    fd, tmp = tempfile.mkstemp(prefix=".trace-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; traces are meant to be shared
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(Path(tmp), path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _link_new(tmp: Path, path: Path) -> None:
    """Put ``tmp`` at ``path`` only if nothing is there (a hard link is atomic and never replaces)."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise TraceExists(errno.EEXIST, "already holds a trace (not replaced)", str(path)) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
    # a file system without hard links: claim the name exclusively, then move the file over the claim
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise TraceExists(errno.EEXIST, "already holds a trace (not replaced)", str(path)) from None
    os.replace(tmp, path)


def trace_files(folder: str | Path) -> list[Path]:
    return sorted(Path(folder).rglob(TRACE_NAME))


def _harness_metadata(schema: pa.Schema) -> dict[str, Any]:
    return json.loads((schema.metadata or {}).get(METADATA_KEY, b"{}"))


def read_metadata(path: str | Path) -> dict[str, Any]:
    return _harness_metadata(pq.read_schema(path))


def _frame(path: Path, name: str) -> pd.DataFrame:
    """A trace file's rows plus where it lies (``path``), when its job wrote it (``written``, ISO 8601) and
    each job's identity (``identity``, ``spec``; ``harness.identity``)."""
    table = pq.ParquetFile(path).read()  # one file: half the cost of read_table's dataset machinery
    meta = _harness_metadata(table.schema)
    df = table.to_pandas().assign(path=name, written=str(meta.get("date") or ""))
    return _with_identity(df, meta)


def _with_identity(df: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    """``identity`` and ``spec`` for each job (run_id) of a file: from the job's stored config, from the
    ``identities`` a combined file (the check's baseline) stores per run_id, or from the columns."""
    stored = meta.get("identities") if isinstance(meta.get("identities"), dict) else {}
    if not stored and identity.has_config(meta):  # a job's own trace: one identity, from its config alone
        spec = identity.spec(meta["config"])
        return df.assign(identity=identity.key(spec), spec=json.dumps(spec, sort_keys=True))
    runs = df["run_id"].astype(str) if "run_id" in df.columns else pd.Series("", index=df.index)
    specs = {}
    for _, row in df.assign(_run=runs).drop_duplicates("_run").iterrows():
        found = stored.get(row["_run"])
        specs[row["_run"]] = found if isinstance(found, dict) else identity.from_trace(meta, row)
    text = {run: json.dumps(spec, sort_keys=True) for run, spec in specs.items()}
    keys = {run: identity.key(spec) for run, spec in specs.items()}
    return df.assign(identity=runs.map(keys), spec=runs.map(text))


def trace_faults(df: pd.DataFrame) -> str | None:
    """Why a trace's rows cannot be trusted, or None: a required column missing, a checkpoint without a
    finite non-negative time, a negative MSR (NaN and inf are a divergence, recorded as such)."""
    absent = [c for c in REQUIRED if c not in df.columns]
    ran = df[pd.to_numeric(df["iteration"], errors="coerce").notna()] if not absent else df
    absent += [c for c in REQUIRED_TO_RUN if c not in df.columns and len(ran)]
    if absent:
        return f"older or foreign schema, missing columns {absent}"
    if ran.empty:
        return None
    times = pd.to_numeric(ran["time_s"], errors="coerce").to_numpy(dtype=float)
    bad_time = ~np.isfinite(times) | (times < 0)
    if bad_time.any():
        first = times[bad_time][0]
        return f"time_s is missing, NaN or negative at {int(bad_time.sum())} checkpoint(s) (first: {first})"
    msr = pd.to_numeric(ran["msr"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        negative = msr < 0
    if negative.any():
        return f"msr is negative at {int(negative.sum())} checkpoint(s) (first: {msr[negative][0]:g}); an MSR is >= 0"
    return None


def read_trace(path: str | Path) -> pd.DataFrame:
    """One trace file (a job's, or a baseline's), checked and normalised as ``load`` does a folder's;
    ``ResultsError`` names the file when it cannot be read or its rows break the rules (``trace_faults``)."""
    path = Path(path)
    try:
        df = _frame(path, path.name)
    except Exception as exc:  # noqa: BLE001 - corrupt, truncated, not parquet, unreadable
        raise ResultsError(f"{path}: unreadable ({' '.join(str(exc).split()) or type(exc).__name__})") from None
    why = trace_faults(df)
    if why:
        raise ResultsError(f"{path}: {why}")
    return normalise(df)


def load(folder: str | Path, *, strict: bool = False) -> pd.DataFrame:
    """One DataFrame for every trace under ``folder`` (a sweep, or a folder of sweeps).

    Files that cannot be read, that lack a required column, or whose rows break the rules (``trace_faults``:
    a NaN time, a negative MSR) are skipped and listed in ``df.attrs['skipped']`` for the caller to
    report; missing optional columns are filled with nulls, then the frame is normalised once
    (``normalise``). ``strict=True`` raises instead of skipping.
    """
    folder = Path(folder)
    if not folder.exists():
        raise ResultsError(f"results folder {folder} does not exist: give a folder a sweep wrote "
                           f"(e.g. results/<sweep>/<stamp>)")
    if not folder.is_dir():
        raise ResultsError(f"{folder} is a file, not a results folder (give the folder a sweep wrote)")
    frames, skipped = [], []
    for f in trace_files(folder):
        try:
            df = _frame(f, str(f.relative_to(folder)))
        except Exception as exc:  # noqa: BLE001 - corrupt or truncated file
            skipped.append((str(f), f"unreadable: {' '.join(str(exc).split()) or type(exc).__name__}"))
            continue
        why = trace_faults(df)
        absent = [c for c in COLUMNS if c not in df.columns]
        if why or (strict and absent):
            skipped.append((str(f), why or f"older or foreign schema, missing columns {absent}"))
            continue
        frames.append(df)
    if strict and skipped:
        raise ResultsError("; ".join(f"{p}: {why}" for p, why in skipped))

    if not frames:
        if not skipped:
            raise ResultsError(f"no traces ({TRACE_NAME}) under {folder}: give a folder a sweep wrote, or run "
                               f"python -m harness.run first")
        raise ResultsError(f"no usable traces ({TRACE_NAME}) under {folder}: {len(skipped)} skipped, the first "
                           f"{skipped[0][0]}: {skipped[0][1]}; give a folder with traces this version writes")
    out = normalise(pd.concat(frames, ignore_index=True))
    out.attrs["skipped"] = skipped
    return out


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """The one normalisation of loaded traces: every column of ``COLUMNS`` (null where a file has
    none), numbers as numbers (NaN where absent), text with its
    default, a label for every row (the solver's name where none was stored), the unknowns of a grid,
    ``job``: one solve's identity as text (``run_id#repeat``; the file's path where no run_id), and a job
    identity (``identity``, ``spec``) from the columns where no file gave one.
    """
    df = df.copy()
    for c in [*COLUMNS, *TEXT_DEFAULTS]:  # an older file may lack optional columns
        if c not in df.columns:
            df[c] = None
    for c in NUMERIC:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    for c, default in TEXT_DEFAULTS.items():
        df[c] = df[c].astype(object).where(df[c].notna(), default).astype(str)
    for c in ("solver", "problem"):
        df[c] = df[c].astype(str)
    df["label"] = df["label"].astype(object).where(df["label"].notna(), df["solver"]).astype(str)
    df["repeat"] = df["repeat"].fillna(0).astype(int)
    df["n"] = df["n"].fillna(-1).astype(int)
    df["n_unknowns"] = df["n_unknowns"].fillna(df["n"].astype(float) ** 2)
    run = df["run_id"].astype(object).where(df["run_id"].notna(), df["path"])
    df["job"] = run.astype(str) + "#" + df["repeat"].astype(str)
    unknown = df["identity"] == ""
    if unknown.any():
        specs = {r: identity.from_columns(row) for r, row in
                 df[unknown].assign(_run=run[unknown]).drop_duplicates("_run").set_index("_run").iterrows()}
        df.loc[unknown, "spec"] = run[unknown].map({r: json.dumps(s, sort_keys=True) for r, s in specs.items()})
        df.loc[unknown, "identity"] = run[unknown].map({r: identity.key(s) for r, s in specs.items()})
    return df


def load_metadata(folder: str | Path) -> dict[str, dict[str, Any]]:
    """run_id -> the job's metadata (environment, config, timing check) for a folder."""
    out = {}
    for f in trace_files(folder):
        try:
            meta = read_metadata(f)
        except Exception:
            continue
        out[meta.get("run_id", str(f))] = meta
    return out


def newest_sweep(root: str | Path = "results") -> Path:
    """The most recently written sweep folder under ``root`` (one that holds traces)."""
    root = Path(root)
    files = trace_files(root) if root.exists() else []
    if not files:
        raise ResultsError(f"no sweep results under {root}/: run python -m harness.run +sweep=laplace_scaling first")
    newest = max(files, key=lambda p: p.stat().st_mtime)
    # results/<sweep>/<timestamp>/<problem>_n<n>/<solver>/<job>/trace.parquet -> results/<sweep>/<timestamp>
    rel = newest.relative_to(root).parts
    return root.joinpath(*rel[:2]) if len(rel) > 2 else newest.parent
