"""Argument and input validation shared by samplers, kernels and transforms."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from mixmask.errors import MixMaskError


def check_finite_range(name: str, value: float, low: float, high: float, *, low_open: bool = False,
                       high_open: bool = False) -> float:
    """Return ``float(value)`` if it is finite and inside the interval, else raise."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise MixMaskError(f"{name} must be a number, but got {value!r}") from None
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if not math.isfinite(value) or below or above:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise MixMaskError(f"{name} must be a finite number in {lo}{low}, {high}{hi}, but got {value!r}")
    return value


def check_positive(name: str, value: float) -> float:
    """Return ``float(value)`` if it is finite and > 0, else raise."""
    return check_finite_range(name, value, 0.0, math.inf, low_open=True, high_open=True)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise naming the valid ones."""
    if value not in choices:
        raise MixMaskError(f"{name} must be one of {list(choices)}, but got {value!r}")
    return value


def check_batch_size(batch_size: int) -> int:
    """Return ``batch_size`` if it is an int >= 1, else raise."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise MixMaskError(f"expected a batch size >= 1, but got {batch_size!r}")
    return batch_size


def check_spatial_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Return the spatial shape ``S`` as a tuple of 1 to 3 positive ints, else raise."""
    shape = tuple(int(s) for s in shape)
    if not 1 <= len(shape) <= 3 or any(s < 1 for s in shape):
        raise MixMaskError(f"expected a spatial shape of rank 1, 2 or 3 with sizes >= 1, but got {shape}")
    return shape


def check_batch(inputs: Tensor, channels_last: bool) -> tuple[int, int, tuple[int, ...]]:
    """Split an input batch's shape into ``(B, C, S)``; raise on a wrong rank or an empty batch."""
    if not isinstance(inputs, Tensor):
        raise MixMaskError(f"expected inputs as a torch.Tensor, but got {type(inputs).__name__}")
    layout = "(B, *S, C)" if channels_last else "(B, C, *S)"
    if not 3 <= inputs.ndim <= 5:
        raise MixMaskError(f"expected inputs of shape {layout} with 1 to 3 spatial dims (3 to 5 dims in all), "
                           f"but got a tensor of shape {tuple(inputs.shape)}")
    if inputs.dtype not in (torch.uint8,) and not inputs.dtype.is_floating_point:
        raise MixMaskError(f"expected float or uint8 inputs, but got dtype {inputs.dtype}")
    if inputs.shape[0] == 0:
        raise MixMaskError(f"expected a batch of at least one sample, but got shape {tuple(inputs.shape)}")
    if channels_last:
        return inputs.shape[0], inputs.shape[-1], tuple(inputs.shape[1:-1])
    return inputs.shape[0], inputs.shape[1], tuple(inputs.shape[2:])


def as_generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """A CPU generator from ``seed`` or ``generator`` (not both); fresh entropy when neither is given."""
    if seed is not None and generator is not None:
        raise MixMaskError("pass seed= or generator=, not both")
    if generator is not None:
        if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            raise MixMaskError(f"expected a CPU torch.Generator, but got {generator!r}")
        return generator
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise MixMaskError(f"seed must be a non-negative int, but got {seed!r}")
        gen.manual_seed(seed)
    return gen


def device_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator for ``device``: ``generator`` itself on CPU, else a device one seeded from it.

    Drawing the seed advances the CPU stream, so the whole draw stays a function of the CPU seed.
    """
    if device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def to_device(tensor: Tensor, device: torch.device | str, dtype: torch.dtype | None = None) -> Tensor:
    """``tensor.to(device, dtype)`` that never blocks the host: CPU→CUDA copies go through pinned memory.

    A plain copy from pageable host memory synchronises with the device; the parameters of a draw
    (B values) are copied this way so a call makes no host-device synchronisation.
    """
    device = torch.device(device)
    if dtype is not None:
        tensor = tensor.to(dtype)
    if tensor.device == device:
        return tensor
    if tensor.device.type == "cpu" and device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
