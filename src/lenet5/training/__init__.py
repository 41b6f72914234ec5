"""Training: the LightningModule, its optimizers and schedules, and checkpoint writing."""
