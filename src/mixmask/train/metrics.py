"""Metrics from a confusion matrix: accuracy, per-class IoU, mean IoU."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["confusion_matrix", "accuracy", "iou_per_class"]


def confusion_matrix(target: Tensor, pred: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """Counts ``cm[t, p]`` of true class ``t`` predicted as ``p``.

    Args:
        target: int ids of any shape (``(B,)`` or ``(B, *S)``).
        pred: int ids of the same shape.
        num_classes: K.
        ignore_index: target id left out of the counts.

    Returns:
        int64 ``(K, K)`` on ``target``'s device.
    """
    target, pred = target.reshape(-1).long(), pred.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        target, pred = target[keep], pred[keep]
    return torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes).view(num_classes,
                                                                                                   num_classes)


def accuracy(cm: Tensor) -> float:
    """Share of the counts on the diagonal (0 for an empty matrix)."""
    total = int(cm.sum())
    return float(cm.diagonal().sum()) / total if total else 0.0


def iou_per_class(cm: Tensor) -> list[float | None]:
    """Intersection over union of each class; None for a class absent from targets and predictions."""
    inter = cm.diagonal().double()
    union = cm.sum(0).double() + cm.sum(1).double() - inter
    return [float(i / u) if u > 0 else None for i, u in zip(inter, union)]
