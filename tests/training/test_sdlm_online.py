"""SDLM online=true (one update per pattern, chunks of patterns a training step) and the running
estimate of h: against a plain per-pattern loop, through Lightning, and across a resume."""

import copy
import functools
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lenet5.errors import SettingError
from lenet5.models import LeNet5
from lenet5.training.curvature import gauss_newton_diagonal
from lenet5.training.module import LeNet5Module
from lenet5.training.schedules import paper
from lenet5.training.sdlm import SDLM, online_updates
from support import QUICK

ONLINE = ["optimizer=sdlm", "optimizer.online=true", "optimizer.samples=100", "model/init=eblearn"]


def patterns(count: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 1, 32, 32, generator=generator)
    return images, torch.randint(0, 10, (count,), generator=generator)


def plain_online(model: LeNet5, images, labels, lr: float, samples: int) -> None:
    """The reference: h on the first ``samples`` patterns, then forward, backward, step per pattern."""
    optimizer = SDLM(model.parameters(), lr=lr, batch_size=1, samples=samples)
    optimizer.set_curvature(gauss_newton_diagonal(model, images[:samples], labels[:samples]))
    for image, label in zip(images.split(1), labels.split(1), strict=True):
        optimizer.zero_grad()
        model.loss(model(image), label).backward()
        optimizer.step()


def test_online_updates_equal_a_plain_per_pattern_loop() -> None:
    torch.manual_seed(0)
    model, images, labels = LeNet5(init="eblearn"), *patterns()
    reference, start = copy.deepcopy(model), copy.deepcopy(model)
    h = gauss_newton_diagonal(model, images[:8], labels[:8])
    plain_online(reference, images, labels, lr=5e-4, samples=8)
    optimizer = SDLM(model.parameters(), lr=5e-4, online=True, samples=8)
    optimizer.set_curvature(h)
    losses, predictions = online_updates(model, optimizer, images, labels)
    assert losses.shape == predictions.shape == (24,)
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert all(not torch.equal(p, q) for p, q in zip(model.parameters(), start.parameters(), strict=True))


@pytest.mark.parametrize("chunk", [1, 7])
def test_lightning_chunks_train_as_the_plain_online_loop(chunk: int) -> None:
    """Through Trainer.fit (manual optimization): the same weights as the per-pattern loop, pass
    by pass at the paper's schedule, one optimizer step counted per chunk."""
    torch.manual_seed(0)
    model, (images, labels), epochs, lr = LeNet5(init="eblearn"), patterns(21), 3, 5e-4
    reference = copy.deepcopy(model)
    module = LeNet5Module(
        model,
        optimizer=functools.partial(SDLM, lr=lr, online=True, samples=10),
        scheduler=paper,
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(TensorDataset(images, labels), batch_size=chunk))
    optimizer = SDLM(reference.parameters(), lr=lr)
    schedule = paper(optimizer, total_steps=0, epochs=epochs)["scheduler"]
    for _ in range(epochs):
        plain_online(reference, images, labels, lr=optimizer.param_groups[0]["lr"], samples=10)
        schedule.step()
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)  # bit for bit
    assert trainer.global_step == epochs * -(-21 // chunk)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(schedule.get_last_lr()[0])


def test_running_curvature_folds_each_estimate_in_with_gamma() -> None:
    param = torch.nn.Parameter(torch.zeros(3))
    running = SDLM([param], curvature="running", gamma=0.01, samples=50)
    afresh = SDLM([param], samples=50)
    first, second = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([3.0, 0.0, 4.0])
    for optimizer in (running, afresh):
        optimizer.set_curvature({param: first}, epoch=0)
        optimizer.set_curvature({param: second}, epoch=1)
    keep = 0.99**50  # 50 patterns, each weighted 1 - gamma against the estimate so far
    torch.testing.assert_close(running.state[param]["h"], keep * first + (1 - keep) * second)
    torch.testing.assert_close(afresh.state[param]["h"], second)
    # kept in the optimizer's state, so a checkpoint carries it
    restored = SDLM([param], curvature="running", gamma=0.01, samples=50)
    restored.load_state_dict(running.state_dict())
    torch.testing.assert_close(restored.state[param]["h"], running.state[param]["h"])
    assert not restored.due(1)  # the pass it resumes in keeps its estimate


@pytest.mark.parametrize("every, estimated", [(1, [0, 1, 2, 3, 4]), (2, [0, 2, 4]), (3, [0, 3])])
def test_every_sets_the_passes_that_start_with_an_estimate(every: int, estimated: list[int]) -> None:
    optimizer = SDLM([torch.nn.Parameter(torch.zeros(1))], every=every)
    seen = []
    for epoch in range(5):
        if optimizer.due(epoch):
            seen.append(epoch)
            optimizer.set_curvature({}, epoch)
    assert seen == estimated


@pytest.mark.parametrize(
    "bad", [dict(online=1), dict(curvature="often"), dict(gamma=0.0), dict(gamma=1.5), dict(every=0)]
)
def test_bad_new_settings_are_refused_by_name(bad: dict) -> None:
    name = next(iter(bad))
    with pytest.raises(SettingError, match=f"^optimizer.{name}="):
        SDLM([torch.nn.Parameter(torch.zeros(1))], **bad)


def test_online_with_several_seeds_is_one_line(train_cli_in_process) -> None:
    process, _ = train_cli_in_process(*ONLINE, "seeds=2")
    assert process.returncode == 2
    assert process.stderr.strip().splitlines()[-1].startswith("error: optimizer.online=true trains one")


@pytest.mark.parametrize(
    "setting, name",
    [
        ("+trainer.gradient_clip_val=1", "gradient_clip_val"),
        ("+trainer.accumulate_grad_batches=2", "accumulate"),
    ],
)
def test_what_online_steps_cannot_honour_is_one_line(train_cli_in_process, setting: str, name: str) -> None:
    process, _ = train_cli_in_process(*ONLINE, setting)
    assert process.returncode == 2
    assert process.stderr.strip().splitlines()[-1].startswith(f"error: trainer.{name}")


def test_online_divergence_is_stopped(train_in_process) -> None:
    with pytest.raises(FloatingPointError, match="at epoch 0"):
        train_in_process(*ONLINE, "optimizer.lr=1000")


def test_sigterm_mid_pass_then_resume_equals_an_uninterrupted_online_run(
    train_in_process, train_cli_in_process, run_cli, tmp_path: Path, hermetic_env
) -> None:
    """Online chunks, the running h and the paper's schedule in manual optimization all survive
    a stop inside the second pass: the resumed run ends with the uninterrupted run's metrics."""
    from support import REPO

    settings = [*ONLINE, "optimizer.curvature=running", "scheduler=paper", "trainer.max_epochs=2"]
    _, whole = train_in_process(*settings, run_dir=tmp_path / "whole")
    run = tmp_path / "cut"
    kill = ["+callbacks.kill._target_=signal_at.SignalAt", "+callbacks.kill.epoch=1"]
    kill.append("+callbacks.kill.batch=4")
    env = {**hermetic_env, "PYTHONPATH": f"{REPO / 'tests'}:{hermetic_env.get('PYTHONPATH', '')}"}
    stopped = run_cli("train.py", *QUICK, f"hydra.run.dir={run}", *settings, *kill, env=env)
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    resumed, _ = train_cli_in_process(*settings, "ckpt_path=last", run_dir=run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first, second = (json.loads((r / "metrics.json").read_text()) for r in (whole, run))
    for key in ("test/acc", "test/loss", "val/acc", "val/loss", "epochs"):
        assert first[key] == second[key], key
    assert (whole / "history.csv").read_text() == (run / "history.csv").read_text()


def test_the_paper_sdlm_recipe_trains_online_and_records_each_pass(train_in_process) -> None:
    """experiment=paper_sdlm on its defaults but the tiny data's size: online chunks, the
    running h, the paper's schedule, the per-pass error curve and the last pass tested."""
    metrics, run = train_in_process("experiment=paper_sdlm", "optimizer.samples=100", "trainer.max_epochs=2")
    rows = (run / "error_curve.csv").read_text().splitlines()
    assert rows[0] == "epoch,train_error,test_error" and len(rows) == 3
    errors = [float(row.split(",")[2]) for row in rows[1:]]
    assert errors[1] < 0.5  # tiny data, 1,000 online updates: far from chance
    assert metrics["test/error"] == pytest.approx(errors[-1])  # the last pass is the one tested
