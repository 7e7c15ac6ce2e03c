"""Performance goals of the report (pytest-benchmark; not part of the test run).

    pytest benchmarks/bench_report.py -s

(a) a sweep of the default's shape (one problem, n = 32 to 512, 25 solvers: 125 jobs, as +sweep=laplace_scaling):
    its report in at most 10 s, and an index.html of at most 3 MB;
(b) 2,000 jobs (4 problems x 10 sizes x 50 solver configurations): the report in at most 2 minutes and in
    under 4 GB of memory.

Both results folders are synthetic (``synthetic_sweep.py``: the harness's own trace writer, curves from a model
of each family), written before the clock starts. Each report is ``python -m harness.report`` in a fresh
process; time = its wall clock (imports included); memory = the peak of the summed proportional set size (PSS:
pages the figure workers share with the report process count once) of that process and its workers, sampled
every 0.1 s. Goals are for the 2-core machine the harness is developed on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from synthetic_sweep import write_sweep

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GOAL_S, DEFAULT_PAGE_MB = 10.0, 3.0
LARGE_GOAL_S, LARGE_MEMORY_GB = 120.0, 4.0


def _tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, frontier = [root], [root]
    while frontier:
        frontier = [p for p, pp in parent.items() if pp in frontier]
        out += frontier
    return out


def _pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def run_report(results: Path, out: Path) -> tuple[float, float]:
    """(wall seconds, peak memory in MB) of ``python -m harness.report results --out out``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "harness.report", str(results), "--out", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0.0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], _pss_mb(_tree(proc.pid)))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.join()
    assert proc.returncode == 0, output
    return wall, peak[0]


def test_a_default_sized_report(benchmark, tmp_path):
    results = write_sweep(tmp_path / "results", problems=1, sizes=(32, 64, 128, 256, 512), labels_per_cell=25)
    wall, memory = benchmark.pedantic(lambda: run_report(results, tmp_path / "report"), rounds=1, iterations=1)
    page = (tmp_path / "report" / "index.html").stat().st_size / 1e6
    benchmark.extra_info.update(wall_s=wall, peak_memory_mb=memory, index_html_mb=page)
    print(f"\n(a) 125 jobs: report {wall:.1f} s (goal <= {DEFAULT_GOAL_S:g}), peak memory {memory:.0f} MB, "
          f"index.html {page:.2f} MB (goal <= {DEFAULT_PAGE_MB:g})")
    assert wall <= DEFAULT_GOAL_S and page <= DEFAULT_PAGE_MB


def test_b_two_thousand_jobs(benchmark, tmp_path):
    results = write_sweep(tmp_path / "results", problems=4, sizes=10, labels_per_cell=50)
    wall, memory = benchmark.pedantic(lambda: run_report(results, tmp_path / "report"), rounds=1, iterations=1)
    page = (tmp_path / "report" / "index.html").stat().st_size / 1e6
    benchmark.extra_info.update(wall_s=wall, peak_memory_mb=memory, index_html_mb=page)
    print(f"\n(b) 2,000 jobs: report {wall:.1f} s (goal <= {LARGE_GOAL_S:g}), peak memory {memory:.0f} MB "
          f"(goal < {LARGE_MEMORY_GB * 1024:.0f}), index.html {page:.1f} MB")
    assert wall <= LARGE_GOAL_S and memory < LARGE_MEMORY_GB * 1024
