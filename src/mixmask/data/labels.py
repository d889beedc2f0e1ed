"""What the values in a segmentation map mean: class names, display colours, and the rule from file values to ids.

The tables of the public data sets are written here as data (Pascal VOC 2012's 21 classes and its
palette, Cityscapes' label table with its 19 train ids, ADE20K SceneParsing's 150 classes); a
user's own table comes from a file (:func:`read_colors`, :func:`read_class_names`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mixmask.errors import MixMaskError

__all__ = ["IGNORE_INDEX", "ClassTable", "table_from_colors", "VOC_CLASSES", "CITYSCAPES_LABELS", "CITYSCAPES_CLASSES", "ADE20K_CLASSES", "voc_palette",
           "read_colors", "read_class_names", "IGNORE_COLOR"]

RGB = tuple[int, int, int]
Row = tuple[str | None, RGB, int | None]  # a colour-table row: name, colour, explicit id
#: The id this package uses for unlabelled pixels (e.g. where a rotation uncovers the map), by default.
IGNORE_INDEX = 255
#: Colour in which every picture of this package draws ignored (``ignore_index``) pixels.
IGNORE_COLOR: RGB = (255, 255, 255)

#: Pascal VOC 2012 classes, index = id (palette index in ``SegmentationClass/*.png``; 255 marks borders).
VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")

#: The Cityscapes label table (cityscapesScripts ``helpers/labels.py``): ``(name, label id, train id, colour)``
#: for every id that ``*_gtFine_labelIds.png`` files hold; train id 255 = not evaluated (ignored).
CITYSCAPES_LABELS: tuple[tuple[str, int, int, RGB], ...] = (
    ("unlabeled", 0, 255, (0, 0, 0)), ("ego vehicle", 1, 255, (0, 0, 0)),
    ("rectification border", 2, 255, (0, 0, 0)), ("out of roi", 3, 255, (0, 0, 0)), ("static", 4, 255, (0, 0, 0)),
    ("dynamic", 5, 255, (111, 74, 0)), ("ground", 6, 255, (81, 0, 81)), ("road", 7, 0, (128, 64, 128)),
    ("sidewalk", 8, 1, (244, 35, 232)), ("parking", 9, 255, (250, 170, 160)), ("rail track", 10, 255, (230, 150, 140)),
    ("building", 11, 2, (70, 70, 70)), ("wall", 12, 3, (102, 102, 156)), ("fence", 13, 4, (190, 153, 153)),
    ("guard rail", 14, 255, (180, 165, 180)), ("bridge", 15, 255, (150, 100, 100)), ("tunnel", 16, 255, (150, 120, 90)),
    ("pole", 17, 5, (153, 153, 153)), ("polegroup", 18, 255, (153, 153, 153)), ("traffic light", 19, 6, (250, 170, 30)),
    ("traffic sign", 20, 7, (220, 220, 0)), ("vegetation", 21, 8, (107, 142, 35)), ("terrain", 22, 9, (152, 251, 152)),
    ("sky", 23, 10, (70, 130, 180)), ("person", 24, 11, (220, 20, 60)), ("rider", 25, 12, (255, 0, 0)),
    ("car", 26, 13, (0, 0, 142)), ("truck", 27, 14, (0, 0, 70)), ("bus", 28, 15, (0, 60, 100)),
    ("caravan", 29, 255, (0, 0, 90)), ("trailer", 30, 255, (0, 0, 110)), ("train", 31, 16, (0, 80, 100)),
    ("motorcycle", 32, 17, (0, 0, 230)), ("bicycle", 33, 18, (119, 11, 32)))
#: The 19 Cityscapes train ids' names, index = train id.
CITYSCAPES_CLASSES: tuple[str, ...] = tuple(name for name, _, train, _ in sorted(
    (row for row in CITYSCAPES_LABELS if row[2] != 255), key=lambda row: row[2]))

#: ADE20K SceneParsing (ADEChallengeData2016) classes, index = file value - 1 (file value 0 = "other").
ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path",
    "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
    "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane",
    "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster",
    "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool",
    "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture",
    "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag")


def voc_palette(count: int = 256) -> tuple[RGB, ...]:
    """The Pascal VOC colour map: colour ``i`` spreads the bits of ``i`` over r, g, b from the top bit down.

    Index 0 is black, 1 dark red, 2 dark green ..., 255 the border colour (224, 224, 192); no entry
    is white, so white stays free for ignored pixels.
    """
    colors = []
    for index in range(count):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colors.append((r, g, b))
    return tuple(colors)


@dataclass(frozen=True)
class ClassTable:
    """What the values of a data set's maps mean.

    Attributes:
        names: class names, index = id (K of them), or None when only the ids are known.
        colors: display colour of each id (K), or None (pictures then use :func:`voc_palette`).
        lookup: ``{(r, g, b): id}`` for colour-coded masks, or None (the files hold ids).
        remap: int64 look-up table from file values to ids (-1: a value the data set never uses),
            or None (file values are the ids).
        void: file value(s) turned into the ignore index by ``remap`` (for messages).
        rule: how file values become ids, in words (for ``data check`` and ``config.json``).
    """

    names: tuple[str, ...] | None = None
    colors: tuple[RGB, ...] | None = None
    lookup: dict[RGB, int] | None = None
    remap: tuple[int, ...] | None = None
    rule: str = "the file values are the ids"

    @property
    def num_classes(self) -> int | None:
        return len(self.names) if self.names is not None else None

    def remap_array(self, ignore_index: int) -> np.ndarray | None:
        """``remap`` as an int64 array with the data set's void values set to ``ignore_index``."""
        if self.remap is None:
            return None
        table = np.array(self.remap, dtype=np.int64)
        return np.where(table == 255, ignore_index, table) if ignore_index != 255 else table


def table_from_colors(lookup: dict[RGB, int], names: Sequence[str | None] | None, ignore_index: int) -> ClassTable:
    """The class table of a colour table: ids 0..K-1 (K = the largest id other than ``ignore_index``, plus 1).

    A colour mapped to ``ignore_index`` marks unlabelled pixels; an id that no colour has still counts
    (its display colour is then taken from :func:`voc_palette`).
    """
    ids = [i for i in lookup.values() if i != ignore_index]
    k = max(ids) + 1 if ids else 0
    by_id: dict[int, RGB] = {}
    for color, ident in lookup.items():
        by_id.setdefault(ident, color)
    fallback = voc_palette(k)
    named = list(names or [])
    return ClassTable(tuple(n if i < len(named) and n else str(i) for i, n in enumerate(named[:k] + [None] * (k - len(named)))),
                      tuple(by_id.get(i, fallback[i]) for i in range(k)), lookup=dict(lookup),
                      rule=f"colour table: {len(lookup)} colours -> {k} class ids"
                           + (f", {sum(1 for i in lookup.values() if i == ignore_index)} colour(s) -> ignore"
                              if ignore_index in lookup.values() else ""))


def _lut(pairs: dict[int, int], size: int = 256) -> tuple[int, ...]:
    table = [-1] * size
    for value, ident in pairs.items():
        table[value] = ident
    return tuple(table)


VOC_TABLE = ClassTable(VOC_CLASSES, voc_palette()[:len(VOC_CLASSES)],
                       remap=_lut({**{i: i for i in range(len(VOC_CLASSES))}, 255: 255}),
                       rule="palette index = class id (0-20); 255 (object borders) = ignore")
CITYSCAPES_TABLE = ClassTable(
    CITYSCAPES_CLASSES, tuple(color for _, _, train, color in sorted(
        (r for r in CITYSCAPES_LABELS if r[2] != 255), key=lambda r: r[2])),
    remap=_lut({ident: train for _, ident, train, _ in CITYSCAPES_LABELS}),
    rule="gtFine labelIds (0-33) -> the 19 train ids of the official label table; every other id = ignore")
ADE20K_TABLE = ClassTable(ADE20K_CLASSES, voc_palette(len(ADE20K_CLASSES) + 1)[1:],
                          remap=_lut({0: 255, **{v: v - 1 for v in range(1, len(ADE20K_CLASSES) + 1)}}),
                          rule="reduce zero label: file value 0 ('other') = ignore, values 1-150 -> ids 0-149")


def _color(values: Sequence[str], where: str) -> RGB:
    try:
        color = tuple(int(str(v).strip()) for v in values)
    except ValueError:
        color = ()
    if len(color) != 3 or not all(0 <= c <= 255 for c in color):
        raise MixMaskError(f"{where}: expected a colour r,g,b of three ints in [0, 255], but got {list(values)!r}")
    return color  # type: ignore[return-value]


def _table_from_rows(rows: list[Row], path: Path) -> tuple[dict[RGB, int], list[str | None]]:
    """``(lookup, names by id)`` from ``(name, colour, explicit id or None)`` rows; position = id otherwise."""
    lookup: dict[RGB, int] = {}
    names: dict[int, str | None] = {}
    for position, (name, color, ident) in enumerate(rows):
        ident = position if ident is None else ident
        if color in lookup and lookup[color] != ident:
            raise MixMaskError(f"{str(path)!r}: the colour {color} is given two ids, {lookup[color]} and {ident}")
        lookup[color] = ident
        names.setdefault(ident, name)
    if not lookup:
        raise MixMaskError(f"{str(path)!r}: expected at least one colour, but the table is empty")
    top = max(names)
    return lookup, [names.get(i) for i in range(top + 1)]


def _read_text(path: str | Path, option: str, what: str) -> tuple[Path, str]:
    path = Path(path).expanduser()
    try:
        return path, path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise MixMaskError(f"{option}: expected a readable {what}, but could not read {str(path)!r} "
                           f"({err.__class__.__name__})") from None


def _read_json(text: str, path: Path, option: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise MixMaskError(f"{option}: {str(path)!r} is not valid JSON ({err})") from None


def _json_rows(data: Any, path: Path) -> list[Row]:
    rows: list[Row] = []
    items = list(data.items()) if isinstance(data, dict) else list(enumerate(data))
    for key, item in items:
        where = f"{str(path)!r} entry {key!r}"
        if isinstance(item, dict) and "color" in item:
            ident = item.get("id")
            if ident is not None and (isinstance(ident, bool) or not isinstance(ident, int) or ident < 0):
                raise MixMaskError(f"{where}: expected an id >= 0, but got {ident!r}")
            rows.append((item.get("name"), _color(item["color"], where), ident))
        elif isinstance(item, list):
            rows.append((key if isinstance(key, str) else None, _color(item, where), None))
        else:
            raise MixMaskError(f"{where}: expected [r, g, b] or {{'name': ..., 'color': [r, g, b]}}, but got {item!r}")
    return rows


def _csv_rows(text: str, path: Path) -> list[Row]:
    lines = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    header = [c.strip().lower() for c in lines[0]] if lines else []
    columns, first = {"name": 0, "r": 1, "g": 2, "b": 3}, 1
    if {"name", "r", "g", "b"} <= set(header):
        columns = {key: header.index(key) for key in ("name", "r", "g", "b", "id") if key in header}
        lines, first = lines[1:], 2
    rows: list[Row] = []
    for number, row in enumerate(lines, start=first):
        where = f"{str(path)!r} row {number}"
        if len(row) <= max(columns.values()):
            raise MixMaskError(f"{where}: expected name,r,g,b, but got {','.join(row)!r}")
        ident = None
        if "id" in columns:
            value = row[columns["id"]].strip()
            if not value.isdigit():
                raise MixMaskError(f"{where}: expected an id >= 0, but got {value!r}")
            ident = int(value)
        rows.append((row[columns["name"]].strip(), _color([row[columns[c]] for c in "rgb"], where), ident))
    return rows


def _text_rows(text: str, path: Path) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split(None, 3)
        if not parts or parts[0].startswith("#"):
            continue
        where = f"{str(path)!r} line {number}"
        if len(parts) < 3:
            raise MixMaskError(f"{where}: expected 'r g b name', name,r,g,b (CSV) or JSON, but got {line!r}")
        rows.append((parts[3].strip() if len(parts) > 3 else None, _color(parts[:3], where), None))
    return rows


def read_colors(path: str | Path) -> tuple[dict[RGB, int], list[str | None]]:
    """Read a colour table file: which mask colour is which id, and the class names it gives.

    Formats (by content, any file name):
    - CSV with rows ``name,r,g,b`` (CamVid's ``class_dict.csv``; a header row is skipped; an ``id``
      column, if the header has one, gives the ids, else the row position is the id);
    - JSON: a list of ``{"name": ..., "color": [r, g, b], "id": optional}``, a list of ``[r, g, b]``
      (position = id), or an object ``{"name": [r, g, b], ...}`` (order = id);
    - text lines ``r g b name`` (the original CamVid ``label_colors.txt``).

    Returns:
        ``({(r, g, b): id}, names)`` with ``names[id]`` a name or None.

    Raises:
        MixMaskError: naming the file (and the row) that does not parse.
    """
    path, text = _read_text(path, "--colors", "colour table file")
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        rows = _json_rows(_read_json(text, path, "--colors"), path)
    elif "," in stripped.split("\n", 1)[0]:
        rows = _csv_rows(text, path)
    else:
        rows = _text_rows(text, path)
    return _table_from_rows(rows, path)


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a file: one per line (blank lines and ``#`` comments skipped), or a JSON list.

    Raises:
        MixMaskError: naming the file when it cannot be read, is empty, or repeats a name.
    """
    path, text = _read_text(path, "--class-names", "file of class names")
    if text.lstrip().startswith("["):
        names = _read_json(text, path, "--class-names")
        if not all(isinstance(n, str) for n in names):
            raise MixMaskError(f"--class-names: expected a JSON list of strings in {str(path)!r}")
    else:
        names = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not names:
        raise MixMaskError(f"--class-names: expected one name per line in {str(path)!r}, but it holds none")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MixMaskError(f"--class-names: {str(path)!r} names a class twice: {', '.join(map(repr, twice))}")
    return [str(n) for n in names]
