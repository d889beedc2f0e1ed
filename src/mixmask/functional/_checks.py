"""Argument and input validation shared by samplers, kernels and transforms."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from mixmask.errors import MixMaskError


def check_finite_range(name: str, value: float, low: float, high: float, *, low_open: bool = False,
                       high_open: bool = False) -> float:
    """Return ``float(value)`` if it is a finite real number inside the interval, else raise."""
    if isinstance(value, (str, bytes, bool)) or not isinstance(value, (numbers.Real, np.ndarray, Tensor)):
        raise MixMaskError(f"{name} must be a number, but got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise MixMaskError(f"{name} must be a number, but got {value!r}") from None
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if not math.isfinite(value) or below or above:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise MixMaskError(f"{name} must be a finite number in {lo}{low}, {high}{hi}, but got {value!r}")
    return value


def check_int(name: str, value: int, *, low: int | None = None) -> int:
    """Return ``value`` as an int (Python or numpy integer, not bool) that is >= ``low``, else raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise MixMaskError(f"{name} must be an int, but got {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise MixMaskError(f"{name} must be an int >= {low}, but got {value}")
    return value


def check_bool(name: str, value: bool) -> bool:
    """Return ``value`` if it is a bool (or a numpy bool), else raise: ``'False'`` is not False."""
    if not isinstance(value, (bool, np.bool_)):
        raise MixMaskError(f"{name} must be True or False, but got {value!r}")
    return bool(value)


def check_pair(name: str, value: Sequence[float] | None, low: float, high: float, *,
               low_open: bool = False) -> tuple[float, float] | None:
    """Return a ``(low, high)`` pair of numbers in the interval with ``low <= high`` (None stays None), else raise."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray, Tensor)) or len(value) != 2:
        raise MixMaskError(f"{name} must be a (low, high) pair, but got {value!r}")
    a, b = (check_finite_range(name, v, low, high, low_open=low_open) for v in value)
    if a > b:
        raise MixMaskError(f"{name} must have low <= high, but got {tuple(value)}")
    return a, b


def check_int_pair(name: str, value: Sequence[int], *, low: int) -> tuple[int, int]:
    """Return a ``(low, high)`` pair of ints ``>= low`` with ``low <= high``, else raise."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)) or len(value) != 2:
        raise MixMaskError(f"{name} must be a (low, high) pair of ints, but got {value!r}")
    a, b = (check_int(name, v, low=low) for v in value)
    if a > b:
        raise MixMaskError(f"{name} must have low <= high, but got {tuple(value)}")
    return a, b


def check_positive(name: str, value: float) -> float:
    """Return ``float(value)`` if it is finite and > 0, else raise."""
    return check_finite_range(name, value, 0.0, math.inf, low_open=True, high_open=True)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise naming the valid ones."""
    if not isinstance(value, str) or value not in choices:
        raise MixMaskError(f"{name} must be one of {list(choices)}, but got {value!r}")
    return value


def check_batch_size(batch_size: int) -> int:
    """Return ``batch_size`` if it is an int >= 1, else raise."""
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise MixMaskError(f"expected a batch size >= 1, but got {batch_size!r}")
    return int(batch_size)


def check_spatial_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Return the spatial shape ``S`` as a tuple of 1 to 3 positive ints, else raise."""
    shape = tuple(int(s) for s in shape)
    if not 1 <= len(shape) <= 3 or any(s < 1 for s in shape):
        raise MixMaskError(f"expected a spatial shape of rank 1, 2 or 3 with sizes >= 1, but got {shape}")
    return shape


#: The float dtypes inputs may have (float8 types hold too few values to blend).
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
#: Channel counts that make the layout of a batch ambiguous when they stand last.
_CHANNEL_COUNTS = (1, 3, 4)


def check_batch(inputs: Tensor, channels_last: bool | None) -> tuple[int, int, tuple[int, ...]]:
    """Split an input batch's shape into ``(B, C, S)``; raise on a wrong rank, dtype or layout.

    ``channels_last=None`` reads the batch as channels first, but refuses one whose last dim looks like
    channels (1, 3 or 4) while dim 1 looks like a side (more than 4), e.g. ``(B, H, W, 3)``: the caller
    must say which.
    """
    if not isinstance(inputs, Tensor):
        raise MixMaskError(f"expected inputs as a torch.Tensor, but got {type(inputs).__name__}")
    layout = "(B, *S, C)" if channels_last else "(B, C, *S)"
    if not 3 <= inputs.ndim <= 5:
        raise MixMaskError(f"expected inputs of shape {layout} with 1 to 3 spatial dims (3 to 5 dims in all), "
                           f"but got a tensor of shape {tuple(inputs.shape)}")
    if inputs.dtype != torch.uint8 and inputs.dtype not in FLOAT_DTYPES:
        raise MixMaskError(f"expected uint8 or float16/bfloat16/float32/float64 inputs, but got dtype {inputs.dtype}")
    if inputs.shape[0] == 0:
        raise MixMaskError(f"expected a batch of at least one sample, but got shape {tuple(inputs.shape)}")
    if channels_last is None and inputs.shape[-1] in _CHANNEL_COUNTS and inputs.shape[1] > max(_CHANNEL_COUNTS):
        raise MixMaskError(f"inputs of shape {tuple(inputs.shape)} look channels-last (last dim "
                           f"{inputs.shape[-1]}, dim 1 {inputs.shape[1]}): pass channels_last=True for (B, *S, C), "
                           f"or channels_last=False if dim 1 really holds the channels")
    if channels_last:
        return inputs.shape[0], inputs.shape[-1], tuple(inputs.shape[1:-1])
    return inputs.shape[0], inputs.shape[1], tuple(inputs.shape[2:])


def check_generator(generator: torch.Generator) -> torch.Generator:
    """Return ``generator`` if it is a CPU ``torch.Generator``: no draw ever falls back to global state."""
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise MixMaskError(f"expected a CPU torch.Generator (draws never use torch's global generator), but got "
                           f"{generator!r}")
    return generator


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
