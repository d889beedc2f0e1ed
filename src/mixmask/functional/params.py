"""The parameters of one draw, shared by every kernel: partner index, mask, weights, method."""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional._checks import to_device

__all__ = ["METHODS", "FILL_METHODS", "MixParams", "PartnerWarp"]

#: Method ids stored in :attr:`MixParams.method`, in this order (new methods are appended: ids never change).
METHODS: tuple[str, ...] = ("none", "mixup", "cutmix", "fmix", "gridmask", "resizemix", "saliencymix", "smoothmix",
                            "gridmix", "cutout", "classmix")
#: Methods whose partner is the constant ``fill`` (or a warp's noise) rather than another sample; their
#: labels are kept.
FILL_METHODS: tuple[str, ...] = ("gridmask", "cutout")
#: ``_FILL_TABLE[id]``: whether method ``id`` is a fill method; one more entry (False) for ids past the end.
_FILL_TABLE = np.isin(np.arange(len(METHODS) + 1), [METHODS.index(m) for m in FILL_METHODS])

#: Largest gap allowed between a user-given ``lam`` and the mean of the mask it comes with.
LAM_TOLERANCE = 1e-4


class PartnerWarp(Protocol):
    """A per-sample change of the partner before blending: ``out = M * x + (1 - M) * warp(x[j])``.

    ResizeMix, for one, pastes the whole partner resized into a box; Cutout's noise fill replaces
    it. A warp applies to the rows ``rows`` of the batch (ascending, distinct); it receives those rows
    of the gathered partners — a contiguous buffer the kernel owns, which it may write into — and
    returns them changed (it must not write into a buffer that requires grad).
    """

    rows: Tensor

    def warp_inputs(self, partners: Tensor, channels_last: bool) -> Tensor:
        """``(n, C, *S)`` (or ``(n, *S, C)``) partner inputs of :attr:`rows`, changed."""

    def warp_ids(self, ids: Tensor) -> Tensor:
        """``(n, *S)`` partner id maps of :attr:`rows`, changed the same way (nearest: ids never blend)."""

    def for_rows(self, rows: Tensor) -> PartnerWarp:
        """The change of the first row for each of ``rows`` (one draw shared by a batch: ``per_sample=False``)."""

    def to(self, device: torch.device) -> PartnerWarp:
        """The same warp with its tensors on ``device``."""


def _values(tensor: Tensor) -> Tensor:
    return tensor.detach().cpu()


@dataclass(frozen=True, eq=False)
class MixParams:
    """One draw: ``out[i] = mask[i] * x[i] + (1 - mask[i]) * partner[i]``.

    ``partner[i]`` is ``x[index[i]]`` (changed by a :class:`PartnerWarp` where a method has one), or
    the constant ``fill`` for the samples of :data:`FILL_METHODS` (or a warp's noise: Cutout). Replaying the same ``MixParams`` on
    an image batch and on its targets mixes both alike. Two draws compare equal when every field is
    equal (tensors element for element); a draw is not hashable.

    Attributes:
        index: ``(B,)`` int64 partner of each sample.
        lam: ``(B,)`` float32 mean of each sample's mask (the share of the sample's own input).
        mask: ``(B, *S)`` bool for binary masks, float32 for soft ones (MixUp's is an expanded view).
        method: ``(B,)`` int64 CPU ids into :data:`METHODS` (0, ``"none"``: not mixed, lam 1).
        fill: value the fill methods (GridMask, Cutout) write where they drop pixels.
        label_lam: ``(B,)`` float32 weight of each sample's own label; by default ``lam``, and 1 for
            the fill methods (GridMask and Cutout keep labels) and reformulated draws (own labels only).
        warps: partner warps, each for some rows of the batch.
        boxes: ``(B, nb, 2, D)`` int64 CPU corners ``(low, high)`` when every mask is exactly 0 inside
            its sample's boxes and 1 elsewhere (CutMix; empty boxes for unmixed rows), else None.

    The library's own box draws (CutMix, SaliencyMix) build ``mask`` from ``boxes`` when it is first
    read: a call that pastes the boxes, or blends with weights made from them, never builds it.

    Raises:
        MixMaskError: (when built by a user) a field of the wrong type, shape, device or value: lam,
            label_lam or a soft mask outside [0, 1] or NaN, lam farther than 1e-4 from the mask's
            mean, partners outside [0, B), unknown method ids, a non-finite fill, boxes that are not the
            mask's.
    """

    index: Tensor
    lam: Tensor
    mask: Tensor
    method: Tensor
    fill: float = 0.0
    label_lam: Tensor | None = None
    warps: tuple[PartnerWarp, ...] = ()
    boxes: Tensor | None = None

    def __post_init__(self) -> None:
        """Check a draw built by a user (the library's own draws are built by :meth:`_trusted`)."""
        for name in ("index", "lam", "mask", "method"):
            if not isinstance(getattr(self, name), Tensor):
                raise MixMaskError(f"MixParams.{name} must be a torch.Tensor, but got "
                                   f"{type(getattr(self, name)).__name__}")
        mask, batch = self.mask, self.mask.shape[0] if self.mask.ndim else 0
        if not 2 <= mask.ndim <= 4 or batch < 1 or not (mask.dtype == torch.bool or mask.dtype.is_floating_point):
            raise MixMaskError(f"MixParams.mask must be a bool or float (B, *S) tensor with B >= 1 and 1 to 3 "
                               f"spatial dims, but got {mask.dtype} of shape {tuple(mask.shape)}")
        if self.label_lam is None:
            object.__setattr__(self, "label_lam", _default_label_lam(self.lam, self.method))
        for name, kind in (("index", "int64"), ("lam", "float"), ("method", "int64"), ("label_lam", "float")):
            value = getattr(self, name)
            ok = isinstance(value, Tensor) and (value.dtype.is_floating_point if kind == "float"
                                                else value.dtype == torch.long)
            if not ok or value.shape != (batch,):
                got = f"{value.dtype} of shape {tuple(value.shape)}" if isinstance(value, Tensor) else repr(value)
                raise MixMaskError(f"MixParams.{name} must be a ({batch},) {kind} tensor to match the mask "
                                   f"{tuple(mask.shape)}, but got {got}")
        devices = {t.device for t in (self.index, self.lam, self.label_lam, mask)}
        if len(devices) > 1:
            raise MixMaskError(f"MixParams.index, lam, label_lam and mask must be on one device, but got "
                               f"{sorted(str(d) for d in devices)}")
        method = self.method
        if method.device.type != "cpu" or bool(((method < 0) | (method >= len(METHODS))).any()):
            raise MixMaskError(f"MixParams.method must be CPU ids in [0, {len(METHODS)}), but got "
                               f"{method.tolist()} on {method.device}")
        index = _values(self.index)
        if bool(((index < 0) | (index >= batch)).any()):
            raise MixMaskError(f"MixParams.index must hold partners in [0, {batch}), but got {index.tolist()}")
        for name in ("lam", "label_lam"):
            values = _values(getattr(self, name)).double()
            if not bool(((values >= 0) & (values <= 1)).all()):  # NaN fails both
                raise MixMaskError(f"MixParams.{name} must be in [0, 1], but got {values.tolist()}")
        if mask.dtype != torch.bool:
            low, high = _values(mask.amin()), _values(mask.amax())
            if not (bool(low >= 0) and bool(high <= 1)):
                raise MixMaskError(f"MixParams.mask must hold weights in [0, 1], but got values from "
                                   f"{float(low)} to {float(high)}")
        if not bool((_values(self.lam)[method == 0] == 1).all()):
            raise MixMaskError("MixParams.method 0 ('none') marks samples that are not mixed, whose lam must be 1, "
                               f"but got lam {_values(self.lam)[method == 0].tolist()} for them")
        gap = float((_values(self.lam).double() - _values(mask_mean(mask)).double()).abs().max())
        if not gap <= LAM_TOLERANCE:
            raise MixMaskError(f"MixParams.lam must be the mean of each sample's mask (lam = mask mean), but "
                               f"they differ by up to {gap:.3g}")
        if isinstance(self.fill, bool) or not isinstance(self.fill, numbers.Real) or not math.isfinite(self.fill):
            raise MixMaskError(f"MixParams.fill must be a finite number, but got {self.fill!r}")
        object.__setattr__(self, "fill", float(self.fill))
        if not isinstance(self.warps, tuple):
            raise MixMaskError(f"MixParams.warps must be a tuple of partner warps, but got {self.warps!r}")
        if self.boxes is not None:
            self._check_boxes()

    def _check_boxes(self) -> None:
        from mixmask.functional.masks import box_masks

        boxes, dims = self.boxes, len(self.spatial_shape)
        if not isinstance(boxes, Tensor) or boxes.dtype != torch.long or boxes.device.type != "cpu" \
                or boxes.ndim != 4 or boxes.shape[0] != self.batch_size or boxes.shape[2:] != (2, dims):
            got = f"{boxes.dtype} of shape {tuple(boxes.shape)}" if isinstance(boxes, Tensor) else repr(boxes)
            raise MixMaskError(f"MixParams.boxes must be a CPU int64 ({self.batch_size}, nb, 2, {dims}) tensor, but "
                               f"got {got}")
        if not torch.equal(box_masks(boxes[:, :, 0], boxes[:, :, 1], self.spatial_shape, "cpu")[0],
                           _values(self.mask).bool()) or not bool(((self.mask == 0) | (self.mask == 1)).all()):
            raise MixMaskError("MixParams.boxes must describe the mask: 0 inside the boxes, 1 elsewhere")

    @classmethod
    def _trusted(cls, index: Tensor, lam: Tensor, mask: Tensor | None, method: Tensor, fill: float = 0.0,
                 label_lam: Tensor | None = None, warps: tuple[PartnerWarp, ...] = (),
                 boxes: Tensor | None = None,
                 box_mask: tuple[tuple[int, ...], torch.dtype] | None = None) -> MixParams:
        """A draw built by the library itself, whose tensors hold by construction what
        :meth:`__post_init__` checks: built without the checks (they read values back to the host).

        With ``mask=None`` the mask is the boxes' (``box_mask``: its spatial shape and dtype), built on
        ``lam``'s device when it is first read; ``boxes`` of stride 0 over the batch are one draw for all.
        """
        params = object.__new__(cls)
        if label_lam is None:
            label_lam = _default_label_lam(lam, method)
        for name, value in (("index", index), ("lam", lam), ("mask", mask), ("method", method), ("fill", fill),
                            ("label_lam", label_lam), ("warps", warps), ("boxes", boxes)):
            if value is not None or name != "mask":
                object.__setattr__(params, name, value)
        if mask is None:
            object.__setattr__(params, "_box_mask", box_mask)
        return params

    def __getattr__(self, name: str) -> Tensor:
        """Only for attributes not set: the mask of a box draw, built from its boxes on first read."""
        if name != "mask" or "_box_mask" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        mask = self._from_boxes(self._box_mask[1])
        object.__setattr__(self, "mask", mask)
        return mask

    def _box_weights(self, dtype: torch.dtype) -> Tensor | None:
        """While the mask of a box draw is unbuilt: it as ``(B, *S)`` weights of a float ``dtype``, straight
        from the boxes (the same values, without a bool mask to convert); else None."""
        return None if "mask" in self.__dict__ else self._from_boxes(dtype)

    def _from_boxes(self, dtype: torch.dtype) -> Tensor:
        """``(B, *S)`` of ``dtype`` on ``lam``'s device, 0 inside the boxes; one row expanded when one draw
        serves the whole batch (boxes of stride 0)."""
        from mixmask.functional.masks import stacked_box_weights

        spatial, batch = self._box_mask[0], self.lam.shape[0]
        if batch > 1 and self.boxes.stride(0) == 0:
            return stacked_box_weights(self.boxes[:1], spatial, dtype, self.lam.device).expand(batch, *spatial)
        return stacked_box_weights(self.boxes, spatial, dtype, self.lam.device)

    @property
    def batch_size(self) -> int:
        """B."""
        return self.lam.shape[0]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """S."""
        return tuple(self.mask.shape[1:]) if "mask" in self.__dict__ else self._box_mask[0]

    @property
    def binary(self) -> bool:
        """True when every mask entry is 0 or 1 (a bool mask)."""
        return (self.mask.dtype if "mask" in self.__dict__ else self._box_mask[1]) == torch.bool

    @functools.cached_property
    def _flags(self) -> tuple[bool, bool, bool, np.ndarray]:
        """``(mixed, any_erase, all_erase, erase)`` read from the CPU ``method`` (numpy: no dispatch cost)."""
        ids = self.method.numpy()
        erase = _is_fill(ids)
        fills = int(np.count_nonzero(erase))
        return bool(ids.any()), fills > 0, fills == erase.size, erase

    @property
    def _erase_cpu(self) -> Tensor:
        return torch.from_numpy(self._flags[3])

    @property
    def erase(self) -> Tensor:
        """``(B,)`` bool on the mask's device: samples whose partner is ``fill`` (GridMask, Cutout)."""
        return to_device(self._erase_cpu, self.lam.device)

    @property
    def mixed(self) -> bool:
        """Whether some sample is mixed at all (method other than ``"none"``; read on the CPU)."""
        return self._flags[0]

    @property
    def any_erase(self) -> bool:
        """Whether some sample's partner is ``fill`` (read from the CPU ``method``, no device sync)."""
        return self._flags[1]

    @property
    def all_erase(self) -> bool:
        """Whether every sample's partner is ``fill``."""
        return self._flags[2]

    def to(self, device: torch.device | str) -> MixParams:
        """The same draw with its tensors on ``device`` (``method`` stays on the CPU)."""
        device = torch.device(device)
        if self.lam.device == device:  # index, label_lam and the mask are on lam's device
            return self
        built = "mask" in self.__dict__
        return MixParams._trusted(to_device(self.index, device), to_device(self.lam, device),
                                  to_device(self.mask, device) if built else None, self.method, self.fill,
                                  to_device(self.label_lam, device), tuple(w.to(device) for w in self.warps),
                                  self.boxes, None if built else self._box_mask)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MixParams):
            return NotImplemented
        tensors = ("index", "lam", "mask", "method", "label_lam")
        boxes = (self.boxes is None) == (other.boxes is None) and (self.boxes is None or _same(self.boxes, other.boxes))
        return (self.fill == other.fill and self.warps == other.warps and boxes
                and all(_same(getattr(self, n), getattr(other, n)) for n in tensors))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        names = sorted({METHODS[i] for i in self.method.tolist()})
        return (f"MixParams(batch_size={self.batch_size}, spatial_shape={self.spatial_shape}, "
                f"methods={names}, binary={self.binary}, device={self.lam.device.type})")


def _is_fill(ids: np.ndarray) -> np.ndarray:
    """Which ids are fill methods: one table lookup. Ids out of range (a user's draw, not checked yet) read
    as not fill: negative ones clip to 0 (``"none"``), large ones to the table's last entry."""
    return _FILL_TABLE.take(ids, mode="clip")


def _same(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and bool(torch.equal(a, b))


def _default_label_lam(lam: Tensor, method: Tensor) -> Tensor:
    """``lam``, with 1 for the samples of the fill methods (read from the CPU ``method``, no sync)."""
    erase = _is_fill(method.numpy())
    if not erase.any():
        return lam
    return torch.where(to_device(torch.from_numpy(erase), lam.device), torch.ones_like(lam), lam)


def mask_mean(mask: Tensor) -> Tensor:
    """``(B,)`` float32 mean of each sample's mask.

    Bool masks are summed as uint8 into int32: on CPU ``count_nonzero`` and a bool ``sum`` take 10-20x
    longer for some row lengths (15 ms against 0.8 ms for 16 x 512 x 512).
    """
    flat = mask.reshape(mask.shape[0], -1)
    if mask.dtype == torch.bool:
        total = flat.view(torch.uint8).sum(1, dtype=torch.int32 if flat.shape[1] < 2**31 else torch.int64)
    else:
        total = flat.sum(1, dtype=torch.float64)
    return (total.double() / flat.shape[1]).float()
