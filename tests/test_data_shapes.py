"""The embedded shapes data set: determinism, ids, the round trip through disk, and the CLI."""

from __future__ import annotations

import argparse

import pytest
import torch
from PIL import Image

from mixmask import MixMaskError
from mixmask.cli import data as data_cli
from mixmask.data import SHAPE_CLASSES, ImageMaskFolder, ShapesDataset, write_shapes


def test_items_are_deterministic_by_seed_and_index_only():
    a, b = ShapesDataset(6, size=32, seed=3), ShapesDataset(6, size=32, seed=3)
    backwards = [b[i] for i in reversed(range(6))][::-1]
    for i in range(6):
        assert torch.equal(a[i]["image"], backwards[i]["image"])
        assert torch.equal(a[i]["mask"], backwards[i]["mask"])
    other = ShapesDataset(6, size=32, seed=4)
    assert not torch.equal(a[0]["image"], other[0]["image"])
    assert not torch.equal(a[0]["image"], a[1]["image"])
    assert torch.equal(a[-1]["mask"], a[5]["mask"])
    with pytest.raises(IndexError):
        a[6]


def test_items_have_the_documented_types_and_every_class_appears():
    data = ShapesDataset(40, size=48, seed=0)
    assert data.num_classes == len(data.class_names) == 4 and data.class_names[0] == "background"
    seen = torch.zeros(data.num_classes, dtype=torch.long)
    for i in range(len(data)):
        item = data[i]
        assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 48, 48)
        assert item["mask"].dtype == torch.int64 and item["mask"].shape == (48, 48)
        seen += torch.bincount(item["mask"].flatten(), minlength=data.num_classes)
    assert bool((seen > 0).all())
    assert 0.05 < float(seen[1:].sum() / seen.sum()) < 0.8  # objects are neither specks nor the whole image


def test_shapes_differ_from_their_background():
    item = ShapesDataset(1, size=64, seed=11)[0]
    image, mask = item["image"].float(), item["mask"]
    for k in mask.unique().tolist():
        if k:  # a shape's pixels have one colour plus noise: small spread
            assert float(image[:, mask == k].std(dim=1).max()) < 12


@pytest.mark.parametrize("layout", ["flat", "split"])
def test_written_folder_round_trips(tmp_path, layout):
    out = write_shapes(tmp_path / "shapes", count=5, size=32, seed=7, layout=layout)
    folder = ImageMaskFolder(out)
    assert folder.layout == layout and len(folder) == 5
    assert folder.palette[:4] == ShapesDataset.colors  # pictures use the palette the maps were written with
    data = ShapesDataset(5, size=32, seed=7)
    for i in range(5):
        assert torch.equal(folder[i]["image"], data[i]["image"])
        assert torch.equal(folder[i]["mask"], data[i]["mask"])
    mask_path = folder.samples[0][1]
    with Image.open(mask_path) as mask:
        assert mask.mode == "P"
        assert tuple(mask.getpalette()[3:6]) == ShapesDataset.colors[1]


def test_write_refuses_to_overwrite_unless_asked(tmp_path):
    write_shapes(tmp_path, count=2, size=16)
    before = (tmp_path / "00000.png").read_bytes()
    with pytest.raises(MixMaskError, match="holds 4 entries, 4 of them with the names to write"):
        write_shapes(tmp_path, count=2, size=16, seed=1)
    assert (tmp_path / "00000.png").read_bytes() == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(MixMaskError, match="holds 1 entry .*'notes.txt'.*--overwrite"):
        write_shapes(other, count=2, size=16)  # a non-empty folder, even without clashing names
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    other.joinpath("notes.txt").unlink()
    other.rmdir()
    write_shapes(tmp_path, count=2, size=16, seed=1, overwrite=True)
    assert (tmp_path / "00000.png").read_bytes() != before
    (tmp_path / "file").write_text("x")
    with pytest.raises(MixMaskError, match="is a file"):
        write_shapes(tmp_path / "file", count=1, size=16)
    with pytest.raises(MixMaskError, match="layout"):
        write_shapes(tmp_path, count=1, layout="nested")


@pytest.mark.parametrize("kwargs, match", [({"count": 0}, "count"), ({"size": 4}, "size"), ({"seed": -1}, "seed"),
                                           ({"max_shapes": True}, "max_shapes")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(MixMaskError, match=match):
        ShapesDataset(**{"count": 2, **kwargs})


def _cli(argv):
    parser = argparse.ArgumentParser(prog="mixmask")
    data_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_writes_and_checks_a_folder(tmp_path, capsys):
    assert _cli(["data", "shapes", "--out", str(tmp_path), "--count", "3", "--size", "24", "--seed", "5"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"0000{i}{s}.png" for i in range(3) for s in ("", "_mask")]
    assert torch.equal(ImageMaskFolder(tmp_path)[2]["mask"], ShapesDataset(3, 24, 5)[2]["mask"])
    assert ", ".join(f"{i} {name}" for i, name in enumerate(SHAPE_CLASSES)) in capsys.readouterr().out
    assert _cli(["data", "check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "layout: flat" in out and "splits: all 3 pairs" in out and "classes present: 4 of 4" in out
    with pytest.raises(MixMaskError, match="--overwrite"):
        _cli(["data", "shapes", "--out", str(tmp_path), "--count", "3"])
    (tmp_path / "00001_mask.png").unlink()
    with pytest.raises(MixMaskError, match="00001.png"):
        _cli(["data", "check", str(tmp_path)])


def test_uint8_maps_hold_the_same_ids():
    wide, narrow = ShapesDataset(2, size=16, seed=1), ShapesDataset(2, size=16, seed=1, mask_dtype=torch.uint8)
    assert narrow[1]["mask"].dtype == torch.uint8 and torch.equal(narrow[1]["mask"].long(), wide[1]["mask"])
