"""Mixing for segmentation end to end: folder → joint transforms → DataLoader → MixCollate → loss, and the preview."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import tv_tensors

from mixmask import CutMix, FMix, GridMask, MixCollate, MixMaskError, MixUp, RandomChoice, mixed_cross_entropy
from mixmask.data import IGNORE_INDEX, ImageMaskFolder, ShapesDataset, joint_transforms
from mixmask.viz.segmentation import overlay, save_segmentation_preview

K = 5
CODES = torch.tensor([20.0 + 40 * k for k in range(K)])  # pixel value encoding each id; 0 encodes "ignored"
NO_COLOUR = {"brightness": 0, "contrast": 0, "saturation": 0, "hue": 0}

METHODS = {
    "mixup": lambda: MixUp(num_classes=K, ignore_index=IGNORE_INDEX, seed=0),
    "cutmix": lambda: CutMix(ignore_index=IGNORE_INDEX, seed=0),
    "fmix": lambda: FMix(ignore_index=IGNORE_INDEX, seed=0),
    "soft_fmix": lambda: FMix(max_soft=0.2, num_classes=K, ignore_index=IGNORE_INDEX, seed=0),
    "gridmask": lambda: GridMask(fill=0, ignore_index=IGNORE_INDEX, seed=0),
    "choice": lambda: RandomChoice([MixUp(), CutMix(), FMix(), GridMask()], num_classes=K,
                                   ignore_index=IGNORE_INDEX, seed=0),
}


def _encoded_folder(root, count=6, size=(36, 44)):
    """Write images whose pixel values encode the ids of their maps (``20 + 40 * id``)."""
    gen = torch.Generator().manual_seed(0)
    for i in range(count):
        coarse = torch.randint(0, K, (1, 1, 4, 5), generator=gen).float()
        ids = F.interpolate(coarse, size=size, mode="nearest")[0, 0].to(torch.uint8)
        Image.fromarray(CODES[ids.long()].to(torch.uint8)[..., None].expand(*size, 3).numpy()).save(root / f"{i}.png")
        Image.fromarray(ids.numpy()).save(root / f"{i}_mask.png")
    return root


def assert_pixels_encode_targets(image: torch.Tensor, targets: torch.Tensor) -> None:
    """Hard ids: each pixel equals the code of its id (0 where ignored). Soft targets: the weighted codes."""
    if targets.dtype.is_floating_point:
        assert targets.shape == (image.shape[0], K, *image.shape[2:])
        assert float(targets.min()) >= 0 and float(targets.sum(1).max()) <= 1 + 1e-5
        expected = torch.einsum("bkhw,k->bhw", targets, CODES)
        assert float((image.float() - expected.unsqueeze(1)).abs().max()) <= 0.5 + 1e-3
    else:
        ignored = targets == IGNORE_INDEX
        expected = torch.where(ignored, 0.0, CODES[torch.where(ignored, 0, targets)])
        assert torch.equal(image, expected.to(torch.uint8).unsqueeze(1).expand_as(image))


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_keeps_pixel_id_correspondence_through_the_pipeline(tmp_path, name):
    data = ImageMaskFolder(_encoded_folder(tmp_path), transform=joint_transforms(
        32, degrees=30, translate=0.1, interpolation="nearest", seed=0, **NO_COLOUR))
    loader = DataLoader(data, batch_size=6, collate_fn=MixCollate(METHODS[name](), targets="masks", seed=1))
    for _ in range(2):
        batch = next(iter(loader))
        image, targets = batch["image"], batch["mask"]
        assert image.shape == (6, 3, 32, 32) and image.dtype == torch.uint8
        soft = name in ("mixup", "soft_fmix", "choice")
        assert targets.dtype == (torch.float32 if soft else torch.int64)
        assert_pixels_encode_targets(image, targets)
        if not soft:
            assert bool((targets == IGNORE_INDEX).any())  # the rotation's fill survived mixing


def test_two_workers_mix_and_repeat(tmp_path):
    def run():
        data = ImageMaskFolder(_encoded_folder(tmp_path), transform=joint_transforms(
            32, interpolation="nearest", seed=0, **NO_COLOUR))
        loader = DataLoader(data, batch_size=3, num_workers=2, generator=torch.Generator().manual_seed(0),
                            collate_fn=MixCollate(METHODS["choice"](), targets="masks", seed=0))
        return list(loader)

    first, second = run(), run()
    assert len(first) == 2
    for a, b in zip(first, second):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
        assert_pixels_encode_targets(a["image"], a["mask"])
    assert not torch.equal(first[0]["image"], first[1]["image"])


def test_tv_tensors_in_same_types_out():
    items = [ShapesDataset(4, size=16, seed=0)[i] for i in range(4)]
    image = tv_tensors.Image(torch.stack([x["image"] for x in items]))
    mask = tv_tensors.Mask(torch.stack([x["mask"] for x in items]))
    for name, make in METHODS.items():
        out = make()(image, masks=mask, num_classes=4)
        assert type(out.inputs) is tv_tensors.Image and type(out.masks) is tv_tensors.Mask, name
        replay = make()(image, masks=mask, num_classes=4, params=out.params)
        assert torch.equal(replay.inputs, out.inputs)
    assert type(image) is tv_tensors.Image and torch.equal(image, torch.stack([x["image"] for x in items]))


# -- the loss -------------------------------------------------------------------------------------

def _batch(method, seed=0):
    data = ShapesDataset(6, size=24, seed=seed)
    images = torch.stack([data[i]["image"] for i in range(6)])
    maps = torch.stack([data[i]["mask"] for i in range(6)])
    maps[:, :3] = IGNORE_INDEX  # unlabelled rows
    return images, maps, method(num_classes=4, ignore_index=IGNORE_INDEX, seed=seed)(images, masks=maps)


def test_loss_on_hard_mixed_ids_is_cross_entropy_with_ignore():
    _, _, out = _batch(CutMix)
    assert out.masks.dtype == torch.int64 and bool((out.masks == IGNORE_INDEX).any())
    logits = torch.randn(6, 4, 24, 24, generator=torch.Generator().manual_seed(0))
    expected = F.cross_entropy(logits, out.masks, ignore_index=IGNORE_INDEX)
    assert torch.allclose(mixed_cross_entropy(logits, out.masks, ignore_index=IGNORE_INDEX), expected)


def test_loss_on_soft_targets_weights_pixels_by_their_label_mass():
    _, maps, out = _batch(MixUp)
    t = out.masks
    assert t.shape == (6, 4, 24, 24)
    mass = t.sum(1)
    assert torch.allclose(mass[:, 3:], torch.ones_like(mass[:, 3:])) and bool((mass[:, :3] < 1).all())
    logits = torch.randn(6, 4, 24, 24, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    reference = -(t.double() * logits.log_softmax(1)).sum() / t.double().sum()
    loss = mixed_cross_entropy(logits.float(), t)
    assert torch.allclose(loss.double(), reference, atol=1e-5)


def test_soft_loss_with_lam_one_equals_the_hard_loss_with_ignore():
    _, maps, out = _batch(lambda **kw: MixUp(lam=1.0, **kw))
    logits = torch.randn(6, 4, 24, 24, generator=torch.Generator().manual_seed(2), requires_grad=True)
    soft = mixed_cross_entropy(logits, out.masks)
    hard = mixed_cross_entropy(logits, maps, ignore_index=IGNORE_INDEX)
    assert torch.allclose(soft, hard, atol=1e-6)
    soft.backward()
    assert bool(torch.isfinite(logits.grad).all())


# -- the preview ----------------------------------------------------------------------------------

def test_overlay_of_one_hot_targets_equals_overlay_of_ids():
    item = ShapesDataset(1, size=20, seed=2)[0]
    ids = item["mask"].clone()
    ids[:4] = IGNORE_INDEX
    colors = ShapesDataset.colors
    hard = overlay(item["image"], ids, colors, ignore_index=IGNORE_INDEX)
    onehot = F.one_hot(torch.where(ids == IGNORE_INDEX, 0, ids), 4).movedim(-1, 0).float() * (ids != IGNORE_INDEX)
    assert torch.equal(overlay(item["image"], onehot, colors), hard)
    assert hard.dtype == torch.uint8 and hard.shape == (3, 20, 20)
    assert bool((hard[:, :4] >= 178).all())  # ignored rows are washed white
    with pytest.raises(MixMaskError, match=r"ids in \[0, 4\)"):
        overlay(item["image"], ids, colors)


def test_preview_png(tmp_path):
    path = save_segmentation_preview(tmp_path / "sub" / "seg.png", methods=("mixup", "gridmask", "resizemix", "classmix"),
                                     seed=1, size=32)
    assert path == tmp_path / "sub" / "seg.png"
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > png.size[1] > 100
    with pytest.raises(MixMaskError, match="methods"):
        save_segmentation_preview(tmp_path / "x.png", methods=("mixup", "puzzlemix"))
    with pytest.raises(MixMaskError, match="size"):
        save_segmentation_preview(tmp_path / "x.png", size=4)
