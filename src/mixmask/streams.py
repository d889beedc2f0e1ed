"""Random streams per process: one per DataLoader worker (per epoch) and per distributed rank."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import get_worker_info

__all__ = ["ProcessStream"]


def _rank() -> int:
    """The distributed rank, 0 when no process group is initialised."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


class ProcessStream:
    """A CPU generator for the calling process, derived from ``seed``, the worker's seed and the rank.

    A DataLoader gives each worker a new seed every epoch, so each worker draws a fresh, repeatable
    stream per epoch (repeatable when the DataLoader has a seeded ``generator``); the main process and
    each distributed rank get their own.

    Args:
        seed: base seed, a non-negative int.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._key: tuple[int | None, int] | None = None
        self._generator: torch.Generator | None = None

    def __call__(self) -> torch.Generator:
        """This process's generator (made anew when the worker seed or the rank changes)."""
        info = get_worker_info()
        key = (None if info is None else info.seed, _rank())
        if key != self._key or self._generator is None:
            entropy = [self.seed, -1 if info is None else info.seed, key[1]]
            state = np.random.SeedSequence([abs(e) for e in entropy] + [int(e < 0) for e in entropy])
            self._generator = torch.Generator().manual_seed(int(state.generate_state(1, np.uint64)[0] >> 1))
            self._key = key
        return self._generator

    def __getstate__(self) -> dict[str, Any]:
        return {"seed": self.seed, "_key": None, "_generator": None}
