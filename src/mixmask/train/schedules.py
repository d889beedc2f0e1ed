"""Learning-rate schedule: linear or exponential warm-up, then cosine decay, as a function of the step."""

from __future__ import annotations

import math

from mixmask.errors import MixMaskError

__all__ = ["WARMUPS", "lr_at", "lr_curve"]

WARMUPS: tuple[str, ...] = ("linear", "exponential")


def lr_at(step: int, total_steps: int, base_lr: float, warmup_steps: int = 0, warmup: str = "linear",
          min_lr: float = 0.0, start_factor: float = 0.01) -> float:
    """The learning rate at optimisation step ``step`` (0-based).

    Warm-up over ``warmup_steps`` from ``start_factor * base_lr`` to ``base_lr`` (linear, or
    exponential: a constant factor per step), then cosine decay from ``base_lr`` to ``min_lr`` at
    ``total_steps``.

    Args:
        step: the step about to be taken.
        total_steps: steps of the whole run.
        base_lr: peak learning rate.
        warmup_steps: length of the warm-up (0 for none).
        warmup: ``"linear"`` or ``"exponential"``.
        min_lr: final learning rate.
        start_factor: first warm-up rate as a fraction of ``base_lr``.

    Returns:
        The learning rate.
    """
    if warmup not in WARMUPS:
        raise MixMaskError(f"unknown warm-up {warmup!r}; valid: {', '.join(WARMUPS)}")
    if step < warmup_steps:
        frac = (step + 1) / warmup_steps
        if warmup == "linear":
            return base_lr * (start_factor + (1.0 - start_factor) * frac)
        return base_lr * start_factor ** (1.0 - frac)
    decay = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay, 1.0)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def lr_curve(total_steps: int, base_lr: float, warmup_steps: int = 0, warmup: str = "linear",
             min_lr: float = 0.0) -> list[float]:
    """:func:`lr_at` for every step of a run: a list of ``total_steps`` rates."""
    return [lr_at(s, total_steps, base_lr, warmup_steps, warmup, min_lr) for s in range(total_steps)]
