"""The process group of a ``ddp_spawn`` child, destroyed before the child exits.

Lightning leaves it to the interpreter's exit, where gloo's worker threads can still hold
tensors whose release needs the GIL of an interpreter being torn down: now and then a child
dies with "terminate called without an active exception" (SIGABRT) and the whole job fails
after its work was done (pytorch/pytorch#179291 describes it; CI met it in one of three
runs of the suite). Each spawned stage (fit, test) ends here; the next spawns fresh processes.
"""

import lightning as L
from lightning.fabric.utilities.distributed import _destroy_dist_connection, _distributed_is_initialized
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher


class LeaveProcessGroup(Callback):
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Only spawned children: with a subprocess launcher (strategy=ddp) the same processes
        # go on to the next stage and need the group.
        if not isinstance(trainer.strategy.launcher, _MultiProcessingLauncher):
            return
        if _distributed_is_initialized():
            trainer.strategy.barrier("leave-process-group")
            _destroy_dist_connection()  # Lightning Fabric's own: Ctrl+C cannot cut it short
