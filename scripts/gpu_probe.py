"""What scripts/gpu_check.sh asks the interpreter before spending GPU time.

    python scripts/gpu_probe.py imports            # exit 1 naming each package that does not import
    python scripts/gpu_probe.py backends           # environment + each backend; exit 1 if CuPy cannot
    python scripts/gpu_probe.py configs a,b,c      # prints those with a conf/solver/<name>.yaml
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("numpy", "scipy", "pandas", "pyarrow", "matplotlib", "torch", "cupy", "hydra", "omegaconf",
           "pyamg", "safetensors", "rich", "tqdm", "threadpoolctl", "pydantic", "plotly", "pytest", "harness.run",
           "harness.validate", "harness.report",
           "solvers.gpu_krylov")


def imports() -> int:
    bad = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or a broken binary
            bad.append(f"{name} ({type(exc).__name__}: {exc})")
    for line in bad:
        print(f"gpu_probe: cannot import {line}", file=sys.stderr)
    return 1 if bad else 0


def backends() -> int:
    import torch

    from harness.environment import environment
    from solvers.amgx import amgx_unavailable_reason
    from solvers.base import cuda_unavailable_reason
    from solvers.gpu_krylov import cupy_unavailable_reason

    print(json.dumps(environment(), indent=1))
    print(f"torch {torch.__version__}, built for CUDA {torch.version.cuda}")
    cupy_reason = cupy_unavailable_reason()
    for what, reason in [("cupy_* solvers", cupy_reason), ("amgx_* solvers", amgx_unavailable_reason()),
                         ("torch on cuda", cuda_unavailable_reason("cuda"))]:
        print(f"{what:>15s}: {'ok' if reason is None else 'unavailable: ' + reason}")
    return 1 if cupy_reason else 0


def configs(wanted: str) -> int:
    listed = [s.strip() for s in wanted.split(",") if s.strip()]
    present = [s for s in listed if (ROOT / "conf" / "solver" / f"{s}.yaml").exists()]
    missing = [s for s in listed if s not in present]
    if missing:
        print(f"gpu_probe: no config here for {', '.join(missing)}: left out of the sweep", file=sys.stderr)
    print(",".join(present))
    return 0


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "imports":
        sys.exit(imports())
    if what == "backends":
        sys.exit(backends())
    if what == "configs" and len(sys.argv) == 3:
        sys.exit(configs(sys.argv[2]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
