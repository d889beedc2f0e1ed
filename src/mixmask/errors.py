"""The package's one exception class."""

from __future__ import annotations

__all__ = ["MixMaskError"]


class MixMaskError(ValueError):
    """Raised for invalid arguments or inputs; the message says what was expected and what came."""
