"""A SLURM job started again: requeued (``scontrol requeue``, a pre-emption, lenet5's own
requeue on SIGUSR1 before the time limit), SLURM runs the same batch script with the same
SLURM_JOB_ID and SLURM_RESTART_COUNT one higher. A run whose folder that script names again
then resumes from its ``checkpoints/last.ckpt`` (``ckpt_path=last``) instead of being refused as
a fresh run into a folder with checkpoints; the resume is recorded with the restart's number.

The SLURM launcher (hydra_plugins.lenet5_launchers.slurm) does the same for a sweep's job, whose
folder Hydra names; ``resume_after_restart`` is for a single run given ``hydra.run.dir``.
"""

import os
import sys
from pathlib import Path
from typing import Any

from lenet5.run_files import LAST_CHECKPOINT, METRICS


def restart_count() -> int:
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
    except ValueError:
        return 0


def resumes(folder: Path) -> bool:
    """A restarted SLURM job whose folder holds an unfinished run's last checkpoint."""
    folder = Path(folder)
    return restart_count() > 0 and (folder / LAST_CHECKPOINT).is_file() and not (folder / METRICS).is_file()


def record() -> dict[str, Any]:
    """What the resume record (resume-N.yaml) says of the restart."""
    return {"slurm": {"job_id": os.environ.get("SLURM_JOB_ID"), "restart_count": restart_count()}}


def resume_after_restart(argv: list[str]) -> list[str]:
    """The command line of a single run, ``ckpt_path=last`` added (to ``sys.argv`` too, which
    Hydra reads) where a restarted SLURM job would otherwise start its folder again; every
    rank of a DDP job adds it, so all of them resume."""
    from lenet5.training.run_folder import option

    run_dir, ckpt = option(argv, "hydra.run.dir"), option(argv, "ckpt_path")
    if ckpt is not None or not isinstance(run_dir, str) or not run_dir or "${" in run_dir:
        return argv
    if any(word in ("-m", "--multirun") for word in argv):
        return argv  # each job of a sweep has its own folder (the SLURM launcher resumes those)
    if not resumes(Path(run_dir)):
        return argv
    print(f"SLURM restart {restart_count()}: resuming {run_dir} from {LAST_CHECKPOINT}", file=sys.stderr)
    sys.argv.append("ckpt_path=last")
    return [*argv, "ckpt_path=last"]
