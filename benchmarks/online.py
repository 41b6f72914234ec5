"""Online SDLM (the paper's update, one step per pattern): train.py against a plain PyTorch loop.

Both train the paper's LeNet-5 (``experiment=paper_sdlm``: SDLM online, h on 500 patterns before
the pass) on the same patterns, on one CPU thread, timed in CPU seconds (``time.process_time``),
which on one thread is the work done however busy the machine is:

- the plain loop: for each pattern, forward, ``loss.backward()``, ``SDLM.step()``; nothing else;
- train.py with its patterns in chunks (``data.batch_size`` patterns a training step, their
  online updates made one pattern at a time inside the step: Lightning's per-step work runs
  once a chunk), and train.py at ``data.batch_size=1`` (one Lightning step per pattern).

The ratio train.py / plain loop is the row's result; a pass of 60,000 patterns is extrapolated
from it. The first pass is warm-up, the median of the others is reported.

    python benchmarks/online.py                 # 3 passes of 6,000 patterns; ~3 minutes
    python benchmarks/online.py --patterns 600  # what speed.py --quick runs
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jobs import REPO, run_logged, with_timer_importable  # noqa: E402

from lenet5.config import CONFIG_DIR  # noqa: E402
from lenet5.training.curvature import gauss_newton_diagonal  # noqa: E402

RECIPE = ["experiment=paper_sdlm", "logger=none", "callbacks.progress_bar=null", "callbacks.error_curve=null"]
CHUNK = 100
PASS = 60_000


def compose(data: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose("train", overrides=[*RECIPE, *data])


def plain_loop(cfg: DictConfig, patterns: int, passes: int) -> list[float]:
    """CPU seconds per pass of ``patterns`` patterns, h estimated before each as train.py does."""
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    images, labels = datamodule.splits["train"]
    torch.manual_seed(cfg.seed)
    model = instantiate(cfg.model)
    optimizer = instantiate(cfg.optimizer, online=False, batch_size=1)(model.parameters())
    seconds = []
    for _ in range(passes):
        started = time.process_time()
        order = torch.randperm(len(labels))[:patterns]
        first = order[: cfg.optimizer.samples]
        optimizer.set_curvature(gauss_newton_diagonal(model, images[first], labels[first]))
        for index in order.split(1):
            loss = model.loss(model(images[index]), labels[index])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        seconds.append(time.process_time() - started)
    return seconds


def framework(data: list[str], patterns: int, passes: int, batch_size: int, work: Path) -> list[float]:
    """train.py's CPU seconds per pass of ``patterns`` patterns on one thread."""
    folder = work / f"online_batch{batch_size}"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        *RECIPE,
        *data,
        f"data.batch_size={batch_size}",
        f"trainer.max_epochs={passes}",
        f"trainer.limit_train_batches={patterns // batch_size}",
        f"hydra.run.dir={folder}",
        "+callbacks.epoch_timer._target_=epoch_timer.EpochTimer",
        f"+callbacks.epoch_timer.path={folder / 'timings.json'}",
    ]
    env = {**with_timer_importable(), "OMP_NUM_THREADS": "1"}
    run_logged(command, work / f"online_batch{batch_size}.log", env=env)
    return json.loads((folder / "timings.json").read_text())["cpu_epochs"]


def measure(
    data: list[str], cfg: DictConfig, patterns: int, passes: int, work: Path
) -> dict[str, list[float]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        plain = plain_loop(cfg, patterns, passes)
    finally:
        torch.set_num_threads(threads)
    chunk = min(CHUNK, patterns)
    return {
        "plain": plain,
        "chunked": framework(data, patterns, passes, chunk, work),
        "batch 1": framework(data, patterns, passes, 1, work),
        "chunk": [chunk],
    }


def print_rows(times: dict[str, list[float]], patterns: int) -> None:
    per = {
        name: statistics.median(s[1:] or s) / patterns * 1000 for name, s in times.items() if name != "chunk"
    }
    chunk = times["chunk"][0]
    print(
        f"online SDLM (experiment=paper_sdlm), CPU ms per pattern on one thread, {patterns} patterns a pass:"
    )
    print(f"  plain PyTorch loop (forward, backward, SDLM.step)  {per['plain']:6.2f} ms")
    print(
        f"  train.py, {chunk} patterns a training step            {per['chunked']:6.2f} ms"
        f"   ratio {per['chunked'] / per['plain']:.2f}   (target <= 1.5)"
    )
    batch_1 = per["batch 1"]
    print(
        f"  train.py, data.batch_size=1                       {batch_1:6.2f} ms"
        f"   ratio {batch_1 / per['plain']:.2f}"
    )
    minutes = per["chunked"] * PASS / 60000
    print(
        f"online SDLM pass of {PASS:,} patterns through train.py: {minutes:.1f} min of CPU"
        "   (target <= 5 min)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patterns", type=int, default=6000, help="patterns a pass (default 6000)")
    parser.add_argument("--passes", type=int, default=3, help="passes, the first reported apart (default 3)")
    args = parser.parse_args()
    if args.patterns < 1 or args.passes < 2:
        parser.error("--patterns must be >= 1 and --passes >= 2 (the first pass is warm-up)")
    data = ["data.download=false", "trainer.accelerator=cpu", "trainer.devices=1"]
    cfg = compose(data)
    with tempfile.TemporaryDirectory(prefix="lenet5-online-") as folder:
        print_rows(measure(data, cfg, args.patterns, args.passes, Path(folder)), args.patterns)


if __name__ == "__main__":
    main()
