"""Users' own image folders: images with segmentation maps, and class-per-sub-folder images.

Everything here only reads the user's files. Pillow is imported when a file is read; torchvision
(for ``tv_tensors``) only when a transform is given and it is installed.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mixmask.data.labels import IGNORE_INDEX, ClassTable
from mixmask.data.layouts import IMAGE_EXTENSIONS, LAYOUTS
from mixmask.errors import MixMaskError

__all__ = ["IMAGE_EXTENSIONS", "LAYOUTS", "ColorTable", "ImageMaskFolder", "ClassFolder", "FolderReport",
           "check_folder", "count_ids", "palette_colors", "read_image", "read_mask"]
_ID_MODES = ("1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N")
_COLOR_MODES = ("RGB", "RGBA", "P")

#: A colour table: ``{(r, g, b): id}``, or a sequence of ``(r, g, b)`` whose position is the id.
ColorTable = Mapping[Sequence[int], int] | Sequence[Sequence[int]]


def _check_colors(colors: ColorTable | None) -> dict[tuple[int, int, int], int] | None:
    """Validate a colour table and return it as ``{(r, g, b): id}``."""
    if colors is None:
        return None
    items = list(colors.items()) if isinstance(colors, Mapping) else list(enumerate(colors))
    if isinstance(colors, Mapping):
        items = [(ident, color) for color, ident in items]
    table: dict[tuple[int, int, int], int] = {}
    for ident, color in items:
        ok_color = (isinstance(color, Sequence) and not isinstance(color, str) and len(color) == 3
                    and all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in color))
        ok_id = isinstance(ident, (int, np.integer)) and not isinstance(ident, bool) and ident >= 0
        if not (ok_color and ok_id):
            raise MixMaskError("colors must map (r, g, b) triples of ints in [0, 255] to ids >= 0 (a dict, or a "
                               f"list whose positions are the ids), but got the entry {color!r} -> {ident!r}")
        key = tuple(int(c) for c in color)
        if key in table and table[key] != int(ident):
            raise MixMaskError(f"colors gives the colour {key} two ids, {table[key]} and {int(ident)}")
        table[key] = int(ident)
    if not table:
        raise MixMaskError("colors must hold at least one colour, but got an empty table")
    return table


@contextmanager
def _open(path: str | Path) -> Iterator[Any]:
    """``PIL.Image.open`` that refuses images above ``PIL.Image.MAX_IMAGE_PIXELS`` (decompression bombs) as errors."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            yield im


#: What reading a file may raise besides a MixMaskError: each is reported with :func:`_cause`.
def _read_errors() -> tuple[type[BaseException], ...]:
    from PIL import Image, UnidentifiedImageError

    return OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning


def _cause(path: str | Path, err: BaseException) -> str:
    """Why ``path`` could not be read, in words: a broken link, a decompression bomb, a truncated file..."""
    from PIL import Image

    path = Path(path)
    if path.is_symlink() and not path.exists():
        return f"a broken symbolic link to {os.readlink(path)!r}"
    if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        found = re.search(r"\((\d+) pixels\)", str(err))
        pixels = f"{int(found.group(1))} pixels" if found else "too many pixels"
        return (f"{pixels}, above the limit of {Image.MAX_IMAGE_PIXELS} (PIL.Image.MAX_IMAGE_PIXELS): refused as a "
                "possible decompression bomb")
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return f"{err.__class__.__name__}: {err}"


def read_image(path: str | Path, mode: str | None = "RGB") -> Tensor:
    """Read an image file as a uint8 ``(C, H, W)`` tensor.

    Args:
        path: the file.
        mode: Pillow mode to convert to (``"RGB"``, ``"L"``...); None keeps the file's own.

    Returns:
        uint8 ``(C, H, W)``.

    Raises:
        MixMaskError: naming the file when it cannot be read.
    """
    try:
        with _open(path) as im:
            im = im.convert(mode) if mode is not None and im.mode != mode else im
            array = np.array(im)
    except _read_errors() as err:
        raise MixMaskError(f"expected a readable image, but could not read {str(path)!r}: "
                           f"{_cause(path, err)}") from None
    if array.dtype != np.uint8:
        raise MixMaskError(f"expected an 8-bit image, but {str(path)!r} has {array.dtype} pixels; pass mode='RGB' "
                           "or 'L' to convert it")
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _map_colors(rgb: np.ndarray, table: dict[tuple[int, int, int], int], path: str | Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 colours to int64 ids through ``table``; raise naming unknown colours."""
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    keys = np.array(sorted((r << 16) | (g << 8) | b for r, g, b in table), dtype=np.int64)
    ids = np.array([table[((k >> 16) & 255, (k >> 8) & 255, k & 255)] for k in keys], dtype=np.int64)
    pos = np.clip(np.searchsorted(keys, codes), 0, len(keys) - 1)
    known = keys[pos] == codes
    if not known.all():
        unknown, counts = np.unique(codes[~known], return_counts=True)
        shown = ", ".join(f"{((int(c) >> 16) & 255, (int(c) >> 8) & 255, int(c) & 255)} x{int(n)}"
                          for c, n in zip(unknown[:8], counts[:8]))
        more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
        raise MixMaskError(f"expected mask colours from the colour table, but {str(path)!r} has "
                           f"{len(unknown)} unknown colour(s) (rgb x pixels): {shown}{more}")
    return ids[pos]


def read_mask(path: str | Path, colors: ColorTable | None = None) -> Tensor:
    """Read a segmentation map as int64 ``(H, W)`` ids.

    Single-channel PNGs (1, 8 or 16 bit) hold the ids themselves. Palette PNGs hold ids as palette
    indices, or, when ``colors`` is given, colours looked up in it. RGB(A) PNGs need ``colors``.

    Args:
        path: the PNG file.
        colors: colour table ``{(r, g, b): id}`` or a list of ``(r, g, b)`` indexed by id.

    Returns:
        int64 ``(H, W)``.

    Raises:
        MixMaskError: naming the file when it cannot be read, has an unsupported mode, or holds
            colours missing from the table.
    """
    table = _check_colors(colors)
    try:
        with _open(path) as im:
            mode = im.mode
            if mode in _ID_MODES or (mode == "P" and table is None):
                return torch.from_numpy(np.array(im).astype(np.int64))
            if mode not in _COLOR_MODES:
                raise MixMaskError(f"expected a mask PNG of mode {list(_ID_MODES + _COLOR_MODES)}, but {str(path)!r} "
                                   f"has mode {mode!r}")
            if table is None:
                raise MixMaskError(f"{str(path)!r} is a colour-coded {mode} mask: pass a colour table (--colors FILE, "
                                   "CSV name,r,g,b or JSON; colors= in Python) to map its colours to ids")
            rgb = np.array(im.convert("RGB"))
    except MixMaskError:
        raise
    except _read_errors() as err:
        raise MixMaskError(f"expected a readable mask PNG, but could not read {str(path)!r}: "
                           f"{_cause(path, err)}") from None
    return torch.from_numpy(_map_colors(rgb, table, path))


def check_mask_dtype(dtype: torch.dtype) -> torch.dtype:
    """Return ``dtype`` if it is one of the integer dtypes a map may have, else raise."""
    allowed = (torch.int64, torch.int32, torch.int16, torch.uint8)
    if dtype not in allowed:
        raise MixMaskError(f"mask_dtype must be one of {[str(d) for d in allowed]}, but got {dtype!r}")
    return dtype


def _header(path: Path) -> tuple[tuple[int, int], str]:
    """``((width, height), mode)`` of an image file, reading its header only."""
    with _open(path) as im:
        return im.size, im.mode


def _header_problem(path: Path) -> str | None:
    """None when the header of ``path`` reads (within the pixel limit), else the cause."""
    try:
        _header(path)
    except _read_errors() as err:
        return _cause(path, err)
    return None


def _join(paths: Sequence[Path | str], root: Path) -> str:
    return ", ".join(repr(str(Path(p).relative_to(root)) if Path(p).is_relative_to(root) else str(p)) for p in paths)


def _to_tv(sample: dict[str, Tensor]) -> dict[str, Tensor]:
    """Wrap ``image``/``mask`` as torchvision ``tv_tensors`` when torchvision is installed."""
    try:
        from torchvision import tv_tensors
    except ImportError:
        return sample
    return {"image": tv_tensors.Image(sample["image"]), "mask": tv_tensors.Mask(sample["mask"])}


class ImageMaskFolder(torch.utils.data.Dataset):
    """Images and their segmentation maps from a folder, in any of the layouts of :data:`LAYOUTS`.

    ``layout="auto"`` finds it from the folder: ``cityscapes`` (``leftImg8bit/`` + ``gtFine/``
    labelIds, mapped to the 19 train ids), ``voc`` (``JPEGImages/`` + ``SegmentationClass/``
    palette PNGs, ``ImageSets/Segmentation/{train,val}.txt``), ``ade20k`` (``images/`` +
    ``annotations/``, reduce-zero-label), ``split`` (``images/xyz.jpg`` + ``masks/xyz.png``),
    ``camvid`` (``<name>_L.png`` colour masks, ``class_dict.csv``) or ``flat`` (``xyz.jpg`` next
    to ``xyz_mask.png``). docs/segmentation.md shows each tree. The folder is only read.

    Building the data set pairs the files and reads every header; all the problems found (images
    without masks, masks without images, split-list names without files, size mismatches,
    unreadable files with their cause: broken symbolic links, images above
    ``PIL.Image.MAX_IMAGE_PIXELS``, ..., masks coded otherwise than the layout's) are reported in
    one :class:`MixMaskError` naming every file. ``verify=True`` also decodes every pair in the same
    pass, to find truncated files, unknown colours and values too (:meth:`verify` and
    :func:`check_folder` do it later).

    Args:
        root: the folder (for VOC also ``VOCdevkit/``, for ADE20K its parent).
        colors: colour table of RGB masks: ``{(r, g, b): id}``, a list of ``(r, g, b)`` indexed by id,
            or a file (CSV ``name,r,g,b``, JSON; see :func:`mixmask.data.labels.read_colors`).
            Default: the one the data set ships (CamVid ``class_dict.csv``).
        transform: called on ``{"image", "mask"}`` (as ``tv_tensors.Image``/``Mask`` when
            torchvision is installed), e.g. :func:`mixmask.data.joint_transforms`.
        layout: ``"auto"`` or one of :data:`LAYOUTS`.
        split: only this split (``"train"``, ``"val"``...; :attr:`splits` lists them); None: all.
        classes: class names, index = id (default: the data set's or the colour table's).
        ignore_index: id of unlabelled pixels; the data sets' void values become it (VOC 255,
            Cityscapes' non-train ids, ADE20K's 0).
        image_mode: Pillow mode images are converted to (None keeps each file's own).
        mask_dtype: integer dtype of the maps; ``torch.uint8`` (ids and ``ignore_index`` below
            256) holds maps in 8x less memory than int64, cheaper to collate and mix.
        verify: decode every pair while building (one error for every problem of the folder).

    Attributes:
        layout, root, samples (``(image, mask)`` paths), splits (split → pair count),
        classes (names or None), palette (display colours or None), colors (the colour table or
        None), rule (how file values become ids), num_classes (or None when only ids are known).

    Returns (items):
        Without a transform, ``{"image": uint8 (C, H, W), "mask": int64 (H, W)}`` (or
        ``mask_dtype``); with one, what it returns.

    Raises:
        MixMaskError: for a missing folder, no pairs, or the problems above.

    Example:
        >>> data = ImageMaskFolder("VOCdevkit/", split="train", transform=joint_transforms(256, seed=0))
        >>> loader = DataLoader(data, batch_size=16, num_workers=2,
        ...                     collate_fn=MixCollate(CutMix(ignore_index=255), targets="masks", seed=0))
    """

    def __init__(self, root: str | Path, colors: ColorTable | str | Path | None = None,
                 transform: Callable[[dict[str, Tensor]], Any] | None = None, *, layout: str = "auto",
                 split: str | None = None, classes: Sequence[str] | None = None, ignore_index: int = IGNORE_INDEX,
                 image_mode: str | None = "RGB", mask_dtype: torch.dtype = torch.int64, verify: bool = False) -> None:
        problems = self._setup(root, colors, transform, layout, split, classes, ignore_index, image_mode, mask_dtype)
        if verify:  # pairs with a header problem are not decoded again
            failures = count_ids(self)[2]
            if failures:
                problems.append(f"{len(failures)} pair(s) failed to decode: " + "; ".join(failures))
        if problems:
            raise MixMaskError(f"in {str(self.root)!r} ({self.layout} layout): " + "; ".join(problems))

    def _setup(self, root, colors, transform, layout, split, classes, ignore_index, image_mode, mask_dtype) -> list[str]:
        """Find the pairs and read the headers; return the problems instead of raising them."""
        from mixmask.data.layouts import find_pairs
        from mixmask.data.labels import read_colors, table_from_colors

        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or ignore_index < 0:
            raise MixMaskError(f"--ignore-index must be an int >= 0, but got {ignore_index!r}")
        self.transform, self.image_mode, self.ignore_index = transform, image_mode, ignore_index
        self.mask_dtype = check_mask_dtype(mask_dtype)
        found = find_pairs(root, layout)
        self.layout, self.root, self.title = found.layout, found.root, found.title
        names: list[str | None] | None = None
        if isinstance(colors, (str, os.PathLike)):
            lookup, names = read_colors(colors)
        elif colors is not None:
            lookup = _check_colors(colors)
        elif found.colors_file is not None:
            lookup, names = read_colors(found.colors_file)
        else:
            lookup = None
        table = table_from_colors(lookup, names, ignore_index) if lookup is not None else (found.table or ClassTable())
        if classes is not None:
            classes = tuple(str(c) for c in classes)
            if table.names is not None and len(classes) != len(table.names):
                raise MixMaskError(f"--class-names gives {len(classes)} names, but the {self.layout} classes "
                                   f"({'the colour table' if lookup else 'the data set'}) number {len(table.names)}")
            table = replace(table, names=classes)
        if table.remap is not None and lookup is None and table.num_classes > ignore_index:
            raise MixMaskError(f"--ignore-index {ignore_index} is one of the {table.num_classes} class ids; "
                               f"choose one >= {table.num_classes} (255 is usual)")
        self.table, self.rule, self.colors = table, table.rule, lookup
        self.classes, self.palette = table.names, table.colors
        self.remap = table.remap_array(ignore_index) if lookup is None else None
        self.splits = {name: len(pairs) for name, pairs in found.splits.items()}
        self.train_split, self.test_split = found.train_split, found.test_split
        self.masks_coded = "any" if lookup is not None and found.masks == "ids" else found.masks
        if split is not None and split not in found.splits:
            raise MixMaskError(f"split {split!r} not found in {str(self.root)!r} ({self.layout} layout); "
                               f"it has: {', '.join(found.splits) or 'none'}")
        chosen = [found.splits[split]] if split is not None else list(found.splits.values())
        seen: set[tuple[Path, Path]] = set()
        self.samples = [p for pairs in chosen for p in pairs if not (p in seen or seen.add(p))]
        self.split = split
        header_problems, self._bad = self._check_headers()
        problems = found.problems + header_problems
        if self.palette is None and lookup is None and self.samples:
            self.palette = palette_colors(self.samples[0][1])
        if found.masks == "colors" and lookup is None:
            problems.append(f"{found.title}: masks are RGB colours, but no colour table was found: expected "
                            f"class_dict.csv (name,r,g,b) in {str(self.root)!r}, or --colors FILE (colors= in Python)")
        if not self.samples and not problems:
            problems.append(f"expected image/mask pairs ({found.title}), but found none")
        return problems

    @property
    def num_classes(self) -> int | None:
        """K from the class names (data set, colour table or ``classes``), None when only the ids are known."""
        return self.table.num_classes

    def _check_headers(self) -> tuple[list[str], set[Path]]:
        """Problems found in the headers of the paired files, and the files that have one."""
        unreadable, mismatched, modes, coded = [], [], [], []
        bad: set[Path] = set()
        for image, mask in self.samples:
            sizes = []
            for path in (image, mask):
                try:
                    size, mode = _header(path)
                except _read_errors() as err:
                    unreadable.append(f"{_join([path], self.root)} ({_cause(path, err)})")
                    bad.add(path)
                    continue
                sizes.append(size)
                if path is mask and mode not in _ID_MODES + _COLOR_MODES:
                    modes.append(f"{_join([path], self.root)} (mode {mode!r})")
                    bad.add(path)
                elif path is mask and _wrong_coding(mode, self.masks_coded, self.colors is not None):
                    coded.append((_join([path], self.root), mode))
                    bad.add(path)
            if len(sizes) == 2 and sizes[0] != sizes[1]:
                mismatched.append(f"{_join([image], self.root)} is {sizes[0][0]}x{sizes[0][1]} but "
                                  f"{_join([mask], self.root)} is {sizes[1][0]}x{sizes[1][1]}")
                bad.update((image, mask))
        problems = []
        if unreadable:
            problems.append(f"unreadable file(s): {', '.join(unreadable)}")
        if mismatched:
            problems.append(f"image and mask sizes differ (width x height): {'; '.join(mismatched)}")
        if modes:
            problems.append(f"mask(s) of an unsupported mode (expected one of {list(_ID_MODES + _COLOR_MODES)}): "
                            f"{', '.join(modes)}")
        if coded:
            problems.append(_coding_problem(coded, self.masks_coded, self.title))
        return problems, bad

    def verify(self) -> None:
        """Decode every image and map; raise one error naming every file that fails (e.g. unknown colours).

        Raises:
            MixMaskError: listing each failing file with its reason.
        """
        failures = count_ids(self)[2]
        if failures:
            raise MixMaskError(f"{len(failures)} of {len(self)} pairs in {str(self.root)!r} failed: "
                               + "; ".join(failures))

    def read_ids(self, index: int) -> Tensor:
        """The map of pair ``index`` as int64 ids (colours looked up, the data set's rule applied), unchecked size.

        Raises:
            MixMaskError: naming the file: unreadable, unknown colours or values, ids beyond the classes.
        """
        mask_path = self.samples[index][1]
        mask = read_mask(mask_path, self.colors)
        if self.remap is not None:
            values = mask.numpy()
            bad = (values >= len(self.remap)) | (values < 0)
            looked = np.where(bad, -1, self.remap[np.where(bad, 0, values)])
            if (looked < 0).any():
                unknown, counts = np.unique(values[looked < 0], return_counts=True)
                shown = ", ".join(f"{int(v)} x{int(n)}" for v, n in zip(unknown[:8], counts[:8]))
                raise MixMaskError(f"expected mask values of {self.layout} ({self.rule}), but {str(mask_path)!r} "
                                   f"has {len(unknown)} other value(s) (value x pixels): {shown}"
                                   f"{f' and {len(unknown) - 8} more' if len(unknown) > 8 else ''}")
            mask = torch.from_numpy(looked)
        k = self.num_classes
        if k is not None and mask.numel():
            outside = (mask >= k) & (mask != self.ignore_index)
            if bool(outside.any()):
                values = sorted(int(v) for v in mask[outside].unique()[:8])
                raise MixMaskError(f"expected ids in [0, {k}) or --ignore-index {self.ignore_index}, but "
                                   f"{str(mask_path)!r} has id(s) {values}")
        return mask

    def _load(self, index: int) -> dict[str, Tensor]:
        image_path, mask_path = self.samples[index]
        image = read_image(image_path, self.image_mode)
        mask = self.read_ids(index)
        if tuple(image.shape[1:]) != tuple(mask.shape):
            raise MixMaskError(f"image {str(image_path)!r} is {tuple(image.shape[1:])} (H, W) but its mask "
                               f"{str(mask_path)!r} is {tuple(mask.shape)}")
        if self.mask_dtype != torch.int64 and mask.numel():
            info = torch.iinfo(self.mask_dtype)
            low, high = int(mask.min()), int(mask.max())
            if low < info.min or high > info.max:
                raise MixMaskError(f"mask_dtype={self.mask_dtype} holds ids in [{info.min}, {info.max}], but "
                                   f"{str(mask_path)!r} has ids from {low} to {high}")
            mask = mask.to(self.mask_dtype)
        return {"image": image, "mask": mask}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Any:
        sample = self._load(index)
        return sample if self.transform is None else self.transform(_to_tv(sample))

    def __repr__(self) -> str:
        return (f"ImageMaskFolder({str(self.root)!r}, {len(self)} pairs, layout={self.layout!r}"
                f"{f', split={self.split!r}' if self.split else ''}"
                f"{', colors=' + str(len(self.colors)) if self.colors else ''}, transform={self.transform!r})")


@dataclass
class FolderReport:
    """What :func:`check_folder` found: the layout, the pairs per split, the classes present, every problem.

    Attributes:
        folder: the data set (built without raising; its pairs are the readable ones).
        pixels: int64 ``(K,)`` labelled pixels per id over every decoded map (K: the classes, or the
            largest id found + 1).
        ignored: pixels with ``ignore_index``.
        problems: every problem, structural and from decoding, each naming its files.
    """

    folder: ImageMaskFolder
    pixels: Tensor
    ignored: int
    problems: list[str]

    def lines(self) -> list[str]:
        """The report as text lines (what ``mixmask data check`` prints)."""
        f = self.folder
        labelled = int(self.pixels.sum())
        names = f.classes or tuple(str(i) for i in range(len(self.pixels)))
        out = [f"layout: {f.layout}: {f.title}, in {str(f.root)}",
               "splits: " + ", ".join(f"{name} {count} pairs" for name, count in f.splits.items()),
               f"ids: {f.rule}; ignore index {f.ignore_index}"]
        present = [(i, int(n)) for i, n in enumerate(self.pixels.tolist()) if n]
        total = labelled + self.ignored
        out.append(f"classes present: {len(present)} of {len(names)} ({labelled} labelled pixels; share of all pixels)")
        width = max((len(names[i]) for i, _ in present if i < len(names)), default=0)
        out += [f"  {i:>3} {names[i] if i < len(names) else '?':<{width}} {100 * n / max(total, 1):6.2f} %"
                for i, n in present]
        absent = [names[i] for i in range(len(names)) if i >= len(self.pixels) or not self.pixels[i]]
        if absent:
            out.append(f"classes absent: {', '.join(absent[:20])}{f' and {len(absent) - 20} more' if len(absent) > 20 else ''}")
        out.append(f"ignored pixels: {100 * self.ignored / max(total, 1):.2f} % (id {f.ignore_index})")
        out.append(f"problems: {len(self.problems) or 'none'}")
        return out


def count_ids(folder: ImageMaskFolder, *, images: bool = True) -> tuple[Tensor, int, list[str]]:
    """Decode every map of ``folder`` (and image, with ``images``) once and count the pixels of each id.

    Returns:
        ``(counts, ignored, failures)``: int64 ``(K,)`` labelled pixels per id (K: the classes, or
        the largest id found + 1), the pixels with ``ignore_index``, and one message per pair that
        failed (naming its file).
    """
    counts = torch.zeros(folder.num_classes or 0, dtype=torch.int64)
    ignored, failures = 0, []
    skip = getattr(folder, "_bad", set())
    for index, (image, mask) in enumerate(folder.samples):
        if image in skip or mask in skip:  # already reported from its header
            continue
        try:
            ids = folder._load(index)["mask"] if images else folder.read_ids(index)
        except MixMaskError as err:
            failures.append(str(err))
            continue
        ignore = ids == folder.ignore_index
        ignored += int(ignore.sum())
        kept = ids[~ignore]
        if kept.numel() and int(kept.min()) < 0:
            failures.append(f"{str(folder.samples[index][1])!r} has negative ids")
            continue
        found = torch.bincount(kept, minlength=len(counts))
        if len(found) > len(counts):
            counts = torch.cat([counts, counts.new_zeros(len(found) - len(counts))])
        counts[:len(found)] += found
    return counts, ignored, failures


def check_folder(root: str | Path, colors: ColorTable | str | Path | None = None, *, layout: str = "auto",
                 split: str | None = None, classes: Sequence[str] | None = None, ignore_index: int = IGNORE_INDEX,
                 num_classes: int | None = None, images: bool = True) -> FolderReport:
    """Pair, read and decode a whole folder and count its classes; every problem is collected, none raised.

    Args:
        root, colors, layout, split, classes, ignore_index: as for :class:`ImageMaskFolder`.
        num_classes: K; ids from K up (other than ``ignore_index``) are problems. Default: the
            classes' count when known.
        images: decode the images too (else headers only).

    Returns:
        A :class:`FolderReport`.

    Raises:
        MixMaskError: only for what stops the search itself (no folder, an unknown layout, bad options).
    """
    folder = ImageMaskFolder.__new__(ImageMaskFolder)
    problems = folder._setup(root, colors, None, layout, split, classes, ignore_index, "RGB", torch.int64)
    if num_classes is not None:
        if folder.num_classes is not None and num_classes != folder.num_classes:
            raise MixMaskError(f"--num-classes {num_classes} does not match the {folder.num_classes} classes of "
                               f"{'the colour table' if folder.colors else 'the class names or the data set'}")
        folder.table = replace(folder.table, names=folder.classes or tuple(str(i) for i in range(num_classes)))
        folder.classes = folder.table.names
    counts, ignored, failures = count_ids(folder, images=images)
    if failures:
        problems.append(f"{len(failures)} of {len(folder)} pairs failed to decode: " + "; ".join(failures))
    return FolderReport(folder, counts, ignored, problems)


def palette_colors(path: Path) -> tuple[tuple[int, int, int], ...] | None:
    """The palette of a palette (P) PNG, as display colours of its indices; None for other files."""
    try:
        with _open(path) as im:
            if im.mode != "P" or im.palette is None:
                return None
            flat = im.getpalette() or []
    except _read_errors():
        return None
    return tuple(tuple(flat[i:i + 3]) for i in range(0, len(flat) - 2, 3))  # type: ignore[misc]


_MODE_WORDS = {"P": "palette (P)", "L": "8-bit grey (L)", "1": "1-bit (1)", "RGB": "RGB colour", "RGBA": "RGBA colour"}


def _wrong_coding(mode: str, coded: str, has_table: bool) -> bool:
    """Whether a mask of ``mode`` does not fit a layout whose masks are ``coded`` (ids / colors / any)."""
    if coded == "colors":
        return mode not in ("RGB", "RGBA")
    return mode in ("RGB", "RGBA") and not has_table


def _coding_problem(found: list[tuple[str, str]], coded: str, title: str) -> str:
    """One message for all masks coded otherwise than the layout's masks, naming the modes found."""
    modes = sorted({_MODE_WORDS.get(m, m) for _, m in found})
    listed = ", ".join(f"{name} ({_MODE_WORDS.get(m, m)})" for name, m in found)
    if coded == "colors":
        return (f"{title}: masks are RGB colours mapped to ids through the colour table, but {len(found)} mask(s) are "
                f"{' / '.join(modes)} PNGs, whose values would be ids: {listed}; use --layout flat or split "
                "for id maps")
    if coded == "ids":
        return (f"{title}: masks hold ids (palette index or 8-bit value), but {len(found)} mask(s) are "
                f"{' / '.join(modes)} PNGs: {listed}; pass a colour table (--colors FILE; colors= in Python) "
                "to map their colours to ids")
    return (f"colour-coded mask(s) but no colour table to map them to ids: {listed}; pass --colors FILE "
            "(CSV name,r,g,b or JSON; colors= in Python)")


class ClassFolder(torch.utils.data.Dataset):
    """Classification images, one sub-folder per class (``root/<class>/**/<image>``).

    Classes are the sub-folder names in sorted order; their images are found recursively.

    Args:
        root: the folder.
        transform: called on each uint8 ``(C, H, W)`` image tensor.
        image_mode: Pillow mode images are converted to (None keeps each file's own).
        verify: decode every image while building (else only headers are read), so that truncated
            files are found before use.

    Attributes:
        classes: class names, index = class id.
        class_to_idx: name → id.
        samples: ``(path, class id)`` pairs.
        targets: class id of each sample.

    Returns (items):
        ``(image, class id)``: uint8 ``(C, H, W)`` (or the transform's output) and an int.

    Raises:
        MixMaskError: a missing folder, no class sub-folders, or, all in one error: class folders
            without images, files whose header cannot be read (each with its cause: broken link,
            decompression bomb, ...) and with ``verify``, files that fail to decode; at load, the
            file that cannot be read.
    """

    def __init__(self, root: str | Path, transform: Callable[[Tensor], Any] | None = None, *,
                 image_mode: str | None = "RGB", verify: bool = False) -> None:
        self.root = Path(root).expanduser()
        self.transform = transform
        self.image_mode = image_mode
        if not self.root.is_dir():
            raise MixMaskError(f"expected a folder with one sub-folder of images per class, but "
                               f"{str(self.root)!r} is not a folder")
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not self.classes:
            raise MixMaskError(f"expected one sub-folder per class in {str(self.root)!r}, but found no sub-folders")
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.samples: list[tuple[Path, int]] = []
        empty = []
        for name in self.classes:
            found = []
            for folder, dirs, files in os.walk(self.root / name, followlinks=True):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [Path(folder) / f for f in sorted(files)
                          if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
            if not found:
                empty.append(name)
            self.samples += [(p, self.class_to_idx[name]) for p in found]
        problems = []
        if empty:
            problems.append(f"expected images ({', '.join(IMAGE_EXTENSIONS)}) in every class folder, but "
                            f"{len(empty)} have none: {', '.join(map(repr, empty))}")
        unreadable = [(p, cause) for p, cause in ((p, _header_problem(p)) for p, _ in self.samples) if cause]
        if unreadable:
            problems.append(f"{len(unreadable)} unreadable file(s): "
                            + ", ".join(f"{_join([p], self.root)} ({cause})" for p, cause in unreadable))
        if verify:
            skip = {p for p, _ in unreadable}
            failures = []
            for path, _ in self.samples:
                if path not in skip:
                    try:
                        read_image(path, self.image_mode)
                    except MixMaskError as err:
                        failures.append(str(err))
            if failures:
                problems.append(f"{len(failures)} image(s) failed to decode: " + "; ".join(failures))
        if problems:
            raise MixMaskError(f"in {str(self.root)!r}: " + "; ".join(problems))
        self.targets = [target for _, target in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, target = self.samples[index]
        image = read_image(path, self.image_mode)
        return (image if self.transform is None else self.transform(image)), target

    def __repr__(self) -> str:
        return (f"ClassFolder({str(self.root)!r}, {len(self)} images, {len(self.classes)} classes, "
                f"transform={self.transform!r})")
