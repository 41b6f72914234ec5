"""Hostile uses of ``python -m lenet5.report``: a single run's folder (whose curves.png the report
would replace), ``--out`` naming a job folder, a folder mixing two sweeps, ``--baseline`` and
``--tune`` naming nothing, and a sweep whose multirun.yaml lists jobs that have no folder.

multirun.yaml is written as Hydra's sweepers write it (the composed config, hydra node and all,
with the sweep's command line in hydra.overrides.task); job folders as in test_report.py.
"""

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from hostile_checks import refused
from lenet5.config import CONFIG_DIR
from lenet5.results.report import main


def write_sweep_record(folder: Path, command_line: list[str], group: str | None = None) -> None:
    """multirun.yaml of ``python train.py -m <command_line>``: what Hydra saves before any job."""
    chosen = [o for o in command_line if "," not in o] + ([group] if group else [])
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=chosen, return_hydra_config=True)
    cfg.hydra.overrides.task = [*command_line, *([group] if group else [])]
    folder.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, folder / "multirun.yaml")


def write_job(folder: Path, overrides: list[str], acc: float | None = 0.9) -> Path:
    """A job folder as train.py leaves it: Hydra's files, metrics.json, its own curves.png."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if acc is not None:
        metrics = {"epochs": 1, "test/acc": acc, "test/error": 1 - acc, "val/acc": acc, "train_seconds": 1.0}
        (folder / "metrics.json").write_text(json.dumps(metrics))
    Image.new("RGB", (64, 48), "white").save(folder / "curves.png")
    return folder


def grid_sweep(folder: Path, skip: tuple[int, ...] = ()) -> Path:
    """``-m model/pooling=avg,max seed=0,1``: four jobs, those in ``skip`` never started."""
    write_sweep_record(folder, ["model/pooling=avg,max", "seed=0,1"])
    jobs = [(pooling, seed) for pooling in ("avg", "max") for seed in (0, 1)]
    for num, (pooling, seed) in enumerate(jobs):
        if num not in skip:
            write_job(folder / str(num), [f"model/pooling={pooling}", f"seed={seed}"], 0.9 + 0.01 * num)
    return folder


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def run(args: list[str], capsys) -> SimpleNamespace:
    status = main(args)
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=status, stdout=captured.out, stderr=captured.err)


def test_a_single_run_folder_is_refused(tmp_path: Path, capsys) -> None:
    single = write_job(tmp_path / "runs" / "one", ["model=modern"])
    before = snapshot(single)
    refused(run([str(single)], capsys), f"{single} is a single run's folder", "give that multirun's folder")
    assert snapshot(single) == before  # its curves.png is its own, and nothing was added


def test_out_cannot_be_a_job_folder(tmp_path: Path, capsys) -> None:
    sweep = grid_sweep(tmp_path / "sweep")
    before = snapshot(sweep)
    refused(run([str(sweep), "--out", str(sweep / "1")], capsys), f"--out {sweep / '1'}: is the job folder")
    assert snapshot(sweep) == before


def test_two_sweeps_in_one_folder_are_refused(tmp_path: Path, capsys) -> None:
    grid_sweep(tmp_path / "both" / "a")
    write_sweep_record(tmp_path / "both" / "b", ["model/activation=relu,tanh"])
    for num, activation in enumerate(("relu", "tanh")):
        write_job(tmp_path / "both" / "b" / str(num), [f"model/activation={activation}"])
    before = snapshot(tmp_path / "both")
    process = run([str(tmp_path / "both")], capsys)
    refused(process, "holds 2 sweeps", str(tmp_path / "both" / "a"), str(tmp_path / "both" / "b"))
    assert snapshot(tmp_path / "both") == before


def test_jobs_that_set_different_overrides_are_refused(tmp_path: Path, capsys) -> None:
    """No multirun.yaml to tell them apart: the overrides do (their rows would have empty cells)."""
    write_job(tmp_path / "mixed" / "0", ["model/pooling=avg", "seed=0"])
    write_job(tmp_path / "mixed" / "1", ["model/activation=tanh", "seed=0"])
    process = run([str(tmp_path / "mixed")], capsys)
    refused(process, "come from different sweeps", "job 0 sets model/pooling", "job 1 sets model/activation")


@pytest.fixture
def two_axes(tmp_path: Path) -> Path:
    sweep = tmp_path / "two_axes"
    write_sweep_record(sweep, ["model/pooling=avg,max", "model/activation=relu,tanh"])
    jobs = [(p, a) for p in ("avg", "max") for a in ("relu", "tanh")]
    for num, (pooling, activation) in enumerate(jobs):
        write_job(sweep / str(num), [f"model/pooling={pooling}", f"model/activation={activation}"])
    return sweep


BASELINES = [
    ("model/pooling=zzz", "no row matches; the rows: model/pooling=avg model/activation=relu; "),
    ("model/pooling=max", "2 rows match; the rows: "),
    ("model/head=rbf", "model/head is not swept; swept: model/pooling, model/activation"),
    ("seed=0", "seed is not swept"),
]


@pytest.mark.parametrize("baseline, expected", BASELINES, ids=[b for b, _ in BASELINES])
def test_a_baseline_naming_no_one_row_is_refused(
    two_axes: Path, capsys, baseline: str, expected: str
) -> None:
    refused(run([str(two_axes), "--baseline", baseline], capsys), f"--baseline {baseline!r}: {expected}")
    assert not (two_axes / "report.md").exists()


def test_a_baseline_naming_every_axis_is_taken(two_axes: Path, capsys) -> None:
    assert (
        run([str(two_axes), "--baseline", "model/pooling=max model/activation=tanh"], capsys).returncode == 0
    )
    table = [line for line in (two_axes / "report.md").read_text().splitlines() if line.startswith("| ")]
    assert table[1].startswith("| max | tanh |") and "| baseline |" in table[1]


@pytest.mark.parametrize("tune", ["lr_scale", "bogus", "seed"])
def test_a_tune_axis_that_is_not_swept_is_refused(tmp_path: Path, capsys, tune: str) -> None:
    sweep = grid_sweep(tmp_path / "sweep")
    refused(run([str(sweep), "--tune", tune], capsys), f"--tune {tune}: ", "give one of: model/pooling, none")


def test_tune_none_tunes_nothing(tmp_path: Path, capsys) -> None:
    sweep = grid_sweep(tmp_path / "sweep")
    assert run([str(sweep), "--tune", "none"], capsys).returncode == 0
    assert "| model/pooling | n |" in (sweep / "report.md").read_text()


def test_jobs_without_a_folder_are_counted_missing(tmp_path: Path, capsys) -> None:
    sweep = grid_sweep(tmp_path / "sweep", skip=(2,))
    process = run([str(sweep)], capsys)
    assert process.returncode == 0, process.stderr
    text = (sweep / "report.md").read_text()
    assert "- jobs: 4 (3 finished, 0 failed, 0 unfinished, 1 missing)" in text
    assert "## Missing jobs\n\n- `2` (model/pooling=max seed=0): no job folder" in text
    with (sweep / "jobs.csv").open() as handle:
        jobs = {row["job"]: row for row in csv.DictReader(handle)}
    assert (jobs["2"]["status"], jobs["2"]["model/pooling"], jobs["2"]["seed"]) == ("missing", "max", "0")
    assert process.stderr == "warning: 1 of 4 jobs have no folder (never started): 2\n"


def test_a_study_counts_the_jobs_of_its_sweeper_params(tmp_path: Path, capsys) -> None:
    """study=...: the axes are in hydra.sweeper.params, not on the command line."""
    sweep = tmp_path / "study"
    write_sweep_record(sweep, [], group="study=activation_head")
    write_job(sweep / "0", ["model/activation=scaled_tanh", "model/head=rbf", "lr_scale=0.5", "seed=0"])
    write_job(sweep / "7", ["model/activation=scaled_tanh", "model/head=linear", "lr_scale=0.5", "seed=1"])
    assert run([str(sweep)], capsys).returncode == 0
    assert "- jobs: 60 (2 finished, 0 failed, 0 unfinished, 58 missing)" in (sweep / "report.md").read_text()


def test_optuna_trials_without_a_folder_are_counted(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "search"
    write_sweep_record(sweep, [], group="hparams_search=mnist_optuna")
    for num in range(3):
        write_job(
            sweep / str(num),
            [f"optimizer.lr=0.00{num + 1}", "data.batch_size=64", "optimizer.weight_decay=0"],
        )
    assert run([str(sweep)], capsys).returncode == 0
    text = (sweep / "report.md").read_text()
    assert (
        "- jobs: 20 (3 finished, 0 failed, 0 unfinished, 17 missing)" in text
        and "- `19` (values never chosen): no job folder" in text
    )


def test_a_sweep_none_of_whose_jobs_started_is_refused(tmp_path: Path, capsys) -> None:
    sweep = grid_sweep(tmp_path / "sweep", skip=(0, 1, 2, 3))
    refused(run([str(sweep)], capsys), "holds no job folders", "its multirun.yaml lists 4 jobs, none started")
