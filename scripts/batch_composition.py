"""Compare training runs of different batch sizes per sample seen (issue #18, item 5).

    python scripts/batch_composition.py RUN [RUN ...] [--until SAMPLES] [--plot FILE]

A RUN is a run folder (or a committed copy of its logs) holding ``config.yaml`` and
``validation.csv``, or a CSV of ``step,score`` rows in such a folder (e.g. checkpoints scored
again under today's rule by ``rescore_checkpoints.py``); rows of one run at the same step are
kept once.
Compute per step grows with the batch, so runs are lined up by samples seen (step x batch);
the model card gives the measured seconds per sample of each batch size on the CPU. For each run,
over validations up to ``--until`` samples: how many, how many converged (held-out score below
-10, i.e. the median problem reached MSR 1e-10 within the recipe's iterations), the median
score, and the median jump between consecutive validations (the checkpoint lottery).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

CONVERGED = -10.0  # a validation whose median problem is below MSR 1e-10


def load(run: Path) -> pd.DataFrame:
    folder, csv = (run.parent, run) if run.suffix == ".csv" else (run, run / "validation.csv")
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    val = pd.read_csv(csv)
    return pd.DataFrame({"run": f"batch {cfg['batch']}, pool {cfg['pool_size']}, seed {cfg['seed']}",
                         "step": val["step"], "samples": val["step"] * int(cfg["batch"]), "score": val["score"]})


def load_all(paths: list[Path]) -> list[pd.DataFrame]:
    """One frame per run, in the order given; a step scored twice (a rescored CSV beside the
    run's own validation.csv) counts once, the first given."""
    frames = pd.concat([load(p) for p in paths]).drop_duplicates(["run", "step"]).sort_values(["run", "step"])
    return [d for _, d in frames.groupby("run", sort=False)]


def summary(runs: list[pd.DataFrame], until: float) -> pd.DataFrame:
    rows = []
    for df in runs:
        d = df[df["samples"] <= until]
        jumps = np.abs(np.diff(d["score"].to_numpy()))
        rows.append({"run": df["run"].iat[0], "validations": len(d),
                     "samples": f"{int(d['samples'].min()):,}-{int(d['samples'].max()):,}" if len(d) else "-",
                     "converged": f"{int((d['score'] < CONVERGED).sum())}/{len(d)}",
                     "median score": round(float(d["score"].median()), 2) if len(d) else np.nan,
                     "median jump": round(float(np.median(jumps)), 2) if len(jumps) else np.nan})
    return pd.DataFrame(rows)


def plot(runs: list[pd.DataFrame], until: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4))
    for df in runs:
        d = df[df["samples"] <= until]
        ax.plot(d["samples"], d["score"], marker="o", label=df["run"].iat[0])
    ax.axhline(CONVERGED, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("training samples seen (steps x batch)")
    ax.set_ylabel("held-out score (median log10 MSR; lower is better)")
    ax.set_title("Checkpoint scores per sample seen, by batch composition")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--until", type=float, default=np.inf, help="compare validations up to this many samples")
    ap.add_argument("--plot", type=Path, help="write the score-per-sample figure here (PNG)")
    a = ap.parse_args()
    runs = load_all(a.runs)
    print(summary(runs, a.until).to_string(index=False))
    if a.plot:
        plot(runs, a.until, a.plot)
        print(f"figure: {a.plot}")


if __name__ == "__main__":
    main()
