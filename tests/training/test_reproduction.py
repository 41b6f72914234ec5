"""The paper's set-up end to end on tiny data: no hold-out, the last pass tested, SDLM training."""

import json
from pathlib import Path

import pytest


def test_no_holdout_trains_on_everything_and_tests_the_last_weights(train_in_process) -> None:
    _, run = train_in_process("data.val_size=0", "callbacks.model_checkpoint=null", "trainer.max_epochs=2")
    metrics = json.loads((run / "metrics.json").read_text())
    assert not any(key.startswith("val/") for key in metrics)
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["epochs"] == 2
    assert metrics["best_checkpoint"] == ""  # nothing picked: the weights after the last pass
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.ckpt"]
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 3 and history[1].endswith(",,")  # no validation columns filled


def test_no_holdout_drops_callbacks_that_monitor_validation(train_in_process) -> None:
    """The best-val/acc checkpoint left in by mistake: it is dropped, not a Lightning error."""
    _, run = train_in_process("data.val_size=0")
    assert json.loads((run / "metrics.json").read_text())["best_checkpoint"] == ""


@pytest.mark.parametrize("batch_size, lr", [(1, 1e-4), (25, 1e-5)])
def test_sdlm_trains_through_train_py(train_in_process, batch_size: int, lr: float) -> None:
    """Online (the paper's mode) and in minibatches: the training loss falls from pass to pass."""
    _, run = train_in_process(
        "optimizer=sdlm",
        "scheduler=paper",
        f"optimizer.lr={lr}",
        "optimizer.samples=100",
        f"data.batch_size={batch_size}",
        "trainer.max_epochs=2",
    )
    history = (run / "history.csv").read_text().splitlines()[1:]
    losses = [float(line.split(",")[1]) for line in history]
    assert len(losses) == 2 and losses[1] < 0.9 * losses[0]
    assert Path(json.loads((run / "metrics.json").read_text())["best_checkpoint"]).is_file()


def test_negative_holdout_is_one_line(train_cli_in_process) -> None:
    process, _ = train_cli_in_process("data.val_size=-1")
    assert process.returncode == 2
    assert process.stderr.strip() == "error: data.val_size=-1: give an integer >= 0"


def test_docs_figures_draw_the_distortions_and_the_error_curve(
    tiny_data: Path, tmp_path: Path, monkeypatch
) -> None:
    from lenet5.results.docs_figures import main

    study = tmp_path / "study" / "paper_sdlm" / "0"
    study.mkdir(parents=True)
    (study / "error_curve.csv").write_text("epoch,train_error,test_error\n1,0.02,0.015\n2,0.01,0.011\n")
    monkeypatch.setenv("LENET5_DATA_DIR", str(tiny_data))
    assert main(["--study", str(tmp_path / "study"), "--out", str(tmp_path / "docs")]) == 0
    for name in ("distortions.png", "error_curve.png"):
        assert (tmp_path / "docs" / name).read_bytes()[:4] == b"\x89PNG"
