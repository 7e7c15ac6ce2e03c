"""Score saved checkpoints with the paper recipe's current validation rule.

    python scripts/rescore_checkpoints.py CKPT [CKPT ...] --out FILE.csv [--threads 1]

A run validated under an older rule (e.g. seed 0's first 20,000 steps, scored on 15 problems
at n = 64-128) can be compared with later runs only after its checkpoints are scored again
under today's rule (conf/train/paper.yaml: 25 held-out problems at n = 32-256). Each
checkpoint is scored as saved, exactly as the trainer scores it; which BatchNorm statistics
it carries (training's own, or a precise re-estimate under an older rule) is written beside
the score: only the former compare with the paper recipe's ``select: training`` scores.
Writes ``step,score,val_s,batchnorm`` rows.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydra import compose, initialize_config_dir  # noqa: E402

from solvers.metamizer import checkpoint  # noqa: E402
from solvers.metamizer.validation import RecipeValidation  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    if a.out.exists():
        print(f"error: --out {a.out} exists; give a new file (nothing was written)")
        return 1
    torch.set_num_threads(a.threads)
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        validation = RecipeValidation(compose("train/paper").validation)
    rows = []
    for path in a.checkpoints:
        model, meta = checkpoint.load(path)
        t0 = time.perf_counter()
        s = validation(model)["score"]
        rows.append({"step": int(meta["training_steps"]), "score": s, "val_s": round(time.perf_counter() - t0, 1),
                     "batchnorm": str(meta.get("batchnorm_statistics", "?")).split(":")[0]})
        print(f"{path}: step {rows[-1]['step']}, score {s:.2f} ({rows[-1]['val_s']} s)", flush=True)
    with a.out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["step", "score", "val_s", "batchnorm"])
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: r["step"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
