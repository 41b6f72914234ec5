"""Lightning's habits: a module built from a model alone trains, a module loaded from its
checkpoint trains on with its recorded recipe, and ``init_from`` starts a run from a
checkpoint's weights (refused, in one line, for another network or a bad file)."""

import functools
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from lenet5 import LeNet5, LeNet5Module, MNISTDataModule
from lenet5.config import CONFIG_DIR
from lenet5.errors import UserError
from lenet5.training.packed_data import save_single_checkpoint

MODERN = {"activation": "relu", "pooling": "max", "c3": "full", "head": "linear"}


def fit(module: LeNet5Module, data: MNISTDataModule, folder: Path, epochs: int = 1) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        default_root_dir=str(folder),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=data)
    return trainer


def weights(module: LeNet5Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in module.model.state_dict().items()}


@pytest.fixture
def data(tiny_data: Path) -> MNISTDataModule:
    return MNISTDataModule(root=str(tiny_data), download=False, val_size=100, batch_size=50)


def test_a_module_built_from_a_model_alone_trains_with_train_py_s_default_recipe(
    data: MNISTDataModule, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    module = LeNet5Module(model=LeNet5(**MODERN))
    optimizer = OmegaConf.load(Path(CONFIG_DIR) / "optimizer" / "adam.yaml")
    scheduler = OmegaConf.load(Path(CONFIG_DIR) / "scheduler" / "onecycle.yaml")
    drop = lambda config: {k: v for k, v in OmegaConf.to_container(config).items() if k != "_partial_"}  # noqa: E731
    assert module.hparams["optimizer"] == drop(optimizer)
    assert module.hparams["scheduler"] == drop(scheduler)
    before = weights(module)
    trainer = fit(module, data, tmp_path)
    assert isinstance(trainer.optimizers[0], torch.optim.Adam)
    assert isinstance(trainer.lr_scheduler_configs[0].scheduler, torch.optim.lr_scheduler.OneCycleLR)
    assert any(not torch.equal(before[key], value) for key, value in module.model.state_dict().items())


def test_a_module_loaded_from_its_checkpoint_trains_on_with_its_recorded_recipe(
    data: MNISTDataModule, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    sgd = functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9)
    step = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    trainer = fit(LeNet5Module(model=LeNet5(**MODERN), optimizer=sgd, scheduler=step), data, tmp_path)
    path = tmp_path / "one.ckpt"
    trainer.save_checkpoint(path)

    loaded = LeNet5Module.load_from_checkpoint(path)
    assert loaded.hparams["optimizer"] == {"_target_": "torch.optim.SGD", "lr": 0.05, "momentum": 0.9}
    assert loaded.hparams["scheduler"]["_target_"] == "torch.optim.lr_scheduler.StepLR"
    before = weights(loaded)
    again = fit(loaded, data, tmp_path / "again")
    assert isinstance(again.optimizers[0], torch.optim.SGD)
    assert again.optimizers[0].defaults["momentum"] == 0.9
    assert any(not torch.equal(before[key], value) for key, value in loaded.model.state_dict().items())


def test_a_callable_that_cannot_be_recorded_is_used_with_one_warning() -> None:
    with pytest.warns(UserWarning, match="cannot be recorded in the hyperparameters") as caught:
        module = LeNet5Module(model=LeNet5(), optimizer=lambda params: torch.optim.SGD(params, lr=0.1))
    assert len(caught) == 1
    assert module.hparams["optimizer"] is None


def test_a_checkpoint_naming_code_to_run_as_its_optimizer_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    module = LeNet5Module(model=LeNet5())
    path = tmp_path / "hostile.ckpt"
    checkpoint = {"state_dict": module.state_dict(), "pytorch-lightning_version": L.__version__}
    checkpoint["hyper_parameters"] = {
        **module.hparams,
        "optimizer": {"_target_": "os.mkdir", "path": str(marker)},
    }
    torch.save(checkpoint, path)
    with pytest.raises(UserError, match="_target_=os.mkdir: a recipe names a torch.optim"):
        LeNet5Module.load_from_checkpoint(path)
    assert not marker.exists()


@pytest.fixture
def classic_checkpoint(tmp_path: Path) -> tuple[Path, LeNet5]:
    """A checkpoint of the default model (model=classic), with weights of its own."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        config = OmegaConf.to_container(compose("train").model, resolve=True)
    torch.manual_seed(123)
    model = LeNet5(**{k: v for k, v in config.items() if k != "_target_"})
    path = tmp_path / "start.ckpt"
    save_single_checkpoint(path, model, {"dataset": "mnist"}, epoch=4, global_step=50)
    return path, model


def test_init_from_starts_a_new_run_from_the_checkpoint_s_weights(
    train_in_process, classic_checkpoint
) -> None:
    from hydra import compose, initialize_config_dir

    from lenet5.run import build

    path, model = classic_checkpoint
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"init_from={path}", "data.download=false"])
    _, module = build(cfg, [0])
    assert all(torch.equal(module.model.state_dict()[k], v) for k, v in model.state_dict().items())
    _, packed = build(cfg, [0, 1])  # seeds=2: both seeds start from the checkpoint's weights
    for k in range(2):
        start = packed.single_model(packed.run_state(k)).state_dict()
        assert all(torch.equal(start[key], value) for key, value in model.state_dict().items())

    # The checkpoint had trained 5 epochs: a new run counts its own from 0, with its own schedule.
    _, folder = train_in_process(f"init_from={path}", "trainer.max_epochs=1")
    assert json.loads((folder / "metrics.json").read_text())["epochs"] == 1
    assert OmegaConf.load(folder / "config.yaml").init_from == str(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model=modern",
            "a checkpoint of another network (model.activation is scaled_tanh in the checkpoint",
        ),
        ("init_from={missing}", "init_from={missing}: no such file"),
        ("init_from={corrupt}", "init_from={corrupt}: not a lenet5 checkpoint (not a PyTorch file)"),
    ],
)
def test_init_from_refuses_another_network_or_a_bad_file_in_one_line(
    train_cli_in_process, classic_checkpoint, tmp_path: Path, override: str, message: str
) -> None:
    path, _ = classic_checkpoint
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_text("not a checkpoint")
    names = {"missing": tmp_path / "missing.ckpt", "corrupt": corrupt}
    process, _ = train_cli_in_process(f"init_from={path}", override.format(**names), "logger=none")
    assert process.returncode == 2
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message.format(**names) in lines[0]


@pytest.mark.parametrize("seeds", [1, 2])
def test_train_py_s_checkpoints_record_the_config_s_recipe(train_in_process, seeds: int) -> None:
    _, folder = train_in_process(f"seeds={seeds}", "optimizer=sgd", "scheduler=step", "lr_scale=2")
    path = folder / ("checkpoints/last.ckpt" if seeds == 1 else "checkpoints/seed1/last.ckpt")
    loaded = LeNet5Module.load_from_checkpoint(path)
    assert loaded.hparams["optimizer"] == {
        "_target_": "torch.optim.SGD",
        "lr": 0.1,  # optimizer.lr 0.05 times lr_scale
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 0.0,
    }
    assert loaded.hparams["scheduler"] == {
        "_target_": "lenet5.training.schedules.step",
        "step_size": 5,
        "gamma": 0.5,
    }


def test_init_from_leaves_the_run_s_random_stream_as_it_was(classic_checkpoint) -> None:
    from lenet5.training.init_from import start_from

    path, model = classic_checkpoint
    here = LeNet5(**{k: v for k, v in model.config.items() if k != "_target_"})
    torch.manual_seed(7)
    before = torch.get_rng_state()
    start_from(str(path), [here])
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(here.state_dict()[k], v) for k, v in model.state_dict().items())
