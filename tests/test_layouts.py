"""Public data-set layouts as they ship (Pascal VOC, CamVid, Cityscapes, ADE20K), built tiny in the real formats.

Each layout is written to a temporary folder (JPEG / PNG images, palette, RGB and 8-bit label-id
PNG masks) and run through ``data check``, ``train --epochs 1`` and ``preview``; then the bad inputs
of each are checked to be named, all at once, before anything is written.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mixmask import MixMaskError
from mixmask.cli.main import main
from mixmask.data import ImageMaskFolder
from mixmask.data.folders import check_folder
from mixmask.data.labels import (ADE20K_CLASSES, CITYSCAPES_CLASSES, CITYSCAPES_LABELS, VOC_CLASSES, read_class_names,
                                 read_colors, voc_palette)
from mixmask.data.layouts import detect_layout

H, W = 24, 32
CAMVID = [("Sky", (128, 128, 128)), ("Road", (128, 64, 128)), ("Car", (64, 0, 128)), ("Void", (0, 0, 0))]


def _rng(seed):
    return np.random.Generator(np.random.PCG64(seed))


def _image(path, seed, size=(H, W)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_rng(seed).integers(0, 256, size=size + (3,), dtype=np.uint8)).save(path)


def _ids(seed, values, size=(H, W)):
    return np.asarray(values, dtype=np.uint8)[_rng(seed).integers(0, len(values), size=size)]


def _palette_png(path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(ids)
    im.putpalette([c for color in voc_palette() for c in color])  # an L image with a palette becomes P
    im.save(path)


def _grey_png(path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids).save(path)


def _rgb_png(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


def make_voc(root, count=6):
    """VOCdevkit/VOC2012 with JPEGs, palette maps (ids 0-20, 255 borders), train/val lists, a detection-only image."""
    base = root / "VOCdevkit" / "VOC2012"
    names = [f"2007_{i:06d}" for i in range(count)]
    maps = {}
    for i, name in enumerate(names):
        _image(base / "JPEGImages" / f"{name}.jpg", i)
        maps[name] = _ids(i, [0, 0, 1 + i % 20, 15, 255])
        _palette_png(base / "SegmentationClass" / f"{name}.png", maps[name])
    _image(base / "JPEGImages" / "2008_999999.jpg", 99)  # in the detection set only: no map
    lists = base / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("\n".join(names[:count - 2]) + "\n")
    (lists / "val.txt").write_text("\n".join(names[count - 2:]) + "\n")
    return root / "VOCdevkit", maps


def make_camvid(root, count=4, folders=True):
    """CamVid as on Kaggle (train/ + train_labels/ ..., <name>_L.png RGB masks, class_dict.csv) or flat."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "class_dict.csv").write_text("name,r,g,b\n" + "".join(f"{n},{r},{g},{b}\n" for n, (r, g, b) in CAMVID))
    colours = np.array([c for _, c in CAMVID], dtype=np.uint8)
    ids = {}
    for split in ("train", "val", "test") if folders else ("",):
        for i in range(count if split in ("train", "") else 2):
            name = f"0001TP_{split}{i:04d}"
            image_dir, label_dir = (root / split, root / f"{split}_labels") if folders else (root, root)
            _image(image_dir / f"{name}.png", i)
            ids[name] = _rng(i).integers(0, len(CAMVID), size=(H, W))
            _rgb_png(label_dir / f"{name}_L.png", colours[ids[name]])
    return root, ids


def make_cityscapes(root, count=3):
    """leftImg8bit/<split>/<city>/*_leftImg8bit.png + gtFine labelIds (and the colour/instance files beside them)."""
    label_ids = [row[1] for row in CITYSCAPES_LABELS]
    maps = {}
    for split, cities in (("train", ("aachen", "bremen")), ("val", ("frankfurt",))):
        for city in cities:
            for i in range(count if split == "train" else 2):
                stem = f"{city}_{i:06d}_000019"
                _image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", i)
                maps[stem] = _ids(hash(stem) % 1000, label_ids)
                gt = root / "gtFine" / split / city
                _grey_png(gt / f"{stem}_gtFine_labelIds.png", maps[stem])
                _grey_png(gt / f"{stem}_gtFine_instanceIds.png", maps[stem])
                _rgb_png(gt / f"{stem}_gtFine_color.png", np.zeros((H, W, 3), np.uint8))
    (root / "leftImg8bit" / "test" / "berlin").mkdir(parents=True)  # shipped without annotations
    _image(root / "leftImg8bit" / "test" / "berlin" / "berlin_000000_000019_leftImg8bit.png", 7)
    return root, maps


def make_ade20k(root, count=4):
    """ADEChallengeData2016/images/{training,validation}/*.jpg + annotations/.../*.png (0 other, 1-150)."""
    base = root / "ADEChallengeData2016"
    maps = {}
    for split, prefix, n in (("training", "ADE_train", count), ("validation", "ADE_val", 2)):
        for i in range(n):
            name = f"{prefix}_{i + 1:08d}"
            _image(base / "images" / split / f"{name}.jpg", i)
            maps[name] = _ids(i + 50, [0, 1, 2, 13, 150])
            _grey_png(base / "annotations" / split / f"{name}.png", maps[name])
    (base / "objectInfo150.csv").write_text("Idx,Ratio,Train,Val,Name\n1,0.1,1,1,wall\n")
    return root, maps


LAYOUTS = {"voc": make_voc, "camvid": make_camvid, "cityscapes": make_cityscapes, "ade20k": make_ade20k}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layout_is_found_and_read_with_its_own_rule(tmp_path, layout):
    root, maps = LAYOUTS[layout](tmp_path / layout)
    assert detect_layout(root) == layout
    data = ImageMaskFolder(root)
    assert data.layout == layout and len(data) == len(maps)
    for (image_path, mask_path), item in zip(data.samples, (data[i] for i in range(len(data)))):
        raw = maps[next(k for k in maps if image_path.stem.startswith(k))]
        ids = item["mask"].numpy()
        assert item["image"].shape == (3, H, W) and ids.shape == (H, W)
        if layout == "voc":
            assert np.array_equal(ids, raw)  # palette index = id, 255 stays the ignore index
        elif layout == "cityscapes":
            train = {ident: t for _, ident, t, _ in CITYSCAPES_LABELS}
            assert np.array_equal(ids, np.vectorize(train.get)(raw))
        elif layout == "ade20k":
            assert np.array_equal(ids, np.where(raw == 0, 255, raw.astype(np.int64) - 1))
        else:
            assert np.array_equal(ids, raw)
    assert data.num_classes == {"voc": 21, "camvid": 4, "cityscapes": 19, "ade20k": 150}[layout]
    assert data.classes[:1] == {"voc": ("background",), "camvid": ("Sky",), "cityscapes": ("road",),
                                "ade20k": ("wall",)}[layout]


def test_splits_follow_the_data_sets_own_lists_and_folders(tmp_path):
    voc, _ = make_voc(tmp_path / "voc")
    data = ImageMaskFolder(voc, split="val")
    assert data.splits == {"train": 4, "val": 2} and [p.stem for p, _ in data.samples] == ["2007_000004", "2007_000005"]
    assert (data.train_split, data.test_split) == ("train", "val")
    assert ImageMaskFolder(voc / "VOC2012").root == data.root  # VOCdevkit/ or VOC2012/ given
    city, _ = make_cityscapes(tmp_path / "city")
    assert ImageMaskFolder(city).splits == {"train": 6, "val": 2}  # test has no gtFine: left out
    camvid, _ = make_camvid(tmp_path / "camvid")
    assert ImageMaskFolder(camvid).splits == {"train": 4, "val": 2, "test": 2}
    assert ImageMaskFolder(camvid).test_split == "test"
    ade, _ = make_ade20k(tmp_path / "ade")
    assert ImageMaskFolder(ade, split="training").splits == {"training": 4, "validation": 2}
    with pytest.raises(MixMaskError, match="split 'nope' not found.*training, validation"):
        ImageMaskFolder(ade, split="nope")


def test_roots_as_given_and_forced_layouts(tmp_path):
    ade, _ = make_ade20k(tmp_path / "ade")
    assert ImageMaskFolder(ade / "ADEChallengeData2016").root == ImageMaskFolder(ade).root
    camvid = tmp_path / "CamVid"  # the original release: sibling folders of stills and labels
    (camvid / "701_StillsRaw_full").mkdir(parents=True)
    for i in range(3):
        _image(camvid / "701_StillsRaw_full" / f"0001TP_00{i}.png", i)
        _rgb_png(camvid / "LabeledApproved_full" / f"0001TP_00{i}_L.png",
                 np.array([c for _, c in CAMVID], np.uint8)[_rng(i).integers(0, 4, size=(H, W))])
    (camvid / "label_colors.txt").write_text("".join(f"{r} {g} {b}\t{n}\n" for n, (r, g, b) in CAMVID))
    data = ImageMaskFolder(camvid)
    assert data.layout == "camvid" and len(data) == 3 and data.classes[-1] == "Void"
    flat = tmp_path / "flat"
    for i in range(2):
        _image(flat / f"{i}.png", i)
        _grey_png(flat / f"{i}_mask.png", _ids(i, [0, 1]))
    for layout, words in (("cityscapes", "lacks 'leftImg8bit/' and 'gtFine/'"), ("voc", "JPEGImages/"),
                          ("ade20k", "annotations/"), ("split", "images/ and masks/")):
        with pytest.raises(MixMaskError, match=f"--layout {layout}: expected .*{words}"):
            ImageMaskFolder(flat, layout=layout)
    with pytest.raises(MixMaskError, match="unknown layout 'kitti'; valid: auto, flat, split, voc"):
        ImageMaskFolder(flat, layout="kitti")
    assert ImageMaskFolder(flat, layout="flat").rule == "the file values are the ids"


def test_camvid_without_split_folders_and_the_colour_table_formats(tmp_path):
    root, ids = make_camvid(tmp_path / "c", folders=False)
    data = ImageMaskFolder(root)
    assert data.layout == "camvid" and len(data) == 4 and data.classes == tuple(n for n, _ in CAMVID)
    assert np.array_equal(data[0]["mask"].numpy(), ids[data.samples[0][0].stem])
    lookup, names = read_colors(root / "class_dict.csv")
    as_json = tmp_path / "t.json"
    as_json.write_text(json.dumps([{"name": n, "color": list(c)} for n, c in CAMVID]))
    as_txt = tmp_path / "label_colors.txt"
    as_txt.write_text("".join(f"{r} {g} {b}\t{n}\n" for n, (r, g, b) in CAMVID))
    for other in (as_json, as_txt):
        assert read_colors(other) == (lookup, names)
    void = tmp_path / "void.json"  # a colour may mark unlabelled pixels instead of a class
    void.write_text(json.dumps([{"name": n, "color": list(c)} for n, c in CAMVID[:3]]
                               + [{"name": "void", "color": [0, 0, 0], "id": 255}]))
    data = ImageMaskFolder(root, colors=void)
    assert data.num_classes == 3 and int(data[0]["mask"].max()) == 255
    names_file = tmp_path / "names.txt"
    names_file.write_text("# CamVid\nsky\nroad\ncar\nvoid\n")
    assert read_class_names(names_file) == ["sky", "road", "car", "void"]
    assert ImageMaskFolder(root, classes=read_class_names(names_file)).classes[0] == "sky"


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_cli_check_train_and_preview_on_each_layout(tmp_path, capsys, layout):
    root, _ = LAYOUTS[layout](tmp_path / layout)
    assert main(["data", "check", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"layout: {layout}" in out and "problems: none" in out and "classes present" in out
    run = tmp_path / "run"
    assert main(["train", "--data", f"seg-folder:{root}", "--model", "unet:width=4", "--epochs", "1", "--batch-size",
                 "4", "--no-progress", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["ignore_index"] == 255 and config["dataset"]["layout"] == layout
    assert config["dataset"]["num_classes"] == len(config["dataset"]["classes"]) == \
        {"voc": 21, "camvid": 4, "cityscapes": 19, "ade20k": 150}[layout]
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["test_iou_per_class"]) == config["dataset"]["num_classes"]
    printed = capsys.readouterr().out
    assert "test IoU per class: " + config["dataset"]["classes"][0] in printed
    assert (run / "predictions.png").is_file()
    picture = tmp_path / "preview.png"
    assert main(["preview", "--task", "segmentation", "--data", f"seg-folder:{root}", "--count", "2", "--size", "32",
                 "--methods", "cutmix,gridmask", "--out", str(picture)]) == 0
    with Image.open(picture) as im:
        assert im.format == "PNG" and im.size[1] > 200


def test_compare_takes_the_label_options_into_every_run(tmp_path):
    root, _ = make_camvid(tmp_path / "camvid", count=6, folders=False)
    (root / "class_dict.csv").unlink()  # the table and the names come from the command line
    table = tmp_path / "colors.json"
    table.write_text(json.dumps([{"name": n, "color": list(c)} for n, c in CAMVID[:3]]
                                + [{"name": "void", "color": [0, 0, 0], "id": 250}]))
    names = tmp_path / "names.txt"
    names.write_text("sky\nroad\ncar\n")
    out = tmp_path / "cmp"
    assert main(["compare", "--data", f"seg-folder:{root}", "--model", "unet:width=4,depth=3", "--epochs", "1",
                 "--batch-size", "2", "--no-progress", "--mix", "none,cutmix", "--seeds", "1", "--colors", str(table),
                 "--class-names", str(names), "--ignore-index", "250", "--out", str(out)]) == 0
    assert json.loads((out / "compare.json").read_text())["metric"] == "test_miou"
    for spec in ("none", "cutmix"):
        config = json.loads((out / spec / "seed0" / "config.json").read_text())
        assert (config["colors"], config["class_names"], config["ignore_index"]) == (str(table), str(names), 250)
        assert config["dataset"]["classes"] == ["sky", "road", "car"] and config["dataset"]["layout"] == "camvid"
        summary = json.loads((out / spec / "seed0" / "summary.json").read_text())
        assert sorted(summary["test_iou_per_class"]) == ["car", "road", "sky"]


def test_train_uses_the_data_sets_own_train_and_test_splits(tmp_path):
    root, _ = make_voc(tmp_path / "voc", count=10)
    from mixmask.train import load_data

    data = load_data(f"seg-folder:{root}")
    assert len(data.train) == 8 and len(data.test) == 2 and data.classes == list(VOC_CLASSES)
    city = load_data(f"seg-folder:{make_cityscapes(tmp_path / 'city')[0]}")
    assert (len(city.train), len(city.test)) == (6, 2) and city.classes == list(CITYSCAPES_CLASSES)
    ade = load_data(f"seg-folder:{make_ade20k(tmp_path / 'ade')[0]}", ignore_index=250)
    assert ade.ignore_index == 250 and ade.classes == list(ADE20K_CLASSES)
    assert int(ade.test[0][1].max()) == 250


# -- bad input --------------------------------------------------------------------------------------

def _message(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mixmask ")
    return err


def test_palette_masks_in_a_colour_layout_and_colour_masks_in_a_palette_layout(tmp_path, capsys):
    root, _ = make_camvid(tmp_path / "camvid", folders=False)
    mask = sorted(root.glob("*_L.png"))[1]
    _palette_png(mask, _ids(3, [0, 1, 2]))
    assert main(["data", "check", str(root)]) == 2
    err = _message(capsys)
    assert "palette (P)" in err and mask.name in err and "colour table" in err
    voc, _ = make_voc(tmp_path / "voc")
    bad = sorted((voc / "VOC2012" / "SegmentationClass").glob("*.png"))[:2]
    for path in bad:
        _rgb_png(path, np.zeros((H, W, 3), np.uint8))
    with pytest.raises(MixMaskError, match="RGB colour") as err:
        ImageMaskFolder(voc)
    assert all(p.name in str(err.value) for p in bad) and "--colors FILE" in str(err.value)


def test_missing_list_entries_sizes_and_unknown_colours_all_in_one_pass(tmp_path, capsys):
    voc, _ = make_voc(tmp_path / "voc")
    base = voc / "VOC2012"
    (base / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000004\nghost_1\nghost_2\n")
    (base / "SegmentationClass" / "2007_000005.png").unlink()
    _image(base / "JPEGImages" / "2007_000001.jpg", 1, size=(H + 2, W))
    out = tmp_path / "run"
    assert main(["train", "--data", f"seg-folder:{voc}", "--out", str(out)]) == 2
    err = _message(capsys)
    for word in ("ghost_1 (no image, no mask)", "ghost_2", "2007_000001.jpg' is 32x26", "is 32x24"):
        assert word in err
    assert not out.exists()  # nothing written before the data passed its checks
    camvid, _ = make_camvid(tmp_path / "camvid")
    masks = sorted((camvid / "train_labels").glob("*.png"))
    for k, path in enumerate(masks[:2]):
        rgb = np.array(Image.open(path))
        rgb[0, :3 + k] = (1, 2, 3)
        _rgb_png(path, rgb)
    report = check_folder(camvid)
    assert len(report.problems) == 1 and "2 of 8 pairs" in report.problems[0]
    assert "(1, 2, 3) x3" in report.problems[0] and "(1, 2, 3) x4" in report.problems[0]
    assert main(["train", "--data", f"seg-folder:{camvid}", "--out", str(out)]) == 2
    assert masks[0].name in _message(capsys) and not out.exists()


def test_values_outside_the_rule_and_ids_beyond_the_classes(tmp_path, capsys):
    ade, _ = make_ade20k(tmp_path / "ade")
    path = sorted((ade / "ADEChallengeData2016" / "annotations" / "training").glob("*.png"))[0]
    _grey_png(path, _ids(0, [0, 1, 151, 200]))
    assert main(["data", "check", str(ade)]) == 2
    err = _message(capsys)
    assert path.name in err and "151 x" in err and "200 x" in err and "reduce zero label" in err
    flat = tmp_path / "flat"
    for i in range(4):
        _image(flat / f"{i}.png", i)
        _grey_png(flat / f"{i}_mask.png", _ids(i, [0, 1, 2, 5]))
    assert main(["data", "check", str(flat), "--num-classes", "3"]) == 2
    assert "ids in [0, 3)" in _message(capsys)
    assert main(["train", "--data", f"seg-folder:{flat}", "--num-classes", "3", "--out", str(tmp_path / "r")]) == 2
    assert "ids up to 5" in _message(capsys) and not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, words", [
    (["--data", "digits", "--colors", "x.csv"], "--colors applies to seg-folder"),
    (["--data", "digits", "--ignore-index", "0"], "--ignore-index applies to segmentation"),
    (["--data", "shapes", "--layout", "voc"], "--layout applies to seg-folder"),
    (["--data", "seg-folder:.", "--layout", "kitti"], "unknown layout 'kitti'"),
])
def test_label_options_speak_cli(tmp_path, capsys, args, words):
    assert main(["train", *args, "--out", str(tmp_path / "r")]) == 2
    assert words in _message(capsys)


def test_colour_masks_without_a_table_say_which_option(tmp_path, capsys):
    root, _ = make_camvid(tmp_path / "c", folders=False)
    (root / "class_dict.csv").unlink()
    assert main(["data", "check", str(root)]) == 2
    err = _message(capsys)
    assert "class_dict.csv" in err and "--colors FILE" in err and "colors=" not in err.split("in Python")[-1]
    names = tmp_path / "names.txt"
    names.write_text("a\nb\n")
    table = tmp_path / "t.csv"
    table.write_text("".join(f"{n},{r},{g},{b}\n" for n, (r, g, b) in CAMVID))
    assert main(["data", "check", str(root), "--colors", str(table), "--class-names", str(names)]) == 2
    assert "--class-names gives 2 names" in _message(capsys)
    assert main(["data", "check", str(root), "--colors", str(table)]) == 0
    assert "Sky" in capsys.readouterr().out
