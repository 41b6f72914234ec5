"""``seeds=K``: the packed step is K single steps, its checkpoints are single runs', train.py and
the report treat a packed job as K runs."""

import copy
import json
from pathlib import Path

import pytest
import torch

from lenet5.data.datamodule import MNISTDataModule
from lenet5.results.report import write_report
from lenet5.serving.checkpoints import load_checkpoint
from lenet5.training.packed import PackedLeNet5Module, build_seed_models
from lenet5.training.packed_data import PackedDataModule, save_single_checkpoint

SEEDS = [3, 4, 5]
# Every axis option appears: sparse C3, trainable pooling, RBF head, each normalization's buffers.
VARIANTS = {
    "classic": dict(activation="scaled_tanh", pooling="trainable", c3="paper", head="rbf", init="paper"),
    "d2l": dict(
        activation="sigmoid", pooling="avg", c3="full", head="linear", init="xavier", normalization="unit"
    ),
    "modern": dict(
        activation="relu", pooling="max", c3="full", head="linear", init="default",
        normalization="standardize", input_mean=0.13, input_std=0.31,
    ),
    "gelu_rbf_max": dict(activation="gelu", pooling="max", c3="paper", head="rbf", init="xavier"),
    "tanh_trainable_linear": dict(activation="tanh", pooling="trainable", c3="paper", head="linear"),
}  # fmt: skip
OPTIMIZERS = {
    "adam": lambda params: torch.optim.Adam(params, lr=3e-3, fused=True),
    "adamw": lambda params: torch.optim.AdamW(params, lr=3e-3, weight_decay=0.01),
    "sgd": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4),
}


def batches(steps: int, k: int, dtype=torch.float32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    size = 16
    generator = torch.Generator().manual_seed(99)
    return [
        (
            torch.rand(k, size, 1, 32, 32, generator=generator, dtype=dtype),
            torch.randint(0, 10, (k, size), generator=generator),
        )
        for _ in range(steps)
    ]


@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_packed_steps_equal_single_steps(variant: str, optimizer: str, vectorize: bool) -> None:
    """Losses, gradients and the weights after three optimizer steps, within 1e-6. In float64:
    in float32 a batched convolution sums in another order than K separate ones, and those
    last-bit differences (5e-6 relative on C1's gradient, amplified by Adam where a gradient
    is near zero) would hide whether the packing itself is exact."""
    models = [model.double() for model in build_seed_models(VARIANTS[variant], SEEDS)]
    singles = [copy.deepcopy(model) for model in models]
    packed = PackedLeNet5Module(models, SEEDS, vectorize=vectorize)
    packed_optimizer = OPTIMIZERS[optimizer](packed.parameters())
    single_optimizers = [OPTIMIZERS[optimizer](model.parameters()) for model in singles]
    for images, labels in batches(3, len(SEEDS), dtype=torch.float64):
        packed_optimizer.zero_grad()
        losses, _ = packed.losses(images, labels)
        losses.sum().backward()
        params, _ = packed.tensors()
        for k, model in enumerate(singles):
            single_optimizers[k].zero_grad()
            loss = model.loss(model(images[k]), labels[k])
            loss.backward()
            assert losses[k].item() == pytest.approx(loss.item(), abs=1e-6)
            for name, parameter in model.named_parameters():
                torch.testing.assert_close(params[name].grad[k], parameter.grad, atol=1e-6, rtol=0)
        packed_optimizer.step()
        for opt in single_optimizers:
            opt.step()
    for k, model in enumerate(singles):
        for name, tensor in packed.run_state(k).items():
            torch.testing.assert_close(tensor, model.state_dict()[name], atol=1e-6, rtol=0)


def test_each_seed_builds_the_network_of_its_single_run() -> None:
    models = build_seed_models(VARIANTS["classic"], SEEDS)
    for seed, model in zip(SEEDS, models, strict=True):
        torch.manual_seed(seed)
        alone = build_seed_models(VARIANTS["classic"], [seed])[0]
        for (name, a), b in zip(model.state_dict().items(), alone.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    assert not torch.equal(models[0].c1.conv.weight, models[1].c1.conv.weight)


def test_each_seed_walks_its_single_runs_permutation(tiny_data: Path) -> None:
    settings = dict(root=str(tiny_data), download=False, val_size=100, batch_size=64)
    packed = PackedDataModule(MNISTDataModule(**settings), SEEDS)
    packed.setup("fit")
    stacked = list(packed.train_dataloader())
    for k, seed in enumerate(SEEDS):
        torch.manual_seed(seed)  # what seed_everything(seed) leaves torch.initial_seed() at
        single = MNISTDataModule(**settings)
        single.setup("fit")
        alone = list(single.train_dataloader())
        assert len(alone) == len(stacked)
        for (images, labels), (packed_images, packed_labels) in zip(alone, stacked, strict=True):
            assert torch.equal(labels, packed_labels[k])
            assert torch.equal(images, packed_images[k])


@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_packed_checkpoints_load_as_single_models(variant: str, vectorize: bool, tmp_path: Path) -> None:
    models = build_seed_models(VARIANTS[variant], SEEDS)
    packed = PackedLeNet5Module(models, SEEDS, vectorize=vectorize)
    optimizer = torch.optim.Adam(packed.parameters(), lr=0.01)
    for images, labels in batches(2, len(SEEDS)):
        optimizer.zero_grad()
        packed.losses(images, labels)[0].sum().backward()
        optimizer.step()
    images = torch.rand(8, 1, 32, 32)
    with torch.no_grad():
        params, buffers = packed.tensors()
        outputs = torch.func.vmap(
            lambda p, b: torch.func.functional_call(packed.template, (p, b), (images,))
        )(params, buffers)
    for k in range(len(SEEDS)):
        path = tmp_path / f"seed{k}.ckpt"
        model = packed.single_model(packed.run_state(k))
        save_single_checkpoint(path, model, {"dataset": "mnist"}, epoch=0, global_step=2)
        loaded = load_checkpoint(path)
        assert loaded.dataset == "mnist"
        with torch.no_grad():
            assert torch.equal(loaded.module(images), model(images))
            torch.testing.assert_close(loaded.module(images), outputs[k], atol=1e-5, rtol=1e-5)


def test_train_py_seeds_3_end_to_end(train_run, train_in_process, tmp_path: Path) -> None:
    _, run = train_run("model=modern", "seed=0", "seeds=3", run_dir=tmp_path / "packed")
    metrics = json.loads((run / "metrics.json").read_text())
    assert [entry["seed"] for entry in metrics["per_seed"]] == [0, 1, 2]
    accs = [entry["test/acc"] for entry in metrics["per_seed"]]
    assert metrics["test/acc"] == pytest.approx(sum(accs) / 3)
    assert metrics["test/acc_std"] > 0
    for entry in metrics["per_seed"]:
        assert entry["test/error"] == pytest.approx(1 - entry["test/acc"])
        assert 0 <= entry["val/acc"] <= 1
        checkpoint = load_checkpoint(entry["best_checkpoint"])
        assert checkpoint.module.model.config["activation"] == "relu"
        assert (Path(entry["best_checkpoint"]).parent / "last.ckpt").is_file()
    for picture in ("curves.png", "confusion_matrix.png", "misclassified.png", "history.csv"):
        assert (run / picture).is_file(), picture
    # Seed 1 of the packed run is the single run with seed=1 (up to float rounding).
    _, single = train_in_process("model=modern", "seed=1", run_dir=tmp_path / "single")
    alone = json.loads((single / "metrics.json").read_text())
    assert metrics["per_seed"][1]["test/acc"] == pytest.approx(alone["test/acc"], abs=0.011)
    assert metrics["per_seed"][1]["val/loss"] == pytest.approx(alone["val/loss"], rel=1e-3)


def test_bad_seeds_value_is_one_line(train_cli_in_process) -> None:
    process, _ = train_cli_in_process("seeds=0")
    assert process.returncode == 2
    assert process.stderr.strip().splitlines()[-1].startswith("error: seeds=0")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optimizer.lr=-1", "optimizer.lr=-1"),
        ("optimizer.lr=nan", "optimizer.lr=nan"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0"),
        ("+trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1"),
        ("seed=-1", "seed=-1"),
        ("seed=4294967295", "seed=4294967295 with seeds=2"),
        ("lr_scale=0", "lr_scale=0"),
        ("+trainer.gradient_clip_val=1.0", "trainer.gradient_clip_val with seeds>1"),
    ],
)
def test_seeds_k_refuses_what_a_single_run_refuses(train_cli_in_process, override, key) -> None:
    """The same checks as a single run, before anything is written: one line, exit 2."""
    process, folder = train_cli_in_process("seeds=2", override)
    assert process.returncode == 2, process.stderr[-2000:]
    assert process.stderr.strip().splitlines() == [process.stderr.strip()]
    assert process.stderr.startswith(f"error: {key}"), process.stderr
    assert not (folder / "metrics.json").exists() and not (folder / "checkpoints").exists()


def test_seeds_k_honours_the_test_batch_limit(train_in_process) -> None:
    """trainer.limit_test_batches applies to K seeds as to one: the test pass runs through the
    trainer (2 batches of 100 of the 200 tiny test images here)."""
    metrics, folder = train_in_process("model=modern", "seeds=2", "trainer.limit_test_batches=1")
    rows = (folder / "csv" / "metrics.csv").read_text()
    assert "test/acc" in rows.splitlines()[0]
    assert set(metrics) >= {"test/acc", "test/acc_std", "val/acc"}


def test_report_counts_a_packed_job_as_its_seeds(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for num, pooling in enumerate(("avg", "max")):
        job = sweep / str(num)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "config.yaml").write_text("seed: 0\n")
        (job / ".hydra" / "overrides.yaml").write_text(f"- model/pooling={pooling}\n- seeds=3\n")
        per_seed = [{"seed": s, "test/acc": 0.9 + 0.01 * s + 0.05 * num, "test/error": 0.0} for s in range(3)]
        for entry in per_seed:
            entry["test/error"] = 1 - entry["test/acc"]
        metrics = {"epochs": 1, "train_seconds": 30.0, "per_seed": per_seed}
        (job / "metrics.json").write_text(json.dumps(metrics))
    report = write_report(sweep)["md"].read_text()
    rows = {line.split(" | ")[0]: line for line in report.splitlines() if line.startswith("| ")}
    assert rows["| avg"].startswith("| avg | 3 |") and "91.00 ± 1.00" in rows["| avg"]
    assert rows["| max"].startswith("| max | 3 |") and "96.00 ± 1.00" in rows["| max"]
    assert "seeds: 0, 1, 2" in report


@pytest.mark.parametrize(
    ("overrides", "validated"),
    [
        (("data.val_size=0",), False),  # the paper's set-up: nothing held out, nothing to validate
        (("+trainer.check_val_every_n_epoch=5",), True),  # no validation during fit: one after it
    ],
)
def test_packed_validation_numbers_come_from_a_pass_that_ran(
    train_in_process, tmp_path, overrides, validated
):
    _, run = train_in_process("model=modern", "seed=0", "seeds=2", *overrides, run_dir=tmp_path / "packed")
    per_seed = json.loads((run / "metrics.json").read_text())["per_seed"]
    for entry in per_seed:
        assert ("val/acc" in entry) is validated and ("val/loss" in entry) is validated
        assert 0 <= entry["test/acc"] <= 1
        if validated:
            assert 0 <= entry["val/acc"] <= 1 and entry["val/loss"] > 0
    assert (run / "misclassified.png").is_file()
