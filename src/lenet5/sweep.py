"""What a multirun needs beyond Hydra: torch threads per job, failed jobs recorded instead of
ending the sweep, a closing "N of M jobs failed" line, and a submitit_local with a cap.

train.py imports this module before Hydra starts, which registers the capped submitit_local."""

import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.lenet5_launchers import CappedLocalQueueConf
from lenet5.atomic import write_whole
from lenet5.run_files import FAILURE, HYDRA_CONFIG, INTERRUPTED, METRICS
from lenet5.validation import available_cores

log = logging.getLogger(__name__)

# Public names of this module too (scripts import them from here).
FAILURE_FILE, INTERRUPTED_FILE, METRICS_FILE = FAILURE, INTERRUPTED, METRICS


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def concurrent_jobs(launcher: DictConfig, cores: int) -> int:
    """How many jobs of this sweep share the machine: joblib's n_jobs (negative counts back
    from all cores, as joblib does), the capped submitit_local's array_parallelism, else 1
    (the basic launcher runs jobs one by one; SLURM gives each job its own allocation)."""
    target = str(launcher.get("_target_", ""))
    if target.endswith("JoblibLauncher"):
        n_jobs = int(launcher.n_jobs)
        return n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)
    if target.endswith("CappedLocalLauncher"):
        return int(launcher.array_parallelism)
    return 1


def limit_threads() -> int | None:
    """In a multirun, torch threads = max(1, cores // concurrent jobs): N jobs on N cores must
    not oversubscribe (two 2-thread jobs on 2 cores ran 10x slower). OMP_NUM_THREADS, where set,
    is a ceiling (a job scheduler's or a shared machine's share). Single runs keep torch's
    default (and OMP_NUM_THREADS)."""
    if not in_multirun():
        return None
    import torch

    cores = available_cores()
    jobs = concurrent_jobs(HydraConfig.get().launcher, cores)
    threads = max(1, cores // jobs)
    requested = os.environ.get("OMP_NUM_THREADS", "").strip()
    if requested.isdigit() and int(requested) > 0:
        threads = min(threads, int(requested))
    torch.set_num_threads(threads)
    log.info("torch threads: %d (%d cores / %d concurrent jobs)", threads, cores, jobs)
    return threads


def record_failure(cfg: DictConfig, error: BaseException) -> Path:
    """Write the job's failure.json: the error, its traceback, the overrides and the config."""
    hydra_cfg = HydraConfig.get()
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - the error may be the interpolation itself
        config = OmegaConf.to_container(cfg, resolve=False)
    path = Path(hydra_cfg.runtime.output_dir) / FAILURE
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "error": type(error).__name__,
        "message": str(error),
        "traceback": "".join(traceback.format_exception(error)),
        "overrides": list(hydra_cfg.overrides.task),
        "config": config,
    }
    write_whole(path, json.dumps(payload, indent=2, default=str) + "\n")
    return path


def resume_command(run_dir: Path) -> str:
    """This job's command line again, in its own folder, from its last checkpoint."""
    import shlex

    from lenet5.training.resume import resume_command_words

    return shlex.join(resume_command_words(list(HydraConfig.get().overrides.task), run_dir))


def record_interruption(error: Any) -> tuple[Path, str]:
    """Write the job's interrupted.json (signal, epoch, step, checkpoint, the resume command)."""
    import signal

    run_dir = Path(HydraConfig.get().runtime.output_dir).resolve()
    command = resume_command(run_dir)
    payload = {
        "signal": signal.Signals(error.signum).name,
        "epoch": error.epoch,
        "global_step": error.step,
        "checkpoint": str(error.checkpoint),
        "resume": command,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = run_dir / INTERRUPTED
    write_whole(path, json.dumps(payload, indent=2) + "\n")
    return path, command


def stop_after_signal(error: Any) -> None:
    """Record the interruption and exit 128 + signal (143 for SIGTERM): a scheduler's signal
    ends the whole process, so a multirun's later jobs do not start; the line says so."""
    path, command = record_interruption(error)
    print(f"interrupted: {error}. Resume with: {command}", file=sys.stderr)
    if in_multirun():
        hydra = HydraConfig.get()
        job = f"multirun interrupted at job {hydra.job.num} (recorded in {path})"
        if hydra.launcher.get("_target_", "").endswith("BasicLauncher"):
            # The basic launcher runs the jobs one after another in this process, which now ends.
            tail = "later jobs did not run: rerun the sweep, or resume this job with the command above"
        else:
            # joblib, submitit and SLURM jobs are processes of their own; SLURM restarts a requeued
            # job, which then resumes by itself (lenet5.cluster.restart).
            tail = "the other jobs go on in their own processes; resume this one with the command above"
        print(f"{job}; {tail}", file=sys.stderr)
    sys.exit(error.exit_status)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Every job folder of a sweep: the folders holding Hydra's .hydra/config.yaml."""
    found = {p.parent.parent for p in Path(sweep_dir).rglob(HYDRA_CONFIG)}
    return sorted(found, key=lambda p: [(0, int(s), "") if s.isdigit() else (1, 0, s) for s in p.parts])


def failed(job_dir: Path, record: str = FAILURE) -> bool:
    """A failure.json (or interrupted.json) counts unless a later successful run of the same
    folder wrote metrics."""
    failure, metrics = job_dir / record, job_dir / METRICS
    if not failure.is_file():
        return False
    return not metrics.is_file() or failure.stat().st_mtime > metrics.stat().st_mtime


class FailureSummary(Callback):
    """Ends every multirun with "N of M jobs failed", and a non-zero exit if N > 0."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = job_dirs(sweep_dir)
        failures = [job for job in jobs if failed(job)]
        interrupted = [job for job in jobs if failed(job, INTERRUPTED)]
        line = f"{len(failures)} of {len(jobs)} jobs failed"
        if failures:
            line += ": " + ", ".join(str(job.relative_to(sweep_dir)) for job in failures)
        if interrupted:
            names = ", ".join(str(job.relative_to(sweep_dir)) for job in interrupted)
            line += f"; {len(interrupted)} interrupted (resume commands in their interrupted.json): {names}"
        print(f"{line}. Report: python -m lenet5.report {sweep_dir}", file=sys.stderr)
        if failures or interrupted:
            sys.exit(1)


# Replaces the plugin's submitit_local. Hydra's plugin scan registers the plugins' configs
# again (it re-executes their modules), so it is run first, once: Plugins is a singleton.
Plugins.instance()
ConfigStore.instance().store(
    group="hydra/launcher", name="submitit_local", node=CappedLocalQueueConf, provider="lenet5"
)
