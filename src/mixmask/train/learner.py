"""The model and the optimiser of one run: input normalisation, the network (DDP-wrapped under torchrun), SGD/AdamW."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mixmask.train.config import TrainConfig
from mixmask.train.distributed import Context
from mixmask.train.models import build_model
from mixmask.train.seeds import derive_seed

__all__ = ["Normalize", "Learner"]


class Normalize(nn.Module):
    """``(x * scale - mean) / std`` per channel, in float32: ``(B, C, *S)`` → float32 ``(B, C, *S)``."""

    def __init__(self, scale: float, mean: list[float], std: list[float], dims: int) -> None:
        super().__init__()
        shape = (1, -1) + (1,) * dims
        self.scale = scale
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x.float() * self.scale - self.mean) / self.std


class Learner:
    """What a run trains: ``norm``, ``model`` (``net``: the same, DDP-wrapped when world > 1) and ``optimizer``.

    The model is initialised from the seed ``(cfg.seed, 0)`` inside ``fork_rng`` (the caller's global
    generator is left as it was). Weight decay applies to weights, not to biases and norms.

    Args:
        cfg: the run's configuration (model, optimiser and its settings, seed).
        data: the :class:`~mixmask.data.classification.ClassificationData` (shape, classes, task,
            normalisation).
        ctx: rank, world size and device.
    """

    def __init__(self, cfg: TrainConfig, data, ctx: Context) -> None:
        dims = len(data.input_shape) - 1
        self.norm = Normalize(data.scale, data.mean, data.std, dims).to(ctx.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(cfg.seed, 0))
            self.model = build_model(cfg.model, data.input_shape, data.num_classes, data.task).to(ctx.device)
        self.net: nn.Module = self.model
        if ctx.world > 1:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        decay, no_decay = [], []
        for p in self.model.parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if cfg.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(groups, lr=cfg.base_lr, momentum=cfg.momentum,
                                                                    nesterov=cfg.momentum > 0)
        else:
            self.optimizer = torch.optim.AdamW(groups, lr=cfg.base_lr)

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of every parameter group."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def state(self) -> dict[str, Any]:
        """``{"model", "optimizer"}`` state dicts (for a checkpoint)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])

    @property
    def parameters(self) -> int:
        """Number of model parameters."""
        return sum(p.numel() for p in self.model.parameters())
