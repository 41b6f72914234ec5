"""Learning-rate schedules as Lightning scheduler configs.

Every factory takes the optimizer, the run's total optimizer steps and its epochs, so the
config group ``scheduler`` can swap them without the LightningModule knowing which it has.
"""

import torch
from torch.optim import Optimizer

from lenet5.validation import check

# The paper's 20 passes: (first pass of the stage, rate relative to the first stage).
# 0.0005 for 2 passes, 0.0002 for 3, 0.0001 for 3, 0.00005 for 4, then 0.00001.
PAPER_STAGES = ((0, 1.0), (2, 0.4), (5, 0.2), (8, 0.1), (12, 0.02))
PAPER_PASSES = 20


def one_cycle(
    optimizer: Optimizer,
    total_steps: int,
    epochs: int,
    pct_start: float = 0.25,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> dict:
    """Warm up to each group's configured lr, then anneal; stepped every batch. Momentum (or
    Adam's beta1) cycles against the rate where the optimizer has one; SDLM has none, and its
    eta warms up and anneals like any other rate."""
    check("scheduler.pct_start", pct_start)
    check("scheduler.div_factor", div_factor)
    check("scheduler.final_div_factor", final_div_factor)
    if pct_start * total_steps == 1:
        # OneCycleLR peaks at step pct_start * total_steps - 1 and divides by it: when that is
        # step 0 (4 steps at 0.25, say), start at the peak rather than divide by zero.
        pct_start *= 1 - 1e-6
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=total_steps,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        cycle_momentum=any(key in optimizer.defaults for key in ("momentum", "betas")),
    )
    return {"scheduler": scheduler, "interval": "step"}


def step(optimizer: Optimizer, total_steps: int, epochs: int, step_size: int = 5, gamma: float = 0.5) -> dict:
    check("scheduler.step_size", step_size)
    check("scheduler.gamma", gamma)
    return {
        "scheduler": torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma),
        "interval": "epoch",
    }


def paper(optimizer: Optimizer, total_steps: int, epochs: int) -> dict:
    """The paper's piecewise-constant rates scaled to the configured lr; the stage boundaries
    (passes 2, 5, 8, 12 of 20) are stretched to the run's number of epochs."""

    def factor(epoch: int) -> float:
        progress = epoch * PAPER_PASSES / max(epochs, 1)
        return [rate for start, rate in PAPER_STAGES if progress >= start][-1]

    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "interval": "epoch"}
