"""scripts/batch_composition.py lines runs up by samples seen and counts what it says it counts."""

import importlib.util
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "batch_composition.py"


def _module():
    spec = importlib.util.spec_from_file_location("batch_composition", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(folder: Path, batch: int, seed: int, steps, scores) -> Path:
    folder.mkdir()
    (folder / "config.yaml").write_text(f"batch: {batch}\npool_size: {10 * batch}\nseed: {seed}\n")
    pd.DataFrame({"step": steps, "score": scores}).to_csv(folder / "validation.csv", index=False)
    return folder


def test_runs_are_compared_per_sample_seen(tmp_path):
    bc = _module()
    small = bc.load(_run(tmp_path / "b10", 10, 0, [1000, 2000, 3000], [-12.0, 2.0, -20.0]))
    large = bc.load(_run(tmp_path / "b50", 50, 0, [200, 400, 600], [-11.0, -13.0, -15.0]))
    assert list(large["samples"]) == [10_000, 20_000, 30_000] == list(small["samples"])
    s = bc.summary([small, large], until=20_000).set_index("run")
    assert s.loc["batch 10, pool 100, seed 0", "converged"] == "1/2"   # -12 yes, +2 no; 30,000 left out
    assert s.loc["batch 10, pool 100, seed 0", "median jump"] == 14.0
    assert s.loc["batch 50, pool 500, seed 0", "converged"] == "2/2"
    assert s.loc["batch 50, pool 500, seed 0", "median score"] == -12.0


def test_a_rescored_csv_joins_its_run_and_a_step_counts_once(tmp_path):
    bc = _module()
    run = _run(tmp_path / "b10", 10, 1, [1000, 2000], [-12.0, -14.0])
    pd.DataFrame({"step": [500, 1000], "score": [-3.0, -12.0]}).to_csv(run / "rescored.csv", index=False)
    (only,) = bc.load_all([run / "rescored.csv", run])
    assert list(only["step"]) == [500, 1000, 2000] and list(only["score"]) == [-3.0, -12.0, -14.0]
