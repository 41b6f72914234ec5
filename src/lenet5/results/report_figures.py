"""The report's two figures: test error per row with its seeds, and the learning curves."""

import csv
import statistics
from pathlib import Path

from matplotlib.figure import Figure

from lenet5.results.study_table import Row
from lenet5.run_files import HISTORY


def label(row: Row) -> str:
    text = ", ".join(row.variant) or "all jobs"
    return f"{text} ({row.tuned})" if row.tuned else text


def plot_errors(path: Path, variant_axes: list[str], rows: list[Row]) -> None:
    """Test error per row: every counted seed as a dot, the mean +- std as a bar."""
    shown = [row for row in rows if row.counted]
    figure = Figure(figsize=(7, 1.2 + 0.35 * max(len(shown), 1)))
    ax = figure.subplots()
    for y, row in enumerate(shown):
        errors = [100 * e for e in row.values("test/error")]
        mean, std = row.stats("test/error")
        ax.errorbar(100 * mean, y, xerr=100 * (std or 0), fmt="s", color="black", capsize=3)
        ax.scatter(errors, [y] * len(errors), color="tab:blue", alpha=0.6, s=18, zorder=3)
    ax.set_yticks(range(len(shown)), [label(row) for row in shown])
    ax.invert_yaxis()
    ax.set_xlabel("test error % (dots: seeds; square and bar: mean ± std)")
    ax.set_title(" x ".join(variant_axes) or "sweep")
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def error_curve(job_dir: Path) -> list[float]:
    """Per-epoch error % from the job's history.csv: validation if held out, else training."""
    path = job_dir / HISTORY
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        epochs = list(csv.DictReader(handle))
    key = "val/acc" if any(e.get("val/acc") for e in epochs) else "train/acc"
    return [100 * (1 - float(e[key])) for e in epochs if e.get(key)]


def plot_curves(path: Path, rows: list[Row]) -> None:
    """One line per row: the mean over its counted seeds of the error after each epoch."""
    figure = Figure(figsize=(7, 4.5))
    ax = figure.subplots()
    kinds = set()
    for row in rows:
        curves = [error_curve(job.path) for job in row.counted]
        curves = [c for c in curves if c]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        mean = [statistics.fmean(c[i] for c in curves) for i in range(length)]
        ax.plot(range(1, length + 1), mean, marker="o", markersize=3, label=label(row))
        kinds.add("val" if any((job.path / HISTORY).is_file() for job in row.counted) else "train")
    ax.set_xlabel("epoch")
    ax.set_ylabel("error % (validation hold-out; training error where nothing is held out)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    if ax.lines:
        ax.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
