"""Resume keeps history: a failed resume leaves the folder byte-identical, a finished run can be
extended (schedules recomputed) or is refused in one line, the first config stays."""

import json
from pathlib import Path

import pytest
import yaml

from support import train_once


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def finished(train_cli_in_process, tmp_path: Path) -> Path:
    process, run = train_cli_in_process("trainer.max_epochs=1", run_dir=tmp_path / "run")
    assert process.returncode == 0, process.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def finished_once(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """One finished run for every failed resume: each must leave it byte-identical (what those
    tests check), so none needs a run of its own."""
    return train_once(tmp_path_factory.mktemp("finished"), tiny_data, "trainer.max_epochs=1")


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.lr=-1", "optimizer.lr"),  # refused before anything is written
        ("trainer.max_epochs=1", "trainer.max_epochs"),  # no more epochs than already trained
        ("model/head=linear", "last.ckpt"),  # weights that do not fit the changed model
    ],
)
def test_a_failed_resume_leaves_the_folder_byte_identical(
    train_cli_in_process, finished_once, override, message
):
    before = files(finished_once)
    process, _ = train_cli_in_process("ckpt_path=last", override, run_dir=finished_once)
    assert process.returncode != 0
    assert "Traceback" not in process.stderr
    assert message in process.stderr.strip().splitlines()[-1]
    assert files(finished_once) == before


def test_a_finished_run_extends_to_more_epochs(train_cli_in_process, finished) -> None:
    first_config = (finished / "config.yaml").read_bytes()
    history = (finished / "history.csv").read_text().splitlines()
    process, _ = train_cli_in_process("ckpt_path=last", "trainer.max_epochs=2", run_dir=finished)
    assert process.returncode == 0, process.stderr[-3000:]
    assert json.loads((finished / "metrics.json").read_text())["epochs"] == 2
    extended = (finished / "history.csv").read_text().splitlines()
    assert extended[: len(history)] == history and len(extended) == len(history) + 1
    assert (finished / "config.yaml").read_bytes() == first_config
    record = yaml.safe_load((finished / "resume-1.yaml").read_text())
    assert record["changed"]["trainer.max_epochs"] == {"before": 1, "after": 2}
    assert (finished / ".hydra" / "resume-1" / "overrides.yaml").is_file()
