"""Batch transforms: draw a :class:`MixParams` for a batch, then apply it to every target kind."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional import masks as M
from mixmask.functional._checks import (as_generator, check_batch, check_choice, check_finite_range,
                                        check_positive, device_generator, to_device)
from mixmask.functional.kernels import mix_class_targets, mix_dense_targets, mix_inputs
from mixmask.functional.params import METHODS, MixParams
from mixmask.functional.sampling import PAIRINGS, Pairing, sample_lam, sample_partners

__all__ = ["MixResult", "MixTransform", "MixUp", "CutMix", "FMix", "GridMask", "RandomChoice"]


@dataclass(frozen=True)
class MixResult:
    """What a transform returns.

    Attributes:
        inputs: the mixed batch, same shape/dtype/device as the input batch.
        targets: ``(B, K)`` soft class targets, or None when no labels were given.
        masks: mixed dense targets (ids, or ``(B, K, *S)`` soft targets for soft masks), or None.
        params: the draw; pass it as ``params=`` to replay it.
    """

    inputs: Tensor
    targets: Tensor | None
    masks: Tensor | None
    params: MixParams

    @property
    def lam(self) -> Tensor:
        """``(B,)`` mean of each sample's mixing mask."""
        return self.params.lam

    @property
    def index(self) -> Tensor:
        """``(B,)`` partner of each sample."""
        return self.params.index

    @property
    def mask(self) -> Tensor:
        """``(B, *S)`` mixing mask that was applied."""
        return self.params.mask


def _check_num_classes(num_classes: int | None) -> int | None:
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise MixMaskError(f"num_classes must be a positive int or None, but got {num_classes!r}")
    return num_classes


def _unwrap(tensor: Any) -> Tensor:
    """A plain tensor view of ``tensor`` (torchvision ``tv_tensors`` are Tensor subclasses)."""
    return tensor.as_subclass(Tensor) if isinstance(tensor, Tensor) and type(tensor) is not Tensor else tensor


def _rewrap(result: Tensor, like: Any) -> Tensor:
    """Give ``result`` the ``tv_tensors`` type of ``like`` (a no-op for plain tensors)."""
    if type(like) is Tensor or not isinstance(like, Tensor):
        return result
    from torchvision import tv_tensors

    return tv_tensors.wrap(result, like=like)


class MixTransform:
    """Base of the mixing transforms: pairing, apply probability, randomness and the call.

    Subclasses define which mask each sample gets (:meth:`draw_masks`). A call draws
    :class:`MixParams` (:meth:`sample`) and applies them to the inputs, class labels and dense maps
    (:meth:`apply`). The last draw is kept as :attr:`last_params`.

    Args:
        p: probability that a sample is mixed (others pass through with lam = 1).
        pairing: ``"permutation"`` (no self-pairs), ``"flip"`` or ``"other_class"`` (needs labels).
        num_classes: K for sparse labels and soft dense targets (may also be given per call).
        label_smoothing: eps applied to class targets before mixing.
        multi_label: class targets are independent {0, 1} entries.
        ignore_index: id of unlabelled pixels in dense targets.
        channels_last: inputs are ``(B, *S, C)`` instead of ``(B, C, *S)``.
        seed: int seed of the transform's own generator.
        generator: a CPU ``torch.Generator`` to draw from instead (not with ``seed``).
        validate: check label/id values (default: on CPU only, since on accelerators it syncs); True also
            checks that float inputs are finite (a full pass over the batch).
    """

    method: str = "none"

    def __init__(self, *, p: float = 1.0, pairing: Pairing = "permutation", num_classes: int | None = None,
                 label_smoothing: float = 0.0, multi_label: bool = False, ignore_index: int | None = None,
                 channels_last: bool = False, seed: int | None = None, generator: torch.Generator | None = None,
                 validate: bool | None = None) -> None:
        self.p = check_finite_range("p", p, 0.0, 1.0)
        self.pairing = check_choice("pairing", pairing, PAIRINGS)
        self.num_classes = _check_num_classes(num_classes)
        self.label_smoothing = check_finite_range("label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)
        self.multi_label = bool(multi_label)
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
            raise MixMaskError(f"ignore_index must be an int or None, but got {ignore_index!r}")
        self.ignore_index = ignore_index
        self.channels_last = bool(channels_last)
        if validate is not None and not isinstance(validate, bool):
            raise MixMaskError(f"validate must be True, False or None, but got {validate!r}")
        self.validate = validate
        self.generator = as_generator(seed, generator)
        self.last_params: MixParams | None = None

    # -- what a subclass defines -------------------------------------------------------------
    def draw_masks(self, count: int, spatial_shape: tuple[int, ...], generator: torch.Generator,
                   device: torch.device) -> tuple[Tensor, Tensor]:
        """``(mask (count, *S), lam (count,))`` for ``count`` samples of this method."""
        raise NotImplementedError

    @property
    def mixes_partner(self) -> bool:
        """Whether the method takes content from a partner sample (False for GridMask)."""
        return True

    def _draw_method_ids(self, batch_size: int, generator: torch.Generator) -> Tensor:
        return torch.full((batch_size,), METHODS.index(self.method), dtype=torch.long)

    def _members(self) -> dict[str, MixTransform]:
        return {self.method: self}

    # -- sampling and applying -----------------------------------------------------------------
    def sample(self, inputs: Tensor, labels: Tensor | None = None, *,
               generator: torch.Generator | None = None) -> MixParams:
        """Draw the parameters for a batch (nothing is mixed).

        Args:
            inputs: the batch, ``(B, C, *S)`` (or channels last).
            labels: needed for ``pairing="other_class"``.
            generator: CPU generator to draw from instead of the transform's own.
        """
        inputs = _unwrap(inputs)
        batch, _, spatial = check_batch(inputs, self.channels_last)
        gen = self.generator if generator is None else generator
        device = inputs.device
        index = sample_partners(batch, gen, self.pairing, _unwrap(labels) if labels is not None else None)
        method = self._draw_method_ids(batch, gen)
        applied = torch.rand(batch, generator=gen, dtype=torch.float64) < self.p
        members = self._members()
        if batch == 1:  # a lone sample has no partner to mix with
            applied &= torch.tensor([not members[METHODS[int(method[0])]].mixes_partner])
        method = torch.where(applied, method, torch.zeros_like(method))
        used = [m for m in dict.fromkeys(METHODS[i] for i in method.tolist()) if m != "none"]
        lam = torch.ones(batch, dtype=torch.float32, device=device)
        fill = members["gridmask"].fill if "gridmask" in members else 0.0
        if not used:
            mask = torch.ones((batch, *spatial), dtype=torch.bool, device=device)
        elif len(used) == 1 and bool(applied.all()):
            mask, lam = members[used[0]].draw_masks(batch, spatial, gen, device)
        elif used == ["mixup"]:
            rows = method == METHODS.index("mixup")
            drawn = members["mixup"].draw_lams(int(rows.sum()), gen)
            mask, lam = M._mixup_masks(torch.ones(batch, dtype=torch.float64).masked_scatter_(rows, drawn),
                                       spatial, device)
        else:
            parts = {m: members[m].draw_masks(int((method == METHODS.index(m)).sum()), spatial, gen, device)
                     for m in used}
            binary = all(part[0].dtype == torch.bool for part in parts.values())
            mask = torch.ones((batch, *spatial), dtype=torch.bool if binary else torch.float32, device=device)
            for m, (part_mask, part_lam) in parts.items():
                rows = to_device((method == METHODS.index(m)).nonzero()[:, 0], device)
                mask.index_copy_(0, rows, part_mask.to(mask.dtype))
                lam.index_copy_(0, rows, part_lam)
        return MixParams._trusted(to_device(index, device), lam, mask, method, fill)

    def apply(self, params: MixParams, inputs: Tensor, labels: Tensor | None = None, *,
              num_classes: int | None = None, masks: Tensor | None = None, inplace: bool = False,
              workspace: Tensor | None = None) -> MixResult:
        """Apply a draw to a batch and its targets (see :meth:`__call__`)."""
        if not isinstance(params, MixParams):
            raise MixMaskError(f"expected params as MixParams, but got {type(params).__name__}")
        num_classes = _check_num_classes(num_classes) if num_classes is not None else self.num_classes
        mixed = mix_inputs(_unwrap(inputs), params, channels_last=self.channels_last, inplace=inplace,
                           workspace=workspace, validate=self.validate)
        targets = dense = None
        if labels is not None:
            targets = mix_class_targets(_unwrap(labels), params, num_classes=num_classes,
                                        label_smoothing=self.label_smoothing, multi_label=self.multi_label,
                                        validate=self.validate)
        if masks is not None:
            dense = mix_dense_targets(_unwrap(masks), params, num_classes=num_classes,
                                      ignore_index=self.ignore_index, validate=self.validate)
            dense = _rewrap(dense, masks)  # soft (B, K, *S) targets stay a per-pixel Mask too
        self.last_params = params
        return MixResult(_rewrap(mixed, inputs), targets, dense, params)

    def __call__(self, inputs: Tensor, labels: Tensor | None = None, num_classes: int | None = None,
                 masks: Tensor | None = None, params: MixParams | None = None) -> MixResult:
        """Mix a batch.

        Args:
            inputs: ``(B, C, *S)`` float or uint8 (``(B, *S, C)`` with ``channels_last``); never
                modified.
            labels: ``(B,)`` class ids, or ``(B, K)`` one-hot / soft / multi-label targets.
            num_classes: K (overrides the transform's).
            masks: dense id maps ``(B, *S)`` or ``(B, 1, *S)`` mixed with the same mask.
            params: replay this draw instead of drawing a new one.

        Returns:
            :class:`MixResult` with ``inputs``, ``targets``, ``masks``, ``lam``, ``index``, ``mask``
            and ``params``.

        Raises:
            MixMaskError: bad inputs, labels or dense maps (see the kernels); nothing is modified.
        """
        if params is None:
            params = self.sample(inputs, labels)
        return self.apply(params, inputs, labels, num_classes=num_classes, masks=masks)

    def _describe(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = dict(self._describe())
        defaults = {"p": 1.0, "pairing": "permutation", "label_smoothing": 0.0, "multi_label": False,
                    "ignore_index": None, "channels_last": False, "num_classes": None}
        args.update({k: getattr(self, k) for k, v in defaults.items() if getattr(self, k) != v})
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


class _LamMethod(MixTransform):
    """A method whose masks follow a drawn weight ``lam ~ Beta(alpha, alpha)`` (or a fixed one)."""

    def __init__(self, alpha: float = 1.0, *, lam: float | None = None, reformulate: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = check_positive("alpha", alpha)
        self.lam = None if lam is None else check_finite_range("lam", lam, 0.0, 1.0)
        self.reformulate = bool(reformulate)

    def draw_lams(self, count: int, generator: torch.Generator) -> Tensor:
        """``(count,)`` float64 weights on the CPU."""
        if self.lam is not None:
            return torch.full((count,), self.lam, dtype=torch.float64)
        return sample_lam(count, self.alpha, generator, reformulate=self.reformulate)

    def _describe(self) -> dict[str, Any]:
        args: dict[str, Any] = {"alpha": self.alpha}
        if self.lam is not None:
            args["lam"] = self.lam
        if self.reformulate:
            args["reformulate"] = True
        return args


class MixUp(_LamMethod):
    """MixUp (Zhang et al., 2018, "mixup: Beyond Empirical Risk Minimization"), per sample.

    Each sample gets its own ``lam ~ Beta(alpha, alpha)``: ``out = lam * x + (1 - lam) * x[j]``.

    Example:
        >>> mix = MixUp(alpha=0.4, num_classes=10, seed=0)
        >>> out = mix(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> out.inputs.shape, out.targets.shape
        (torch.Size([8, 3, 32, 32]), torch.Size([8, 10]))
    """

    method = "mixup"

    def draw_masks(self, count, spatial_shape, generator, device):
        return M._mixup_masks(self.draw_lams(count, generator), spatial_shape, device)


class CutMix(_LamMethod):
    """CutMix (Yun et al., 2019): a box of the partner pasted into each sample.

    Boxes are intervals, rectangles or cuboids (for 1-, 2- or 3-D data) of volume
    ``(1 - lam) * |S|`` before clipping; lam is then the area outside the clipped box.

    Example:
        >>> out = CutMix(num_classes=10, seed=0)(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> bool(torch.allclose(out.lam, out.mask.float().mean((1, 2))))
        True
    """

    method = "cutmix"

    def draw_masks(self, count, spatial_shape, generator, device):
        return M._cutmix_masks(self.draw_lams(count, generator), spatial_shape, generator, device)


class FMix(_LamMethod):
    """FMix (Harris et al., 2020, "FMix: Enhancing Mixed Sample Data Augmentation").

    Each sample's mask keeps the top ``round(lam * |S|)`` values of its own low-frequency grey
    image (a Gaussian spectrum decaying as ``1 / f ** decay_power``), in 1-D, 2-D or 3-D.

    Args:
        alpha: Beta concentration.
        decay_power: spectrum decay; higher is smoother (the paper uses 3).
        max_soft: soft edge width as a fraction of ``|S|`` (0 = binary masks).
        lam, reformulate, and the :class:`MixTransform` arguments.

    Example:
        >>> out = FMix(decay_power=3, num_classes=10, seed=0)(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> out.mask.dtype
        torch.bool
    """

    method = "fmix"

    def __init__(self, alpha: float = 1.0, *, decay_power: float = 3.0, max_soft: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(alpha, **kwargs)
        self.decay_power = check_positive("decay_power", decay_power)
        self.max_soft = check_finite_range("max_soft", max_soft, 0.0, 0.5)

    def draw_masks(self, count, spatial_shape, generator, device):
        lam = self.draw_lams(count, generator)
        return M._fmix_masks(lam, spatial_shape, device_generator(generator, device),
                             decay_power=self.decay_power, max_soft=self.max_soft, device=device)

    def _describe(self):
        return {**super()._describe(), "decay_power": self.decay_power,
                **({"max_soft": self.max_soft} if self.max_soft else {})}


class GridMask(MixTransform):
    """GridMask (Chen et al., 2020, "GridMask Data Augmentation"): drop a grid of blocks.

    The partner is the constant ``fill``, not another sample, and labels are kept. Dense targets
    keep their ids where pixels are dropped, or get ``ignore_index`` when one is given.

    Args:
        cell_size: ``(low, high)`` range of the grid period as fractions of the smallest side.
        keep_ratio: fraction of each cell's side that is kept.
        rotate: largest random rotation in degrees (2-D only).
        fill: value written into dropped pixels.
        and the :class:`MixTransform` arguments.
    """

    method = "gridmask"

    def __init__(self, *, cell_size: tuple[float, float] = (96 / 224, 1.0), keep_ratio: float = 0.6,
                 rotate: float = 0.0, fill: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(cell_size, Sequence) or len(cell_size) != 2:
            raise MixMaskError(f"cell_size must be a (low, high) pair, but got {cell_size!r}")
        low, high = (check_finite_range("cell_size", c, 0.0, 1.0, low_open=True) for c in cell_size)
        if low > high:
            raise MixMaskError(f"cell_size must have low <= high, but got {tuple(cell_size)}")
        self.cell_size = (low, high)
        self.keep_ratio = check_finite_range("keep_ratio", keep_ratio, 0.0, 1.0, low_open=True, high_open=True)
        self.rotate = check_finite_range("rotate", rotate, 0.0, 180.0)
        self.fill = check_finite_range("fill", fill, -math.inf, math.inf)

    @property
    def mixes_partner(self) -> bool:
        return False

    def draw_masks(self, count, spatial_shape, generator, device):
        return M.gridmask_masks(count, spatial_shape, generator, cell_size=self.cell_size,
                                keep_ratio=self.keep_ratio, rotate=self.rotate, device=device)

    def _describe(self):
        return {"cell_size": self.cell_size, "keep_ratio": self.keep_ratio, "rotate": self.rotate, "fill": self.fill}


class RandomChoice(MixTransform):
    """Pick a method per sample (or per batch) and mix the whole batch in one pass.

    Args:
        transforms: the methods to choose from, at most one of each kind; their own ``p``,
            pairing and seed are not used, the choice's are.
        p: probabilities of each method (normalised); None for uniform.
        per_sample: choose per sample (default) or one method for the whole batch.
        apply_p: probability that a sample is mixed at all.
        and the other :class:`MixTransform` arguments.

    Example:
        >>> policy = RandomChoice([CutMix(), GridMask()], p=[0.5, 0.5], num_classes=10, seed=0)
        >>> policy(torch.ones(8, 3, 32, 32), torch.arange(8)).targets.shape
        torch.Size([8, 10])
    """

    def __init__(self, transforms: Sequence[MixTransform], p: Sequence[float] | None = None, *,
                 per_sample: bool = True, apply_p: float = 1.0, **kwargs: Any) -> None:
        super().__init__(p=apply_p, **kwargs)
        transforms = list(transforms)
        if not transforms or not all(isinstance(t, MixTransform) and t.method != "none" for t in transforms):
            raise MixMaskError(f"expected a non-empty list of MixUp/CutMix/FMix/GridMask, but got {transforms!r}")
        kinds = [t.method for t in transforms]
        if len(set(kinds)) != len(kinds):
            raise MixMaskError(f"expected at most one transform of each kind, but got {kinds}")
        if p is not None and not isinstance(p, Sequence):
            raise MixMaskError(f"expected {len(transforms)} non-negative probabilities with a positive sum, "
                               f"but got {p!r}")
        weights = [1.0] * len(transforms) if p is None else [check_finite_range("p", w, 0.0, math.inf) for w in p]
        if len(weights) != len(transforms) or sum(weights) <= 0:
            raise MixMaskError(f"expected {len(transforms)} non-negative probabilities with a positive sum, "
                               f"but got {p!r}")
        self.transforms = transforms
        self.probs = torch.tensor(weights, dtype=torch.float64) / sum(weights)
        self.per_sample = bool(per_sample)

    def _members(self):
        return {t.method: t for t in self.transforms}

    def _draw_method_ids(self, batch_size, generator):
        ids = torch.tensor([METHODS.index(t.method) for t in self.transforms])
        picks = torch.multinomial(self.probs, batch_size if self.per_sample else 1, replacement=True,
                                  generator=generator)
        return ids[picks].expand(batch_size).clone()

    def draw_masks(self, count, spatial_shape, generator, device):
        raise MixMaskError("RandomChoice draws its masks through sample()")

    def __repr__(self):
        inner = ", ".join(repr(t) for t in self.transforms)
        probs = [round(float(w), 4) for w in self.probs]
        return f"RandomChoice([{inner}], p={probs}, per_sample={self.per_sample}, apply_p={self.p})"
