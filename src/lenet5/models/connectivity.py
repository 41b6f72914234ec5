"""Which S2 maps feed which C3 maps: ``full`` or the paper's Table I."""

import torch

from lenet5.models.registry import choose

# Table I of the paper: rows are S2 maps, columns are C3 maps.
PAPER_TABLE = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""


def _paper_mask() -> torch.Tensor:
    rows = PAPER_TABLE.split()
    return torch.tensor([[c == "X" for c in row] for row in rows]).T  # (C3 maps, S2 maps)


CONNECTIVITIES = {
    "full": lambda: None,
    "paper": _paper_mask,
}


def c3_mask(name: str) -> torch.Tensor | None:
    """The (16, 6) boolean connection mask, or None when every map is connected."""
    return choose(CONNECTIVITIES, "c3 connectivity", name)()
