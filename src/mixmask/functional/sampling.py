"""Samplers for the scalar parameters of a draw: mixing weights and partner indices.

All draws take an explicit CPU ``torch.Generator`` and return CPU tensors; they are O(B) and are
moved to the input's device by the caller.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional._checks import check_batch_size, check_choice, check_generator, check_positive

__all__ = ["Pairing", "PAIRINGS", "sample_lam", "sample_partners"]

Pairing = Literal["permutation", "flip", "other_class"]
PAIRINGS: tuple[str, ...] = ("permutation", "flip", "other_class")


def sample_lam(batch_size: int, alpha: float, generator: torch.Generator, *,
               reformulate: bool = False) -> Tensor:
    """Draw one mixing weight per sample, ``lam ~ Beta(alpha, alpha)``.

    With ``reformulate=True`` the draw is ``Beta(alpha + 1, alpha)``, the FMix paper's
    reformulation of MSDA. Beta is drawn as ``G1 / (G1 + G2)`` from two Gamma draws of the
    generator, in log space (``Gamma(a) = Gamma(a + 1) * U ** (1 / a)``) so that small alphas, whose
    Gamma draws underflow, still give the right distribution (lam near 0 or 1 in equal parts).

    Args:
        batch_size: B.
        alpha: concentration, > 0.
        generator: CPU generator.
        reformulate: use ``Beta(alpha + 1, alpha)``.

    Returns:
        ``(B,)`` float64 tensor in [0, 1].

    Raises:
        MixMaskError: a bad batch size, alpha not a finite number > 0, or no CPU generator.
    """
    batch_size = check_batch_size(batch_size)
    alpha = check_positive("alpha", alpha)
    check_generator(generator)
    return _sample_lam(batch_size, alpha, generator, reformulate)


def _sample_lam(batch_size: int, alpha: float, generator: torch.Generator, reformulate: bool = False) -> Tensor:
    """:func:`sample_lam` for arguments the library checked itself.

    The logarithms and the sigmoid are torch's; the divisions, sums and the difference are correctly
    rounded IEEE operations, done in numpy (the same bytes, without a tensor op each)."""
    shape, gamma_shape = _beta_shapes(batch_size, alpha, reformulate)
    log_gammas = torch._standard_gamma(gamma_shape, generator=generator).log_().numpy()
    log_uniforms = torch.rand((2, batch_size), generator=generator, dtype=torch.float64).neg_().log1p_().numpy()
    log_gammas += log_uniforms / shape
    return torch.from_numpy(log_gammas[0] - log_gammas[1]).sigmoid_()


@functools.lru_cache(maxsize=32)
def _beta_shapes(batch_size: int, alpha: float, reformulate: bool) -> tuple[np.ndarray, Tensor]:
    """The ``(2, B)`` float64 shapes of the two Gamma draws of a Beta (numpy) and those shapes + 1 (read only)."""
    shape = np.full((2, batch_size), alpha, dtype=np.float64)
    if reformulate:
        shape[0] += 1.0
    shape.flags.writeable = False
    return shape, torch.from_numpy(shape + 1.0)


def _derangement(batch_size: int, generator: torch.Generator) -> Tensor:
    """A random permutation with no fixed point: samples in random order, each paired with the next."""
    order = torch.randperm(batch_size, generator=generator).numpy()
    index = np.empty_like(order)
    index[order] = np.concatenate((order[1:], order[:1]))  # O(B) bookkeeping in numpy: no dispatch cost
    return torch.from_numpy(index)


def _other_class(labels: Tensor, generator: torch.Generator) -> Tensor:
    """For each sample, a uniformly drawn partner with a different label; any other sample if none has one."""
    flat = labels.reshape(labels.shape[0], -1)
    classes = flat[:, 0] if flat.shape[1] == 1 else torch.unique(flat, dim=0, return_inverse=True)[1]
    differs = classes[:, None] != classes[None, :]
    scores = torch.rand(differs.shape, generator=generator)
    fallback = _derangement(labels.shape[0], generator)
    best = torch.where(differs, scores + 1.0, torch.zeros_like(scores))
    best.diagonal().fill_(-1.0)
    choice = best.argmax(1)
    return torch.where(differs.any(1), choice, fallback)


def _describe(value: object) -> str:
    return f"shape {tuple(value.shape)}" if isinstance(value, Tensor) else type(value).__name__


def sample_partners(batch_size: int, generator: torch.Generator, pairing: Pairing = "permutation",
                    labels: Tensor | None = None) -> Tensor:
    """Draw the partner index ``j``: sample ``i`` is mixed with sample ``j[i]``.

    Args:
        batch_size: B.
        generator: CPU generator.
        pairing: ``"permutation"`` (a random permutation with no self-pairs when B >= 2),
            ``"flip"`` (reverse order; the middle sample of an odd batch pairs with itself) or
            ``"other_class"`` (a random partner whose label differs where one exists, else any
            other sample; needs ``labels``).
        labels: ``(B,)`` class ids or ``(B, K)`` targets, for ``"other_class"``.

    Returns:
        ``(B,)`` int64 CPU tensor. For B = 1 it is ``[0]``.

    Raises:
        MixMaskError: a bad batch size, an unknown pairing, no CPU generator, or ``"other_class"``
            without labels for B samples.
    """
    batch_size = check_batch_size(batch_size)
    check_choice("pairing", pairing, PAIRINGS)
    check_generator(generator)
    return _sample_partners(batch_size, generator, pairing, labels)


def _sample_partners(batch_size: int, generator: torch.Generator, pairing: Pairing = "permutation",
                     labels: Tensor | None = None) -> Tensor:
    """:func:`sample_partners` for a batch size, pairing and generator the library checked itself."""
    if batch_size == 1:
        return torch.zeros(1, dtype=torch.long)
    if pairing == "flip":
        return torch.arange(batch_size - 1, -1, -1)
    if pairing == "other_class":
        if labels is None:
            raise MixMaskError("pairing='other_class' needs labels, but got labels=None")
        if not isinstance(labels, Tensor) or labels.ndim == 0 or labels.shape[0] != batch_size:
            raise MixMaskError(f"expected labels for {batch_size} samples, but got {_describe(labels)}")
        return _other_class(labels.detach().cpu(), generator)
    return _derangement(batch_size, generator)
