"""Batches cut from one in-memory tensor by indexing: no Dataset, no per-sample Python.

Lightning only injects a DistributedSampler into a torch DataLoader, so this iterable shards
itself: under DDP each process takes every world_size-th index of the shared permutation.
"""

from collections.abc import Callable, Iterator

import torch
import torch.distributed as dist


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class TensorBatches:
    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle_seed: Callable[[], int] | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        """``shuffle_seed`` returns the seed of this epoch's permutation (None: keep the order)."""
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.shuffle_seed = shuffle_seed
        self.transform = transform
        # Batches the next pass leaves out, once: a run resumed mid-epoch continues where it was.
        self.skip = 0

    def _indices(self) -> torch.Tensor:
        n = len(self.labels)
        if self.shuffle_seed is None:
            order = torch.arange(n)
        else:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.shuffle_seed()))
        rank, world = _rank_and_world()
        if world > 1 and self.shuffle_seed is not None:
            # Training: equal shards (as DistributedSampler), so every process steps together.
            per_rank = -(-n // world)
            order = torch.cat([order, order[: per_rank * world - n]])
        return order[rank::world].to(self.labels.device)

    def __len__(self) -> int:
        rank, world = _rank_and_world()
        n = len(self.labels)
        shard = -(-n // world) if self.shuffle_seed is not None else len(range(rank, n, world))
        return -(-shard // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        indices = self._indices()
        first, self.skip = self.skip * self.batch_size, 0
        for start in range(first, len(indices), self.batch_size):
            batch = indices[start : start + self.batch_size]
            images = self.images[batch]
            if self.transform is not None:
                images = self.transform(images)
            yield images, self.labels[batch]


class PackedBatches:
    """The batches of K runs at once for ``seeds=K``: run k walks its own permutation (the one a
    single run with its seed walks), and step i stacks the K i-th batches into (K, B, ...).

    Every permutation has the same length, so the K batches of a step always have the same size
    (the ragged last batch included)."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle_seeds: list[Callable[[], int]],
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        self.runs = [TensorBatches(images, labels, batch_size, seed) for seed in shuffle_seeds]
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.transform = transform
        self.skip = 0  # as TensorBatches.skip: a resume mid-epoch continues where it stopped

    def __len__(self) -> int:
        return len(self.runs[0])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        indices = torch.stack([run._indices() for run in self.runs])  # (K, N)
        first, self.skip = self.skip * self.batch_size, 0
        for start in range(first, indices.shape[1], self.batch_size):
            batch = indices[:, start : start + self.batch_size]
            images = self.images[batch]  # (K, B, 1, 32, 32)
            if self.transform is not None:
                images = self.transform(images.flatten(0, 1)).view_as(images)
            yield images, self.labels[batch]
