"""Metamizer training: the command line's input checks, the run folder that is never
overwritten, precise BatchNorm statistics, the paper recipe's schedule and reset units."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from solvers.metamizer.bn_stats import batchnorm_layers, precise_batchnorm
from solvers.metamizer.model import MetamizerNet
from solvers.metamizer.pool import Pool
from solvers.metamizer.solver import REPO_ROOT
from solvers.metamizer.train_step import lr_at, train_step

TINY = ("steps=6", "grid=20", "pool_size=6", "batch=3", "model.hidden=2", "progress=false", "log_every=2",
        "validations=2", "validation.batchnorm.batches=4", "validation.sets=[{n: 20, seeds: [1000], iters: [3]}]")


def _cfg(*overrides, name="train/default"):
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO_ROOT / "conf")):
        return compose(name, overrides=list(overrides))


def _train_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "solvers.metamizer.train", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("bad", ["steps=-5", "model.variant=foo"])
def test_bad_training_values_are_refused_in_one_line(tmp_path, bad):
    out = tmp_path / "run"
    res = _train_cli(bad, f"out_dir={out}", cwd=tmp_path)
    key = bad.split("=")[0]
    assert res.returncode != 0
    assert "Traceback" not in res.stderr and res.stderr.strip().count("\n") == 0, res.stderr
    assert res.stderr.startswith(f"error: {key}=")
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing written, not even a log


@pytest.mark.parametrize("bad", ["steps=abc", "steps=0", "batch=0", "lr=-1", "lr=.inf", "grid=8", "grid=[64,x]",
                                 "grid_probs=[1,2]", "validation.score=best", "device=gpu", "explode_units=loss",
                                 "threads=0", "validation.batchnorm.batches=-1", "validation.batchnorm.select=best",
                                 "validation.sets=[]", "max_wall_s=-3", "pool_size=2", "lr_halve_at_frac=[2]",
                                 "validation.sets=[{n: 20, seeds: [1], iters: [3], kind: boxes}]"])
def test_check_config_names_the_bad_key(bad):
    from solvers.metamizer.train import ConfigError, check_config

    key = bad.split("=")[0] if "kind:" not in bad else "validation.sets[0].kind"
    with pytest.raises(ConfigError) as err:
        check_config(_cfg(bad))
    assert str(err.value.code).startswith(f"error: {key}") and "\n" not in str(err.value.code)


def test_the_shipped_recipes_pass_the_checks():
    from solvers.metamizer.train import check_config

    for name in ("train/default", "train/paper", "train/improved"):
        check_config(_cfg(name=name))


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_run_into_a_used_out_dir_is_refused_and_the_first_is_untouched(tmp_path):
    from solvers.metamizer.train import run

    out = tmp_path / "run"
    run(_cfg(*TINY, f"out_dir={out}"))
    before = _digest(out)
    assert "best.safetensors" in before and "state/trainer.pt" in before
    with pytest.raises(SystemExit, match="already holds a training run: continue it with resume="):
        run(_cfg(*TINY, f"out_dir={out}", "seed=3"))
    assert _digest(out) == before


def test_a_resume_while_another_trainer_holds_the_folder_is_refused_and_nothing_changes(tmp_path):
    """Seen in practice: a resume started while the first trainer was still saving cut the
    first's loss.csv back to the older state. The lock the running trainer holds stops it."""
    import fcntl

    from solvers.metamizer.train import run

    out = tmp_path / "run"
    run(_cfg(*TINY, f"out_dir={out}", "stop_after=4"))
    before = _digest(out)
    with (out / ".lock").open("a+") as held:  # what a live trainer holds (pid written as it does)
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.truncate(0)
        held.write("pid 4242\n")
        held.flush()
        with pytest.raises(SystemExit, match=r"is being trained by pid 4242: wait for it to stop"):
            run(_cfg(f"resume={out}"))
        assert {k: v for k, v in _digest(out).items() if k != ".lock"} == \
            {k: v for k, v in before.items() if k != ".lock"}
    assert run(_cfg(f"resume={out}"))["steps"] == 6  # released: the resume goes on


def test_a_resume_that_does_not_repeat_val_every_steps_keeps_it_in_the_saved_config(tmp_path):
    from omegaconf import OmegaConf

    from solvers.metamizer.train import run

    out = tmp_path / "run"
    run(_cfg(*TINY, f"out_dir={out}", "val_every_steps=2", "stop_after=2"))
    run(_cfg(f"resume={out}"))
    assert OmegaConf.load(out / "config.yaml").val_every_steps == 2


def test_an_unused_folder_is_fine(tmp_path):
    from solvers.metamizer.train import run

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    res = run(_cfg(*TINY, f"out_dir={tmp_path / 'run'}"))
    assert res["steps"] == 6 and (tmp_path / "run" / "notes.txt").read_text() == "mine"


def _bn_model():
    torch.manual_seed(0)
    return MetamizerNet.from_variant("paper", 2)


def test_precise_batchnorm_is_the_plain_average_of_the_batch_statistics():
    """The running mean of the first BatchNorm layer equals the mean over the estimate's
    batches of each batch's own channel means (cumulative average, not momentum)."""
    model = _bn_model()
    pool = Pool(6, 24, np.random.default_rng(0), kind="paper", replace=True)
    seen = []
    first = batchnorm_layers(model)[0]
    # deepcopy keeps a module's hooks: this one sees every batch the estimate runs on its copy
    first.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach().mean(dim=(0, 2, 3)).double()))
    est = precise_batchnorm(model, [pool], seed=1, batches=7, batch=3, mean_iters=6)
    assert len(seen) == 7
    got = batchnorm_layers(est)[0]
    assert torch.allclose(got.running_mean.double(), torch.stack(seen).mean(0), rtol=1e-5, atol=1e-7)
    assert not torch.allclose(got.running_mean.double(), seen[-1], rtol=1e-3)  # not the last batch alone
    assert int(got.num_batches_tracked) == 7 and not est.training


def test_precise_batchnorm_touches_neither_the_model_nor_the_pool_and_repeats_for_a_seed():
    model = _bn_model()
    pool = Pool(6, 24, np.random.default_rng(0), kind="paper", replace=True)
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    u = pool.u.clone()
    rng_state = pool.rng.bit_generator.state
    a = precise_batchnorm(model, [pool], seed=5, batches=6, batch=3, mean_iters=6)
    b = precise_batchnorm(model, [pool], seed=5, batches=6, batch=3, mean_iters=6)
    c = precise_batchnorm(model, [pool], seed=6, batches=6, batch=3, mean_iters=6)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in buffers.items())
    assert torch.equal(pool.u, u) and pool.rng.bit_generator.state == rng_state
    ka = "nn.inc.double_conv.1.running_var"
    assert torch.equal(a.state_dict()[ka], b.state_dict()[ka])
    assert not torch.equal(a.state_dict()[ka], c.state_dict()[ka])
    assert not torch.equal(a.state_dict()[ka], model.state_dict()[ka])


def test_paper_recipe_trains_at_a_constant_rate_until_step_125000():
    cfg = _cfg(name="train/paper")
    assert list(cfg.lr_halve_at) == [125000, 250000, 375000] and not cfg.lr_halve_at_frac
    ms = list(cfg.lr_halve_at)
    assert lr_at(0, 1e-3, ms) == lr_at(124_999, 1e-3, ms) == 1e-3
    assert lr_at(125_000, 1e-3, ms) == 5e-4 and lr_at(400_000, 1e-3, ms) == 1.25e-4
    assert cfg.explode_units == "authors" and cfg.explode == 2.0e4


def test_explosion_reset_counts_in_the_authors_loss_units():
    """An entry whose MSR is above the threshold, but whose authors' loss (sum r^2 over
    the batch's interior nodes, ~MSR / batch) is below it, is reset only under msr units."""
    resets = {}
    for units in ("msr", "authors"):
        torch.manual_seed(0)
        model = MetamizerNet.from_variant("paper", 2)
        opt = torch.optim.AdamW(model.parameters(), lr=0.0)
        pool = Pool(4, 24, np.random.default_rng(1), kind="paper")
        pool.u += 40.0 * torch.where(pool.mask, 0.0, 1.0)  # a bad iterate: MSR ~ 1e2 after the step
        from solvers.metamizer.pool import batched_msr

        msr = batched_msr(pool.u, pool.f, pool.mask, pool.n_interior)
        authors = msr * pool.n_interior / pool.n_interior.sum()
        assert float(authors.max()) < 0.5 * float(msr.min())
        threshold = float((authors.max() * msr.min()).sqrt())  # above every authors' loss, below every MSR
        _, resets[units] = train_step(model, opt, pool, 4, threshold, explode_units=units)
    assert resets == {"msr": 4, "authors": 0}


def test_gpu_numerics_options_are_checked_and_default_to_full_float32():
    from solvers.metamizer.solver import Metamizer

    s = Metamizer("metamizer_paper", checkpoint="solvers/metamizer/checkpoints/metamizer_paper_h20.safetensors",
                  hidden=20, variant="paper")
    assert s.params["tf32"] is False and s.params["cudnn_benchmark"] is False and s.available() is None
    bad = Metamizer("m", checkpoint="solvers/metamizer/checkpoints/metamizer_paper_h20.safetensors", tf32="yes")
    assert bad.available() == "solver.tf32='yes' must be true or false"
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO_ROOT / "conf")):
        cfg = compose("config", overrides=["solver=metamizer_paper_cuda_tf32"])
    assert cfg.solver.tf32 is True and cfg.solver.cudnn_benchmark is True and cfg.solver.device == "cuda"


def test_a_slim_state_without_the_pool_continues_warm(tmp_path):
    """resume= from a state whose pool files were removed (as a committed slim state):
    the run continues from the saved weights and step, with a fresh pool, and says so."""
    from safetensors.torch import load_file

    from solvers.metamizer.train import run

    out = tmp_path / "run"
    run(_cfg(*TINY, f"out_dir={out}", "stop_after=3"))
    saved = load_file(str(out / "state/model.safetensors"))
    for f in (out / "state").glob("pool*.pt"):
        f.unlink()
    res = run(_cfg(f"resume={out}", "stop_after=1"))
    assert res["steps"] == 4
    assert "the pool is drawn afresh" in (out / "train.log").read_text()
    after = load_file(str(out / "state/model.safetensors"))
    w = "nn.outc.conv.weight"
    assert not torch.equal(after[w], saved[w])  # trained on from the saved weights ...
    assert torch.allclose(after[w], saved[w], atol=1e-2)  # ... by one small step


def test_a_batchnorm_model_is_scored_with_both_statistics_and_selected_on_the_configured_one(tmp_path):
    """Each validation scores training's own running statistics and precise ones (validation_batchnorm.csv);
    ``validation.batchnorm.select`` decides which the selection, the snapshot and the export use. A model
    without BatchNorm has one score and no such file."""
    import pandas as pd

    from solvers.metamizer import checkpoint
    from solvers.metamizer.train import run
    from solvers.metamizer.trainer import BATCHNORM_CSV

    for rule in ("precise", "training"):
        out = tmp_path / rule
        run(_cfg(*TINY, "model.variant=paper", f"validation.batchnorm.select={rule}", f"out_dir={out}"))
        val, bn = pd.read_csv(out / "validation.csv"), pd.read_csv(out / BATCHNORM_CSV)
        assert list(bn.columns) == ["step", "score_precise", "score_training_buffers", "selected"]
        assert bn["step"].tolist() == val["step"].tolist() and set(bn["selected"]) == {rule}
        column = "score_precise" if rule == "precise" else "score_training_buffers"
        assert bn[column].tolist() == val["score"].tolist()
        last = out / "checkpoints" / f"step_{int(val['step'].iloc[-1]):07d}.safetensors"
        meta = checkpoint.read_metadata(last)
        assert ("precise" in meta["batchnorm_statistics"]) == (rule == "precise")
        if rule == "training":  # the snapshot carries the training model's own buffers
            snap, _ = checkpoint.load(last)
            trained, _ = checkpoint.load(out / "state" / "model.safetensors")
            assert torch.equal(batchnorm_layers(snap)[0].running_mean, batchnorm_layers(trained)[0].running_mean)
    group = tmp_path / "gn"
    run(_cfg(*TINY, "model.variant=group", f"out_dir={group}"))
    assert (group / "validation.csv").exists() and not (group / BATCHNORM_CSV).exists()


def test_changing_the_batchnorm_selection_restarts_the_selection(tmp_path):
    from omegaconf import OmegaConf

    from solvers.metamizer.train import run

    out = tmp_path / "run"
    run(_cfg(*TINY, "model.variant=paper", "steps=8", f"out_dir={out}", "stop_after=4"))
    saved = OmegaConf.load(out / "config.yaml")
    saved.validation.batchnorm.select = "training"  # the run's rule edited, as for a run started before it
    OmegaConf.save(saved, out / "config.yaml")
    run(_cfg(f"resume={out}"))
    assert (out / "validation_rule_before_step_4.csv").exists()
    assert "selection restarts under the new rule" in (out / "train.log").read_text()


def test_a_resumed_run_may_validate_more_often(tmp_path):
    """val_every_steps given with resume= replaces the saved plan's interval from the resumed step on."""
    import pandas as pd

    from solvers.metamizer.train import run

    out = tmp_path / "run"
    run(_cfg(*TINY, "steps=12", "validations=2", f"out_dir={out}", "stop_after=2"))  # plan: every 6 steps
    run(_cfg(f"resume={out}", "val_every_steps=4"))
    # 2: the stopped model competes too; then every 4 (not 6), and the final step
    assert pd.read_csv(out / "validation.csv")["step"].tolist() == [2, 4, 8, 12]
    assert "validation every 4 steps from step 2" in (out / "train.log").read_text()
