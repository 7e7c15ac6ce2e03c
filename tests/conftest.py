"""One thread for every solver in the tests, as the harness does by default (threads=1).

Oversubscribed BLAS/torch threads on a busy 2-core machine made SciPy's CG ~9x slower.
"""

import os

import matplotlib
import pytest
from hypothesis import settings

matplotlib.use("Agg")

# The property tests draw the same examples on every run (derandomized), so a red CI is a bug, never the
# luck of a draw. To hunt for new failures, draw fresh random examples instead:
#   HYPOTHESIS_PROFILE=fuzz HYPOTHESIS_EXAMPLES=5000 pytest tests/test_robustness.py -k any_value
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", derandomize=False, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# The CPU suite never sees a GPU. On a GPU machine a CPU torch optimiser run in the pytest process
# would initialise the CUDA driver (torch.optim's step asks torch.cuda.is_available()), and every
# later test that forks a solver process would then be refused (harness.guard.fork_refusal). The
# GPU tests opt in with HARNESS_GPU_TESTS=1 (scripts/gpu_check.sh sets it).
if os.environ.get("HARNESS_GPU_TESTS") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    from harness.job import set_threads

    set_threads(1)
    yield
