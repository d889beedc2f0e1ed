"""Kernels: apply one :class:`MixParams` draw to one kind of tensor each.

``mix_inputs`` for images/signals/volumes, ``mix_class_targets`` for class labels,
``mix_dense_targets`` for segmentation maps. None of them writes into its arguments unless asked
(``inplace=True``, for a batch the caller owns).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional._checks import check_batch, check_finite_range
from mixmask.functional._memory import empty
from mixmask.functional.params import MixParams

__all__ = ["mix_inputs", "mix_class_targets", "mix_dense_targets"]


def _check_params(params: MixParams, batch_size: int, spatial_shape: tuple[int, ...], what: str) -> None:
    if params.batch_size != batch_size or params.spatial_shape != tuple(spatial_shape):
        raise MixMaskError(f"params were drawn for a batch of {params.batch_size} with spatial shape "
                           f"{params.spatial_shape}, but got {what} with batch {batch_size} and spatial "
                           f"shape {tuple(spatial_shape)}")


def _values_checked(tensor: Tensor, validate: bool | None) -> bool:
    """Whether to check values: always on CPU, on accelerators only when asked (it syncs the host)."""
    return tensor.device.type == "cpu" if validate is None else validate


def _compact(mask: Tensor) -> Tensor:
    """Collapse the spatial dims of a constant (expanded) mask to size 1: ``(B, 1, ..., 1)``."""
    if mask.ndim > 1 and all(s == 0 for s in mask.stride()[1:]):
        return mask[(slice(None),) + (slice(0, 1),) * (mask.ndim - 1)]
    return mask


def mix_inputs(inputs: Tensor, params: MixParams, *, channels_last: bool = False, inplace: bool = False,
               workspace: Tensor | None = None, validate: bool | None = None) -> Tensor:
    """Mix a batch: ``out[i] = M[i] * x[i] + (1 - M[i]) * partner[i]``.

    Float inputs of any float dtype are mixed in their dtype with ``torch.lerp``, which is exact at
    weights 0 and 1, so a binary mask copies finite pixels bit for bit. uint8 inputs stay uint8: a
    binary mask copies pixels exactly (``partner + M * (x - partner)`` in wrapping uint8 arithmetic),
    a soft mask is applied in float32 and rounded. Inputs are expected finite: a NaN or inf in one
    sample reaches the pixel at the same place in its partner's output too (``0 * inf`` is NaN);
    ``validate=True`` checks it.

    Args:
        inputs: ``(B, C, *S)``, or ``(B, *S, C)`` with ``channels_last=True``.
        params: a draw for batch B and spatial shape S.
        channels_last: layout of ``inputs``.
        inplace: write the result into ``inputs`` (for a batch the caller owns, e.g. in a collate).
        workspace: a tensor like ``inputs`` to gather partners into, reused across calls.
        validate: check that float inputs are finite (a full pass over the batch; off by default).

    Returns:
        The mixed batch, same shape, dtype and device as ``inputs``.

    Raises:
        MixMaskError: wrong rank, dtype or empty batch; params drawn for another shape; a workspace
            unlike the inputs; non-finite inputs when ``validate=True``.
    """
    batch, _, spatial = check_batch(inputs, channels_last)
    _check_params(params, batch, spatial, f"inputs of shape {tuple(inputs.shape)}")
    if workspace is not None and (workspace.shape != inputs.shape or workspace.dtype != inputs.dtype
                                  or workspace.device != inputs.device):
        raise MixMaskError(f"expected a workspace like the inputs {tuple(inputs.shape)} {inputs.dtype}, "
                           f"but got {tuple(workspace.shape)} {workspace.dtype} on {workspace.device}")
    if validate and inputs.dtype.is_floating_point:
        bad = int((~torch.isfinite(inputs)).sum())
        if bad:
            raise MixMaskError(f"expected finite inputs, but got {bad} NaN or infinite values in a batch of "
                               f"shape {tuple(inputs.shape)}")
    if inputs.dtype == torch.uint8 and params.any_erase and not (0 <= params.fill <= 255 and params.fill == int(params.fill)):
        raise MixMaskError(f"expected a fill value that uint8 inputs can hold (an int in [0, 255]), but got "
                           f"{params.fill!r}")
    params = params.to(inputs.device)
    mask = _compact(params.mask)
    mask = mask.unsqueeze(-1) if channels_last else mask.unsqueeze(1)
    if params.all_erase:  # GridMask only: the partner is the constant fill, no gather
        soft_uint8 = inputs.dtype == torch.uint8 and not params.binary
        fill = torch.full((), params.fill, dtype=torch.float32 if soft_uint8 else inputs.dtype,
                          device=inputs.device).expand(inputs.shape)
        return _blend(inputs, fill, mask, inputs if inplace else empty(inputs.shape, inputs.dtype, inputs.device))
    if workspace is None:
        workspace = empty(inputs.shape, inputs.dtype, inputs.device)
    partner = torch.index_select(inputs, 0, params.index, out=workspace)
    if params.any_erase:
        partner.masked_fill_(params.erase.view((-1,) + (1,) * (inputs.ndim - 1)), params.fill)
    return _blend(inputs, partner, mask, inputs if inplace else partner)


def _blend(inputs: Tensor, partner: Tensor, mask: Tensor, out: Tensor) -> Tensor:
    """``mask * inputs + (1 - mask) * partner`` written into ``out``, which may be ``inputs`` or ``partner``."""
    if inputs.dtype == torch.uint8 and mask.dtype == torch.bool:
        # uint8 arithmetic wraps modulo 256, so these are exact copies of one pixel or the other
        if out is partner:
            return partner.sub_(inputs).mul_(~mask).add_(inputs)
        return torch.sub(inputs, partner, out=out).mul_(mask).add_(partner)
    if inputs.dtype == torch.uint8:
        mixed = empty(inputs.shape, torch.float32, inputs.device).copy_(partner)
        own = empty(inputs.shape, torch.float32, inputs.device).copy_(inputs)
        torch.lerp(mixed, own, mask.float(), out=mixed).round_().clamp_(0, 255)
        return out.copy_(mixed)
    weight = mask.to(inputs.dtype) if mask.numel() < inputs.numel() // 8 else \
        empty(mask.shape, inputs.dtype, mask.device).copy_(mask)
    return torch.lerp(partner, inputs, weight, out=out)


def _class_targets(targets: Tensor, num_classes: int | None, validate: bool | None) -> Tensor:
    """Sparse ``(B,)`` ids or ``(B, K)`` targets as float ``(B, K)``."""
    if targets.ndim == 1 and not targets.dtype.is_floating_point:
        if num_classes is None:
            raise MixMaskError(f"sparse labels of shape {tuple(targets.shape)} need num_classes, but got None")
        if _values_checked(targets, validate) and targets.numel() and (
                int(targets.min()) < 0 or int(targets.max()) >= num_classes):
            raise MixMaskError(f"expected labels in [0, {num_classes}), but got values from "
                               f"{int(targets.min())} to {int(targets.max())}")
        # one-hot rows written straight into float32 (no int64 (B, K) intermediate)
        return torch.zeros((targets.shape[0], num_classes), device=targets.device).scatter_(
            1, targets.long()[:, None], 1.0)
    if targets.ndim != 2:
        raise MixMaskError(f"expected labels as (B,) int ids or (B, K) targets, but got shape {tuple(targets.shape)}")
    if num_classes is not None and targets.shape[1] != num_classes:
        raise MixMaskError(f"expected targets with num_classes={num_classes} columns, but got shape "
                           f"{tuple(targets.shape)}")
    return targets if targets.dtype.is_floating_point else targets.float()


def mix_class_targets(targets: Tensor, params: MixParams, *, num_classes: int | None = None,
                      label_smoothing: float = 0.0, multi_label: bool = False,
                      validate: bool | None = None) -> Tensor:
    """Mix class targets with the label weight of each sample: ``lam[i] * y[i] + (1 - lam[i]) * y[j[i]]``.

    Args:
        targets: ``(B,)`` int class ids (needs ``num_classes``), ``(B, K)`` one-hot/soft targets, or
            ``(B, K)`` multi-label targets in {0, 1} (``multi_label=True``).
        params: the draw used for the inputs.
        num_classes: K, for sparse ids.
        label_smoothing: eps in [0, 1): single-label targets become ``y * (1 - eps) + eps / K``,
            multi-label ones ``y * (1 - eps) + eps / 2`` entry by entry.
        multi_label: smooth each entry as a binary target.
        validate: check id ranges (default: on CPU only, since it syncs an accelerator).

    Returns:
        float ``(B, K)`` soft targets; single-label rows sum to 1.

    Raises:
        MixMaskError: not a tensor, a wrong shape or batch, sparse ids without ``num_classes`` or out of
            ``[0, num_classes)``, a bad ``label_smoothing``.
    """
    if not isinstance(targets, Tensor):
        raise MixMaskError(f"expected labels as a torch.Tensor, but got {type(targets).__name__}")
    eps = check_finite_range("label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)
    if targets.shape[:1] != (params.batch_size,):
        raise MixMaskError(f"expected labels for {params.batch_size} samples, but got shape {tuple(targets.shape)}")
    soft = _class_targets(targets, num_classes, validate)
    if eps > 0:
        soft = soft * (1.0 - eps) + (eps / 2 if multi_label else eps / soft.shape[1])
    index, weight = params.index.to(soft.device), params.label_lam.to(soft.device, soft.dtype)
    partner = soft.index_select(0, index)
    return torch.lerp(partner, soft, weight[:, None], out=partner)


def _dense_ids(targets: Tensor, params: MixParams) -> tuple[Tensor, bool]:
    """A ``(B, *S)`` id map from ``(B, *S)`` or ``(B, 1, *S)``, and whether it had the channel."""
    spatial = params.spatial_shape
    if targets.dtype.is_floating_point or targets.dtype == torch.bool or targets.is_complex():
        raise MixMaskError(f"expected a dense map of integer class ids, but got dtype {targets.dtype}")
    if tuple(targets.shape) == (params.batch_size, *spatial):
        return targets, False
    if tuple(targets.shape) == (params.batch_size, 1, *spatial):
        return targets[:, 0], True
    raise MixMaskError(f"expected dense targets of shape {(params.batch_size, *spatial)} or "
                       f"{(params.batch_size, 1, *spatial)}, but got {tuple(targets.shape)}")


def mix_dense_targets(targets: Tensor, params: MixParams, *, num_classes: int | None = None,
                      ignore_index: int | None = None, validate: bool | None = None) -> Tensor:
    """Mix dense targets (segmentation maps of ids) with the mask that mixed the inputs.

    With a binary mask each pixel takes its id from the sample that supplied the pixel, so ids are
    never interpolated. With a soft mask (MixUp, soft FMix) the result is per-pixel soft targets.
    Pixels equal to ``ignore_index`` stay ignored (weight 0 in soft targets). Where GridMask drops a
    pixel it becomes ``ignore_index`` when one is given, else it keeps its id (the object is still
    there, only hidden).

    Args:
        targets: int ``(B, *S)`` or ``(B, 1, *S)`` ids.
        params: the draw used for the inputs.
        num_classes: K; required for soft masks, and used to check ids.
        ignore_index: id of pixels without a label.
        validate: check id ranges (default: on CPU only, since it syncs an accelerator).

    Returns:
        Binary mask: ids of the input's shape and dtype. Soft mask: float32 ``(B, K, *S)`` whose
        entries sum to 1 per pixel, less the weight of ignored pixels.

    Raises:
        MixMaskError: not an integer tensor of shape ``(B, *S)`` / ``(B, 1, *S)``, ids out of range, or a
            soft mask without ``num_classes``.
    """
    if not isinstance(targets, Tensor):
        raise MixMaskError(f"expected dense targets as a torch.Tensor, but got {type(targets).__name__}")
    ids, had_channel = _dense_ids(targets, params)
    if _values_checked(ids, validate) and ids.numel():
        bad = ids < 0 if num_classes is None else (ids < 0) | (ids >= num_classes)
        if ignore_index is not None:
            bad &= ids != ignore_index
        if bool(bad.any()):  # comparisons only (no copy of the map) unless there is an error to report
            bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            extra = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
            wrong = ids[bad].unique()
            raise MixMaskError(f"expected dense ids in {bound}{extra}, but got {wrong.numel()} other value(s): "
                               f"{wrong[:10].tolist()}")
    params = params.to(ids.device)
    erase = params.erase.view(-1, *[1] * (ids.ndim - 1))
    mask = _compact(params.mask)
    if params.binary:
        partner = torch.index_select(ids, 0, params.index, out=empty(ids.shape, ids.dtype, ids.device))
        if params.any_erase:  # GridMask hides pixels but keeps the object: own ids, or ignore_index
            mixed = torch.where(mask | erase, ids, partner, out=partner)
            if ignore_index is not None:
                mixed.masked_fill_(erase & ~mask, ignore_index)
        else:
            mixed = torch.where(mask, ids, partner, out=partner)
        return mixed.unsqueeze(1) if had_channel else mixed
    if num_classes is None:
        raise MixMaskError("a soft mask turns dense targets into per-pixel soft targets, which needs "
                           "num_classes, but got None")
    valid = ids != ignore_index if ignore_index is not None else torch.ones_like(ids, dtype=torch.bool)
    own_ids = torch.where(valid, ids, 0).long()
    partner_ids, partner_valid = own_ids.index_select(0, params.index), valid.index_select(0, params.index)
    if params.any_erase:  # GridMask: the hidden part keeps the sample's own ids, or is ignored
        partner_ids = torch.where(erase, own_ids, partner_ids)
        partner_valid = torch.where(erase, valid & (ignore_index is None), partner_valid)
    weight = mask.float().expand(ids.shape)
    soft = torch.zeros((ids.shape[0], num_classes, *ids.shape[1:]), dtype=torch.float32, device=ids.device)
    soft.scatter_add_(1, own_ids.unsqueeze(1), (weight * valid).unsqueeze(1))
    return soft.scatter_add_(1, partner_ids.unsqueeze(1), ((1.0 - weight) * partner_valid).unsqueeze(1))
