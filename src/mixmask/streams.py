"""Random streams per process: one per seed, DataLoader worker (per epoch) and distributed rank.

The rule, for every transform and collate of the package: draws come from a CPU generator keyed by

- the object's ``seed``, or ``torch.initial_seed()`` when it has none (so ``torch.manual_seed(s)``
  makes an unseeded pipeline repeat, and a different ``s`` draws differently);
- the DataLoader worker's seed (``get_worker_info().seed``: new every epoch unless the workers are
  persistent, in which case each worker's stream simply goes on), or none in the main process;
- the distributed rank (``torch.distributed.get_rank()`` when a process group is initialised).

Whenever the key changes, the stream starts afresh from a seed derived from the key; otherwise it
goes on. Workers, epochs and ranks therefore never share draws, wherever the object is called: in
the training loop, in :class:`~mixmask.MixCollate`, or in a user's own ``collate_fn``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch
from torch.utils.data import get_worker_info

__all__ = ["ProcessStream", "rewinding"]


def _rank() -> int:
    """The distributed rank, 0 when no process group is initialised."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def _derived_seed(entropy: list[int]) -> int:
    """A 63-bit seed that depends on every entry of ``entropy`` (signed ints)."""
    state = np.random.SeedSequence([abs(e) for e in entropy] + [int(e < 0) for e in entropy])
    return int(state.generate_state(1, np.uint64)[0] >> 1)


class ProcessStream:
    """The CPU generator of the calling process, keyed by (seed, worker seed, rank).

    Calls from several threads share one generator; hold :attr:`lock` around a multi-draw step
    (``rewinding`` does) so that draws of one call are not interleaved with another's.

    Args:
        seed: base seed, a non-negative int, or None for ``torch.initial_seed()`` at draw time.
    """

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self.lock = threading.RLock()
        self._key: tuple[int, int, int] | None = None
        self._generator: torch.Generator | None = None

    def key(self) -> tuple[int, int, int]:
        """``(base seed, worker seed or -1, rank)`` of the calling process, now."""
        info = get_worker_info()
        base = torch.initial_seed() if self.seed is None else self.seed
        return base, -1 if info is None else info.seed, _rank()

    def __call__(self) -> torch.Generator:
        """This process's generator (made anew when the key changes)."""
        key = self.key()
        if key != self._key or self._generator is None:
            self._generator = torch.Generator().manual_seed(_derived_seed(list(key)))
            self._key = key
        return self._generator

    def __getstate__(self) -> dict[str, Any]:
        """The seed, key and generator state (a copy goes on where the original is, under the same key)."""
        state = None if self._generator is None else self._generator.get_state()
        return {"seed": self.seed, "key": self._key, "state": state}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["seed"])
        if state["state"] is not None:
            self._key, self._generator = state["key"], torch.Generator()
            self._generator.set_state(state["state"])

    def __repr__(self) -> str:
        return f"ProcessStream(seed={self.seed})"


@contextmanager
def rewinding(generator: torch.Generator, lock: threading.RLock | None = None) -> Iterator[torch.Generator]:
    """Draw from ``generator``; if the block raises, put the generator back where it was.

    A failed call then leaves the stream as if it had not been made. With ``lock``, the block holds
    it, so one call's draws are never interleaved with another thread's.
    """
    with lock if lock is not None else nullcontext():
        state = generator.get_state()
        try:
            yield generator
        except BaseException:
            generator.set_state(state)
            raise

