"""Shared fixtures: tiny datasets in the real IDX format, and a way to run the entry points.

The tiny files hold the first images of the real MNIST/Fashion-MNIST (from $LENET5_DATA_DIR,
../shared/data on CI) rewritten by our own IDX writer, so torchvision's reader and the whole
pipeline run exactly as on the full data, in seconds.
"""

import json
import os
import runpy
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from support import (
    FOLDERS,
    QUICK,
    REPO,
    TINY_TEST,
    TINY_TRAIN,
    built_once,
    read_real,
    subprocess_env,
    train_once,
    write_idx,
)

IN_PROCESS_RUNS = {"train_in_process", "train_cli_in_process"}


def expected_cost(item: pytest.Item) -> float:
    """A rough guess at a test's seconds: an interpreter start costs ~6 s of imports, a run in
    this process ~2 s, a test on the real MNIST files more, a unit test next to nothing."""
    fixtures = set(item.fixturenames)
    cost = 6.0 if "hermetic_env" in fixtures else 2.0 if fixtures & IN_PROCESS_RUNS else 0.02
    return cost + (10.0 if item.get_closest_marker("slow") else 0.0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (make test: -n 2 --dist loadfile --no-loadscope-reorder), the files in
    order of their expected cost, so that the last to be handed out are the quick ones that fill
    in while the other worker finishes, not a long file that the other waits for. A file can
    state its own (``EXPECTED_SECONDS``) where the guess is far off."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    costs: dict[Path, float] = {}
    shared = set()  # files with a module fixture, which most often is a run their tests read
    for item in items:
        costs[item.path] = costs.get(item.path, 0.0) + expected_cost(item)
        definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        if any(d.scope == "module" for ds in definitions.values() for d in ds):
            shared.add(item.path)
    for item in items:
        stated = getattr(getattr(item, "module", None), "EXPECTED_SECONDS", None)
        costs[item.path] = stated if stated is not None else costs[item.path] + 8.0 * (item.path in shared)
    items.sort(key=lambda item: -costs[item.path])  # stable: a file's tests keep their order


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with tiny MNIST and FashionMNIST in torchvision's layout."""
    root = tmp_path_factory.mktemp("tiny_data")
    for folder in FOLDERS.values():
        raw = root / folder / "raw"
        raw.mkdir(parents=True)
        for split, count in (("train", TINY_TRAIN), ("t10k", TINY_TEST)):
            write_idx(
                raw / f"{split}-images-idx3-ubyte",
                read_real(folder, f"{split}-images-idx3-ubyte", count),
            )
            write_idx(
                raw / f"{split}-labels-idx1-ubyte",
                read_real(folder, f"{split}-labels-idx1-ubyte", count),
            )
    return root


@pytest.fixture
def hermetic_env(tmp_path: Path, tiny_data: Path) -> dict[str, str]:
    return subprocess_env(tmp_path, tiny_data)


@pytest.fixture(autouse=True)
def _torch_globals_restored():
    """In-process runs switch torch's deterministic mode and thread count for the process; a
    test must not hand them on to the next. Every test starts on one torch thread, as the
    subprocesses do (OMP_NUM_THREADS=1): the tensors are tiny, and beside another busy process
    two spinning threads on two cores made a 0.4 s SDLM test take 51 s in CI."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mnist_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 20,000 real MNIST training images and 2,000 test images: enough for a model
    that reads rendered and photographed digits, in a fraction of a full epoch's time."""
    raw = tmp_path_factory.mktemp("mnist_subset") / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, count in (("train", 20_000), ("t10k", 2_000)):
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{split}-{kind}-ubyte"
            write_idx(raw / name, read_real("MNIST", name, count))
    return raw.parents[1]


@pytest.fixture(scope="session")
def real_mnist_checkpoint(tmp_path_factory: pytest.TempPathFactory, mnist_subset: Path) -> Path:
    """A ReLU/max LeNet-5 trained once per session on the subset (3 short passes, about 99%
    of digits right): the slow tests that read real-looking digits share it."""

    def build(folder: Path) -> None:
        train_once(
            folder,
            mnist_subset,
            "model=modern",
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=300",
            "data.batch_size=64",
            "data.val_size=1000",
            "data.eval_batch_size=1000",
            "trainer.log_every_n_steps=50",
            "logger=none",
            timeout=900,
        )

    run = built_once(tmp_path_factory, "real_mnist_model", build) / "run"
    return Path(json.loads((run / "metrics.json").read_text())["best_checkpoint"])


@pytest.fixture
def run_cli(tmp_path: Path, hermetic_env: dict[str, str]):
    """Run an entry point (a script at the repo root, or ``-m module``) in the repo folder."""

    def run(
        *args: str, timeout: float = 600, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        command = [sys.executable, *(["-m", args[1]] if args[0] == "-m" else [str(REPO / args[0])])]
        rest = args[2:] if args[0] == "-m" else args[1:]
        return subprocess.run(
            [*command, *rest],
            cwd=tmp_path,
            env=env or hermetic_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def train_run(tmp_path: Path, run_cli):
    """``train.py`` on tiny data into ``tmp_path/run`` (or ``run_dir``); returns (process, folder)."""

    def train(*overrides: str, run_dir: Path | None = None, check: bool = True):
        folder = run_dir or tmp_path / "run"
        process = run_cli("train.py", *QUICK, f"hydra.run.dir={folder}", *overrides)
        if check:
            assert process.returncode == 0, process.stderr[-3000:]
        return process, folder

    return train


@pytest.fixture
def train_in_process(tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch):
    """train.py's run sequence (``lenet5.run.train``, what train.py's main calls) in this process
    on tiny data, into ``tmp_path/run`` (or ``run_dir``); returns (metrics, folder). For tests of
    what a config group does: a train.py subprocess costs ~5 s of imports more and checks
    nothing more. Tests of the command line (exit codes, stderr, signals) keep ``train_run``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from lenet5.config import CONFIG_DIR
    from lenet5.run import train

    monkeypatch.setenv("LENET5_DATA_DIR", str(tiny_data))
    # What a run sets for the whole process: given back after the test.
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    fill = torch.utils.deterministic.fill_uninitialized_memory
    monkeypatch.setattr(torch.utils.deterministic, "fill_uninitialized_memory", fill)

    def run(*overrides: str, run_dir: Path | None = None) -> tuple[dict[str, float], Path]:
        folder = run_dir or tmp_path / "run"
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[*QUICK, *overrides, f"hydra.runtime.output_dir={folder}"],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        return train(cfg), folder

    yield run
    HydraConfig.instance().cfg = None  # no later test may take itself for a Hydra job


@pytest.fixture
def train_cli_in_process(tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """train.py's command line (``lenet5.train.cli`` with ``sys.argv``) in this process on tiny
    data, into ``tmp_path/run`` (or ``run_dir``): (process, folder) as ``train_run`` gives them,
    the process being its exit status, stdout and stderr. For refusals and their one-line
    errors, without an interpreter start (~5 s) each; test_hostile_inputs.py sends some of the
    same refusals through a real command line. ``exact=True``: the command line is ``overrides``
    alone (flags where a user puts them, a preset's own epochs), without QUICK and the folder."""
    from lenet5.train import cli

    monkeypatch.setenv("LENET5_DATA_DIR", str(tiny_data))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.chdir(tmp_path)

    def run(
        *overrides: str, run_dir: Path | None = None, exact: bool = False
    ) -> tuple[SimpleNamespace, Path]:
        folder = run_dir or tmp_path / "run"
        fixed = [] if exact else [*QUICK, f"hydra.run.dir={folder}"]
        monkeypatch.setattr(sys, "argv", ["train.py", *fixed, *overrides])
        try:
            cli()
            status = 0
        except SystemExit as exited:
            status = exited.code
        output = capsys.readouterr()
        return SimpleNamespace(returncode=status, stdout=output.out, stderr=output.err), folder

    return run


@pytest.fixture
def cli_in_process(tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """An entry point's command line in this process, as ``run_cli`` takes it (``"train.py",
    ...``, ``"evaluate.py", ...`` or ``"-m", "lenet5.<tool>", ...``), in ``tmp_path`` on tiny
    data: its exit status, stdout and stderr, without an interpreter start (~5 s) each. Scripts
    and modules run as ``python <script>`` and ``python -m <module>`` run them (runpy)."""
    monkeypatch.setenv("LENET5_DATA_DIR", str(tiny_data))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> SimpleNamespace:
        module = args[0] == "-m"
        monkeypatch.setattr(sys, "argv", [args[1], *args[2:]] if module else list(args))
        try:
            if module:
                with warnings.catch_warnings():  # an imported module run again as __main__, as -m does
                    warnings.filterwarnings("ignore", "'.*' found in sys.modules", RuntimeWarning)
                    runpy.run_module(args[1], run_name="__main__")
            else:
                runpy.run_path(str(REPO / args[0]), run_name="__main__")
            status = 0
        except SystemExit as exited:
            status = exited.code if isinstance(exited.code, int) else 1
        output = capsys.readouterr()
        return SimpleNamespace(returncode=status, stdout=output.out, stderr=output.err)

    return run
