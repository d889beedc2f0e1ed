"""Batch transforms: a policy over mask samplers draws a :class:`MixParams`, kernels apply it.

Every call runs in one order: **check** every input (images, labels, dense maps, replayed params),
then **draw** (from the per-process stream of :mod:`mixmask.streams`), then **write**. A call that
raises has written nothing and leaves the random stream where it was.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional import kernels as K
from mixmask.functional._checks import (check_bool, check_choice, check_finite_range, check_generator, check_int,
                                        to_device)
from mixmask.functional.kernels import PairTargets
from mixmask.functional.params import METHODS, MixParams, PartnerWarp
from mixmask.functional.sampling import PAIRINGS, Pairing, _sample_partners
from mixmask.streams import ProcessStream, rewinding
from mixmask.transforms.samplers import (CutMixSampler, FMixSampler, GridMaskSampler, MaskDraw, MaskSampler,
                                         MixUpSampler, SamplerContext)

__all__ = ["MixResult", "MixPolicy", "MixUp", "CutMix", "FMix", "GridMask", "RandomChoice"]


@dataclass(frozen=True)
class MixResult:
    """What a transform returns; it unpacks like the peers' results.

    ``x, y = mix(x, y)``, ``x, y, maps = mix(x, y, maps)``, ``x, maps = mix(x, masks=maps)``: iterating
    yields ``inputs``, then ``targets`` when labels were given, then ``masks`` when maps were given.

    Attributes:
        inputs: the mixed batch, same shape/dtype/device (and torchvision type) as the input batch.
        targets: ``(B, K)`` soft class targets (:class:`~mixmask.functional.PairTargets` with
            ``target_format="pair"``), or None when no labels were given.
        masks: mixed dense targets (ids, or ``(B, K, *S)`` soft targets for soft masks; PairTargets with
            ``target_format="pair"``), or None.
        params: the draw; pass it as ``params=`` to replay it.
    """

    inputs: Tensor
    targets: Tensor | PairTargets | None
    masks: Tensor | PairTargets | None
    params: MixParams

    def _items(self) -> tuple[Any, ...]:
        return (self.inputs,) + tuple(t for t in (self.targets, self.masks) if t is not None)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __getitem__(self, position: int) -> Any:
        return self._items()[position]

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


def _check_optional_int(name: str, value: int | None, low: int | None = None) -> int | None:
    return None if value is None else check_int(name, value, low=low)


# -- torchvision types ---------------------------------------------------------------------------

def _tv_type(tensor: Any) -> str | None:
    """The name of a torchvision ``tv_tensors`` type, or None for anything else."""
    if not isinstance(tensor, Tensor) or type(tensor) is Tensor:
        return None
    module = type(tensor).__module__ or ""
    return type(tensor).__name__ if module.startswith("torchvision") else None


def _plain(tensor: Any) -> Any:
    """A plain tensor view of ``tensor`` (torchvision ``tv_tensors`` are Tensor subclasses)."""
    return tensor.as_subclass(Tensor) if isinstance(tensor, Tensor) and type(tensor) is not Tensor else tensor


def _rewrap(result: Tensor, like: Any) -> Tensor:
    """Give ``result`` the ``tv_tensors`` type of ``like`` (a no-op for plain tensors)."""
    if _tv_type(like) is None:
        return result
    from torchvision import tv_tensors

    return tv_tensors.wrap(result, like=like)


@dataclass(frozen=True)
class _Batch:
    """An input batch as the kernels see it: a plain ``(B, C, *S)`` or ``(B, *S, C)`` tensor."""

    data: Tensor
    channels_last: bool
    original: Any

    def restore(self, mixed: Tensor) -> Tensor:
        """``mixed`` (shaped like :attr:`data`) in the caller's shape and torchvision type."""
        return _rewrap(mixed.view(self.original.shape), self.original)


def _as_batch(inputs: Any, channels_last: bool | None) -> tuple[_Batch, bool | None]:
    """Unwrap torchvision types; a ``Video`` ``(B, T, C, H, W)`` is mixed as ``(B, T*C, H, W)``: one mask per clip."""
    kind = _tv_type(inputs)
    if kind in ("Mask", "BoundingBoxes", "KeyPoints"):
        raise MixMaskError(f"expected an image batch as inputs, but got a tv_tensors.{kind}: pass segmentation "
                           "maps as masks=, and mix boxes with a box-aware transform")
    data = _plain(inputs)
    if kind == "Video":
        if data.ndim != 5 or channels_last:
            raise MixMaskError(f"expected a tv_tensors.Video batch of shape (B, T, C, H, W) (channels first), but "
                               f"got shape {tuple(data.shape)}{' with channels_last=True' if channels_last else ''}")
        data = data.reshape(data.shape[0], -1, *data.shape[3:])
        channels_last = False
    return _Batch(data, bool(channels_last), inputs), channels_last


def _dense(masks: Any) -> Any:
    if _tv_type(masks) not in (None, "Mask"):
        raise MixMaskError(f"expected dense maps as a tensor or tv_tensors.Mask, but got a tv_tensors.{_tv_type(masks)}")
    return _plain(masks)


# -- the policy ----------------------------------------------------------------------------------

#: Options of a policy that touch pairing and targets, with their defaults.
_SHARED_OPTIONS: dict[str, Any] = {"pairing": "permutation", "per_sample": True, "num_classes": None,
                                   "label_smoothing": 0.0, "multi_label": False, "ignore_index": None,
                                   "channels_last": None, "validate": None, "target_format": "soft"}
TARGET_FORMATS: tuple[str, ...] = ("soft", "pair")


class MixPolicy:
    """A policy over mask samplers: pairing, apply probability, per-sample method choice, targets.

    A call draws :class:`MixParams` (:meth:`sample`) and applies them to the inputs, class labels and
    dense maps (:meth:`apply`). Single methods (:class:`MixUp`, :class:`CutMix`, :class:`FMix`,
    :class:`GridMask`) are one-member policies; :class:`RandomChoice` combines them. No state beyond
    the options: draws come from a per-process stream keyed by ``seed`` (or ``torch.initial_seed()``),
    the DataLoader worker's seed and the distributed rank (see :mod:`mixmask.streams`).

    Args:
        p: probability that a sample is mixed (others pass through with lam = 1).
        per_sample: a mask, lam and method per sample (default), or one for the whole batch (timm's
            ``mode='batch'``, torchvision's MixUp/CutMix, kornia's ``same_on_batch``).
        pairing: ``"permutation"`` (a random permutation without self-pairs), ``"flip"`` (reverse the
            batch) or ``"other_class"`` (a partner with another label; needs labels).
        num_classes: K for sparse labels and soft dense targets (may also be given per call).
        label_smoothing: eps applied to class targets before mixing.
        multi_label: class targets are independent labels in [0, 1].
        ignore_index: id of unlabelled pixels in dense targets (not a real class id).
        channels_last: inputs are ``(B, *S, C)`` (True) or ``(B, C, *S)`` (False); None reads them
            channels first but refuses a batch whose last dim looks like channels (1, 3, 4) while
            dim 1 looks like a side (> 4).
        seed: non-negative int seed of the transform's stream; None follows ``torch.manual_seed``.
        validate: check label/id values (default: on CPU only, since on accelerators it syncs); True also
            checks that float inputs are finite (a full pass over the batch).
        target_format: ``"soft"``: ``(B, K)`` soft class targets and, for soft masks, ``(B, K, *S)`` soft
            maps; ``"pair"``: :class:`~mixmask.functional.PairTargets` (own ids, partner ids, own weight)
            for class ids and maps alike, which :func:`~mixmask.mixed_cross_entropy` turns into the same
            loss without any ``K``-sized target tensor (no ``num_classes`` needed).

    Raises:
        MixMaskError: an option out of range or of the wrong type.
    """

    def __init__(self, *, p: float = 1.0, per_sample: bool = True, pairing: Pairing = "permutation",
                 num_classes: int | None = None, label_smoothing: float = 0.0, multi_label: bool = False,
                 ignore_index: int | None = None, channels_last: bool | None = None, seed: int | None = None,
                 validate: bool | None = None, target_format: str = "soft") -> None:
        self.p = check_finite_range("p", p, 0.0, 1.0)
        self.per_sample = check_bool("per_sample", per_sample)
        self.pairing = check_choice("pairing", pairing, PAIRINGS)
        self.num_classes = _check_optional_int("num_classes", num_classes, low=1)
        self.label_smoothing = check_finite_range("label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)
        self.multi_label = check_bool("multi_label", multi_label)
        self.ignore_index = _check_optional_int("ignore_index", ignore_index)
        K.check_ignore_index(self.ignore_index, self.num_classes)
        self.channels_last = None if channels_last is None else check_bool("channels_last", channels_last)
        self.validate = None if validate is None else check_bool("validate", validate)
        self.target_format = check_choice("target_format", target_format, TARGET_FORMATS)
        if self.target_format == "pair" and self.multi_label:
            raise MixMaskError("pair targets hold class ids, but got multi_label=True: use target_format='soft'")
        self.seed = _check_optional_int("seed", seed, low=0)
        self._stream = ProcessStream(self.seed)
        self.samplers: tuple[MaskSampler, ...] = ()

    def _set_samplers(self, samplers: Sequence[MaskSampler], weights: Sequence[float], probs: Sequence[float]) -> None:
        """The members: each sampler with its choice weight and its own apply probability."""
        fills = {s.constant_fill for s in samplers if s.constant_fill is not None}
        if len(fills) > 1:
            raise MixMaskError(f"expected one fill value for the fill methods of a policy, but got {sorted(fills)}")
        whole = [type(s).__name__.removesuffix("Sampler") for s in samplers if not s.per_batch]
        if whole and not self.per_sample:
            raise MixMaskError(f"{', '.join(whole)} makes each mask from its own partner's data, so it cannot draw one "
                               "mask for the whole batch: per_sample=False is refused")
        self.samplers = tuple(samplers)
        self._constant_fill = bool(fills)
        self.fill = fills.pop() if fills else 0.0
        total = float(sum(weights))
        self._weights = torch.tensor(weights, dtype=torch.float64) / total
        self._probs = np.array(probs, dtype=np.float64)
        self._method_ids = np.array([METHODS.index(s.method) for s in samplers], dtype=np.int64)
        self._fills = np.array([s.fills for s in samplers])
        self.soft = any(s.soft for s in samplers)

    # -- checks ----------------------------------------------------------------------------------
    def _check(self, inputs: Any, labels: Any, masks: Any, params: MixParams | None, num_classes: int | None,
               inplace: bool = False, workspace: Tensor | None = None, saliency: Any = None,
               channels_last: bool | None = None) -> tuple[_Batch, tuple]:
        """Check every input of a call; return the batch and its ``(B, C, S)``."""
        batch, channels_last = _as_batch(inputs, self.channels_last if channels_last is None else channels_last)
        b, _, spatial = K.check_inputs(batch.data, params, channels_last=channels_last, inplace=inplace,
                                       workspace=workspace, validate=self.validate)
        if params is None:
            if self._constant_fill:
                K.check_fill(self.fill, batch.data.dtype)
            for sampler in self.samplers:
                sampler.check(spatial, masks)
        pair = self.target_format == "pair"
        if labels is not None:
            if pair:
                K._check_pair_labels(_plain(labels), b)
            if not pair or num_classes is not None:
                K.check_class_targets(_plain(labels), b, num_classes=num_classes, multi_label=self.multi_label,
                                      validate=self.validate)
        elif self.pairing == "other_class" and params is None:
            raise MixMaskError("pairing='other_class' needs labels, but got labels=None")
        if masks is not None:
            soft = not pair and (self.soft if params is None else not params.binary)
            K.check_dense_targets(_dense(masks), b, spatial, num_classes=num_classes,
                                  ignore_index=self.ignore_index, soft=soft, validate=self.validate)
        if saliency is not None and (not isinstance(saliency, Tensor) or tuple(saliency.shape) != (b, *spatial)):
            got = tuple(saliency.shape) if isinstance(saliency, Tensor) else type(saliency).__name__
            raise MixMaskError(f"expected a saliency map of shape {(b, *spatial)}, but got {got}")
        return batch, (b, spatial)

    def _num_classes(self, num_classes: int | None) -> int | None:
        return self.num_classes if num_classes is None else check_int("num_classes", num_classes, low=1)

    # -- drawing ---------------------------------------------------------------------------------
    @torch.compiler.disable
    def sample(self, inputs: Tensor, labels: Tensor | None = None, masks: Tensor | None = None, *,
               saliency: Tensor | None = None, generator: torch.Generator | None = None) -> MixParams:
        """Draw the parameters for a batch (nothing is mixed).

        Args:
            inputs: the batch, ``(B, C, *S)`` (or channels last).
            labels: class labels (needed for ``pairing="other_class"``).
            masks: dense id maps, for methods that read them.
            saliency: ``(B, *S)`` saliency map, for methods that read one.
            generator: a CPU generator to draw from instead of the transform's stream.

        Raises:
            MixMaskError: bad inputs, labels or maps; the stream is left as it was.
        """
        batch, (b, spatial) = self._check(inputs, labels, masks, None, self.num_classes, saliency=saliency)
        return self._draw(batch, b, spatial, labels, masks, saliency, generator)

    def _draw(self, batch: _Batch, b: int, spatial: tuple[int, ...], labels: Any, masks: Any, saliency: Any,
              generator: torch.Generator | None) -> MixParams:
        if generator is not None:
            gen, lock = check_generator(generator), None
        else:
            with self._stream.lock:
                gen, lock = self._stream(), self._stream.lock
        with rewinding(gen, lock):
            return self._draw_with(batch, b, spatial, labels, masks, saliency, gen)

    def _draw_with(self, batch: _Batch, b: int, spatial: tuple[int, ...], labels: Any, masks: Any, saliency: Any,
                   gen: torch.Generator) -> MixParams:
        data = batch.data
        device = data.device
        index = _sample_partners(b, gen, self.pairing, _plain(labels) if labels is not None else None)
        draws = b if self.per_sample else 1
        # the O(B) bookkeeping runs in numpy (a torch op on a tiny tensor costs microseconds of dispatch);
        # every random number still comes from the generator, in the same order
        if len(self.samplers) > 1:
            choice = torch.multinomial(self._weights, draws, replacement=True, generator=gen).numpy()
        else:
            choice = np.zeros(draws, dtype=np.int64)
        applied = torch.rand(draws, generator=gen, dtype=torch.float64).numpy() < self._probs[choice]
        if b == 1:  # a lone sample has no partner: only the fill methods apply
            applied &= self._fills[choice]
        ids = np.where(applied, self._method_ids[choice], 0)
        method = torch.from_numpy(ids if draws == b else np.full(b, ids[0]))
        view = data.detach().movedim(-1, 1) if batch.channels_last else data.detach()
        plain_labels = _plain(labels) if labels is not None else None
        dense_ids = _dense_ids_view(masks, b, spatial)
        partners = index.numpy()
        parts: list[tuple[Tensor, MaskDraw]] = []
        for k, sampler in enumerate(self.samplers):
            rows = (applied & (choice == k) if len(self.samplers) > 1 else applied).nonzero()[0]
            if rows.size == 0:
                continue
            rows_t = torch.from_numpy(rows)
            ctx = SamplerContext(rows.size, rows_t, torch.from_numpy(partners[rows]), spatial, device, data.dtype, gen,
                                 view, plain_labels, dense_ids, saliency, self.ignore_index)
            draw = sampler.draw(ctx)
            if not self.per_sample and draw.warp is not None:  # the one draw changes every partner alike
                draw = replace(draw, warp=draw.warp.for_rows(torch.arange(b, device=device)))
            parts.append((rows_t, draw))
        mask, lam, label_lam, warps = self._assemble(parts, b, spatial, device)
        box_mask = (spatial, torch.float32 if self.soft else torch.bool) if mask is None else None
        return MixParams._trusted(to_device(index, device), lam, mask, method, self.fill, label_lam, warps,
                                  self._boxes(parts, b, len(spatial)), box_mask)

    def _boxes(self, parts: list[tuple[Tensor, MaskDraw]], b: int, dims: int) -> Tensor | None:
        """``(B, nb, 2, D)`` boxes of the whole draw when every mixed row's mask is boxes (unmixed rows:
        none), else None."""
        if not parts or any(draw.boxes is None for _, draw in parts):
            return None
        if not self.per_sample:
            return parts[0][1].boxes.expand(b, -1, -1, -1)
        if len(parts) == 1 and parts[0][0].numel() == b:  # one method for every row: its boxes as they are
            return parts[0][1].boxes
        boxes = torch.zeros((b, max(draw.boxes.shape[1] for _, draw in parts), 2, dims), dtype=torch.long)
        for rows, draw in parts:
            boxes[rows, :draw.boxes.shape[1]] = draw.boxes
        return boxes

    def _assemble(self, parts: list[tuple[Tensor, MaskDraw]], b: int, spatial: tuple[int, ...],
                  device: torch.device) -> tuple[Tensor | None, Tensor, Tensor, tuple[PartnerWarp, ...]]:
        """One ``(B, *S)`` mask, ``lam`` and ``label_lam`` from the parts drawn for some rows each; the mask is
        None when every part's masks are left to be built from boxes (it is then built from the draw's)."""
        dims = (1,) * len(spatial)
        dtype = torch.float32 if self.soft else torch.bool
        warps = tuple(draw.warp for _, draw in parts if draw.warp is not None)
        from_boxes = bool(parts) and all(draw.from_boxes for _, draw in parts)
        if not self.per_sample:  # one draw for the whole batch, or none
            if not parts:
                ones = torch.ones((1, *dims), dtype=dtype, device=device).expand(b, *spatial)
                return ones, torch.ones(b, device=device), torch.ones(b, device=device), warps
            draw = parts[0][1]
            mask = None if from_boxes else draw.full_mask(spatial, device).to(dtype).expand(b, *spatial)
            label_lam = draw.lam if draw.label_lam is None else draw.label_lam
            return mask, draw.lam.expand(b), label_lam.expand(b), warps
        if len(parts) == 1 and parts[0][0].numel() == b:  # one method for every row: its draw as it is
            draw = parts[0][1]
            mask = None if from_boxes else draw.full_mask(spatial, device).to(dtype)
            return mask, draw.lam, draw.lam if draw.label_lam is None else draw.label_lam, warps
        lam = torch.ones(b, device=device)
        label_lam = torch.ones(b, device=device)
        for rows, draw in parts:
            rows = to_device(rows, device)
            lam.index_copy_(0, rows, draw.lam)
            label_lam.index_copy_(0, rows, draw.lam if draw.label_lam is None else draw.label_lam)
        if from_boxes:  # every mask from boxes (unmixed rows: none)
            return None, lam, label_lam, warps
        if all(draw.mask is None and draw.boxes is None for _, draw in parts):  # constant masks only: a view of lam
            return lam.view(-1, *dims).expand(b, *spatial), lam, label_lam, warps
        mask = torch.ones((b, *spatial), dtype=dtype, device=device)
        for rows, draw in parts:
            mask.index_copy_(0, to_device(rows, device), draw.full_mask(spatial, device).to(dtype))
        return mask, lam, label_lam, warps

    # -- applying --------------------------------------------------------------------------------
    @torch.compiler.disable
    def apply(self, params: MixParams, inputs: Tensor, labels: Tensor | None = None, masks: Tensor | None = None,
              *, num_classes: int | None = None, inplace: bool = False, workspace: Tensor | None = None) -> MixResult:
        """Apply a draw to a batch and its targets (see :meth:`__call__`).

        Args:
            params: a draw for this batch's shape.
            inplace: write the mixed batch into ``inputs`` (a batch the caller owns).
            workspace: with ``inplace``, scratch memory like ``inputs`` reused across calls.
            and the arguments of :meth:`__call__`.

        Raises:
            MixMaskError: bad params or inputs; nothing is written.
        """
        if not isinstance(params, MixParams):
            raise MixMaskError(f"expected params as mixmask.MixParams, but got {type(params).__name__}")
        num_classes = self._num_classes(num_classes)
        batch, _ = self._check(inputs, labels, masks, params, num_classes, inplace, workspace)
        return self._write(params, batch, labels, masks, num_classes, inplace, workspace)

    def _write(self, params: MixParams, batch: _Batch, labels: Any, masks: Any, num_classes: int | None,
               inplace: bool = False, workspace: Tensor | None = None) -> MixResult:
        mixed = K._mix_inputs(batch.data, params, channels_last=batch.channels_last, inplace=inplace,
                              workspace=workspace)
        targets = dense = None
        pair = self.target_format == "pair"
        if labels is not None:
            targets = K._pair_class_targets(_plain(labels), params, self.label_smoothing) if pair else \
                K._mix_class_targets(_plain(labels), params, num_classes=num_classes,
                                     label_smoothing=self.label_smoothing, multi_label=self.multi_label)
        if masks is not None:
            dense = K._pair_dense_targets(_plain(masks), params, self.ignore_index) if pair else \
                _rewrap(K._mix_dense_targets(_plain(masks), params, num_classes=num_classes,
                                             ignore_index=self.ignore_index), masks)
        return MixResult(batch.restore(mixed), targets, dense, params)

    @torch.compiler.disable  # draws on a CPU generator and checks values: runs eagerly inside compiled code
    def __call__(self, inputs: Tensor, labels: Tensor | None = None, masks: Tensor | None = None, *,
                 num_classes: int | None = None, params: MixParams | None = None,
                 saliency: Tensor | None = None) -> MixResult:
        """Mix a batch: check everything, draw (or replay ``params``), then write.

        Args:
            inputs: ``(B, C, *S)`` float or uint8 (``(B, *S, C)`` with ``channels_last``), a plain
                tensor or a torchvision ``Image`` (or ``Video`` ``(B, T, C, H, W)``: one mask per
                clip); never modified.
            labels: ``(B,)`` class ids, or ``(B, K)`` one-hot / soft / multi-label targets.
            masks: dense id maps ``(B, *S)`` or ``(B, 1, *S)`` mixed with the same mask.
            num_classes: K (overrides the transform's).
            params: replay this draw instead of drawing a new one.
            saliency: ``(B, *S)`` saliency map, for methods that read one.

        Returns:
            :class:`MixResult`: unpacks as ``x, y`` (``x, y, maps``; ``x, maps``) and has ``inputs``,
            ``targets``, ``masks``, ``lam``, ``index``, ``mask`` and ``params``.

        Raises:
            MixMaskError: bad inputs, labels, dense maps or params; nothing is modified and the random
                stream is left as it was.
        """
        return self._run(inputs, labels, masks, num_classes=num_classes, params=params, saliency=saliency)

    def _run(self, inputs: Any, labels: Any, masks: Any, *, num_classes: int | None = None,
             params: MixParams | None = None, saliency: Any = None, generator: torch.Generator | None = None,
             inplace: bool = False, workspace: Tensor | None = None, channels_last: bool | None = None) -> MixResult:
        """A whole call: check every input, draw (or replay ``params``), write; ``channels_last`` overrides
        the policy's layout (hidden features are channels first whatever the images are)."""
        num_classes = self._num_classes(num_classes)
        batch, (b, spatial) = self._check(inputs, labels, masks, params, num_classes, inplace, workspace, saliency,
                                          channels_last)
        if params is None:
            params = self._draw(batch, b, spatial, labels, masks, saliency, generator)
        return self._write(params, batch, labels, masks, num_classes, inplace, workspace)

    # -- description -----------------------------------------------------------------------------
    def shared_options(self) -> dict[str, Any]:
        """The policy options that differ from their defaults."""
        return {k: getattr(self, k) for k, v in _SHARED_OPTIONS.items() if getattr(self, k) != v}

    def __repr__(self) -> str:
        args = dict(self.samplers[0].options()) if len(self.samplers) == 1 else {}
        if self.p != 1.0:
            args["p"] = self.p
        args.update(self.shared_options())
        if self.seed is not None:
            args["seed"] = self.seed
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def _dense_ids_view(masks: Any, b: int, spatial: tuple[int, ...]) -> Tensor | None:
    if masks is None:
        return None
    ids = _plain(masks)
    return ids.view(b, *spatial) if ids.ndim == len(spatial) + 2 else ids


class _OneMethod(MixPolicy):
    """A one-member policy: the sampler built from the method's options, the policy from the rest."""

    def __init__(self, sampler: MaskSampler, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._set_samplers([sampler], [1.0], [self.p])

    @property
    def sampler(self) -> MaskSampler:
        """The method's sampler (its options)."""
        return self.samplers[0]


class MixUp(_OneMethod):
    """MixUp (Zhang et al., 2018, "mixup: Beyond Empirical Risk Minimization"), per sample.

    Each sample gets its own ``lam ~ Beta(alpha, alpha)``: ``out = lam * x + (1 - lam) * x[j]``.

    Args:
        alpha: Beta concentration.
        lam: a fixed weight instead of a draw.
        reformulate: ``lam ~ Beta(alpha + 1, alpha)`` and targets are each sample's own labels (the
            FMix paper's reformulation of MSDA).
        and the :class:`MixPolicy` arguments.

    Example:
        >>> mix = MixUp(alpha=0.4, num_classes=10, seed=0)
        >>> x, y = mix(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> x.shape, y.shape
        (torch.Size([8, 3, 32, 32]), torch.Size([8, 10]))
    """

    def __init__(self, alpha: float = 1.0, *, lam: float | None = None, reformulate: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(MixUpSampler(alpha, lam, reformulate), **kwargs)


class CutMix(_OneMethod):
    """CutMix (Yun et al., 2019): a box of the partner pasted into each sample.

    Boxes are intervals, rectangles or cuboids (for 1-, 2- or 3-D data) of volume
    ``(1 - lam) * |S|`` before clipping; lam is then the area outside the clipped box.

    Args:
        alpha: Beta concentration.
        num_boxes: boxes per sample (kornia's ``num_mix``), all from the one partner; their
            unclipped volumes add up to ``(1 - lam) * |S|`` and lam is the area outside all of them.
        size_range: draw each side in ``(low, high)`` times the image's side, the box inside the
            image, instead of from lam (timm's ``cutmix_minmax``).
        lam, reformulate, and the :class:`MixPolicy` arguments.

    Example:
        >>> out = CutMix(num_classes=10, seed=0)(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> bool(torch.allclose(out.lam, out.mask.float().mean((1, 2))))
        True
    """

    def __init__(self, alpha: float = 1.0, *, num_boxes: int = 1, size_range: tuple[float, float] | None = None,
                 lam: float | None = None, reformulate: bool = False, **kwargs: Any) -> None:
        super().__init__(CutMixSampler(alpha, lam, reformulate, num_boxes, size_range), **kwargs)


class FMix(_OneMethod):
    """FMix (Harris et al., 2020, "FMix: Enhancing Mixed Sample Data Augmentation").

    Each sample's mask keeps the top ``round(lam * |S|)`` values of its own low-frequency grey
    image (a Gaussian spectrum decaying as ``1 / f ** decay_power``), in 1-D, 2-D or 3-D.

    Args:
        alpha: Beta concentration.
        decay_power: spectrum decay; higher is smoother (the paper uses 3).
        max_soft: soft edge width as a fraction of ``|S|`` (0 = binary masks).
        lam, reformulate, and the :class:`MixPolicy` arguments.

    Example:
        >>> out = FMix(decay_power=3, num_classes=10, seed=0)(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> out.mask.dtype
        torch.bool
    """

    def __init__(self, alpha: float = 1.0, *, decay_power: float = 3.0, max_soft: float = 0.0,
                 lam: float | None = None, reformulate: bool = False, **kwargs: Any) -> None:
        super().__init__(FMixSampler(alpha, lam, reformulate, decay_power, max_soft), **kwargs)


class GridMask(_OneMethod):
    """GridMask (Chen et al., 2020, "GridMask Data Augmentation"): drop a grid of blocks.

    The partner is the constant ``fill``, not another sample, and labels are kept. Dense targets
    keep their ids where pixels are dropped, or get ``ignore_index`` when one is given.

    Args:
        cell_size: ``(low, high)`` range of the grid period as fractions of the smallest side.
        keep_ratio: fraction of each cell's side that is kept.
        rotate: largest random rotation in degrees (2-D only).
        fill: value written into dropped pixels (one the inputs' dtype can hold).
        and the :class:`MixPolicy` arguments.
    """

    def __init__(self, *, cell_size: tuple[float, float] = (96 / 224, 1.0), keep_ratio: float = 0.6,
                 rotate: float = 0.0, fill: float = 0.0, **kwargs: Any) -> None:
        super().__init__(GridMaskSampler(cell_size, keep_ratio, rotate, fill), **kwargs)


class RandomChoice(MixPolicy):
    """Pick a method per sample (or per batch) and mix the whole batch in one pass.

    Members keep their own method options and apply probability ``p``. The options that touch pairing
    and targets (``pairing``, ``per_sample``, ``num_classes``, ``label_smoothing``, ``multi_label``,
    ``ignore_index``, ``channels_last``, ``validate``) are the policy's: a member may set one only to
    the value the policy and the other members use, else :class:`MixMaskError` names the conflict.
    Members draw from the policy's stream (a member's ``seed`` is refused). A ``RandomChoice`` member
    contributes its own members, their weights scaled by its weight.

    Args:
        transforms: the members (single methods or other ``RandomChoice``).
        weights: relative chance of each member (normalised); None for uniform.
        p: apply probability for every member, overriding theirs (None: each member's own ``p``).
        and the other :class:`MixPolicy` arguments.

    Example:
        >>> policy = RandomChoice([CutMix(), GridMask()], weights=[0.5, 0.5], num_classes=10, seed=0)
        >>> x, y = policy(torch.ones(8, 3, 32, 32), torch.arange(8))
        >>> y.shape
        torch.Size([8, 10])
    """

    def __init__(self, transforms: Sequence[MixPolicy], weights: Sequence[float] | None = None, *,
                 p: float | None = None, **kwargs: Any) -> None:
        members = list(transforms) if isinstance(transforms, Sequence) and not isinstance(transforms, str) else []
        if not members or not all(isinstance(t, MixPolicy) for t in members):
            raise MixMaskError(f"expected a non-empty list of mixmask transforms, but got {transforms!r}")
        transforms = members
        if isinstance(p, (Sequence, np.ndarray, Tensor)) and not isinstance(p, str):
            raise MixMaskError(f"RandomChoice's p is the probability that a sample is mixed, but got {p!r}: pass "
                               "the members' relative chances as weights=")
        given = {k: v for k, v in kwargs.items() if k in _SHARED_OPTIONS and v != _SHARED_OPTIONS[k]}
        super().__init__(p=1.0 if p is None else p, **kwargs)
        for name in _SHARED_OPTIONS:
            values = {repr(v): v for v in ([given[name]] if name in given else [])
                      + [t.shared_options()[name] for t in transforms if name in t.shared_options()]}
            if len(values) > 1:
                raise MixMaskError(f"RandomChoice and its members set {name} to different values "
                                   f"({', '.join(values)}): set it once, on the RandomChoice")
            if values:
                setattr(self, name, next(iter(values.values())))
        K.check_ignore_index(self.ignore_index, self.num_classes)
        seeded = [type(t).__name__ for t in transforms if t.seed is not None]
        if seeded:
            raise MixMaskError(f"members draw from the RandomChoice's stream, but {', '.join(seeded)} got a seed: "
                               "pass seed= to the RandomChoice")
        if weights is None:
            weights = [1.0] * len(transforms)
        if isinstance(weights, (str, bytes)) or not isinstance(weights, (Sequence, np.ndarray, Tensor)):
            raise MixMaskError(f"expected {len(transforms)} non-negative weights, but got {weights!r}")
        weights = [check_finite_range("weights", w, 0.0, math.inf) for w in weights]
        if len(weights) != len(transforms) or sum(weights) <= 0:
            raise MixMaskError(f"expected {len(transforms)} non-negative weights with a positive sum, but got "
                               f"{weights!r}")
        samplers, flat_weights, probs = [], [], []
        for member, weight in zip(transforms, weights):
            for k, sampler in enumerate(member.samplers):
                samplers.append(sampler)
                flat_weights.append(weight * float(member._weights[k]))
                probs.append(member._probs[k].item() if p is None else self.p)
        self.transforms = transforms
        self._set_samplers(samplers, flat_weights, probs)
        self.p = p

    @property
    def weights(self) -> list[float]:
        """The normalised weight of each member."""
        out, k = [], 0
        for member in self.transforms:
            n = len(member.samplers)
            out.append(round(float(self._weights[k:k + n].sum()), 6))
            k += n
        return out

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        args = {"weights": self.weights}
        if self.p is not None:
            args["p"] = self.p
        args.update(self.shared_options())
        if self.seed is not None:
            args["seed"] = self.seed
        return f"RandomChoice([{inner}], {', '.join(f'{k}={v!r}' for k, v in args.items())})"
