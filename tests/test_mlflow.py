"""``logger=mlflow``: real train.py runs on tiny data (a two-job joblib sweep, its jobs running
together), read back by MLflow's own client from the local store every run started in that
folder shares (outputs/mlflow): one experiment, the flat config as parameters, the per-epoch
metrics' history, the tags and the pictures as artifacts; a resume continues the same MLflow run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support import QUICK, REPO, subprocess_env

pytest.importorskip("mlflow", reason="logger=mlflow needs the mlflow extra")
from mlflow import MlflowClient  # noqa: E402

EXPECTED_SECONDS = 70  # a two-job joblib sweep and two runs in this process (tests/conftest.py)


def client_of(folder: Path) -> MlflowClient:
    store = folder / "outputs" / "mlflow" / "mlflow.db"
    assert store.is_file(), f"no MLflow store at {store}"
    return MlflowClient(f"sqlite:///{store}")


def runs_of(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("lenet5")
    assert experiment is not None
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    found = []
    for entry in client.list_artifacts(run_id, path):
        found += artifact_paths(client, run_id, entry.path) if entry.is_dir else [entry.path]
    return sorted(found)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """``train.py -m logger=[csv,mlflow] ... seed=0,1`` through joblib, two jobs at a time, on
    the defaults a user has (the sweep folder and the store under the folder it starts from)."""
    folder = tmp_path_factory.mktemp("mlflow_sweep")
    overrides = ["logger=[csv,mlflow]", "tags=[smoke,baseline]", "trainer.max_epochs=2", "seed=0,1"]
    launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    env = subprocess_env(folder, tiny_data)
    env.pop("MLFLOW_TRACKING_URI", None)  # the local store, whatever an earlier test exported
    process = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", *QUICK, *overrides, *launcher],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return folder


def test_a_sweep_shares_one_store_and_experiment(sweep: Path):
    (folder,) = (sweep / "outputs" / "multirun").glob("*/*")
    runs = runs_of(client_of(sweep))
    assert sorted(r.info.run_name for r in runs) == ["seed=0", "seed=1"]
    assert {r.data.tags["sweep"] for r in runs} == {str(folder.relative_to(sweep))}
    assert sorted(r.data.tags["run_folder"] for r in runs) == [
        str((folder / j).resolve()) for j in ("0", "1")
    ]
    assert all(r.info.status == "FINISHED" for r in runs)


def test_a_run_read_back_by_the_mlflow_client(sweep: Path, tmp_path: Path):
    client = client_of(sweep)
    logged = next(r for r in runs_of(client) if r.info.run_name == "seed=1")
    run = Path(logged.data.tags["run_folder"])
    assert logged.data.tags["smoke"] == logged.data.tags["baseline"] == "true"

    config = yaml.safe_load((run / "config.yaml").read_text())
    params = logged.data.params
    assert params["model.activation"] == config["model"]["activation"] == "scaled_tanh"
    assert float(params["optimizer.lr"]) == config["optimizer"]["lr"]
    assert params["trainer.max_epochs"] == "2" and params["seed"] == "1"
    assert params["tags"] == str(["smoke", "baseline"])

    metrics = json.loads((run / "metrics.json").read_text())
    assert logged.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    assert logged.data.metrics["train_seconds"] == pytest.approx(metrics["train_seconds"])
    history = client.get_metric_history(logged.info.run_id, "val/acc")
    assert len(history) == 2, history  # one point per epoch
    assert len({point.step for point in history}) == 2

    assert artifact_paths(client, logged.info.run_id) == [
        "pictures/confusion_matrix.png",
        "pictures/curves.png",
        "pictures/misclassified.png",
        "test/per_class.json",
    ]
    copy = Path(client.download_artifacts(logged.info.run_id, "pictures/curves.png", str(tmp_path)))
    assert copy.read_bytes() == (run / "curves.png").read_bytes()
    table = client.download_artifacts(logged.info.run_id, "test/per_class.json", str(tmp_path))
    rows = json.loads(Path(table).read_text())
    assert [row["class"] for row in rows] == list(range(10))
    assert sum(row["images"] for row in rows) == 200  # the tiny test split


def test_a_resume_continues_the_same_mlflow_run(train_in_process, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the store sits under the folder a run is started from
    # mlflow.set_tracking_uri exports $MLFLOW_TRACKING_URI, which the next test's subprocesses
    # would inherit: set here (empty: the local store), it is taken back after the test.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    train_in_process("logger=mlflow")
    train_in_process("logger=mlflow", "ckpt_path=last", "trainer.max_epochs=2")
    (logged,) = runs_of(client_of(tmp_path))
    history = client_of(tmp_path).get_metric_history(logged.info.run_id, "val/acc")
    # Epoch 1 of the first process, epoch 2 of the resumed one (10 steps an epoch); a resumed
    # run then validates its best weights once more, the first process's record being gone.
    assert [point.step for point in history][:2] == [9, 19], history
    assert logged.data.params["trainer.max_epochs"] == "1"  # MLflow keeps a parameter's first value
