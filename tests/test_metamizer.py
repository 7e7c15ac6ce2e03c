"""Metamizer: model shapes, scale invariance, checkpoints, training smoke test,
and the shipped checkpoint's correctness through the harness."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from problems import make_problem
from solvers.metamizer import checkpoint
from solvers.metamizer.model import C0, MetamizerNet
from solvers.metamizer.solver import DEFAULT_CHECKPOINT, resolve_checkpoint
from solvers.metamizer.solver import Metamizer as MetamizerSolver


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("norm", ["batch", "group"])
@pytest.mark.parametrize("hw", [(50, 50), (97, 97), (50, 97), (8, 8), (17, 33)])
def test_shapes_odd_sizes(hw, norm):
    model = MetamizerNet(hidden=4, norm=norm).eval()
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
    keys = MetamizerNet(hidden=3).state_dict().keys()
    for k in ("nn.inc.double_conv.0.weight", "nn.down1.maxpool_conv.1.double_conv.1.running_mean",
              "nn.down4.maxpool_conv.1.double_conv.3.weight", "nn.up1.conv.double_conv.0.weight",
              "nn.up4.conv.double_conv.4.bias", "nn.outc.conv.weight", "nn.out_scalar.weight"):
        assert k in keys
    assert MetamizerNet(hidden=3).state_dict()["nn.out_scalar.weight"].shape == (1, 24)


@pytest.mark.parametrize("c", [2.0**-30, 1e-7, 3.7e5])
def test_scale_invariance(c):
    """Scaling the loss (hence every gradient) by c > 0 leaves the steps unchanged."""
    model = MetamizerNet(hidden=4).eval()
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
    model = MetamizerNet(hidden=4, norm="batch")
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
    from solvers.metamizer.train_step import train_step
    from solvers.metamizer.validation import validate

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bitwise-reproducible kernels
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = MetamizerNet(hidden=4, norm="batch")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    pool = Pool(16, 24, rng)
    sets = [("n24", [make_problem("laplace_obstacles", n=24, seed=s) for s in (1000, 1001)], [20])]
    before = validate(model, sets, -31.0, 5.0)["score"]
    model.train()
    for _ in range(60):
        train_step(model, opt, pool, 8, 2e4)
        pool.round_robin(8, 60)
    after = validate(model, sets, -31.0, 5.0)["score"]
    torch.set_num_threads(threads)
    assert after < before - 0.25, (before, after)


def _train_cfg(tmp_path, *extra, name="train/default"):
    from hydra import compose, initialize_config_dir

    from solvers.metamizer.solver import REPO_ROOT

    with initialize_config_dir(version_base="1.3", config_dir=str(REPO_ROOT / "conf")):
        return compose(name, overrides=[
            "steps=12", "grid=20", "pool_size=6", "batch=3", "model.hidden=2", "progress=false",
            f"out_dir={tmp_path}", "log_every=4", "validations=3",
            "validation.sets=[{n: 20, seeds: [1000], iters: [5]}]", *extra])


def test_training_cli_smoke(tmp_path):
    from solvers.metamizer.train import run

    cfg = _train_cfg(tmp_path, f"ship={tmp_path / 'ship.safetensors'}")
    res = run(cfg)
    assert res["steps"] == 12 and res["stopped"] is None
    for f in ("loss.csv", "validation.csv", "training.png", "best.safetensors", "ship.safetensors",
              "train.log", "config.yaml", "state/trainer.pt", "state/optimizer.pt", "state/pool0_u.pt"):
        assert (tmp_path / f).is_file(), f
    model, meta = checkpoint.load(tmp_path / "ship.safetensors")
    assert model.hidden == 2 and "validation" in meta
    for key in ("training_steps", "training_wall_s", "training_hardware", "recipe", "seed", "commit"):
        assert key in meta, key
    assert meta["recipe"] == "default" and meta["training_hardware"].startswith("CPU ")
    assert int(meta["training_steps"]) == res["best_step"]


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_resume_is_bit_identical(tmp_path):
    """A run stopped after 5 steps and resumed with resume=DIR ends with exactly the
    weights (and optimiser state) of the uninterrupted run: paper recipe, tiny sizes."""
    import json

    from solvers.metamizer.pool import FIELDS
    from solvers.metamizer.train import run

    threads = torch.get_num_threads()
    paper = ("grid=24", "pool_size=8", "batch=4", "mean_iters=6", "model.hidden=2",
             "validation.sets=[{n: 24, seeds: [1000], iters: [4]}]")
    run(_train_cfg(tmp_path / "a", *paper, name="train/paper"))
    stopped = run(_train_cfg(tmp_path / "b", *paper, "stop_after=5", name="train/paper"))
    assert stopped["steps"] == 5 and "stop_after" in stopped["stopped"]
    resumed = run(_train_cfg(tmp_path / "other", f"resume={tmp_path / 'b'}", name="train/paper"))
    torch.set_num_threads(threads)
    assert resumed["steps"] == 12
    wa, wb = _weights(tmp_path / "a/state/model.safetensors"), _weights(tmp_path / "b/state/model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    oa = torch.load(tmp_path / "a/state/optimizer.pt", weights_only=True)["state"]
    ob = torch.load(tmp_path / "b/state/optimizer.pt", weights_only=True)["state"]
    assert all(torch.equal(oa[i]["exp_avg_sq"], ob[i]["exp_avg_sq"]) for i in oa)
    for f in ("u", "grad", "step", "scale", "iters"):
        a, b = (torch.load(tmp_path / d / f"state/pool0_{f}.pt") for d in "ab")
        assert torch.equal(a, b), f
    from solvers.metamizer.pool import Pool

    pools = []
    for d in ("a", "b"):  # the problem data, redrawn from the saved per-entry RNG states
        ts = torch.load(tmp_path / d / "state/trainer.pt", weights_only=True)
        rr, acc, entry_rng = json.loads(ts["pool_counters"])[0]
        p = Pool(8, 24, np.random.default_rng(99), kind="paper")
        p.load_state_dict({**{f: torch.load(tmp_path / d / f"state/pool0_{f}.pt") for f in FIELDS},
                           "rr": rr, "acc": acc, "entry_rng": entry_rng})
        pools.append(p)
    assert torch.equal(pools[0].g, pools[1].g) and torch.equal(pools[0].mask, pools[1].mask)
    # the run's own weights moved (the comparison is not between two untrained nets)
    init = MetamizerNet.from_variant("paper", 2).state_dict()
    assert not torch.equal(wa["nn.outc.conv.weight"], init["nn.outc.conv.weight"])


def test_wall_clock_stop_plans_and_resumes(tmp_path):
    """steps=null + max_wall_s: the run plans its length after calibration, stops at the
    wall clock with its state saved and exports the best checkpoint."""
    from solvers.metamizer.train import run

    res = run(_train_cfg(tmp_path, "steps=null", "max_wall_s=3", "calibrate_steps=3"))
    assert res["planned_steps"] is not None and res["planned_steps"] >= 3
    assert (tmp_path / "best.safetensors").is_file() and (tmp_path / "state/trainer.pt").is_file()


def _authors_layout():
    from pathlib import Path

    out = {}
    for line in (Path(__file__).parent / "data" / "authors_state_dict_keys.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, shape = line.split(" ", 1)
            out[key] = tuple(int(x) for x in shape.strip("() ").split(",") if x.strip())
    return out


def test_paper_variant_has_the_authors_keys():
    layout = _authors_layout()
    assert len(layout) == 130
    sd = MetamizerNet.from_variant("paper", 20).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == layout


def test_authors_state_file_loads_through_the_solver(tmp_path):
    """A state dict with exactly the authors' keys and shapes, saved their way
    ({'model0', 'optimizer0'} via torch.save), runs through solver.checkpoint=PATH and
    computes what the saved network computes."""
    gen = torch.Generator().manual_seed(5)
    sd = {}
    for k, shape in _authors_layout().items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(1234)
        elif k.endswith("running_var"):
            sd[k] = 0.5 + torch.rand(shape, generator=gen)
        else:
            sd[k] = 0.2 * torch.randn(shape, generator=gen)
    path = tmp_path / "19.state"
    torch.save({"model0": sd, "optimizer0": {"state": {}, "param_groups": []}}, path)
    ref = MetamizerNet(20, "batch", bias=True, raw_step=True)
    ref.load_state_dict(sd)
    ref.eval()

    problem = make_problem("laplace_obstacles", n=24, seed=3)
    solver = MetamizerSolver("metamizer_paper", checkpoint=str(path), hidden=20, variant="paper", fast_path="eager")
    assert solver.available() is None and solver.model is None  # available() loads nothing
    solver.setup(problem)
    assert solver.model.variant == "paper" and not solver.model.training

    class Keep:
        max_iters = 4

        def __init__(self):
            self.u = []

        def __call__(self, k, x):
            self.u.append(x.clone())

    mon = Keep()
    solver.solve(problem, mon)
    # the same loop by hand with the reference network
    from problems.torch_ops import TorchPhysics

    phys = TorchPhysics(problem, "cpu")
    with torch.inference_mode():
        u = phys.initial_field()
        st = ref.initial_state(u[None])
        for k in range(4):
            d, st = ref.step(phys.gradient(u, "detach")[None], st, interior=phys.interior[None])
            u = torch.where(phys.mask, phys.g, u + d[0])
            assert torch.equal(u, mon.u[k]), k
    assert not torch.equal(mon.u[0], mon.u[-1])
    # the authors' d_{t-1}: the raw network step, not zero on Dirichlet nodes
    assert st.step[0][phys.mask].abs().max() > 0


def test_layout_mismatch_is_reported_key_by_key(tmp_path):
    sd = MetamizerNet.from_variant("paper", 4).state_dict()
    sd.pop("nn.inc.double_conv.0.bias")
    sd.pop("nn.outc.conv.bias")
    sd["nn.extra.weight"] = torch.zeros(2)
    sd["nn.out_scalar.weight"] = torch.zeros(1, 7)
    torch.save({"model0": sd, "optimizer0": {}}, tmp_path / "bad.state")
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load(tmp_path / "bad.state")
    msg = str(err.value)
    assert "\n" not in msg
    for part in ("2 missing key(s): nn.inc.double_conv.0.bias, nn.outc.conv.bias",
                 "1 unexpected key(s): nn.extra.weight", "nn.out_scalar.weight file (1, 7) vs model (1, 32)"):
        assert part in msg, msg
    # an authors' file asked to run as another variant: one line naming the fix
    torch.save({"model0": MetamizerNet.from_variant("paper", 4).state_dict()}, tmp_path / "ok.state")
    with pytest.raises(checkpoint.CheckpointError, match="set solver.variant=paper"):
        checkpoint.load(tmp_path / "ok.state", variant="batch")


def test_detached_training_loss_gradient():
    """The paper recipe's loss: its value is the MSR, its gradient w.r.t. u is the
    detached one (2 r (-3) / N on the unknowns, as the solver's gradient)."""
    from solvers.metamizer.pool import Pool, batched_gradient, batched_msr

    pool = Pool(3, 30, np.random.default_rng(2), kind="paper")
    u = (pool.u + 0.1 * torch.randn_like(pool.u)).requires_grad_(True)
    full = batched_msr(u, pool.f, pool.mask, pool.n_interior)
    det = batched_msr(u, pool.f, pool.mask, pool.n_interior, detach_neighbours=True)
    torch.testing.assert_close(det, full, rtol=1e-14, atol=0)
    (g,) = torch.autograd.grad(det.sum(), u)
    torch.testing.assert_close(g, batched_gradient(u.detach(), pool.f, pool.mask, pool.n_interior),
                               rtol=1e-12, atol=1e-18)


def test_paper_pool_entries():
    from solvers.metamizer.pool import Pool

    pool = Pool(20, 100, np.random.default_rng(0), kind="paper", replace=True)
    assert torch.all(pool.f == 0) and pool.mask[:, :2].all() and pool.mask[:, :, -2:].all()
    inner = pool.mask[:, 2:-2, 2:-2]
    assert inner.any(dim=(1, 2)).float().mean() > 0.5  # boxes (a side may be drawn 0)
    assert not inner[:, :8, :].any() and not inner[:, :, :8].any()  # box corners at >= 10
    assert torch.all(pool.g.abs() <= 1)
    # round-robin: with batch 10 and 60 iterations, one entry every 6 steps
    before = pool.u.clone()
    pool.u += 1.0
    for _ in range(12):
        pool.round_robin(10, 60)
    changed = (pool.u != before + 1.0).flatten(1).any(dim=1)
    assert changed.tolist() == [True, True] + [False] * 18


def test_describe_reports_training_cost(tmp_path):
    model = MetamizerNet.from_variant("group", 2)
    path = checkpoint.save(tmp_path / "m.safetensors", model, {
        "training_steps": 1234, "training_wall_s": 56.7, "training_hardware": "GPU X", "recipe": "paper"})
    s = MetamizerSolver("metamizer", checkpoint=str(path), hidden=2, variant="group")
    info = s.describe()
    assert info["checkpoint"] == "m.safetensors" and len(info["checkpoint_sha256"]) == 12
    assert info["training_steps"] == 1234 and info["training_wall_s"] == 56.7
    assert info["training_hardware"] == "GPU X" and info["training_recipe"] == "paper"
    assert info["training_authors_steps"] == 95_000  # the authors' recipe: compared with their 19.state
    other = checkpoint.save(tmp_path / "g.safetensors", model, {"training_steps": 8000, "recipe": "improved"})
    assert "training_authors_steps" not in MetamizerSolver("g", checkpoint=str(other), hidden=2,
                                                           variant="group").describe()
    import json

    json.dumps(info)  # goes into the trace metadata


@pytest.mark.parametrize("hidden,n,expect", [(4, 40, "eager"), (20, 100, "channels_last")])
def test_fast_path_matches_eager(hidden, n, expect):
    """auto: a fixed rule by network size (reruns reproduce), channels_last only where
    its output equals eager's within float32 rounding; timed picks one of the two."""
    from solvers.metamizer.fast import choose_path

    model = MetamizerNet.from_variant("paper", hidden).eval()
    x = torch.randn(1, 3, n, n)
    with torch.inference_mode():
        ref = model.nn(x)
        assert choose_path(model, x, "auto") == expect
        out = model.nn(x)
        assert choose_path(model, x, "timed") in ("eager", "channels_last")
        choose_path(model, x, "channels_last")
        cl = model.nn(x)
    for a, b in ((ref, out), (ref, cl)):
        torch.testing.assert_close(a[0], b[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a[1], b[1], rtol=1e-4, atol=1e-5)


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


@pytest.mark.parametrize("config", ["metamizer", "metamizer_groupnorm", "metamizer_batchnorm_h10", "metamizer_paper"])
def test_solver_configs_instantiate(config):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from solvers.metamizer.solver import REPO_ROOT

    with initialize_config_dir(version_base="1.3", config_dir=str(REPO_ROOT / "conf" / "solver")):
        cfg = compose(config)
    solver = instantiate(cfg)
    assert solver.name == config and solver.family == "neural"
    assert solver.available() is None and solver.model is None  # cheap: nothing loaded yet
    solver.setup(make_problem("laplace_bilinear", n=20))
    assert solver.model.variant == cfg.variant and solver.model.hidden == cfg.hidden


def test_pool_multi_frequency_boundaries():
    from solvers.metamizer.pool import Pool, batched_gradient

    pool = Pool(6, 32, np.random.default_rng(3), p_freq=1.0, p_source=0.5)
    assert pool.mask[:, :2].all() and pool.mask[:, :, -2:].all()
    assert torch.all(pool.u[pool.mask] == pool.g[pool.mask]) and torch.all(pool.u[~pool.mask] == 0)
    grad = batched_gradient(pool.u, pool.f, pool.mask, pool.n_interior)
    assert torch.all(grad[pool.mask] == 0) and torch.isfinite(grad).all()
