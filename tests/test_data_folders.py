"""ImageMaskFolder and ClassFolder: layouts, mask encodings, read-only use, and every error naming its files."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader

from mixmask import CutMix, MixCollate, MixMaskError
from mixmask.data import ClassFolder, ImageMaskFolder
from mixmask.data.folders import read_mask

RNG = np.random.Generator(np.random.PCG64(1234))
COLORS = {(0, 0, 0): 0, (255, 0, 0): 1, (0, 255, 0): 2, (0, 0, 255): 3}


def _ids(h=12, w=16, high=4):
    return RNG.integers(0, high, size=(h, w))


def _rgb(h=12, w=16):
    return RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if mode == "P":
        image.putpalette([c for color in COLORS for c in color] + [128] * 3 * 252)
    image.save(path)


def _colour_map(ids):
    table = {v: k for k, v in COLORS.items()}
    return np.array([[table[int(i)] for i in row] for row in ids], dtype=np.uint8)


def _state(root):
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_flat_layout_jpg_and_png_images_with_8_bit_masks(tmp_path):
    ids_a, ids_b = _ids(), _ids()
    _save(tmp_path / "a.jpg", _rgb())
    _save(tmp_path / "a_mask.png", ids_a.astype(np.uint8))
    png = _rgb()
    _save(tmp_path / "b.png", png)
    _save(tmp_path / "b_mask.png", ids_b.astype(np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    data = ImageMaskFolder(tmp_path)
    assert data.layout == "flat" and len(data) == 2
    assert [p.name for pair in data.samples for p in pair] == ["a.jpg", "a_mask.png", "b.png", "b_mask.png"]
    item = data[1]
    assert set(item) == {"image", "mask"}
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 12, 16)
    assert item["mask"].dtype == torch.int64 and item["mask"].shape == (12, 16)
    assert torch.equal(item["image"], torch.from_numpy(png).permute(2, 0, 1))
    assert torch.equal(item["mask"], torch.from_numpy(ids_b))
    assert torch.equal(data[0]["mask"], torch.from_numpy(ids_a))


def test_split_layout_with_16_bit_masks(tmp_path):
    ids = _ids(high=1000) * 60  # ids above 255 need 16 bits
    _save(tmp_path / "images" / "x1.png", _rgb())
    _save(tmp_path / "masks" / "x1.png", ids.astype(np.uint16))
    data = ImageMaskFolder(tmp_path)
    assert data.layout == "split"
    assert int(data[0]["mask"].max()) > 255
    assert torch.equal(data[0]["mask"], torch.from_numpy(ids))


def test_palette_masks_give_indices_or_colours_through_the_table(tmp_path):
    ids = _ids()
    _save(tmp_path / "p.png", _rgb())
    _save(tmp_path / "p_mask.png", ids.astype(np.uint8), mode="P")
    assert torch.equal(ImageMaskFolder(tmp_path)[0]["mask"], torch.from_numpy(ids))
    swapped = {(0, 0, 0): 0, (255, 0, 0): 3, (0, 255, 0): 2, (0, 0, 255): 1}  # palette colours, other ids
    expected = torch.from_numpy(np.array([0, 3, 2, 1])[ids])
    assert torch.equal(ImageMaskFolder(tmp_path, colors=swapped)[0]["mask"], expected)


@pytest.mark.parametrize("as_list", [False, True])
@pytest.mark.parametrize("alpha", [False, True])
def test_rgb_masks_map_through_the_colour_table(tmp_path, as_list, alpha):
    ids = _ids()
    rgb = _colour_map(ids)
    if alpha:
        rgb = np.concatenate([rgb, np.full(ids.shape + (1,), 255, np.uint8)], axis=-1)
    _save(tmp_path / "c.png", _rgb())
    _save(tmp_path / "c_mask.png", rgb)
    table = list(COLORS) if as_list else COLORS
    assert torch.equal(ImageMaskFolder(tmp_path, colors=table)[0]["mask"], torch.from_numpy(ids))


def test_nothing_is_written_to_the_users_folder(tmp_path):
    for name in ("a", "b"):
        _save(tmp_path / f"{name}.png", _rgb())
        _save(tmp_path / f"{name}_mask.png", _colour_map(_ids()))
    before = _state(tmp_path)
    data = ImageMaskFolder(tmp_path, colors=COLORS)
    data.verify()
    [data[i] for i in range(len(data))]
    assert _state(tmp_path) == before


def test_items_feed_a_mixing_collate(tmp_path):
    for name in "abcd":
        _save(tmp_path / f"{name}.png", _rgb())
        _save(tmp_path / f"{name}_mask.png", _ids().astype(np.uint8))
    loader = DataLoader(ImageMaskFolder(tmp_path), batch_size=4,
                        collate_fn=MixCollate(CutMix(seed=0), targets="masks", seed=0))
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, 12, 16) and batch["image"].dtype == torch.uint8
    assert batch["mask"].shape == (4, 12, 16) and batch["mask"].dtype == torch.int64


# -- errors: each names every offending file ------------------------------------------------------

def _names_all(err, *names):
    message = str(err.value)
    missing = [n for n in names if n not in message]
    assert not missing, f"{missing} not named in: {message}"


def test_images_without_masks_and_masks_without_images_are_all_named(tmp_path):
    for name in ("ok", "lone1", "lone2"):
        _save(tmp_path / f"{name}.png", _rgb())
    for name in ("ok", "orphan1", "orphan2"):
        _save(tmp_path / f"{name}_mask.png", _ids().astype(np.uint8))
    with pytest.raises(MixMaskError, match="without a mask") as err:
        ImageMaskFolder(tmp_path)
    _names_all(err, "lone1.png", "lone2.png", "orphan1_mask.png", "orphan2_mask.png", "without an image")
    assert "'ok.png'" not in str(err.value)


def test_split_layout_unmatched_stems_are_named(tmp_path):
    _save(tmp_path / "images" / "a.png", _rgb())
    _save(tmp_path / "images" / "b.png", _rgb())
    _save(tmp_path / "masks" / "a.png", _ids().astype(np.uint8))
    _save(tmp_path / "masks" / "c.png", _ids().astype(np.uint8))
    with pytest.raises(MixMaskError) as err:
        ImageMaskFolder(tmp_path)
    _names_all(err, "images/b.png", "masks/c.png")


def test_size_mismatches_are_all_named(tmp_path):
    for name in ("a", "b", "c"):
        _save(tmp_path / f"{name}.png", _rgb(12, 16))
    _save(tmp_path / "a_mask.png", _ids(12, 16).astype(np.uint8))
    _save(tmp_path / "b_mask.png", _ids(10, 16).astype(np.uint8))
    _save(tmp_path / "c_mask.png", _ids(12, 15).astype(np.uint8))
    with pytest.raises(MixMaskError, match="sizes differ") as err:
        ImageMaskFolder(tmp_path)
    _names_all(err, "b.png", "b_mask.png", "16x10", "c_mask.png", "15x12")
    assert "a_mask.png" not in str(err.value)


def test_unreadable_files_are_all_named(tmp_path):
    _save(tmp_path / "a.png", _rgb())
    _save(tmp_path / "a_mask.png", _ids().astype(np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg at all")
    _save(tmp_path / "b_mask.png", _ids().astype(np.uint8))
    _save(tmp_path / "c.png", _rgb())
    (tmp_path / "c_mask.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(MixMaskError, match="unreadable") as err:
        ImageMaskFolder(tmp_path)
    _names_all(err, "b.jpg", "c_mask.png")


def test_truncated_file_is_named_when_read(tmp_path):
    _save(tmp_path / "a.png", _rgb(64, 64))
    _save(tmp_path / "a_mask.png", _ids(64, 64).astype(np.uint8))
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "a.png").write_bytes(data[:len(data) // 2])  # the header still reads
    folder = ImageMaskFolder(tmp_path)
    with pytest.raises(MixMaskError, match=re.escape(str(tmp_path / "a.png"))):
        folder[0]


def test_unknown_colours_name_the_file_and_the_colours(tmp_path):
    for name in ("a", "b", "c"):
        _save(tmp_path / f"{name}.png", _rgb())
    good = _colour_map(_ids())
    bad = good.copy()
    bad[0, 0] = (9, 9, 9)
    _save(tmp_path / "a_mask.png", good)
    _save(tmp_path / "b_mask.png", bad)
    _save(tmp_path / "c_mask.png", bad)
    data = ImageMaskFolder(tmp_path, colors=COLORS)
    with pytest.raises(MixMaskError, match=r"unknown colour.*\(9, 9, 9\) x1") as err:
        data[1]
    _names_all(err, "b_mask.png")
    with pytest.raises(MixMaskError, match="2 of 3 pairs") as err:
        data.verify()
    _names_all(err, "b_mask.png", "c_mask.png")


def test_colour_masks_without_a_table_are_named(tmp_path):
    for name in ("a", "b"):
        _save(tmp_path / f"{name}.png", _rgb())
        _save(tmp_path / f"{name}_mask.png", _colour_map(_ids()))
    with pytest.raises(MixMaskError, match="colors=") as err:
        ImageMaskFolder(tmp_path)
    _names_all(err, "a_mask.png", "b_mask.png")


def test_ambiguous_stems_and_lossy_masks_are_named(tmp_path):
    _save(tmp_path / "a.png", _rgb())
    _save(tmp_path / "a.jpg", _rgb())
    _save(tmp_path / "a_mask.png", _ids().astype(np.uint8))
    _save(tmp_path / "b.png", _rgb())
    _save(tmp_path / "b_mask.jpg", _ids().astype(np.uint8))
    with pytest.raises(MixMaskError) as err:
        ImageMaskFolder(tmp_path)
    _names_all(err, "ambiguous", "'a.png'", "'a.jpg'", "must be PNG", "b_mask.jpg")


def test_unsupported_mask_mode_is_named(tmp_path):
    _save(tmp_path / "a.png", _rgb())
    Image.fromarray(RNG.integers(0, 4, size=(12, 16), dtype=np.uint8)).convert("LA").save(tmp_path / "a_mask.png")
    with pytest.raises(MixMaskError, match="unsupported mode") as err:
        ImageMaskFolder(tmp_path)
    _names_all(err, "a_mask.png", "'LA'")


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(MixMaskError, match="is not a folder"):
        ImageMaskFolder(tmp_path / "nope")
    with pytest.raises(MixMaskError, match="found none"):
        ImageMaskFolder(tmp_path)


@pytest.mark.parametrize("colors, match", [
    ({(0, 0): 1}, "triples"), ({(0, 0, 300): 1}, r"\[0, 255\]"), ({(0, 0, 0): -1}, "ids >= 0"),
    ([(1, 2, 3), (1, 2, 3)], "two ids"), ({}, "at least one")])
def test_bad_colour_tables(tmp_path, colors, match):
    with pytest.raises(MixMaskError, match=match):
        ImageMaskFolder(tmp_path, colors=colors)


def test_read_mask_rgb_without_table_says_what_to_pass(tmp_path):
    _save(tmp_path / "m.png", _colour_map(_ids()))
    with pytest.raises(MixMaskError, match="--colors FILE"):
        read_mask(tmp_path / "m.png")


# -- ClassFolder ----------------------------------------------------------------------------------

def _class_tree(root):
    for cls, count in (("cat", 2), ("dog", 3)):
        for i in range(count):
            _save(root / cls / ("nested" if i == 2 else "") / f"{i}.png", _rgb(8, 8))
    (root / "dog" / "readme.txt").write_text("ignored")


def test_class_folder_lists_classes_and_targets(tmp_path):
    _class_tree(tmp_path)
    data = ClassFolder(tmp_path)
    assert data.classes == ["cat", "dog"] and data.class_to_idx == {"cat": 0, "dog": 1}
    assert data.targets == [0, 0, 1, 1, 1] and len(data) == 5
    assert data.samples[-1][0] == tmp_path / "dog" / "nested" / "2.png"
    image, target = data[3]
    assert image.dtype == torch.uint8 and image.shape == (3, 8, 8) and target == 1
    flipped = ClassFolder(tmp_path, transform=lambda x: x.flip(-1))
    assert torch.equal(flipped[3][0], image.flip(-1))
    inputs, labels = next(iter(DataLoader(data, batch_size=5, collate_fn=MixCollate(CutMix(num_classes=2, seed=0)))))
    assert inputs.shape == (5, 3, 8, 8) and labels.shape == (5, 2)
    assert torch.allclose(labels.sum(1), torch.ones(5))


def test_class_folder_errors(tmp_path):
    with pytest.raises(MixMaskError, match="is not a folder"):
        ClassFolder(tmp_path / "missing")
    with pytest.raises(MixMaskError, match="no sub-folders"):
        ClassFolder(tmp_path)
    _class_tree(tmp_path)
    (tmp_path / "empty1").mkdir()
    (tmp_path / "empty2").mkdir()
    (tmp_path / "empty2" / "a.txt").write_text("x")
    with pytest.raises(MixMaskError, match="2 have none") as err:
        ClassFolder(tmp_path)
    _names_all(err, "'empty1'", "'empty2'")
    os.rmdir(tmp_path / "empty1")
    (tmp_path / "empty2" / "bad.png").write_bytes(b"garbage")
    with pytest.raises(MixMaskError, match=re.escape("'empty2/bad.png' (cannot identify image file")):
        ClassFolder(tmp_path)  # headers are read when the folder is built
    good = tmp_path / "empty2" / "good.png"
    _save(good, _rgb())
    good.write_bytes(good.read_bytes()[:-40])  # truncated: the header reads, the pixels do not
    (tmp_path / "empty2" / "bad.png").unlink()
    data = ClassFolder(tmp_path)
    with pytest.raises(MixMaskError, match=re.escape(str(good))):
        data[len(data) - 1]
    with pytest.raises(MixMaskError, match="1 image\\(s\\) failed to decode: .*good.png"):
        ClassFolder(tmp_path, verify=True)


def test_every_kind_of_problem_is_reported_at_once(tmp_path):
    _save(tmp_path / "lone.png", _rgb())
    _save(tmp_path / "orphan_mask.png", _ids().astype(np.uint8))
    _save(tmp_path / "small.png", _rgb(12, 16))
    _save(tmp_path / "small_mask.png", _ids(6, 8).astype(np.uint8))
    _save(tmp_path / "broken.png", _rgb())
    (tmp_path / "broken_mask.png").write_bytes(b"\x89PNG")
    with pytest.raises(MixMaskError) as err:
        ImageMaskFolder(tmp_path)
    _names_all(err, "'lone.png'", "'orphan_mask.png'", "'small_mask.png' is 8x6", "'broken_mask.png'")


def test_narrow_mask_dtype_and_its_range_check(tmp_path):
    ids = _ids(high=300)
    ids[0, :2] = (0, 299)
    _save(tmp_path / "a.png", _rgb())
    _save(tmp_path / "a_mask.png", ids.astype(np.uint16))
    assert ImageMaskFolder(tmp_path, mask_dtype=torch.int16)[0]["mask"].dtype == torch.int16
    with pytest.raises(MixMaskError, match=r"a_mask.png' has ids from 0 to 299"):
        ImageMaskFolder(tmp_path, mask_dtype=torch.uint8)[0]
    with pytest.raises(MixMaskError, match="mask_dtype"):
        ImageMaskFolder(tmp_path, mask_dtype=torch.float32)


@given(st.lists(st.tuples(*[st.integers(0, 255)] * 3), min_size=1, max_size=12, unique=True),
       st.integers(0, 2**32 - 1))
def test_colour_lookup_inverts_any_table(colours, seed):
    from mixmask.data.folders import _map_colors

    gen = np.random.Generator(np.random.PCG64(seed))
    ids = gen.integers(0, len(colours), size=(5, 7))
    table = {c: 10 * i for i, c in enumerate(colours)}  # ids need not be 0..K-1
    rgb = np.array(colours, dtype=np.uint8)[ids]
    assert np.array_equal(_map_colors(rgb, table, "x.png"), 10 * ids)
