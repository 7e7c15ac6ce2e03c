"""Precise BatchNorm statistics: re-estimate a model's running mean and variance with
its weights frozen, so that a checkpoint's score belongs to its weights.

Why: in training mode BatchNorm normalises with each batch's own statistics and keeps
an exponential moving average (momentum 0.1) for inference, i.e. roughly the last ten
batches of 10 samples. Those buffers are a noisy draw: re-drawing them alone moved the
validation score of one set of weights by 11 decades (MODEL_CARD.md). Here they are
replaced by the cumulative average (``momentum=None``) over ``batches`` batches of the
training distribution: a copy of a training pool (or a fresh pool run to its steady state)
is stepped with the model in training mode, exactly as in training but without a
backward pass, and every batch's statistics are averaged with equal weight.

The model passed in is never modified: a copy with the new buffers is returned, and
the pool passed in is copied, so the training run's trajectory is not touched.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from solvers.metamizer.model import MetamizerNet, State
from solvers.metamizer.pool import Pool, batched_gradient
from solvers.metamizer.train_step import last_occurrence


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def pool_step(model: MetamizerNet, pool: Pool, batch: int, mean_iters: int) -> None:
    """One training-style pool step without a backward pass: the same batch draw (duplicates
    included, as the batch statistics of training saw them), proposal, write-back and
    round-robin refresh as ``train_step.train_step``; entries that stop being finite are reset."""
    idx_np = pool.sample(batch)
    idx = torch.as_tensor(idx_np, device=pool.device)
    mask, g, f, n_int = pool.mask[idx], pool.g[idx], pool.f[idx], pool.n_interior[idx]
    u = pool.u[idx]
    grad = batched_gradient(u, f, mask, n_int)
    d, new = model.step(grad, State(pool.grad[idx], pool.step[idx], pool.scale[idx]), interior=~mask)
    u_new = torch.where(mask, g, u + d)
    keep_np = last_occurrence(idx_np)
    keep = torch.as_tensor(keep_np, device=pool.device)
    w = idx[keep]
    pool.u[w], pool.grad[w] = u_new[keep], grad[keep]
    pool.step[w], pool.scale[w] = new.step[keep], new.scale[keep]
    pool.iters[w] += 1
    bad = ~torch.isfinite(u_new[keep]).all(dim=-1).all(dim=-1)
    if bool(bad.any()):
        pool.reset(sorted(set(idx_np[keep_np][bad.cpu().numpy()].tolist())))
    pool.round_robin(batch, mean_iters)


@torch.no_grad()
def precise_batchnorm(model: MetamizerNet, pools: list[Pool], seed: int, batches: int = 200, batch: int = 10,
                      mean_iters: int = 60) -> MetamizerNet:
    """A copy of ``model`` whose BatchNorm buffers are the cumulative average of the batch
    statistics over ``batches`` batches drawn from copies of ``pools`` (in turn), the
    copies advancing as in training. A model without BatchNorm is returned as a copy."""
    out = copy.deepcopy(model)
    layers = batchnorm_layers(out)
    if not layers:
        return out
    rng = np.random.default_rng(seed)
    work = []
    for p in pools:
        q = copy.deepcopy(p)
        q.rng = rng  # batches and refreshes from this estimate's own generator
        work.append(q)
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    out.train()
    for b in range(int(batches)):
        pool_step(out, work[b % len(work)], batch, mean_iters)
    for m in layers:
        m.momentum = 0.1  # back to PyTorch's default (the value the network was built with)
    return out.eval()


@torch.no_grad()
def steady_state_pool(model: MetamizerNet, make_pool, burn_in: int, batch: int = 10, mean_iters: int = 60) -> Pool:
    """A fresh pool (``make_pool()``) advanced ``burn_in`` steps by ``model`` in training
    mode with its BatchNorm buffers frozen (momentum 0): the iterate ages and states of
    a training pool, for a model that comes without one (a shipped file)."""
    pool = make_pool()
    layers = batchnorm_layers(model)
    saved = [m.momentum for m in layers]
    was_training = model.training
    for m in layers:
        m.momentum = 0.0
    model.train()
    try:
        for _ in range(int(burn_in)):
            pool_step(model, pool, batch, mean_iters)
    finally:
        for m, mom in zip(layers, saved, strict=True):
            m.momentum = mom
        model.train(was_training)
    return pool
