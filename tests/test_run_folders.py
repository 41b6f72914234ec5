"""Run folders never collide: two runs started at the same moment each get their own."""

import subprocess
import sys
from pathlib import Path

from support import QUICK, REPO


def test_two_runs_started_together_get_their_own_folders(tmp_path: Path, hermetic_env) -> None:
    command = [sys.executable, str(REPO / "train.py"), *QUICK, "trainer.limit_train_batches=2"]
    runs = [
        subprocess.Popen(command, cwd=tmp_path, env=hermetic_env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr[-2000:]
    folders = sorted((tmp_path / "outputs" / "runs").glob("*/*"))
    assert len(folders) == 2
    assert all((folder / "metrics.json").is_file() for folder in folders)
