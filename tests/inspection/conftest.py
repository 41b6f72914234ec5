"""Fixtures of the inspection tests: checkpoints of any variant, a drawn 7."""

from pathlib import Path

import pytest
from sketches import draw_seven, write_checkpoint


@pytest.fixture
def make_checkpoint(tmp_path: Path):
    def make(variant: str = "classic", seed: int = 0) -> Path:
        return write_checkpoint(tmp_path / f"{variant}.ckpt", variant, seed)

    return make


@pytest.fixture
def seven(tmp_path: Path) -> Path:
    return draw_seven(tmp_path / "seven.png")
