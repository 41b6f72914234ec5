"""The jobs of one sweep, as the report reads them: each job folder's overrides and outcome, and
the jobs its ``multirun.yaml`` lists that have no folder at all (never started: a sweep killed
early, a launcher that lost them), counted as missing.

A folder is refused when it is not one sweep: a single run's folder (the report compares jobs),
or a folder holding several sweeps or jobs that do not set the same overrides (their rows would
have empty cells on the axes the other sweep varied).
"""

import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lenet5.errors import UserError, first_line
from lenet5.run_files import FAILURE, HYDRA_CONFIG, HYDRA_OVERRIDES, METRICS, SWEEP_FILE
from lenet5.sweep import failed, job_dirs

REPLICATE_AXIS = "seed"
DEFAULT_SUBDIR = "${hydra.job.num}"


@dataclass
class Job:
    path: Path
    overrides: dict[str, str]
    status: str  # finished, failed, unfinished; missing: listed in multirun.yaml, no folder
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""


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
        overrides = parse_overrides(OmegaConf.to_container(OmegaConf.load(path / HYDRA_OVERRIDES)))
        return _load_job(path, overrides)
    except Exception as error:  # noqa: BLE001 - yaml, json and bad values: the same to the reader
        text = first_line(error)
        print(f"warning: {path}: skipped, a job file is damaged ({text})", file=sys.stderr)
        return Job(path, overrides, "failed", error=f"damaged job file: {text}")


def _load_job(path: Path, overrides: dict[str, str]) -> Job:
    if failed(path):
        failure = json.loads((path / FAILURE).read_text())
        return Job(path, overrides, "failed", error=f"{failure['error']}: {failure['message']}")
    if (path / METRICS).is_file():
        metrics = json.loads((path / METRICS).read_text())
        if not isinstance(metrics, dict) or not all(
            isinstance(metrics.get(k, 0.0), int | float) for k in ("test/acc", "test/error", "train_seconds")
        ):
            raise ValueError(f"{METRICS} does not hold the metrics of a run")
        if "test/error" not in metrics and "test/acc" in metrics:
            metrics["test/error"] = 1.0 - metrics["test/acc"]
        return Job(path, overrides, "finished", metrics=metrics)
    return Job(path, overrides, "unfinished")


def per_seed_jobs(job: Job) -> list[Job]:
    """A ``seeds=K`` job trained K seeds together: it counts as K runs, one per seed, each with
    its own metrics and an equal share of the job's training time."""
    per_seed = job.metrics.get("per_seed")
    if job.status != "finished" or not per_seed:
        return [job]
    shared = {key: job.metrics[key] for key in ("epochs", "train_seconds") if key in job.metrics}
    if "train_seconds" in shared:
        shared["train_seconds"] /= len(per_seed)
    overrides = {key: value for key, value in job.overrides.items() if key != "seeds"}
    return [
        Job(job.path, {**overrides, REPLICATE_AXIS: str(entry["seed"])}, "finished", {**shared, **entry})
        for entry in per_seed
    ]


def sweep_root(job: Path, top: Path) -> Path | None:
    """The folder of the multirun ``job`` belongs to: the nearest one up to ``top`` holding
    multirun.yaml (None for hand-made sweeps without one)."""
    for folder in [job, *job.parents]:
        if (folder / SWEEP_FILE).is_file():
            return folder
        if folder == top:
            return None
    return None


def check_one_sweep(sweep_dir: Path, found: list[Path], jobs: list[Job]) -> None:
    if (sweep_dir / HYDRA_CONFIG).is_file():
        raise UserError(
            f"{sweep_dir} is a single run's folder (it holds {HYDRA_CONFIG}; its numbers are "
            f"in its {METRICS}): the report compares the jobs of a multirun, give that "
            "multirun's folder (outputs/multirun/<date>/<time>)"
        )
    roots = list(dict.fromkeys(sweep_root(path, sweep_dir) for path in found))
    if len(roots) > 1:
        named = ", ".join(str(root or "(no multirun.yaml)") for root in roots[:3])
        more = f" and {len(roots) - 3} more" if len(roots) > 3 else ""
        raise UserError(
            f"{sweep_dir} holds {len(roots)} sweeps ({named}{more}): report each on its own, "
            f"e.g. python -m lenet5.report {roots[0] or roots[1]}"
        )
    readable = [job for job in jobs if not job.error.startswith("damaged job file")]
    for job in readable[1:]:
        if set(job.overrides) != set(readable[0].overrides):
            pair = (readable[0], job)
            differences = "; ".join(filter(None, (only_in(a, b, sweep_dir) for a, b in (pair, pair[::-1]))))
            raise UserError(
                f"{sweep_dir}: its jobs come from different sweeps ({differences}): "
                "give the folder of one sweep"
            )


def only_in(job: Job, other: Job, sweep_dir: Path) -> str:
    keys = sorted(set(job.overrides) - set(other.overrides))
    if not keys:
        return ""
    shown = ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")
    name, other_name = (str(j.path.relative_to(sweep_dir)) for j in (job, other))
    return f"job {name} sets {shown}, job {other_name} does not"


def sweep_record(root: Path) -> dict[str, Any] | None:
    """multirun.yaml's ``hydra`` node as plain data, interpolations left as written."""
    try:
        return OmegaConf.to_container(OmegaConf.load(root / SWEEP_FILE), resolve=False)["hydra"]
    except Exception as error:  # noqa: BLE001 - a damaged or foreign multirun.yaml: no count
        print(f"warning: {root / SWEEP_FILE}: jobs not counted ({first_line(error)})", file=sys.stderr)
        return None


def expected_jobs(hydra: dict[str, Any]) -> list[list[str] | None]:
    """Every job the sweep launches, in job-number order: its overrides, as Hydra's basic sweeper
    expands them (None where the sweeper picks them as it goes, as Optuna does); [] when the
    record does not say."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = hydra.get("sweeper") or {}
    if str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
        task = list((hydra.get("overrides") or {}).get("task") or [])
        parsed = OverridesParser.create().parse_overrides([*params, *task])
        # The basic sweeper's grid: the product of every override's values, in command-line order.
        choices = [
            [f"{o.get_key_element()}={value}" for value in o.sweep_string_iterator()]
            if o.is_discrete_sweep()
            else [f"{o.get_key_element()}={o.get_value_element_as_str()}"]
            for o in parsed
        ]
        return [list(job) for job in itertools.product(*choices)]
    trials = sweeper.get("n_trials")
    return [None] * trials if isinstance(trials, int) and trials > 0 else []


def missing_jobs(root: Path, found: list[Job]) -> list[Job]:
    """The jobs multirun.yaml lists that have no folder. Job folders are named by job number
    (Hydra's default subdir); under another subdir a job is recognised by its overrides."""
    hydra = sweep_record(root)
    try:
        expected = expected_jobs(hydra) if hydra is not None else []
    except Exception as error:  # noqa: BLE001 - a sweep syntax this reading does not know
        print(f"warning: {root / SWEEP_FILE}: jobs not counted ({first_line(error)})", file=sys.stderr)
        expected = []
    if not expected:
        return []
    if str((hydra.get("sweep") or {}).get("subdir")) == DEFAULT_SUBDIR:
        present = {job.path.relative_to(root).as_posix() for job in found}
        numbers = [num for num in range(len(expected)) if str(num) not in present]
    else:
        ran = [sorted(f"{k}={v}" for k, v in job.overrides.items()) for job in found]
        numbers = []
        for num, overrides in enumerate(expected):
            key = sorted(str(line).lstrip("+~") for line in overrides or [])
            if overrides is not None and key in ran:
                ran.remove(key)
            else:
                numbers.append(num)
        numbers = numbers[: max(0, len(expected) - len(found))]
    return [
        Job(root / str(num), parse_overrides(expected[num] or []), "missing", error="no job folder")
        for num in numbers
    ]


def load_jobs(sweep_dir: Path) -> tuple[list[Job], list[Job]]:
    """(every run of the sweep, a packed job as one per seed; the jobs that have no folder)."""
    if not sweep_dir.is_dir():
        problem = "a file, not a folder" if sweep_dir.exists() else "no such folder"
        raise UserError(f"{sweep_dir}: {problem}; give a multirun folder (outputs/multirun/...)")
    found = job_dirs(sweep_dir)
    loaded = [load_job(path) for path in found]
    check_one_sweep(sweep_dir, found, loaded)
    root = sweep_root(found[0], sweep_dir) if found else sweep_dir
    missing = missing_jobs(root, loaded) if root and (root / SWEEP_FILE).is_file() else []
    if not found:
        listed = f"; its {SWEEP_FILE} lists {len(missing)} jobs, none started" if missing else ""
        raise UserError(
            f"{sweep_dir} holds no job folders (none has {HYDRA_CONFIG}){listed}; give the "
            f"folder of a multirun (python train.py -m ...), such as outputs/multirun/<date>/<time>"
        )
    return [run for job in loaded for run in per_seed_jobs(job)], missing
