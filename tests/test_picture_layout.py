"""The run's pictures are laid out by hand for speed (fixed axes rectangles and no layout engine
for the curves, Pillow for the confusion matrix and misclassified.png): every label, tick and
caption must still fall inside the saved image, for short digit names and Fashion-MNIST's long
ones alike."""

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from lenet5.results import confusion, montage, plots
from lenet5.results.plots import Outcome
from lenet5.serving.checkpoints import class_names


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures the plot functions save, kept for inspection."""
    figures: list[Figure] = []
    original = plots.save_png

    def keep(figure: Figure, path: Path) -> None:
        figures.append(figure)
        original(figure, path)

    monkeypatch.setattr(plots, "save_png", keep)
    return figures


def outcome(mistakes: int) -> Outcome:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(1000) % 10
    predictions = labels.clone()
    predictions[:mistakes] = (predictions[:mistakes] + 3) % 10
    probabilities = torch.softmax(torch.randn(1000, 10, generator=generator), dim=1)
    return Outcome(torch.rand(1000, 1, 32, 32, generator=generator), labels, predictions, probabilities)


def assert_inside(figure: Figure) -> None:
    """What is drawn (labels, ticks, titles, captions, colour bar) fits the saved page."""
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    drawn, page = figure.get_tightbbox(renderer), figure.bbox_inches  # both in inches
    margin = 0.01
    assert drawn.x0 >= page.x0 - margin and drawn.y0 >= page.y0 - margin, (drawn, page)
    assert drawn.x1 <= page.x1 + margin and drawn.y1 <= page.y1 + margin, (drawn, page)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_every_label_stays_inside_the_pictures(dataset: str, drawn: list[Figure], tmp_path: Path) -> None:
    history = tmp_path / plots.HISTORY
    history.write_text(
        "epoch,train/loss,train/acc,val/loss,val/acc\n0,0.31,0.9,0.12,0.965\n1,0.2,0.95,0.1,0.97\n"
    )
    written = plots.write_pictures(tmp_path, outcome(mistakes=40), class_names(dataset), history)
    assert [path.name for path in written] == [plots.CONFUSION, plots.MISCLASSIFIED, plots.CURVES]
    assert len(drawn) == 1  # the curves; the other two are drawn by Pillow
    for figure in drawn:
        assert_inside(figure)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_every_misclassified_caption_fits_its_cell(dataset: str) -> None:
    names = class_names(dataset)
    font = montage.font(12)
    for true in names:
        for predicted in names:
            for caption in (f"true {true}", f"pred {predicted} (100%)"):
                assert font.getlength(caption) <= montage.CELL_WIDTH - 8, caption
    title = "36 most confident of 10000 mistakes on 10000 test images"
    assert montage.font(15).getlength(title) <= montage.COLUMNS * montage.CELL_WIDTH - 20


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("count", [0, 7, 10_000])
def test_confusion_matrix_page_holds_every_label(dataset: str, count: int, tmp_path: Path) -> None:
    names = class_names(dataset)
    matrix = np.full((10, 10), count)
    path = tmp_path / "confusion.png"
    title = "test: accuracy 100.00% on 100000 images"
    x0, y0, x1, y1 = confusion.draw_confusion_matrix(matrix, names, title, path)
    with Image.open(path) as page:
        width, height = page.size
    assert 0 <= x0 and 0 <= y0 and x1 <= width and y1 <= height, ((x0, y0, x1, y1), page.size)


def test_confusion_matrix_colours_cells_by_share_of_the_true_class(tmp_path: Path) -> None:
    """Classes always predicted right: ten cells at the colour map's dark end (their counts
    drawn in white over it) and ninety at its light end, with no count drawn."""
    path = tmp_path / "confusion.png"
    confusion.draw_confusion_matrix(np.diag([5] * 10), class_names("mnist"), "t", path)
    with Image.open(path) as page:
        pixels = np.asarray(page.convert("RGB")).reshape(-1, 3)
    dark, light = (np.round(np.array(colormaps["Blues"](end)[:3]) * 255) for end in (1.0, 0.0))
    cell = confusion.CELL**2
    assert 9.5 * cell < (pixels == dark).all(axis=1).sum() < 10 * cell + 4 * confusion.BAR
    assert 90 * cell <= (pixels == light).all(axis=1).sum() < 90 * cell + 44 * confusion.BAR
