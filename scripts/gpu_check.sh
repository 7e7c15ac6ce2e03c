#!/usr/bin/env bash
# GPU check: environment report, tests/test_gpu.py, a short GPU sweep at the paper's and larger
# sizes, its report, and a summary of time to MSR 1e-10 / 1e-20 and per-iteration cost.
#   bash scripts/gpu_check.sh              # online: a venv with pip install -e '.[gpu,dev]'
#   bash scripts/gpu_check.sh --offline    # no network: this machine's python3 as it is, plus the
#                                          # wheels from scripts/gpu_wheels.sh (GPU_WHEELS)
# Budget: about 5-7 minutes on one H100/H200 (most of it the sweep). Environment knobs:
#   PYTHON=python3          the interpreter (offline mode; it must already hold CUDA torch and CuPy)
#   GPU_WHEELS=.gpu_wheels  offline mode: wheels installed with --no-index --no-deps --target
#   VENV=.venv              online mode: the virtual environment (created if missing)
#   GPU_CHECK_DIR=DIR       where everything goes (default results/gpu_check/<timestamp>)
#   GPU_CHECK_SIZES=100,256,400,1024,2048   grid sizes of the sweep
#   GPU_CHECK_SOLVERS=...   solvers of the sweep (those without a config here are left out)
#   GPU_CHECK_SECONDS=3     budget.max_seconds per job (solve time); jobs stop at MSR 1e-20
#   GPU_CHECK_ARCHIVE=FILE  one .tar.gz with the traces, the report, the summary and the log
#   GPU_CHECK_TEST_TIMEOUT=240, GPU_CHECK_SWEEP_TIMEOUT=360   wall-clock caps of the two long steps (s)
#   GPU_CHECK_PARTS=tests,sweep   run only some parts (e.g. the tests while the GPU trains, the sweep after)
# Exit status: 0 all good, 1 a test or the sweep failed, 2 no GPU, 3 environment not usable.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
OFFLINE=${GPU_CHECK_OFFLINE:-0}
[ "${1:-}" = "--offline" ] && OFFLINE=1
SIZES=${GPU_CHECK_SIZES:-100,256,400,1024,2048}
SOLVERS_WANTED=${GPU_CHECK_SOLVERS:-cupy_cg,cupy_minres,cupy_gmres,adam_cuda,metamizer_cuda,metamizer_paper_cuda,metamizer_paper_cuda_tf32,cg,dst}
SECONDS_PER_JOB=${GPU_CHECK_SECONDS:-3}
OUT=${GPU_CHECK_DIR:-results/gpu_check/$(date +%Y-%m-%d_%H-%M-%S)}
ARCHIVE=${GPU_CHECK_ARCHIVE:-$OUT.tar.gz}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
exec > >(tee "$LOG") 2>&1
status=0
T0=$(date +%s)

say() { printf '\n==== [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
finish() {
    say "done (exit $1): everything in $OUT; packing it into $ARCHIVE"
    tar czf "$ARCHIVE" -C "$(dirname "$OUT")" "$(basename "$OUT")" && ls -l "$ARCHIVE"
    exit "$1"
}

# --- 1. a GPU, or stop here with one clear line -----------------------------------------
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    echo "gpu_check: error: no NVIDIA GPU visible (nvidia-smi is missing or lists no GPU); run this on a GPU" \
         "machine (on a CPU-only machine GPU solvers are recorded as 'unavailable' and their tests skip)." >&2
    exit 2
fi
say "GPU"
nvidia-smi

# --- 2. the interpreter and the packages ------------------------------------------------
if [ "$OFFLINE" = 1 ]; then
    PY=${PYTHON:-python3}
    WHEELS=${GPU_WHEELS:-.gpu_wheels}
    SITE=$(mktemp -d /tmp/gpu_check_site.XXXXXX)
    say "offline: $($PY --version) at $(command -v "$PY"), wheels from $WHEELS -> $SITE"
    if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        echo "gpu_check: error: no wheels in $WHEELS: run 'bash scripts/gpu_wheels.sh' on a machine with" \
             "network and copy the folder here (or set GPU_WHEELS)" >&2
        finish 3
    fi
    if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$WHEELS"/*.whl
    then
        echo "gpu_check: error: installing the wheels of $WHEELS into $SITE failed (see above)" >&2
        finish 3
    fi
    export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
    VENV=${VENV:-.venv}
    PY="$VENV/bin/python"
    if [ ! -x "$PY" ]; then
        say "creating $VENV"
        python3 -m venv "$VENV" || { echo "gpu_check: error: cannot create $VENV (python3 -m venv)" >&2; finish 3; }
    fi
    say "pip install -e '.[gpu,dev]'"
    if ! "$PY" -m pip install -q -e '.[gpu,dev]'; then
        echo "gpu_check: error: pip install -e '.[gpu,dev]' failed; without network use --offline (see the header)" >&2
        finish 3
    fi
fi
export HARNESS_COMMIT=${HARNESS_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}

# Imports first (a missing package is not a GPU problem), then what the GPU backends say.
if ! "$PY" scripts/gpu_probe.py imports; then
    echo "gpu_check: error: a package is missing or broken (above): carry its wheel (scripts/gpu_wheels.sh)" >&2
    finish 3
fi
say "what the harness can use here"
if ! "$PY" scripts/gpu_probe.py backends; then
    echo "gpu_check: error: CuPy imports but cannot use the GPU (reason above)" >&2
    finish 3
fi

PARTS=${GPU_CHECK_PARTS:-tests,sweep}

# --- 3. tests -----------------------------------------------------------------------------
if [[ ",$PARTS," == *",tests,"* ]]; then
say "pytest tests/test_gpu.py"
export HARNESS_GPU_TESTS=1   # the CPU suite hides GPUs (tests/conftest.py); these tests opt in
if ! timeout "${GPU_CHECK_TEST_TIMEOUT:-240}" "$PY" -m pytest tests/test_gpu.py -rs -p no:cacheprovider --junitxml="$OUT/test_gpu.xml"; then
    echo "gpu_check: tests/test_gpu.py FAILED" >&2
    status=1
fi
fi

# --- 4. a short GPU sweep, its report, and the summary ------------------------------------
if [[ ",$PARTS," != *",sweep,"* ]]; then
    finish $status
fi
SOLVERS=$("$PY" scripts/gpu_probe.py configs "$SOLVERS_WANTED")
say "sweep at n=$SIZES, solvers $SOLVERS (budget.max_seconds=$SECONDS_PER_JOB, target 1e-20) -> $OUT/sweep"
if ! timeout "${GPU_CHECK_SWEEP_TIMEOUT:-360}" "$PY" -m harness.run +sweep=laplace_scaling_gpu "problem.n=$SIZES" "solver=$SOLVERS" \
        "budget.max_seconds=$SECONDS_PER_JOB" budget.target_msr=1e-20 progress=false \
        "hydra.sweep.dir=$OUT/sweep"; then
    echo "gpu_check: the sweep FAILED or timed out (traces written so far are kept in $OUT/sweep)" >&2
    status=1
fi

say "report"
if ! "$PY" -m harness.report "$OUT/sweep" --out "$OUT/report"; then
    echo "gpu_check: warning: python -m harness.report $OUT/sweep failed" >&2
fi

say "summary"
if ! "$PY" scripts/gpu_summary.py "$OUT/sweep" --out "$OUT/summary.md"; then
    echo "gpu_check: the summary FAILED" >&2
    status=1
fi
finish $status
