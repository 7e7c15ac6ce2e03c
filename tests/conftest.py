"""One thread for every solver in the tests, as the harness does by default (threads=1).

Oversubscribed BLAS/torch threads on a busy 2-core machine made SciPy's CG ~9x slower.
"""

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    from harness.job import set_threads

    set_threads(1)
    yield
