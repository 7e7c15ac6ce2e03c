"""Convergence-curve regression check: ``python -m harness.check [--update]``.

Runs the ``ci`` sweep (``conf/sweep/ci.yaml``) in-process through Hydra's
compose API and ``harness.job.run_job``, then compares it with the committed
baseline ``tests/baselines/ci/trace.parquet``:

- log10 MSR at every checkpoint iteration both traces have, within
  ``check.decades`` (per-solver overrides in ``check.per_solver``);
- iterations to reach MSR ``check.iters_target`` (1e-10), interpolated in log10
  MSR between checkpoints, within ``check.iters_rel`` (10 %); reached in the
  baseline but not now is a regression;
- every (problem, n, solver) of the baseline is present now ("missing solver",
  "missing job");
- no new failure status (error, diverged, timeout, unavailable where the
  baseline was ok, budget or target);
- the last iteration of a trace (a solver that now stops early or runs longer).

The noise rule: MSR is clipped at ``check.floor`` (1e-32) before log10 and is
compared as ``log10(max(msr, noise_floor))`` with ``noise_floor`` 1e-26. The
float64 floor of the MSR on these problems is 1e-33..1e-29 and where a solver
lands in that band depends on the last bits of its arithmetic, so two values
that are both below the noise floor never count as a deviation, and a value
below it is measured from the noise floor (1e-30 against 1e-24 is a 2-decade
deviation, not 6).

Determinism: every job runs in this process with one thread, with ``random``,
``numpy`` and ``torch`` seeded from ``cfg.seed`` before the job and
``torch.use_deterministic_algorithms(True)``. The seeding matters for
``pyamg_sa``: PyAMG estimates the spectral radius for its prolongation smoother
from the global ``np.random``, so without it the hierarchy, and the curve, depend
on whatever ran before (the differences stay below the noise floor here, but
they are not bit-identical). With the seeds every solver of the sweep, metamizer
included, is bit-for-bit reproducible run to run and process to process on one
machine (``--twice`` checks that in-process); two threads instead of one also
gave identical traces. Across machines the SIMD kernels of OpenBLAS and ATen
round differently; simulate another machine with e.g.
``OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
python -m harness.check``. The measured spread and the per-solver tolerance it
justifies (lbfgsb only) are documented in ``conf/sweep/ci.yaml``.

Usage::

    python -m harness.check                  # run, compare, table, reports/check/overlay.png; exit 1 on a regression
    python -m harness.check --update         # re-bless tests/baselines/ci/ (records commit, date, versions)
    python -m harness.check --skip metamizer # leave a solver out (e.g. bless without an uncommitted checkpoint)
    python -m harness.check --current DIR    # compare saved traces (a results folder or parquet) instead of running
    python -m harness.check --twice          # determinism self-check: run twice, list jobs not bit-identical
    python -m harness.check --timing         # also compare times to target relative to cg (warning only)
    python -m harness.check --timing-strict  # the same, and a timing move beyond the factor fails (exit 1)

Timing check (``--timing``): for every job, the setup + solve time to MSR ``check.iters_target`` (the
report's time-to-target rule) is divided by cg's on the same problem and size in the same run; that ratio
is compared with the baseline's, and a move by more than ``--timing-factor`` (default 2) either way is
flagged. Dividing by cg cancels most of the machine's speed, not its load: timings on a shared or busy
machine are noisy, so the flags are warnings unless ``--timing-strict`` is given; the iteration check above
stays the gate.

Exit status: 0 when every compared job matches, 1 on a regression, 2 when nothing
could be compared: a bad option, a baseline that is missing, unreadable, empty or
foreign (not a ``harness.check`` baseline, or another sweep's), current results
that are missing, unreadable or empty, or no job of the run that is a job of the
baseline (same problem, size and solver, and the same experiment: a job whose
identity, ``harness.identity``, differs in anything but the solver's parameters,
e.g. its budget or seed, is listed as ``experiment`` and not compared). All of
these are one line, given before the sweep runs or anything is written.

Modules: ``config`` (paths, tolerances), ``sweep`` (running the sweep), ``compare``,
``baseline`` (reading and writing it), ``render`` (table, overlay figure), ``cli``.
"""

from harness.check.baseline import baseline_error, identities, load_baseline, write_baseline
from harness.check.compare import (
    Deviation,
    _curve,
    bitwise_differences,
    compare,
    compare_timing,
    compared_jobs,
    config_deviations,
    experiment_difference,
    iterations_to,
    regressions,
    time_to_target,
    timing_ratios,
)
from harness.check.config import BASELINE_FILE, BASELINE_JSON, KEY, Tolerances, load_ci_config
from harness.check.render import format_deviations, plot_overlay, print_deviations
from harness.check.sweep import Job, ci_jobs, expand, run_ci_sweep


def main(argv=None) -> int:
    """``python -m harness.check`` (``harness.check.cli.main``)."""
    from harness.check.cli import main as cli_main

    return cli_main(argv)


__all__ = ["BASELINE_FILE", "BASELINE_JSON", "KEY", "Deviation", "Job", "Tolerances", "_curve", "baseline_error",
           "bitwise_differences", "ci_jobs", "compare", "compare_timing", "compared_jobs", "config_deviations",
           "expand", "experiment_difference", "identities",
           "format_deviations", "iterations_to", "load_baseline", "load_ci_config", "main", "plot_overlay",
           "print_deviations", "regressions", "run_ci_sweep", "time_to_target", "timing_ratios",
           "write_baseline"]
