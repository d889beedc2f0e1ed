"""Folder layouts of segmentation data: mixmask's own two, and four public data sets as they ship.

A layout is found from the folder (:func:`detect_layout`) or named; :func:`find_pairs` lists its
``(image, mask)`` pairs per split with every pairing problem, and says how its masks are coded.
Only paths are looked at here; files are opened by :mod:`mixmask.data.folders`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mixmask.data.labels import ADE20K_TABLE, CITYSCAPES_TABLE, VOC_TABLE, ClassTable
from mixmask.errors import MixMaskError

__all__ = ["LAYOUTS", "Found", "detect_layout", "find_pairs"]

#: File name endings read as images (lower case). Masks must be PNG: lossy formats change ids.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MASK_SUFFIX = "_mask"
#: Layout names: ``auto`` finds one of these from the folder.
LAYOUTS: tuple[str, ...] = ("flat", "split", "voc", "camvid", "cityscapes", "ade20k")
_TITLES = {"flat": "mixmask flat (xyz.png + xyz_mask.png)", "split": "mixmask split (images/ + masks/)",
           "voc": "Pascal VOC (JPEGImages/ + SegmentationClass/)", "camvid": "CamVid (images + <name>_L.png colour masks)",
           "cityscapes": "Cityscapes (leftImg8bit/ + gtFine/ labelIds)",
           "ade20k": "ADE20K SceneParsing (images/ + annotations/)"}
_EXPECTED = {
    "split": "images/ and masks/ folders with matching stems",
    "voc": "JPEGImages/ and SegmentationClass/ in the folder, in VOC2012/ or in VOCdevkit/VOC2012/",
    "camvid": "images with <name>_L.png colour masks, or <split>/ with <split>_labels/ folders, and class_dict.csv",
    "cityscapes": "leftImg8bit/<split>/<city>/*_leftImg8bit.png and gtFine/<split>/<city>/*_gtFine_labelIds.png",
    "ade20k": "images/{training,validation}/ and annotations/{training,validation}/ (or ADEChallengeData2016/)",
}
_SPLIT_ORDER = ("train", "training", "trainval", "val", "validation", "test")
_COLOR_FILES = ("class_dict.csv", "label_colors.txt")

Pair = tuple[Path, Path]


@dataclass
class Found:
    """The pairs of a folder in one layout.

    Attributes:
        layout: one of :data:`LAYOUTS`.
        root: the folder the layout was found in (``VOCdevkit/VOC2012`` for ``VOCdevkit/``).
        splits: split name → pairs, in the data set's order (``{"all": ...}`` when it has none).
        problems: every pairing problem found, each naming its files.
        masks: how the masks are coded: ``"ids"`` (label ids or palette indices), ``"colors"``
            (RGB through a colour table) or ``"any"``.
        table: the data set's own class table (VOC, Cityscapes, ADE20K), else None.
        colors_file: the colour table that ships with the data (CamVid ``class_dict.csv``), else None.
        train_split, test_split: the splits ``mixmask train`` trains and tests on (None: a random split).
    """

    layout: str
    root: Path
    splits: dict[str, list[Pair]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    masks: str = "any"
    table: ClassTable | None = None
    colors_file: Path | None = None
    train_split: str | None = None
    test_split: str | None = None

    @property
    def title(self) -> str:
        return _TITLES[self.layout]


def _files(folder: Path, recursive: bool = False) -> list[Path]:
    """Files in ``folder`` with an image ending, sorted: hidden ones left out, broken symbolic links kept
    (they pair like files, and the header check reports them as broken links)."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if (p.is_file() or (p.is_symlink() and not p.exists()))
                  and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


def _rel(paths: Iterable[Path | str], root: Path) -> str:
    return ", ".join(repr(str(Path(p).relative_to(root)) if Path(p).is_relative_to(root) else str(p)) for p in paths)


def _pair(images: Iterable[Path], masks: Iterable[Path], image_key: Callable[[Path], str],
          mask_key: Callable[[Path], str], root: Path, where: str, *,
          lonely_images: bool = True) -> tuple[list[Pair], list[str]]:
    """Pair files by key; problems: images without masks (when they count), masks without images, twins, lossy masks."""
    by_image: dict[str, list[Path]] = {}
    by_mask: dict[str, list[Path]] = {}
    for p in images:
        by_image.setdefault(image_key(p), []).append(p)
    for p in masks:
        by_mask.setdefault(mask_key(p), []).append(p)
    problems = []
    alone = [p for k in sorted(set(by_image) - set(by_mask)) for p in by_image[k]]
    orphans = [p for k in sorted(set(by_mask) - set(by_image)) for p in by_mask[k]]
    twins = [p for group in (by_image, by_mask) for k in sorted(group) if len(group[k]) > 1 for p in group[k]]
    lossy = [p for k in sorted(by_mask) for p in by_mask[k] if p.suffix.lower() != ".png"]
    if alone and lonely_images:
        problems.append(f"{len(alone)} image(s) without a mask (expected {where}): {_rel(alone, root)}")
    if orphans:
        problems.append(f"{len(orphans)} mask(s) without an image: {_rel(orphans, root)}")
    if twins:
        problems.append(f"files sharing a stem, so the pairing is ambiguous: {_rel(twins, root)}")
    if lossy:
        problems.append(f"masks must be PNG (lossy formats change ids), but got: {_rel(lossy, root)}")
    pairs = [(by_image[k][0], by_mask[k][0]) for k in sorted(set(by_image) & set(by_mask))
             if len(by_image[k]) == len(by_mask[k]) == 1 and by_mask[k][0].suffix.lower() == ".png"]
    return pairs, problems


def _split_names(names: Iterable[str]) -> list[str]:
    """Split names in the usual order (train first), others after in sorted order."""
    names = set(names)
    return [n for n in _SPLIT_ORDER if n in names] + sorted(names - set(_SPLIT_ORDER))


# -- detection -------------------------------------------------------------------------------------

def _voc_root(root: Path) -> Path | None:
    def ok(p: Path) -> bool:
        return (p / "JPEGImages").is_dir() and (p / "SegmentationClass").is_dir()

    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if ok(candidate):
            return candidate
    for parent in (root, root / "VOCdevkit"):
        if parent.is_dir():
            found = sorted(p for p in parent.iterdir() if p.is_dir() and ok(p))
            if found:
                return found[-1]  # the latest year
    return None


def _ade_root(root: Path) -> Path | None:
    for candidate in (root, root / "ADEChallengeData2016"):
        if (candidate / "annotations").is_dir() and any(
                (candidate / "images" / s).is_dir() for s in ("training", "validation")):
            return candidate
    return None


def _camvid_like(root: Path) -> bool:
    if any((root / name).is_file() for name in _COLOR_FILES):
        return True
    folders = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    return any((root / f"{p.name}_labels").is_dir() for p in folders[1:]) or any(
        f.stem.endswith("_L") for folder in folders for f in _files(folder))


def detect_layout(root: str | Path) -> str:
    """The layout of ``root``: the first of cityscapes, voc, ade20k, camvid, split whose folders are there, else flat.

    Raises:
        MixMaskError: ``root`` is not a folder.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MixMaskError(f"expected a folder of images and masks, but {str(root)!r} is not a folder")
    if (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir():
        return "cityscapes"
    if _voc_root(root) is not None:
        return "voc"
    if _ade_root(root) is not None:
        return "ade20k"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "split"
    if _camvid_like(root):
        return "camvid"
    return "flat"


# -- the layouts -----------------------------------------------------------------------------------

def _flat(root: Path) -> Found:
    images = [p for p in _files(root) if not p.stem.endswith(MASK_SUFFIX)]
    masks = [p for p in _files(root) if p.stem.endswith(MASK_SUFFIX)]
    pairs, problems = _pair(images, masks, lambda p: p.stem, lambda p: p.stem[:-len(MASK_SUFFIX)], root,
                            "<stem>_mask.png")
    return Found("flat", root, {"all": pairs}, problems)


def _split(root: Path) -> Found:
    pairs, problems = _pair(_files(root / "images"), _files(root / "masks"), lambda p: p.stem, lambda p: p.stem,
                            root, "masks/<stem>.png")
    return Found("split", root, {"all": pairs}, problems)


def _voc(root: Path) -> Found:
    base = _voc_root(root)
    if base is None:
        raise MixMaskError(f"--layout voc: expected {_EXPECTED['voc']}, but {str(root)!r} has none of them")
    masks = _files(base / "SegmentationClass")
    # JPEGImages also holds the detection-only images: an image without a map is normal here
    pairs, problems = _pair(_files(base / "JPEGImages"), masks, lambda p: p.stem, lambda p: p.stem, base,
                            "SegmentationClass/<name>.png", lonely_images=False)
    by_name = {image.stem: (image, mask) for image, mask in pairs}
    images = {p.stem for p in _files(base / "JPEGImages")}
    mask_names = {p.stem for p in masks}
    splits: dict[str, list[Pair]] = {}
    for split in ("train", "val"):
        listing = base / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not listing.is_file():
            continue
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        missing = [f"{n} ({'no image, no mask' if n not in images and n not in mask_names else 'no image' if n not in images else 'no mask'})"
                   for n in names if n not in by_name]
        if missing:
            problems.append(f"{_rel([listing], base)} lists {len(missing)} name(s) without an image/mask pair: "
                            + ", ".join(missing))
        splits[split] = [by_name[n] for n in names if n in by_name]
    if not splits:
        splits = {"all": pairs}
    return Found("voc", base, splits, problems, masks="ids", table=VOC_TABLE,
                 train_split="train" if "train" in splits else None, test_split="val" if "val" in splits else None)


def _cityscapes(root: Path) -> Found:
    images_dir, masks_dir = root / "leftImg8bit", root / "gtFine"
    if not (images_dir.is_dir() and masks_dir.is_dir()):
        raise MixMaskError(f"--layout cityscapes: expected {_EXPECTED['cityscapes']}, but {str(root)!r} lacks "
                           + " and ".join(repr(p.name + "/") for p in (images_dir, masks_dir) if not p.is_dir()))
    image_end, mask_end = "_leftImg8bit", "_gtFine_labelIds"
    splits: dict[str, list[Pair]] = {}
    problems: list[str] = []
    for split in _split_names(p.name for p in images_dir.iterdir() if p.is_dir()):
        if not (masks_dir / split).is_dir():
            continue  # a split shipped without annotations
        images = [p for p in _files(images_dir / split, recursive=True) if p.stem.endswith(image_end)]
        masks = [p for p in _files(masks_dir / split, recursive=True) if p.stem.endswith(mask_end)]
        pairs, found = _pair(images, masks, lambda p: str(p.relative_to(images_dir).with_name(p.stem[:-len(image_end)])),
                             lambda p: str(p.relative_to(masks_dir).with_name(p.stem[:-len(mask_end)])), root,
                             f"gtFine/{split}/<city>/<name>{mask_end}.png")
        splits[split], problems = pairs, problems + found
    if not splits:
        problems.append(f"no split of leftImg8bit/ has a gtFine/ folder of the same name (expected {_EXPECTED['cityscapes']})")
    return Found("cityscapes", root, splits, problems, masks="ids", table=CITYSCAPES_TABLE,
                 train_split="train" if "train" in splits else None, test_split="val" if "val" in splits else None)


def _ade20k(root: Path) -> Found:
    base = _ade_root(root)
    if base is None:
        raise MixMaskError(f"--layout ade20k: expected {_EXPECTED['ade20k']}, but {str(root)!r} has none of them")
    splits: dict[str, list[Pair]] = {}
    problems: list[str] = []
    for split in _split_names(p.name for p in (base / "images").iterdir() if p.is_dir()):
        pairs, found = _pair(_files(base / "images" / split), _files(base / "annotations" / split),
                             lambda p: p.stem, lambda p: p.stem, base, f"annotations/{split}/<name>.png")
        splits[split], problems = pairs, problems + found
    return Found("ade20k", base, splits, problems, masks="ids", table=ADE20K_TABLE,
                 train_split="training" if "training" in splits else None,
                 test_split="validation" if "validation" in splits else None)


def _camvid(root: Path) -> Found:
    def mask_key(p: Path) -> str:
        return p.stem[:-2] if p.stem.endswith("_L") else p.stem

    colors_file = next((root / n for n in _COLOR_FILES if (root / n).is_file()), None)
    split_dirs = sorted(p for p in root.iterdir() if p.is_dir() and (root / f"{p.name}_labels").is_dir())
    splits: dict[str, list[Pair]] = {}
    problems: list[str] = []
    if split_dirs:
        for split in _split_names(p.name for p in split_dirs):
            pairs, found = _pair(_files(root / split), _files(root / f"{split}_labels"), lambda p: p.stem, mask_key,
                                 root, f"{split}_labels/<name>_L.png")
            splits[split], problems = pairs, problems + found
    else:
        folders = [root] + sorted(p for p in root.iterdir() if p.is_dir())
        files = [f for folder in folders for f in _files(folder)]
        pairs, problems = _pair([f for f in files if not f.stem.endswith("_L")], [f for f in files if f.stem.endswith("_L")],
                                lambda p: p.stem, mask_key, root, "<name>_L.png")
        if not files:
            raise MixMaskError(f"--layout camvid: expected {_EXPECTED['camvid']}, but {str(root)!r} has no images")
        splits = {"all": pairs}
    test = "test" if "test" in splits else "val" if "val" in splits else None
    return Found("camvid", root, splits, problems, masks="colors", colors_file=colors_file,
                 train_split="train" if "train" in splits and test else None, test_split=test if "train" in splits else None)


_READERS: dict[str, Callable[[Path], Found]] = {"flat": _flat, "split": _split, "voc": _voc, "camvid": _camvid,
                                                "cityscapes": _cityscapes, "ade20k": _ade20k}


def find_pairs(root: str | Path, layout: str = "auto") -> Found:
    """The pairs of ``root`` in ``layout`` (``"auto"``: :func:`detect_layout`), per split, with every problem.

    Raises:
        MixMaskError: ``root`` is not a folder, an unknown layout, or a named layout whose folders are missing.
    """
    root = Path(root).expanduser()
    if layout not in ("auto",) + LAYOUTS:
        raise MixMaskError(f"unknown layout {layout!r}; valid: auto, {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise MixMaskError(f"expected a folder of images and masks, but {str(root)!r} is not a folder")
    if layout == "split" and not ((root / "images").is_dir() and (root / "masks").is_dir()):
        raise MixMaskError(f"--layout split: expected {_EXPECTED['split']}, but {str(root)!r} lacks them")
    return _READERS[detect_layout(root) if layout == "auto" else layout](root)
