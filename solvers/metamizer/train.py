"""Train a Metamizer checkpoint: ``python -m solvers.metamizer.train [--config-name train/paper] [key=value ...]``.

The training-pool meta-learning of the paper (see ``pool.py``): draw a batch,
take the detached gradient at the current iterates, propose a step, apply it,
score the MSR *after* the step, backpropagate through gradient normalisation,
(optionally clip,) AdamW; write the iterates and optimiser states back. Entries
are refreshed round-robin (``mean_iters`` iterations each on average) and at
once when their loss exceeds ``explode`` (or is not finite).

Run length: ``steps``, or ``steps=null`` with ``max_wall_s``: the trainer times
``calibrate_steps`` steps and one validation, then fixes the plan (total steps,
learning-rate milestones at ``lr_halve_at_frac`` of it, validation points) so
the run fits the wall-clock budget; the plan is saved, so a resumed run keeps it.

Every ``val_every_steps`` (default: ``steps // validations``) the model is
validated in eval mode on held-out ``laplace_obstacles`` problems (never the
``laplace_bilinear`` test) scored by ``Problem.msr``; an improvement is exported
at once as ``best.safetensors`` with its provenance in the metadata. The full
training state goes to ``state/`` (model, optimiser, pool, every RNG; each file
well under 16 MB at the paper's sizes) at every validation, every
``state_every_s`` seconds, at a ``max_wall_s``/``stop_after`` stop and at the end:
``resume=DIR`` continues exactly (same weights, bit for bit, as an uninterrupted
run on the same machine and thread count).

Outputs in ``out_dir``: ``best.safetensors``, ``state/``, ``config.yaml``,
``loss.csv``, ``validation.csv``, ``train.log``, ``training.png``, ``result.json``.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import signal
import subprocess
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from problems import make_problem
from solvers.metamizer import checkpoint
from solvers.metamizer.model import MetamizerNet, State
from solvers.metamizer.pool import FIELDS, Pool, batched_gradient, batched_msr

REPO_ROOT = Path(__file__).resolve().parents[2]
# keys a resumed run may change; everything else must match the stopped run's config
RESUMABLE_OVERRIDES = ("resume", "max_wall_s", "stop_after", "progress", "state_every_s", "threads")


# --- validation (checkpoint selection) -------------------------------------------
def validation_problems(cfg_sets) -> list[tuple[list, list[int]]]:
    out = []
    for s in cfg_sets:
        extra = {"n_boxes": int(s["n_boxes"])} if s.get("n_boxes") is not None else {}
        probs = [make_problem("laplace_obstacles", n=int(s["n"]), seed=int(seed), **extra) for seed in s["seeds"]]
        out.append((probs, [int(i) for i in s["iters"]]))
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


def validate(model: MetamizerNet, sets, floor: float, diverged: float, device="cpu") -> dict:
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


# --- one training step -----------------------------------------------------------
def _last_occurrence(idx: np.ndarray) -> np.ndarray:
    """Positions in ``idx`` of the last occurrence of each distinct entry (duplicates
    from sampling with replacement: the last one is written back, deterministically)."""
    _, first_rev = np.unique(idx[::-1], return_index=True)
    return np.sort(len(idx) - 1 - first_rev)


def train_step(model, opt, pool: Pool, batch: int, explode: float, clip_value: float | None = None,
               detach_loss: bool = False, reduce: str = "sum", explode_units: str = "msr") -> tuple[torch.Tensor, int]:
    """One pool step; returns (sum over the good samples of log10 MSR after the step,
    as a device tensor, and the number of entries reset for exploding).

    ``explode_units``: ``msr`` compares each sample's MSR with ``explode``; ``authors``
    compares the authors' per-sample loss, sum(r^2) divided by the interior nodes of the
    whole batch (their ``torch.sum(1 - bc_mask)``), i.e. about MSR / batch."""
    idx_np = pool.sample(batch)
    idx = torch.as_tensor(idx_np, device=pool.device)
    mask, g, f, n_int = pool.mask[idx], pool.g[idx], pool.f[idx], pool.n_interior[idx]
    u = pool.u[idx]
    state = State(pool.grad[idx], pool.step[idx], pool.scale[idx])
    grad = batched_gradient(u, f, mask, n_int)
    d, new = model.step(grad, state, train=True, interior=~mask)
    u_new = torch.where(mask, g, u + d)
    loss_per = batched_msr(u_new, f, mask, n_int, detach_neighbours=detach_loss)
    loss = loss_per.mean() if reduce == "mean" else loss_per.sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip_value:
        torch.nn.utils.clip_grad_value_(model.parameters(), float(clip_value))
    opt.step()
    with torch.no_grad():
        keep = torch.as_tensor(_last_occurrence(idx_np), device=pool.device)
        w = idx[keep]
        pool.u[w] = u_new.detach()[keep]
        pool.grad[w] = grad[keep]
        pool.step[w] = new.step.detach()[keep]
        pool.scale[w] = new.scale.detach()[keep]
        pool.iters[w] += 1
        lp = loss_per.detach()
        if explode_units == "authors":
            lp_units = lp * n_int / n_int.sum()
        elif explode_units == "msr":
            lp_units = lp
        else:
            raise ValueError(f"explode_units={explode_units!r}; valid: msr, authors")
        bad = ~torch.isfinite(lp) | (lp_units > explode)
        bad_idx = sorted(set(idx_np[bad.cpu().numpy()].tolist()))  # one host sync per step
        if bad_idx:
            pool.reset(bad_idx)
        good = torch.where(bad, torch.zeros_like(lp), torch.log10(lp.clamp_min(1e-40)))
    return good.sum(), len(bad_idx)


def lr_at(step: int, base: float, milestones: list[int]) -> float:
    """MultiStepLR(gamma=0.5) as a function of the step: halved at each milestone passed."""
    return base * 0.5 ** sum(step >= m for m in milestones)


# --- provenance ------------------------------------------------------------------
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


# --- the run ---------------------------------------------------------------------
class Trainer:
    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.device = str(cfg.device)
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.out / "state"
        torch.manual_seed(int(cfg.seed))
        self.rng = np.random.default_rng(int(cfg.seed))
        variant = cfg.model.get("variant") or cfg.model.get("norm")
        self.model = MetamizerNet.from_variant(str(variant), int(cfg.model.hidden)).to(self.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=float(cfg.lr), weight_decay=float(cfg.weight_decay))
        self.grids = [int(n) for n in (cfg.grid if OmegaConf.is_list(cfg.grid) else [cfg.grid])]
        p = np.asarray(cfg.grid_probs if cfg.get("grid_probs") else [1.0] * len(self.grids), dtype=float)
        self.grid_p = p / p.sum()
        self.pools = [Pool(int(cfg.pool_size), n, self.rng, self.device, str(cfg.pool), float(cfg.p_no_boxes),
                           float(cfg.p_source), float(cfg.get("p_freq", 0.0)),
                           tuple(cfg.get("freq_range", (0.005, 0.1))), bool(cfg.sample_replace))
                      for n in self.grids]
        self.vsets = validation_problems(OmegaConf.to_container(cfg.validation.sets, resolve=True))
        self.step, self.wall, self.best, self.best_step = 0, 0.0, math.inf, None
        self.plan: dict | None = None
        self.last_val_step = None
        self.acc = torch.zeros((), dtype=torch.float64, device=self.device)
        self.n_acc, self.resets = 0, 0
        self.hw = hardware(self.device)
        self.commit = str(cfg.commit) if cfg.get("commit") else git_commit()

    # planning ------------------------------------------------------------------
    def fix_plan(self, steps: int) -> None:
        cfg = self.cfg
        ms = [int(round(f * steps)) for f in cfg.get("lr_halve_at_frac") or []] + [int(s) for s in cfg.lr_halve_at]
        every = cfg.get("val_every_steps") or max(1, steps // max(1, int(cfg.validations)))
        self.plan = {"steps": int(steps), "milestones": sorted(ms), "val_every": int(every)}
        self.log(f"plan: {json.dumps(self.plan)}")

    # state archive ---------------------------------------------------------------
    def save_state(self) -> None:
        tmp = self.out / "state.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        checkpoint.save(tmp / "model.safetensors", self.model)
        torch.save(self.opt.state_dict(), tmp / "optimizer.pt")
        for i, pool in enumerate(self.pools):  # one file per field: 8 MB each at 100 entries of 100 x 100
            st = pool.state_dict()
            for k in FIELDS:
                torch.save(st[k].cpu(), tmp / f"pool{i}_{k}.pt")
        cuda_rng = [t.cpu() for t in torch.cuda.get_rng_state_all()] if self.device.startswith("cuda") else []
        torch.save({
            "step": self.step, "wall_s": self.wall_now(), "best": self.best, "best_step": self.best_step,
            "plan": json.dumps(self.plan), "numpy_rng": json.dumps(self.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(), "cuda_rng": cuda_rng,
            "pool_counters": json.dumps([[p._rr, p._acc, p.entry_rng] for p in self.pools]),
            "log_acc": [float(self.acc), self.n_acc, self.resets], "last_val_step": self.last_val_step,
        }, tmp / "trainer.pt")
        old = self.out / "state.old"
        shutil.rmtree(old, ignore_errors=True)
        if self.state_dir.exists():
            self.state_dir.rename(old)
        tmp.rename(self.state_dir)
        shutil.rmtree(old, ignore_errors=True)

    def load_state(self) -> None:
        d = self.state_dir
        ts = torch.load(d / "trainer.pt", map_location="cpu", weights_only=True)
        loaded, _ = checkpoint.load(d / "model.safetensors", device=self.device)
        self.model.load_state_dict(loaded.state_dict())
        self.opt.load_state_dict(torch.load(d / "optimizer.pt", map_location=self.device, weights_only=True))
        for i, pool in enumerate(self.pools):
            rr, acc, entry_rng = json.loads(ts["pool_counters"])[i]
            pool.load_state_dict({**{k: torch.load(d / f"pool{i}_{k}.pt", weights_only=True) for k in FIELDS},
                                  "rr": rr, "acc": acc, "entry_rng": entry_rng})
        self.rng.bit_generator.state = json.loads(ts["numpy_rng"])
        torch.set_rng_state(ts["torch_rng"])
        if ts["cuda_rng"] and self.device.startswith("cuda"):
            torch.cuda.set_rng_state_all(ts["cuda_rng"])
        self.step, self.wall, self.best, self.best_step = (int(ts["step"]), float(ts["wall_s"]), float(ts["best"]),
                                                           ts["best_step"])
        self.plan = json.loads(ts["plan"])
        self.last_val_step = ts["last_val_step"]
        acc, self.n_acc, self.resets = ts["log_acc"]
        self.acc.fill_(acc)
        self.log(f"resumed from {d} at step {self.step} ({self.wall:.0f} s trained, best score {self.best:.3f})")

    # bookkeeping ----------------------------------------------------------------
    def wall_now(self) -> float:
        return self.wall + (time.perf_counter() - self.t_start)

    def log(self, msg: str) -> None:
        print(msg, flush=True)
        with (self.out / "train.log").open("a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")

    def export_best(self, val: dict) -> None:
        cfg = self.cfg
        meta = {"recipe": str(cfg.recipe), "training_steps": self.step, "training_wall_s": round(self.wall_now(), 1),
                "training_hardware": self.hw, "seed": int(cfg.seed), "commit": self.commit,
                "grid": self.grids, "validation": val, "plan": self.plan,
                "precision": "float32 network (TF32 off), float64 fields",
                "config": OmegaConf.to_container(cfg, resolve=True)}
        checkpoint.save(self.out / "best.safetensors", self.model, meta)

    def validate_and_select(self) -> float:
        self.last_val_step = self.step
        tv = time.perf_counter()
        val = validate(self.model, self.vsets, float(self.cfg.validation.floor),
                       float(self.cfg.validation.diverged), self.device)
        if val["score"] < self.best:
            self.best, self.best_step = val["score"], self.step
            self.export_best(val)
        dt = time.perf_counter() - tv
        _append_csv(self.out / "validation.csv", {"step": self.step, "wall_s": round(self.wall_now(), 1),
                                                  "val_s": round(dt, 2), **val, "best": self.best})
        self.log(f"step {self.step}: validation {json.dumps(val)} best {self.best:.3f} (step {self.best_step})")
        return dt

    def one_step(self) -> None:
        cfg = self.cfg
        pool = self.pools[self.rng.choice(len(self.pools), p=self.grid_p)] if len(self.pools) > 1 else self.pools[0]
        for group in self.opt.param_groups:
            group["lr"] = lr_at(self.step, float(cfg.lr), self.plan["milestones"] if self.plan else [])
        s, nbad = train_step(self.model, self.opt, pool, int(cfg.batch), float(cfg.explode),
                             cfg.get("clip_grad_value"), bool(cfg.detach_loss), str(cfg.loss_reduce),
                             str(cfg.get("explode_units", "msr")))
        pool.round_robin(int(cfg.batch), int(cfg.mean_iters))
        self.step += 1
        self.acc += s
        self.n_acc += int(cfg.batch) - nbad
        self.resets += nbad
        if self.step % int(cfg.log_every) == 0:
            _append_csv(self.out / "loss.csv", {
                "step": self.step, "wall_s": round(self.wall_now(), 2),
                "log10_msr": float(self.acc) / max(self.n_acc, 1), "explosion_resets": self.resets,
                "mean_age": float(np.mean([float(q.iters.double().mean()) for q in self.pools])),
                "lr": self.opt.param_groups[0]["lr"]})
            self.acc.zero_()
            self.n_acc, self.resets = 0, 0

    def run(self, resume: bool) -> dict:
        cfg = self.cfg
        self.t_start = time.perf_counter()
        if resume:
            self.load_state()
        self.t_start = time.perf_counter()  # wall_now = trained wall so far + this invocation
        (self.out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        self.log(f"training on {self.hw}; recipe {cfg.recipe}; commit {self.commit}")
        max_wall = float(cfg.max_wall_s) if cfg.get("max_wall_s") else math.inf
        stop_after = int(cfg.stop_after) if cfg.get("stop_after") else None
        if self.plan is None and cfg.steps is not None:
            self.fix_plan(int(cfg.steps))
        if self.plan is None and not math.isfinite(max_wall):
            raise SystemExit("steps=null needs max_wall_s=SECONDS (the run is planned to fit it); or set steps=N")
        bar = None
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.plan["steps"] if self.plan else None, initial=self.step, desc="metamizer",
                       mininterval=10, dynamic_ncols=True)
        t_state = time.perf_counter()
        stopped = None
        done_here = 0
        signalled: list[str] = []
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # stop cleanly: state saved, resumable
            signal.signal(sig, lambda num, _frame: signalled.append(signal.Signals(num).name))
        t_half = self.t_start
        while self.plan is None or self.step < self.plan["steps"]:
            self.one_step()
            done_here += 1
            if bar:
                bar.update(1)
            if self.plan is None and self.step == int(cfg.calibrate_steps) // 2:
                self.sync()
                t_half = time.perf_counter()  # time the second half only (warm-up, cuDNN autotuning done)
            if self.plan is None and self.step == int(cfg.calibrate_steps):
                self.sync()
                t_step = (time.perf_counter() - t_half) / (self.step - int(cfg.calibrate_steps) // 2)
                t_val = self.validate_and_select()
                nval = max(1, int(cfg.validations))
                left = max_wall * float(cfg.wall_fraction) - (time.perf_counter() - self.t_start) - nval * t_val
                self.fix_plan(self.step + max(0, int(left / t_step)))
                if bar:
                    bar.total = self.plan["steps"]
            elif self.plan and self.step % self.plan["val_every"] == 0 and self.step < self.plan["steps"]:
                self.validate_and_select()
                self.save_state()
                t_state = time.perf_counter()
            if cfg.get("state_every_s") and time.perf_counter() - t_state > float(cfg.state_every_s):
                self.save_state()
                t_state = time.perf_counter()
            if signalled:
                stopped = f"{signalled[0]} received"
                break
            if stop_after is not None and done_here >= stop_after:
                stopped = f"stop_after={stop_after} steps"
                break
            if time.perf_counter() - self.t_start > max_wall and (self.plan is None or self.step < self.plan["steps"]):
                stopped = f"max_wall_s={max_wall:g} reached"
                break
        if bar:
            bar.close()
        if self.last_val_step != self.step:
            self.validate_and_select()  # the final (or stopped) model competes too: there is always an export
        self.save_state()
        plot(self.out)
        result = {"steps": self.step, "planned_steps": self.plan["steps"] if self.plan else None,
                  "wall_s": round(self.wall_now(), 1), "best_score": self.best, "best_step": self.best_step,
                  "best": str(self.out / "best.safetensors"), "stopped": stopped, "hardware": self.hw}
        if stopped:
            self.log(f"stopped at step {self.step} ({stopped}); continue with "
                     f"python -m solvers.metamizer.train --config-name train/{cfg.recipe} resume={self.out}")
        if cfg.get("ship") and (self.out / "best.safetensors").exists():
            shutil.copyfile(self.out / "best.safetensors", cfg.ship)
            result["shipped"] = str(cfg.ship)
        (self.out / "result.json").write_text(json.dumps(result, indent=1))
        self.log(json.dumps(result))
        return result

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)


def run(cfg: DictConfig) -> dict:
    """Train per ``cfg``; with ``resume=DIR`` continue the run stored in DIR (its
    saved config is used, except the RESUMABLE_OVERRIDES given now)."""
    resume = cfg.get("resume")
    if resume:
        rdir = Path(str(resume))
        if not (rdir / "state" / "trainer.pt").is_file() or not (rdir / "config.yaml").is_file():
            raise SystemExit(f"resume={rdir}: no training state there (expected {rdir}/state/trainer.pt)")
        saved = OmegaConf.load(rdir / "config.yaml")
        for k in RESUMABLE_OVERRIDES:
            if k in cfg:
                saved[k] = cfg[k]
        saved.out_dir = str(rdir)
        cfg = saved
    torch.set_num_threads(int(cfg.threads))
    device = str(cfg.device)
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("device=cuda but no CUDA device is visible to torch (use device=cpu)")
        from solvers.metamizer.fast import tf32_off

        tf32_off()  # float32 network as in the paper: no TF32 anywhere
        torch.backends.cudnn.benchmark = bool(cfg.cudnn_benchmark)  # recorded in config.yaml
    return Trainer(cfg).run(resume=bool(resume))


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train/default")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
