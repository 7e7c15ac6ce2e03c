"""The README's `pytest benchmarks/ -s` must at least load: benchmarks/conftest.py imports
tests/conftest.py, which a plain `pytest benchmarks/...` finds only through the project's
`pythonpath` setting (it once failed with "No module named 'tests'")."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_benchmarks_are_collected_by_a_plain_pytest_call():
    pytest = Path(sys.executable).with_name("pytest")
    cmd = [str(pytest)] if pytest.exists() else [sys.executable, "-m", "pytest"]
    out = subprocess.run([*cmd, "benchmarks", "--collect-only", "-q"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "bench_metamizer_targets.py::" in out.stdout
