"""The preview picture: drawn from the same functions as the transforms, written as a real PNG."""

from __future__ import annotations

import pytest
import torch

from mixmask.cli.main import main
from mixmask.errors import MixMaskError
from mixmask.functional.kernels import mix_inputs
from mixmask.viz.previews import PREVIEW_METHODS, demo_maps, draw_preview_params, save_classification_preview

from conftest import cli_error

PIL = pytest.importorskip("PIL.Image")


def _photos(count: int = 3, size: int = 24) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (count, 3, size, size), generator=gen, dtype=torch.uint8)


@pytest.mark.parametrize("method", PREVIEW_METHODS)
def test_preview_params_are_consistent(method):
    images = _photos(count=4, size=20)[:, :, :16]
    params, picture = draw_preview_params(method, 4, (16, 20), torch.Generator().manual_seed(1), images=images)
    assert torch.allclose(params.mask.float().mean((1, 2)), params.lam, atol=1e-6)
    assert (params.index != torch.arange(4)).all()
    assert (picture is not None) == (method in ("fmix", "saliencymix", "classmix"))
    if picture is not None:
        assert picture.shape == (4, 16, 20)


def test_preview_pictures_are_what_the_masks_are_made_from():
    images = _photos(count=4, size=24)
    params, saliency = draw_preview_params("saliencymix", 4, (24, 24), torch.Generator().manual_seed(2), images=images)
    for i in range(4):  # the partner's saliency peak is inside the pasted box
        assert not bool(params.mask[i].view(-1)[int(saliency[i].argmax())])
    maps = demo_maps(images)
    params, picture = draw_preview_params("classmix", 4, (24, 24), torch.Generator().manual_seed(3), images=images)
    assert torch.equal(picture, maps[params.index].float() / int(maps.max()))
    assert set(maps.unique().tolist()) <= {0, 1, 2, 3}


def test_fmix_grey_image_is_the_one_thresholded():
    gen = torch.Generator().manual_seed(3)
    params, grey = draw_preview_params("fmix", 3, (16, 16), gen)
    flat, kept = grey.reshape(3, -1), params.mask.reshape(3, -1)
    for row in range(3):
        if 0 < kept[row].sum() < kept.shape[1]:
            assert flat[row][kept[row]].min() > flat[row][~kept[row]].max()


def test_preview_png_written(tmp_path):
    path = save_classification_preview(tmp_path / "sub" / "p.png", _photos(), seed=2)
    with PIL.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100


def test_preview_rejects_a_single_image(tmp_path):
    with pytest.raises(MixMaskError, match="B >= 2"):
        save_classification_preview(tmp_path / "p.png", _photos(count=1))


def test_cli_preview_on_user_images(tmp_path, capsys):
    files = []
    for i, image in enumerate(_photos(count=2, size=40)):
        files.append(tmp_path / f"im{i}.png")
        PIL.fromarray(image.permute(1, 2, 0).numpy()).save(files[-1])
    out = tmp_path / "preview.png"
    code = main(["preview", "--images", *map(str, files), "--size", "32", "--methods", "cutmix,fmix",
                 "--out", str(out)])
    assert code == 0 and out.is_file()
    assert capsys.readouterr().out.strip() == str(out)


def test_cli_preview_unreadable_image_names_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    assert main(["preview", "--images", str(bad), "--out", str(tmp_path / "p.png")]) == 2
    assert "broken.png" in capsys.readouterr().err


def test_preview_mixed_rows_match_kernel():
    images = _photos()
    params, _ = draw_preview_params("cutmix", 3, (24, 24), torch.Generator().manual_seed(5))
    mixed = mix_inputs(images, params)
    keep = params.mask[:, None].expand_as(images)
    assert torch.equal(mixed[keep], images[keep])
    assert torch.equal(mixed[~keep], images[params.index][~keep])


def test_signal_preview_of_real_mnist1d_batches(tmp_path):
    pytest.importorskip("mnist1d")
    out = tmp_path / "signals.png"
    assert main(["preview", "--data", "mnist1d", "--count", "3", "--methods", "cutmix,gridmask", "--out",
                 str(out)]) == 0
    with PIL.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 300


def test_signal_preview_refuses_bad_batches_and_mixed_options(tmp_path, capsys):
    from mixmask.viz.previews import save_signal_preview

    with pytest.raises(MixMaskError, match=r"float \(B >= 2, C, L\)"):
        save_signal_preview(tmp_path / "x.png", torch.zeros(1, 1, 40), torch.zeros(1, dtype=torch.long))
    with pytest.raises(MixMaskError, match=r"\(2,\) labels"):
        save_signal_preview(tmp_path / "x.png", torch.zeros(2, 1, 40), torch.zeros(3, dtype=torch.long))
    assert main(["preview", "--data", "mnist1d", "--task", "segmentation", "--out", str(tmp_path / "y.png")]) == 2
    assert "classification data set" in capsys.readouterr().err


def test_signal_preview_refuses_methods_that_need_images_or_maps(tmp_path, capsys):
    from mixmask.viz.previews import save_signal_preview

    with pytest.raises(MixMaskError, match="draws mixup, cutmix, fmix, gridmask, but got classmix"):
        save_signal_preview(tmp_path / "x.png", torch.zeros(2, 1, 40), torch.zeros(2, dtype=torch.long),
                            methods=("mixup", "classmix"))
    line = cli_error(capsys, ["preview", "--data", "mnist1d", "--methods", "cutmix,resizemix", "--out",
                              str(tmp_path / "y.png")])
    assert "previews mixup,cutmix,fmix,gridmask, but got --methods resizemix" in line
    assert not (tmp_path / "y.png").exists()


def _seg_files(tmp_path, count=3, size=(20, 28)):
    rng = torch.Generator().manual_seed(1)
    images, masks = [], []
    colours = torch.tensor([[0, 0, 0], [200, 30, 30], [30, 200, 30]], dtype=torch.uint8)
    for i in range(count):
        images.append(tmp_path / f"im{i}.jpg")
        PIL.fromarray(torch.randint(0, 256, (*size, 3), generator=rng, dtype=torch.uint8).numpy()).save(images[-1])
        ids = torch.randint(0, 3, size, generator=rng)
        masks.append(tmp_path / f"im{i}_colours.png")
        PIL.fromarray(colours[ids].numpy()).save(masks[-1])
    table = tmp_path / "colours.csv"
    table.write_text("name,r,g,b\nsoil,0,0,0\nrust,200,30,30\nleaf,30,200,30\n")
    return images, masks, table


def test_cli_segmentation_preview_of_ones_own_maps(tmp_path, capsys):
    images, masks, table = _seg_files(tmp_path)
    heights = []
    for count in (1, 2):
        out = tmp_path / f"own{count}.png"
        code = main(["preview", "--task", "segmentation", "--images", *map(str, images), "--masks", *map(str, masks),
                     "--colors", str(table), "--count", str(count), "--size", "32", "--methods", "cutmix,mixup",
                     "--out", str(out)])
        assert code == 0 and capsys.readouterr().out.strip() == str(out)
        with PIL.open(out) as picture:
            heights.append(picture.size[1])
    assert heights[1] > 1.6 * heights[0]  # a row per method and sample shown


def test_segmentation_preview_uses_the_given_colours_and_white_for_ignored_pixels(tmp_path):
    from mixmask.viz.segmentation import overlay, save_segmentation_preview

    image = torch.full((3, 4, 4), 100, dtype=torch.uint8)
    ids = torch.tensor([[0, 1, 2, 255]] * 4)
    drawn = overlay(image, ids, [(0, 0, 0), (255, 0, 0), (0, 0, 255)], ignore_index=255)
    assert drawn[:, 0, 0].tolist() == [100, 100, 100]                 # background left clear
    assert drawn[:, 0, 1].tolist() == [round(0.3 * 100 + 0.7 * 255), 30, 30]
    assert drawn[:, 0, 3].tolist() == [round(0.3 * 100 + 0.7 * 255)] * 3   # ignore: white
    maps = ids.expand(3, 4, 4).clone()
    path = save_segmentation_preview(tmp_path / "p.png", images=image.expand(3, 3, 4, 4).clone(), maps=maps,
                                     colors=[(0, 0, 0), (255, 0, 0), (0, 0, 255)], class_names=["bg", "a", "b"],
                                     methods=["cutmix"], count=3)
    assert path.is_file()
    with pytest.raises(MixMaskError, match="B >= 2"):
        save_segmentation_preview(tmp_path / "q.png", images=image[None], maps=ids[None])


@pytest.mark.parametrize("args, words", [
    (["--images", "a.png", "b.png", "--masks", "a.png"], "--masks: expected one map per --images file (2)"),
    (["--data", "folder:x"], "--data: expected seg-folder:DIR"),
    (["--data", "seg-folder:nowhere"], "is not a folder"),
])
def test_cli_segmentation_preview_bad_input(tmp_path, capsys, args, words):
    assert main(["preview", "--task", "segmentation", *args, "--out", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and not (tmp_path / "p.png").exists()


def test_cli_segmentation_preview_sizes_that_differ_are_all_named(tmp_path, capsys):
    images, masks, table = _seg_files(tmp_path)
    PIL.fromarray(torch.zeros(10, 10, dtype=torch.uint8).numpy()).save(masks[0])
    PIL.fromarray(torch.zeros(11, 10, dtype=torch.uint8).numpy()).save(masks[2])
    assert main(["preview", "--task", "segmentation", "--images", *map(str, images), "--masks", *map(str, masks),
                 "--colors", str(table), "--out", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert "im0.jpg' is 28x20" in err and "is 10x10" in err and "im2_colours.png' is 10x11" in err
