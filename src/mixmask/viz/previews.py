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

__all__ = ["PREVIEW_METHODS", "SIGNAL_METHODS", "demo_maps", "draw_preview_params", "save_classification_preview",
           "save_signal_preview"]

#: Every method, in the order of their ids.
PREVIEW_METHODS: tuple[str, ...] = METHODS[1:]
#: The methods a 1-D signal preview draws (the others need images or maps).
SIGNAL_METHODS: tuple[str, ...] = ("mixup", "cutmix", "fmix", "gridmask")


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
        mask, lam = M.gridmask_masks(batch_size, spatial_shape, generator,
                                     rotate=30.0 if len(spatial_shape) == 2 else 0.0)
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


def save_signal_preview(path: str | Path, signals: Tensor, labels: Tensor, *,
                        methods: Sequence[str] = SIGNAL_METHODS, seed: int = 0, alpha: float = 1.0,
                        decay_power: float = 3.0, title: str = "") -> Path:
    """Write a PNG of 1-D mixing on real signals: one row per method, one panel per sample.

    Each panel draws the sample's own signal ``x[i]`` (blue), its partner ``x[j[i]]`` (orange), the
    mixed signal (black), shades where the mask takes the own signal (blue) or the partner (orange),
    and titles the label weights the loss uses, ``y[i]: lam[i] · y[j[i]]: 1 - lam[i]`` (GridMask:
    the own label, kept whole).

    Args:
        path: PNG file to write (folders are created).
        signals: float ``(B, C, L)`` batch, B >= 2 (channel 0 is drawn).
        labels: ``(B,)`` int class ids.
        methods: subset of :data:`SIGNAL_METHODS`.
        seed: seed of the draws (one partner permutation per method).
        alpha: Beta concentration of the drawn weights.
        decay_power: FMix's spectrum decay.
        title: shown above the grid.

    Returns:
        The path written.
    """
    from matplotlib.figure import Figure

    if signals.ndim != 3 or signals.shape[0] < 2 or not signals.dtype.is_floating_point:
        raise MixMaskError(f"expected a float (B >= 2, C, L) batch of signals, but got {signals.dtype} "
                           f"{tuple(signals.shape)}")
    if labels.shape != (signals.shape[0],):
        raise MixMaskError(f"expected ({signals.shape[0]},) labels, but got {tuple(labels.shape)}")
    other = [m for m in methods if m not in SIGNAL_METHODS]
    if other:
        raise MixMaskError(f"a signal preview draws {', '.join(SIGNAL_METHODS)}, but got {', '.join(other)}")
    generator = torch.Generator().manual_seed(seed)
    batch, length = signals.shape[0], signals.shape[-1]
    axis = torch.arange(length)
    fig = Figure(figsize=(2.6 * batch + 1.0, 1.9 * len(methods) + 0.6))
    axes = fig.subplots(len(methods), batch, squeeze=False, sharey=True)
    low, high = float(signals[:, 0].min()), float(signals[:, 0].max())
    for r, method in enumerate(methods):
        params, _ = draw_preview_params(method, batch, (length,), generator, alpha=alpha, decay_power=decay_power)
        mixed = mix_inputs(signals, params)
        for c in range(batch):
            ax = axes[r, c]
            j, lam, mask = int(params.index[c]), float(params.lam[c]), params.mask[c].float()
            if method != "mixup":
                for k in range(length):
                    color = "tab:blue" if mask[k] > 0.5 else ("tab:orange" if method != "gridmask" else "0.6")
                    ax.axvspan(k - 0.5, k + 0.5, color=color, alpha=0.12, linewidth=0)
            ax.plot(axis, signals[c, 0], color="tab:blue", linewidth=0.8, alpha=0.8)
            if method != "gridmask":
                ax.plot(axis, signals[j, 0], color="tab:orange", linewidth=0.8, alpha=0.8)
            ax.plot(axis, mixed[c, 0], color="black", linewidth=1.4)
            own, other = int(labels[c]), int(labels[j])
            if method == "gridmask":
                text = f"{own}: 1.00 (kept)"
            elif own == other:
                text = f"{own}: 1.00 (same class)"
            else:
                text = f"{own}: {lam:.2f} · {other}: {1 - lam:.2f}"
            ax.set_title(text, fontsize=8)
            ax.set_ylim(low - 0.2, high + 0.2)
            ax.set_xticks([0, length - 1])
            ax.tick_params(labelsize=6)
        axes[r, 0].set_ylabel(method, fontsize=9)
    fig.suptitle(title or f"mixmask preview (seed {seed}): own x[i] blue, partner x[j[i]] orange, mixed black; "
                 "shading: where the mask keeps x[i] (blue) or takes x[j[i]] (orange); titles: label weights",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path
