"""Provenance of a trained Metamizer checkpoint and its export.

``export`` writes the model to a safetensors file with its training bill (steps, wall
time, hardware, seed, commit, validation scores, plan, config) in the metadata, which
``solver.describe()`` and the report read back.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

from solvers.metamizer import checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]


def hardware(device: str) -> str:
    if str(device).startswith("cuda"):
        return f"GPU {torch.cuda.get_device_name(torch.device(device))} (torch {torch.__version__})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} thread(s) (torch {torch.__version__})"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"



def training_bill(cfg, *, step: int, wall_s: float, hardware_desc: str, commit: str, grids: list[int],
                  validation: dict, plan: dict | None, batchnorm: str) -> dict:
    """The metadata a shipped checkpoint carries: what it cost and how it was chosen."""
    from omegaconf import OmegaConf

    return {"recipe": str(cfg.recipe), "training_steps": int(step), "training_wall_s": round(float(wall_s), 1),
            "training_hardware": hardware_desc, "seed": int(cfg.seed), "commit": commit, "grid": grids,
            "validation": validation, "plan": plan, "batchnorm_statistics": batchnorm,
            "precision": "float32 network (TF32 off), float64 fields",
            "config": OmegaConf.to_container(cfg, resolve=True)}


def export(model, path: Path, meta: dict) -> Path:
    """Write ``model`` and its ``meta`` to ``path`` (safetensors, atomically)."""
    return checkpoint.save(path, model, meta)
