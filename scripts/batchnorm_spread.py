"""How much of a BatchNorm Metamizer's validation score is the draw of its statistics?

Re-estimates the BatchNorm running statistics of one checkpoint's frozen weights from
several independent sets of training batches, two ways, and scores each estimate with
the paper recipe's validation (conf/train/paper.yaml: 25 held-out problems at n = 32 to 256,
median over problems of the mean log10 MSR at 20/40/60/100 iterations):

- ``momentum``: what training keeps, an exponential moving average (momentum 0.1) over
  ``--momentum-batches`` batches (15, as in issue #18's measurement), from fresh buffers;
- ``precise``: the cumulative average over ``--batches`` batches (bn_stats.py).

Both draw their batches from the same steady-state pool (the authors' Laplace pool at
100x100, advanced ``--burn-in`` steps by the model itself), each seed its own batches.

    python scripts/batchnorm_spread.py [--checkpoint PATH] [--seeds 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydra import compose, initialize_config_dir  # noqa: E402

from solvers.metamizer import checkpoint  # noqa: E402
from solvers.metamizer.bn_stats import batchnorm_layers, pool_step, precise_batchnorm, steady_state_pool  # noqa: E402
from solvers.metamizer.pool import Pool  # noqa: E402
from solvers.metamizer.validation import RecipeValidation  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "solvers/metamizer/checkpoints/metamizer_paper_h20.safetensors"


@torch.no_grad()
def momentum_estimate(model, pool: Pool, seed: int, batches: int):
    """Fresh buffers, then ``batches`` training-mode batches with PyTorch's momentum 0.1."""
    import copy

    out = copy.deepcopy(model)
    q = copy.deepcopy(pool)
    q.rng = np.random.default_rng(seed)
    for m in batchnorm_layers(out):
        m.reset_running_stats()
        m.momentum = 0.1
    out.train()
    for _ in range(batches):
        pool_step(out, q, 10, 60)
    return out.eval()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=str(SHIPPED))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--batches", type=int, default=200, help="precise: batches averaged")
    ap.add_argument("--momentum-batches", type=int, default=15)
    ap.add_argument("--burn-in", type=int, default=600, help="pool steps before the estimates (steady state)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the scores here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, meta = checkpoint.load(a.checkpoint)
    if not batchnorm_layers(model):
        print(f"{a.checkpoint}: no BatchNorm layers; nothing to re-estimate")
        return 1
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        validation = RecipeValidation(compose("train/paper").validation)

    def score(m) -> float:
        return validation(m)["score"]

    t0 = time.perf_counter()
    pool = steady_state_pool(model, lambda: Pool(100, 100, np.random.default_rng(12345), kind="paper", replace=True),
                             a.burn_in)
    out = {"checkpoint": os.path.relpath(a.checkpoint, REPO), "training_steps": meta.get("training_steps"),
           "as_shipped": score(model.eval()), "momentum": [], "precise": []}
    for s in range(a.seeds):
        out["momentum"].append(score(momentum_estimate(model, pool, 100 + s, a.momentum_batches)))
        out["precise"].append(score(precise_batchnorm(model, [pool], seed=200 + s, batches=a.batches)))
        print(f"seed {s}: momentum ({a.momentum_batches} batches) {out['momentum'][-1]:7.2f}   "
              f"precise ({a.batches} batches) {out['precise'][-1]:7.2f}", flush=True)
    for k in ("momentum", "precise"):
        out[f"{k}_spread_decades"] = float(np.max(out[k]) - np.min(out[k]))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"{out['checkpoint']} (training steps {out['training_steps']}): score as shipped {out['as_shipped']:.2f}; "
          f"spread over {a.seeds} estimates: momentum {out['momentum_spread_decades']:.2f} decades, "
          f"precise {out['precise_spread_decades']:.2f} decades ({out['seconds']:.0f} s)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
