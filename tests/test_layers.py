"""The import layers declared in pyproject.toml ([tool.importlinter]) hold.

problems <- solvers <- harness, and inside the harness the entry points (run, check)
and the report sit above the job and the runner. ``lint-imports`` checks the same.
"""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parents[1]


def test_import_layers_hold(monkeypatch):
    monkeypatch.chdir(REPO)  # the contract lives in pyproject.toml
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True) == 0
