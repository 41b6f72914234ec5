"""The ablation report of a sweep, from its job folders alone (no W&B):

    python -m lenet5.report outputs/multirun/<sweep>

The swept axes are the overrides whose values differ between jobs; seeds are the replicates.
Writes report.md (mean +- std over seeds per variant), report.csv and report.png into the sweep
folder. Failed and unfinished jobs are listed, never averaged in.
"""

import argparse
import csv
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lenet5.atomic import save_whole, write_whole
from lenet5.errors import UserError
from lenet5.sweep import FAILURE_FILE, METRICS_FILE, failed, job_dirs

REPLICATE_AXIS = "seed"
STATUSES = ("finished", "failed", "unfinished")


@dataclass
class Job:
    path: Path
    overrides: dict[str, str]
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass
class Row:
    variant: tuple[str, ...]
    jobs: list[Job]

    @property
    def finished(self) -> list[Job]:
        return [job for job in self.jobs if job.status == "finished"]

    def values(self, key: str) -> list[float]:
        return [float(job.metrics[key]) for job in self.finished if key in job.metrics]

    def stats(self, key: str) -> tuple[float | None, float | None]:
        """(mean, sample std); None where there are too few values."""
        values = self.values(key)
        mean = statistics.fmean(values) if values else None
        std = statistics.stdev(values) if len(values) > 1 else None
        return mean, std


def parse_overrides(lines: list[str]) -> dict[str, str]:
    """``model/pooling=max`` -> {"model/pooling": "max"}; ``+key``/``~key`` prefixes dropped."""
    parsed = {}
    for line in lines:
        key, _, value = str(line).partition("=")
        parsed[key.lstrip("+~")] = value
    return parsed


def load_job(path: Path) -> Job:
    """A job whose files cannot be read (truncated metrics.json, say) is listed as failed with
    the reason, so the report still covers every healthy job."""
    overrides: dict[str, str] = {}
    try:
        overrides = parse_overrides(OmegaConf.to_container(OmegaConf.load(path / ".hydra/overrides.yaml")))
        return _load_job(path, overrides)
    except Exception as error:  # noqa: BLE001 - yaml, json and bad values: the same to the reader
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"warning: {path}: skipped, a job file is damaged ({text})", file=sys.stderr)
        return Job(path, overrides, "failed", error=f"damaged job file: {text}")


def _load_job(path: Path, overrides: dict[str, str]) -> Job:
    if failed(path):
        failure = json.loads((path / FAILURE_FILE).read_text())
        return Job(path, overrides, "failed", error=f"{failure['error']}: {failure['message']}")
    if (path / METRICS_FILE).is_file():
        metrics = json.loads((path / METRICS_FILE).read_text())
        if not isinstance(metrics, dict) or not all(
            isinstance(metrics.get(k, 0.0), int | float) for k in ("test/acc", "test/error", "train_seconds")
        ):
            raise ValueError(f"{METRICS_FILE} does not hold the metrics of a run")
        if "test/error" not in metrics and "test/acc" in metrics:
            metrics["test/error"] = 1.0 - metrics["test/acc"]
        return Job(path, overrides, "finished", metrics=metrics)
    return Job(path, overrides, "unfinished")


def load_jobs(sweep_dir: Path) -> list[Job]:
    if not sweep_dir.is_dir():
        problem = "a file, not a folder" if sweep_dir.exists() else "no such folder"
        raise UserError(f"{sweep_dir}: {problem}; give a multirun folder (outputs/multirun/...)")
    jobs = [load_job(path) for path in job_dirs(sweep_dir)]
    if not jobs:
        raise UserError(
            f"{sweep_dir} holds no job folders (none has .hydra/config.yaml); give the folder "
            f"of a multirun (python train.py -m ...), such as outputs/multirun/<date>/<time>"
        )
    return jobs


def swept_axes(jobs: list[Job]) -> tuple[list[str], dict[str, str]]:
    """(axes whose value differs between jobs, in override order; the overrides all share)."""
    keys = list(dict.fromkeys(key for job in jobs for key in job.overrides))
    axes, fixed = [], {}
    for key in keys:
        values = {job.overrides.get(key, "") for job in jobs}
        if len(values) > 1:
            axes.append(key)
        else:
            fixed[key] = values.pop()
    return axes, fixed


def group(jobs: list[Job], axes: list[str]) -> list[Row]:
    """One row per variant (the values of the non-seed axes), in order of first appearance."""
    rows: dict[tuple[str, ...], Row] = {}
    for job in jobs:
        variant = tuple(job.overrides.get(axis, "") for axis in axes)
        rows.setdefault(variant, Row(variant, [])).jobs.append(job)
    return list(rows.values())


def percent(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def relative(job: Job, sweep_dir: Path) -> str:
    return str(job.path.relative_to(sweep_dir)) or "."


def markdown(
    sweep_dir: Path, jobs: list[Job], axes: list[str], fixed: dict[str, str], rows: list[Row]
) -> str:
    counts = {status: sum(job.status == status for job in jobs) for status in STATUSES}
    epochs = sorted({job.metrics.get("epochs") for job in jobs if job.status == "finished"} - {None})
    variant_axes = [axis for axis in axes if axis != REPLICATE_AXIS]
    seeds = list(
        dict.fromkeys(job.overrides[REPLICATE_AXIS] for job in jobs if REPLICATE_AXIS in job.overrides)
    )
    lines = [
        f"# Ablation report: {sweep_dir}",
        "",
        f"- swept: {', '.join(variant_axes) or 'nothing'}; seeds: {', '.join(seeds) or 'one per job'}",
        f"- fixed: {' '.join(f'{k}={v}' for k, v in fixed.items()) or 'defaults only'}",
        f"- epochs: {', '.join(map(str, epochs)) or '–'}",
        f"- jobs: {len(jobs)} ({', '.join(f'{counts[s]} {s}' for s in STATUSES)})",
        "",
        "Test accuracy and error in %, mean ± std over the finished seeds; n = finished jobs.",
        "",
    ]
    header = [*variant_axes, "n", "test acc %", "test error %", "train s", "failed"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        seconds, _ = row.stats("train_seconds")
        cells = [
            *row.variant,
            str(len(row.finished)),
            percent(*row.stats("test/acc")),
            percent(*row.stats("test/error")),
            f"{seconds:.0f}" if seconds is not None else "–",
            str(sum(job.status == "failed" for job in row.jobs)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for status, title in (("failed", "Failed jobs"), ("unfinished", "Unfinished jobs")):
        listed = [job for job in jobs if job.status == status]
        if listed:
            lines += ["", f"## {title}", ""]
            for job in listed:
                overrides = " ".join(f"{axis}={job.overrides.get(axis, '')}" for axis in axes)
                note = f": {job.error}" if job.error else ""
                lines.append(f"- `{relative(job, sweep_dir)}` ({overrides}){note}")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, axes: list[str], rows: list[Row]) -> None:
    variant_axes = [axis for axis in axes if axis != REPLICATE_AXIS]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                *variant_axes,
                "n",
                "failed",
                "test_acc_mean",
                "test_acc_std",
                "test_error_mean",
                "test_error_std",
                "train_seconds_mean",
            ]
        )
        for row in rows:
            acc, error, seconds = row.stats("test/acc"), row.stats("test/error"), row.stats("train_seconds")
            writer.writerow([
                *row.variant, len(row.finished), sum(job.status == "failed" for job in row.jobs),
                *acc, *error, seconds[0],
            ])  # fmt: skip


def plot(path: Path, axes: list[str], rows: list[Row]) -> None:
    """Test error per variant: every seed as a dot, the mean +- std as a bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [row for row in rows if row.finished]
    labels = [", ".join(row.variant) or "all jobs" for row in shown]
    figure, ax = plt.subplots(figsize=(7, 1.2 + 0.35 * len(shown)))
    for y, row in enumerate(shown):
        errors = [100 * e for e in row.values("test/error")]
        mean, std = row.stats("test/error")
        ax.errorbar(100 * mean, y, xerr=100 * (std or 0), fmt="s", color="black", capsize=3)
        ax.scatter(errors, [y] * len(errors), color="tab:blue", alpha=0.6, s=18, zorder=3)
    ax.set_yticks(range(len(shown)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("test error % (dots: seeds; square and bar: mean ± std)")
    ax.set_title(" x ".join(a for a in axes if a != REPLICATE_AXIS) or "sweep")
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120, format="png")
    plt.close(figure)


def write_report(sweep_dir: Path, out_dir: Path | None = None) -> dict[str, Path]:
    """Read the sweep, write report.md, report.csv and report.png; returns their paths."""
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir or sweep_dir)
    jobs = load_jobs(sweep_dir)
    axes, fixed = swept_axes(jobs)
    rows = group(jobs, [axis for axis in axes if axis != REPLICATE_AXIS])
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"md": out_dir / "report.md", "csv": out_dir / "report.csv", "png": out_dir / "report.png"}
    write_whole(paths["md"], markdown(sweep_dir, jobs, axes, fixed, rows))
    save_whole(paths["csv"], lambda partial: write_csv(partial, axes, rows))
    save_whole(paths["png"], lambda partial: plot(partial, axes, rows))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lenet5.report", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder, e.g. outputs/multirun/<date>/<time>")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the sweep folder)")
    args = parser.parse_args(argv)
    try:
        paths = write_report(args.sweep_dir, args.out)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(paths["md"].read_text(), end="")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
