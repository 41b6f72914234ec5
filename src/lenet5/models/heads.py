"""Output layers. Each head owns its loss and its prediction rule, so training code never
asks which head it has.

``rbf`` is the paper's: ten Euclidean RBF units whose parameter vectors are fixed +1/-1
codes drawn from stylised 7x12 bitmaps of the digits, a penalty per class (smaller is better),
and the paper's MAP criterion as the loss.

Every head outputs scores where larger means more likely, as any PyTorch or Lightning user reads
a classifier's output (argmax, softmax, top-k): for ``rbf`` that is minus the penalties, which
``RBFHead.penalties`` (or ``-output``) still gives.
"""

import torch
import torch.nn.functional as F
from torch import nn

from lenet5.models.registry import choose
from lenet5.validation import check

# The ten 7x12 bitmaps side by side (digits 0 to 9); "#" is ink (+1), "." background (-1).
DIGIT_BITMAPS = """
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
..###.. ...#... ..###.. .#####. .....#. ####### ...###. ####### ..###.. ..###..
.#...#. ..##... .#...#. #.....# ....##. #...... ..#.... ......# .#...#. .#...#.
#.....# .#.#... #.....# ......# ...#.#. #...... .#..... .....#. .#...#. #.....#
#.....# ...#... ......# ......# ..#..#. #####.. #...... ....#.. .#...#. #.....#
#.....# ...#... .....#. ..####. .#...#. .....#. #.###.. ...#... ..###.. .#...##
#.....# ...#... ....#.. ......# #....#. ......# ##...#. ...#... .#...#. ..###.#
#.....# ...#... ...#... ......# ####### ......# #.....# ..#.... #.....# ......#
#.....# ...#... ..#.... ......# .....#. ......# #.....# ..#.... #.....# .....#.
.#...#. ...#... .#..... #.....# .....#. #....#. .#...#. ..#.... .#...#. ....#..
..###.. .#####. ####### .#####. .....#. .####.. ..###.. ..#.... ..###.. .###...
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
"""


def digit_codes() -> torch.Tensor:
    """The (10, 84) matrix of +1/-1 RBF parameter vectors."""
    rows = [line.split() for line in DIGIT_BITMAPS.strip().splitlines()]
    codes = ["".join(row[digit] for row in rows) for digit in range(10)]
    return torch.tensor([[1.0 if c == "#" else -1.0 for c in code] for code in codes])


class LinearHead(nn.Module):
    """84 -> 10 logits with softmax cross-entropy."""

    def __init__(self, in_features: int = 84, num_classes: int = 10):
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return output.argmax(dim=1)

    def probabilities(self, output: torch.Tensor) -> torch.Tensor:
        return output.softmax(dim=1)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def connections(self, output_shape: torch.Size) -> int:
        return self.parameter_count()


class RBFHead(nn.Module):
    """Penalties y_i = sum_j (x_j - w_ij)^2 against fixed digit codes; the class is the nearest
    code. ``forward`` returns the scores -y_i (larger = more likely).

    ``j`` is the MAP criterion's constant: the loss stops pushing a wrong class's penalty up
    once exp(-y_i) is small next to exp(-j). The paper does not give its value.
    """

    def __init__(self, j: float = 10.0):
        super().__init__()
        self.j = float(check("model.rbf_j", j))
        self.register_buffer("codes", digit_codes())

    def penalties(self, x: torch.Tensor) -> torch.Tensor:
        """The paper's RBF outputs: squared distances of the F6 outputs to each class's code."""
        return (x.unsqueeze(1) - self.codes).pow(2).sum(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.penalties(x)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """MAP: the right class's penalty plus log(e^-j + sum_i e^-y_i), from the scores -y."""
        right = -output.gather(1, target.unsqueeze(1)).squeeze(1)
        constant = output.new_full((output.shape[0], 1), -self.j)
        competition = torch.logsumexp(torch.cat([constant, output], dim=1), dim=1)
        return (right + competition).mean()

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return output.argmax(dim=1)

    def probabilities(self, output: torch.Tensor) -> torch.Tensor:
        return output.softmax(dim=1)

    def parameter_count(self) -> int:
        return 0

    def connections(self, output_shape: torch.Size) -> int:
        return self.codes.numel()


HEADS = {
    "linear": lambda rbf_j: LinearHead(),
    "rbf": lambda rbf_j: RBFHead(rbf_j),
}


def make_head(name: str, rbf_j: float) -> nn.Module:
    return choose(HEADS, "head", name)(rbf_j)
