"""Where the Hydra configs live, shared by every entry point (train, evaluate, summary)."""

from pathlib import Path

# conf/ ships inside the package, so an installed wheel finds it as an editable clone does.
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")
