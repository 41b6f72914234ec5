"""The figures of docs/results.md, rebuilt from the data and the study's run folders:

    python -m lenet5.results.docs_figures [--study outputs/study] [--out docs]

distortions.png: training digits and random draws of data.augment=affine, the paper's planar
affine distortions (translation, scaling, squeezing, horizontal shear); error_curve.png: the
paper's Figure 5 (training and test error against passes) for our reproduction runs, with the
values the paper's text gives.
"""

import argparse
import csv
import os
import statistics
import sys
from pathlib import Path

import torch
from matplotlib.figure import Figure

from lenet5.atomic import save_whole
from lenet5.data import MNISTDataModule
from lenet5.data.augment import random_affine
from lenet5.run_files import ERROR_CURVE

# What the paper says of its curve (Section III.C and Figure 5), without distortions.
PAPER_TEST_ERROR, PAPER_TRAIN_ERROR_AT_19 = 0.95, 0.35


def distortions(images: torch.Tensor, path: Path, draws: int = 5, seed: int = 0) -> None:
    """One row per digit: the original, then ``draws`` distorted versions."""
    torch.manual_seed(seed)
    rows = [images] + [random_affine(images) for _ in range(draws)]
    figure = Figure(figsize=(1.1 * len(rows), 1.1 * len(images)))
    axes = figure.subplots(len(images), len(rows), squeeze=False)
    for column, batch in enumerate(rows):
        for row, image in enumerate(batch):
            ax = axes[row][column]
            ax.imshow(image[0].numpy(), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("original" if column == 0 else f"draw {column}", fontsize=8)
    figure.tight_layout()
    save_whole(path, lambda partial: figure.savefig(partial, format="png", dpi=100))


def read_curves(folder: Path) -> list[list[dict[str, float]]]:
    curves = []
    for path in sorted(folder.glob(f"*/{ERROR_CURVE}")):
        with path.open(newline="") as handle:
            curves.append([{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)])
    return curves


EXPERIMENTS = ("paper_sdlm", "paper", "paper_distortions", "classic_best")
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def error_curve(study: Path, path: Path, experiments: tuple[str, ...] = EXPERIMENTS) -> None:
    """Mean over seeds of each experiment's training and test error per pass, in %."""
    figure = Figure(figsize=(7, 4.5))
    ax = figure.subplots()
    for experiment, color in zip(experiments, COLORS, strict=False):
        curves = [c for c in read_curves(study / experiment) if c]
        if not curves:
            continue
        passes = min(len(c) for c in curves)
        for split, style in (("train", "--"), ("test", "-")):
            mean = [100 * statistics.fmean(c[i][f"{split}_error"] for c in curves) for i in range(passes)]
            label = f"{experiment}: {split} error (mean of {len(curves)} seed{'s' * (len(curves) > 1)})"
            ax.plot(range(1, passes + 1), mean, style, color=color, marker="o", markersize=3, label=label)
    ax.axhline(
        PAPER_TEST_ERROR, color="black", lw=1, label="paper: test error 0.95% (stable after ~10 passes)"
    )
    ax.plot(
        [19], [PAPER_TRAIN_ERROR_AT_19], "k*", markersize=10, label="paper: training error 0.35% at pass 19"
    )
    ax.set_xlabel("training passes")
    ax.set_ylabel("error %")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    figure.tight_layout()
    save_whole(path, lambda partial: figure.savefig(partial, format="png", dpi=120))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lenet5.results.docs_figures", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--study", type=Path, default=Path("outputs/study"))
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data = MNISTDataModule(root=os.environ.get("LENET5_DATA_DIR", "data"), download=False, val_size=0)
    data.setup()
    images, labels = data.splits["train"]
    first = [int((labels == digit).nonzero()[0]) for digit in range(10)]
    distortions(images[first], args.out / "distortions.png")
    error_curve(args.study, args.out / "error_curve.png")
    print(f"wrote {args.out / 'distortions.png'}, {args.out / 'error_curve.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
