"""The calls being timed: one full call of a library for one method, with its semantics.

Every case mixes a batch ``(B, C, *S)`` and turns sparse ``(B,)`` class ids into ``(B, K)`` soft
targets, so each library does the same job. Peers are called through their installed packages;
nothing of theirs is copied here. A peer that is not installed, or has no equivalent of a method,
becomes a row saying so instead of a timing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from mixmask.errors import MixMaskError

__all__ = ["BENCH_METHODS", "LIBRARIES", "FLOORS", "PEER_MODULES", "PATHS", "semantics", "has_equivalent",
           "installed", "make_call", "demo_maps"]

BENCH_METHODS: tuple[str, ...] = ("mixup", "cutmix", "fmix", "gridmask", "resizemix", "saliencymix", "smoothmix",
                                  "gridmix", "cutout", "classmix")
PATHS: tuple[str, ...] = ("transform", "collate")
FLOORS: tuple[str, ...] = ("floor-copy", "floor-lerp")
#: Every row kind, in table order: mixmask, the peers, then the floors.
LIBRARIES: tuple[str, ...] = ("mixmask", "timm-batch", "timm-elem", "torchvision", "kornia", "mixup-pkg") + FLOORS
#: The module a peer needs (what "installed" means) and the one the fork server preloads.
PEER_MODULES: dict[str, tuple[str, str]] = {
    "timm-batch": ("timm", "timm.data"),
    "timm-elem": ("timm", "timm.data"),
    "torchvision": ("torchvision", "torchvision.transforms.v2"),
    "kornia": ("kornia", "kornia.augmentation"),
    "mixup-pkg": ("mixup", "mixup"),
}
#: Which methods each peer implements (the `mixup` package on PyPI also has a heuristic PuzzleMix,
#: which mixmask does not: no row).
_PEER_METHODS: dict[str, tuple[str, ...]] = {
    "timm-batch": ("mixup", "cutmix"), "timm-elem": ("mixup", "cutmix"), "torchvision": ("mixup", "cutmix"),
    "kornia": ("mixup", "cutmix"), "mixup-pkg": ("mixup", "cutmix", "resizemix", "fmix", "saliencymix"),
}
#: The `mixup` package's class for each method.
_MIXUP_PKG = {"mixup": "VanillaMixUp", "cutmix": "CutMix", "resizemix": "ResizeMix", "fmix": "FMix",
              "saliencymix": "SaliencyMix"}

_OWNED = "as mixmask, in place into a batch it owns, reused partner buffer"
_MIXUP_PKG_COMMON = "one lam per batch (numpy's global generator), partner = torch.randperm (may pair with self); " \
    "one-hot labels made here; new output"
_SEMANTICS: dict[tuple[str, str], str] = {
    ("mixmask", "mixup"): "per-sample lam ~ Beta and partner (no self-pairs); new output",
    ("mixmask", "cutmix"): "per-sample box and partner (no self-pairs); lam = clipped-box area; new output",
    ("mixmask", "fmix"): "per-sample Fourier mask and partner (no self-pairs); lam = mask mean; new output",
    ("mixmask", "gridmask"): "per-sample grid, fill 0; labels kept; new output",
    ("mixmask", "resizemix"): "per-sample tau ~ U(0.1, 0.8), box and partner resized bilinearly into it; "
                              "lam = 1 - box area; new output",
    ("mixmask", "saliencymix"): "per-sample box centred on the peak of each partner's spectral-residual saliency "
                                "(batched FFTs); lam = clipped-box area; new output",
    ("mixmask", "smoothmix"): "per-sample Gaussian-edged circle (soft mask) and partner; lam = mask mean; new output",
    ("mixmask", "gridmix"): "per-sample n x n grid (n in 2-8), each cell from the partner with a per-sample "
                            "probability; lam = mask mean; new output",
    ("mixmask", "cutout"): "per-sample box of half the side, fill 0; labels kept; new output",
    ("mixmask", "classmix"): "per-sample half of the classes of each partner's (B, H, W) map, maps mixed too; "
                             "lam = mask mean; new output",
    ("mixmask-collate", "gridmask"): "as mixmask, in place into a batch it owns",
    ("mixmask-collate", "cutout"): "as mixmask, in place into a batch it owns",
    ("timm-batch", "mixup"): "one lam per batch; partner = flipped batch; mutates input",
    ("timm-batch", "cutmix"): "one box per batch; partner = flipped batch; lam = clipped-box area; mutates input",
    ("timm-elem", "mixup"): "per-sample lam in a Python loop; partner = flipped batch; mutates input (+1 clone)",
    ("timm-elem", "cutmix"): "per-sample box in a Python loop; partner = flipped batch; mutates input (+1 clone)",
    ("torchvision", "mixup"): "one lam per batch; partner = batch rolled by one; new output",
    ("torchvision", "cutmix"): "one box per batch; partner = batch rolled by one; lam = clipped-box area; "
                               "new output",
    ("kornia", "mixup"): "per-sample lam ~ Uniform(0, 1), not Beta; may pair with self; (B, 3) labels "
                         "made soft here",
    ("kornia", "cutmix"): "per-sample box; may pair with self; (1, B, 3) labels made soft here",
    ("mixup-pkg", "mixup"): _MIXUP_PKG_COMMON,
    ("mixup-pkg", "cutmix"): "one box per batch; lam = clipped-box area; " + _MIXUP_PKG_COMMON,
    ("mixup-pkg", "resizemix"): "one box per batch, side sqrt(1 - lam) with lam ~ Beta (not tau ~ U(0.1, 0.8)); "
                                "bilinear resize; " + _MIXUP_PKG_COMMON,
    ("mixup-pkg", "fmix"): "one Fourier mask per batch (torch.quantile threshold, spectrum on S itself); "
                           + _MIXUP_PKG_COMMON,
    ("mixup-pkg", "saliencymix"): "box of one size per batch, placed per sample in a Python loop on a heuristic "
                                  "saliency (blur contrast, edges, centre prior); label weight = each clipped box's "
                                  "area, returned as (B, 1, B, K) labels (0.2.2 broadcasts (B, 1, 1, 1) weights "
                                  "against (B, K): sample i's row is [i, 0, i]); " + _MIXUP_PKG_COMMON,
    ("floor-copy", "-"): "index_select into a preallocated batch; no labels",
    ("floor-lerp", "-"): "one allocating torch.lerp with a per-sample weight (torch.where for uint8); no labels",
}


def semantics(library: str, method: str, path: str = "transform") -> str:
    """What a row's number buys: pairing, lam per sample or per batch, in place or not."""
    if library == "mixmask" and path == "collate":
        return _SEMANTICS.get(("mixmask-collate", method), _OWNED if method in BENCH_METHODS else "")
    return _SEMANTICS.get((library, method), "")


def has_equivalent(library: str, method: str) -> bool:
    """Whether ``library`` implements ``method`` (floors have the single method ``"-"``)."""
    if library in FLOORS:
        return method == "-"
    if library == "mixmask":
        return method in BENCH_METHODS
    return method in _PEER_METHODS.get(library, ())


def installed(library: str) -> bool:
    """Whether the package a row needs can be imported (mixmask and the floors need only torch)."""
    if library not in PEER_MODULES:
        return True
    try:
        return importlib.util.find_spec(PEER_MODULES[library][0]) is not None
    except (ImportError, ValueError):
        return False


def _one_hot(labels: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    return torch.nn.functional.one_hot(labels.long(), num_classes).to(dtype)


def demo_maps(batch: int, spatial: tuple[int, ...], seed: int, device: torch.device, classes: int = 8) -> Tensor:
    """``(B, *S)`` int64 maps of ``classes`` ids in blocks of about 1/8 of each side (for ClassMix rows)."""
    coarse = torch.randint(0, classes, (batch, *[8] * len(spatial)), generator=torch.Generator().manual_seed(seed))
    index = [torch.arange(n) * 8 // n for n in spatial]
    return coarse[(slice(None),) + torch.meshgrid(*index, indexing="ij")].to(device)


def _mixmask_call(method: str, path: str, inputs: Tensor, labels: Tensor, num_classes: int,
                  seed: int) -> Callable[[], Any]:
    import mixmask

    kinds = {"mixup": mixmask.MixUp, "cutmix": mixmask.CutMix, "fmix": mixmask.FMix, "gridmask": mixmask.GridMask,
             "resizemix": mixmask.ResizeMix, "saliencymix": mixmask.SaliencyMix, "smoothmix": mixmask.SmoothMix,
             "gridmix": mixmask.GridMix, "cutout": mixmask.Cutout, "classmix": mixmask.ClassMix}
    transform = kinds[method](num_classes=num_classes, seed=seed)
    maps = demo_maps(inputs.shape[0], tuple(inputs.shape[2:]), seed, inputs.device) if method == "classmix" else None
    if path == "transform":
        return lambda: transform(inputs, labels, maps)
    workspace = torch.empty_like(inputs)
    generator = torch.Generator().manual_seed(seed + 1)

    def collate_call() -> Any:
        params = transform.sample(inputs, labels, maps, generator=generator)
        return transform.apply(params, inputs, labels, maps, inplace=True, workspace=workspace)

    return collate_call


def _mixup_pkg_call(method: str, inputs: Tensor, labels: Tensor, num_classes: int) -> Callable[[], Any]:
    import mixup

    mix = getattr(mixup, _MIXUP_PKG[method])(alpha=1.0)
    return lambda: mix(inputs, _one_hot(labels, num_classes, torch.float32))


def _timm_call(mode: str, method: str, inputs: Tensor, labels: Tensor, num_classes: int) -> Callable[[], Any]:
    from timm.data import Mixup

    alphas = {"mixup_alpha": 1.0, "cutmix_alpha": 0.0} if method == "mixup" else \
        {"mixup_alpha": 0.0, "cutmix_alpha": 1.0}
    mix = Mixup(**alphas, mode=mode, label_smoothing=0.0, num_classes=num_classes)
    return lambda: mix(inputs, labels)


def _torchvision_call(method: str, inputs: Tensor, labels: Tensor, num_classes: int) -> Callable[[], Any]:
    from torchvision.transforms import v2

    mix = (v2.MixUp if method == "mixup" else v2.CutMix)(alpha=1.0, num_classes=num_classes)
    return lambda: mix(inputs, labels)


def _kornia_call(method: str, inputs: Tensor, labels: Tensor, num_classes: int) -> Callable[[], Any]:
    from kornia.augmentation import RandomCutMixV2, RandomMixUpV2

    if method == "mixup":
        mix = RandomMixUpV2(data_keys=["input", "class"])
    else:
        mix = RandomCutMixV2(data_keys=["input", "class"], use_correct_lambda=True)

    def call() -> Any:
        mixed, stacked = mix(inputs, labels)
        rows = stacked if stacked.ndim == 2 else stacked[0]  # CutMix: (num_mix, B, 3)
        own, other, weight = rows[:, 0], rows[:, 1], rows[:, 2:3].float()
        # kornia's MixUp lambda is the partner's weight, its CutMix lambda the sample's own weight.
        own_weight = 1.0 - weight if method == "mixup" else weight
        targets = torch.lerp(_one_hot(other, num_classes, torch.float32), _one_hot(own, num_classes, torch.float32),
                             own_weight)
        return mixed, targets

    return call


def _floor_call(library: str, inputs: Tensor, seed: int) -> Callable[[], Any]:
    generator = torch.Generator().manual_seed(seed)
    batch = inputs.shape[0]
    index = torch.randperm(batch, generator=generator).to(inputs.device)
    if library == "floor-copy":
        out = torch.empty_like(inputs)
        return lambda: torch.index_select(inputs, 0, index, out=out)
    partner = inputs.index_select(0, index)
    shape = (batch,) + (1,) * (inputs.ndim - 1)
    weight = torch.rand(shape, generator=generator).to(inputs.device)
    if inputs.dtype.is_floating_point:
        weight = weight.to(inputs.dtype)
        return lambda: torch.lerp(partner, inputs, weight)
    keep = weight >= 0.5
    return lambda: torch.where(keep, inputs, partner)


def make_call(library: str, method: str, path: str, inputs: Tensor, labels: Tensor, num_classes: int,
              seed: int = 0) -> Callable[[], Any]:
    """A no-argument callable doing one call of ``library``'s ``method`` on this batch.

    Args:
        library: one of :data:`LIBRARIES`.
        method: one of :data:`BENCH_METHODS`, or ``"-"`` for a floor.
        path: ``"transform"`` (a new output) or ``"collate"`` (mixmask in place, reused workspace).
        inputs: ``(B, C, *S)`` batch; peers may write into it (their semantics say so).
        labels: ``(B,)`` int64 class ids.
        num_classes: K of the ``(B, K)`` soft targets.
        seed: seed of mixmask's generator and of the floors' draws.

    Returns:
        The callable; its return value is the call's output (kept alive while memory is measured).

    Raises:
        MixMaskError: unknown library, a method it has no equivalent for, or a collate path for a peer.
    """
    if library not in LIBRARIES:
        raise MixMaskError(f"expected a library in {LIBRARIES}, but got {library!r}")
    if not has_equivalent(library, method):
        raise MixMaskError(f"{library} has no equivalent of method {method!r}")
    if path != "transform" and library != "mixmask":
        raise MixMaskError(f"the {path!r} path is timed for mixmask only, but got library {library!r}")
    if library == "mixmask":
        return _mixmask_call(method, path, inputs, labels, num_classes, seed)
    if library in FLOORS:
        return _floor_call(library, inputs, seed)
    if library.startswith("timm"):
        return _timm_call(library.split("-")[1], method, inputs, labels, num_classes)
    if library == "mixup-pkg":
        return _mixup_pkg_call(method, inputs, labels, num_classes)
    if library == "torchvision":
        return _torchvision_call(method, inputs, labels, num_classes)
    return _kornia_call(method, inputs, labels, num_classes)
