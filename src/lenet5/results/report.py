"""The ablation report of a sweep, from its job folders alone (no W&B):

    python -m lenet5.report outputs/multirun/<sweep>

The swept axes are the overrides whose values differ between jobs; seeds are the replicates.
Writes report.md (mean +- std over seeds per variant), report.csv and report.png into the sweep
folder. Failed and unfinished jobs are listed, never averaged in, and so are the jobs the sweep's
multirun.yaml lists that have no folder (missing). A single run's folder, a folder of several
sweeps, and a --baseline or --tune that names no row or axis are refused in one line.
"""

import argparse
import csv
import sys
from pathlib import Path

from lenet5.atomic import save_whole, write_whole
from lenet5.errors import UserError
from lenet5.results.report_figures import plot_curves, plot_errors
from lenet5.results.report_jobs import REPLICATE_AXIS, Job, load_jobs, parse_overrides
from lenet5.results.study_table import Row, build_rows, edge_note, flag
from lenet5.run_files import REPORT
from lenet5.serving.paths import same_file

TUNE_AXIS = "lr_scale"  # swept candidates of which each row keeps its best on val/acc
NO_TUNE = "none"  # --tune none: every value of every axis is a row of its own
STATUSES = ("finished", "failed", "unfinished", "missing")


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


def percent(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def difference(row: Row) -> str:
    if row.difference is None:
        return "–"  # no seed shared with the baseline
    mean, half, n = row.difference
    interval = f" [{100 * (mean - half):+.2f}, {100 * (mean + half):+.2f}]" if n > 1 else ""
    return f"{100 * mean:+.2f}{interval}"


def relative(job: Job, sweep_dir: Path) -> str:
    return str(job.path.relative_to(sweep_dir)) or "."


def describe(job: Job, axes: list[str]) -> str:
    return " ".join(f"{axis}={job.overrides.get(axis, '')}" for axis in axes)


def markdown(
    sweep_dir: Path,
    jobs: list[Job],
    axes: list[str],
    fixed: dict[str, str],
    rows: list[Row],
    tune: str | None,
) -> str:
    counts = {status: sum(job.status == status for job in jobs) for status in STATUSES}
    shown = [status for status in STATUSES if counts[status] or status != "missing"]
    epochs = sorted({job.metrics.get("epochs") for job in jobs if job.status == "finished"} - {None})
    variant_axes = [axis for axis in axes if axis not in (REPLICATE_AXIS, tune)]
    seeds = list(
        dict.fromkeys(job.overrides[REPLICATE_AXIS] for job in jobs if REPLICATE_AXIS in job.overrides)
    )
    lines = [
        f"# Ablation report: {sweep_dir}",
        "",
        f"- swept: {', '.join(variant_axes) or 'nothing'}; seeds: {', '.join(seeds) or 'one per job'}",
        f"- fixed: {' '.join(f'{k}={v}' for k, v in fixed.items()) or 'defaults only'}",
        f"- epochs: {', '.join(map(str, epochs)) or '–'}",
        f"- jobs: {len(jobs)} ({', '.join(f'{counts[s]} {s}' for s in shown)})",
    ]
    if tune:
        lines.append(
            f"- {tune}: per row, the value with the best mean val/acc (chosen on the hold-out, not on test)"
        )
    lines += [
        "",
        "Test error in %, mean ± std over the counted seeds (n); Δ: the row's test error minus the "
        "baseline's (the first row), in percentage points, mean over the seeds both share and its "
        "95% interval (Student's t). Runs that diverged or stayed at chance (test acc <= 20%) are "
        "flagged and kept out of the means.",
        "",
    ]
    header = [
        *variant_axes,
        *([tune] if tune else []),
        "n",
        "test error %",
        "Δ error (95% CI)",
        "test acc %",
        "val acc %",
        "train s",
        "flagged",
        "failed",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        seconds, _ = row.stats("train_seconds")
        cells = [
            *row.variant,
            *([f"{row.tuned} ({row.edge})" if row.edge else row.tuned] if tune else []),
            str(len(row.counted)),
            percent(*row.stats("test/error")),
            difference(row) if row is not rows[0] else "baseline",
            percent(*row.stats("test/acc")),
            percent(*row.stats("val/acc")),
            f"{seconds:.0f}" if seconds is not None else "–",
            row.flag_counts() or "–",
            str(sum(job.status == "failed" for job in row.chosen)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += edge_note(rows, tune)
    flagged = [job for row in rows for job in row.flagged if job.status == "finished"]
    if flagged:
        lines += ["", "## Flagged runs (not averaged)", ""]
        lines += [
            f"- `{relative(j, sweep_dir)}` ({describe(j, axes)}): {flag(j)}, test acc "
            f"{100 * float(j.metrics.get('test/acc', float('nan'))):.2f}%"
            for j in flagged
        ]
    for status, title in (
        ("failed", "Failed jobs"),
        ("unfinished", "Unfinished jobs"),
        ("missing", "Missing jobs"),
    ):
        listed = [job for job in jobs if job.status == status]
        if listed:
            lines += ["", f"## {title}", ""]
            for job in listed:
                note = f": {job.error}" if job.error else ""
                # A trial that never ran has no values yet: Optuna picks them as it goes.
                values = (
                    describe(job, axes) if job.overrides or status != "missing" else "values never chosen"
                )
                lines.append(f"- `{relative(job, sweep_dir)}` ({values}){note}")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, variant_axes: list[str], rows: list[Row], tune: str | None) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                *variant_axes,
                *([tune] if tune else []),
                "n",
                "failed",
                "flagged",
                "test_acc_mean",
                "test_acc_std",
                "test_error_mean",
                "test_error_std",
                "diff_error_mean",
                "diff_error_ci95",
                "val_acc_mean",
                "train_seconds_mean",
                *(["tuned_at_edge"] if tune else []),
            ]
        )
        for row in rows:
            acc, error, seconds = row.stats("test/acc"), row.stats("test/error"), row.stats("train_seconds")
            diff = row.difference or ("", "", 0)
            writer.writerow(
                [
                    *row.variant,
                    *([row.tuned] if tune else []),
                    len(row.counted),
                    sum(job.status == "failed" for job in row.chosen),
                    row.flag_counts(),
                    *acc,
                    *error,
                    diff[0],
                    diff[1],
                    row.stats("val/acc")[0],
                    seconds[0],
                    *([row.edge] if tune else []),
                ]
            )


def write_jobs_csv(path: Path, jobs: list[Job], axes: list[str], rows: list[Row], sweep_dir: Path) -> None:
    """Every job, chosen or not: the raw numbers behind the table."""
    chosen = {id(job) for row in rows for job in row.chosen}
    keys = ("val/acc", "test/acc", "test/error", "epochs", "train_seconds")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["job", *axes, "status", "flag", "chosen", *keys])
        for job in jobs:
            writer.writerow(
                [
                    relative(job, sweep_dir),
                    *(job.overrides.get(a, "") for a in axes),
                    job.status,
                    flag(job) if job.status != "missing" else "missing",
                    id(job) in chosen,
                    *(job.metrics.get(k, "") for k in keys),
                ]
            )


def write_report(
    sweep_dir: Path, out_dir: Path | None = None, tune: str | None = None, baseline: str | None = None
) -> dict[str, Path]:
    """Read the sweep, write report.md, report.csv, jobs.csv, report.png and curves.png. ``tune``:
    a swept axis, ``none``, or None for lr_scale where it is swept."""
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir or sweep_dir)
    jobs, missing = load_jobs(sweep_dir)
    for job in jobs:  # a job folder holds its own curves.png, which the report's would replace
        if same_file(out_dir, job.path):
            raise UserError(f"--out {out_dir}: is the job folder {job.path}; give a folder of its own")
    axes, fixed = swept_axes(jobs)
    tune = choose_tune(tune, axes)
    variant_axes = [axis for axis in axes if axis not in (REPLICATE_AXIS, tune)]
    base = parse_baseline(baseline, variant_axes, jobs) if baseline else None
    rows = build_rows(jobs, variant_axes, tune, base)
    if base is not None:  # the baseline first: it is the row every difference refers to
        rows.sort(key=lambda row: row.variant != base)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in REPORT.items()}
    listed = [*jobs, *missing]
    # Each file whole or not at all (lenet5.atomic): a full disk keeps the previous report.
    write_whole(paths["md"], markdown(sweep_dir, listed, axes, fixed, rows, tune))
    save_whole(paths["csv"], lambda partial: write_csv(partial, variant_axes, rows, tune))
    save_whole(paths["jobs"], lambda partial: write_jobs_csv(partial, listed, axes, rows, sweep_dir))
    save_whole(paths["png"], lambda partial: plot_errors(partial, variant_axes, rows))
    save_whole(paths["curves"], lambda partial: plot_curves(partial, rows))
    if missing:
        names = ", ".join(relative(job, sweep_dir) for job in missing)
        print(f"warning: {len(missing)} of {len(listed)} jobs have no folder (never started): {names}",
              file=sys.stderr)  # fmt: skip
    return paths


def choose_tune(tune: str | None, axes: list[str]) -> str | None:
    """The axis each row keeps its best value of: the one named, none, or lr_scale if swept."""
    if tune is None:
        return TUNE_AXIS if TUNE_AXIS in axes else None
    if tune == NO_TUNE:
        return None
    allowed = [axis for axis in axes if axis != REPLICATE_AXIS]
    if tune not in allowed:
        raise UserError(
            f"--tune {tune}: not a swept axis to tune; give one of: {', '.join([*allowed, NO_TUNE])}"
        )
    return tune


def parse_baseline(text: str, variant_axes: list[str], jobs: list[Job]) -> tuple[str, ...]:
    """The one row whose values match every ``key=value`` of ``text``."""
    given = parse_overrides(text.split())
    unknown = sorted(set(given) - set(variant_axes))
    if unknown:
        raise UserError(
            f"--baseline {text!r}: {', '.join(unknown)} is not swept; swept: "
            f"{', '.join(variant_axes) or 'nothing (one row, no baseline to choose)'}"
        )
    variants = dict.fromkeys(tuple(job.overrides.get(axis, "") for axis in variant_axes) for job in jobs)
    matches = [
        variant
        for variant in variants
        if all(variant[variant_axes.index(key)] == value for key, value in given.items())
    ]
    if len(matches) != 1:
        rows = "; ".join(
            " ".join(f"{a}={v}" for a, v in zip(variant_axes, variant, strict=True)) for variant in variants
        )
        problem = "no row matches" if not matches else f"{len(matches)} rows match"
        raise UserError(f"--baseline {text!r}: {problem}; the rows: {rows}")
    return matches[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lenet5.report", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder, e.g. outputs/multirun/<date>/<time>")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the sweep folder)")
    parser.add_argument(
        "--tune",
        default=None,
        help=f"the axis picked per row on val/acc, or {NO_TUNE} (default: {TUNE_AXIS} where it is swept)",
    )
    parser.add_argument(
        "--baseline", default=None, help="the reference row, e.g. 'variant=baseline' (default: first row)"
    )
    args = parser.parse_args(argv)
    try:
        paths = write_report(args.sweep_dir, args.out, args.tune, args.baseline)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(paths["md"].read_text(), end="")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
