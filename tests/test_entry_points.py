"""Property tests for the entry points besides harness.run (whose keys tests/test_robustness.py covers):
harness.report, harness.check and harness.evaluate. Any value of any option is either refused in one
line naming the option, before anything is read or written, or taken exactly as given.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.check import cli as check_cli
from harness.evaluate import input_error as evaluate_error
from harness.report.__main__ import argument_error as report_error
from harness.report.__main__ import parser as report_parser

NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["abc", "", "1e-10", "-1e-10", "0", "inf", "-inf", "nan", "1e400", "0x10", "1_000"]))
PROPERTY = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _parsed_or_refused(parse, argv, capsys, option: str):
    """(args, None) when argparse accepts ``argv``; (None, its one line) when it refuses it (exit status 2)."""
    capsys.readouterr()
    try:
        return parse(argv), None
    except SystemExit as exc:
        said = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert exc.code == 2 and len(said) == 1 and option in said[0] and "--help" in said[0], said
        return None, said[0]


@given(text=NUMBER_TEXT)
@PROPERTY
def test_report_target_is_refused_or_a_positive_finite_msr(tmp_path_factory, capsys, text):
    folder = tmp_path_factory.mktemp("r")
    args, refused = _parsed_or_refused(report_parser().parse_args, [str(folder), f"--target={text}"], capsys,
                                       "--target")
    if refused:
        return
    line = report_error(args)
    if line is not None:
        assert line.startswith(f"--target {args.target:g} is not valid") and "\n" not in line
        assert not (args.target > 0 and math.isfinite(args.target))
        return
    assert args.target > 0 and math.isfinite(args.target) and args.target == float(text)
    assert list(folder.iterdir()) == []


@given(factor=NUMBER_TEXT, rows=NUMBER_TEXT)
@PROPERTY
def test_check_options_are_refused_or_used(tmp_path_factory, capsys, factor, rows):
    out = tmp_path_factory.mktemp("c") / "out"
    argv = [f"--timing-factor={factor}", f"--max-rows={rows}", "--out", str(out), "--current", str(out)]

    args, refused = _parsed_or_refused(check_cli.parser().parse_args, argv, capsys, "--")
    if refused:
        assert "--timing-factor" in refused or "--max-rows" in refused
        return
    line = check_cli._argument_error(args)
    good = args.timing_factor > 1 and math.isfinite(args.timing_factor) and args.max_rows >= 0
    if line is not None:
        assert not good or "--current" in line, line
        assert line.startswith(("--timing-factor", "--max-rows", "--current")) and "\n" not in line
        return
    assert good
    assert not out.exists()  # nothing written by the check of its arguments


SOLVERS = st.sampled_from(["cg", "adam", "nope", "", "metamizer", "dst", "../cg"])


@given(solver=SOLVERS, sizes=st.lists(st.integers(-5, 300), min_size=1, max_size=3), iters=st.integers(-3, 500),
       threads=st.integers(-2, 5000))
@settings(max_examples=50, deadline=None, database=None)
def test_evaluate_inputs_are_refused_in_one_line_or_used(solver, sizes, iters, threads):
    from argparse import Namespace

    args = Namespace(solver=solver, sizes=sizes, iters=iters, threads=threads, checkpoint=None, device=None)
    line = evaluate_error(args)
    valid = (solver in ("cg", "adam", "metamizer", "dst") and min(sizes) >= 8 and iters >= 1
             and 1 <= threads <= 4096)
    if line is None:
        assert valid
        return
    assert not valid and "\n" not in line
    assert line.startswith(("--solver", "--sizes", "--iters", "--threads")), line


@pytest.mark.parametrize("argv, option", [
    (["--solver", "nope"], "--solver"), (["--sizes", "4"], "--sizes"), (["--iters", "0"], "--iters"),
    (["--threads", "0"], "--threads"), (["--sizes", "abc"], "--sizes"), (["--problems", "nope"], "--problems"),
])
def test_evaluate_command_line_refuses_in_one_line(argv, option, capsys):
    from harness.evaluate import main

    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    said = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(said) == 1 and said[0].startswith("harness.evaluate: error: ") and option in said[0]


@pytest.mark.parametrize("variant, hidden", [("paper", 3), ("group", 2)])
def test_evaluate_runs_a_checkpoint_file_with_its_own_layout(tmp_path, capsys, variant, hidden):
    """A file given to harness.evaluate brings its own hidden size and variant (the config's are set to null
    for it): that must pass the parameter checks, whatever the config says."""
    from harness.evaluate import main
    from solvers.metamizer import checkpoint
    from solvers.metamizer.model import MetamizerNet

    path = checkpoint.save(tmp_path / "m.safetensors", MetamizerNet.from_variant(variant, hidden))
    code = main([str(path), "--solver", "metamizer_paper", "--sizes", "16", "--iters", "3", "--problems",
                 "laplace_bilinear"])
    assert code in (0, None), capsys.readouterr().err
    assert "laplace_bilinear      n=16" in capsys.readouterr().out
