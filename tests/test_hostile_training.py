"""A hostile user's training settings: SDLM beside the default one-cycle schedule, a learning
rate that destroys the paper's network. Each trains as asked or stops with one ``error:`` line
and a non-zero exit, never a traceback, never a hang."""

import json
import math
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lenet5.errors import UserError
from lenet5.training.curvature import gauss_newton_diagonal
from lenet5.training.divergence import StopOnDivergence
from lenet5.training.packed import PackedLeNet5Module, build_seed_models
from lenet5.training.schedules import one_cycle
from lenet5.training.sdlm import SDLM, SDLMCurvature


def one_line(process, expected: str, status: int) -> None:
    assert process.returncode == status, process.stderr[-2000:]
    assert "Traceback" not in process.stderr, process.stderr[-2000:]
    lines = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], process.stderr[-2000:]


# --- 4. SDLM and the one-cycle schedule ---------------------------------------------------------

SDLM_RUNS = {
    "alone": ("optimizer=sdlm",),
    "linear head": ("optimizer=sdlm", "model/head=linear"),
    "online": ("optimizer=sdlm", "data.batch_size=1", "trainer.limit_train_batches=30"),
}


@pytest.mark.parametrize("overrides", SDLM_RUNS.values(), ids=SDLM_RUNS.keys())
def test_sdlm_trains_under_the_default_one_cycle_schedule(train_in_process, overrides) -> None:
    metrics, run = train_in_process(*overrides)
    assert math.isfinite(metrics["test/loss"]) and (run / "metrics.json").is_file()
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    schedule = state["lr_schedulers"][0]
    assert schedule["total_steps"] > 0 and schedule["cycle_momentum"] is False
    assert state["optimizer_states"][0]["state"][0]["h"].abs().sum() > 0  # curvature estimated


@pytest.mark.parametrize(
    "optimizer, cycles",
    [
        (partial(SDLM, lr=0.01), False),
        (partial(torch.optim.Adam, lr=0.01), True),
        (partial(torch.optim.SGD, lr=0.01, momentum=0.9), True),
    ],
    ids=["sdlm", "adam", "sgd"],
)
def test_one_cycle_warms_up_and_anneals_every_optimizer(optimizer, cycles: bool) -> None:
    weight = torch.nn.Parameter(torch.zeros(3))
    opt = optimizer([weight])
    scheduler = one_cycle(opt, total_steps=8, epochs=1)["scheduler"]
    assert scheduler.cycle_momentum is cycles
    rates = []
    for _ in range(8):
        rates.append(opt.param_groups[0]["lr"])
        if isinstance(opt, SDLM):
            opt.set_curvature({})
        weight.grad = torch.ones(3)
        opt.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.01 / 25) and max(rates) == pytest.approx(0.01) and rates[-1] < rates[0]


def test_sdlm_with_several_seeds_trains_or_refuses_in_one_line(train_cli_in_process) -> None:
    """Until seeds=K runs carry SDLMCurvature, SDLM refuses to step without its curvature."""
    process, _ = train_cli_in_process("optimizer=sdlm", "seeds=2")
    if process.returncode != 0:
        one_line(process, "optimizer=sdlm: no curvature was estimated", 2)


def test_sdlm_trains_several_seeds(train_in_process) -> None:
    metrics, run = train_in_process("optimizer=sdlm", "seeds=2")
    assert all(
        math.isfinite(seed["test/loss"])
        for seed in json.loads((run / "metrics.json").read_text())["per_seed"]
    )


def test_several_seeds_get_each_their_own_curvature() -> None:
    """seeds=K: run k's h is its own network's on its own pass order, as a single run's."""
    models = build_seed_models({"_target_": "lenet5.models.LeNet5"}, [0, 1])
    module = PackedLeNet5Module(models, [0, 1])
    optimizer = SDLM(module.parameters(), samples=8)
    images, labels = torch.rand(2, 12, 1, 32, 32), torch.randint(0, 10, (2, 12))
    batches = [(images[:, i : i + 5], labels[:, i : i + 5]) for i in (0, 5, 10)]
    SDLMCurvature().on_train_epoch_start(
        SimpleNamespace(optimizers=[optimizer], train_dataloader=batches), module
    )
    stacked, _ = module.tensors()
    for k, model in enumerate(models):
        expected = gauss_newton_diagonal(model, images[k, :8], labels[k, :8])
        for name, param in model.named_parameters():
            torch.testing.assert_close(optimizer.state[stacked[name]]["h"][k], expected[param])


def test_sdlm_without_a_curvature_estimate_refuses_to_step() -> None:
    weight = torch.nn.Parameter(torch.zeros(2))
    weight.grad = torch.ones(2)
    with pytest.raises(UserError, match="optimizer=sdlm: no curvature"):
        SDLM([weight]).step()
    assert weight.detach().eq(0).all()


# --- 5. divergence, whatever the head -----------------------------------------------------------


class Watched(torch.nn.Module):
    """What the callback reads of a LeNet5Module: its parameters and the epoch's sums."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(4))
        self.train_seen, self.train_correct, self.train_loss_sum = 0, torch.tensor(0), torch.tensor(0.0)


def fake_trainer(step: int, world_size: int = 1, anywhere: bool = False) -> SimpleNamespace:
    strategy = SimpleNamespace(reduce_boolean_decision=lambda decision, all: decision or anywhere)
    return SimpleNamespace(
        global_step=step,
        log_every_n_steps=1,
        current_epoch=0,
        optimizers=[],
        world_size=world_size,
        strategy=strategy,
    )


@pytest.mark.parametrize(
    "scale, accuracy, mean_loss, seen, stops",
    [
        (1.0, 0.9, 0.1, 5000, None),  # learning
        (50.0, 0.9, 0.1, 5000, None),  # weights grown, but a healthy run's growth
        (2000.0, 0.9, 0.1, 5000, "weights' norm"),  # lr=1e10 throws every weight
        (float("nan"), 0.9, 0.1, 5000, "weights' norm"),
        (1.0, 0.10, 170.0, 5000, "at chance"),  # the RBF head thrown into saturation
        (1.0, 0.10, 74.0, 5000, None),  # a slow start: at chance, loss flat (d2l's sigmoid net)
        (1.0, 0.10, 170.0, 500, None),  # too few patterns to judge
        (1.0, 0.50, 170.0, 5000, None),  # the loss rose but it learns
    ],
)
def test_divergence_is_told_from_a_slow_start(scale, accuracy, mean_loss, seen, stops) -> None:
    watch, module = StopOnDivergence(), Watched()
    watch.on_train_start(fake_trainer(0), module)
    watch.on_train_batch_end(fake_trainer(1), module, {"loss": torch.tensor(74.0)}, None, 0)
    with torch.no_grad():
        module.weight.mul_(scale)
    module.train_seen, module.train_correct = seen, torch.tensor(round(accuracy * seen))
    module.train_loss_sum = torch.tensor(mean_loss * seen)
    raised = None
    try:
        watch.on_train_epoch_end(fake_trainer(2), module)
    except FloatingPointError as error:
        raised = str(error)
    assert (raised is None) == (stops is None), raised
    if stops:
        assert stops in raised and "lower optimizer.lr" in raised


@pytest.mark.parametrize("anywhere, stops", [(False, False), (True, True)])
def test_processes_agree_on_stopping(anywhere: bool, stops: bool) -> None:
    """Under DDP a process that saw nothing still stops when another did (or it would wait)."""
    watch, module = StopOnDivergence(), Watched()
    watch.on_train_start(fake_trainer(0, 2), module)
    call = partial(
        watch.on_train_batch_end, fake_trainer(1, 2, anywhere), module, {"loss": torch.tensor(2.3)}, None, 0
    )
    if stops:
        with pytest.raises(FloatingPointError, match="another process"):
            call()
    else:
        call()


@pytest.mark.parametrize("model", ["classic", "modern"])
def test_healthy_runs_never_stop(train_in_process, model: str) -> None:
    metrics, run = train_in_process(f"model={model}", "trainer.max_epochs=3")  # every step checked
    assert math.isfinite(metrics["test/loss"]) and (run / "metrics.json").is_file()


def test_a_destroyed_rbf_network_is_not_published(train_cli_in_process) -> None:
    process, run = train_cli_in_process("optimizer.lr=1e10")
    one_line(process, "FloatingPointError: the weights' norm blew up", 1)
    assert "lower optimizer.lr" in process.stderr
    assert not (run / "metrics.json").exists() and (run / "failure.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, stops",
    [
        (("model=classic",), None),
        (("model=modern",), None),
        (("model=classic", "optimizer.lr=1e10"), "weights' norm"),
        (("model=classic", "optimizer=sgd"), "at chance"),  # lr 0.05 with momentum saturates the RBF net
    ],
    ids=["classic", "modern", "classic lr=1e10", "classic sgd"],
)
def test_real_digits_a_few_hundred_steps(train_in_process, mnist_subset: Path, overrides, stops) -> None:
    real = [
        f"data.root={mnist_subset}",
        "data.batch_size=128",
        "data.val_size=1000",
        "data.eval_batch_size=1000",
    ]
    run = partial(
        train_in_process, *real, "trainer.limit_train_batches=300", "trainer.log_every_n_steps=10", *overrides
    )
    if stops is None:
        assert run()[0]["test/acc"] > 0.5
    else:
        with pytest.raises(FloatingPointError, match=stops):
            run()
