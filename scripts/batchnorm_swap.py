"""Whose BatchNorm buffers make a Metamizer work? One training state, its weights fixed, scored
with different running statistics (MODEL_CARD.md, "The CPU run of 2026-12-05").

Reads a training run's ``state/`` (weights with training's own buffers, and the training pool)
and scores, by the run's own validation rule (config.yaml: problems, score):

- ``training``: training's own buffers (momentum 0.1, the last ~10 batches of training);
- ``precise``: the cumulative average over ``--batches`` batches drawn from a copy of the
  training pool, weights frozen (``bn_stats.precise_batchnorm``, what selection uses), one
  estimate per ``--seeds``;
- swaps of the two, to find where the difference lives: precise statistics in the first half of
  the layers only (the encoder), in the second half only, the means only, the variances only,
  and halfway between the two everywhere;
- how far apart the two sets of buffers are: per layer, the ratio of the variances and the
  difference of the means in standard deviations.

    python scripts/batchnorm_swap.py runs/metamizer/paper_h20_s0_cpu [--seeds 2] [--json OUT]

The state is copied first, so a run still training is not disturbed (its state is replaced
atomically every few minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from omegaconf import OmegaConf  # noqa: E402

from solvers.metamizer.bn_stats import batchnorm_layers, precise_batchnorm  # noqa: E402
from solvers.metamizer.trainer import Trainer  # noqa: E402


def load_run(run: Path, copy_to: Path):
    """The state's model (training's buffers), its training pools, validation sets and config, and its step,
    loaded by the trainer itself from a copy of the state."""
    shutil.copytree(run / "state", copy_to / "state")
    cfg = OmegaConf.load(run / "config.yaml")
    cfg.out_dir = str(copy_to)
    trainer = Trainer(cfg)
    trainer.load_state()
    return trainer, cfg


def swapped(model, precise, layers: range, alpha: float = 1.0, means: bool = True, variances: bool = True):
    """``model`` with its buffers moved ``alpha`` of the way to ``precise``'s in ``layers``."""
    out = copy.deepcopy(model)
    for i, (a, p) in enumerate(zip(batchnorm_layers(out), batchnorm_layers(precise), strict=True)):
        if i in layers:
            if means:
                a.running_mean.add_(alpha * (p.running_mean - a.running_mean))
            if variances:
                a.running_var.add_(alpha * (p.running_var - a.running_var))
    return out


def distance(model, precise) -> list[dict]:
    rows = []
    for a, p in zip(batchnorm_layers(model), batchnorm_layers(precise), strict=True):
        ratio = a.running_var / p.running_var
        z = (a.running_mean - p.running_mean).abs() / p.running_var.sqrt()
        rows.append({"var_ratio_min": float(ratio.min()), "var_ratio_max": float(ratio.max()),
                     "mean_diff_sd_median": float(z.median()), "mean_diff_sd_max": float(z.max())})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a training run's folder (with state/ and config.yaml)")
    ap.add_argument("--seeds", type=int, default=2, help="independent precise estimates")
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the scores here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):  # its "resumed" line
        trainer, cfg = load_run(a.run, Path(tmp))
    model, pools, step = trainer.model, trainer.pools, trainer.step
    if not batchnorm_layers(model):
        print(f"{a.run}: no BatchNorm layers; nothing to swap")
        return 1
    t0 = time.perf_counter()

    def score(m) -> float:
        return trainer.validation(m)["score"]

    out = {"run": str(a.run), "step": step, "training": score(model), "precise": []}
    print(f"{a.run} at step {step}: training's buffers {out['training']:.2f}", flush=True)
    estimates = []
    for s in range(a.seeds):
        est = precise_batchnorm(model, pools, seed=[300 + s, step], batches=a.batches, batch=int(cfg.batch),
                                mean_iters=int(cfg.mean_iters))
        estimates.append(est)
        out["precise"].append(score(est))
        print(f"  precise, estimate {s}: {out['precise'][-1]:.2f}", flush=True)
    n = len(batchnorm_layers(model))
    first, second = range(n // 2), range(n // 2, n)
    p = estimates[0]
    for name, m in (("precise in the first half of the layers", swapped(model, p, first)),
                    ("precise in the second half of the layers", swapped(model, p, second)),
                    ("precise means only", swapped(model, p, range(n), variances=False)),
                    ("precise variances only", swapped(model, p, range(n), means=False)),
                    ("halfway to precise, every layer", swapped(model, p, range(n), alpha=0.5))):
        out[name] = score(m)
        print(f"  {name}: {out[name]:.2f}", flush=True)
    out["distance_per_layer"] = distance(model, p)
    d = out["distance_per_layer"]
    print(f"  buffers apart: variance ratio {min(r['var_ratio_min'] for r in d):.2f}-"
          f"{max(r['var_ratio_max'] for r in d):.2f}, means apart by a median "
          f"{np.median([r['mean_diff_sd_median'] for r in d]):.2f} sd (at most "
          f"{max(r['mean_diff_sd_max'] for r in d):.2f}); {time.perf_counter() - t0:.0f} s")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
