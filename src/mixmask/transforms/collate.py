"""Mixing inside a DataLoader's ``collate_fn``, on the CPU workers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import default_collate

from mixmask.errors import MixMaskError
from mixmask.functional._checks import check_choice, check_int
from mixmask.streams import ProcessStream
from mixmask.transforms.mix import MixPolicy, MixResult

__all__ = ["MixCollate"]


class MixCollate:
    """A ``collate_fn`` that collates a batch, then mixes it in place.

    The freshly collated batch belongs to the collate, so it is mixed in place with a reused partner
    buffer (no allocation per batch after the first). Draws come from a per-process stream keyed by
    ``seed``, the DataLoader worker's per-epoch seed and the distributed rank, so workers, epochs and
    ranks never share draws. It pickles for workers started with ``fork``, ``spawn`` or
    ``forkserver``; calls from several threads of one process are serialised (they share the buffer).

    Args:
        transform: the mixing transform (its ``num_classes`` is used for sparse labels).
        targets: what the second item of each sample is: ``"labels"`` (class ids or vectors) or
            ``"masks"`` (dense id maps). Dict samples use the keys ``image``, ``label``, ``mask``.
        collate_fn: how to collate the samples first (``torch.utils.data.default_collate``); it must
            return new tensors, since they are written in place.
        seed: base seed of the streams (default: the transform's ``seed``; None follows
            ``torch.initial_seed()``).

    Returns (when called):
        The collated structure with ``inputs`` mixed, labels as ``(B, K)`` soft targets and dense
        maps mixed.

    Example:
        >>> loader = DataLoader(data, batch_size=64, num_workers=2,
        ...                     collate_fn=MixCollate(CutMix(num_classes=10), seed=0))
    """

    def __init__(self, transform: MixPolicy, *, targets: Literal["labels", "masks"] = "labels",
                 collate_fn: Callable[[list[Any]], Any] = default_collate, seed: int | None = None) -> None:
        if not isinstance(transform, MixPolicy):
            raise MixMaskError(f"expected a mixmask transform, but got {type(transform).__name__}")
        if not callable(collate_fn):
            raise MixMaskError(f"expected a callable collate_fn, but got {collate_fn!r}")
        self.transform = transform
        self.targets = check_choice("targets", targets, ("labels", "masks"))
        self.collate_fn = collate_fn
        self.seed = transform.seed if seed is None else check_int("seed", seed, low=0)
        self._stream = ProcessStream(self.seed)
        self._lock = threading.Lock()
        self._workspace: Tensor | None = None

    def generator(self) -> torch.Generator:
        """The stream of this process: one per (seed, worker seed, rank), re-seeded each epoch."""
        return self._stream()

    def _workspace_like(self, inputs: Any) -> Tensor | None:
        if not isinstance(inputs, Tensor) or type(inputs) is not Tensor or inputs.ndim < 3:
            return None  # the transform's checks say what is wrong
        ws = self._workspace
        if ws is None or ws.shape != inputs.shape or ws.dtype != inputs.dtype or ws.device != inputs.device:
            ws = self._workspace = torch.empty_like(inputs)
        return ws

    def _mix(self, inputs: Tensor, labels: Tensor | None, masks: Tensor | None) -> MixResult:
        with self._lock, self._stream.lock:
            workspace = self._workspace_like(inputs)
            return self.transform._run(inputs, labels, masks, generator=self.generator(),
                                       inplace=workspace is not None, workspace=workspace)

    def __call__(self, samples: list[Any]) -> Any:
        batch = self.collate_fn(samples)
        if isinstance(batch, Mapping):
            if "image" not in batch:
                raise MixMaskError(f"expected dict samples with the key 'image', but got keys {sorted(batch)}")
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
                return tuple(self._mix(inputs, second, None))
            return tuple(self._mix(inputs, None, second))
        raise MixMaskError("expected samples that collate to (inputs, targets) or a dict with 'image', "
                           f"but got a collated {type(batch).__name__}")

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_workspace", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _workspace=None, _lock=threading.Lock())

    def __repr__(self) -> str:
        return f"MixCollate({self.transform!r}, targets={self.targets!r}, seed={self.seed})"
