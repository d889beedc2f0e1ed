"""Preview of every method on one batch: grey images, masks, sources and mixed results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional import masks as M
from mixmask.functional.kernels import mix_inputs
from mixmask.functional.params import METHODS, MixParams
from mixmask.functional.saliency import spectral_saliency
from mixmask.functional.sampling import sample_lam, sample_partners
from mixmask.transforms.mix import MixPolicy

__all__ = ["PREVIEW_METHODS", "demo_maps", "draw_preview_params", "save_classification_preview"]

#: Every method, in the order of their ids.
PREVIEW_METHODS: tuple[str, ...] = METHODS[1:]


def _new_method(method: str) -> MixPolicy:
    """The transform a preview row of one of the methods after the first four uses."""
    import mixmask

    return {"resizemix": lambda: mixmask.ResizeMix(), "saliencymix": lambda: mixmask.SaliencyMix(),
            "smoothmix": lambda: mixmask.SmoothMix(kind="either"), "gridmix": lambda: mixmask.GridMix(),
            "cutout": lambda: mixmask.Cutout(size=0.4, num_boxes=2), "classmix": lambda: mixmask.ClassMix()}[method]()


def demo_maps(images: Tensor, classes: int = 4) -> Tensor:
    """Stand-in segmentation maps for photos: ``classes`` equal bands of each image's blurred grey level.

    Args:
        images: ``(B, 3, H, W)`` uint8 (0-255) or float (0-1).
        classes: number of bands (ids ``0 .. classes - 1``).

    Returns:
        int64 ``(B, H, W)``.
    """
    grey = (images.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    grey = grey / 255 if images.dtype == torch.uint8 else grey
    grey = torch.nn.functional.avg_pool2d(grey, 9, stride=1, padding=4, count_include_pad=False)[:, 0]
    return (grey * classes).long().clamp_(0, classes - 1)


def draw_preview_params(method: str, batch_size: int, spatial_shape: tuple[int, ...], generator: torch.Generator,
                        *, alpha: float = 1.0, decay_power: float = 3.0, images: Tensor | None = None,
                        maps: Tensor | None = None) -> tuple[MixParams, Tensor | None]:
    """One draw of ``method`` for a batch, and the picture its mask is made from: FMix's grey images,
    SaliencyMix's saliency of each partner, ClassMix's partner maps (``(B, *S)``; None for the others).

    ``images`` (``(B, C, *S)``; zeros when None) feed SaliencyMix, ``maps`` ClassMix (the images'
    :func:`demo_maps` when None).
    """
    if method not in PREVIEW_METHODS:
        raise MixMaskError(f"method must be one of {list(PREVIEW_METHODS)}, but got {method!r}")
    if method in PREVIEW_METHODS[4:]:
        if images is None:
            images = torch.zeros(batch_size, 3, *spatial_shape)
        if method == "classmix" and maps is None:
            maps = demo_maps(images)
        params = _new_method(method).sample(images, masks=maps if method == "classmix" else None,
                                            generator=generator)
        picture = None
        if method == "saliencymix":
            picture = spectral_saliency(images).index_select(0, params.index)
        elif method == "classmix":
            picture = maps.index_select(0, params.index).float() / max(int(maps.max()), 1)
        return params, picture
    index = sample_partners(batch_size, generator)
    grey = None
    if method == "gridmask":
        mask, lam = M.gridmask_masks(batch_size, spatial_shape, generator, rotate=30.0)
    else:
        drawn = sample_lam(batch_size, alpha, generator)
        if method == "mixup":
            mask, lam = M.mixup_masks(drawn, spatial_shape)
        elif method == "cutmix":
            mask, lam = M.cutmix_masks(drawn, spatial_shape, generator)
        else:
            replay = torch.Generator().set_state(generator.get_state())
            grey = M.fmix_grey_images(batch_size, spatial_shape, decay_power, replay)
            mask, lam = M.fmix_masks(drawn, spatial_shape, generator, decay_power=decay_power)
    ids = torch.full((batch_size,), METHODS.index(method), dtype=torch.long)
    return MixParams(index, lam, mask, ids), grey


#: What the picture row of a method shows.
_PICTURES = {"fmix": "grey image", "saliencymix": "saliency of x[j]", "classmix": "map of x[j] (grey bands)"}


def save_classification_preview(path: str | Path, images: Tensor, *, methods: Sequence[str] = PREVIEW_METHODS,
                                seed: int = 0, alpha: float = 1.0, decay_power: float = 3.0) -> Path:
    """Write a PNG grid: the sources, their partners, then per method its masks and mixed images.

    Args:
        path: PNG file to write (folders are created).
        images: uint8 ``(B, 3, H, W)`` batch, B >= 2; one column per sample.
        methods: subset of :data:`PREVIEW_METHODS` (ClassMix mixes :func:`demo_maps` of the photos).
        seed: seed of the draws.
        alpha: Beta concentration of the drawn weights.
        decay_power: FMix's spectrum decay.

    Returns:
        The path written.
    """
    from matplotlib.figure import Figure

    if images.ndim != 4 or images.shape[0] < 2 or images.dtype != torch.uint8:
        raise MixMaskError(f"expected a uint8 (B >= 2, C, H, W) batch, but got {images.dtype} {tuple(images.shape)}")
    generator = torch.Generator().manual_seed(seed)
    batch, spatial = images.shape[0], tuple(images.shape[2:])
    rows: list[tuple[str, Tensor, list[str], str | None]] = [("source x[i]", images, [f"x[{i}]" for i in range(batch)], None)]
    for method in methods:
        params, picture = draw_preview_params(method, batch, spatial, generator, alpha=alpha,
                                              decay_power=decay_power, images=images)
        if not rows[1:]:
            partners = images.index_select(0, params.index)
            rows.append((f"partner x[j[i]] ({method})", partners, [f"x[{j}]" for j in params.index.tolist()], None))
        if picture is not None:
            low = picture.amin(dim=(1, 2), keepdim=True)
            picture = (picture - low) / (picture.amax(dim=(1, 2), keepdim=True) - low).clamp_min(1e-12)
            rows.append((f"{method}: {_PICTURES[method]}", picture, [""] * batch, "gray"))
        lams = [f"lam={v:.2f}" for v in params.lam.tolist()]
        rows.append((f"{method}: mask M", params.mask.float(), lams, "gray"))
        label = {"gridmask": "fill=0 where M=0", "cutout": "fill=0 where M=0",
                 "resizemix": "M*x + (1-M)*resize(x[j])"}.get(method, "M*x + (1-M)*x[j]")
        partners = ["" if erase else f"with x[{j}]" for j, erase in zip(params.index.tolist(), params.erase.tolist())]
        rows.append((f"{method}: {label}", mix_inputs(images, params), partners, None))
    fig = Figure(figsize=(1.9 * batch + 1.2, 1.9 * len(rows)))
    axes = fig.subplots(len(rows), batch, squeeze=False)
    for r, (name, tensors, titles, cmap) in enumerate(rows):
        for c in range(batch):
            ax = axes[r, c]
            picture = tensors[c]
            if picture.ndim == 3:
                picture = picture.permute(1, 2, 0)
            ax.imshow(picture.numpy(), cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None)
            ax.set_xticks([]), ax.set_yticks([])
            if titles[c]:
                ax.set_title(titles[c], fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(f"mixmask preview (seed {seed}): out = M*x[i] + (1-M)*x[j[i]], lam = mean(M)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path
