"""Where the Hydra configs live, shared by every entry point (train, evaluate, summary)."""

import os
from pathlib import Path

from omegaconf import OmegaConf

from lenet5 import run_files

# conf/ ships inside the package, so an installed wheel finds it as an editable clone does.
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")

# ${pid:} in the run folders' names (conf/hydra/default.yaml): two runs started in the same
# second (a job array, two terminals) get folders of their own instead of sharing one.
# Cached, so a sweep's folder is named once, in the process that starts the sweep: Hydra copies
# the resolvers' cache into each job's config, and a job in another process (joblib, submitit,
# SLURM) would otherwise name a folder after its own process id.
OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)


def run_file(name: str) -> str:
    """``${run_file:CHECKPOINTS}``: a name from lenet5.run_files, so the configs spell none."""
    value = getattr(run_files, name, None)
    if not name.isupper() or not isinstance(value, str):
        raise KeyError(f"${{run_file:{name}}}: lenet5.run_files has no file name {name!r}")
    return value


OmegaConf.register_new_resolver("run_file", run_file, replace=True)
