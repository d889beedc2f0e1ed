"""A preview of mixing for segmentation: sources, their maps, the mixing mask and the mixed result."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from mixmask.errors import MixMaskError

__all__ = ["overlay", "save_segmentation_preview"]

_ALPHA = 0.7
_IGNORE_COLOR = (255, 255, 255)


def overlay(image: Tensor, targets: Tensor, colors: Sequence[Sequence[int]], *, ignore_index: int | None = None,
            background: int | None = 0) -> Tensor:
    """Draw a map over a grey copy of an image: hard ids in class colours, soft targets shaded by probability.

    Hard maps: each labelled pixel gets its class colour at opacity 0.7 (the ``background`` class
    is left clear, ``ignore_index`` pixels are white). Soft targets ``(K, H, W)``: the pixel colour
    is the probability-weighted mean colour of the non-background classes, at opacity 0.7 times
    their total probability; weight missing from a pixel (ignored pixels) shows as white.

    Args:
        image: uint8 ``(3, H, W)``.
        targets: int ``(H, W)`` ids, or float ``(K, H, W)`` per-pixel probabilities.
        colors: ``K`` ``(r, g, b)`` class colours.
        ignore_index: id of unlabelled pixels in hard maps.
        background: class drawn clear (None: every class is coloured).

    Returns:
        uint8 ``(3, H, W)``.
    """
    palette = torch.tensor(colors, dtype=torch.float32)
    k = palette.shape[0]
    if targets.dtype.is_floating_point:
        probs = targets.float()
        missing = (1 - probs.sum(0)).clamp(0, 1)
    else:
        ignored = targets == ignore_index if ignore_index is not None else torch.zeros_like(targets, dtype=torch.bool)
        if bool(((targets < 0) | (targets >= k))[~ignored].any()):
            raise MixMaskError(f"expected ids in [0, {k}) or ignore_index={ignore_index}, but got values from "
                               f"{int(targets.min())} to {int(targets.max())}")
        probs = torch.nn.functional.one_hot(torch.where(ignored, 0, targets).long(), k).movedim(-1, 0).float()
        probs = probs * ~ignored
        missing = ignored.float()
    if background is not None:
        probs = probs.clone()
        probs[background] = 0
    white = torch.tensor(_IGNORE_COLOR, dtype=torch.float32).view(3, 1, 1)
    colour_sum = torch.einsum("khw,kc->chw", probs, palette) + white * missing
    total = probs.sum(0) + missing
    alpha = _ALPHA * total.clamp(0, 1)
    grey = (image.float() * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
    out = grey * (1 - alpha) + colour_sum / total.clamp_min(1e-6) * alpha
    return out.round().clamp(0, 255).to(torch.uint8)


def save_segmentation_preview(path: str | Path, *, methods: Sequence[str] = ("mixup", "cutmix", "fmix", "gridmask"),
                              seed: int = 0, size: int = 128) -> Path:
    """Save a PNG showing each method mixing images of shapes and their segmentation maps.

    One row per method, one batch of :class:`mixmask.data.ShapesDataset` images mixed with the
    method (``ignore_index=255``): the sample and its partner with their map overlays, the mixing
    mask (white = the sample's own pixels), the mixed image and its mixed map. CutMix/FMix maps are
    hard ids; MixUp's are per-pixel soft targets, drawn with :func:`overlay`'s probability shading;
    GridMask's partner is its fill value and dropped pixels become ``ignore_index`` (white).

    Args:
        path: the PNG to write (folders are created).
        methods: any of the method names (``"mixup"``, ``"cutmix"``, ..., ``"classmix"``).
        seed: seed of the images and of the draws.
        size: side of the images.

    Returns:
        The path written.

    Raises:
        MixMaskError: an unknown method, or a bad size or seed.
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from mixmask.data.shapes import IGNORE_INDEX, ShapesDataset
    from mixmask import transforms as T

    kinds = {"mixup": T.MixUp, "cutmix": T.CutMix, "fmix": T.FMix, "gridmask": T.GridMask, "resizemix": T.ResizeMix,
             "saliencymix": T.SaliencyMix, "smoothmix": T.SmoothMix, "gridmix": T.GridMix, "cutout": T.Cutout,
             "classmix": T.ClassMix}
    methods = list(methods)
    unknown = [m for m in methods if m not in kinds]
    if not methods or unknown:
        raise MixMaskError(f"methods must be a non-empty list of {list(kinds)}, but got {methods!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise MixMaskError(f"size must be an int >= 8, but got {size!r}")
    data = ShapesDataset(4, size=size, seed=seed)
    batch = [data[i] for i in range(len(data))]
    images = torch.stack([b["image"] for b in batch])
    maps = torch.stack([b["mask"] for b in batch])
    colors = data.colors
    titles = ["image", "its map", "partner", "partner's map", "mixing mask", "mixed image", "mixed map"]
    fig = Figure(figsize=(1.55 * len(titles), 1.65 * len(methods) + 0.5), layout="constrained")
    axes = fig.subplots(len(methods), len(titles), squeeze=False)
    for row, name in enumerate(methods):
        transform = kinds[name](num_classes=data.num_classes, ignore_index=IGNORE_INDEX, seed=seed)
        out = transform(images, masks=maps)
        j = int(out.index[0])
        erase = bool(out.params.erase[0])
        fill = torch.full_like(images[0], int(round(out.params.fill)))
        partner_map = torch.full_like(maps[0], IGNORE_INDEX) if erase else maps[j]
        mixing_mask = out.mask[0].float().mul(255).round().to(torch.uint8).expand(3, -1, -1)
        panels = [images[0], overlay(images[0], maps[0], colors),
                  fill if erase else images[j], overlay(fill if erase else images[j], partner_map, colors,
                                                        ignore_index=IGNORE_INDEX),
                  mixing_mask, out.inputs[0], overlay(out.inputs[0], out.masks[0], colors, ignore_index=IGNORE_INDEX)]
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(titles[col], fontsize=8)
        soft = "soft targets" if out.masks.dtype.is_floating_point else "hard ids"
        axes[row, 0].set_ylabel(f"{name}\nlam={float(out.lam[0]):.2f}\n{soft}", fontsize=8)
    handles = [Patch(color=[c / 255 for c in colors[k]], label=n) for k, n in enumerate(data.class_names) if k]
    handles.append(Patch(facecolor="white", edgecolor="grey", label=f"ignore ({IGNORE_INDEX})"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    fig.suptitle("mixing images and segmentation maps (soft maps: colour mixed by probability)", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"savefig.dpi": 110}):
        fig.savefig(path, format="png")
    return path
