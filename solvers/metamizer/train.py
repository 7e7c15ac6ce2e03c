"""Train a Metamizer checkpoint: ``python -m solvers.metamizer.train [key=value ...]``.

The training-pool meta-learning of the paper (see ``pool.py``): draw a batch,
take the detached gradient at the current iterates, propose a step, apply it,
score the MSR *after* the step, backpropagate through gradient normalisation,
AdamW; write the iterates and optimiser states back. Entries are reset
round-robin (~``mean_iters`` iterations each) and at once when they explode.

Every ``checkpoint_every_s`` seconds the trainer saves ``last.safetensors``
(+ ``trainstate.pt`` for resuming), validates it in eval mode on held-out
``laplace_obstacles`` problems scored by ``Problem.msr`` (never on the
``laplace_bilinear`` test), and keeps the best as ``best.safetensors``.
Outputs in ``out_dir``: ``loss.csv``, ``validation.csv``, ``training.png``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from problems import make_problem
from solvers.metamizer import checkpoint
from solvers.metamizer.model import Metamizer
from solvers.metamizer.pool import Pool, batched_gradient, batched_msr


# --- validation (checkpoint selection) -------------------------------------------
def validation_problems(cfg_sets) -> list[tuple[list, list[int]]]:
    out = []
    for s in cfg_sets:
        extra = {"n_boxes": int(s["n_boxes"])} if s.get("n_boxes") is not None else {}
        probs = [make_problem("laplace_obstacles", n=int(s["n"]), seed=int(seed), **extra) for seed in s["seeds"]]
        out.append((probs, [int(i) for i in s["iters"]]))
    return out


@torch.no_grad()
def run_batch(model: Metamizer, problems: list, iters: list[int], device="cpu") -> np.ndarray:
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


def validate(model: Metamizer, sets, floor: float, diverged: float, device="cpu") -> dict:
    was_training = model.training
    model.eval()
    rows = {}
    scores = []
    for probs, iters in sets:
        msr = run_batch(model, probs, iters, device)
        with np.errstate(divide="ignore", invalid="ignore"):
            lg = np.log10(msr)
        lg = np.where(np.isfinite(lg) & (lg < 6), np.maximum(lg, floor), diverged)
        lg = np.where(msr == 0, floor, lg)
        n = probs[0].shape[0]
        tag = f"n{n}" + ("_open" if probs[0].params.get("n_boxes") == 0 else "")
        for j, it in enumerate(iters):
            rows[f"{tag}_it{it}"] = float(lg[:, j].mean())
        scores.append(lg.mean())
    rows["score"] = float(np.mean(scores))
    model.train(was_training)
    return rows


# --- training ------------------------------------------------------------------------
def train_step(model, opt, pool: Pool, batch: int, explode: float) -> tuple[float, float]:
    """One pool step; returns (mean log10 MSR after the step, number reset)."""
    idx = pool.sample(batch)
    mask, g, f, n_int = pool.mask[idx], pool.g[idx], pool.f[idx], pool.n_interior[idx]
    u = pool.u[idx]
    from solvers.metamizer.model import State

    state = State(pool.grad[idx], pool.step[idx], pool.scale[idx])
    grad = batched_gradient(u, f, mask, n_int)
    d, new = model.step(grad, state, train=True, interior=~mask)
    u_new = torch.where(mask, g, u + d)
    loss_per = batched_msr(u_new, f, mask, n_int)
    opt.zero_grad(set_to_none=True)
    loss_per.sum().backward()
    opt.step()
    with torch.no_grad():
        pool.u[idx] = u_new.detach()
        pool.grad[idx] = grad
        pool.step[idx] = new.step.detach()
        pool.scale[idx] = new.scale.detach()
        pool.iters[idx] += 1
        lp = loss_per.detach()
        bad = ~torch.isfinite(lp) | (lp > explode)
        if bad.any():
            pool.reset(idx[bad])
        good = lp[~bad]
        mean_log = float(torch.log10(good.clamp_min(1e-40)).mean()) if good.numel() else float("nan")
    return mean_log, int(bad.sum())


def plot(out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    if (out_dir / "loss.csv").exists():
        loss = pd.read_csv(out_dir / "loss.csv")
        ax[0].plot(loss["step"], loss["log10_msr"], lw=0.8)
    ax[0].set(xlabel="step", ylabel="mean log10 MSR after step (pool batch)", title="training pool loss")
    vpath = out_dir / "validation.csv"
    if vpath.exists():
        val = pd.read_csv(vpath)
        for c in val.columns:
            if c.startswith("n") and "_it" in c:
                ax[1].plot(val["step"], val[c], marker=".", label=c)
        ax[1].plot(val["step"], val["score"], "k-", lw=2, label="score (selection)")
        ax[1].legend(fontsize=7)
        ax[1].set(xlabel="step", ylabel="mean log10 MSR (held-out laplace_obstacles)", title="validation")
    fig.tight_layout()
    fig.savefig(out_dir / "training.png", dpi=110)
    plt.close(fig)


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a") as fh:
        if new:
            fh.write(",".join(row) + "\n")
        fh.write(",".join(str(v) for v in row.values()) + "\n")


def run(cfg: DictConfig) -> dict:
    torch.set_num_threads(int(cfg.threads))
    device = str(cfg.device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("device=cuda but no CUDA device is visible to torch (use device=cpu)")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(int(cfg.seed))
    rng = np.random.default_rng(int(cfg.seed))
    model = Metamizer(int(cfg.model.hidden), str(cfg.model.norm)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=float(cfg.lr), weight_decay=float(cfg.weight_decay))
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.lr_halve_at), gamma=0.5)
    step, wall, best = 0, 0.0, math.inf
    last, tstate = out_dir / "last.safetensors", out_dir / "trainstate.pt"
    if cfg.resume and last.exists() and tstate.exists():
        loaded, _ = checkpoint.load(last, device=device)
        model.load_state_dict(loaded.state_dict())
        ts = torch.load(tstate, map_location=device, weights_only=True)
        opt.load_state_dict(ts["optimizer"])
        sched.load_state_dict(ts["scheduler"])
        step, wall, best = int(ts["step"]), float(ts["wall_s"]), float(ts["best"])
        torch.set_rng_state(ts["torch_rng"])
        rng = np.random.default_rng(int(cfg.seed) + step)  # pool restarts fresh (zero-initialised)
        print(f"resumed from {last} at step {step} ({wall:.0f} s, best score {best:.3f})")
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    grids = [int(n) for n in (cfg.grid if OmegaConf.is_list(cfg.grid) else [cfg.grid])]
    probs = np.asarray(cfg.grid_probs if cfg.get("grid_probs") else [1.0] * len(grids), dtype=float)
    probs = probs / probs.sum()
    pools = [Pool(int(cfg.pool_size), n, rng, device, float(cfg.p_no_boxes), float(cfg.p_source),
                  float(cfg.get("p_freq", 0.0)), tuple(cfg.get("freq_range", (0.005, 0.1)))) for n in grids]
    vsets = validation_problems(OmegaConf.to_container(cfg.validation.sets, resolve=True))
    model.train()
    per_step = int(cfg.batch) / float(cfg.mean_iters)
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=int(cfg.steps), initial=step, desc="metamizer", mininterval=5, dynamic_ncols=True)
    t0 = time.perf_counter() - wall
    t_ckpt = time.perf_counter()
    acc, n_acc, resets = 0.0, 0, 0

    def save_and_validate():
        nonlocal best
        meta = {"step": step, "wall_s": round(time.perf_counter() - t0, 1), "seed": int(cfg.seed),
                "grid": grids, "config": OmegaConf.to_container(cfg, resolve=True)}
        tv = time.perf_counter()
        val = validate(model, vsets, float(cfg.validation.floor), float(cfg.validation.diverged), device)
        meta["validation"] = val
        checkpoint.save(last, model, meta)
        if cfg.get("keep_all"):
            shutil.copyfile(last, out_dir / f"step{step:06d}.safetensors")
        if val["score"] < best:
            best = val["score"]
            shutil.copyfile(last, out_dir / "best.safetensors")
        torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step,
                    "wall_s": time.perf_counter() - t0, "best": best, "torch_rng": torch.get_rng_state()},
                   tstate)
        _append_csv(out_dir / "validation.csv", {"step": step, "wall_s": round(meta["wall_s"], 1),
                                                 "val_s": round(time.perf_counter() - tv, 2), **val,
                                                 "best": best})
        plot(out_dir)
        msg = f"step {step}: validation {json.dumps(val)} best {best:.3f}"
        (bar.write if bar else print)(msg)

    while step < int(cfg.steps):
        pool = pools[rng.choice(len(pools), p=probs)] if len(pools) > 1 else pools[0]
        mean_log, nbad = train_step(model, opt, pool, int(cfg.batch), float(cfg.explode))
        sched.step()
        pool.round_robin(per_step)
        step += 1
        resets += nbad
        if math.isfinite(mean_log):
            acc, n_acc = acc + mean_log, n_acc + 1
        if bar:
            bar.update(1)
        if step % int(cfg.log_every) == 0:
            _append_csv(out_dir / "loss.csv", {
                "step": step, "wall_s": round(time.perf_counter() - t0, 2),
                "log10_msr": acc / max(n_acc, 1), "explosion_resets": resets,
                "mean_age": float(np.mean([float(q.iters.double().mean()) for q in pools])),
                "lr": opt.param_groups[0]["lr"]})
            acc, n_acc, resets = 0.0, 0, 0
        every_steps = cfg.get("checkpoint_every_steps")
        due = (step % int(every_steps) == 0) if every_steps else (
            time.perf_counter() - t_ckpt > float(cfg.checkpoint_every_s))
        if due and step < int(cfg.steps):
            save_and_validate()
            t_ckpt = time.perf_counter()
    save_and_validate()
    if bar:
        bar.close()
    result = {"steps": step, "wall_s": time.perf_counter() - t0, "best_score": best,
              "best": str(out_dir / "best.safetensors")}
    if cfg.ship:
        ship = Path(cfg.ship)
        model_best, meta = checkpoint.load(out_dir / "best.safetensors")
        meta_out = {k: v for k, v in meta.items() if k not in ("hidden", "norm", "format")}
        meta_out["command"] = "python -m solvers.metamizer.train " + " ".join(
            f"{k}={v}" for k, v in _overrides().items())
        checkpoint.save(ship, model_best, meta_out)
        result["shipped"] = str(ship)
    (out_dir / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return result


def _overrides() -> dict:
    try:
        from hydra.core.hydra_config import HydraConfig

        ov = HydraConfig.get().overrides.task
        return dict(o.split("=", 1) for o in ov)
    except Exception:  # noqa: BLE001 - not under Hydra
        return {}


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train/default")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
