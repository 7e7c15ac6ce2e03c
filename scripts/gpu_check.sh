#!/usr/bin/env bash
# GPU check: install the gpu extra, run the GPU tests, a short GPU sweep, its report, and a
# Metamizer-vs-cupy_cg summary. Run on a machine with an NVIDIA GPU, from anywhere:
#   bash scripts/gpu_check.sh
# About 3-6 minutes on one H100 (most of it the sweep). Environment knobs:
#   VENV=.venv              the virtual environment (created if missing)
#   SKIP_INSTALL=1          do not pip install (e.g. a machine without network and a ready venv)
#   GPU_CHECK_DIR=DIR       where the sweep's traces go (default results/gpu_check/<timestamp>)
#   GPU_CHECK_SIZES=256,1024   grid sizes of the sweep
#   GPU_CHECK_SECONDS=3     budget.max_seconds per job (solve time)
# Exit status: 0 all good, 1 a test or the sweep failed, 2 no GPU, 3 installation failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
SIZES=${GPU_CHECK_SIZES:-256,1024}
SECONDS_PER_JOB=${GPU_CHECK_SECONDS:-3}
OUT=${GPU_CHECK_DIR:-results/gpu_check/$(date +%Y-%m-%d_%H-%M-%S)}
status=0

say() { printf '\n==== %s\n' "$*"; }

# --- 1. a GPU, or stop here with one clear line -----------------------------------------
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    echo "gpu_check: error: no NVIDIA GPU visible (nvidia-smi is missing or lists no GPU)." >&2
    echo "gpu_check: run this script on a GPU machine; on a CPU-only machine every GPU solver is" >&2
    echo "gpu_check: recorded as 'unavailable' with its reason, and tests/test_gpu.py skips the GPU tests." >&2
    exit 2
fi
say "GPU"
nvidia-smi

# --- 2. the environment -------------------------------------------------------------------
if [ ! -x "$PY" ]; then
    say "creating $VENV"
    python3 -m venv "$VENV" || { echo "gpu_check: error: cannot create $VENV (python3 -m venv)" >&2; exit 3; }
fi
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    say "pip install -e '.[gpu,dev]'"
    if ! "$PY" -m pip install -q -e '.[gpu,dev]'; then
        if "$PY" -c 'import cupy, hydra, pytest' 2>/dev/null; then
            echo "gpu_check: warning: pip install failed (offline?); using the packages already in $VENV" >&2
        else
            echo "gpu_check: error: pip install -e '.[gpu,dev]' failed and $VENV lacks cupy/hydra/pytest" >&2
            exit 3
        fi
    fi
fi

say "what the harness can use here"
"$PY" - <<'EOF'
import torch
from solvers.amgx import amgx_unavailable_reason
from solvers.base import cuda_unavailable_reason
from solvers.gpu_krylov import cupy_unavailable_reason

try:
    import cupy
    print(f"cupy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}")
except Exception as exc:
    print(f"cupy: {type(exc).__name__}: {exc}")
print(f"torch {torch.__version__}, built for CUDA {torch.version.cuda}")
if torch.version.cuda is None:
    print("  torch is a CPU-only build: adam_cuda / metamizer_cuda will be unavailable (docs/GPU.md)")
for what, reason in [("cupy_* solvers", cupy_unavailable_reason()), ("amgx_* solvers", amgx_unavailable_reason()),
                     ("torch on cuda", cuda_unavailable_reason("cuda"))]:
    print(f"{what:>15s}: {'ok' if reason is None else 'unavailable: ' + reason}")
EOF
if ! "$PY" -c 'from solvers.gpu_krylov import cupy_unavailable_reason as r; import sys; sys.exit(r() is not None)'; then
    echo "gpu_check: error: CuPy cannot use the GPU (see above); fix the gpu extra before timing anything" >&2
    exit 3
fi

# --- 3. tests -----------------------------------------------------------------------------
say "pytest tests/test_gpu.py"
if ! "$PY" -m pytest tests/test_gpu.py -rs -p no:cacheprovider; then
    echo "gpu_check: tests/test_gpu.py FAILED" >&2
    status=1
fi

# --- 4. a short GPU sweep, its report, and the headline comparison ------------------------
# The sweep's solvers that have a config here (Hydra refuses a whole sweep that names a missing one).
SOLVERS=$("$PY" - <<'EOF'
import sys
from pathlib import Path

from omegaconf import OmegaConf

listed = [s.strip() for s in
          str(OmegaConf.load("conf/sweep/laplace_scaling_gpu.yaml").hydra.sweeper.params.solver).split(",")]
present = [s for s in listed if Path(f"conf/solver/{s}.yaml").exists()]
missing = [s for s in listed if s not in present]
if missing:
    print(f"gpu_check: warning: no config yet for {', '.join(missing)}: left out of the sweep", file=sys.stderr)
print(",".join(present))
EOF
)
say "sweep laplace_scaling_gpu at n=$SIZES (budget.max_seconds=$SECONDS_PER_JOB) -> $OUT"
if ! timeout 420 "$PY" -m harness.run +sweep=laplace_scaling_gpu "problem.n=$SIZES" "solver=$SOLVERS" \
        "budget.max_seconds=$SECONDS_PER_JOB" progress=false "hydra.sweep.dir=$OUT"; then
    echo "gpu_check: the sweep FAILED or timed out (traces written so far are kept in $OUT)" >&2
    status=1
fi

say "report"
if ! "$PY" -m harness.report "$OUT"; then
    echo "gpu_check: warning: python -m harness.report $OUT failed" >&2
fi

say "time to MSR 1e-10: Metamizer vs cupy_cg"
"$PY" - "$OUT" <<'EOF'
import sys

from harness.results import load

TARGET = 1e-10
df = load(sys.argv[1])
df = df[df.repeat.fillna(0) == 0]
solvers = [s for s in ("metamizer_cuda", "metamizer", "cupy_cg", "cg", "amgx_pcg_aggregation_jacobi", "dst")
           if s in set(df.solver)]
print(f"{'n':>6s} {'solver':>28s} {'status':>12s} {'t(MSR<=1e-10) s':>16s} {'iters':>7s} {'setup s':>8s}")
best = {}
for n in sorted(df.n.dropna().unique()):
    for s in solvers:
        t = df[(df.n == n) & (df.solver == s)].sort_values("iteration")
        if t.empty:
            continue
        hit = t[t.msr <= TARGET]
        status = t.status.iloc[-1]
        when = hit.time_s.iloc[0] if not hit.empty else float("nan")
        it = int(hit.iteration.iloc[0]) if not hit.empty else -1
        best[(int(n), s)] = when
        if status in ("unavailable", "error"):
            shown = f"{'-':>16s}"
        else:
            shown = f"{when:16.4f}" if when == when else f"{'not reached':>16s}"
        print(f"{int(n):6d} {s:>28s} {status:>12s} {shown} {it:7d} {t.setup_s.iloc[-1]:8.3f}")
for n in sorted({k[0] for k in best}):
    cg = best.get((n, "cupy_cg"), float("nan"))
    for meta_name in ("metamizer_cuda", "metamizer"):
        meta = best.get((n, meta_name), float("nan"))
        if meta == meta and cg == cg:
            print(f"n={n}: {meta_name} / cupy_cg time to MSR 1e-10 = {meta / cg:.2f}")
        else:
            print(f"n={n}: {meta_name} vs cupy_cg: not comparable (one did not reach 1e-10, or did not run)")
print("(time = solve clock at the first checkpoint with MSR <= 1e-10; setup excluded)")
EOF

say "done: traces in $OUT"
exit $status
