"""harness.check --timing: time to target relative to cg, compared with the baseline's ratio.

Uses the committed baseline only (no sweep is run): a copy with one solver planted 3x slower must be
flagged, an untouched copy must not, and the flag is a warning (exit 0) unless --timing-strict.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness import check as hc
from harness.results import COLUMNS, write_trace

SLOW = ("laplace_bilinear", 64, "pyamg_sa")


@pytest.fixture(scope="module")
def baseline() -> pd.DataFrame:
    return hc.load_baseline()[0]


def _slowed(base: pd.DataFrame, factor: float, key=SLOW) -> pd.DataFrame:
    """``key``'s clock (setup and every checkpoint time) runs ``factor`` times slower; nothing else changes."""
    out = base.copy()
    m = (out["problem"] == key[0]) & (out["n"] == key[1]) & (out["solver"] == key[2])
    out.loc[m, ["time_s", "setup_s"]] *= factor
    return out


def test_time_to_target_uses_the_report_rule():
    g = pd.DataFrame({"iteration": [0, 1, 2, 3], "time_s": [0.0, 1.0, 2.0, 3.0], "setup_s": 0.5,
                      "msr": [1.0, 1e-4, 1e-8, 1e-12]})
    assert hc.time_to_target(g, 1e-10) == pytest.approx(3.0)        # 2.5 s solve (interpolated) + 0.5 s setup
    assert hc.time_to_target(g, 1e-20) == math.inf


def test_ratios_are_relative_to_cg_in_the_same_run(baseline):
    r = hc.timing_ratios(baseline, 1e-10).set_index(["problem", "n", "solver"])
    assert (r.xs("cg", level="solver")["ratio"] == 1.0).all()
    reached = r["ratio"].notna()
    assert reached.loc[SLOW] and reached.sum() >= 10               # most ci jobs reach 1e-10


def test_planted_3x_slowdown_is_flagged(baseline):
    devs = hc.compare_timing(baseline, _slowed(baseline, 3.0), factor=2.0)
    assert [(d.kind, d.problem, d.n, d.solver) for d in devs] == [("timing", *SLOW)]
    assert devs[0].delta == pytest.approx(3.0) and not devs[0].regression
    assert "slower by 3.0x" in devs[0].note
    # within the factor, or the same run: nothing; the whole machine 3x slower (cg too): nothing
    assert hc.compare_timing(baseline, _slowed(baseline, 1.5), factor=2.0) == []
    assert hc.compare_timing(baseline, baseline) == []
    everything = baseline.assign(time_s=baseline["time_s"] * 3, setup_s=baseline["setup_s"] * 3)
    assert hc.compare_timing(baseline, everything) == []
    # a 3x speed-up is a move too
    fast = hc.compare_timing(baseline, _slowed(baseline, 1 / 3), factor=2.0)
    assert len(fast) == 1 and "faster by 3.0x" in fast[0].note


def test_cli_warns_and_strict_fails(baseline, tmp_path, capsys):
    cur = write_trace(_slowed(baseline, 3.0)[list(COLUMNS)], tmp_path / "current" / "trace.parquet", {})
    out = tmp_path / "report"
    args = ["--current", str(cur), "--out", str(out), "--no-plot"]
    assert hc.main(args) == 0                                       # the iteration check passes; no timing asked
    assert hc.main([*args, "--timing"]) == 0                        # flagged, warning only
    printed = capsys.readouterr().out
    assert "1 solver/size(s) moved" in printed and "pyamg_sa" in printed
    table = pd.read_csv(out / "deviations.csv")
    hit = table[table["kind"] == "timing"]
    assert list(hit["solver"]) == ["pyamg_sa"] and not hit["regression"].any()
    assert hc.main([*args, "--timing-strict"]) == 1
    assert hc.main([*args, "--timing", "--timing-factor", "4"]) == 0
    assert hc.main([*args, "--timing-factor", "1"]) == 2
