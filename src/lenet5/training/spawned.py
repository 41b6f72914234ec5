"""The process group of a ``ddp_spawn`` child, destroyed before the child exits.

Lightning leaves it to the interpreter's exit, where gloo's worker threads can still hold
tensors whose release needs the GIL of an interpreter being torn down: now and then a child
dies with "terminate called without an active exception" (SIGABRT) and the whole job fails
after its work was done (pytorch/pytorch#179291 describes it; CI met it in one of three
runs of the suite). Each spawned stage (fit, test) ends here; the next spawns fresh processes.
"""

import signal

import lightning as L
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback

# Private, kept: Lightning names no public way to tell its spawning launcher from strategy=ddp's,
# whose processes need the group for the next stage (tests/test_upstream_contracts.py).
from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher


def spawns_processes(trainer: L.Trainer) -> bool:
    """Each stage of this trainer runs in child processes spawned for it (ddp_spawn)."""
    return isinstance(trainer.strategy.launcher, _MultiProcessingLauncher)


class LeaveProcessGroup(Callback):
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not spawns_processes(trainer):
            return
        if dist.is_available() and dist.is_initialized():
            trainer.strategy.barrier("leave-process-group")
            interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl+C must not cut it short
            try:
                dist.destroy_process_group()
            finally:
                signal.signal(signal.SIGINT, interrupt)
