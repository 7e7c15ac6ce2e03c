"""The Metamizer training run: the loop, its plan, its resumable state and its files.
Over 300 lines: the state archive (save/load), the run's files and the loop share one object's bookkeeping.

Run length: ``steps``, or ``steps=null`` with ``max_wall_s``: the trainer times
``calibrate_steps`` steps and one validation, then fixes the plan (total steps,
learning-rate milestones, validation points) so the run fits the wall-clock budget;
the plan is saved, so a resumed run keeps it.

Every ``val_every_steps`` (default ``steps // validations``) the model is validated
(``validation.py``) after its BatchNorm statistics are re-estimated with frozen
weights (``bn_stats.py``, ``validation.batchnorm.batches``; the training model itself
is not touched). Every validated model is kept as ``checkpoints/step_NNNNNNN.safetensors``
with its scores in ``validation.csv``; the best score so far is ``best.safetensors``.
The full training state goes to ``state/`` (model, optimiser, pool, every RNG) at every
validation, every ``state_every_s`` seconds, at a stop (``max_wall_s``, ``stop_after``,
SIGTERM/SIGINT/SIGHUP) and at the end: ``resume=DIR`` continues exactly (same weights,
bit for bit, as an uninterrupted run on the same machine and thread count).

Outputs in ``out_dir``: ``best.safetensors``, ``checkpoints/``, ``state/``,
``config.yaml``, ``loss.csv``, ``validation.csv``, ``train.log``, ``training.png``,
``result.json``.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from solvers.metamizer import checkpoint
from solvers.metamizer.bn_stats import batchnorm_layers, precise_batchnorm
from solvers.metamizer.export import git_commit, hardware, training_bill
from solvers.metamizer.model import MetamizerNet
from solvers.metamizer.pool import FIELDS, Pool
from solvers.metamizer.train_step import lr_at, train_step
from solvers.metamizer.validation import RecipeValidation


def plot(out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.2), width_ratios=[1, 1.35])
    if (out_dir / "loss.csv").exists():
        loss = pd.read_csv(out_dir / "loss.csv")
        ax[0].plot(loss["step"], loss["log10_msr"], lw=0.8)
    ax[0].set(xlabel="step", ylabel="mean log10 MSR after the step", title="training pool loss (batch mean)")
    vpath = out_dir / "validation.csv"
    if vpath.exists():
        val = pd.read_csv(vpath)
        sets: dict[str, list[str]] = {}  # one line per validation set: its mean over the iteration counts
        for c in val.columns:
            if c.startswith("n") and "_it" in c:
                sets.setdefault(c.rsplit("_it", 1)[0], []).append(c)
        for tag, cols in sets.items():
            ax[1].plot(val["step"], val[cols].mean(axis=1), marker=".", lw=1, label=tag)
        ax[1].plot(val["step"], val["score"], "k-", marker="o", lw=2.5, label="score (selection)")
        bpath = out_dir / BATCHNORM_CSV
        if bpath.exists():  # the same weights with the BatchNorm statistics not selected on
            buf = pd.read_csv(bpath)
            other = {"precise": ("score_training_buffers", "training's", "--", "0.45"),
                     "training": ("score_precise", "precise", ":", "black")}
            for rule, g in buf.groupby("selected"):
                col, words, dash, colour = other[str(rule)]
                ax[1].plot(g["step"], g[col], dash, color=colour, marker="x", lw=1.5,
                           label=f"score with {words}\nBatchNorm statistics (not selected on)")
        ax[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax[1].set(xlabel="step", ylabel="log10 MSR, mean over iteration counts", title="held-out validation")
    fig.tight_layout()
    fig.savefig(out_dir / "training.png", dpi=110)
    plt.close(fig)


# A BatchNorm model is validated twice, with training's own running statistics (momentum 0.1) and with
# precise ones (bn_stats.py); ``validation.batchnorm.select`` says which is selected on, snapshotted and
# exported; both scores go to this file. Why both: MODEL_CARD.md, "The CPU run of 2026-12-05".
BATCHNORM_CSV = "validation_batchnorm.csv"
BATCHNORM_SELECT = ("precise", "training")


def append_csv(path: Path, row: dict) -> None:
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
        self.validation = RecipeValidation(cfg.validation)
        self.vsets = self.validation.sets
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
        pool_files = [d / f"pool{i}_{k}.pt" for i in range(len(self.pools)) for k in FIELDS]
        if all(f.is_file() for f in pool_files):
            for i, pool in enumerate(self.pools):
                rr, acc, entry_rng = json.loads(ts["pool_counters"])[i]
                pool.load_state_dict({**{k: torch.load(d / f"pool{i}_{k}.pt", weights_only=True) for k in FIELDS},
                                      "rr": rr, "acc": acc, "entry_rng": entry_rng})
        else:  # a slim state (weights, optimiser, RNGs, counters; e.g. one committed to carry a run on)
            self.log("no pool files in the state: the pool is drawn afresh (a warm continuation, not "
                     "bit-identical to an uninterrupted run; the pool is back in its steady state after "
                     "pool_size * mean_iters / batch steps)")
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

    def selection_rule(self) -> str:
        return str(OmegaConf.select(self.cfg, "validation.batchnorm.select", default="precise"))

    def evaluation_models(self) -> dict[str, tuple[MetamizerNet, str]]:
        """The models a validation scores, by kind of BatchNorm statistics: ``training`` (the training
        model itself, its running averages) and ``precise`` (a copy with re-estimated statistics, when
        ``validation.batchnorm.batches`` > 0); only ``none`` for a model without BatchNorm."""
        cfg = self.cfg
        batches = int((cfg.validation.get("batchnorm") or {}).get("batches", 0))
        if not batchnorm_layers(self.model):
            return {"none": (self.model, "none (no BatchNorm)")}
        out = {"training": (self.model, "training's running averages (momentum 0.1)")}
        if batches > 0:
            model = precise_batchnorm(self.model, self.pools, seed=[int(cfg.seed), 1, self.step], batches=batches,
                                      batch=int(cfg.batch), mean_iters=int(cfg.mean_iters))
            out["precise"] = (model, f"precise: cumulative average over {batches} batches of {int(cfg.batch)} drawn "
                                     f"from a copy of the training pool at step {self.step}, weights frozen")
        return out

    def validate_and_select(self) -> float:
        cfg = self.cfg
        self.last_val_step = self.step
        tv = time.perf_counter()
        models = self.evaluation_models()
        rule = self.selection_rule() if self.selection_rule() in models else next(iter(models))
        scores = {}
        for kind, (m, _) in models.items():
            scores[kind] = self.validation(m, self.device)
        model, bn = models[rule]
        val = scores[rule]
        if len(models) > 1:
            append_csv(self.out / BATCHNORM_CSV, {"step": self.step, "score_precise": scores["precise"]["score"],
                                                   "score_training_buffers": scores["training"]["score"],
                                                   "selected": rule})
            self.log(f"step {self.step}: score {scores['training']['score']:.2f} with training's BatchNorm "
                     f"statistics, {scores['precise']['score']:.2f} with precise ones; selecting on {rule}")
        meta = training_bill(cfg, step=self.step, wall_s=self.wall_now(), hardware_desc=self.hw, commit=self.commit,
                             grids=self.grids, validation=val, plan=self.plan, batchnorm=bn)
        snapshot = self.out / "checkpoints" / f"step_{self.step:07d}.safetensors"
        checkpoint.save(snapshot, model, meta)
        if val["score"] < self.best:
            self.best, self.best_step = val["score"], self.step
            shutil.copyfile(snapshot, self.out / "best.safetensors")
        dt = time.perf_counter() - tv
        append_csv(self.out / "validation.csv", {"step": self.step, "wall_s": round(self.wall_now(), 1),
                                                  "val_s": round(dt, 2), **val, "best": self.best})
        self.log(f"step {self.step}: validation {json.dumps(val)} best {self.best:.3f} (step {self.best_step})")
        return dt

    def drop_rows_after_state(self) -> None:
        """A run killed after its last state save logged steps it will now redo: drop
        those rows, so every step appears once in the logs."""
        for name in ("loss.csv", "validation.csv", BATCHNORM_CSV):
            path = self.out / name
            if not path.exists():
                continue
            lines = path.read_text().splitlines()
            keep = lines[:1] + [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) <= self.step]
            if len(keep) < len(lines):
                path.write_text("\n".join(keep) + "\n")

    def validation_columns(self) -> list[str]:
        cols = [f"{tag}_it{it}" for tag, _, iters in self.vsets for it in iters]
        return ["step", "wall_s", "val_s", *cols, "score", "best"]

    def restart_selection_if_rule_changed(self) -> None:
        """A run resumed under other validation sets (its config.yaml edited, e.g. a run
        started before a new rule) keeps its old scores apart and selects afresh: scores
        of two rules are not comparable."""
        path = self.out / "validation.csv"
        if not path.exists():
            return
        header = path.read_text().splitlines()[0].split(",")
        rules = self.out / BATCHNORM_CSV
        last_rule = rules.read_text().splitlines()[-1].rsplit(",", 1)[-1] if rules.exists() else None
        if header == self.validation_columns() and last_rule in (None, self.selection_rule()):
            return
        old = path.with_name(f"validation_rule_before_step_{self.step}.csv")
        path.rename(old)
        self.best, self.best_step = math.inf, None
        self.log(f"validation rule changed at step {self.step}: earlier scores moved to {old.name}; "
                 f"selection restarts under the new rule")

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
            append_csv(self.out / "loss.csv", {
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
            self.drop_rows_after_state()
            self.restart_selection_if_rule_changed()
            every = self.cfg.get("val_every_steps")
            if self.plan and every and int(every) != self.plan["val_every"]:  # a resumed run may validate more often
                self.plan["val_every"] = int(every)
                self.log(f"validation every {int(every)} steps from step {self.step} (val_every_steps)")
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
        if self.last_val_step != self.step and not signalled:  # a signal asks for a prompt stop: state only
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


