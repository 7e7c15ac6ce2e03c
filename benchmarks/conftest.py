"""Benchmarks run single-threaded, like the harness and the tests (see tests/conftest.py)."""

from tests.conftest import _single_thread  # noqa: F401  (an autouse fixture)
