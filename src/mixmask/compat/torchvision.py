"""torchvision v2's ``MixUp`` and ``CutMix`` faces over mixmask's transforms.

``torchvision.transforms.v2.MixUp(alpha=, num_classes=, labels_getter=)`` and ``CutMix(...)`` take a
batch in any structure (``(images, labels)``, a dict with a ``"labels"`` key, nested containers),
find the labels with ``labels_getter`` and the image batch by its type, and return the same
structure mixed. These classes do the same with a mixmask draw: per sample by default, one per
batch with ``per_sample=False``. Importing this module imports torchvision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch import Tensor
from torchvision import tv_tensors

from mixmask.errors import MixMaskError
from mixmask.functional._checks import check_finite_range
from mixmask.transforms import mix

__all__ = ["MixUp", "CutMix"]

#: torchvision types that a mixing transform cannot mix and refuses, as torchvision's do.
_REFUSED = (tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)


def _pure(leaf: Any) -> bool:
    return type(leaf) is Tensor


def default_labels(sample: Any) -> Any:
    """torchvision's default ``labels_getter``: the second item of a tuple or list, or a label-like key.

    A tuple or list gives its second item; that item, or the sample itself, if a dict gives the value
    of its key ``"labels"`` (any case), else of the first key containing ``"label"``.

    Raises:
        MixMaskError: no labels where the heuristic looks.
    """
    if isinstance(sample, (tuple, list)):
        if len(sample) < 2:
            raise MixMaskError(f"expected (images, labels, ...) with the labels second, but got a "
                               f"{type(sample).__name__} of {len(sample)} item(s)")
        sample = sample[1]
    if _pure(sample):
        return sample
    if isinstance(sample, Mapping):
        keys = [k for k in sample if isinstance(k, str)]
        key = next((k for k in keys if k.lower() == "labels"), None)
        key = key if key is not None else next((k for k in keys if "label" in k.lower()), None)
        if key is not None:
            return sample[key]
        raise MixMaskError(f"found no 'labels' key among {keys}: pass labels_getter=a callable that returns "
                           "the labels tensor")
    raise MixMaskError(f"expected (images, labels), or a dict with a 'labels' key, but got {type(sample).__name__} "
                       "where the labels should be: pass labels_getter=a callable that returns them")


class _VisionMix:
    """The call of torchvision's v2 MixUp/CutMix around a mixmask transform (``_method``)."""

    _method: type[mix.MixPolicy]

    def __init__(self, *, alpha: float = 1.0, num_classes: int | None = None,
                 labels_getter: Callable[[Any], Any] | str = "default", **options: Any) -> None:
        if isinstance(labels_getter, str) and labels_getter == "default":
            labels_getter = default_labels
        elif not callable(labels_getter):
            raise MixMaskError(f"labels_getter must be 'default' or a callable that returns the labels tensor, but "
                               f"got {labels_getter!r}: mixing needs labels")
        self.alpha = check_finite_range("alpha", alpha, 0.0, float("inf"), low_open=True, high_open=True)
        self.labels_getter = labels_getter
        self.transform = self._method(self.alpha, num_classes=num_classes, **options)
        self.num_classes = self.transform.num_classes

    def __call__(self, *inputs: Any) -> Any:
        """Mix the image batch and the labels found in ``inputs``; return the same structure.

        The labels are what ``labels_getter`` returns: ``(B,)`` ids (with ``num_classes``) or ``(B, K)``
        targets; they come back as ``(B, K)`` soft targets. The image batch is every
        ``tv_tensors.Image``/``Video`` (all of one batch size and ``H, W``, mixed with one draw), or,
        when there is none, the first plain tensor other than the labels. A ``tv_tensors.Mask`` batch
        is mixed with the same draw as dense maps (torchvision refuses masks). Other leaves pass
        through; types are kept.

        Raises:
            MixMaskError: no labels or no image batch; boxes, keypoints or PIL images; more than one
                mask; and the checks of the mixmask transform. Nothing is drawn or written then.
        """
        sample = inputs if len(inputs) > 1 else inputs[0]
        labels = self.labels_getter(sample)
        if not isinstance(labels, Tensor):
            raise MixMaskError(f"expected labels_getter to return the labels tensor, but got {type(labels).__name__}")
        flat, spec = pytree.tree_flatten(sample)
        at_labels = [k for k, leaf in enumerate(flat) if leaf is labels]
        if not at_labels:
            raise MixMaskError("labels_getter returned a tensor that is not in the inputs")
        refused = sorted({type(leaf).__name__ for leaf in flat
                          if isinstance(leaf, _REFUSED) or type(leaf).__module__.startswith("PIL")})
        if refused:
            raise MixMaskError(f"{type(self).__name__} mixes tensor image batches, but got {', '.join(refused)}: "
                               "convert PIL images to tensors, and leave boxes and keypoints out")
        at_images = [k for k, leaf in enumerate(flat) if isinstance(leaf, (tv_tensors.Image, tv_tensors.Video))]
        if not at_images:
            at_images = [k for k, leaf in enumerate(flat) if _pure(leaf) and leaf is not labels][:1]
        if not at_images:
            raise MixMaskError(f"expected an image batch (a tensor or tv_tensors.Image/Video) beside the labels, but "
                               f"found none among {[type(leaf).__name__ for leaf in flat]}")
        sizes = {(flat[k].shape[0], *flat[k].shape[-2:]) for k in at_images}
        if len(sizes) > 1:
            raise MixMaskError(f"expected the image and video batches to share (B, H, W), but got {sorted(sizes)}")
        at_masks = [k for k, leaf in enumerate(flat) if isinstance(leaf, tv_tensors.Mask)]
        if len(at_masks) > 1:
            raise MixMaskError(f"expected at most one tv_tensors.Mask batch, but got {len(at_masks)}")
        maps = flat[at_masks[0]] if at_masks else None
        for k in at_images[1:]:  # checked before the draw (a draw from a throwaway generator does the checks)
            self.transform.sample(flat[k], generator=torch.Generator())
        out = self.transform(flat[at_images[0]], labels, maps)
        flat[at_images[0]] = out.inputs
        for k in at_images[1:]:
            flat[k] = self.transform.apply(out.params, flat[k]).inputs
        for k in at_labels:
            flat[k] = out.targets
        if at_masks:
            flat[at_masks[0]] = out.masks
        return pytree.tree_unflatten(flat, spec)

    def __repr__(self) -> str:
        inner = repr(self.transform)
        return f"{type(self).__name__}({inner[inner.index('(') + 1:-1]})"


class MixUp(_VisionMix):
    """torchvision v2's ``MixUp`` (same arguments and call), drawing **per sample** by default.

    ``images, labels = MixUp(alpha=1.0, num_classes=K)(images, labels)``, or any structure that
    ``labels_getter`` understands (``{"image": ..., "labels": ...}``); ``tv_tensors.Image``/``Video``
    batches keep their type, labels become ``(B, K)`` float soft targets.

    Where it deliberately differs from torchvision's ``v2.MixUp``:

    - a lam and a partner **per sample** (pass ``per_sample=False`` for one lam per batch, as
      torchvision draws);
    - partners are a random permutation without self-pairs (torchvision pairs ``x[i]`` with
      ``x[i - 1]`` and relies on a shuffled batch); ``pairing="flip"`` or ``"other_class"`` also exist;
    - uint8 batches stay uint8, rounded once (torchvision's MixUp fails on uint8);
    - draws come from mixmask's per-process stream (``seed=``), not torch's global generator;
    - ``(B, K)`` labels must be one-hot or soft rows that sum to 1 (or ``multi_label=True``).

    Args:
        alpha: Beta concentration of lam.
        num_classes: K, needed for ``(B,)`` ids.
        labels_getter: ``"default"`` (see :func:`default_labels`) or a callable from the call's input
            to the labels tensor.
        **options: :class:`mixmask.MixUp`'s options: ``per_sample``, ``pairing``, ``p``,
            ``label_smoothing``, ``seed``, ...

    Example:
        >>> mixup = MixUp(alpha=1.0, num_classes=10, seed=0)
        >>> images, labels = mixup(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> labels.shape
        torch.Size([8, 10])
    """

    _method = mix.MixUp


class CutMix(_VisionMix):
    """torchvision v2's ``CutMix`` (same arguments and call), drawing **per sample** by default.

    Differences from torchvision's ``v2.CutMix`` are those of :class:`MixUp` (per-sample boxes, no
    self-pairs, mixmask's stream; uint8 pixels are exact copies in both), and the box: its sides are
    ``round(side * sqrt(1 - lam))`` where torchvision's are ``2 * int(side * sqrt(1 - lam) / 2)`` (up
    to 2 pixels smaller). Labels are the area outside the clipped box, as in torchvision.

    Args:
        alpha, num_classes, labels_getter: as in :class:`MixUp`.
        **options: :class:`mixmask.CutMix`'s options: ``num_boxes``, ``size_range``, ``per_sample``,
            ``pairing``, ``p``, ``label_smoothing``, ``seed``, ...

    Example:
        >>> cutmix = CutMix(num_classes=10, seed=0)
        >>> batch = cutmix({"image": torch.ones(8, 3, 32, 32), "labels": torch.arange(8)})
        >>> batch["labels"].shape
        torch.Size([8, 10])
    """

    _method = mix.CutMix
