"""Stochastic diagonal Levenberg-Marquardt, the paper's optimizer (its Section II.A, Appendix C).

Every parameter w_k takes steps of its own size, eps_k = lr / (mu + h_kk), h_kk its diagonal
Gauss-Newton second derivative (lenet5.training.curvature), estimated on a sample of training
patterns before each pass and then held fixed for the pass. ``lr`` is the paper's per-pattern
eta (0.0005 for its first two passes, scheduler=paper does the rest).

Online (data.batch_size=1) this is the paper's update. A minibatch of B patterns takes one step
along the batch's mean gradient times B (``batch_size``), the sum of the B online steps'
directions at the batch's start: the same eta and schedule mean the same thing in both modes.
"""

from collections.abc import Iterable, Iterator

import lightning as L
import torch
from torch.optim import Optimizer

from lenet5.models.lenet5 import LeNet5
from lenet5.training.curvature import gauss_newton_diagonal
from lenet5.validation import check


class SDLM(Optimizer):
    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 0.0005,
        mu: float = 0.02,
        batch_size: int = 1,
        samples: int = 500,
    ):
        """``samples``: patterns the curvature is estimated on before each pass (the paper: 500)."""
        for name, value in (("lr", lr), ("mu", mu), ("batch_size", batch_size), ("samples", samples)):
            check(f"optimizer.{name}", value)
        super().__init__(params, {"lr": lr, "mu": mu})
        self.batch_size, self.samples = batch_size, samples

    @torch.no_grad()
    def set_curvature(self, curvature: dict[torch.Tensor, torch.Tensor]) -> None:
        """A parameter the estimate does not cover (none in LeNet5) keeps h = 0: step lr / mu."""
        for group in self.param_groups:
            for param in group["params"]:
                self.state[param]["h"] = curvature.get(param, torch.zeros_like(param)).clone()

    def step_sizes(self, param: torch.Tensor, group: dict) -> torch.Tensor:
        return group["lr"] / (group["mu"] + self.state[param].get("h", torch.zeros_like(param)))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    param.sub_(self.batch_size * self.step_sizes(param, group) * param.grad)
        return loss


def _patterns(batches: Iterable, count: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    seen = 0
    for images, labels in batches:
        if seen >= count:
            return
        take = min(count - seen, len(labels))
        seen += take
        yield images[:take], labels[:take]


class SDLMCurvature(L.Callback):
    """Before each pass: h re-estimated on the first ``optimizer.samples`` patterns of the
    pass's own (shuffled, possibly distorted) training order."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model: LeNet5 = pl_module.model
        for optimizer in trainer.optimizers:
            if not isinstance(optimizer, SDLM):
                continue
            parts = list(_patterns(trainer.train_dataloader, optimizer.samples))
            images = torch.cat([images for images, _ in parts]).to(pl_module.device)
            labels = torch.cat([labels for _, labels in parts]).to(pl_module.device)
            optimizer.set_curvature(gauss_newton_diagonal(model, images, labels))
