"""Stochastic diagonal Levenberg-Marquardt, the paper's optimizer (its Section II.A, Appendix C).

Every parameter w_k takes steps of its own size, eps_k = lr / (mu + h_kk), h_kk its diagonal
Gauss-Newton second derivative (lenet5.training.curvature), estimated on ``samples`` training
patterns before a pass. ``lr`` is the paper's per-pattern eta (0.0005 for its first two passes,
scheduler=paper does the rest).

``curvature``: ``pass`` (the paper's text) replaces h by each new estimate; ``running`` keeps it
as a running average that is never reset, h <- (1 - gamma) h + gamma h_pattern per pattern
estimated (the n patterns of an estimate weighted alike: h <- a h + (1 - a) mean, a = (1 - gamma)^n;
the first estimate is taken as it is). ``every``: passes between estimates (1: before each pass).

``online=true`` is the paper's update, one step per pattern, at any data.batch_size: a training
step takes data.batch_size patterns (a chunk) and applies their online updates one pattern at a
time (``online_updates``), so Lightning's per-step work runs once a chunk. ``online=false``: a
minibatch of B patterns takes one step along the batch's mean gradient times B (``batch_size``),
the sum of the B online steps' directions at the batch's start; the same eta is then not as
stable as online (docs/results.md, SDLM), data.batch_size=1 is the online update again.

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
        online: bool = False,
        curvature: str = "pass",
        gamma: float = 0.001,
        every: int = 1,
    ):
        """``samples``: patterns the curvature is estimated on (the paper: 500)."""
        settings = dict(lr=lr, mu=mu, batch_size=batch_size, samples=samples, online=online)
        settings.update(curvature=curvature, gamma=gamma, every=every)
        for name, value in settings.items():
            check(f"optimizer.{name}", value)
        # estimated: the pass h was last estimated for (in the checkpoint with the state), so a
        # run resumed inside a pass keeps that pass's h instead of folding in a second estimate.
        super().__init__(params, {"lr": lr, "mu": mu, "estimated": -1})
        self.batch_size, self.samples, self.online = batch_size, samples, online
        self.curvature, self.gamma, self.every = curvature, gamma, every

    def due(self, epoch: int) -> bool:
        """Whether pass ``epoch`` (from 0) starts with a new estimate of h."""
        last = self.param_groups[0].get("estimated", -1)
        return last != epoch and (last < 0 or epoch % self.every == 0)

    @torch.no_grad()
    def set_curvature(self, curvature: dict[torch.Tensor, torch.Tensor], epoch: int = 0) -> None:
        """A parameter the estimate does not cover (none in LeNet5) keeps h = 0: step lr / mu."""
        keep = (1 - self.gamma) ** self.samples if self.curvature == "running" else 0.0
        for group in self.param_groups:
            group["estimated"] = epoch
            for param in group["params"]:
                new = curvature.get(param, torch.zeros_like(param))
                old = self.state[param].get("h")
                if old is None or keep == 0.0:
                    self.state[param]["h"] = new.clone()
                else:
                    old.mul_(keep).add_(new, alpha=1 - keep)

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

    @torch.no_grad()
    def step_sizes_now(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The parameters that train and their lr / (mu + h), for ``online_updates``."""
        params, sizes = [], []
        for group in self.param_groups:
            for param in group["params"]:
                if param.requires_grad:
                    if "h" not in self.state[param]:
                        raise UserError(UNESTIMATED)
                    params.append(param)
                    sizes.append(self.step_sizes(param, group))
        return params, sizes


def online_updates(
    model: LeNet5, optimizer: SDLM, images: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's online SDLM over a chunk of patterns, one update per pattern, each pattern's
    gradient taken at the weights the one before left. Returns the patterns' losses and
    predictions, each taken before its own update (as a minibatch step's are)."""
    params, sizes = optimizer.step_sizes_now()
    losses, predictions = [], []
    for image, label in zip(images.split(1), labels.split(1), strict=True):
        output = model(image)
        loss = model.loss(output, label)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for param, size, grad in zip(params, sizes, grads, strict=True):
                param.sub_(size * grad)  # SDLM.step's arithmetic, to the last bit
        losses.append(loss.detach())
        predictions.append(model.predict(output.detach()))
    return torch.stack(losses), torch.cat(predictions)


def online_step(
    module: L.LightningModule, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A training step of manual optimization (optimizer.online=true): the chunk's online
    updates, then the bookkeeping Lightning does for an automatic step. Returns the chunk's
    mean loss, its predictions and labels, as LeNet5Module's automatic step has them."""
    images, labels = batch
    optimizer = module.optimizers()
    losses, predictions = online_updates(module.model, optimizer.optimizer, images, labels)
    # Every gradient was used and dropped, so this step moves no weight: it counts the chunk
    # as one optimizer step (global_step, logging, checkpoints' step) and runs its hooks.
    optimizer.step()
    trainer = module.trainer
    last = batch_idx + 1 >= trainer.num_training_batches
    # Manual optimization leaves the schedules to the module: stepped where Lightning steps
    # them in automatic optimization (a pass's schedule after its last batch, before the
    # pass's checkpoint is saved).
    for config in trainer.lr_scheduler_configs:
        if config.interval == "step" or last:
            config.scheduler.step()
    return losses.mean(), predictions, labels


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


ONLINE_PACKED = "optimizer.online=true trains one network at a time: use seeds=1, or optimizer.online=false"


class SDLMCurvature(L.Callback):
    """Before a pass (every ``optimizer.every`` passes): h estimated on the first
    ``optimizer.samples`` patterns of the pass's own (shuffled, possibly distorted) order."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = getattr(trainer, "current_epoch", 0)
        for optimizer in trainer.optimizers:
            if not isinstance(optimizer, SDLM) or not optimizer.due(epoch):
                continue
            if hasattr(pl_module, "run_state"):  # PackedLeNet5Module (seeds=K)
                if optimizer.online:
                    raise UserError(ONLINE_PACKED)
                curvature = _packed_curvature(pl_module, trainer.train_dataloader, optimizer.samples)
                optimizer.set_curvature(curvature, epoch)
                continue
            model: LeNet5 = pl_module.model
            parts = list(_patterns(trainer.train_dataloader, optimizer.samples))
            images = torch.cat([images for images, _ in parts]).to(pl_module.device)
            labels = torch.cat([labels for _, labels in parts]).to(pl_module.device)
            optimizer.set_curvature(gauss_newton_diagonal(model, images, labels), epoch)
