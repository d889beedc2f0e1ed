"""Where a run executes: one process, or one rank of a torchrun group (gloo on CPU, nccl on CUDA)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["Context", "setup", "all_sum", "barrier", "gather_shards"]


@dataclass
class Context:
    """Rank, world size and device of this process; ``owns_group`` when it started the process group."""

    rank: int
    world: int
    device: torch.device
    owns_group: bool

    @property
    def main(self) -> bool:
        """Whether this process writes the run's files (rank 0)."""
        return self.rank == 0


def setup(device_name: str) -> Context:
    """Start the process group when launched by torchrun (WORLD_SIZE > 1) and pick the device.

    Args:
        device_name: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (checked by the configuration).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dist = torch.distributed
    if device_name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(device_name)
    owns = False
    if world > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            owns = True
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
            torch.cuda.set_device(device)
    else:
        rank = 0
    return Context(rank, world, device, owns)


def all_sum(values: Tensor, ctx: Context) -> Tensor:
    """``values`` summed over ranks, on the CPU."""
    if ctx.world > 1:
        values = values.to(ctx.device if ctx.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(values)
    return values.cpu()


def barrier(ctx: Context) -> None:
    """Wait for every rank (nothing on one process)."""
    if ctx.world > 1:
        torch.distributed.barrier()


def gather_shards(local: Tensor, total: int, ctx: Context) -> Tensor:
    """Undo the ``indices[rank::world]`` sharding of per-sample results: ``(total,)``."""
    if ctx.world == 1:
        return local
    parts: list[Any] = [None] * ctx.world
    torch.distributed.all_gather_object(parts, local)
    out = torch.empty(total, dtype=local.dtype)
    for rank, part in enumerate(parts):
        out[rank::ctx.world] = part
    return out
