"""Metamizer: model shapes, scale invariance, checkpoints, training smoke test,
and the shipped checkpoint's correctness through the harness."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from problems import make_problem
from solvers.metamizer import checkpoint
from solvers.metamizer.model import C0, Metamizer
from solvers.metamizer.solver import DEFAULT_CHECKPOINT, resolve_checkpoint
from solvers.metamizer.solver import Metamizer as MetamizerSolver


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("norm", ["batch", "group"])
@pytest.mark.parametrize("hw", [(50, 50), (97, 97), (50, 97), (8, 8), (17, 33)])
def test_shapes_odd_sizes(hw, norm):
    model = Metamizer(hidden=4, norm=norm).eval()
    grad = torch.randn(2, *hw, dtype=torch.float64)
    state = model.initial_state(grad)
    assert torch.all(state.scale == C0)
    with torch.no_grad():
        d, new = model.step(grad, state)
        d2, _ = model.step(grad, new)
    assert d.shape == (2, *hw) and d.dtype == torch.float64 and torch.isfinite(d2).all()
    assert new.scale.shape == (2,)
    # the multiplier lies in (e^-3, e^1)
    ratio = new.scale / C0
    assert torch.all(ratio > np.exp(-3)) and torch.all(ratio < np.e)
    assert torch.all(d.abs() <= new.scale[:, None, None] + 1e-15)


def test_authors_key_layout():
    keys = Metamizer(hidden=3).state_dict().keys()
    for k in ("nn.inc.double_conv.0.weight", "nn.down1.maxpool_conv.1.double_conv.1.running_mean",
              "nn.down4.maxpool_conv.1.double_conv.3.weight", "nn.up1.conv.double_conv.0.weight",
              "nn.up4.conv.double_conv.4.bias", "nn.outc.conv.weight", "nn.out_scalar.weight"):
        assert k in keys
    assert Metamizer(hidden=3).state_dict()["nn.out_scalar.weight"].shape == (1, 24)


@pytest.mark.parametrize("c", [2.0**-30, 1e-7, 3.7e5])
def test_scale_invariance(c):
    """Scaling the loss (hence every gradient) by c > 0 leaves the steps unchanged."""
    model = Metamizer(hidden=4).eval()
    gen = torch.Generator().manual_seed(1)
    grads = [torch.randn(1, 40, 40, dtype=torch.float64, generator=gen) for _ in range(4)]
    s1 = model.initial_state(grads[0])
    s2 = model.initial_state(grads[0])
    with torch.no_grad():
        for g in grads:
            d1, s1 = model.step(g, s1)
            d2, s2 = model.step(c * g, s2)
            torch.testing.assert_close(d2, d1, rtol=1e-5, atol=1e-7 * float(d1.abs().max()))


def test_checkpoint_round_trip(tmp_path):
    model = Metamizer(hidden=4, norm="batch")
    with torch.no_grad():  # non-trivial BatchNorm running statistics
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_()
    model.eval()
    path = checkpoint.save(tmp_path / "m.safetensors", model, {"step": 7, "note": "x"})
    loaded, meta = checkpoint.load(path)
    assert meta["hidden"] == "4" and meta["norm"] == "batch" and meta["step"] == "7"
    assert not loaded.training
    g = torch.randn(1, 30, 30, dtype=torch.float64)
    with torch.no_grad():
        d1, _ = model.step(g, model.initial_state(g))
        d2, _ = loaded.step(g, loaded.initial_state(g))
    torch.testing.assert_close(d1, d2, rtol=0, atol=0)
    # the authors' format: torch.save({'model0': state_dict, 'optimizer0': ...})
    torch.save({"model0": model.state_dict(), "optimizer0": {}}, tmp_path / "authors.state")
    auth, _ = checkpoint.load(tmp_path / "authors.state")
    assert auth.hidden == 4
    with pytest.raises(checkpoint.CheckpointError, match="hidden=4"):
        checkpoint.load(path, hidden=20)
    sd = model.state_dict()
    sd["nn.outc.conv.weight"] = torch.zeros(1, 5, 1, 1)
    torch.save({"model0": sd}, tmp_path / "bad.state")
    with pytest.raises(checkpoint.CheckpointError, match="shape mismatch"):
        checkpoint.load(tmp_path / "bad.state")
    (tmp_path / "corrupt.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="corrupt|not a readable"):
        checkpoint.load(tmp_path / "corrupt.safetensors")


def test_missing_checkpoint_is_unavailable(tmp_path):
    s = MetamizerSolver("metamizer", checkpoint=str(tmp_path / "nope.safetensors"))
    reason = s.available()
    assert "not found" in reason and "python -m solvers.metamizer.train" in reason
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x00" * 20)
    assert "corrupt" in MetamizerSolver("m", checkpoint=str(tmp_path / "corrupt.safetensors")).available() or \
        "readable" in MetamizerSolver("m", checkpoint=str(tmp_path / "corrupt.safetensors")).available()


def test_training_smoke_lowers_loss():
    """A few dozen deterministic pool steps on a tiny grid make the optimiser better
    on held-out problems (mean log10 MSR after 20 iterations, eval mode)."""

    from solvers.metamizer.pool import Pool
    from solvers.metamizer.train import train_step, validate

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bitwise-reproducible kernels
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Metamizer(hidden=4, norm="batch")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    pool = Pool(16, 24, rng)
    sets = [([make_problem("laplace_obstacles", n=24, seed=s) for s in (1000, 1001)], [20])]
    before = validate(model, sets, -31.0, 5.0)["score"]
    model.train()
    for _ in range(60):
        train_step(model, opt, pool, 8, 2e4)
        pool.round_robin(8 / 60)
    after = validate(model, sets, -31.0, 5.0)["score"]
    torch.set_num_threads(threads)
    assert after < before - 0.25, (before, after)


def test_training_cli_smoke(tmp_path):
    from hydra import compose, initialize_config_dir

    from solvers.metamizer.solver import REPO_ROOT
    from solvers.metamizer.train import run

    with initialize_config_dir(version_base="1.3", config_dir=str(REPO_ROOT / "conf")):
        cfg = compose("train/default", overrides=[
            "steps=12", "grid=20", "pool_size=6", "batch=3", "model.hidden=2", "progress=false",
            f"out_dir={tmp_path}", f"ship={tmp_path / 'ship.safetensors'}", "log_every=4",
            "validation.sets=[{n: 20, seeds: [1000], iters: [5]}]"])
    res = run(cfg)
    assert res["steps"] == 12
    for f in ("loss.csv", "validation.csv", "training.png", "best.safetensors", "ship.safetensors"):
        assert (tmp_path / f).is_file(), f
    model, meta = checkpoint.load(tmp_path / "ship.safetensors")
    assert model.hidden == 2 and "validation" in meta
    res2 = run(cfg)  # resume: already at the last step
    assert res2["steps"] == 12


def _run_solver():
    runner = pytest.importorskip("harness.runner")
    return runner.run_solver, runner.Budget


def test_shipped_checkpoint_solves_bilinear_64():
    """Correctness of the shipped artefact: MSR <= 1e-10 within 30 iterations."""
    run_solver, Budget = _run_solver()
    assert resolve_checkpoint(DEFAULT_CHECKPOINT).is_file(), "shipped checkpoint missing"
    problem = make_problem("laplace_bilinear", n=64)
    solver = MetamizerSolver("metamizer")
    res = run_solver(problem, solver, Budget(max_iters=30, max_seconds=60.0))
    assert res.status in ("budget", "stalled"), res.message
    tr = res.trace
    assert tr.iteration.max() == 30
    assert tr.msr.min() <= 1e-10, tr[["iteration", "msr"]].to_string()
    assert int(tr.matvecs.iloc[-1]) == 30


def test_solver_monitor_contract():
    """monitor(k, u) after each iteration with a full-grid float64 tensor; the
    monitor's exception propagates."""

    class Stop(Exception):
        pass

    class Fake:
        max_iters = 5

        def __init__(self):
            self.seen = []

        def __call__(self, k, x):
            self.seen.append((k, tuple(x.shape), x.dtype))
            if k == 3:
                raise Stop

    problem = make_problem("laplace_bilinear", n=20)
    s = MetamizerSolver("metamizer")
    if s.available():
        pytest.skip(s.available())
    s.setup(problem)
    mon = Fake()
    with pytest.raises(Stop):
        s.solve(problem, mon)
    assert mon.seen == [(k, (20, 20), torch.float64) for k in (1, 2, 3)]
    assert s.matvecs == 3


@pytest.mark.parametrize("config", ["metamizer", "metamizer_faithful"])
def test_solver_configs_instantiate(config):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from solvers.metamizer.solver import REPO_ROOT

    cfg = OmegaConf.load(REPO_ROOT / "conf" / "solver" / f"{config}.yaml")
    solver = instantiate(cfg)
    assert solver.name == config and solver.family == "neural"
    assert solver.available() is None
    assert solver.model.norm == cfg.variant and solver.model.hidden == cfg.hidden


def test_pool_multi_frequency_boundaries():
    from solvers.metamizer.pool import Pool, batched_gradient

    pool = Pool(6, 32, np.random.default_rng(3), p_freq=1.0, p_source=0.5)
    assert pool.mask[:, :2].all() and pool.mask[:, :, -2:].all()
    assert torch.all(pool.u[pool.mask] == pool.g[pool.mask]) and torch.all(pool.u[~pool.mask] == 0)
    grad = batched_gradient(pool.u, pool.f, pool.mask, pool.n_interior)
    assert torch.all(grad[pool.mask] == 0) and torch.isfinite(grad).all()
