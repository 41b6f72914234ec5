"""The job-level rows of the speed benchmark (speed.py prints them after the per-epoch rows):
what a whole train.py job costs beyond its epochs, measured from outside the process.

- the fixed costs of the jobs of a basic-launcher multirun after the first (imports are paid
  once per process, so these are what every further job of a sweep pays);
- ``experiment=fast``: its training seconds and test accuracy;
- train.py's CPU time per training epoch on one thread at a small batch, for the framework's
  work per step (against the hand loop's, measured in speed.py the same way);
- ``seeds=K`` (K seeds trained together in one run) against K separate 1-epoch runs, both as K
  train.py processes and as a K-job multirun (which pays the imports once);
- the activation x pooling grid of 1-epoch jobs, basic launcher against joblib (``--quick``:
  the K seeds' multirun).

Every job is a ``train.py`` subprocess, so each row times the real command line, imports and
all; a failed job stops the benchmark with its log's tail rather than printing a made-up row.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "model=modern"
ACTIVATIONS = ("sigmoid", "tanh", "scaled_tanh", "relu")
POOLINGS = ("avg", "max", "trainable")
GRID = [f"model/activation={','.join(ACTIVATIONS)}", f"model/pooling={','.join(POOLINGS)}"]


def seed_list(jobs: int) -> str:
    """Hydra's sweep over seeds 0 to ``jobs`` - 1."""
    return ",".join(str(seed) for seed in range(jobs))


def run_logged(command: list[str], log: Path, env: dict[str, str] | None = None) -> float:
    """Run to completion with output to ``log``; wall seconds. A failure shows the log's tail."""
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        sys.exit(f"{' '.join(command)} failed ({code}):\n{log.read_text()[-3000:]}")
    return time.perf_counter() - started


def with_timer_importable() -> dict[str, str]:
    """The environment with this folder on PYTHONPATH, so that train.py's Hydra can instantiate
    ``epoch_timer.EpochTimer`` as a callback (``+callbacks.epoch_timer._target_=...``)."""
    path = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def multirun_fixed_costs(data: list[str], work: Path, jobs: int = 3) -> tuple[dict[str, float], float, float]:
    """A basic-launcher multirun of ``jobs`` 1-epoch jobs (seeds 0, 1, ...) in one process: the
    fixed costs of its jobs after the first (imports are paid once per process), medians, the
    median 1-epoch job's wall time, and the whole multirun's wall seconds (the K separate runs
    of ``packed`` when K = ``jobs``). A job starts where the one before it wrote its last file."""
    folder = work / "fixed"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        MODEL,
        "trainer.max_epochs=1",
        f"seed={seed_list(jobs)}",
        f"hydra.sweep.dir={folder}",
        "+callbacks.epoch_timer._target_=epoch_timer.EpochTimer",
        "+callbacks.epoch_timer.path=${hydra:runtime.output_dir}/timings.json",
        *data,
    ]
    wall = run_logged(command, work / "fixed.log", env=with_timer_importable())
    ends = [max(f.stat().st_mtime for f in (folder / str(n)).rglob("*") if f.is_file()) for n in range(jobs)]
    parts: dict[str, list[float]] = {}
    walls = []
    for job in range(1, jobs):
        t = json.loads((folder / str(job) / "timings.json").read_text())
        fit = t["fit_end"] - t["first_step"]
        costs = {
            "start-up": t["first_step"] - ends[job - 1],
            "validation": t["validation"],
            "checkpoints and rest of fit": fit - sum(t["epochs"]) - t["validation"],
            "evaluation after fit": t["test_end"] - t["fit_end"],
            "pictures and metrics": ends[job] - t["test_end"],
        }
        for name, seconds in costs.items():
            parts.setdefault(name, []).append(seconds)
        walls.append(ends[job] - ends[job - 1])
    return {name: statistics.median(values) for name, values in parts.items()}, statistics.median(walls), wall


def cpu_epochs(data: list[str], epochs: int, work: Path) -> list[float]:
    """train.py's CPU seconds per training epoch on one intra-op thread (``data`` sets the
    batch): with one thread, CPU time is the work done, however busy the machine is."""
    folder = work / "cpu_epochs"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        MODEL,
        f"trainer.max_epochs={epochs}",
        f"hydra.run.dir={folder}",
        "+callbacks.epoch_timer._target_=epoch_timer.EpochTimer",
        f"+callbacks.epoch_timer.path={folder / 'timings.json'}",
        *data,
    ]
    run_logged(command, work / "cpu_epochs.log", env={**with_timer_importable(), "OMP_NUM_THREADS": "1"})
    return json.loads((folder / "timings.json").read_text())["cpu_epochs"]


def fast_recipe(data: list[str], work: Path) -> tuple[float, float]:
    """Training seconds (train.py's own, fit with validation) and test accuracy."""
    folder = work / "fast"
    command = [sys.executable, str(REPO / "train.py"), "experiment=fast", f"hydra.run.dir={folder}", *data]
    run_logged(command, work / "fast.log")
    metrics = json.loads((folder / "metrics.json").read_text())
    return metrics["train_seconds"], metrics["test/acc"]


def packed(
    data: list[str], seeds: int, work: Path, in_multirun: float | None = None
) -> tuple[float, float, float]:
    """Wall seconds of ``seeds=K`` (one run), of K separate train.py processes, and of K
    separate runs as one basic-launcher multirun (sharing one process's imports), 1 epoch each.
    ``in_multirun``: the seconds of that very multirun when it has already run
    (``multirun_fixed_costs`` with K jobs: the same command plus a timing callback)."""
    script, common = [sys.executable, str(REPO / "train.py")], [MODEL, "trainer.max_epochs=1", *data]
    command = [*script, *common, f"seeds={seeds}", f"hydra.run.dir={work / 'packed'}"]
    together = run_logged(command, work / "packed.log")
    processes = sum(
        run_logged(
            [*script, *common, f"seed={seed}", f"hydra.run.dir={work / f'single{seed}'}"], work / "single.log"
        )
        for seed in range(seeds)
    )
    if in_multirun is None:
        command = [*script, "-m", *common, f"seed={seed_list(seeds)}", f"hydra.sweep.dir={work / 'separate'}"]
        in_multirun = run_logged(command, work / "separate.log")
    return together, processes, in_multirun


def grid(
    data: list[str], work: Path, axes: list[str], jobs: int, basic: float | None = None
) -> tuple[int, float, float]:
    """(jobs, basic seconds, joblib seconds) for a grid of 1-epoch jobs (``axes``: its sweep
    overrides, e.g. ``GRID``). ``basic``: the seconds of the same sweep through the basic
    launcher when that has already run."""
    sweep = [MODEL, *axes, "trainer.max_epochs=1", *data]
    launchers = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}
    seconds = {} if basic is None else {"basic": basic}
    for name in [name for name in launchers if name not in seconds]:
        folder = work / f"grid_{name}"
        command = [
            sys.executable,
            str(REPO / "train.py"),
            "-m",
            *sweep,
            *launchers[name],
            f"hydra.sweep.dir={folder}",
        ]
        seconds[name] = run_logged(command, work / f"grid_{name}.log")
        done = len(list(folder.glob("*/metrics.json")))
        if done != jobs:
            sys.exit(f"{name} grid: {done} of {jobs} jobs wrote metrics.json")
    return jobs, seconds["basic"], seconds["joblib"]


def print_rows(
    in_multirun: dict[str, float],
    job_seconds: float,
    fast: tuple[float, float],
    grid_seconds: tuple[int, float, float],
    seeds: int,
    packed_seconds: tuple[float, float, float],
) -> None:
    """The job-level rows, in the order the README quotes them."""
    fast_seconds, fast_accuracy = fast
    jobs, basic, joblib = grid_seconds
    together, processes, multirun = packed_seconds
    total = sum(in_multirun.values())
    print(
        "fixed costs per 1-epoch job in a multirun (jobs after the first, medians): "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in in_multirun.items())
        + f"; {total:.2f} s = {total / job_seconds:.0%} of the job's {job_seconds:.2f} s   (target <= 20%)"
    )
    print(
        f"experiment=fast: {fast_seconds:.2f} s of training, test accuracy {fast_accuracy:.2%}   "
        f"(targets <= 8 s, >= 99.0%)"
    )
    print(
        f"{jobs}-job grid, 1 epoch each: basic launcher {basic:.1f} s, joblib (n_jobs=2) {joblib:.1f} s, "
        f"speed-up {basic / joblib:.2f}x"
    )
    print(
        f"seeds={seeds}, 1 epoch: one run {together:.1f} s; {seeds} separate runs: {seeds} processes "
        f"{processes:.1f} s (ratio {together / processes:.2f}), one {seeds}-job multirun {multirun:.1f} s "
        f"(ratio {together / multirun:.2f}); {together / (processes / seeds):.1f}x one seed's process"
        "   (targets: CPU <= 0.6 at seeds=4; H100 seeds=8 <= 2x one seed)"
    )
