"""The process's signal handlers after a run: what they were before it, so a sweep's later jobs
(and the time between them) answer SIGTERM and Ctrl+C, and no finished trainer stays alive
through a chain of handlers."""

import gc
import signal
import weakref
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from lenet5.training.signals import SIGNALS, StopOnSignal


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(tmp_path: Path) -> L.Trainer:
    trainer = L.Trainer(
        max_steps=2,
        callbacks=[StopOnSignal(tmp_path / "last.ckpt")],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(Tiny(), DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4))
    return trainer


def test_handlers_are_the_processs_own_again_after_each_run(tmp_path: Path) -> None:
    before = {signum: signal.getsignal(signum) for signum in SIGNALS}
    first = weakref.ref(fit(tmp_path))
    assert {signum: signal.getsignal(signum) for signum in SIGNALS} == before
    fit(tmp_path)
    assert {signum: signal.getsignal(signum) for signum in SIGNALS} == before
    gc.collect()
    assert first() is None, "a finished trainer is still referenced"
