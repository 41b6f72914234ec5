"""Where the Hydra configs live, shared by every entry point (train, evaluate, summary)."""

from pathlib import Path

# conf/ sits at the repository root, beside train.py (the package is installed editable).
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
