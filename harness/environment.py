"""What machine and software a trace came from (stored in every trace's metadata)."""

from __future__ import annotations

import datetime as dt
import functools
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("numpy", "scipy", "torch", "pyamg", "pandas", "pyarrow", "hydra-core", "cupy-cuda13x",
            "cupy-cuda12x", "cupy-cuda11x", "cupy", "pyamgx", "safetensors")
REPO = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """HEAD (``-dirty`` with uncommitted changes); ``HARNESS_COMMIT`` where the copy has no git history."""
    if os.environ.get("HARNESS_COMMIT"):
        return os.environ["HARNESS_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_model() -> str | None:
    """The CUDA device name from torch, else from CuPy (a CPU torch can sit beside CuPy)."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:
        pass
    import importlib.util

    if importlib.util.find_spec("cupy") is None:
        return None
    try:
        import cupy

        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return None


def cuda_versions() -> dict[str, int | str] | None:
    """CUDA driver and runtime versions (as CUDA encodes them, e.g. 13000), or None without a GPU."""
    out: dict[str, int | str] = {}
    try:
        import torch

        if torch.version.cuda is not None and torch.cuda.is_available():
            out["torch_cuda"] = torch.version.cuda
            out["cudnn"] = torch.backends.cudnn.version()
    except Exception:
        pass
    import importlib.util

    if importlib.util.find_spec("cupy") is not None:
        try:
            import cupy

            out["driver"] = cupy.cuda.runtime.driverGetVersion()
            out["cupy_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        except Exception:
            pass
    return out or None


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_PARTITION",
                   "SLURM_JOB_NODELIST", "SLURM_CPUS_ON_NODE", "SLURM_MEM_PER_NODE", "SLURM_MEM_PER_CPU",
                   "SLURM_JOB_GPUS", "SLURM_CLUSTER_NAME")


def slurm_job() -> dict[str, str] | None:
    """The Slurm job this process runs in (its id, array task, partition, node, CPUs, memory), or None."""
    found = {k.removeprefix("SLURM_").lower(): os.environ[k] for k in SLURM_VARIABLES if os.environ.get(k)}
    return found or None


@functools.cache
def environment() -> dict:
    """Static facts, computed once per process."""
    return {
        "commit": git_commit(),
        "versions": versions(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu_model(),
        "cuda": cuda_versions(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "slurm": slurm_job(),
    }


def now(timespec: str = "seconds") -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec=timespec)
