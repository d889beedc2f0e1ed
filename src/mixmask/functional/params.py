"""The parameters of one draw, shared by every kernel: partner index, mask, weights, method."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional._checks import to_device

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

    def __post_init__(self) -> None:
        """Check shapes, dtypes and devices (not the values of device tensors, which would sync)."""
        for name in ("index", "lam", "mask", "method"):
            if not isinstance(getattr(self, name), Tensor):
                raise MixMaskError(f"MixParams.{name} must be a torch.Tensor, but got "
                                   f"{type(getattr(self, name)).__name__}")
        mask, batch = self.mask, self.mask.shape[0] if self.mask.ndim else 0
        if not 2 <= mask.ndim <= 4 or batch < 1 or not (mask.dtype == torch.bool or mask.dtype.is_floating_point):
            raise MixMaskError(f"MixParams.mask must be a bool or float (B, *S) tensor with B >= 1 and 1 to 3 "
                               f"spatial dims, but got {mask.dtype} of shape {tuple(mask.shape)}")
        for name, kind in (("index", "int64"), ("lam", "float"), ("method", "int64")):
            value = getattr(self, name)
            ok = value.dtype.is_floating_point if kind == "float" else value.dtype == torch.long
            if value.shape != (batch,) or not ok:
                raise MixMaskError(f"MixParams.{name} must be a ({batch},) {kind} tensor to match the mask "
                                   f"{tuple(mask.shape)}, but got {value.dtype} of shape {tuple(value.shape)}")
        if self.index.device != mask.device or self.lam.device != mask.device:
            raise MixMaskError(f"MixParams.index, lam and mask must be on one device, but got {self.index.device}, "
                               f"{self.lam.device} and {mask.device}")
        if self.method.device.type != "cpu" or bool(((self.method < 0) | (self.method >= len(METHODS))).any()):
            raise MixMaskError(f"MixParams.method must be CPU ids in [0, {len(METHODS)}), but got "
                               f"{self.method.tolist()} on {self.method.device}")
        if self.index.device.type == "cpu" and bool(((self.index < 0) | (self.index >= batch)).any()):
            raise MixMaskError(f"MixParams.index must hold partners in [0, {batch}), but got {self.index.tolist()}")
        if not isinstance(self.fill, (int, float)) or not math.isfinite(self.fill):
            raise MixMaskError(f"MixParams.fill must be a finite number, but got {self.fill!r}")

    @classmethod
    def _trusted(cls, index: Tensor, lam: Tensor, mask: Tensor, method: Tensor, fill: float = 0.0) -> MixParams:
        """A draw built by the library itself, whose tensors hold by construction what
        :meth:`__post_init__` checks: built without the checks (they read values back to the host)."""
        params = object.__new__(cls)
        for name, value in (("index", index), ("lam", lam), ("mask", mask), ("method", method), ("fill", fill)):
            object.__setattr__(params, name, value)
        return params

    @property
    def batch_size(self) -> int:
        """B."""
        return self.mask.shape[0]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """S."""
        return tuple(self.mask.shape[1:])

    @property
    def binary(self) -> bool:
        """True when every mask entry is 0 or 1 (a bool mask)."""
        return self.mask.dtype == torch.bool

    @property
    def erase(self) -> Tensor:
        """``(B,)`` bool on the mask's device: samples whose partner is ``fill`` (GridMask)."""
        return to_device(self.method == GRIDMASK_ID, self.mask.device)

    @functools.cached_property
    def any_erase(self) -> bool:
        """Whether some sample is a GridMask sample (read from the CPU ``method``, no device sync)."""
        return bool((self.method == GRIDMASK_ID).any())

    @functools.cached_property
    def all_erase(self) -> bool:
        """Whether every sample is a GridMask sample."""
        return bool((self.method == GRIDMASK_ID).all())

    @property
    def label_lam(self) -> Tensor:
        """``(B,)`` weight of each sample's own label: ``lam``, or 1 for GridMask samples."""
        if not self.any_erase:
            return self.lam
        return torch.where(self.erase, torch.ones_like(self.lam), self.lam)

    def to(self, device: torch.device | str) -> MixParams:
        """The same draw with its tensors on ``device`` (``method`` stays on the CPU)."""
        device = torch.device(device)
        if self.mask.device == device:  # index and lam are on the mask's device
            return self
        return MixParams._trusted(to_device(self.index, device), to_device(self.lam, device),
                                  to_device(self.mask, device), self.method, self.fill)

    def __repr__(self) -> str:
        names = sorted({METHODS[i] for i in self.method.tolist()})
        return (f"MixParams(batch_size={self.batch_size}, spatial_shape={self.spatial_shape}, "
                f"methods={names}, binary={self.binary}, device={self.mask.device.type})")
