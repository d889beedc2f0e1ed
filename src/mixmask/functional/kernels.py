"""Kernels: apply one :class:`MixParams` draw to one kind of tensor each.

``mix_inputs`` for images/signals/volumes, ``mix_class_targets`` for class labels,
``mix_dense_targets`` for segmentation maps. Each checks its arguments first (``check_*``, also used
by the transforms to check every input before anything is drawn or written), then writes; none of
them writes into its arguments unless asked (``inplace=True``, for a batch the caller owns). Inputs
that require grad are mixed out of place, so gradients reach both ``x[i]`` and ``x[j]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional._checks import check_batch, check_finite_range, check_int
from mixmask.functional._memory import empty
from mixmask.functional.params import MixParams

__all__ = ["mix_inputs", "mix_class_targets", "mix_dense_targets", "pair_class_targets", "pair_dense_targets",
           "PairTargets", "check_inputs", "check_class_targets", "check_dense_targets", "check_fill"]

#: Largest gap allowed between 1 and the sum of a soft single-label target row.
ROW_SUM_TOLERANCE = 1e-3
#: Elements per sample from which a CPU draw of boxes is pasted box by box (one slice copy per box)
#: instead of blending the whole batch: below it, the Python work per box costs more than a full pass.
BOX_PASTE_MIN = 1 << 14


def _check_params(params: MixParams, batch_size: int, spatial_shape: tuple[int, ...], what: str) -> None:
    if not isinstance(params, MixParams):
        raise MixMaskError(f"expected params as mixmask.MixParams, but got {type(params).__name__}")
    if params.batch_size != batch_size or params.spatial_shape != tuple(spatial_shape):
        raise MixMaskError(f"params were drawn for a batch of {params.batch_size} with spatial shape "
                           f"{params.spatial_shape}, but got {what} with batch {batch_size} and spatial "
                           f"shape {tuple(spatial_shape)}")


def _values_checked(tensor: Tensor, validate: bool | None) -> bool:
    """Whether to check values: always on CPU, on accelerators only when asked (it syncs the host)."""
    return tensor.device.type == "cpu" if validate is None else validate


def _grad(tensor: Tensor) -> bool:
    return tensor.requires_grad and torch.is_grad_enabled()


def _compact(mask: Tensor, ndim: int | None = None) -> Tensor:
    """Collapse the spatial dims of a constant (expanded) mask to size 1: ``(B, 1, ..., 1)``, with ``ndim``
    dims in all when given (one strided view: no tensor op per dim)."""
    ndim = mask.ndim if ndim is None else ndim
    if mask.ndim > 1 and all(s == 0 for s in mask.stride()[1:]):
        return mask.as_strided((mask.shape[0],) + (1,) * (ndim - 1), (mask.stride(0),) + (1,) * (ndim - 1))
    return mask


# -- checks --------------------------------------------------------------------------------------

def check_fill(fill: float, dtype: torch.dtype) -> None:
    """Raise unless inputs of ``dtype`` can hold ``fill`` (uint8: an int in [0, 255]; float16: finite)."""
    if dtype == torch.uint8:
        if not (0 <= fill <= 255 and fill == int(fill)):
            raise MixMaskError(f"expected a fill value that uint8 inputs can hold (an int in [0, 255]), but got "
                               f"{fill!r}")
    elif abs(fill) > torch.finfo(dtype).max:
        raise MixMaskError(f"expected a fill value that {dtype} inputs can hold (|fill| <= "
                           f"{torch.finfo(dtype).max:g}), but got {fill!r}")


def check_inputs(inputs: Tensor, params: MixParams | None = None, *, channels_last: bool | None = False,
                 inplace: bool = False, workspace: Tensor | None = None,
                 validate: bool | None = None) -> tuple[int, int, tuple[int, ...]]:
    """Check an input batch (and the draw for it) without writing anything; return ``(B, C, S)``.

    Raises:
        MixMaskError: see :func:`mix_inputs`.
    """
    batch, channels, spatial = check_batch(inputs, channels_last)
    if params is not None:
        _check_params(params, batch, spatial, f"inputs of shape {tuple(inputs.shape)}")
        if params.any_erase:
            check_fill(params.fill, inputs.dtype)
    if inplace and _grad(inputs):
        raise MixMaskError("inplace=True writes into the inputs, but they require grad: mix them out of place")
    if workspace is not None:
        if not inplace:
            raise MixMaskError("a workspace is scratch memory for inplace=True (the result is then the inputs), "
                               "but got inplace=False")
        if (workspace.shape != inputs.shape or workspace.dtype != inputs.dtype
                or workspace.device != inputs.device):
            raise MixMaskError(f"expected a workspace like the inputs {tuple(inputs.shape)} {inputs.dtype}, "
                               f"but got {tuple(workspace.shape)} {workspace.dtype} on {workspace.device}")
        if workspace.data_ptr() == inputs.data_ptr():
            raise MixMaskError("expected a workspace apart from the inputs, but got the inputs' own memory")
    if validate and inputs.dtype.is_floating_point:
        bad = int((~torch.isfinite(inputs)).sum())
        if bad:
            raise MixMaskError(f"expected finite inputs, but got {bad} NaN or infinite values in a batch of "
                               f"shape {tuple(inputs.shape)}")
    return batch, channels, spatial


def check_class_targets(targets: Tensor, batch_size: int, *, num_classes: int | None = None,
                        multi_label: bool = False, validate: bool | None = None) -> int:
    """Check class targets for ``batch_size`` samples without writing anything; return K.

    Raises:
        MixMaskError: see :func:`mix_class_targets`.
    """
    if not isinstance(targets, Tensor):
        raise MixMaskError(f"expected labels as a torch.Tensor, but got {type(targets).__name__}")
    if targets.ndim == 0 or targets.shape[0] != batch_size:
        raise MixMaskError(f"expected labels for {batch_size} samples, but got shape {tuple(targets.shape)}")
    if targets.is_complex() or (targets.dtype.is_floating_point and targets.dtype.itemsize == 1):
        raise MixMaskError(f"expected integer or float16/32/64 labels, but got dtype {targets.dtype}")
    check = _values_checked(targets, validate) and targets.numel() > 0
    if targets.ndim == 1 and not targets.dtype.is_floating_point and targets.dtype != torch.bool:
        if num_classes is None:
            raise MixMaskError(f"sparse labels of shape {tuple(targets.shape)} need num_classes, but got None")
        if check:
            low, high = _id_range(targets)
            if low < 0 or high >= num_classes:
                raise MixMaskError(f"expected labels in [0, {num_classes}), but got values from {low} to {high}")
        return num_classes
    if targets.ndim != 2:
        raise MixMaskError(f"expected labels as (B,) int ids or (B, K) targets, but got shape {tuple(targets.shape)}")
    if num_classes is not None and targets.shape[1] != num_classes:
        raise MixMaskError(f"expected targets with num_classes={num_classes} columns, but got shape "
                           f"{tuple(targets.shape)}")
    integer = not targets.dtype.is_floating_point
    if integer and targets.shape[1] == 1 and not multi_label:
        raise MixMaskError(f"integer labels of shape {tuple(targets.shape)} are ambiguous: pass (B,) class ids "
                           "(labels[:, 0]) with num_classes, float (B, K) targets, or multi_label=True")
    if check:
        values = targets.detach()
        low, high = float(values.amin()), float(values.amax())
        if multi_label or integer:
            bad = not (0 <= low and high <= 1) or (integer and bool(((values != 0) & (values != 1)).any()))
            if bad:
                kind = "0 or 1" if integer else "in [0, 1]"
                raise MixMaskError(f"expected {'multi-label' if multi_label else 'one-hot'} targets {kind}, but "
                                   f"got values from {low} to {high}")
        elif not low >= 0:  # NaN fails too
            raise MixMaskError(f"expected soft targets >= 0, but got values from {low} to {high}")
        if not multi_label:
            sums = values.sum(1, dtype=torch.float64)
            gap = float((sums - 1).abs().max())
            if not gap <= ROW_SUM_TOLERANCE:
                worst = int((sums - 1).abs().nan_to_num(float("inf")).argmax())
                raise MixMaskError(f"expected single-label targets whose rows sum to 1 (pass multi_label=True "
                                   f"for independent labels), but row {worst} sums to {float(sums[worst])}")
    return targets.shape[1]


def _id_range(ids: Tensor) -> tuple[int, int]:
    """Smallest and largest of a non-empty integer tensor (CPU ones through numpy: one call, no dispatch)."""
    if ids.device.type == "cpu":
        values = ids.numpy()
        return int(values.min()), int(values.max())
    return tuple(int(v) for v in torch.aminmax(ids))


def _dense_ids(targets: Tensor, batch_size: int, spatial: tuple[int, ...]) -> tuple[Tensor, bool]:
    """A ``(B, *S)`` id map from ``(B, *S)`` or ``(B, 1, *S)``, and whether it had the channel."""
    if not isinstance(targets, Tensor):
        raise MixMaskError(f"expected dense targets as a torch.Tensor, but got {type(targets).__name__}")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool or targets.is_complex():
        raise MixMaskError(f"expected a dense map of integer class ids, but got dtype {targets.dtype}")
    if tuple(targets.shape) == (batch_size, *spatial):
        return targets, False
    if tuple(targets.shape) == (batch_size, 1, *spatial):
        return targets[:, 0], True
    raise MixMaskError(f"expected dense targets of shape {(batch_size, *spatial)} or "
                       f"{(batch_size, 1, *spatial)}, but got {tuple(targets.shape)}")


def check_ignore_index(ignore_index: int | None, num_classes: int | None, dtype: torch.dtype | None = None) -> None:
    """Raise when ``ignore_index`` is a real class id, or a value that maps of ``dtype`` cannot hold."""
    if ignore_index is None:
        return
    if num_classes is not None and 0 <= ignore_index < num_classes:
        raise MixMaskError(f"ignore_index={ignore_index} is a real class id with num_classes={num_classes}: "
                           f"choose a value outside [0, {num_classes}) (255 and -1 are usual)")
    if dtype is not None:
        info = torch.iinfo(dtype)
        if not info.min <= ignore_index <= info.max:
            raise MixMaskError(f"ignore_index={ignore_index} cannot be held by {dtype} maps (range [{info.min}, "
                               f"{info.max}]): choose another ignore_index or convert the maps")


def check_dense_targets(targets: Tensor, batch_size: int, spatial_shape: tuple[int, ...], *,
                        num_classes: int | None = None, ignore_index: int | None = None,
                        soft: bool = False, validate: bool | None = None) -> None:
    """Check dense id maps (mixed with a soft mask when ``soft``) without writing anything.

    Raises:
        MixMaskError: see :func:`mix_dense_targets`.
    """
    ids, _ = _dense_ids(targets, batch_size, tuple(spatial_shape))
    check_ignore_index(ignore_index, num_classes, ids.dtype)
    if soft and num_classes is None:
        raise MixMaskError("a soft mask (MixUp, soft FMix, SmoothMix, or a policy that may draw one) turns dense "
                           "targets into per-pixel soft targets, which needs num_classes, but got None")
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


# -- inputs --------------------------------------------------------------------------------------

def mix_inputs(inputs: Tensor, params: MixParams, *, channels_last: bool = False, inplace: bool = False,
               workspace: Tensor | None = None, validate: bool | None = None) -> Tensor:
    """Mix a batch: ``out[i] = M[i] * x[i] + (1 - M[i]) * partner[i]``.

    Float inputs (float16, bfloat16, float32, float64) are mixed in their dtype with ``torch.lerp``,
    which is exact at weights 0 and 1, so a binary mask copies finite pixels bit for bit. uint8 inputs
    stay uint8: a binary mask copies pixels exactly (``partner + M * (x - partner)`` in wrapping uint8
    arithmetic), a soft mask is applied in float32 and rounded. Inputs that require grad are mixed
    out of place (gradients reach both ``x[i]`` and ``x[j]``). Inputs are expected finite: a NaN or
    inf in one sample reaches the pixel at the same place in its partner's output too (``0 * inf`` is
    NaN); ``validate=True`` checks it.

    Args:
        inputs: ``(B, C, *S)``, or ``(B, *S, C)`` with ``channels_last=True``.
        params: a draw for batch B and spatial shape S.
        channels_last: layout of ``inputs``.
        inplace: write the result into ``inputs`` (for a batch the caller owns, e.g. in a collate).
        workspace: with ``inplace=True``, a tensor like ``inputs`` to gather partners into, reused
            across calls (scratch memory: the result is ``inputs``, never the workspace).
        validate: check that float inputs are finite (a full pass over the batch; off by default).

    Returns:
        The mixed batch, same shape, dtype and device as ``inputs`` (``inputs`` itself with ``inplace``).

    Raises:
        MixMaskError: not MixParams; a wrong rank, dtype or empty batch; params drawn for another shape;
            a fill value the dtype cannot hold; ``inplace`` on inputs that require grad; a workspace
            without ``inplace`` or unlike the inputs; non-finite inputs when ``validate=True``.
    """
    check_inputs(inputs, params, channels_last=channels_last, inplace=inplace, workspace=workspace,
                 validate=validate)
    return _mix_inputs(inputs, params, channels_last=channels_last, inplace=inplace, workspace=workspace)


def _mix_inputs(inputs: Tensor, params: MixParams, *, channels_last: bool, inplace: bool = False,
                workspace: Tensor | None = None) -> Tensor:
    """:func:`mix_inputs` for arguments that passed :func:`check_inputs`."""
    if not params.mixed:
        return inputs if inplace else inputs.clone()
    params = params.to(inputs.device)
    grad = _grad(inputs)
    if _pastes_boxes(inputs, params) and not grad:
        return _paste_boxes(inputs, params, channels_last, inplace)
    weights = params._box_weights(inputs.dtype) if inputs.dtype.is_floating_point else None
    mask = _compact(params.mask if weights is None else weights, inputs.ndim)
    if mask.shape[0] > 1 and mask.stride(0) == 0:  # one mask for the whole batch: broadcast, never copied
        mask = mask[:1]
    if mask.ndim < inputs.ndim:
        mask = mask.unsqueeze(-1) if channels_last else mask.unsqueeze(1)
    own_out = inputs if inplace else None
    if params.all_erase and not params.warps:  # constant fills only: the partner is the fill, no gather
        soft_uint8 = inputs.dtype == torch.uint8 and not params.binary
        fill = torch.full((), params.fill, dtype=torch.float32 if soft_uint8 else inputs.dtype,
                          device=inputs.device).expand(inputs.shape)
        out = own_out if own_out is not None or grad else empty(inputs.shape, inputs.dtype, inputs.device)
        return _blend(inputs, fill, mask, out)
    if grad:
        partner = inputs.index_select(0, params.index)
    else:
        buffer = workspace if workspace is not None else empty(inputs.shape, inputs.dtype, inputs.device)
        partner = torch.index_select(inputs, 0, params.index, out=buffer)
    if params.any_erase:
        erase = params.erase.view((-1,) + (1,) * (inputs.ndim - 1))
        partner = partner.masked_fill(erase, params.fill) if grad else partner.masked_fill_(erase, params.fill)
    for warp in params.warps:
        if warp.rows.shape[0] == partner.shape[0]:  # every row (rows are ascending and distinct)
            partner = warp.warp_inputs(partner, channels_last)
            continue
        changed = warp.warp_inputs(partner.index_select(0, warp.rows), channels_last)
        partner = partner.index_copy(0, warp.rows, changed) if grad else partner.index_copy_(0, warp.rows, changed)
    if grad:
        return _blend(inputs, partner, mask, None)
    return _blend(inputs, partner, mask, own_out if own_out is not None else partner)


def _pastes_boxes(tensor: Tensor, params: MixParams) -> bool:
    """Whether to paste the draw's boxes one slice each (CPU, box masks, samples large enough)."""
    return (params.boxes is not None and not params.warps and tensor.device.type == "cpu"
            and math.prod(tensor.shape[1:]) >= BOX_PASTE_MIN)


def _paste_boxes(inputs: Tensor, params: MixParams, channels_last: bool, inplace: bool) -> Tensor:
    """Copy each sample's boxes from its partner: only box pixels are written (besides the copy of the batch
    when not in place). Bit for bit what blending with the 0/1 mask gives."""
    lows, highs = params.boxes[:, :, 0].tolist(), params.boxes[:, :, 1].tolist()
    pastes = []
    for i, j in enumerate(params.index.tolist()):
        for low, high in zip(lows[i], highs[i]):
            if all(h > lo for lo, h in zip(low, high)):
                box = tuple(slice(lo, h) for lo, h in zip(low, high))
                pastes.append(((i, *box, ...) if channels_last else (i, ..., *box), (j, *box, ...) if channels_last
                               else (j, ..., *box)))
    if inplace:  # the partners' boxes are read before any is written
        sources = [inputs[source].clone() for _, source in pastes]
        out = inputs
    else:
        out = empty(inputs.shape, inputs.dtype, inputs.device).copy_(inputs)
        sources = [inputs[source] for _, source in pastes]
    for (target, _), source in zip(pastes, sources):
        out[target] = source
    return out


def _blend(inputs: Tensor, partner: Tensor, mask: Tensor, out: Tensor | None) -> Tensor:
    """``mask * inputs + (1 - mask) * partner``, into ``out`` (``inputs``, ``partner``, a new buffer, or
    None: a new tensor that autograd can see through)."""
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
    if mask.dtype == inputs.dtype:  # weights made for these inputs (box weights, float32 soft masks)
        weight = mask
    elif mask.numel() < inputs.numel() // 8 or out is None:
        weight = mask.to(inputs.dtype)
    else:
        weight = empty(mask.shape, inputs.dtype, mask.device).copy_(mask)
    if out is None:
        return torch.lerp(partner, inputs, weight)
    return torch.lerp(partner, inputs, weight, out=out)


# -- class targets -------------------------------------------------------------------------------

def _class_targets(targets: Tensor, num_classes: int | None) -> Tensor:
    """Checked sparse ``(B,)`` ids or ``(B, K)`` targets as float ``(B, K)``."""
    if targets.ndim == 1:
        # one-hot rows written straight into float32 (no int64 (B, K) intermediate)
        return torch.zeros((targets.shape[0], num_classes), device=targets.device).scatter_(
            1, targets.long()[:, None], 1.0)
    return targets if targets.dtype.is_floating_point else targets.float()


def _mix_class_ids(ids: Tensor, params: MixParams, num_classes: int) -> Tensor:
    """Sparse ids straight into mixed rows: ``w`` at the own id, ``1 - w`` at the partner's, 1 where both are
    one id — the bytes the one-hot blend gives (``torch.lerp`` of 0 and 1 is ``w`` and ``fl(1 - w)`` exactly).
    On the CPU the B row values are written through numpy (two fancy-index assignments, no tensor op per
    step); elsewhere two scatters."""
    weight = params.label_lam.to(ids.device, torch.float32)
    out = torch.zeros((ids.shape[0], num_classes), device=ids.device)
    own = ids.numpy() if ids.device.type == "cpu" and params.index.device.type == "cpu" else None
    # ids out of range (unchecked with validate=False) go to the scatters, which raise as they always did
    # (numpy would wrap a negative id around)
    if own is not None and not weight.requires_grad and 0 <= own.min() and own.max() < num_classes:
        partner = own[params.index.numpy()]
        rows, w = np.arange(own.shape[0]), weight.numpy()
        values = out.numpy()
        values[rows, own] = w
        values[rows, partner] = np.where(own == partner, np.float32(1.0), np.float32(1.0) - w)
        return out
    ids = ids.long()
    partner_ids = ids.index_select(0, params.index.to(ids.device))
    same = ids == partner_ids
    out.scatter_(1, ids[:, None], torch.where(same, 1.0, weight)[:, None])
    return out.scatter_add_(1, partner_ids[:, None], torch.where(same, 0.0, 1.0 - weight)[:, None])


def mix_class_targets(targets: Tensor, params: MixParams, *, num_classes: int | None = None,
                      label_smoothing: float = 0.0, multi_label: bool = False,
                      validate: bool | None = None) -> Tensor:
    """Mix class targets with the label weight of each sample: ``w[i] * y[i] + (1 - w[i]) * y[j[i]]``.

    ``w`` is ``params.label_lam``: the mask's mean, 1 for GridMask samples and reformulated draws.

    Args:
        targets: ``(B,)`` int class ids (needs ``num_classes``), ``(B, K)`` one-hot/soft targets whose
            rows sum to 1, or ``(B, K)`` multi-label targets in [0, 1] (``multi_label=True``).
        params: the draw used for the inputs.
        num_classes: K, for sparse ids.
        label_smoothing: eps in [0, 1): single-label targets become ``y * (1 - eps) + eps / K``,
            multi-label ones ``y * (1 - eps) + eps / 2`` entry by entry.
        multi_label: the targets are independent labels.
        validate: check values (default: on CPU only, since it syncs an accelerator).

    Returns:
        float ``(B, K)`` soft targets; single-label rows sum to 1.

    Raises:
        MixMaskError: not MixParams or not a tensor; a wrong shape or batch; sparse ids without
            ``num_classes`` or out of ``[0, num_classes)``; ``(B, 1)`` integer labels (ambiguous);
            single-label rows that do not sum to 1 (or hold NaN); multi-label values outside [0, 1];
            a bad ``label_smoothing``.
    """
    if not isinstance(params, MixParams):
        raise MixMaskError(f"expected params as mixmask.MixParams, but got {type(params).__name__}")
    eps = check_finite_range("label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)
    check_class_targets(targets, params.batch_size, num_classes=num_classes, multi_label=multi_label,
                        validate=validate)
    return _mix_class_targets(targets, params, num_classes=num_classes, label_smoothing=eps, multi_label=multi_label)


def _mix_class_targets(targets: Tensor, params: MixParams, *, num_classes: int | None, label_smoothing: float,
                       multi_label: bool) -> Tensor:
    """:func:`mix_class_targets` for arguments that passed :func:`check_class_targets`."""
    if targets.ndim == 1 and label_smoothing == 0 and not _grad(targets):
        return _mix_class_ids(targets, params, num_classes)
    soft = _class_targets(targets, num_classes)
    if label_smoothing > 0:
        soft = soft * (1.0 - label_smoothing) + (label_smoothing / 2 if multi_label else label_smoothing / soft.shape[1])
    index, weight = params.index.to(soft.device), params.label_lam.to(soft.device, soft.dtype)
    partner = soft.index_select(0, index)
    if _grad(soft):
        return torch.lerp(partner, soft, weight[:, None])
    return torch.lerp(partner, soft, weight[:, None], out=partner)


# -- dense targets -------------------------------------------------------------------------------

def mix_dense_targets(targets: Tensor, params: MixParams, *, num_classes: int | None = None,
                      ignore_index: int | None = None, validate: bool | None = None) -> Tensor:
    """Mix dense targets (segmentation maps of ids) with the mask that mixed the inputs.

    With a binary mask each pixel takes its id from the sample that supplied the pixel, so ids are
    never interpolated. With a soft mask (MixUp, soft FMix, SmoothMix) the result is per-pixel soft
    targets. Pixels equal to ``ignore_index`` stay ignored (weight 0 in soft targets). Where GridMask
    or Cutout drops a pixel it becomes ``ignore_index`` when one is given, else it keeps its id (the
    object is still there, only hidden). ResizeMix's partner maps are resized with the nearest pixel.

    Args:
        targets: int ``(B, *S)`` or ``(B, 1, *S)`` ids.
        params: the draw used for the inputs.
        num_classes: K; required for soft masks, and used to check ids.
        ignore_index: id of pixels without a label; not a real class id, and a value the map's dtype holds.
        validate: check id ranges (default: on CPU only, since it syncs an accelerator).

    Returns:
        Binary mask: ids of the input's shape and dtype. Soft mask: float32 ``(B, K, *S)`` whose
        entries sum to 1 per pixel, less the weight of ignored pixels.

    Raises:
        MixMaskError: not MixParams; not an integer tensor of shape ``(B, *S)`` / ``(B, 1, *S)``; ids out
            of range; a soft mask without ``num_classes``; a bad ``ignore_index``.
    """
    if not isinstance(params, MixParams):
        raise MixMaskError(f"expected params as mixmask.MixParams, but got {type(params).__name__}")
    if ignore_index is not None:
        ignore_index = check_int("ignore_index", ignore_index)
    check_dense_targets(targets, params.batch_size, params.spatial_shape, num_classes=num_classes,
                        ignore_index=ignore_index, soft=not params.binary, validate=validate)
    return _mix_dense_targets(targets, params, num_classes=num_classes, ignore_index=ignore_index)


def _warped_ids(ids: Tensor, params: MixParams) -> Tensor:
    """The partner ids ``ids[index]``, changed by the draw's warps (a new tensor)."""
    partner = torch.index_select(ids, 0, params.index, out=empty(ids.shape, ids.dtype, ids.device))
    for warp in params.warps:
        if warp.rows.shape[0] == partner.shape[0]:  # every row (rows are ascending and distinct)
            partner = warp.warp_ids(partner)
        else:
            partner.index_copy_(0, warp.rows, warp.warp_ids(partner.index_select(0, warp.rows)))
    return partner


def _mix_dense_targets(targets: Tensor, params: MixParams, *, num_classes: int | None,
                       ignore_index: int | None) -> Tensor:
    """:func:`mix_dense_targets` for arguments that passed :func:`check_dense_targets`."""
    ids, had_channel = _dense_ids(targets, params.batch_size, params.spatial_shape)
    if not params.mixed and params.binary:
        return targets.clone()
    params = params.to(ids.device)
    erase = params.erase.view(-1, *[1] * (ids.ndim - 1))
    mask = _compact(params.mask)
    if params.binary and _pastes_boxes(ids, params):
        mixed = _paste_boxes(ids.unsqueeze(1), params, False, False)[:, 0]
        return mixed.unsqueeze(1) if had_channel else mixed
    if params.binary:
        partner = _warped_ids(ids, params)
        if params.any_erase:  # GridMask hides pixels but keeps the object: own ids, or ignore_index
            mixed = torch.where(mask | erase, ids, partner, out=partner)
            if ignore_index is not None:
                mixed.masked_fill_(erase & ~mask, ignore_index)
        else:
            mixed = torch.where(mask, ids, partner, out=partner)
        return mixed.unsqueeze(1) if had_channel else mixed
    valid = ids != ignore_index if ignore_index is not None else torch.ones_like(ids, dtype=torch.bool)
    own_ids = torch.where(valid, ids, 0).long()
    partner_ids = _warped_ids(own_ids, params)
    partner_valid = _warped_ids(valid.view(torch.uint8), params).view(torch.bool)
    if params.any_erase:  # GridMask: the hidden part keeps the sample's own ids, or is ignored
        partner_ids = torch.where(erase, own_ids, partner_ids)
        partner_valid = torch.where(erase, valid & (ignore_index is None), partner_valid)
    weight = mask.float().expand(ids.shape)
    soft = torch.zeros((ids.shape[0], num_classes, *ids.shape[1:]), dtype=torch.float32, device=ids.device)
    soft.scatter_add_(1, own_ids.unsqueeze(1), (weight * valid).unsqueeze(1))
    return soft.scatter_add_(1, partner_ids.unsqueeze(1), ((1.0 - weight) * partner_valid).unsqueeze(1))


# -- targets as pairs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PairTargets:
    """The targets of a mixed batch without soft ``(B, K)`` or ``(B, K, *S)`` tensors.

    ``target = weight * onehot(own) + (1 - weight) * onehot(partner)``, kept as its three parts:
    :func:`~mixmask.mixed_cross_entropy` computes the soft-target loss from them exactly, in memory
    that does not grow with K (21k classes, or 21 classes at every pixel).

    Attributes:
        own: ``(B,)`` class ids, or ``(B, *S)`` id maps.
        partner: the partner's ids, same shape (warped like the pixels; for GridMask samples the own
            ids, or ``ignore_index`` where pixels were dropped and an ``ignore_index`` is given).
        weight: the own weight: ``(B,)`` for class ids, ``(B, *S)`` (or broadcastable to it: a
            constant mask) for id maps; bool for binary masks.
        label_smoothing: eps the loss applies to class targets (``y * (1 - eps) + eps / K``).
        ignore_index: id of ignored pixels in the maps, or None.
    """

    own: Tensor
    partner: Tensor
    weight: Tensor
    label_smoothing: float = 0.0
    ignore_index: int | None = None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PairTargets:
        """The same targets on ``device``."""
        move = [t.to(device, non_blocking=non_blocking) for t in (self.own, self.partner, self.weight)]
        return PairTargets(*move, self.label_smoothing, self.ignore_index)


def pair_class_targets(labels: Tensor, params: MixParams, *, label_smoothing: float = 0.0) -> PairTargets:
    """Class ids of a mixed batch as :class:`PairTargets` (``own``, ``own[index]``, ``label_lam``).

    Raises:
        MixMaskError: not MixParams; labels that are not ``(B,)`` integer class ids.
    """
    if not isinstance(params, MixParams):
        raise MixMaskError(f"expected params as mixmask.MixParams, but got {type(params).__name__}")
    eps = check_finite_range("label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)
    _check_pair_labels(labels, params.batch_size)
    return _pair_class_targets(labels, params, eps)


def _check_pair_labels(labels: Tensor, batch_size: int) -> None:
    if not isinstance(labels, Tensor) or labels.shape != (batch_size,) or labels.dtype.is_floating_point \
            or labels.dtype == torch.bool or labels.is_complex():
        got = f"{labels.dtype} of shape {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
        raise MixMaskError(f"pair targets take ({batch_size},) integer class ids, but got {got}: use the soft "
                           "targets for one-hot, soft or multi-label targets")


def _pair_class_targets(labels: Tensor, params: MixParams, label_smoothing: float) -> PairTargets:
    index = params.index.to(labels.device)
    return PairTargets(labels, labels.index_select(0, index), params.label_lam.to(labels.device), label_smoothing)


def pair_dense_targets(targets: Tensor, params: MixParams, *, num_classes: int | None = None,
                       ignore_index: int | None = None, validate: bool | None = None) -> PairTargets:
    """Dense id maps of a mixed batch as :class:`PairTargets` (own maps, partner maps, the mask).

    For soft masks (MixUp, soft FMix) this replaces ``(B, K, *S)`` soft targets and needs no
    ``num_classes``; for binary masks it gives the same loss as the mixed id map.

    Raises:
        MixMaskError: see :func:`mix_dense_targets` (``num_classes`` only checks ids here).
    """
    if not isinstance(params, MixParams):
        raise MixMaskError(f"expected params as mixmask.MixParams, but got {type(params).__name__}")
    if ignore_index is not None:
        ignore_index = check_int("ignore_index", ignore_index)
    check_dense_targets(targets, params.batch_size, params.spatial_shape, num_classes=num_classes,
                        ignore_index=ignore_index, validate=validate)
    return _pair_dense_targets(targets, params, ignore_index)


def _pair_dense_targets(targets: Tensor, params: MixParams, ignore_index: int | None) -> PairTargets:
    ids, _ = _dense_ids(targets, params.batch_size, params.spatial_shape)
    params = params.to(ids.device)
    partner = _warped_ids(ids, params)
    if params.any_erase:  # GridMask: hidden pixels keep their own ids, or are ignored
        erase = params.erase.view(-1, *[1] * (ids.ndim - 1))
        hidden = ids if ignore_index is None else torch.full_like(ids, ignore_index)
        partner = torch.where(erase, hidden, partner, out=partner)
    return PairTargets(ids, partner, _compact(params.mask), 0.0, ignore_index)
