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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mixmask.errors import MixMaskError

__all__ = ["IMAGE_EXTENSIONS", "ColorTable", "ImageMaskFolder", "ClassFolder", "read_image", "read_mask"]

#: File name endings read as images (lower case). Masks must be PNG: lossy formats change ids.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MASK_SUFFIX = "_mask"
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
                raise MixMaskError(f"{str(path)!r} is a colour-coded {mode} mask: pass colors= (a colour table "
                                   "{(r, g, b): id}) to map its colours to ids")
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


def _listing(folder: Path) -> list[Path]:
    """Files of ``folder`` (broken symbolic links included, to be reported as such), hidden ones left out."""
    return sorted(p for p in folder.iterdir() if (p.is_file() or (p.is_symlink() and not p.exists()))
                  and not p.name.startswith("."))


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
    """Images and their segmentation maps from one folder.

    Two layouts: ``xyz.jpg`` (or ``.png`` ...) next to ``xyz_mask.png`` in ``root``; or
    ``root/images/xyz.jpg`` with ``root/masks/xyz.png`` (matching stems). Maps are single-channel
    ids (8 or 16 bit), palette PNGs (palette index = id, or the palette's colours looked up in
    ``colors``) or RGB PNGs mapped through ``colors``. The folder is only read.

    Building the data set pairs the files and reads every header; all the problems found (images
    without masks, masks without images, size mismatches, unreadable files with their cause: broken
    symbolic links, images above ``PIL.Image.MAX_IMAGE_PIXELS``, ..., colour masks without a table)
    are reported in one :class:`MixMaskError` naming every file. ``verify=True`` also decodes every
    pair in the same pass, to find truncated files and unknown colours too (:meth:`verify` does it
    later).

    Args:
        root: the folder.
        colors: colour table ``{(r, g, b): id}`` or a list of ``(r, g, b)`` indexed by id.
        transform: called on ``{"image", "mask"}`` (as ``tv_tensors.Image``/``Mask`` when
            torchvision is installed), e.g. :func:`mixmask.data.joint_transforms`.
        image_mode: Pillow mode images are converted to (None keeps each file's own).
        mask_dtype: integer dtype of the maps; ``torch.uint8`` (ids and ``ignore_index`` below
            256) holds maps in 8x less memory than int64, cheaper to collate and mix.
        verify: decode every pair while building (one error for every problem of the folder).

    Returns (items):
        Without a transform, ``{"image": uint8 (C, H, W), "mask": int64 (H, W)}`` (or
        ``mask_dtype``); with one, what it returns.

    Raises:
        MixMaskError: for a missing folder, no pairs, or the problems above.

    Example:
        >>> data = ImageMaskFolder("shapes/", transform=joint_transforms(128, seed=0))
        >>> loader = DataLoader(data, batch_size=16, num_workers=2,
        ...                     collate_fn=MixCollate(CutMix(ignore_index=255), targets="masks", seed=0))
    """

    def __init__(self, root: str | Path, colors: ColorTable | None = None,
                 transform: Callable[[dict[str, Tensor]], Any] | None = None, *,
                 image_mode: str | None = "RGB", mask_dtype: torch.dtype = torch.int64,
                 verify: bool = False) -> None:
        self.root = Path(root).expanduser()
        self.colors = _check_colors(colors)
        self.transform = transform
        self.image_mode = image_mode
        self.mask_dtype = check_mask_dtype(mask_dtype)
        if not self.root.is_dir():
            raise MixMaskError(f"expected a folder of images and masks, but {str(self.root)!r} is not a folder")
        split = (self.root / "images").is_dir() and (self.root / "masks").is_dir()
        self.layout = "split" if split else "flat"
        self.samples, problems = self._pair(split)
        header_problems, bad = self._check_headers()
        problems += header_problems
        if verify:
            failures = self._decode_problems(skip=bad)
            if failures:
                problems.append(f"{len(failures)} pair(s) failed to decode: " + "; ".join(failures))
        if problems:
            raise MixMaskError(f"in {str(self.root)!r} ({self.layout} layout): " + "; ".join(problems))
        if not self.samples:
            raise MixMaskError(f"expected image/mask pairs in {str(self.root)!r} (xyz.jpg|png with xyz_mask.png, "
                               "or images/ and masks/ folders with matching stems), but found none")

    def _pair(self, split: bool) -> tuple[list[tuple[Path, Path]], list[str]]:
        """The ``(image, mask)`` pairs, and the pairing problems found."""
        images: dict[str, list[Path]] = {}
        masks: dict[str, list[Path]] = {}
        if split:
            for p in _listing(self.root / "images"):
                if p.suffix.lower() in IMAGE_EXTENSIONS:
                    images.setdefault(p.stem, []).append(p)
            for p in _listing(self.root / "masks"):
                if p.suffix.lower() in IMAGE_EXTENSIONS:
                    masks.setdefault(p.stem, []).append(p)
        else:
            for p in _listing(self.root):
                if p.suffix.lower() not in IMAGE_EXTENSIONS:
                    continue
                if p.stem.endswith(MASK_SUFFIX):
                    masks.setdefault(p.stem[:-len(MASK_SUFFIX)], []).append(p)
                else:
                    images.setdefault(p.stem, []).append(p)
        problems = []
        lonely_images = [p for s in sorted(set(images) - set(masks)) for p in images[s]]
        lonely_masks = [p for s in sorted(set(masks) - set(images)) for p in masks[s]]
        twins = [p for group in (images, masks) for s in sorted(group) if len(group[s]) > 1 for p in group[s]]
        lossy = [p for s in sorted(masks) for p in masks[s] if p.suffix.lower() != ".png"]
        where = ("masks/<stem>.png" if split else "<stem>_mask.png")
        if lonely_images:
            problems.append(f"{len(lonely_images)} image(s) without a mask (expected {where}): "
                            f"{_join(lonely_images, self.root)}")
        if lonely_masks:
            problems.append(f"{len(lonely_masks)} mask(s) without an image: {_join(lonely_masks, self.root)}")
        if twins:
            problems.append(f"files sharing a stem, so the pairing is ambiguous: {_join(twins, self.root)}")
        if lossy:
            problems.append(f"masks must be PNG (lossy formats change ids), but got: {_join(lossy, self.root)}")
        pairs = [(images[s][0], masks[s][0]) for s in sorted(set(images) & set(masks))
                 if len(images[s]) == len(masks[s]) == 1 and masks[s][0].suffix.lower() == ".png"]
        return pairs, problems

    def _check_headers(self) -> tuple[list[str], set[Path]]:
        """Problems found in the headers of the paired files, and the files that have one."""
        unreadable, mismatched, modes, colour = [], [], [], []
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
                elif path is mask and mode in ("RGB", "RGBA") and self.colors is None:
                    colour.append(_join([path], self.root))
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
        if colour:
            problems.append(f"colour-coded RGB mask(s) but no colors= table to map them to ids: {', '.join(colour)}")
        return problems, bad

    def _decode_problems(self, skip: set[Path] = frozenset()) -> list[str]:
        """Decode every pair (but those with a file in ``skip``); the failures, each naming its file."""
        failures = []
        for index, (image, mask) in enumerate(self.samples):
            if image in skip or mask in skip:
                continue
            try:
                self._load(index)
            except MixMaskError as err:
                failures.append(str(err))
        return failures

    def verify(self) -> None:
        """Decode every image and map; raise one error naming every file that fails (e.g. unknown colours).

        Raises:
            MixMaskError: listing each failing file with its reason.
        """
        failures = self._decode_problems()
        if failures:
            raise MixMaskError(f"{len(failures)} of {len(self)} pairs in {str(self.root)!r} failed: "
                               + "; ".join(failures))

    def _load(self, index: int) -> dict[str, Tensor]:
        image_path, mask_path = self.samples[index]
        image = read_image(image_path, self.image_mode)
        mask = read_mask(mask_path, self.colors)
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
                f"{', colors=' + str(len(self.colors)) if self.colors else ''}, transform={self.transform!r})")


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
