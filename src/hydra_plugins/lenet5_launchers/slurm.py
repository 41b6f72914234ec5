"""submitit_slurm as conf/hydra/launcher/slurm.yaml uses it (``_target_`` names this class):

- before anything is submitted, a request no node of the partition can hold (more CPUs or
  memory than any node has, from ``sinfo``) is refused in one line naming the setting, and so
  is whatever sbatch itself refuses;
- on a cluster that keeps no accounting (``AccountingStorageType=accounting_storage/none``)
  job states come from ``squeue`` instead of ``sacct``, which would fail on every poll (one
  "Bypassing sacct error" warning each) and never see a job that died without a result;
- SLURM's warning before the time limit is SIGUSR1 (``--signal=USR1@signal_delay_s``, as
  Lightning expects), on which training stops at a step boundary with ``last.ckpt`` and
  requeues the job (lenet5.training.signals);
- jobs are requeueable (``--requeue``) and torch's threads stay within ``cpus_per_task``
  (``OMP_NUM_THREADS``, unless set) where SLURM does not pin a job to its cores;
- a job SLURM restarts (``SLURM_RESTART_COUNT`` >= 1: requeued, preempted, timed out)
  resumes from its folder's ``checkpoints/last.ckpt`` with ``ckpt_path=last``, in the same
  folder, the resume recorded there (``resume-N.yaml``) as for any resume.
"""

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, setup_globals
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as PluginSlurmLauncher
from omegaconf import OmegaConf, open_dict

log = logging.getLogger(__name__)

WARNING_SIGNAL = "USR1"
NO_ACCOUNTING = "accounting_storage/none"
THREADS = "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"


def refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def slurm_command(*words: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(words), capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        refuse(f"hydra/launcher=slurm: {words[0]} not found; run the sweep where SLURM's commands are")
    except subprocess.TimeoutExpired:
        refuse(f"hydra/launcher=slurm: {words[0]} did not answer within 60 s; is slurmctld up?")
    raise AssertionError("unreachable")


def nodes(partition: str | None) -> list[tuple[str, int, int]]:
    """(name, CPUs, memory in MB) of each node of the partition (the default one if None)."""
    found = slurm_command("sinfo", "-h", "-N", "-o", "%N|%c|%m", *(["-p", partition] if partition else []))
    if found.returncode != 0:
        said = (found.stderr.strip().splitlines() or [f"exit status {found.returncode}"])[-1]
        refuse(f"hydra/launcher=slurm: sinfo failed: {said}")
    rows = []
    for line in found.stdout.split():
        name, cpus, memory = line.split("|")
        rows.append((name, int(cpus.rstrip("+")), int(memory.rstrip("+"))))
    if not rows:
        where = f"partition {partition}" if partition else "the default partition"
        refuse(f"hydra.launcher.partition={partition}: {where} has no nodes (sinfo)")
    return rows


def check_request(params: dict[str, Any]) -> None:
    """Refuse, in one line, CPUs or memory per node that no node of the partition has."""
    cpus = (params.get("cpus_per_task") or 1) * (params.get("tasks_per_node") or 1)
    memory_mb = params["mem_gb"] * 1024 if params.get("mem_gb") else 0
    found = nodes(params.get("partition"))
    if any(cpus <= c and memory_mb <= m for _, c, m in found):
        return
    most_cpus, most_memory = max(c for _, c, _ in found), max(m for _, _, m in found)
    where = f"partition {params['partition']}" if params.get("partition") else "this cluster"
    if cpus > most_cpus:
        tasks = params.get("tasks_per_node") or 1
        asked = f"hydra.launcher.cpus_per_task={params.get('cpus_per_task')}"
        asked += f" x tasks_per_node={tasks}" if tasks > 1 else ""
        refuse(f"{asked}: no node of {where} has more than {most_cpus} CPUs (sinfo); ask for at most that")
    refuse(
        f"hydra.launcher.mem_gb={params['mem_gb']}: no node of {where} with {cpus} CPUs has "
        f"{memory_mb} MB (the most is {most_memory} MB, sinfo); ask for less"
    )


def keeps_accounting() -> bool:
    found = slurm_command("scontrol", "show", "config")
    for line in found.stdout.splitlines():
        if line.split("=")[0].strip() == "AccountingStorageType":
            return line.split("=", 1)[1].strip() != NO_ACCOUNTING
    return True


def queue_watcher(delay_s: int = 600) -> Any:
    """submitit's SLURM watcher reading ``squeue``: a job no longer listed has ended (its result
    file, if it wrote one, says how)."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    # submitit offers no watcher without sacct: this one fills its cache (private attributes,
    # submitit 1.5; tests/test_upstream_contracts.py fails when they change).
    class QueueWatcher(SlurmInfoWatcher):
        def update(self) -> None:
            waiting = self._registered - self._finished
            if not waiting:
                return
            self._num_calls += 1
            found = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%N"], capture_output=True, text=True)
            if found.returncode != 0:
                log.warning("squeue failed (%s); asking again later", found.stderr.strip()[:200])
                return
            listed = {}
            for line in found.stdout.splitlines():
                job, state, where = (line.split("|") + ["", ""])[:3]
                listed[job] = {"JobID": job, "State": state, "NodeList": where}
            for job in waiting:
                self._info_dict[job] = listed.get(job, {"JobID": job, "State": "ENDED", "NodeList": ""})
            self._last_status_check = time.time()
            self._finished.update(job for job in waiting if self.is_done(job, mode="cache"))

    return QueueWatcher(delay_s=delay_s)


def sbatch_refusal(error: BaseException) -> str | None:
    """sbatch's own error line, when submitting is what failed."""
    cause = error.__cause__
    if isinstance(cause, subprocess.CalledProcessError) and "sbatch" in str(cause.cmd):
        lines = [line.removeprefix("sbatch: error: ") for line in str(error).splitlines() if line.strip()]
        return lines[-1] if lines else str(cause)
    return None


class WithoutSbatchErrors(io.TextIOBase):
    """stderr without what submitit copies there from an sbatch that failed: the refusal is
    said once, in the error line."""

    def __init__(self, stream: Any):
        self.stream, self.dropping = stream, False

    def write(self, text: str) -> int:
        if text.startswith("sbatch: "):
            self.dropping = True
            return len(text)
        if not (self.dropping and text == "\n"):
            self.stream.write(text)
        self.dropping = False
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class SlurmLauncher(PluginSlurmLauncher):
    def launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
        from submitit.core.utils import FailedJobError
        from submitit.slurm.slurm import SlurmJob

        check_request(self.params)
        if not keeps_accounting():
            # The watcher is submitit's per job class; this process submits no other SLURM jobs.
            SlurmJob.watcher = queue_watcher()
            log.info("this cluster keeps no accounting (%s): job states from squeue", NO_ACCOUNTING)
        extra = dict(self.params.get("additional_parameters") or {})
        extra.setdefault("signal", f"{WARNING_SIGNAL}@{self.params.get('signal_delay_s', 120)}")
        extra.setdefault("requeue", True)  # requeued on pre-emption or node failure (JobRequeue=0 too)
        self.params["additional_parameters"] = extra
        # submitit's own handler in the job (before and after training) takes the same signal;
        # torch's threads stay within the job's cores where SLURM does not pin them
        # (TaskPlugin=task/none): lenet5.sweep caps them at OMP_NUM_THREADS.
        exports = [f"export SUBMITIT_PREEMPT_SIGNAL={WARNING_SIGNAL}", THREADS]
        setup = list(self.params.get("setup") or [])
        self.params["setup"] = [*(e for e in exports if e not in setup), *setup]
        try:
            with contextlib.redirect_stderr(WithoutSbatchErrors(sys.stderr)):
                return super().launch(job_overrides, initial_job_idx)
        except FailedJobError as error:
            refused = sbatch_refusal(error)
            if refused is None:
                raise
            refuse(f"hydra/launcher=slurm: sbatch refused the jobs: {refused}")
        raise AssertionError("unreachable")

    def __call__(
        self,
        sweep_overrides: list[str],
        job_dir_key: str,
        job_num: int,
        job_id: str,
        singleton_state: dict[type, Singleton],
    ) -> JobReturn:
        from lenet5.cluster import restart

        given = {o.split("=", 1)[0].lstrip("+~") for o in sweep_overrides}
        folder = self.job_folder(sweep_overrides, job_num, singleton_state)
        if "ckpt_path" in given or not restart.resumes(folder):
            return super().__call__(sweep_overrides, job_dir_key, job_num, job_id, singleton_state)
        from lenet5.run_files import INTERRUPTED, LAST_CHECKPOINT, METRICS
        from lenet5.training.resume import keep_first_config, snapshot

        count = restart.restart_count()
        # Hydra's job logging starts inside run_job: this goes to the job's submitit log.
        print(f"SLURM restart {count}: resuming {folder} from {LAST_CHECKPOINT}", file=sys.stderr, flush=True)
        before = snapshot(folder)
        overrides = [*sweep_overrides, "ckpt_path=last"]
        finished = False
        try:
            returned = super().__call__(overrides, job_dir_key, job_num, job_id, singleton_state)
            finished = returned.status == JobStatus.COMPLETED and (folder / METRICS).is_file()
        finally:  # stopped again (a signal's SystemExit) or finished: recorded either way
            if int(os.environ.get("SLURM_PROCID", "0") or 0) == 0:
                extra = restart.record()
                if isinstance(before.get(INTERRUPTED), bytes):  # what this start resumed from
                    extra["interrupted"] = json.loads(before[INTERRUPTED])
                keep_first_config(folder, before, overrides, finished=finished, extra=extra)
        return returned

    def job_folder(
        self, sweep_overrides: list[str], job_num: int, singleton_state: dict[type, Singleton]
    ) -> Path:
        """The folder Hydra's run_job gives this job: the sweep folder and its subdir."""
        Singleton.set_state(singleton_state)
        setup_globals()
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(sweep_overrides))
        with open_dict(config.hydra.job):
            config.hydra.job.num = job_num
        return Path(str(OmegaConf.select(config, "hydra.sweep.dir"))) / str(
            OmegaConf.select(config, "hydra.sweep.subdir")
        )
