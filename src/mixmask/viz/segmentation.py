"""Segmentation pictures: the mixing preview (sources, maps, mixing mask, mixed result) and test predictions.

Both draw maps with :func:`overlay` in the same class colours (the data set's table, else the VOC
colour map), id 0 left clear when it is the background, ignored pixels white
(:data:`mixmask.data.labels.IGNORE_COLOR`), and a legend of the classes shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mixmask.data.labels import IGNORE_COLOR, IGNORE_INDEX, voc_palette
from mixmask.errors import MixMaskError

__all__ = ["overlay", "class_colors", "save_segmentation_preview", "save_predictions"]

_ALPHA = 0.7
_IGNORE_COLOR = IGNORE_COLOR


def overlay(image: Tensor, targets: Tensor, colors: Sequence[Sequence[int]], *, ignore_index: int | None = None,
            background: int | None = 0) -> Tensor:
    """Draw a map over a grey copy of an image: hard ids in class colours, soft targets shaded by probability.

    Hard maps: each labelled pixel gets its class colour at opacity 0.7 (the ``background`` class
    is left clear, ``ignore_index`` pixels are white). Soft targets ``(K, H, W)``: the pixel colour
    is the probability-weighted mean colour of the non-background classes, at opacity 0.7 times
    their total probability; weight missing from a pixel (ignored pixels) shows as white.

    Args:
        image: uint8 ``(3, H, W)`` or ``(1, H, W)``.
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
    if image.shape[0] == 3:
        grey = (image.float() * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
    else:
        grey = image[:1].float()
    out = grey * (1 - alpha) + colour_sum / total.clamp_min(1e-6) * alpha
    return out.round().clamp(0, 255).to(torch.uint8)


def class_colors(num_classes: int, colors: Sequence[Sequence[int]] | None = None) -> list[tuple[int, int, int]]:
    """``K`` display colours: the given table (completed from the VOC colour map when short), else the VOC colour map."""
    base = [tuple(int(c) for c in color) for color in (colors or [])][:num_classes]
    return base + list(voc_palette(num_classes))[len(base):]  # type: ignore[return-value]


def background_id(class_names: Sequence[str] | None) -> int | None:
    """0 when id 0 is the background (named so, or the classes have no names), else None (every id coloured)."""
    if not class_names:
        return 0
    return 0 if class_names[0].strip().lower() in ("background", "0") else None


def _legend(fig: Any, colors: Sequence[Sequence[int]], names: Sequence[str], shown: set[int],
            ignore_index: int | None, background: int | None) -> None:
    """A legend under the figure: the classes shown (not the background, drawn clear), then the ignore colour."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=[c / 255 for c in colors[k]], edgecolor="grey", label=names[k])
               for k in sorted(shown) if k < len(colors) and k != background]
    if ignore_index is not None:
        handles.append(Patch(facecolor=[c / 255 for c in IGNORE_COLOR], edgecolor="grey",
                             label=f"ignore ({ignore_index})"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=7, frameon=False)


def _save_figure(fig: Any, path: str | Path) -> Path:
    import matplotlib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"savefig.dpi": 110}):
        fig.savefig(path, format="png")
    return path


def _ids_shown(maps: Sequence[Tensor], k: int) -> set[int]:
    """Ids (below ``k``) present in hard maps, or carrying weight in soft ``(K, H, W)`` targets."""
    shown: set[int] = set()
    for m in maps:
        if m.dtype.is_floating_point:
            shown |= {int(i) for i in torch.nonzero(m.flatten(1).amax(1) > 0.01).flatten()}
        else:
            shown |= {int(i) for i in m.unique() if 0 <= int(i) < k}
    return shown


def save_segmentation_preview(path: str | Path, *, methods: Sequence[str] = ("mixup", "cutmix", "fmix", "gridmask"),
                              seed: int = 0, size: int = 128, images: Tensor | None = None, maps: Tensor | None = None,
                              colors: Sequence[Sequence[int]] | None = None, class_names: Sequence[str] | None = None,
                              ignore_index: int = IGNORE_INDEX, count: int = 1) -> Path:
    """Save a PNG showing each method mixing images and their segmentation maps.

    One row per method and shown sample: the sample and its partner with their map overlays, the
    mixing mask (white = the sample's own pixels), the mixed image and its mixed map. CutMix/FMix
    maps are hard ids; MixUp's are per-pixel soft targets, drawn with :func:`overlay`'s probability
    shading; GridMask's partner is its fill value and dropped pixels become ``ignore_index`` (white).
    The batch mixed is ``images``/``maps`` (your own data), else :class:`mixmask.data.ShapesDataset`
    images of side ``size``.

    Args:
        path: the PNG to write (folders are created).
        methods: any of the method names (``"mixup"``, ``"cutmix"``, ..., ``"classmix"``).
        seed: seed of the shapes images and of the draws.
        size: side of the shapes images.
        images: uint8 ``(B, C, H, W)`` with ``B >= 2`` (None: shapes).
        maps: int ``(B, H, W)`` ids of ``images``.
        colors: class colours (default: the shapes colours, or the VOC colour map).
        class_names: names, index = id (default: the shapes classes, or the ids).
        ignore_index: id of unlabelled pixels.
        count: samples shown per method (the first ``count`` of the batch).

    Returns:
        The path written.

    Raises:
        MixMaskError: an unknown method, a bad size, seed or count, or images and maps that do not match.
    """
    from matplotlib.figure import Figure

    from mixmask import transforms as T
    from mixmask.data.shapes import ShapesDataset

    kinds = {"mixup": T.MixUp, "cutmix": T.CutMix, "fmix": T.FMix, "gridmask": T.GridMask, "resizemix": T.ResizeMix,
             "saliencymix": T.SaliencyMix, "smoothmix": T.SmoothMix, "gridmix": T.GridMix, "cutout": T.Cutout,
             "classmix": T.ClassMix}
    methods = list(methods)
    unknown = [m for m in methods if m not in kinds]
    if not methods or unknown:
        raise MixMaskError(f"methods must be a non-empty list of {list(kinds)}, but got {methods!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise MixMaskError(f"size must be an int >= 8, but got {size!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise MixMaskError(f"--count must be an int >= 1, but got {count!r}")
    if images is None:
        data = ShapesDataset(max(4, count), size=size, seed=seed)
        batch = [data[i] for i in range(len(data))]
        images = torch.stack([b["image"] for b in batch])
        maps = torch.stack([b["mask"] for b in batch])
        colors, class_names = colors or data.colors, class_names or data.class_names
    if maps is None or images.ndim != 4 or maps.shape != (images.shape[0], *images.shape[2:]) or images.shape[0] < 2:
        raise MixMaskError(f"expected images (B, C, H, W) with B >= 2 and maps (B, H, W), but got "
                           f"{tuple(images.shape)} and {None if maps is None else tuple(maps.shape)}")
    labelled = maps[maps != ignore_index]
    k = max(len(class_names or ()), len(colors or ()), int(labelled.max()) + 1 if labelled.numel() else 1)
    colors = class_colors(k, colors)
    names = list(class_names or ()) + [str(i) for i in range(len(class_names or ()), k)]
    background = background_id(class_names)
    count = min(count, images.shape[0])
    titles = ["image", "its map", "partner", "partner's map", "mixing mask", "mixed image", "mixed map"]
    rows = len(methods) * count
    fig = Figure(figsize=(1.55 * len(titles), 1.65 * rows + 0.7), layout="constrained")
    axes = fig.subplots(rows, len(titles), squeeze=False)
    shown_maps: list[Tensor] = []

    def draw(img: Tensor, ids: Tensor) -> Tensor:
        return overlay(img, ids, colors, ignore_index=ignore_index, background=background)

    for m, name in enumerate(methods):
        transform = kinds[name](num_classes=k, ignore_index=ignore_index, seed=seed)
        out = transform(images, masks=maps)
        for i in range(count):
            row = m * count + i
            j = int(out.index[i])
            erase = bool(out.params.erase[i])
            fill = torch.full_like(images[i], int(round(out.params.fill)))
            partner_map = torch.full_like(maps[i], ignore_index) if erase else maps[j]
            partner = fill if erase else images[j]
            mixing_mask = out.mask[i].float().mul(255).round().to(torch.uint8).expand(3, -1, -1)
            panels = [images[i], draw(images[i], maps[i]), partner, draw(partner, partner_map), mixing_mask,
                      out.inputs[i], draw(out.inputs[i], out.masks[i])]
            shown_maps += [maps[i], partner_map, out.masks[i]]
            for col, panel in enumerate(panels):
                ax = axes[row, col]
                shown = panel.permute(1, 2, 0).numpy()
                ax.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray", interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(titles[col], fontsize=8)
            soft = "soft targets" if out.masks.dtype.is_floating_point else "hard ids"
            axes[row, 0].set_ylabel(f"{name}\nlam={float(out.lam[i]):.2f}\n{soft}", fontsize=8)
    ignored = any(bool((m == ignore_index).any()) for m in shown_maps if not m.dtype.is_floating_point)
    _legend(fig, colors, names, _ids_shown(shown_maps, k), ignore_index if ignored else None, background)
    fig.suptitle("mixing images and segmentation maps (soft maps: colour mixed by probability)", fontsize=9)
    return _save_figure(fig, path)


def save_predictions(path: str | Path, images: Tensor, targets: Tensor, preds: Tensor, *,
                     colors: Sequence[Sequence[int]] | None = None, class_names: Sequence[str] | None = None,
                     ignore_index: int | None = IGNORE_INDEX, title: str = "") -> Path:
    """Rows of image / true map / predicted map, drawn as :func:`overlay` s with a legend.

    Args:
        path: PNG to write.
        images: uint8 ``(N, C, H, W)`` (C = 1 or 3).
        targets: int ``(N, H, W)`` true ids (``ignore_index`` drawn white).
        preds: int ``(N, H, W)`` predicted ids.
        colors: class colours (default: the VOC colour map).
        class_names: names, index = id.
        ignore_index: id of unlabelled pixels.
        title: figure title.

    Returns:
        ``path``.
    """
    from matplotlib.figure import Figure

    k = max(len(class_names or ()), len(colors or ()), int(preds.max()) + 1 if preds.numel() else 1)
    colors = class_colors(k, colors)
    names = list(class_names or ()) + [str(i) for i in range(len(class_names or ()), k)]
    background = background_id(class_names)
    n = images.shape[0]
    fig = Figure(figsize=(6.0, 2.0 * n + 0.8), layout="constrained")
    axes = fig.subplots(n, 3, squeeze=False)
    for i in range(n):
        image = images[i].cpu()
        panels = [image, overlay(image, targets[i].cpu(), colors, ignore_index=ignore_index, background=background),
                  overlay(image, preds[i].cpu(), colors, ignore_index=None, background=background)]
        for col, (panel, name) in enumerate(zip(panels, ("image", "true", "predicted"))):
            shown = panel.permute(1, 2, 0).numpy()
            axes[i, col].imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray", interpolation="nearest")
            axes[i, col].set_axis_off()
            if i == 0:
                axes[i, col].set_title(name, fontsize=9)
    ignored = ignore_index is not None and bool((targets == ignore_index).any())
    _legend(fig, colors, names, _ids_shown([targets.cpu(), preds.cpu()], k), ignore_index if ignored else None,
            background)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save_figure(fig, path)
