"""Mixing inside a DataLoader's ``collate_fn``, on the CPU workers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import default_collate

from mixmask.errors import MixMaskError
from mixmask.functional._checks import check_choice
from mixmask.streams import ProcessStream
from mixmask.transforms.mix import MixTransform

__all__ = ["MixCollate"]


class MixCollate:
    """A ``collate_fn`` that collates a batch, then mixes it in place.

    The freshly collated batch belongs to the collate, so it is mixed in place with a reused partner
    buffer (no allocation per batch after the first). Each DataLoader worker and each distributed
    rank draws from its own stream, derived from ``seed``, the worker's per-epoch seed and the rank.

    Args:
        transform: the mixing transform (its ``num_classes`` is used for sparse labels).
        targets: what the second item of each sample is: ``"labels"`` (class ids or vectors) or
            ``"masks"`` (dense id maps). Dict samples use the keys ``image``, ``label``, ``mask``.
        collate_fn: how to collate the samples first (``torch.utils.data.default_collate``).
        seed: base seed of the streams (default: the transform generator's initial seed).

    Returns (when called):
        The collated structure with ``inputs`` mixed, labels as ``(B, K)`` soft targets and dense
        maps mixed.

    Example:
        >>> loader = DataLoader(data, batch_size=64, num_workers=2,
        ...                     collate_fn=MixCollate(CutMix(num_classes=10), seed=0))
    """

    def __init__(self, transform: MixTransform, *, targets: Literal["labels", "masks"] = "labels",
                 collate_fn: Callable[[list[Any]], Any] = default_collate, seed: int | None = None) -> None:
        if not isinstance(transform, MixTransform):
            raise MixMaskError(f"expected a mixmask transform, but got {type(transform).__name__}")
        self.transform = transform
        self.targets = check_choice("targets", targets, ("labels", "masks"))
        self.collate_fn = collate_fn
        self.seed = transform.generator.initial_seed() if seed is None else int(seed)
        self._stream = ProcessStream(self.seed)
        self._workspace: Tensor | None = None

    def generator(self) -> torch.Generator:
        """The stream of this process: one per (worker seed, rank), re-seeded each epoch."""
        return self._stream()

    def _workspace_like(self, inputs: Tensor) -> Tensor:
        ws = self._workspace
        if ws is None or ws.shape != inputs.shape or ws.dtype != inputs.dtype:
            ws = self._workspace = torch.empty_like(inputs)
        return ws

    def _mix(self, inputs: Tensor, labels: Tensor | None, masks: Tensor | None):
        params = self.transform.sample(inputs, labels, generator=self.generator())
        return self.transform.apply(params, inputs, labels, masks=masks, inplace=True,
                                    workspace=self._workspace_like(inputs))

    def __call__(self, samples: list[Any]) -> Any:
        batch = self.collate_fn(samples)
        if isinstance(batch, Mapping):
            out = self._mix(batch["image"], batch.get("label"), batch.get("mask"))
            mixed = dict(batch, image=out.inputs)
            if out.targets is not None:
                mixed["label"] = out.targets
            if out.masks is not None:
                mixed["mask"] = out.masks
            return mixed
        if isinstance(batch, Sequence) and len(batch) == 2 and isinstance(batch[0], Tensor):
            inputs, second = batch
            if self.targets == "labels":
                out = self._mix(inputs, second, None)
                return out.inputs, out.targets
            out = self._mix(inputs, None, second)
            return out.inputs, out.masks
        raise MixMaskError("expected samples that collate to (inputs, targets) or a dict with 'image', "
                           f"but got a collated {type(batch).__name__}")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_workspace=None)
        return state

    def __repr__(self) -> str:
        return f"MixCollate({self.transform!r}, targets={self.targets!r}, seed={self.seed})"
