"""More methods as one-member policies: ResizeMix, SaliencyMix, SmoothMix, GridMix, Cutout and ClassMix.

Each is a :class:`~mixmask.transforms.MixPolicy` over one sampler of :mod:`mixmask.transforms.samplers`,
so it takes every policy option (``p``, ``per_sample``, ``pairing``, ``num_classes``,
``label_smoothing``, ``multi_label``, ``ignore_index``, ``channels_last``, ``seed``, ``validate``),
replays ``params=``, and joins :class:`~mixmask.transforms.RandomChoice` and
:class:`~mixmask.transforms.MixCollate` like the first four.
"""

from __future__ import annotations

from typing import Any, Literal

from mixmask.transforms.mix import _OneMethod
from mixmask.transforms.samplers import (ClassMixSampler, CutoutSampler, GridMixSampler, ResizeMixSampler,
                                         SaliencyMixSampler, SmoothMixSampler)

__all__ = ["ResizeMix", "SaliencyMix", "SmoothMix", "GridMix", "Cutout", "ClassMix"]


class ResizeMix(_OneMethod):
    """ResizeMix (Qin et al., 2020, "ResizeMix: Mixing Data with Preserved Object Information and True Labels").

    The whole partner is resized into a box of side ratio ``tau ~ U(scale)`` (per axis, so the box
    has the image's aspect ratio) at a uniform place inside the image: ``out = M * x + (1 - M) *
    resize(x[j])`` with ``M`` 0 in the box. The sample's label weight is the area outside the box,
    as measured. Dense maps are resized with the nearest pixel. 1-D, 2-D and 3-D.

    Args:
        scale: ``(low, high)`` range of tau in (0, 1] (the paper's 0.1 to 0.8).
        mode: ``"bilinear"`` (linear per axis at pixel centres, no antialiasing) or ``"nearest"``
            (exact copies of the partner's pixels, so uint8 inputs stay exact).
        and the :class:`MixPolicy` arguments (``per_sample=False``: one box for the batch).

    Example:
        >>> out = ResizeMix(num_classes=10, seed=0)(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> bool(torch.allclose(out.targets[torch.arange(8), torch.arange(8)], out.lam))   # 1 - box area
        True
    """

    def __init__(self, *, scale: tuple[float, float] = (0.1, 0.8), mode: Literal["bilinear", "nearest"] = "bilinear",
                 **kwargs: Any) -> None:
        super().__init__(ResizeMixSampler(scale, mode), **kwargs)


class SaliencyMix(_OneMethod):
    """SaliencyMix (Uddin et al., ICLR 2021, "SaliencyMix: A Saliency Guided Data Augmentation Strategy").

    CutMix's box (volume ``(1 - lam) * |S|``, ``lam ~ Beta(alpha, alpha)``) centred on the peak of the
    partner's saliency map, clipped to the image; lam is the area outside it. The saliency is the
    ``saliency=`` map passed to the call when there is one (any ``(B, *S)`` map: a model's gradients,
    attention, ...), else the spectral residual of each partner
    (:func:`mixmask.functional.spectral_saliency`), computed for the whole batch in one pass of FFTs.
    1-D, 2-D and 3-D.

    Args:
        alpha: Beta concentration.
        saliency_size: working side of the spectral residual (OpenCV's is 64).
        lam, reformulate, and the :class:`MixPolicy` arguments.

    Example:
        >>> x = torch.zeros(4, 1, 32, 32)
        >>> x[:, :, 20:24, 4:8] = 1.0                     # a bright spot at the same place in every image
        >>> out = SaliencyMix(lam=0.9, seed=0)(x)
        >>> bool((out.mask[:, 20:24, 4:8] == 0).all())     # every box covers the spot
        True
    """

    def __init__(self, alpha: float = 1.0, *, saliency_size: int = 64, lam: float | None = None,
                 reformulate: bool = False, **kwargs: Any) -> None:
        super().__init__(SaliencyMixSampler(alpha, lam, reformulate, saliency_size), **kwargs)


class SmoothMix(_OneMethod):
    """SmoothMix (Lee et al., CVPR Workshops 2020, "SmoothMix: a Simple Yet Effective Data Augmentation
    to Train Robust Classifiers").

    The partner is pasted as a soft blob: its weight at a pixel is ``exp(-d^2 / (2 sigma^2))`` with
    ``d`` the distance to a centre drawn uniformly in the image (coordinates scaled to [0, 1] per
    axis; Euclidean for a circle, the largest axis distance for a square) and ``sigma`` drawn per
    sample. The mask is soft: lam is its mean, dense maps become ``(B, K, *S)`` soft targets
    (``num_classes`` needed), uint8 inputs are blended in float32 and rounded. 1-D, 2-D and 3-D.

    Args:
        kind: ``"circle"``, ``"square"`` or ``"either"`` (drawn per sample).
        sigma: ``(low, high)`` range of the spread, as a fraction of each side.
        and the :class:`MixPolicy` arguments.

    Example:
        >>> out = SmoothMix(kind="square", num_classes=10, seed=0)(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> out.mask.dtype, bool(torch.allclose(out.mask.mean((1, 2)), out.lam))
        (torch.float32, True)
    """

    def __init__(self, *, kind: Literal["circle", "square", "either"] = "circle",
                 sigma: tuple[float, float] = (0.25, 0.5), **kwargs: Any) -> None:
        super().__init__(SmoothMixSampler(kind, sigma), **kwargs)


class GridMix(_OneMethod):
    """GridMix (Baek et al., Pattern Recognition 2021, "GridMix: Strong regularization through local
    context mapping"): the image cut into an ``n x n`` grid, each cell from the sample or its partner.

    ``n`` is drawn per sample in ``grid`` (every axis is cut into ``n`` cells: ``n^D`` cells in 1-D,
    2-D or 3-D); each cell is the sample's own with probability ``lam ~ Beta(alpha, alpha)`` (drawn
    per sample) and the partner's otherwise; lam is the measured share. The paper's patch-level
    (local context) loss is a training objective, not a mask, and is not part of this transform.

    Args:
        alpha: Beta concentration of the per-sample cell probability.
        grid: ``(low, high)`` range of ``n``; every side must be at least ``high``.
        lam, reformulate, and the :class:`MixPolicy` arguments.

    Example:
        >>> out = GridMix(grid=(4, 4), num_classes=10, seed=0)(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> bool((out.mask.view(8, 4, 8, 4, 8).float().std((2, 4)) == 0).all())   # constant on each cell
        True
    """

    def __init__(self, alpha: float = 1.0, *, grid: tuple[int, int] = (2, 8), lam: float | None = None,
                 reformulate: bool = False, **kwargs: Any) -> None:
        super().__init__(GridMixSampler(alpha, lam, reformulate, grid), **kwargs)


class Cutout(_OneMethod):
    """Cutout (DeVries & Taylor, 2017, "Improved Regularization of Convolutional Neural Networks with
    Cutout"): ``num_boxes`` boxes of each sample filled with ``fill``; labels are kept.

    Each box has sides ``f * S_d`` with ``f`` drawn per box in ``size`` (a square on square images), a
    centre drawn uniformly over the image, and is clipped to it (a box near the border drops less,
    as in the paper). The partner is ``fill``, not another sample, so it mixes a batch of one too.
    Dense targets keep their ids under the boxes, or get ``ignore_index`` when one is given (as
    GridMask). 1-D, 2-D and 3-D.

    Args:
        size: side of a box as a fraction of each side, or a ``(low, high)`` range (paper: 16 px of 32
            on CIFAR-10, 0.5).
        num_boxes: boxes per sample (the paper's ``n_holes``).
        fill: a value the inputs' dtype can hold (one per policy, shared with GridMask), or
            ``"noise"``: standard normal values for float inputs (as timm's RandomErasing
            ``mode='pixel'`` on normalised images), uniform integers for uint8.
        and the :class:`MixPolicy` arguments.

    Example:
        >>> x, y = Cutout(size=0.25, num_classes=10, seed=0)(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> bool((y.argmax(1) == torch.arange(8)).all()), int((x == 0).sum()) > 0     # labels kept, boxes at 0
        (True, True)
    """

    def __init__(self, *, size: float | tuple[float, float] = 0.5, num_boxes: int = 1,
                 fill: float | Literal["noise"] = 0.0, **kwargs: Any) -> None:
        super().__init__(CutoutSampler(size, num_boxes, fill), **kwargs)


class ClassMix(_OneMethod):
    """ClassMix (Olsson et al., WACV 2021, "ClassMix: Segmentation-Based Data Augmentation for
    Semi-Supervised Learning"): paste the pixels of half of the classes of the partner's map.

    For each sample, the classes present in its partner's dense map (``masks=``; ``ignore_index``
    pixels are no class and are never pasted) are shuffled and ``ceil(n / 2)`` of the ``n`` are
    pasted with their pixels: ``M`` is 0 where the partner's map holds a chosen class. The mixed map
    follows the pixels; lam (the own share, for class labels) is the mask's mean. Needs dense maps,
    and a mask per sample (``per_sample=False`` is refused). 1-D, 2-D and 3-D.

    Args:
        the :class:`MixPolicy` arguments (``ignore_index`` is the id that is no class).

    Example:
        >>> maps = torch.zeros(4, 16, 16, dtype=torch.long)
        >>> maps[:, :8] = 1                              # two classes in every map
        >>> x, mixed = ClassMix(seed=0)(torch.ones(4, 3, 16, 16), masks=maps)
        >>> bool(((mixed == 0) | (mixed == 1)).all())
        True
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ClassMixSampler(), **kwargs)
