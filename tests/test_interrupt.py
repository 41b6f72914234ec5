"""A signal stops a run at a step boundary with a resumable checkpoint; resuming it ends exactly
where a run never interrupted ends, with all of its history."""

import csv
import json
import signal
from pathlib import Path

import pytest

from support import QUICK, REPO

KILL = ["+callbacks.kill._target_=signal_at.SignalAt", "+callbacks.kill.epoch=1", "+callbacks.kill.batch=4"]
SAME = ("epochs", "test/acc", "test/loss", "val/acc", "val/loss", "seed", "parameters")


@pytest.fixture
def signalling_env(hermetic_env: dict[str, str]) -> dict[str, str]:
    """Lets the config name the test callback tests/signal_at.py (the process signals itself)."""
    path = hermetic_env.get("PYTHONPATH", "")
    return {**hermetic_env, "PYTHONPATH": f"{REPO / 'tests'}:{path}" if path else str(REPO / "tests")}


def metrics_rows(run: Path) -> list[dict[str, str]]:
    """The logged values row by row (the header may gain columns: test/* after a resume)."""
    with open(run / "csv" / "metrics.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if v} for row in csv.DictReader(handle)]


def interrupt(run_cli, run: Path, env: dict[str, str], signum: str, *overrides: str):
    return run_cli(
        "train.py",
        *QUICK,
        f"hydra.run.dir={run}",
        *overrides,
        *KILL,
        f"+callbacks.kill.signum={signum}",
        env=env,
    )


@pytest.mark.parametrize("signum", ["SIGINT", "SIGUSR1"])
def test_each_signal_leaves_a_resumable_record(run_cli, tmp_path: Path, signalling_env, signum) -> None:
    run = tmp_path / "cut"
    stopped = interrupt(run_cli, run, signalling_env, signum, "trainer.max_epochs=2")
    assert stopped.returncode == 128 + getattr(signal, signum), stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stderr and "Resume with:" in stopped.stderr
    assert json.loads((run / "interrupted.json").read_text())["signal"] == signum
    assert (run / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("seeds", ["seeds=1", "seeds=2"])
def test_sigterm_mid_epoch_then_resume_equals_an_uninterrupted_run(
    train_in_process, train_cli_in_process, run_cli, tmp_path: Path, signalling_env, seeds: str
) -> None:
    """One seed or K on the same run sequence: the same stop, record and resume. Only the
    stop needs a process of its own (it signals itself); the other two runs are this one's."""
    _, whole = train_in_process("trainer.max_epochs=2", seeds, run_dir=tmp_path / "whole")

    run = tmp_path / "cut"
    stopped = interrupt(run_cli, run, signalling_env, "SIGTERM", "trainer.max_epochs=2", seeds)
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stderr
    record = json.loads((run / "interrupted.json").read_text())
    assert record["signal"] == "SIGTERM" and record["epoch"] == 1
    assert f"hydra.run.dir={run}" in record["resume"] and record["resume"].endswith("ckpt_path=last")
    assert not (run / "metrics.json").exists()
    rows_before = metrics_rows(run)

    resumed, _ = train_cli_in_process("trainer.max_epochs=2", "ckpt_path=last", seeds, run_dir=run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first, second = (json.loads((r / "metrics.json").read_text()) for r in (whole, run))
    assert {k: first[k] for k in SAME} == {k: second[k] for k in SAME}
    for one, other in zip(first.get("per_seed", []), second.get("per_seed", []), strict=True):
        assert {k: v for k, v in one.items() if k != "best_checkpoint"} == {
            k: v for k, v in other.items() if k != "best_checkpoint"
        }
    assert (whole / "history.csv").read_text() == (run / "history.csv").read_text()
    # Every row written before the signal is still there, first.
    assert metrics_rows(run)[: len(rows_before)] == rows_before


def test_a_signal_in_a_default_multirun_says_which_jobs_did_not_run(
    run_cli, tmp_path: Path, signalling_env
) -> None:
    """The basic launcher runs the jobs one after another in one process: a signal ends them all,
    and the lines say which job stopped, where it is recorded and that the later ones never ran."""
    kill = [*KILL[:1], "+callbacks.kill.epoch=0", "+callbacks.kill.batch=2"]
    stopped = run_cli("train.py", "-m", *QUICK, "seed=0,1", *kill, env=signalling_env)
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stderr
    (sweep,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    assert (sweep / "0" / "interrupted.json").is_file() and not (sweep / "1").exists()
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("multirun interrupted at job 0 (recorded in ")
    assert last.endswith("later jobs did not run: rerun the sweep, or resume this job with the command above")
