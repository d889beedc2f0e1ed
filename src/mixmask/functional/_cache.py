"""A least-recently-used cache of tensors bounded in bytes, for tables that samplers reuse across calls."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from torch import Tensor

__all__ = ["TensorCache"]

T = TypeVar("T")


def _nbytes(value: object) -> int:
    """Bytes held by the tensors of ``value`` (a tensor, or a tuple, list or dataclass holding tensors)."""
    if isinstance(value, Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    fields = getattr(value, "__dataclass_fields__", None)
    return sum(_nbytes(getattr(value, name)) for name in fields) if fields else 0


class TensorCache:
    """Values built by ``build()`` kept by key, least recently used dropped first, at most ``max_bytes`` in all.

    A value larger than ``max_bytes`` is returned but not kept. Safe to share between threads (two
    threads asking for the same missing key may both build it; one copy is kept).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The value kept for ``key``, else ``build()`` (kept when it fits)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry[0]
        value = build()
        size = _nbytes(value)
        if size > self.max_bytes:
            return value
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return value

    def clear(self) -> None:
        """Drop every value."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
