"""``seeds=K``: K seeds of one variant trained together in one process.

A LeNet-5 step is far too small to keep a GPU (or a CPU's vector units) busy, and every job pays
its start-up once. Here the K networks' parameters are stacked along a new first dimension
(``torch.func.stack_module_state``) and one ``vmap`` of ``functional_call`` runs all K at once.
Run k is exactly the single run with seed k: its network is built under that seed, it walks the
permutation that run walks, and its gradient is that run's (the loss is the sum of the K
independent losses). One optimizer over the stacked tensors is K independent ones, because Adam,
AdamW and SGD (momentum, Nesterov, weight decay) act element by element and every run shares
the same learning-rate schedule; gradient clipping by norm would mix the runs and is refused.
"""

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch.func import functional_call, stack_module_state, vmap

from lenet5.models import LeNet5, build_model
from lenet5.training.sdlm import SDLMCurvature


def build_seed_models(config: dict[str, Any], seeds: list[int]) -> list[LeNet5]:
    """Each network exactly as a single run with that seed builds it: seeded, then built."""
    models = []
    for seed in seeds:
        L.seed_everything(seed, workers=True, verbose=False)
        models.append(build_model(config))
    return models


def _key(name: str) -> str:
    return name.replace(".", "__")


class PackedLeNet5Module(L.LightningModule):
    def __init__(
        self,
        models: list[LeNet5],
        seeds: list[int],
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., dict] | None = None,
        vectorize: bool | None = None,
    ):
        """``vectorize``: vmap the K runs (True), loop over them (False), or vmap off the CPU
        only (None); both compute the same."""
        super().__init__()
        self.seeds, self.vectorize = list(seeds), vectorize
        self.config = dict(models[0].config)
        # The network the stacked tensors are run through; vmap replaces all its tensors, so
        # it is kept out of the module's own (moved, saved) state. Plain: no compile under vmap.
        template = build_model({**self.config, "compile": False, "channels_last": False})
        object.__setattr__(self, "template", template)
        params, buffers = stack_module_state(models)
        self.names = list(params)
        self.buffer_names = list(buffers)
        self.stacked = torch.nn.ParameterDict({_key(n): torch.nn.Parameter(p) for n, p in params.items()})
        for name, buffer in buffers.items():
            self.register_buffer(_key(name), buffer)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.best: list[dict[str, Any] | None] = [None] * len(seeds)  # per run: acc, epoch, state
        self.keep_outputs: int | None = None  # the run whose test scores are kept (the pictures')
        self.evaluated: dict[str, torch.Tensor] = {}  # the last validation or test: (K,) each
        # What a resume compares with the checkpoint's (the model and the seeds).
        self.save_hyperparameters(
            {"model": {"_target_": "lenet5.models.LeNet5", **self.config}, "seeds": self.seeds}
        )

    # --- the K networks at once -------------------------------------------------------------
    def tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        params = {name: self.stacked[_key(name)] for name in self.names}
        buffers = {name: getattr(self, _key(name)) for name in self.buffer_names}
        return params, buffers

    def _one(self, params, buffers, images, labels):
        output = functional_call(self.template, (params, buffers), (images,))
        return self.template.loss(output, labels), self.template.predict(output), output

    def losses(self, images: torch.Tensor, labels: torch.Tensor, shared: bool = False, outputs: bool = False):
        """(K,) losses and (K, B) predictions, and with ``outputs`` the (K, B, classes) scores;
        ``shared``: one batch for every run (evaluation).

        On a GPU one vmap runs the K networks as one (convolutions grouped K ways). On a CPU a
        grouped convolution's backward is about twice as slow as K plain ones, so there each
        run goes through the network on views of the stacked tensors, one after the other;
        the optimizer step, the framework's per-step work, validation and every fixed cost of
        a job are still shared."""
        params, buffers = self.tensors()
        if self.vectorize if self.vectorize is not None else images.device.type != "cpu":
            data_dim = None if shared else 0
            results = vmap(self._one, in_dims=(0, 0, data_dim, data_dim))(params, buffers, images, labels)
        else:
            # unbind, not p[k]: one stack of the K gradients in the backward instead of K
            # zero-filled full-size ones added up (0.4 ms a seed's step on 2 cores).
            params = {name: p.unbind(0) for name, p in params.items()}
            buffers = {name: b.unbind(0) for name, b in buffers.items()}
            per_run = [
                self._one(
                    {name: p[k] for name, p in params.items()},
                    {name: b[k] for name, b in buffers.items()},
                    images if shared else images[k],
                    labels if shared else labels[k],
                )
                for k in range(len(self.seeds))
            ]
            results = tuple(torch.stack(parts) for parts in zip(*per_run, strict=True))
        return results if outputs else results[:2]

    def run_state(self, k: int) -> dict[str, torch.Tensor]:
        """Run k's tensors under a single LeNet5's state_dict names, on the CPU."""
        params, buffers = self.tensors()
        return {name: t[k].detach().cpu().clone() for name, t in {**params, **buffers}.items()}

    def load_run_states(self, states: list[dict[str, torch.Tensor]]) -> None:
        params, buffers = self.tensors()
        with torch.no_grad():
            for name, tensor in {**params, **buffers}.items():
                tensor.copy_(torch.stack([state[name] for state in states]))

    def single_model(self, state: dict[str, torch.Tensor]) -> LeNet5:
        model = build_model({**self.config, "compile": False, "channels_last": False})
        model.load_state_dict(state)
        return model.eval()

    # --- training ---------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        k = len(self.seeds)
        self.train_loss_sum = torch.zeros(k, device=self.device)
        self.train_correct = torch.zeros(k, dtype=torch.long, device=self.device)
        self.train_seen = 0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        losses, predictions = self.losses(images, labels)
        seen = labels.shape[1]
        self.train_loss_sum.add_(losses.detach(), alpha=seen)
        self.train_correct.add_((predictions == labels).sum(dim=1))
        self.train_seen += seen
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self._check_finite(losses, f"batch {batch_idx}")
            self.log("train/loss_step", losses.mean(), prog_bar=True)
        loss = losses.sum()  # each run's gradient is its own loss's
        return loss

    def on_train_epoch_end(self) -> None:
        mean_loss = self.train_loss_sum / self.train_seen
        self._check_finite(mean_loss, "mean of the epoch")
        self.log("train/loss", mean_loss.mean(), prog_bar=True, sync_dist=True)
        self.log("train/acc", (self.train_correct / self.train_seen).mean(), prog_bar=True, sync_dist=True)

    def _check_finite(self, losses: torch.Tensor, where: str) -> None:
        bad = [seed for seed, ok in zip(self.seeds, torch.isfinite(losses).tolist(), strict=True) if not ok]
        if bad:
            raise FloatingPointError(
                f"training loss is not finite for seed(s) {bad} at epoch {self.current_epoch}, "
                f"{where}: lower optimizer.lr, or try another model/init"
            )

    # --- validation and test: per run; the fit keeps each run's best weights -----------------
    def _start_evaluation(self) -> None:
        self.eval_sums = torch.zeros(2, len(self.seeds), device=self.device)  # loss sum, correct
        self.eval_seen = 0
        self.kept_outputs: list[torch.Tensor] = []

    def _evaluation_step(self, batch: tuple[torch.Tensor, torch.Tensor], keep: int | None = None) -> None:
        images, labels = batch
        losses, predictions, outputs = self.losses(images, labels, shared=True, outputs=True)
        self.eval_sums[0] += losses * len(labels)
        self.eval_sums[1] += (predictions == labels).sum(dim=1)
        self.eval_seen += len(labels)
        if keep is not None:
            self.kept_outputs.append(outputs[keep].detach())

    def _end_evaluation(self, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        loss, acc = (self.eval_sums / max(self.eval_seen, 1)).unbind(0)
        self.evaluated = {"loss": loss.cpu(), "acc": acc.cpu()}
        self.log(f"{prefix}/loss", loss.mean(), prog_bar=prefix == "val")
        self.log(f"{prefix}/acc", acc.mean(), prog_bar=prefix == "val")
        return loss, acc

    def on_validation_epoch_start(self) -> None:
        self._start_evaluation()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch)

    def on_validation_epoch_end(self) -> None:
        loss, acc = self._end_evaluation("val")
        for seed, value in zip(self.seeds, acc, strict=True):
            self.log(f"val/acc_seed{seed}", value)
        if self.trainer.sanity_checking or self.trainer.state.fn != TrainerFn.FITTING:
            return
        # As the best-val/acc checkpoint of a single run: kept when strictly better.
        for k, (value, mean_loss) in enumerate(zip(acc.tolist(), loss.tolist(), strict=True)):
            if self.best[k] is None or value > self.best[k]["acc"]:
                state = self.run_state(k)
                self.best[k] = {"acc": value, "loss": mean_loss, "epoch": self.current_epoch, "state": state}

    def on_test_epoch_start(self) -> None:
        self._start_evaluation()

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, keep=self.keep_outputs)

    def on_test_epoch_end(self) -> None:
        _, acc = self._end_evaluation("test")
        self.log("test/error", 1.0 - acc.mean())

    # The best weights so far travel in the checkpoint: a resumed fit keeps choosing among all.
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["packed_best"] = self.best

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.best = list(checkpoint.get("packed_best", self.best))

    def configure_callbacks(self) -> list[L.Callback]:
        # As LeNet5Module's: SDLM's curvature (each seed's own) before each pass.
        if any(isinstance(callback, SDLMCurvature) for callback in self.trainer.callbacks):
            return []
        return [SDLMCurvature()]

    def configure_optimizers(self) -> Any:
        if self.trainer.gradient_clip_val and self.trainer.gradient_clip_algorithm != "value":
            raise ValueError(
                "seeds>1: clipping by norm mixes the seeds; use trainer.gradient_clip_algorithm=value"
            )
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(
            optimizer,
            total_steps=self.trainer.estimated_stepping_batches,
            epochs=self.trainer.max_epochs,
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
