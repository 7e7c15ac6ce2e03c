#!/usr/bin/env bash
# Download, on a machine WITH network, the wheels that a GPU machine WITHOUT network needs to run
# scripts/gpu_check.sh with its own python3 (which already holds CUDA torch, cupy-cuda13x, numpy,
# scipy, pandas, pyarrow, matplotlib, seaborn, safetensors, rich, tqdm, threadpoolctl, pytest).
#   bash scripts/gpu_wheels.sh [DIR]        (default DIR: .gpu_wheels, git-ignored)
# Then copy DIR to the GPU machine (beside this checkout) and run
#   GPU_WHEELS=DIR bash scripts/gpu_check.sh --offline
# Target: CPython 3.12, manylinux x86-64 (override with PYVER=3.11 etc.).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DIR=${1:-.gpu_wheels}
PYVER=${PYVER:-3.12}
mkdir -p "$DIR"
rm -f "$DIR"/*.whl

# Pure-Python or binary wheels of what the project needs beyond the GPU image's own packages.
# The newest release within pyproject.toml's ranges; one version of each (two would stop the install).
WANT=(
    "hydra-core==1.3.*"
    "omegaconf>=2.3,<2.4"
    "pyamg>=5.2"
    "plotly>=5.24"
    "pydantic>=2.5"
    "pydantic-core"
    "annotated-types"
    "typing-inspection"
    "typing-extensions>=4.16"
)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do
    PLATFORMS+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    "${PLATFORMS[@]}" -d "$DIR" "${WANT[@]}"

# antlr4-python3-runtime 4.9.3 (what omegaconf 2.3 pins) exists only as an sdist: build the wheel here.
python3 -m pip wheel -q --no-deps -w "$DIR" "antlr4-python3-runtime==4.9.3"

ls -l "$DIR"
du -sh "$DIR"
