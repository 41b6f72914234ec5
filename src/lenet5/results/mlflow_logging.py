"""MLflow for ``logger=mlflow``: one MLflow run per run folder (a resume continues it: the run is
found by its ``run_folder`` tag), named and grouped as the W&B runs are (lenet5.results.run_identity),
the config once as flat dotted parameters, the per-step and per-epoch metrics Lightning logs, and at
the end the pictures, the per-class accuracy and the closing numbers.

Without a tracking URI (``logger.mlflow.tracking_uri``, else $MLFLOW_TRACKING_URI) the runs go
to a local store: ``<store>/mlflow.db`` (SQLite) and ``<store>/artifacts/``, one folder that every
run and every job of a sweep started from the same folder shares (conf/logger/mlflow.yaml puts it
at ``outputs/mlflow`` there). The jobs of a parallel sweep (joblib, submitit) create the database
and the experiment one at a time, under a lock file beside them; after that SQLite serialises
their writes. ``mlflow ui --backend-store-uri sqlite:///outputs/mlflow/mlflow.db`` shows them.

mlflow is imported only when this logger is built; without the ``mlflow`` extra, train.py says
so in one line (lenet5.extras).
"""

import time
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

from lenet5.errors import UserError, first_line
from lenet5.results.plots import Outcome, per_class_accuracy
from lenet5.results.run_identity import (
    final_numbers,
    flat_params,
    job_identity,
    logs_this_checkpoint,
    run_tags,
)

STORE_FILE = "mlflow.db"
ARTIFACTS = "artifacts"
LOCK = ".lock"
RUN_FOLDER_TAG = "run_folder"  # the run folder's absolute path: finds the run again on a resume
SWEEP_TAG = "sweep"  # the sweep's folder in a multirun (W&B's group)
MAX_VALUE = 500  # characters of a parameter's value that every MLflow >= 1.28 keeps
BATCH = 100  # parameters per log_batch call, MLflow's most


def local_store(store: Path, experiment: str) -> str:
    """The SQLite URI of ``store``, with its database and ``experiment`` made if missing, one
    process at a time: two jobs of a sweep creating them together would collide."""
    from filelock import FileLock
    from mlflow.tracking import MlflowClient

    try:
        store.mkdir(parents=True, exist_ok=True)
        with FileLock(str(store / LOCK)):
            uri = f"sqlite:///{(store.resolve() / STORE_FILE).as_posix()}"
            client = MlflowClient(uri)
            if client.get_experiment_by_name(experiment) is None:
                client.create_experiment(experiment, artifact_location=(store.resolve() / ARTIFACTS).as_uri())
    except OSError as error:
        raise UserError(f"{store}: MLflow cannot keep its store there ({error.strerror or error})") from error
    return uri


class RunLogger(MLFlowLogger):
    """Lightning's MLFlowLogger on a shared local store (or ``tracking_uri``), with the run's
    tags (train.yaml's ``tags`` as ``<tag>: true``, its folder, its sweep)."""

    def __init__(
        self,
        store: str,
        tracking_uri: str | None = None,
        experiment_name: str = "lenet5",
        run_name: str | None = None,
        tags: Any = None,
        save_dir: str = ".",
        **kwargs: Any,
    ):
        default_name, group = job_identity()
        folder = Path(save_dir).resolve()
        labels = {tag: "true" for tag in run_tags(tags)}
        labels[RUN_FOLDER_TAG] = str(folder)
        if group:
            labels[SWEEP_TAG] = str(group)
        if not tracking_uri:  # every process: MLflow's client opens its store when it is made
            tracking_uri = local_store(Path(store), experiment_name)
        super().__init__(
            experiment_name=experiment_name,
            run_name=run_name or default_name,
            tracking_uri=tracking_uri,
            tags=labels,
            **kwargs,
        )
        self.config_logged = False
        if rank_zero_only.rank == 0:
            self._run_id = self.run_of_folder(experiment_name, str(folder))

    def run_of_folder(self, experiment_name: str, folder: str) -> str | None:
        """The MLflow run an earlier start of this run folder made, if any."""
        try:
            experiment = self._mlflow_client.get_experiment_by_name(experiment_name)
            if experiment is None or "'" in folder:
                return None
            found = self._mlflow_client.search_runs(
                [experiment.experiment_id], f"tags.{RUN_FOLDER_TAG} = '{folder}'", max_results=1
            )
        except Exception as error:  # noqa: BLE001 - an unreachable server, a bad URI: MLflow's own types
            raise UserError(f"MLflow at {self._tracking_uri}: {first_line(error)}") from error
        return found[0].info.run_id if found else None

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        """The whole config as flat keys, once (Lightning's later call repeats it under other
        keys); a resume adds only keys the run lacks, as MLflow never changes a logged value."""
        if self.config_logged:
            return
        from mlflow.entities import Param

        logged = self.experiment.get_run(self.run_id).data.params
        new = [Param(k, str(v)[:MAX_VALUE]) for k, v in flat_params(params).items() if k not in logged]
        for start in range(0, len(new), BATCH):
            self.experiment.log_batch(self.run_id, params=new[start : start + BATCH])
        self.config_logged = True

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """The ranked checkpoints only (run_identity.logs_this_checkpoint)."""
        if logs_this_checkpoint(checkpoint_callback):
            super().after_save_checkpoint(checkpoint_callback)


@rank_zero_only
def log_to_mlflow(
    loggers: list[Logger], pictures: list[Path], outcome: Outcome, names: list[str], summary: dict[str, Any]
) -> None:
    """For each MLflow logger: the pictures (``pictures/``), the per-class accuracy
    (``test/per_class.json``) and the closing numbers not yet logged as metrics."""
    for logger in loggers:
        if not isinstance(logger, MLFlowLogger):
            continue
        from mlflow.entities import Metric  # only here: without the mlflow extra nothing else logs

        client, run = logger.experiment, logger.run_id
        for path in pictures:
            client.log_artifact(run, str(path), "pictures")
        rows = per_class_accuracy(outcome, len(names))
        table = [
            {"class": c, "label": names[c], "images": n, "correct": right, "accuracy": accuracy}
            for c, (n, right, accuracy) in enumerate(rows)
        ]
        client.log_dict(run, table, "test/per_class.json")
        logged = client.get_run(run).data.metrics
        now = int(time.time() * 1000)
        numbers = [Metric(k, float(v), now, 0) for k, v in final_numbers(summary).items() if k not in logged]
        client.log_batch(run, metrics=numbers)
