"""The harness's Slurm launcher (``hydra/launcher=slurm``, conf/hydra/launcher/slurm.yaml): submitit's,
plus what ``harness.slurm.sweep`` adds (every job waited for and recorded, Slurm's reasons, no sacct
needed). Hydra instantiates launchers only from the ``hydra_plugins`` package, hence this module.
Without the cluster extra (``pip install -e '.[cluster]'``) it defines nothing."""

# no "from __future__ import annotations": Hydra runs this module before it is in sys.modules, where
# dataclasses look up string annotations

import signal
from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

try:
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
except ImportError:  # the launcher's config (hydra/launcher=slurm) then fails to compose, saying why
    SlurmLauncher = None

if SlurmLauncher is not None:

    @dataclass
    class HarnessSlurmConf(SlurmQueueConf):
        _target_: str = "hydra_plugins.harness_slurm.slurm_launcher.HarnessSlurmLauncher"
        cpus_per_task: Any = None  # ${threads}: an integer, or "all" (the whole node: no --cpus-per-task)
        # give up (record `unavailable`, with Slurm's reason) on jobs still pending when nothing of
        # the sweep has run for this many minutes; None: wait
        max_pending_min: Optional[float] = None  # noqa: UP045 - OmegaConf reads it at runtime
        poll_s: float = 1.0  # how often squeue is asked how the jobs are doing

    ConfigStore.instance().store(group="hydra/launcher", name="harness_slurm", node=HarnessSlurmConf,
                                 provider="harness")

    class HarnessSlurmLauncher(SlurmLauncher):
        def __init__(self, max_pending_min: float | None = None, poll_s: float = 1.0, **params: Any) -> None:
            super().__init__(**params)
            if self.params.get("cpus_per_task") == "all":  # threads=all: the whole (exclusive) node
                self.params["cpus_per_task"] = None
            self.max_pending_min = max_pending_min
            self.poll_s = poll_s

        def setup(self, **kwargs: Any) -> None:  # before the sweep writes anything
            from harness.slurm import refuse_without_slurm

            refuse_without_slurm()
            super().setup(**kwargs)

        def launch(self, job_overrides, initial_job_idx):
            from harness.slurm import launch

            return launch(self, job_overrides, initial_job_idx, max_pending_min=self.max_pending_min,
                          poll_s=self.poll_s)

        def __call__(self, *args: Any, **kwargs: Any):  # on the node: one job of the sweep
            # First, before any import: submitit has just set SIGTERM to "bypass", so a scancel landing
            # while harness.slurm imports would be ignored and the cancelled job would run on and write
            # its trace (seen in CI). Now the window is a few bytecodes.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            from harness.slurm import node_signals

            node_signals()
            return super().__call__(*args, **kwargs)
