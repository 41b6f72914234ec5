"""hydra/launcher=slurm against a real SLURM: the one-node cluster of lenet5.cluster.local_slurm
(slurmctld, slurmd and munged on this machine, no accounting), started once for this file.

A job array into one sweep folder with its report and a failing job, requests no node can hold
refused in one line, a job requeued mid-epoch and then warned with SIGUSR1 that resumes each
time in its folder and ends as a run never interrupted, and DDP over two srun tasks."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hydra_plugins.lenet5_launchers.slurm import check_request
from lenet5.cluster import local_slurm
from support import QUICK, REPO
from test_wandb_runs import records

pytestmark = pytest.mark.slurm
EXPECTED_SECONDS = 240  # under make test's two workers: handed out first
SMALL = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1"]
DIVERGES = ["model/head=linear", "model/activation=relu", "optimizer=sgd"]
SAME = ("epochs", "test/acc", "test/loss", "val/acc", "val/loss", "seed", "parameters")
WAIT = 300.0  # seconds for a job to reach a point: generous, for a loaded 2-core machine


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """SLURM_CONF of a cluster running for this file's tests; stopped by its process ids."""
    reason = local_slurm.unavailable()
    if reason:
        pytest.skip(f"SLURM cannot be started here: {reason}")
    folder = tmp_path_factory.mktemp("slurm")
    env = local_slurm.start(folder)
    yield env
    local_slurm.stop(folder)


@pytest.fixture
def slurm_env(hermetic_env: dict[str, str], cluster: dict[str, str]) -> dict[str, str]:
    """The tests' environment with the cluster's SLURM_CONF; tests/ on the path for the jobs'
    test callback (sbatch hands the environment on to the jobs)."""
    path = hermetic_env.get("PYTHONPATH", "")
    return {
        **hermetic_env,
        **cluster,
        "PYTHONPATH": f"{REPO / 'tests'}:{path}" if path else str(REPO / "tests"),
    }


def slurm(env: dict[str, str], *words: str) -> str:
    done = subprocess.run(list(words), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def sweep_folder(tmp_path: Path) -> Path:
    """The sweep's one folder under the default outputs/multirun/<date>/."""
    folders = sorted((tmp_path / "outputs" / "multirun").glob("*/*"))
    assert len(folders) == 1, folders
    return folders[0]


def wait_until(ready, what: str, seconds: float = WAIT):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = ready()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what} after {seconds:.0f} s")


def test_job_array_into_one_sweep_folder_with_report_and_a_failure(run_cli, slurm_env, tmp_path: Path):
    """Four jobs of one array, the default sweep folder; the first diverges and is recorded
    there while the other three finish."""
    process = run_cli(
        "train.py", "-m", *QUICK, *SMALL, *DIVERGES, "optimizer.lr=1e30,0.1,0.05,0.02", env=slurm_env
    )
    assert process.returncode == 1, process.stderr[-3000:]
    sweep = sweep_folder(tmp_path)
    assert (
        f"1 of 4 jobs failed: 0. Report: python -m lenet5.report {sweep.relative_to(tmp_path)}"
        in process.stderr
    )
    assert json.loads((sweep / "0" / "failure.json").read_text())["error"] == "FloatingPointError"
    assert not (sweep / "0" / "metrics.json").exists()
    for job in ("1", "2", "3"):
        assert (sweep / job / "metrics.json").is_file()
    # One array: every job's id is <array id>_<task>; submitit's logs sit in the sweep folder.
    ids = [
        yaml.safe_load((sweep / j / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["id"]
        for j in "0123"
    ]
    array = {i.split("_")[0] for i in ids}
    assert len(array) == 1 and [i.split("_")[1] for i in ids] == ["0", "1", "2", "3"], ids
    logs = sorted(p.name for p in (sweep / ".submitit").glob("*_log.out"))
    assert logs == [f"{i}_0_log.out" for i in ids]
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["multirun"]
    script = (sweep / ".submitit" / f"{array.pop()}_submission.sh").read_text()
    assert "#SBATCH --signal=USR1@120" in script and "#SBATCH --requeue" in script
    assert "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}" in script
    # No accounting here: said once, and no sacct warning on any poll.
    output = process.stdout + process.stderr
    assert output.count("keeps no accounting") == 1 and "sacct" not in output

    report = run_cli("-m", "lenet5.report", str(sweep), env=slurm_env)
    assert report.returncode == 0, report.stderr[-3000:]
    table = [line for line in (sweep / "report.md").read_text().splitlines() if line.startswith("| ")]
    print("\n".join(table))
    assert len(table) == 1 + 4  # header and one row per learning rate
    assert "## Failed jobs" in (sweep / "report.md").read_text()


@pytest.mark.parametrize(
    ("setting", "line"),
    [
        ("hydra.launcher.cpus_per_task=512", r"hydra\.launcher\.cpus_per_task=512: no node of this cluster "
         r"has more than \d+ CPUs \(sinfo\); ask for at most that"),
        ("hydra.launcher.gres=gpu:1", r"hydra/launcher=slurm: sbatch refused the jobs: .*generic resource.*"),
    ],
)  # fmt: skip
def test_a_request_no_node_can_hold_is_one_line(run_cli, slurm_env, setting, line):
    """Checked against sinfo before submitting; what sbatch refuses beyond that, in its words."""
    process = run_cli("train.py", "-m", *QUICK, *SMALL, setting, "seed=0,1", env=slurm_env)
    assert process.returncode == 2, process.stderr[-3000:]
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(f"error: {line}", lines[0]), lines
    assert not slurm(slurm_env, "squeue", "-h").strip()  # nothing was queued


def test_more_memory_than_any_node_is_refused(slurm_env, monkeypatch, capsys):
    monkeypatch.setenv("SLURM_CONF", slurm_env["SLURM_CONF"])
    with pytest.raises(SystemExit) as exited:
        check_request({"cpus_per_task": 1, "tasks_per_node": 1, "mem_gb": 100000, "partition": None})
    assert exited.value.code == 2
    line = capsys.readouterr().err.strip()
    expected = r"error: hydra\.launcher\.mem_gb=100000: no node of this cluster with 1 CPUs has 102400000 MB"
    assert re.fullmatch(expected + r" \(the most is \d+ MB, sinfo\); ask for less", line), line
    check_request({"cpus_per_task": 1, "tasks_per_node": 2, "mem_gb": 1, "partition": None})  # fits


def paused(marker: Path) -> str:
    return marker.read_text().strip() if marker.is_file() else ""


def restart_now(env: dict[str, str], job: str) -> None:
    """A requeued job waits about two minutes (its BeginTime) before SLURM starts it again;
    the test moves that to now once the job is back in the queue."""
    wait_until(
        lambda: slurm(env, "squeue", "-h", "-j", job, "-o", "%T").strip() == "PENDING", f"job {job} pending"
    )
    slurm(env, "scontrol", "update", f"JobId={job}", "StartTime=now")


def test_requeued_and_warned_job_resumes_in_its_folder_as_if_never_stopped(
    train_in_process, slurm_env, tmp_path: Path
) -> None:
    """First start: paused at epoch 0, batch 3, then `scontrol requeue` (SIGTERM, restart).
    Second start: resumes, paused at epoch 1, batch 4, then SIGUSR1 as before a time limit
    (`scancel --signal=USR1`): it stops, requeues itself, and the third start finishes. Two
    resumes, each recorded, one folder, one W&B run; the metrics of an uninterrupted run."""
    overrides = ["trainer.max_epochs=2", "seed=3", "model=modern"]
    _, whole = train_in_process(*overrides, run_dir=tmp_path / "whole")

    markers = tmp_path / "paused"
    pause = ["+callbacks.pause._target_=slurm_pause.PauseAt", f"+callbacks.pause.marker={markers}"]
    pause += ["+callbacks.pause.stops=[[0,0,3],[1,1,4]]"]
    command = ["train.py", "-m", *QUICK, *SMALL, *overrides, *pause, "logger=[csv,wandb]"]
    with open(tmp_path / "sweep.out", "w") as out, open(tmp_path / "sweep.err", "w") as err:
        sweep_process = subprocess.Popen(
            [sys.executable, str(REPO / command[0]), *command[1:]],
            cwd=tmp_path,
            env=slurm_env,
            stdout=out,
            stderr=err,
        )
        try:
            job = wait_until(lambda: paused(Path(f"{markers}.0")), "no job paused at epoch 0")
            slurm(slurm_env, "scontrol", "requeue", job)
            restart_now(slurm_env, job)
            assert wait_until(lambda: paused(Path(f"{markers}.1")), "the restarted job never paused") == job
            slurm(slurm_env, "scancel", "--signal=USR1", job)
            restart_now(slurm_env, job)
            sweep_process.wait(timeout=WAIT)
        finally:
            if sweep_process.poll() is None:
                sweep_process.kill()
    stderr = (tmp_path / "sweep.err").read_text()
    assert sweep_process.returncode == 0, stderr[-3000:]
    assert "0 of 1 jobs failed" in stderr
    run = sweep_folder(tmp_path) / "0"

    first, second = (json.loads((r / "metrics.json").read_text()) for r in (whole, run))
    print({k: (first[k], second[k]) for k in SAME})
    assert {k: first[k] for k in SAME} == {k: second[k] for k in SAME}
    assert (whole / "history.csv").read_text() == (run / "history.csv").read_text()

    # Each restart recorded in the folder: what stopped it and which start resumed.
    resumes = [yaml.safe_load((run / f"resume-{n}.yaml").read_text()) for n in (1, 2)]
    assert [r["slurm"]["restart_count"] for r in resumes] == [1, 2]
    assert [r["interrupted"]["signal"] for r in resumes] == ["SIGTERM", "SIGUSR1"]
    assert [r["interrupted"]["epoch"] for r in resumes] == [0, 1]
    assert all(r["command"][-1] == "ckpt_path=last" for r in resumes)
    assert not (run / "interrupted.json").exists() and not (run / "resume-3.yaml").exists()
    assert "ckpt_path=last" not in (run / ".hydra" / "overrides.yaml").read_text()  # the first start's
    # One W&B run across the three starts.
    assert len(list((run / "wandb").glob("offline-run-*"))) == 3
    assert {r.run.run_id for r in records(run)["run"]} == {(run / "wandb" / "run_id").read_text().strip()}
    # SLURM's own record: the same job, started three times, its log appended to.
    logs = sweep_folder(tmp_path) / ".submitit"
    log, errors = (next(logs.glob(f"*_0_log.{kind}")).read_text() for kind in ("out", "err"))
    assert log.count("Starting with JobEnvironment") == 3
    assert "requeued SLURM job" in log
    folder = run.relative_to(tmp_path)  # as the sweep names it, from where it was started
    assert f"SLURM restart 1: resuming {folder}" in errors and f"SLURM restart 2: resuming {folder}" in errors


def test_ddp_over_two_srun_tasks_into_one_run_folder(run_cli, slurm_env, tmp_path: Path) -> None:
    """Two tasks of one job (srun), gloo on the CPU, ranks from SLURM (Lightning's
    SLURMEnvironment; nothing relaunched): one run folder, one metrics.json."""
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "hydra.launcher.tasks_per_node=2"]
    process = run_cli("train.py", "-m", *QUICK, *SMALL, *ddp, env=slurm_env)
    assert process.returncode == 0, process.stderr[-3000:]
    sweep = sweep_folder(tmp_path)
    logs = "".join(p.read_text() for p in sorted((sweep / ".submitit").glob("*_log.*")))
    assert "distributed_backend=gloo" in logs and "Starting with 2 processes" in logs
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in logs and "GLOBAL_RANK: 1, MEMBER: 2/2" in logs
    assert "global_rank=1(2)" in logs  # the second task is SLURM's, not a process Lightning started
    assert sorted(p.relative_to(sweep) for p in sweep.rglob("metrics.json")) == [Path("0/metrics.json")]
    assert sorted(p.name for p in sweep.iterdir()) == [".submitit", "0", "multirun.yaml"]
    metrics = json.loads((sweep / "0" / "metrics.json").read_text())
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["epochs"] == 1
    print(sorted(str(p.relative_to(sweep / "0")) for p in (sweep / "0").rglob("*") if p.is_file()))


def test_a_restarted_batch_script_resumes_its_single_run(train_cli_in_process, monkeypatch, tmp_path: Path):
    """A batch script of one's own (`srun python train.py hydra.run.dir=...`) started again by
    SLURM: its command line, which gives no ckpt_path, resumes the folder's last.ckpt instead of
    being refused as a fresh run into a folder with checkpoints. (SLURM's environment as SLURM
    sets it on a restart; the launcher's jobs above go through the real one.)"""
    run = tmp_path / "run"
    first, _ = train_cli_in_process("trainer.max_epochs=2", "trainer.limit_train_batches=3", run_dir=run)
    assert first.returncode == 0, first.stderr[-3000:]
    (run / "metrics.json").unlink()  # as if stopped after the last epoch's checkpoint
    refused, _ = train_cli_in_process("trainer.max_epochs=2", "trainer.limit_train_batches=3", run_dir=run)
    assert refused.returncode == 2 and "resume it with ckpt_path=last" in refused.stderr

    monkeypatch.setenv("SLURM_JOB_ID", "41")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    again, _ = train_cli_in_process("trainer.max_epochs=3", "trainer.limit_train_batches=3", run_dir=run)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"SLURM restart 1: resuming {run} from checkpoints/last.ckpt" in again.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3
    record = yaml.safe_load((run / "resume-1.yaml").read_text())
    assert record["slurm"] == {"job_id": "41", "restart_count": 1}
    assert record["command"][-1] == "ckpt_path=last"
