"""Train a Metamizer checkpoint: ``python -m solvers.metamizer.train [--config-name train/paper] [key=value ...]``.

The command line: every value is checked before anything is written (one line naming
the key and the fix, exit status 1, no traceback); a run never writes into a folder
that already holds a training run unless it is resumed there with ``resume=DIR``, and
never while another trainer holds that folder (a lock file, ``.lock``).
The training itself is ``trainer.py`` (loop and state), ``train_step.py`` (one step),
``validation.py`` and ``bn_stats.py`` (selection), ``export.py`` (provenance).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from solvers.metamizer.model import VARIANTS
from solvers.metamizer.pool import KINDS
from solvers.metamizer.trainer import BATCHNORM_SELECT, Trainer
from solvers.metamizer.validation import KINDS as VALIDATION_KINDS
from solvers.metamizer.validation import SCORES

# keys a resumed run may change; everything else must match the stopped run's config
RESUMABLE_OVERRIDES = ("resume", "max_wall_s", "stop_after", "progress", "state_every_s", "threads",
                       "val_every_steps")
# files that mark a folder as holding a training run (never overwritten by a new run)
RUN_FILES = ("config.yaml", "train.log", "state", "best.safetensors", "loss.csv", "validation.csv")


class ConfigError(SystemExit):
    """A bad training value: one line, exit status 1."""

    def __init__(self, key: str, value, fix: str):
        super().__init__(f"error: {key}={value!r}: {fix}")


def _int(cfg, key: str, lo: int, fix: str, optional: bool = False):
    v = OmegaConf.select(cfg, key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(key, v, fix)
    return v


def _num(cfg, key: str, fix: str, lo: float = 0.0, strict: bool = True, optional: bool = False):
    v = OmegaConf.select(cfg, key)
    if v is None and optional:
        return None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (v > lo if strict else v >= lo)
    if not ok:
        raise ConfigError(key, v, fix)
    return float(v)


def _choice(cfg, key: str, valid) -> None:
    v = OmegaConf.select(cfg, key)
    if v not in valid:
        raise ConfigError(key, v, f"use one of {', '.join(map(str, valid))}")


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError (one line) for the first bad value."""
    if cfg.get("steps") is None:
        if cfg.get("max_wall_s") is None:
            raise ConfigError("steps", None, "set steps=N (a positive integer), or steps=null with max_wall_s=SECONDS")
    else:
        _int(cfg, "steps", 1, "set steps to a positive integer, e.g. steps=20000")
    _num(cfg, "max_wall_s", "set max_wall_s to a positive number of seconds, or null", optional=True)
    _int(cfg, "stop_after", 1, "set stop_after to a positive number of steps, or null", optional=True)
    _int(cfg, "batch", 1, "set batch to a positive integer, e.g. batch=10")
    _int(cfg, "pool_size", 1, "set pool_size to a positive integer, e.g. pool_size=100")
    if not cfg.get("sample_replace") and cfg.pool_size < cfg.batch:
        raise ConfigError("pool_size", cfg.pool_size, f"a batch of {cfg.batch} without replacement needs "
                                                      f"pool_size >= batch (or sample_replace=true)")
    grids = list(cfg.grid) if OmegaConf.is_list(cfg.grid) else [cfg.grid]
    if not grids or any(isinstance(n, bool) or not isinstance(n, int) or n < 16 for n in grids):
        raise ConfigError("grid", OmegaConf.to_container(cfg.grid) if OmegaConf.is_list(cfg.grid) else cfg.grid,
                          "set grid to an integer >= 16 or a list of them, e.g. grid=100 or grid=[64,128]")
    probs = cfg.get("grid_probs")
    if probs is not None:
        p = list(probs) if OmegaConf.is_list(probs) else [probs]
        if len(p) != len(grids) or any(not isinstance(x, (int, float)) or x < 0 for x in p) or sum(p) <= 0:
            raise ConfigError("grid_probs", probs, f"give {len(grids)} non-negative weights (one per grid), or null")
    _num(cfg, "lr", "set lr to a positive number, e.g. lr=1e-3")
    _num(cfg, "weight_decay", "set weight_decay to a number >= 0", strict=False)
    _num(cfg, "explode", "set explode to a positive loss threshold, e.g. explode=2e4")
    _choice(cfg, "explode_units", ("msr", "authors"))
    _num(cfg, "clip_grad_value", "set clip_grad_value to a positive number, or null", optional=True)
    _choice(cfg, "loss_reduce", ("sum", "mean"))
    _int(cfg, "threads", 1, "set threads to a positive integer, e.g. threads=2")
    _int(cfg, "seed", 0, "set seed to an integer >= 0")
    _int(cfg, "mean_iters", 1, "set mean_iters to a positive integer, e.g. mean_iters=60")
    _int(cfg, "log_every", 1, "set log_every to a positive integer")
    _int(cfg, "validations", 1, "set validations to a positive integer")
    _int(cfg, "val_every_steps", 1, "set val_every_steps to a positive integer, or null", optional=True)
    _num(cfg, "state_every_s", "set state_every_s to a positive number of seconds, or null", optional=True)
    _int(cfg, "model.hidden", 1, "set model.hidden to a positive integer, e.g. model.hidden=20")
    _choice(cfg, "model.variant", tuple(VARIANTS))
    _choice(cfg, "pool", KINDS)
    dev = str(cfg.get("device"))
    if dev != "cpu" and not (dev == "cuda" or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError("device", cfg.get("device"), "use device=cpu or device=cuda (cuda:N)")
    for i, m in enumerate(cfg.get("lr_halve_at") or []):
        if isinstance(m, bool) or not isinstance(m, int) or m < 0:
            raise ConfigError(f"lr_halve_at[{i}]", m, "milestones are step numbers >= 0")
    for i, f in enumerate(cfg.get("lr_halve_at_frac") or []):
        if not isinstance(f, (int, float)) or not 0 <= f <= 1:
            raise ConfigError(f"lr_halve_at_frac[{i}]", f, "fractions of the run lie in [0, 1]")
    _choice(cfg, "validation.score", SCORES)
    _int(cfg, "validation.batchnorm.batches", 0, "set validation.batchnorm.batches to an integer >= 0 (0: keep "
                                                 "training's running averages)")
    if OmegaConf.select(cfg, "validation.batchnorm.select", default="precise") not in BATCHNORM_SELECT:
        _choice(cfg, "validation.batchnorm.select", BATCHNORM_SELECT)
    sets = cfg.validation.get("sets")
    if not sets:
        raise ConfigError("validation.sets", sets, "give at least one set, e.g. [{n: 64, seeds: [1000], iters: [20]}]")
    for i, s in enumerate(sets):
        key = f"validation.sets[{i}]"
        if not isinstance(s.get("n"), int) or s.get("n") < 16 or not s.get("seeds") or not s.get("iters") \
                or any(not isinstance(k, int) or k < 1 for k in s.get("iters")):
            raise ConfigError(key, OmegaConf.to_container(s), "needs n (>= 16), seeds (a non-empty list) and iters "
                                                              "(positive integers)")
        if s.get("kind", "obstacles") not in VALIDATION_KINDS:
            raise ConfigError(f"{key}.kind", s.get("kind"), f"use one of {', '.join(VALIDATION_KINDS)}")


def _holds_a_run(folder: Path) -> bool:
    return folder.is_dir() and any((folder / f).exists() for f in RUN_FILES)


@contextlib.contextmanager
def _sole_trainer(folder: Path):
    """Hold ``folder/.lock`` while training. A second trainer on the same folder (say, a
    resume started while the first is still saving) would cut the first's logs back to its
    state and then write beside it; it is refused instead, before it touches anything."""
    folder.mkdir(parents=True, exist_ok=True)
    fh = (folder / ".lock").open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the kernel if this process dies
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise SystemExit(f"error: {folder} is being trained by {holder}: wait for it to stop (kill -TERM "
                         f"stops it with its state saved), then resume={folder}") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}\n")
    fh.flush()
    try:
        yield
    finally:
        fh.close()


def run(cfg: DictConfig) -> dict:
    """Train per ``cfg``; with ``resume=DIR`` continue the run stored in DIR (its
    saved config is used, except the RESUMABLE_OVERRIDES given now)."""
    resume = cfg.get("resume")
    if resume:
        rdir = Path(str(resume))
        if not (rdir / "state" / "trainer.pt").is_file() or not (rdir / "config.yaml").is_file():
            raise SystemExit(f"error: resume={rdir}: no training state there (expected {rdir}/state/trainer.pt); "
                             f"give the out_dir of a stopped run")
        saved = OmegaConf.load(rdir / "config.yaml")
        for k in RESUMABLE_OVERRIDES:
            if k in cfg and not (k == "val_every_steps" and cfg[k] is None):  # not given: the run keeps its own
                saved[k] = cfg[k]
        saved.out_dir = str(rdir)
        cfg = saved
    else:
        out = Path(str(cfg.out_dir))
        if out.exists() and not out.is_dir():
            raise ConfigError("out_dir", str(out), "is a file; give a folder")
        if _holds_a_run(out):
            raise ConfigError("out_dir", str(out), "already holds a training run: continue it with "
                                                   f"resume={out}, or give a new out_dir")
    check_config(cfg)
    torch.set_num_threads(int(cfg.threads))
    device = str(cfg.device)
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("error: device=cuda but no CUDA device is visible to torch (use device=cpu)")
        from solvers.metamizer.fast import tf32_off

        tf32_off()  # float32 network as in the paper: no TF32 anywhere
        torch.backends.cudnn.benchmark = bool(cfg.cudnn_benchmark)  # recorded in config.yaml
    with _sole_trainer(Path(str(cfg.out_dir))):
        return Trainer(cfg).run(resume=bool(resume))


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train/default")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
