"""A loss for mixed targets where ``torch.nn.functional.cross_entropy`` has no answer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional.kernels import PairTargets

__all__ = ["mixed_cross_entropy"]


def mixed_cross_entropy(logits: Tensor, targets: Tensor | PairTargets, *, ignore_index: int = -100) -> Tensor:
    """Cross-entropy for hard, soft or pair targets, class or dense, with ignored pixels.

    Hard targets (int ids) go to ``F.cross_entropy`` with ``ignore_index``. Soft targets
    ``(B, K, *S)`` may carry less than unit weight per pixel (ignored pixels, which ``F.cross_entropy``
    cannot express with probabilities): the loss is ``sum(-t * log_softmax(logits)) / sum(t)``,
    which equals the hard loss when the targets are one-hot. :class:`PairTargets` give the same value
    as the soft targets they stand for, from two gathers of the log-probabilities: no ``(B, K, *S)``
    target tensor is made.

    Args:
        logits: ``(B, K, *S)`` or ``(B, K)``.
        targets: int ids ``(B, *S)`` / ``(B,)``, float ``(B, K, *S)`` / ``(B, K)``, or PairTargets.
        ignore_index: id of ignored pixels in hard targets (PairTargets carry their own).

    Returns:
        Scalar mean loss over the labelled weight.

    Raises:
        MixMaskError: targets whose shape does not fit the logits'.
    """
    if isinstance(targets, PairTargets):
        return _pair_cross_entropy(logits, targets)
    if not targets.dtype.is_floating_point:
        return F.cross_entropy(logits, targets.long(), ignore_index=ignore_index)
    if targets.shape != logits.shape:
        raise MixMaskError(f"expected soft targets of the logits' shape {tuple(logits.shape)}, but got "
                           f"{tuple(targets.shape)}")
    losses = -(targets * F.log_softmax(_at_least_float32(logits), dim=1)).sum()
    return losses / targets.sum().clamp_min(torch.finfo(torch.float32).tiny)


def _at_least_float32(logits: Tensor) -> Tensor:
    return logits.float() if logits.dtype.itemsize < 4 else logits


def _pair_cross_entropy(logits: Tensor, targets: PairTargets) -> Tensor:
    """``w * CE(own) + (1 - w) * CE(partner)``, normalised by the labelled weight."""
    own, partner = targets.own, targets.partner
    if logits.ndim != own.ndim + 1 or logits.shape[:1] + logits.shape[2:] != own.shape:
        raise MixMaskError(f"expected logits of shape (B, K, *S) for pair targets of shape {tuple(own.shape)}, "
                           f"but got {tuple(logits.shape)}")
    log_probs = F.log_softmax(_at_least_float32(logits), dim=1)
    weight = targets.weight.to(log_probs.dtype)
    weight = weight.view(weight.shape + (1,) * (own.ndim - weight.ndim)).expand(own.shape)
    ignore = targets.ignore_index
    shares = []
    for ids, share in ((own, weight), (partner, 1.0 - weight)):
        valid = ids != ignore if ignore is not None else None
        index = (ids if valid is None else torch.where(valid, ids, 0)).long().unsqueeze(1)
        nll = -log_probs.gather(1, index).squeeze(1)
        if targets.label_smoothing:
            eps = targets.label_smoothing
            nll = (1.0 - eps) * nll - eps * log_probs.mean(1)
        if valid is not None:
            share = share * valid
        shares.append((share, nll))
    total = sum((share * nll).sum() for share, nll in shares)
    labelled = sum(share.sum() for share, _ in shares)
    return total / labelled.clamp_min(torch.finfo(torch.float32).tiny)
