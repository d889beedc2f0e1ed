"""Seeds of a run's random streams: one per use, epoch and rank, all derived from ``--seed``."""

from __future__ import annotations

import numpy as np

__all__ = ["derive_seed"]


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (a ``numpy.random.SeedSequence`` hash): one stream per use/epoch/rank.

    Uses: 0 model initialisation, 1 mixing draws, 2 the global generator during an epoch
    (dropout), 3 the training order.
    """
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)
