"""submitit_local with a cap on the jobs running at once (the plugin starts them all together).

Hydra only instantiates launchers from the hydra_plugins package, hence this module; lenet5.sweep
registers its config under the name submitit_local."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher


@dataclass
class CappedLocalQueueConf(LocalQueueConf):
    _target_: str = "hydra_plugins.lenet5_launchers.CappedLocalLauncher"
    array_parallelism: int = 2
    # The plugin's default ends in /%j, which leaves an empty folder literally named %j; the
    # logs' own names (<job id>_<task>_log.out) already tell the jobs apart.
    submitit_folder: str = "${hydra.sweep.dir}/.submitit"


class CappedLocalLauncher(LocalLauncher):
    """At most ``array_parallelism`` jobs at once, as a rolling window: each worker thread
    submits one job through the plugin and waits for it."""

    def __init__(self, array_parallelism: int = 2, **params: Any) -> None:
        if array_parallelism < 1:
            raise ValueError(f"hydra.launcher.array_parallelism={array_parallelism}: give >= 1")
        super().__init__(**params)
        self.array_parallelism = array_parallelism

    def launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
        def one(index: int) -> JobReturn:
            return super(CappedLocalLauncher, self).launch([job_overrides[index]], initial_job_idx + index)[0]

        with ThreadPoolExecutor(max_workers=self.array_parallelism) as pool:
            return list(pool.map(one, range(len(job_overrides))))
