"""A loss for mixed targets where ``torch.nn.functional.cross_entropy`` has no answer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mixmask.errors import MixMaskError

__all__ = ["mixed_cross_entropy"]


def mixed_cross_entropy(logits: Tensor, targets: Tensor, *, ignore_index: int = -100) -> Tensor:
    """Cross-entropy for hard or soft, class or dense targets, with ignored pixels.

    Hard targets (int ids) go to ``F.cross_entropy`` with ``ignore_index``. Soft targets
    ``(B, K, *S)`` may carry less than unit weight per pixel (ignored pixels, which ``F.cross_entropy``
    cannot express with probabilities): the loss is ``sum(-t * log_softmax(logits)) / sum(t)``,
    which equals the hard loss when the targets are one-hot.

    Args:
        logits: ``(B, K, *S)`` or ``(B, K)``.
        targets: int ids ``(B, *S)`` / ``(B,)``, or float ``(B, K, *S)`` / ``(B, K)``.
        ignore_index: id of ignored pixels in hard targets.

    Returns:
        Scalar mean loss over the labelled weight.

    Raises:
        MixMaskError: soft targets whose shape differs from the logits'.
    """
    if not targets.dtype.is_floating_point:
        return F.cross_entropy(logits, targets.long(), ignore_index=ignore_index)
    if targets.shape != logits.shape:
        raise MixMaskError(f"expected soft targets of the logits' shape {tuple(logits.shape)}, but got "
                           f"{tuple(targets.shape)}")
    losses = -(targets * F.log_softmax(logits.float(), dim=1)).sum()
    return losses / targets.sum().clamp_min(torch.finfo(torch.float32).tiny)
