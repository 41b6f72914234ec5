"""One figure of every layer's response to one image, as the paper's Figure 13 shows LeNet-5's
layers answering a digit: the input, C1's six maps, S2, C3's sixteen, S4, C5's 120 units as a
strip, F6's 84 units drawn as the 7x12 bitmap they are trained to match (beside the RBF code of
the predicted digit), and the output. Optionally what was learned: C1's kernels and C3's
connection table.

Every map of a layer shares one grey scale (black = the layer's lowest value, white = its
highest), so maps of a layer compare at a glance; the range is printed in the row's title.
matplotlib's object API (``Figure``, no pyplot): no display, no global state.
"""

from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from lenet5.atomic import save_whole
from lenet5.inspection.layers import BITMAP, Inspection, c1_kernels, c3_connections, c3_table
from lenet5.models import LeNet5

ROWS = (
    ("c1", "C1: 6 feature maps, 28x28"),
    ("s2", "S2: 6 subsampled maps, 14x14"),
    ("c3", "C3: 16 feature maps, 10x10"),
    ("s4", "S4: 16 subsampled maps, 5x5"),
)
GREY = "gray"


def _bare(axes: Axes) -> Axes:
    axes.set_xticks([])
    axes.set_yticks([])
    return axes


def _span(values: torch.Tensor) -> str:
    return f"{float(values.min()):.2f} (black) to {float(values.max()):.2f} (white)"


def _maps(panel: SubFigure, maps: torch.Tensor, title: str, lead: tuple[str, np.ndarray] | None = None):
    """A row of maps on the layer's shared grey scale; ``lead`` is an extra first panel."""
    count = len(maps) + (lead is not None)
    axes = panel.subplots(1, count, squeeze=False)[0]
    if lead is not None:
        name, image = lead
        _bare(axes[0]).imshow(image, cmap=GREY, vmin=0, vmax=1)
        axes[0].set_title(name, fontsize=8)
        axes = axes[1:]
    low, high = float(maps.min()), float(maps.max())
    for index, (ax, image) in enumerate(zip(axes, maps.numpy(), strict=True)):
        _bare(ax).imshow(image, cmap=GREY, vmin=low, vmax=high if high > low else low + 1)
        ax.set_title(str(index + 1), fontsize=7)
    panel.suptitle(f"{title}    {_span(maps)}", x=0.01, ha="left", fontsize=9)


def _strip(panel: SubFigure, values: torch.Tensor, title: str) -> None:
    ax = _bare(panel.subplots())
    ax.imshow(values.numpy()[None], cmap=GREY, aspect="auto")
    panel.suptitle(f"{title}    {_span(values)}", x=0.01, ha="left", fontsize=9)


def _bars(ax: Axes, values: torch.Tensor, names: list[str], best: int, title: str, fmt: str) -> None:
    colours = ["tab:red" if index == best else "tab:grey" for index in range(len(values))]
    ax.bar(range(len(values)), values.numpy(), color=colours)
    ax.set_xticks(range(len(values)), names, fontsize=7, rotation=90 if max(map(len, names)) > 2 else 0)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(title, fontsize=8)
    ax.bar_label(ax.containers[0], labels=[fmt.format(float(v)) for v in values], fontsize=6)


def _outputs(panel: SubFigure, seen: Inspection, names: list[str]) -> None:
    rbf = seen.penalties is not None
    widths = [1, 1, 3, 3] if rbf else [1, 3]
    axes = panel.subplots(1, len(widths), width_ratios=widths)
    f6 = seen.layers["f6"]
    scale = max(1.0, float(f6.abs().max()))
    _bare(axes[0]).imshow(f6.reshape(BITMAP).numpy(), cmap=GREY, vmin=-scale, vmax=scale)
    axes[0].set_title("F6 as 7x12", fontsize=8)
    if rbf:
        _bare(axes[1]).imshow(seen.code.reshape(BITMAP).numpy(), cmap=GREY, vmin=-scale, vmax=scale)
        axes[1].set_title(f"code of {names[seen.digit]}", fontsize=8)
    _bars(axes[-2 if rbf else -1], seen.probabilities, names, seen.digit, "output: probabilities", "{:.2f}")
    axes[-2 if rbf else -1].set_ylim(0, 1.15)
    if rbf:
        _bars(axes[-1], seen.penalties, names, seen.digit, "RBF penalties (smallest wins)", "{:.0f}")
    note = f"from -{scale:.2f} (black) to {scale:.2f} (white)" + (", the code is +-1" if rbf else "")
    panel.suptitle(f"F6: 84 units {note};  output", x=0.01, ha="left", fontsize=9)


def _kernels(panel: SubFigure, model: LeNet5) -> None:
    left, right = panel.subfigures(1, 2, width_ratios=[6, 5])
    kernels = c1_kernels(model)
    _maps(left, kernels, "C1's 6 learned 5x5 kernels")
    connections = c3_connections(model).numpy().copy()
    connections[~c3_table(model).numpy()] = np.nan  # absent in Table I: drawn white
    ax = right.subplots()
    image = ax.imshow(connections, cmap="viridis", vmin=0)
    ax.set_xticks(range(16), [str(i + 1) for i in range(16)], fontsize=6)
    ax.set_yticks(range(6), [str(i + 1) for i in range(6)], fontsize=6)
    ax.set_xlabel("C3 map", fontsize=7)
    ax.set_ylabel("S2 map", fontsize=7)
    right.colorbar(image, ax=ax, shrink=0.8).ax.tick_params(labelsize=6)
    title = "C3's connections: L2 norm of each 5x5 kernel (blank: none)"
    right.suptitle(title, x=0.01, ha="left", fontsize=9)


def draw(seen: Inspection, model: LeNet5, names: list[str], title: str, kernels: bool = False) -> Figure:
    heights = [1.9, 1.5, 0.95, 0.95, 0.6, 1.9] + ([1.9] if kernels else [])
    figure = Figure(figsize=(13, sum(heights) + 0.5), layout="constrained")
    panels = figure.subfigures(len(heights), 1, height_ratios=heights)
    lead = ("input 32x32", seen.image.numpy())
    for index, (name, label) in enumerate(ROWS):
        _maps(panels[index], seen.layers[name], label, lead if index == 0 else None)
    _strip(panels[4], seen.layers["c5"], "C5: 120 units")
    _outputs(panels[5], seen, names)
    if kernels:
        _kernels(panels[6], model)
    figure.suptitle(title, fontsize=11)
    return figure


def save(figure: Figure, path: Path) -> None:
    save_whole(path, lambda partial: figure.savefig(partial, dpi=100, format="png"))
