"""The statistics of a study table: one row per variant, its learning rate picked on the hold-out,
flagged runs kept out of the means but listed, and the difference to the baseline paired by seed.

A row's learning rate (the ``lr_scale`` candidates, or any axis passed as ``tune``) is the one
whose finished, unflagged seeds have the best mean val/acc: chosen without looking at test.
A row whose choice is the largest or the smallest of its numeric candidates is marked (``edge``):
its best rate may lie outside the grid, and its row compares a rate that was not found.
The difference to the baseline uses the seeds both rows share, so the seed-to-seed spread that
is common to both (initialisation, data order) cancels; its 95% interval is Student's t.
"""

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

CHANCE_ACCURACY = 0.2  # ten classes: a run at or below twice chance learned nothing usable
DIVERGED_ERRORS = ("FloatingPointError",)
# Two-sided 95% quantiles of Student's t by degrees of freedom (then 1.96).
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
T_975 |= {10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000, 120: 1.980}


def t_quantile(dof: int) -> float:
    """The table's value at the largest tabulated df <= dof (conservative between entries)."""
    return T_975[max(d for d in T_975 if d <= dof)] if dof <= 120 else 1.960


def flag(job: Any) -> str:
    """'' for a run that counts; else why it is kept out of the means."""
    if job.status == "failed":
        return "diverged" if job.error.split(":")[0] in DIVERGED_ERRORS else "failed"
    if job.status != "finished":
        return "unfinished"
    acc = job.metrics.get("test/acc")
    if (
        acc is None
        or not math.isfinite(float(acc))
        or not math.isfinite(float(job.metrics.get("test/loss", 0)))
    ):
        return "diverged"
    return "chance" if float(acc) <= CHANCE_ACCURACY else ""


@dataclass
class Row:
    variant: tuple[str, ...]
    jobs: list[Any]  # every job of the variant, all learning rates
    tuned: str = ""  # the chosen value of the tuning axis ('' when nothing is tuned)
    edge: str = ""  # "largest" or "smallest" when ``tuned`` is at that end of the candidates
    chosen: list[Any] = field(default_factory=list)  # the chosen rate's jobs
    difference: tuple[float, float, int] | None = None  # mean, half-width of the 95% CI, n

    @property
    def counted(self) -> list[Any]:
        return [job for job in self.chosen if not flag(job)]

    @property
    def flagged(self) -> list[Any]:
        return [job for job in self.chosen if flag(job) and flag(job) != "unfinished"]

    def values(self, key: str) -> list[float]:
        return [float(job.metrics[key]) for job in self.counted if key in job.metrics]

    def stats(self, key: str) -> tuple[float | None, float | None]:
        """(mean, sample std) over the counted seeds; None where there are too few values."""
        values = self.values(key)
        mean = statistics.fmean(values) if values else None
        std = statistics.stdev(values) if len(values) > 1 else None
        return mean, std

    def flag_counts(self) -> str:
        counts: dict[str, int] = {}
        for job in self.flagged:
            counts[flag(job)] = counts.get(flag(job), 0) + 1
        return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def mean_val_acc(jobs: list[Any]) -> float:
    values = [float(job.metrics["val/acc"]) for job in jobs if not flag(job) and "val/acc" in job.metrics]
    return statistics.fmean(values) if values else -math.inf


def choose_rate(row: Row, tune: str | None) -> None:
    """Keep the tuning value with the best mean val/acc (ties: the first listed)."""
    if not tune:
        row.chosen = list(row.jobs)
        return
    candidates: dict[str, list[Any]] = {}
    for job in row.jobs:
        candidates.setdefault(job.overrides.get(tune, ""), []).append(job)
    row.tuned = max(candidates, key=lambda value: mean_val_acc(candidates[value]))
    row.chosen = candidates[row.tuned]
    row.edge = grid_edge(row.tuned, list(candidates))


def grid_edge(chosen: str, candidates: list[str]) -> str:
    """'largest' / 'smallest' when ``chosen`` is that end of two or more numeric candidates."""
    try:
        values = {float(value) for value in candidates}
        value = float(chosen)
    except ValueError:
        return ""  # not a grid of numbers (a tuned axis of names has no edge)
    if len(values) < 2:
        return ""
    return "largest" if value == max(values) else "smallest" if value == min(values) else ""


def seed_of(job: Any) -> str:
    return job.overrides.get("seed", str(job.metrics.get("seed", "")))


def paired_difference(row: Row, baseline: Row, key: str = "test/error") -> tuple[float, float, int] | None:
    """Mean of (row - baseline) over the shared seeds and the half-width of its 95% interval."""
    base = {seed_of(job): float(job.metrics[key]) for job in baseline.counted if key in job.metrics}
    pairs = [float(job.metrics[key]) - base[seed_of(job)] for job in row.counted if seed_of(job) in base]
    if not pairs:
        return None
    mean = statistics.fmean(pairs)
    if len(pairs) < 2:
        return mean, math.nan, 1
    return mean, t_quantile(len(pairs) - 1) * statistics.stdev(pairs) / math.sqrt(len(pairs)), len(pairs)


def build_rows(
    jobs: list[Any], variant_axes: list[str], tune: str | None, baseline: tuple | None
) -> list[Row]:
    """Rows in order of first appearance; the baseline (default: the first row) gets no difference."""
    rows: dict[tuple[str, ...], Row] = {}
    for job in jobs:
        variant = tuple(job.overrides.get(axis, "") for axis in variant_axes)
        rows.setdefault(variant, Row(variant, [])).jobs.append(job)
    for row in rows.values():
        choose_rate(row, tune)
    ordered = list(rows.values())
    reference = rows.get(baseline) if baseline is not None else (ordered[0] if ordered else None)
    for row in ordered:
        if reference is not None and row is not reference:
            row.difference = paired_difference(row, reference)
    return ordered


def edge_note(rows: list[Row], tune: str | None) -> list[str]:
    """The rows whose chosen rate is an end of its candidates: their best may lie beyond the grid."""
    at_edge = [row for row in rows if row.edge]
    if not tune or not at_edge:
        return []
    ends = sorted({row.edge for row in at_edge})
    return [
        "",
        f"## {tune} at the edge of its candidates",
        "",
        f"{len(at_edge)} of {len(rows)} rows chose the {' or '.join(ends)} {tune} tried: their best rate "
        f"may lie outside the grid, so their errors (and Δ) are upper bounds of what the variant can do at "
        f"a tuned rate. Widen the grid ({tune}) past that end to find it.",
        "",
        *(f"- {' '.join(row.variant) or 'the row'}: {tune}={row.tuned} ({row.edge})" for row in at_edge),
    ]
