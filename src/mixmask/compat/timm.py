"""timm's ``Mixup`` and ``FastCollateMixup`` faces over a mixmask policy.

``timm.data.Mixup(mixup_alpha, cutmix_alpha, cutmix_minmax, prob, switch_prob, mode, correct_lam,
label_smoothing, num_classes)`` becomes a :class:`~mixmask.RandomChoice` of :class:`~mixmask.MixUp`
and :class:`~mixmask.CutMix` with ``pairing="flip"`` (timm pairs ``x[i]`` with ``x[B - 1 - i]``),
``per_sample=False`` for ``mode="batch"``, and a pair draw built from a half-batch draw for
``mode="pair"``. timm itself is not imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import default_collate

from mixmask.errors import MixMaskError
from mixmask.functional._checks import check_bool, check_choice, check_finite_range
from mixmask.functional.params import MixParams
from mixmask.transforms.mix import CutMix, MixPolicy, MixResult, MixUp, RandomChoice

__all__ = ["Mixup", "FastCollateMixup"]

MODES: tuple[str, ...] = ("batch", "pair", "elem")


def _paired(params: MixParams) -> MixParams:
    """A flip-paired draw made symmetric: samples ``i`` and ``B - 1 - i`` share row ``min(i, B - 1 - i)``'s mask.

    Each of the two then takes the other's pixels where the shared mask is 0 (timm's ``mode="pair"``);
    the middle sample of an odd batch keeps its own draw and is paired with itself.
    """
    b = params.batch_size
    rows = torch.arange(b)
    first = torch.minimum(rows, b - 1 - rows)
    on_device = first.to(params.lam.device)
    lam = params.lam.index_select(0, on_device)
    spatial = params.spatial_shape
    if all(stride == 0 for stride in params.mask.stride()[1:]):  # constant masks (MixUp): a view of lam
        mask = lam.view(b, *(1,) * len(spatial)).expand(b, *spatial)
    else:
        mask = params.mask.index_select(0, on_device)
    return MixParams(index=params.index, lam=lam, mask=mask, method=params.method.index_select(0, first),
                     fill=params.fill, label_lam=params.label_lam.index_select(0, on_device))


class Mixup:
    """timm's ``Mixup`` (``timm.data.Mixup``): the same arguments with the same meanings, over a mixmask policy.

    ``x, target = mixup_fn(x, target)`` as in timm: ``x`` ``(B, C, *S)`` (float or uint8, 1-, 2- or
    3-D), ``target`` ``(B,)`` class ids (or ``(B, K)`` targets); returns the mixed batch and ``(B, K)``
    soft targets, label-smoothed like timm's ``mixup_target`` (``on = 1 - eps + eps / K``,
    ``off = eps / K``). The result is a :class:`~mixmask.MixResult`, so ``.lam``, ``.index`` and
    ``.mask`` are there too. Partners are timm's: ``x[i]`` is mixed with ``x[B - 1 - i]``.

    Where it deliberately differs from timm:

    - **``x`` is never modified**: the mixed batch is a new tensor (timm writes into the caller's ``x``
      and returns it).
    - **Labels are always the area that was kept**: a CutMix box clipped at the border gives
      ``lam = 1 - clipped area``. timm does this too with ``correct_lam=True`` (its default, and what
      its train.py uses); ``correct_lam=False`` with CutMix active raises :class:`MixMaskError`, since
      labels that disagree with the pixels are what mixmask exists to prevent.
    - **Odd batches are mixed** (timm asserts an even batch): the middle sample of an odd batch is
      its own partner, so its pixels and label come out unchanged (label only smoothed).
    - CutMix box sides are ``round(side * sqrt(1 - lam))``; timm truncates (``int``), so timm's boxes are
      up to one pixel per side smaller. ``cutmix_minmax`` boxes are drawn as timm draws them.
    - Draws come from mixmask's per-process stream (``seed``, DataLoader worker, rank), not from
      numpy's global generator.
    - ``mode="pair"`` reads the draw back to the host once per call (it builds a :class:`MixParams`,
      whose checks do), a sync on accelerators.

    Args:
        mixup_alpha: MixUp's Beta concentration; MixUp is active when > 0.
        cutmix_alpha: CutMix's Beta concentration; CutMix is active when > 0.
        cutmix_minmax: ``(low, high)``: CutMix box sides drawn in ``[low, high)`` times the image's
            sides instead of from lam (mixmask's ``CutMix(size_range=...)``); activates CutMix.
        prob: probability that the batch (``mode="batch"``) or a sample is mixed.
        switch_prob: probability of CutMix rather than MixUp when both are active.
        mode: ``"batch"`` (one lam and box for the batch, mixmask's ``per_sample=False``), ``"pair"``
            (one per pair ``i``, ``B - 1 - i``, both sides mixed with the same lam and box) or ``"elem"``
            (one per sample).
        correct_lam: must be True when CutMix is active without ``cutmix_minmax`` (see above).
        label_smoothing: eps, folded into the targets.
        num_classes: K.
        multi_label: ``(B, K)`` multi-label targets, smoothed towards 0.5.
        seed: mixmask's stream seed (None follows ``torch.manual_seed``); not a timm argument.

    Attributes:
        mixup_enabled: set to False to stop mixing (timm's train loop does at ``--mixup-off-epoch``);
            targets are then only smoothed.

    Raises:
        MixMaskError: an argument out of range (checked here, not when called), no method active,
            ``correct_lam=False`` with CutMix, an unknown ``mode``; at call time, bad inputs or labels.

    Example:
        >>> mixup_fn = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=10, seed=0)
        >>> x, target = mixup_fn(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> target.shape
        torch.Size([8, 10])
    """

    def __init__(self, mixup_alpha: float = 1.0, cutmix_alpha: float = 0.0,
                 cutmix_minmax: Sequence[float] | None = None, prob: float = 1.0, switch_prob: float = 0.5,
                 mode: str = "batch", correct_lam: bool = True, label_smoothing: float = 0.1,
                 num_classes: int = 1000, multi_label: bool = False, *, seed: int | None = None) -> None:
        self.mixup_alpha = check_finite_range("mixup_alpha", mixup_alpha, 0.0, np.inf, high_open=True)
        self.cutmix_alpha = check_finite_range("cutmix_alpha", cutmix_alpha, 0.0, np.inf, high_open=True)
        self.cutmix_minmax: tuple[float, float] | None = None
        self.mix_prob = check_finite_range("prob", prob, 0.0, 1.0)
        self.switch_prob = check_finite_range("switch_prob", switch_prob, 0.0, 1.0)
        self.mode = check_choice("mode", mode, MODES)
        self.correct_lam = check_bool("correct_lam", correct_lam)
        self.mixup_enabled = True
        members: list[MixPolicy] = []
        if self.mixup_alpha > 0:
            members.append(MixUp(alpha=self.mixup_alpha))
        cutmix = self.cutmix_alpha > 0 or cutmix_minmax is not None
        if cutmix:
            try:  # timm draws minmax boxes without lam (and sets cutmix_alpha to 1)
                members.append(CutMix(alpha=1.0 if cutmix_minmax is not None else self.cutmix_alpha,
                                      size_range=cutmix_minmax))
            except MixMaskError as error:
                raise MixMaskError(f"cutmix_minmax (CutMix's size_range): {error}") from None
            self.cutmix_minmax = members[-1].sampler.size_range
        if not members:
            raise MixMaskError(f"expected mixup_alpha > 0, cutmix_alpha > 0 or a cutmix_minmax, but got "
                               f"mixup_alpha={mixup_alpha!r}, cutmix_alpha={cutmix_alpha!r}, cutmix_minmax=None")
        if cutmix and not self.correct_lam and cutmix_minmax is None:
            raise MixMaskError("correct_lam=False cannot be honoured: mixmask's labels are always the area the "
                               "clipped CutMix box left (timm's correct_lam=True, its default)")
        weights = [1.0 - self.switch_prob, self.switch_prob] if len(members) == 2 else [1.0]
        options = dict(pairing="flip", num_classes=num_classes, label_smoothing=label_smoothing,
                       multi_label=multi_label, seed=seed)
        self._policy = RandomChoice(members, weights=weights, p=self.mix_prob, per_sample=self.mode != "batch",
                                    **options)
        self._off = MixUp(p=0.0, **options)  # mixup_enabled=False: smoothing only
        self.label_smoothing = self._policy.label_smoothing
        self.num_classes = self._policy.num_classes
        self.multi_label = self._policy.multi_label
        self.seed = self._policy.seed

    @property
    def policy(self) -> RandomChoice:
        """The mixmask policy that draws (its ``sample``/``apply`` work as for any transform)."""
        return self._policy

    def _draw(self, x: Any, target: Any) -> tuple[MixPolicy, MixParams]:
        """The policy and the draw for this call (checks the inputs before drawing)."""
        if not self.mixup_enabled:
            return self._off, self._off.sample(x, target)
        params = self._policy.sample(x, target)
        return self._policy, _paired(params) if self.mode == "pair" else params

    def __call__(self, x: Tensor, target: Tensor) -> MixResult:
        """Mix ``x`` ``(B, C, *S)`` and turn ``target`` into ``(B, K)`` soft targets; unpacks as ``x, target``."""
        if target is None:
            raise MixMaskError("expected class targets as the second argument (timm's mixup_fn(x, target)), "
                               "but got None")
        if self.mixup_enabled and self.mode != "pair":
            return self._policy(x, target)
        policy, params = self._draw(x, target)
        return policy.apply(params, x, target)

    def __repr__(self) -> str:
        args = dict(mixup_alpha=self.mixup_alpha, cutmix_alpha=self.cutmix_alpha, cutmix_minmax=self.cutmix_minmax,
                    prob=self.mix_prob, switch_prob=self.switch_prob, mode=self.mode, correct_lam=self.correct_lam,
                    label_smoothing=self.label_smoothing, num_classes=self.num_classes)
        if self.multi_label:
            args["multi_label"] = True
        if self.seed is not None:
            args["seed"] = self.seed
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def _stack_images(samples: Any) -> tuple[Tensor, Tensor]:
    """``(B, C, *S)`` images and collated labels from ``[(image, label), ...]``, images as new memory."""
    if isinstance(samples, (str, bytes)) or not isinstance(samples, Sequence) or len(samples) == 0:
        raise MixMaskError(f"expected a non-empty list of (image, label) samples, but got {type(samples).__name__}")
    images = []
    for k, sample in enumerate(samples):
        if isinstance(sample, (str, bytes)) or not isinstance(sample, Sequence) or len(sample) < 2:
            raise MixMaskError(f"expected samples of (image, label), but sample {k} is {type(sample).__name__}")
        image = sample[0]
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(image) if image.flags.writeable else torch.tensor(image)
        if not isinstance(image, Tensor):
            raise MixMaskError(f"expected each image as a numpy array or tensor (C, *S), but sample {k} has a "
                               f"{type(sample[0]).__name__}")
        images.append(image)
    shapes = sorted({(tuple(i.shape), str(i.dtype)) for i in images})
    if len(shapes) > 1:
        raise MixMaskError(f"expected images of one shape and dtype, but got {shapes}")
    return torch.stack(images), default_collate([sample[1] for sample in samples])


class FastCollateMixup(Mixup):
    """timm's ``FastCollateMixup``: a ``collate_fn`` that stacks ``(image, label)`` samples and mixes them.

    Samples are ``(image, label)`` with images as uint8 ``(C, *S)`` numpy arrays or tensors (timm's
    fast-collate loaders) and int labels; returns ``(images, targets)``: the ``(B, C, *S)`` batch mixed
    in its own dtype (uint8 stays uint8: CutMix pixels are exact copies, MixUp is rounded once) and
    ``(B, K)`` float soft targets. The stacked batch belongs to the collate, so it is mixed in place;
    the samples are never written. Arguments, ``mixup_enabled`` and the differences from timm are
    those of :class:`Mixup`; in addition, images of other dtypes keep their dtype (timm casts to
    uint8), and timm's ``mode="half"`` is not offered.

    It is not a :class:`~mixmask.MixCollate`: ``mode="pair"`` needs a draw built after sampling, which
    ``MixCollate`` does not take. Draws come from the policy's per-process stream, so DataLoader
    workers, epochs and ranks draw differently.

    Example:
        >>> collate = FastCollateMixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=10, seed=0)
        >>> images, targets = collate([(np.zeros((3, 32, 32), np.uint8), k) for k in range(8)])
        >>> images.dtype, targets.shape
        (torch.uint8, torch.Size([8, 10]))
    """

    def __call__(self, batch: Sequence[Any], _: Any = None) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """Collate and mix ``batch``; the second argument is ignored, as in timm."""
        images, labels = _stack_images(batch)
        policy, params = self._draw(images, labels)
        out = policy.apply(params, images, labels, inplace=True)
        return out.inputs, out.targets
