"""Validation and checkpoint selection for Metamizer training.

The held-out problems are never the harness's test problems: ``laplace_obstacles``
with seeds no sweep uses (with boxes, or ``n_boxes: 0`` for the open square), and
``kind: poisson``, random boxes with a smooth random source f (the ``mixed`` pool's
Poisson entries, drawn from the set's seeds). Each is solved by the model in eval mode
(batched per set) and scored by ``Problem.msr`` at the set's iteration counts.

Two scores (``validation.score``):

- ``mean``: the mean over sets of the mean log10 MSR (the earlier recipes' rule);
- ``median``: for each problem the mean of its log10 MSR over the iteration counts, then
  the median over problems. One problem that diverges, or one lucky problem, cannot move
  it much; this is the selection rule of the paper recipe.

log10 MSR is floored at ``floor`` (float64 round-off) and a non-finite or exploded run
(log10 MSR >= 6) is charged ``diverged``.
"""

from __future__ import annotations

import numpy as np
import torch

from problems import make_problem
from problems.base import Problem
from solvers.metamizer.model import MetamizerNet
from solvers.metamizer.pool import batched_gradient, random_problem

SCORES = ("mean", "median")
KINDS = ("obstacles", "poisson")  # validation set kinds (validation_problems)


def poisson_problem(n: int, seed: int) -> Problem:
    """Random boxes and a smooth random source (the mixed pool's Poisson entries)."""
    mask, g, f = random_problem(n, n, np.random.default_rng(seed), p_no_boxes=0.0, p_source=1.0)
    return Problem("poisson_obstacles_validation", mask, g, f, params={"seed": seed})


def validation_problems(cfg_sets) -> list[tuple[str, list, list[int]]]:
    """(tag, problems, iteration counts) per configured set."""
    out = []
    for s in cfg_sets:
        n, kind = int(s["n"]), s.get("kind", "obstacles")
        if kind == "poisson":
            probs = [poisson_problem(n, int(seed)) for seed in s["seeds"]]
            tag = f"n{n}_poisson"
        elif kind == "obstacles":
            extra = {"n_boxes": int(s["n_boxes"])} if s.get("n_boxes") is not None else {}
            probs = [make_problem("laplace_obstacles", n=n, seed=int(seed), **extra) for seed in s["seeds"]]
            tag = f"n{n}" + ("_open" if extra.get("n_boxes") == 0 else "")
        else:
            raise ValueError(f"validation set kind={kind!r}; valid: {', '.join(KINDS)}")
        out.append((tag, probs, [int(i) for i in s["iters"]]))
    return out


@torch.no_grad()
def run_batch(model: MetamizerNet, problems: list, iters: list[int], device="cpu") -> np.ndarray:
    """Run the solver loop (eval mode) on same-size problems at once; returns
    MSR (Problem.msr, float64 NumPy) per problem at each iteration in ``iters``."""
    kw = {"dtype": torch.float64, "device": device}
    mask = torch.tensor(np.stack([p.mask for p in problems]), device=device)
    g = torch.tensor(np.stack([p.g for p in problems]), **kw)
    f = torch.tensor(np.stack([p.f for p in problems]), **kw)
    n_int = torch.tensor([float(p.n_interior) for p in problems], **kw)
    interior = ~mask
    u = torch.where(mask, g, torch.zeros_like(g))
    state = model.initial_state(u)
    out = np.full((len(problems), len(iters)), np.nan)
    want = {k: j for j, k in enumerate(iters)}
    for k in range(1, max(iters) + 1):
        grad = batched_gradient(u, f, mask, n_int)
        d, state = model.step(grad, state, interior=interior)
        u = torch.where(mask, g, u + d)
        if k in want:
            un = u.cpu().numpy()
            out[:, want[k]] = [p.msr(un[i]) for i, p in enumerate(problems)]
    return out


def log_msr(msr: np.ndarray, floor: float, diverged: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log10(msr)
    lg = np.where(np.isfinite(lg) & (lg < 6), np.maximum(lg, floor), diverged)
    return np.where(msr == 0, floor, lg)


def validate(model: MetamizerNet, sets, floor: float, diverged: float, device="cpu", score: str = "mean") -> dict:
    """Per set and iteration count the mean log10 MSR, and the selection ``score``
    (lower is better; see the module doc)."""
    if score not in SCORES:
        raise ValueError(f"validation.score={score!r}; valid: {', '.join(SCORES)}")
    was_training = model.training
    model.eval()
    by_shape: dict[tuple, list[int]] = {}  # sets of one grid size and iteration list run as one batch
    for i, (_, probs, iters) in enumerate(sets):
        by_shape.setdefault((probs[0].shape, tuple(iters)), []).append(i)
    results: dict[int, np.ndarray] = {}
    for (_, iters), members in by_shape.items():
        probs = [p for i in members for p in sets[i][1]]
        lg = log_msr(run_batch(model, probs, list(iters), device), floor, diverged)
        start = 0
        for i in members:
            results[i] = lg[start:start + len(sets[i][1])]
            start += len(sets[i][1])
    rows, set_means, per_problem = {}, [], []
    for i, (tag, _, iters) in enumerate(sets):
        lg = results[i]
        for j, it in enumerate(iters):
            rows[f"{tag}_it{it}"] = float(lg[:, j].mean())
        set_means.append(lg.mean())
        per_problem.extend(lg.mean(axis=1).tolist())
    rows["score"] = float(np.mean(set_means) if score == "mean" else np.median(per_problem))
    model.train(was_training)
    return rows


class RecipeValidation:
    """A recipe's ``validation`` config block as one call: its held-out problems built once,
    each model scored with the block's floor, divergence cap and score (the trainer, and the
    scripts that score checkpoints, use exactly this)."""

    def __init__(self, vcfg) -> None:
        from omegaconf import OmegaConf

        self.sets = validation_problems(OmegaConf.to_container(vcfg.sets, resolve=True))
        self.floor, self.diverged = float(vcfg.floor), float(vcfg.diverged)
        self.score = str(vcfg.get("score", "mean"))

    def __call__(self, model: MetamizerNet, device="cpu") -> dict:
        return validate(model, self.sets, self.floor, self.diverged, device, self.score)
