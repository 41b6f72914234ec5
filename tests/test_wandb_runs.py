"""W&B as its users expect, read back from the offline run files: one W&B run per training run
across a resume, the ``best`` alias on the best checkpoint only, short names from the swept
values, each config key once, the test metrics in the summary, and everything in the run folder.

wandb 0.31 reads its transaction logs only inside its Go core; the records are parsed with
wandb's own protobuf classes (``read_records`` in test_wandb.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lenet5.results.wandb_logging import short_name
from support import QUICK, REPO, subprocess_env
from test_wandb import read_records


def records(run_dir: Path) -> dict[str, list]:
    """Every record of every offline run in ``run_dir/wandb``, by kind, in order."""
    found: dict[str, list] = {}
    for log in sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb")):
        for record in read_records(log):
            found.setdefault(record.WhichOneof("record_type"), []).append(record)
    return found


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path):
    """One epoch, then a resume to two, with the model logged; shared by the tests that read it.
    (scheduler=step: a one-cycle schedule is fixed to the epochs of the run's first start.)"""
    folder = tmp_path_factory.mktemp("wandb_runs")
    env = subprocess_env(folder, tiny_data)
    run = folder / "run"
    common = [*QUICK, f"hydra.run.dir={run}", "logger=wandb", "model=modern", "scheduler=step"]
    for epochs, resume in ((1, []), (2, ["ckpt_path=last"])):
        process = subprocess.run(
            [
                sys.executable,
                str(REPO / "train.py"),
                *common,
                "logger.wandb.log_model=true",
                f"trainer.max_epochs={epochs}",
                *resume,
            ],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert process.returncode == 0, process.stderr[-3000:]
    assert not list((folder / "wandb_home").glob("**/staging/*")), (
        "artifact files staged outside the run folder"
    )
    return process, run


def test_resume_keeps_the_run_id(resumed_run):
    _, run = resumed_run
    runs = list((run / "wandb").glob("offline-run-*"))
    assert len(runs) == 2  # one per process, both the same W&B run
    ids = {record.run.run_id for record in records(run)["run"]}
    assert ids == {(run / "wandb" / "run_id").read_text().strip()}


def test_best_alias_only_on_the_best_checkpoint(resumed_run):
    _, run = resumed_run
    best = Path(json.loads((run / "metrics.json").read_text())["best_checkpoint"]).name
    artifacts = [r for r in records(run)["artifact"] if r.artifact.type == "model"]
    assert len(artifacts) == 2  # the best of each start; never last.ckpt
    for record in artifacts:
        assert json.loads(record.artifact.metadata)["original_filename"] != "last.ckpt"
    # W&B moves an alias to the newest version given it: the last one given `best` keeps it.
    holder = [r for r in artifacts if "best" in r.artifact.aliases][-1]
    assert json.loads(holder.artifact.metadata)["original_filename"] == best
    # staged inside the run folder, not under the home folder or $WANDB_DATA_DIR
    for record in artifacts:
        for entry in record.artifact.manifest.contents:
            assert entry.local_path.startswith(str(run.resolve())), entry.local_path


def test_config_keys_once_and_test_metrics_in_summary(resumed_run):
    _, run = resumed_run
    found = records(run)
    keys = [item.key for record in found["config"] for item in record.config.update]
    first_run = [item.key for item in found["config"][0].config.update]
    assert len(first_run) == len(set(first_run))
    bare = {"dataset", "root", "val_size", "batch_size", "eval_batch_size", "split_seed", "mean", "std"}
    assert not bare & set(keys), bare & set(keys)
    summary = {}
    for record in found.get("summary", []):
        summary.update(
            {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.summary.update
            }
        )
    metrics = json.loads((run / "metrics.json").read_text())
    assert summary["test/acc"] == pytest.approx(metrics["test/acc"])
    assert summary["best_epoch"] == metrics["best_epoch"]


# A multirun's W&B names end to end (the swept values, not the fixed seed=1):
# test_wandb.py::test_multirun_jobs_are_distinct_runs_of_one_group, in the same multirun as the
# runs' ids and group.


@pytest.mark.parametrize(
    ("overrides", "swept", "name"),
    [
        (
            ["model/activation=relu", "model.pooling=max", "seed=1"],
            {"model/activation", "model.pooling", "seed"},
            "activation=relu pooling=max seed=1",
        ),
        (["data.root=/a/long/path", "trainer.max_epochs=3", "hydra.run.dir=x"], set(), "max_epochs=3"),
        (["logger=wandb"], set(), None),
    ],
)
def test_short_name(overrides, swept, name):
    assert short_name(overrides, swept) == name
