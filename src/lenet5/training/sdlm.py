"""Stochastic diagonal Levenberg-Marquardt, the paper's optimizer (its Section II.A, Appendix C).

Every parameter w_k takes steps of its own size, eps_k = lr / (mu + h_kk), h_kk its diagonal
Gauss-Newton second derivative (lenet5.training.curvature), estimated on a sample of training
patterns before each pass and then held fixed for the pass. ``lr`` is the paper's per-pattern
eta (0.0005 for its first two passes, scheduler=paper does the rest).

Online (data.batch_size=1) this is the paper's update. A minibatch of B patterns takes one step
along the batch's mean gradient times B (``batch_size``), the sum of the B online steps'
directions at the batch's start: the same eta and schedule mean the same thing in both modes.

``seeds=K`` (the K networks' parameters stacked) estimates each run's curvature on its own
network and its own pass order, stacked the same way; the step is elementwise, so the K runs
stay as independent as K single runs.
"""

from collections.abc import Iterable, Iterator

import lightning as L
import torch
from torch.optim import Optimizer

from lenet5.errors import UserError
from lenet5.models.lenet5 import LeNet5
from lenet5.training.curvature import gauss_newton_diagonal
from lenet5.validation import check

UNESTIMATED = (
    "optimizer=sdlm: no curvature was estimated before the first step (the SDLMCurvature "
    "callback estimates it before each pass; this run has none): use seeds=1, or add "
    "lenet5.training.sdlm.SDLMCurvature to the trainer's callbacks"
)


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
                    if "h" not in self.state[param]:
                        # h = 0 everywhere would be plain SGD at lr / mu, far too large a step.
                        raise UserError(UNESTIMATED)
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


def _packed_curvature(pl_module: L.LightningModule, batches: Iterable, count: int) -> dict:
    """seeds=K: batches are (K, B, ...), run k's its own order; h stacked as the parameters."""
    per_run: list[list] = [[] for _ in pl_module.seeds]
    by_pattern = ((images.transpose(0, 1), labels.T) for images, labels in batches)  # (B, K, ...)
    for images, labels in _patterns(by_pattern, count):
        for k, part in enumerate(per_run):
            part.append((images[:, k], labels[:, k]))
    stacked, _ = pl_module.tensors()  # name -> the (K, ...) parameter
    estimates: dict[str, list[torch.Tensor]] = {name: [] for name in stacked}
    for k, part in enumerate(per_run):
        model = pl_module.single_model(pl_module.run_state(k)).to(pl_module.device)
        images = torch.cat([i for i, _ in part]).to(pl_module.device)
        labels = torch.cat([labels for _, labels in part]).to(pl_module.device)
        h = gauss_newton_diagonal(model, images, labels)
        for name, param in model.named_parameters():
            estimates[name].append(h[param])
    return {stacked[name]: torch.stack(values) for name, values in estimates.items()}


class SDLMCurvature(L.Callback):
    """Before each pass: h re-estimated on the first ``optimizer.samples`` patterns of the
    pass's own (shuffled, possibly distorted) training order."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for optimizer in trainer.optimizers:
            if not isinstance(optimizer, SDLM):
                continue
            if hasattr(pl_module, "run_state"):  # PackedLeNet5Module (seeds=K)
                curvature = _packed_curvature(pl_module, trainer.train_dataloader, optimizer.samples)
                optimizer.set_curvature(curvature)
                continue
            model: LeNet5 = pl_module.model
            parts = list(_patterns(trainer.train_dataloader, optimizer.samples))
            images = torch.cat([images for images, _ in parts]).to(pl_module.device)
            labels = torch.cat([labels for _, labels in parts]).to(pl_module.device)
            optimizer.set_curvature(gauss_newton_diagonal(model, images, labels))
