"""One training step of the Metamizer pool meta-learning (Wandel et al., ICLR 2025), and
the learning-rate schedule.

Draw a batch from the pool, take the detached gradient at the current iterates, propose
a step, apply it, score the MSR *after* the step, backpropagate through the gradient
normalisation, (optionally clip,) step AdamW; write the iterates and optimiser states
back; reset entries whose loss exploded.
"""

from __future__ import annotations

import numpy as np
import torch

from solvers.metamizer.model import State
from solvers.metamizer.pool import Pool, batched_gradient, batched_msr


def last_occurrence(idx: np.ndarray) -> np.ndarray:
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
        keep = torch.as_tensor(last_occurrence(idx_np), device=pool.device)
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
