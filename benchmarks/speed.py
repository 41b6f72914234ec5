"""Where the training time goes, measured in one run on this machine and the same MNIST:

1. seconds per training epoch of the same LeNet-5 (model=modern: ReLU, max pooling), Adam,
   one-cycle and batch size, three ways: (a) a hand-written loop over in-memory tensors, also
   with the network in channels-last memory, (b) this framework's train.py, (c) the common
   pipeline, torchvision per-sample transforms and a 2-worker DataLoader inside Lightning; and
   train.py's start-up time to its first step and fixed costs per job (start-up, validation,
   what follows the fit);
2. the training seconds and test accuracy of ``experiment=fast``;
3. a 4 activations x 3 poolings grid of 1-epoch jobs, basic launcher against joblib;
4. ``seeds=K`` (K seeds trained together in one run) against K separate 1-epoch runs;
5. online SDLM (``experiment=paper_sdlm``), train.py against a plain loop (``online.py``), CPU.

The per-epoch paths (1) live here, (c) in ``pipeline.py``; the job-level rows (the multirun's
fixed costs, 2, 3 and 4) in ``jobs.py``; the callback timing train.py from inside in
``epoch_timer.py``.

Everything runs on the device given (``--device``, default cuda where there is one, else cpu).

    make bench                            # full MNIST; ~13 minutes on 2 cores
    python benchmarks/speed.py --quick    # tiny data, one thread, 2 seeds: checks every row prints
    python benchmarks/speed.py --device cuda --seeds 8

Epoch times exclude validation; the first epoch (warm-up) is reported apart from the median of
the others. Share the machine with nothing else while it runs: see the load averages printed.
"""

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig
from torchvision import datasets

from lenet5.config import CONFIG_DIR
from lenet5.run import without_nvml_cuda_check

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jobs  # noqa: E402 - the job-level rows, beside this script
import online  # noqa: E402
from jobs import MODEL, REPO, run_logged, with_timer_importable  # noqa: E402
from pipeline import common_pipeline, optimizer_and_schedule  # noqa: E402

# Tiny data (the test suite's): a hold-out, and batches small enough for several steps an epoch.
QUICK_DATA = ["data.val_size=100", "data.batch_size=50", "data.eval_batch_size=100"]
# The framework's work per step is timed at a batch this small, so the step's arithmetic is small
# beside it, and on one thread, so CPU time measures it whatever else the machine runs.
SMALL_BATCH = 32


def compose_train(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=[MODEL, *overrides])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trainer_args(device: torch.device) -> list[str]:
    """train.py's overrides for the device: one CPU process or one GPU."""
    return ["trainer.accelerator=" + ("gpu" if device.type == "cuda" else "cpu"), "trainer.devices=1"]


def hand_loop(cfg: DictConfig, epochs: int, device: torch.device, clock=time.perf_counter) -> list[float]:
    """(a) The whole training split as one tensor on the device, batches by indexing, nothing else.
    ``clock``: ``time.process_time`` gives each epoch's CPU time instead of its wall time."""
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    images, labels = (t.to(device) for t in datamodule.splits["train"])
    torch.manual_seed(cfg.seed)
    model = instantiate(cfg.model).to(device)
    batch_size = cfg.data.batch_size
    steps = -(-len(labels) // batch_size)
    optimizer, schedule = optimizer_and_schedule(cfg, model, steps * epochs, epochs)
    seconds = []
    # Plain PyTorch imports no Lightning, so it is spared the NVML CUDA check that Lightning
    # switches on for every optimizer step (train.py drops it on CPU runs too).
    with without_nvml_cuda_check():
        for _ in range(epochs):
            synchronize(device)
            started = clock()
            order = torch.randperm(len(labels), device=device)
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                loss = model.loss(model(images[batch]), labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
            synchronize(device)
            seconds.append(clock() - started)
    return seconds


def framework(data: list[str], epochs: int, work: Path) -> tuple[list[float], dict[str, float], list[float]]:
    """(b) train.py itself, defaults and all, with a callback timing it from inside; its fixed
    costs: launch to first step, validation during fit, the rest of the fit (checkpoints, hooks),
    and what follows the fit (validate and test the best checkpoint, pictures); and the CPU
    seconds of each epoch."""
    timings = work / "timings.json"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        MODEL,
        f"trainer.max_epochs={epochs}",
        f"hydra.run.dir={work / 'framework'}",
        "+callbacks.epoch_timer._target_=epoch_timer.EpochTimer",
        f"+callbacks.epoch_timer.path={timings}",
        *data,
    ]
    launched = time.time()
    run_logged(command, work / "framework.log", env=with_timer_importable())
    ended = time.time()
    recorded = json.loads(timings.read_text())
    fit = recorded["fit_end"] - recorded["first_step"]
    fixed = {
        "start-up": recorded["first_step"] - launched,
        "validation": recorded["validation"],
        "rest of fit": fit - sum(recorded["epochs"]) - recorded["validation"],
        "after fit": ended - recorded["fit_end"],
    }
    return recorded["epochs"], fixed, recorded["cpu_epochs"]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} logical cores, {gpu}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), lightning {L.__version__}, Python {platform.python_version()}"
    )


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*os.getloadavg())


def row(name: str, seconds: list[float], steps: int) -> str:
    median = statistics.median(seconds[1:] or seconds)
    per_step = median / steps * 1000
    return f"{name:<48} {seconds[0]:>8.2f} s {median:>9.2f} s {per_step:>8.1f} ms {len(seconds) - 1:>5}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny data ($LENET5_DATA_DIR), one thread, 2 epochs, 2 seeds for every job-level row",
    )
    parser.add_argument(
        "--epochs", type=int, help="epochs per path, the first reported apart (default 5, quick 2)"
    )
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        choices=["cpu", "cuda"],
        help="where every path trains (default: cuda where there is one, else cpu)",
    )
    parser.add_argument(
        "--seeds", type=int, help="K of the seeds=K row (default 4 on a CPU, 8 on a GPU, quick 2)"
    )
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    device = torch.device(args.device)
    seeds = args.seeds or (2 if args.quick else 8 if device.type == "cuda" else 4)
    if seeds < 2:
        parser.error("--seeds must be at least 2")
    epochs = args.epochs or (2 if args.quick else 5)
    if epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is reported apart")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if args.quick:
        # One thread everywhere: (b)'s own run then times the framework's work per step too, and
        # the train.py processes are as many as the rows need, no more.
        torch.set_num_threads(1)
        os.environ["OMP_NUM_THREADS"] = "1"
    data = ["data.download=false", *(QUICK_DATA if args.quick else []), *trainer_args(device)]
    cfg = compose_train(data)
    train_images = len(datasets.MNIST(cfg.data.root, train=True, download=False)) - cfg.data.val_size
    steps = -(-train_images // cfg.data.batch_size)

    print(f"machine: {machine()}; measuring on {device}")
    print(f"before: {load()}")
    print(
        f"data: {Path(cfg.data.root).resolve()} ({train_images:,} training images); {MODEL} "
        f"(ReLU, max pooling), {cfg.optimizer._target_.rsplit('.', 1)[-1]} lr {cfg.optimizer.lr}, "
        f"one-cycle, batch {cfg.data.batch_size} ({steps} steps per epoch), {epochs} epochs per path",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="lenet5-bench-") as folder:
        work = Path(folder)
        a = hand_loop(cfg, epochs, device)
        a_nhwc = hand_loop(compose_train([*data, "model.channels_last=true"]), epochs, device)
        b, fixed, b_cpu = framework(data, epochs, work)
        small_batch = cfg.data.batch_size if args.quick else SMALL_BATCH
        if device.type == "cpu":
            small = compose_train([*data, f"data.batch_size={small_batch}"])
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            a_cpu = hand_loop(small, epochs if args.quick else 3, device, clock=time.process_time)
            torch.set_num_threads(threads)
            if not args.quick:  # --quick: (b) ran on one thread at this batch
                b_cpu = jobs.cpu_epochs([*data, f"data.batch_size={small_batch}"], 3, work)
        # --quick times the fixed costs on a multirun of the seeds row's K jobs: it is then also
        # that row's K separate runs and the grid's basic-launcher run, two subprocesses fewer.
        in_multirun_jobs = seeds if args.quick else 3
        in_multirun, job_seconds, multirun_seconds = jobs.multirun_fixed_costs(data, work, in_multirun_jobs)
        c = common_pipeline(cfg, epochs, device)
        fast = jobs.fast_recipe(data, work)
        packed = jobs.packed(data, seeds, work, multirun_seconds if in_multirun_jobs == seeds else None)
        if args.quick:
            grid = jobs.grid(data, work, [f"seed={jobs.seed_list(seeds)}"], seeds, basic=multirun_seconds)
        else:
            grid = jobs.grid(data, work, jobs.GRID, len(jobs.ACTIVATIONS) * len(jobs.POOLINGS))
        # On the CPU whatever --device says: one thread's CPU time is what the row compares.
        on_cpu = [
            "data.download=false",
            *(QUICK_DATA if args.quick else []),
            *trainer_args(torch.device("cpu")),
        ]
        patterns = min(train_images, 500 if args.quick else 6000)
        sdlm = online.measure(on_cpu, online.compose(on_cpu), patterns, epochs, work)

    median = {name: statistics.median(s[1:]) for name, s in (("a", a), ("b", b), ("c", c))}
    print()
    print(f"{'seconds per training epoch':<48} {'first':>10} {'median':>11} {'per step':>11} {'of':>5}")
    print(row("(a) hand-written loop, in-memory tensors", a, steps))
    print(row("(a) the same, model.channels_last=true", a_nhwc, steps))
    print(row("(b) train.py (this framework)", b, steps))
    print(row("(c) torchvision transforms + DataLoader(2 workers)", c, steps))
    nhwc = statistics.median(a_nhwc[1:])
    print(f"channels-last memory: {median['a'] / nhwc:.2f}x the speed of NCHW")
    print(f"ratio b/a: {median['b'] / median['a']:.2f}   (target <= 1.10)")
    if device.type == "cpu":
        small_steps = -(-train_images // small_batch)
        work_ms = (statistics.median(b_cpu[1:]) - statistics.median(a_cpu[1:])) / small_steps * 1000
        step_ms = median["a"] / steps * 1000
        print(
            f"framework work per step, train.py minus the hand loop in CPU time on one thread at batch "
            f"{small_batch}: {work_ms:.2f} ms   (target < 0.6 ms); with (a)'s {step_ms:.1f} ms step at batch "
            f"{cfg.data.batch_size}: b/a = {(step_ms + work_ms) / step_ms:.2f}"
        )
    print(f"ratio c/b: {median['c'] / median['b']:.2f}   (target >= 4)")
    print(f"train.py start-up, process launch to first training step: {fixed['start-up']:.2f} s")
    total = sum(fixed.values())
    print(
        "train.py fixed costs per job: "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in fixed.items())
        + f"; {total:.2f} s = {total / (total + median['b']):.0%} of a 1-epoch job   (target <= 20%)"
    )
    jobs.print_rows(in_multirun, job_seconds, fast, grid, seeds, packed)
    print(
        f"experiment=fast in epochs of (a) on this machine: {fast[0] / median['a']:.1f}   "
        f"(the 8 s target was set where (a) took 2.32 s: 3.4 epochs)"
    )
    online.print_rows(sdlm, patterns)
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
