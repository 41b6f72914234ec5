"""(c) of the speed benchmark: the pipeline most Lightning projects start from, torchvision
per-sample transforms and a shuffling DataLoader, on the same LeNet-5, optimizer and schedule as
(a) and (b); and that optimizer and schedule, built from train.py's own config."""

import lightning as L
import torch
from epoch_timer import EpochTimer  # beside this file, as speed.py imports it
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import DataLoader, random_split
from torchvision import datasets, transforms


def optimizer_and_schedule(cfg: DictConfig, model: torch.nn.Module, total_steps: int, epochs: int):
    """The framework's own optimizer and one-cycle schedule, from the same config."""
    optimizer = instantiate(cfg.optimizer)(params=model.parameters())
    schedule = instantiate(cfg.scheduler)(optimizer, total_steps=total_steps, epochs=epochs)
    return optimizer, schedule["scheduler"]


class PlainModule(L.LightningModule):
    """The LightningModule such a pipeline usually has: the network, its loss, one log call."""

    def __init__(self, cfg: DictConfig, model: torch.nn.Module):
        super().__init__()
        self.cfg, self.model = cfg, model

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        loss = self.model.loss(self.model(images), labels)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        steps, epochs = self.trainer.estimated_stepping_batches, self.trainer.max_epochs
        optimizer, schedule = optimizer_and_schedule(self.cfg, self.model, steps, epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def common_pipeline(cfg: DictConfig, epochs: int, device: torch.device) -> list[float]:
    """(c) torchvision's dataset with ToTensor/Pad/Normalize per sample, a shuffling 2-worker
    DataLoader, Lightning without progress bar, logger or checkpoints (all in its favour)."""
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Pad(2), transforms.Normalize((cfg.data.mean,), (cfg.data.std,))]
    )
    full = datasets.MNIST(cfg.data.root, train=True, download=False, transform=transform)
    split = torch.Generator().manual_seed(cfg.data.split_seed)
    train, _ = random_split(full, [len(full) - cfg.data.val_size, cfg.data.val_size], generator=split)
    loader = DataLoader(train, batch_size=cfg.data.batch_size, shuffle=True, num_workers=2)
    torch.manual_seed(cfg.seed)
    model = instantiate(cfg.model, normalization="unit")  # Normalize did the standardising
    timer = EpochTimer()
    trainer = L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(PlainModule(cfg, model), train_dataloaders=loader)
    return timer.epochs
