"""The resume command a run prints and records (interrupted.json) works when pasted, whatever
characters its folder's path holds; a finished resume leaves no stale interrupted.json."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from lenet5.training.resume import hydra_quote, resume_command_words
from support import QUICK, REPO

PATHS = [
    "/plain/run-1.2_x@y",
    "/a b/run",
    "/a,b/run",  # unquoted, a comma makes a sweep of two folders
    "/a=b:c/run",
    "/it's/run",
    '/say "hi"/run',
    "/trailing space /run ",
    "/dollar $HOME/${oc.env:HOME}/run",
    "/back\\slash\\/run\\",
    "/quote\\'s/run",
    "/[list]/(group)/{dict}/*?/run",
    "/ünïcode/ラン",
]
SIGNALS = [
    "+callbacks.kill._target_=signal_at.SignalAt",
    "+callbacks.kill.epoch=1",
    "+callbacks.kill.batch=4",
]


@pytest.mark.parametrize("path", PATHS)
def test_the_folder_reads_back_through_the_shell_and_hydra(path: str) -> None:
    words = resume_command_words(["trainer.max_epochs=2", "ckpt_path=null", "hydra.run.dir=/old"], path)
    assert shlex.split(shlex.join(words)) == words
    overrides = OverridesParser.create().parse_overrides(words[2:])
    values = {o.key_or_group: o.value() for o in overrides}
    assert len(overrides) == 3 and values["trainer.max_epochs"] == 2 and values["ckpt_path"] == "last"
    assert OmegaConf.create({"dir": values["hydra.run.dir"]}).dir == path  # as the run resolves it


def test_a_plain_folder_stays_readable() -> None:
    assert hydra_quote("/tmp/pytest-1/run_0") == "/tmp/pytest-1/run_0"


@pytest.fixture
def shell(tmp_path: Path, hermetic_env: dict[str, str]):
    """bash with ``python`` this interpreter, in a folder whose train.py is the repo's: the
    pasted line runs exactly as a user's shell would run it."""
    bin_dir, work = tmp_path / "bin", tmp_path / "work"
    bin_dir.mkdir()
    work.mkdir()
    python = bin_dir / "python"  # a script, not a link: a venv's interpreter finds its venv by its path
    python.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    python.chmod(0o755)
    (work / "train.py").symlink_to(REPO / "train.py")
    tests = str(REPO / "tests")  # signal_at.SignalAt
    env = {
        **hermetic_env,
        "PATH": f"{bin_dir}{os.pathsep}{hermetic_env['PATH']}",
        "PYTHONPATH": os.pathsep.join(p for p in (tests, hermetic_env.get("PYTHONPATH")) if p),
    }

    def run(line: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True, timeout=timeout
        )

    return run


ODD = "a b,c'd $e=f"


def test_a_pasted_resume_command_resumes_a_folder_with_odd_characters(shell, tmp_path: Path) -> None:
    run = tmp_path / ODD / "run"
    first = shell(shlex.join(["python", "train.py", *QUICK, f"hydra.run.dir={hydra_quote(str(run))}"]))
    assert first.returncode == 0, first.stderr[-2000:]
    again = shell(shlex.join(resume_command_words([*QUICK, "trainer.max_epochs=2"], run)))
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2


def test_the_recorded_resume_command_works_when_pasted(shell, tmp_path: Path) -> None:
    run = tmp_path / ODD / "run"
    words = ["python", "train.py", *QUICK, "trainer.max_epochs=2", f"hydra.run.dir={hydra_quote(str(run))}"]
    stopped = shell(shlex.join([*words, *SIGNALS]))
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    resumed = shell(json.loads((run / "interrupted.json").read_text())["resume"])  # it stopped past batch 4
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2


def test_a_finished_resume_keeps_no_stale_interrupted_record(shell, train_cli_in_process, tmp_path) -> None:
    run = tmp_path / "cut"
    stopped = shell(
        shlex.join(["python", "train.py", *QUICK, "trainer.max_epochs=2", f"hydra.run.dir={run}", *SIGNALS])
    )
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    record = json.loads((run / "interrupted.json").read_text())
    process, _ = train_cli_in_process("trainer.max_epochs=2", "ckpt_path=last", run_dir=run)
    assert process.returncode == 0, process.stderr[-2000:]
    assert not (run / "interrupted.json").exists()
    assert yaml.safe_load((run / "resume-1.yaml").read_text())["interrupted"] == record
