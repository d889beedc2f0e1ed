"""The parameters of one draw, shared by every kernel: partner index, mask, weights, method."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["METHODS", "MixParams"]

#: Method ids stored in :attr:`MixParams.method`, in this order.
METHODS: tuple[str, ...] = ("none", "mixup", "cutmix", "fmix", "gridmask")
GRIDMASK_ID = METHODS.index("gridmask")


@dataclass(frozen=True)
class MixParams:
    """One draw: ``out[i] = mask[i] * x[i] + (1 - mask[i]) * partner[i]``.

    ``partner[i]`` is ``x[index[i]]``, or the constant ``fill`` for GridMask samples, whose labels
    are kept. Replaying the same ``MixParams`` on an image batch and on its targets mixes both alike.

    Attributes:
        index: ``(B,)`` int64 partner of each sample.
        lam: ``(B,)`` float32 mean of each sample's mask (the weight of the sample's own input).
        mask: ``(B, *S)`` bool for binary masks, float32 for soft ones (MixUp's is an expanded view).
        method: ``(B,)`` int64 CPU ids into :data:`METHODS`.
        fill: value GridMask writes where it drops pixels.
    """

    index: Tensor
    lam: Tensor
    mask: Tensor
    method: Tensor
    fill: float = 0.0

    @property
    def batch_size(self) -> int:
        return self.mask.shape[0]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.mask.shape[1:])

    @property
    def binary(self) -> bool:
        """True when every mask entry is 0 or 1 (a bool mask)."""
        return self.mask.dtype == torch.bool

    @property
    def erase(self) -> Tensor:
        """``(B,)`` bool on the mask's device: samples whose partner is ``fill`` (GridMask)."""
        return (self.method == GRIDMASK_ID).to(self.mask.device)

    @property
    def any_erase(self) -> bool:
        return bool((self.method == GRIDMASK_ID).any())

    @property
    def all_erase(self) -> bool:
        return bool((self.method == GRIDMASK_ID).all())

    @property
    def label_lam(self) -> Tensor:
        """``(B,)`` weight of each sample's own label: ``lam``, or 1 for GridMask samples."""
        return torch.where(self.erase, torch.ones_like(self.lam), self.lam)

    def to(self, device: torch.device | str) -> MixParams:
        """The same draw with its tensors on ``device`` (``method`` stays on the CPU)."""
        return MixParams(self.index.to(device), self.lam.to(device), self.mask.to(device), self.method, self.fill)

    def __repr__(self) -> str:
        names = sorted({METHODS[i] for i in self.method.tolist()})
        return (f"MixParams(batch_size={self.batch_size}, spatial_shape={self.spatial_shape}, "
                f"methods={names}, binary={self.binary}, device={self.mask.device.type})")
