"""The DataLoaders of one run: the training subset, shuffled per epoch and sharded per rank, and evaluation shards."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, default_collate
from torch.utils.data.distributed import DistributedSampler

from mixmask.train.config import TrainConfig
from mixmask.train.distributed import Context
from mixmask.train.seeds import derive_seed

__all__ = ["Loaders", "gathers_batches"]


def _batched(batch: Any) -> Any:
    """collate_fn for data sets whose ``__getitems__`` already returns a collated batch."""
    return batch


def _base(dataset: Dataset) -> Dataset:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def gathers_batches(dataset: Dataset) -> bool:
    """Whether ``dataset`` (a TensorData, or a Subset of one) returns whole collated batches from ``__getitems__``."""
    from mixmask.data.classification import TensorData

    return isinstance(_base(dataset), TensorData)


def _collate_for(dataset: Dataset):
    return _batched if gathers_batches(dataset) else default_collate


class Loaders:
    """Batches of one run.

    The training order of epoch ``e`` comes from ``DistributedSampler(seed=cfg.seed).set_epoch(e)``
    and a generator seeded from ``(seed, 3, e)``, so it depends on neither the workers nor the
    process; evaluation takes every ``world``-th sample of the given indices, in order.

    Args:
        cfg: the run's configuration (batch size, workers, seed).
        train_set: the training pool.
        train_idx: ``(N,)`` indices of the training samples in it.
        ctx: rank, world size and device.
        augment: a per-sample transform of the training images (:func:`mixmask.train.augment.build_augment`),
            drawn per epoch and sample index; None for none.
        dense: the targets are segmentation maps (moved with the images by ``augment``).

    Attributes:
        drop_last: whether the last incomplete batch of an epoch is dropped (only when a rank has at
            least two full batches).
        steps_per_epoch: optimisation steps per epoch and rank.
        samples_per_epoch: training samples seen per epoch over all ranks.
    """

    def __init__(self, cfg: TrainConfig, train_set: Dataset, train_idx: np.ndarray, ctx: Context,
                 augment: Any = None, dense: bool = False) -> None:
        self.cfg, self.train_set, self.train_idx, self.ctx = cfg, train_set, train_idx, ctx
        self.augment, self.dense = augment, dense
        per_rank = math.ceil(len(train_idx) / ctx.world)
        self.drop_last = per_rank >= 2 * cfg.batch_size
        if self.drop_last:
            self.steps_per_epoch = per_rank // cfg.batch_size
            self.samples_per_epoch = self.steps_per_epoch * cfg.batch_size * ctx.world
        else:
            self.steps_per_epoch = math.ceil(per_rank / cfg.batch_size)
            self.samples_per_epoch = per_rank * ctx.world

    def train(self, epoch: int) -> DataLoader:
        """This rank's shuffled training batches of ``epoch``."""
        if self.augment is None:
            subset: Dataset = Subset(self.train_set, self.train_idx.tolist())
        else:
            from mixmask.train.augment import Augmented

            subset = Augmented(self.train_set, self.train_idx, self.augment, self.cfg.seed, epoch, self.dense)
        sampler = DistributedSampler(subset, num_replicas=self.ctx.world, rank=self.ctx.rank, shuffle=True,
                                     seed=self.cfg.seed, drop_last=False)
        sampler.set_epoch(epoch)
        return DataLoader(subset, batch_size=self.cfg.batch_size, sampler=sampler, drop_last=self.drop_last,
                          num_workers=self.cfg.workers, collate_fn=_collate_for(self.train_set),
                          pin_memory=self.ctx.device.type == "cuda", persistent_workers=False,
                          generator=torch.Generator().manual_seed(derive_seed(self.cfg.seed, 3, epoch)))

    def evaluation(self, dataset: Dataset, indices: np.ndarray) -> DataLoader:
        """This rank's share (``indices[rank::world]``) of ``dataset``, in order."""
        shard = indices[self.ctx.rank::self.ctx.world].tolist()
        return DataLoader(Subset(dataset, shard), batch_size=max(256, self.cfg.batch_size), shuffle=False,
                          num_workers=self.cfg.workers, collate_fn=_collate_for(dataset))
