"""One thread for every solver in the tests, as the harness does by default (threads=1).

Oversubscribed BLAS/torch threads on a busy 2-core machine made SciPy's CG ~9x slower.
"""

import os

import matplotlib
import pytest

matplotlib.use("Agg")

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
