"""Where the Hydra configs live, shared by every entry point (train, evaluate, summary)."""

import os
from pathlib import Path

from omegaconf import OmegaConf

# conf/ ships inside the package, so an installed wheel finds it as an editable clone does.
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")

# ${pid:} in the run folders' names (conf/hydra/default.yaml): two runs started in the same
# second (a job array, two terminals) get folders of their own instead of sharing one.
OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)
