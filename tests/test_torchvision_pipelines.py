"""mixmask's own transforms as members of torchvision's v2 containers (Compose, RandomChoice, RandomApply)."""

from __future__ import annotations

import pytest
import torch

from mixmask import CutMix, FMix, GridMask, MixResult, MixUp, RandomChoice
from tests.conftest import assert_untouched, snapshot

v2 = pytest.importorskip("torchvision.transforms.v2")
tv_tensors = pytest.importorskip("torchvision.tv_tensors")

K = 5
MEMBERS = {
    "mixup": lambda: MixUp(num_classes=K, seed=0),
    "cutmix": lambda: CutMix(num_classes=K, seed=0),
    "fmix": lambda: FMix(num_classes=K, seed=0),
    "gridmask": lambda: GridMask(num_classes=K, seed=0),
    "choice": lambda: RandomChoice([MixUp(), CutMix(num_boxes=2)], num_classes=K, seed=0),
}


def _batch(b=6):
    return torch.rand(b, 3, 16, 12), torch.arange(b) % K, torch.randint(0, K, (b, 16, 12))


@pytest.mark.parametrize("name", sorted(MEMBERS))
def test_compose_passes_images_and_labels(name):
    x, y, _ = _batch()
    shots = snapshot(x, y)
    images, labels = v2.Compose([MEMBERS[name]()])(x, y)
    assert_untouched([x, y], shots)
    direct = MEMBERS[name]()(x, y)  # the same seed: the same draw as the direct call
    assert torch.equal(images, direct.inputs) and torch.equal(labels, direct.targets)


@pytest.mark.parametrize("name", ["cutmix", "gridmask", "choice"])
def test_compose_passes_images_labels_and_maps_keeping_torchvision_types(name):
    x, y, maps = _batch()
    image, mask = tv_tensors.Image(x), tv_tensors.Mask(maps)
    pipeline = v2.Compose([v2.RandomVerticalFlip(p=1.0), MEMBERS[name](), v2.RandomHorizontalFlip(p=1.0)])
    images, labels, mixed = pipeline(image, y, mask)
    assert type(images) is tv_tensors.Image and type(mixed) is tv_tensors.Mask and type(labels) is torch.Tensor
    direct = MEMBERS[name]()(image.flip(-2), y, mask.flip(-2))  # the flips around the mix, by hand
    assert torch.equal(images, direct.inputs.flip(-1)) and torch.equal(mixed, direct.masks.flip(-1))
    assert torch.equal(labels, direct.targets)


def test_a_torchvision_transform_after_the_mix_gets_its_outputs():
    x, y, _ = _batch()
    image = tv_tensors.Image((x * 255).to(torch.uint8))
    images, labels = v2.Compose([CutMix(num_classes=K, seed=0), v2.ToDtype(torch.float32, scale=True)])(image, y)
    assert type(images) is tv_tensors.Image and images.dtype == torch.float32 and labels.shape == (6, K)


def test_random_choice_and_random_apply_call_members_alike():
    x, y, _ = _batch()
    torch.manual_seed(0)
    chooser = v2.RandomChoice([MEMBERS["mixup"](), MEMBERS["cutmix"]()])
    seen = {bool(((out := chooser(x, y))[0] == x).any(1).any()) for _ in range(20)}  # CutMix keeps pixels
    assert isinstance(out, MixResult) and seen == {True, False}
    kept = v2.RandomApply([MEMBERS["cutmix"]()], p=0.0)(x, y)
    assert kept[0] is x and kept[1] is y  # not applied: torchvision returns the inputs


def test_videos_keep_their_type_in_compose():
    video = tv_tensors.Video(torch.rand(3, 4, 3, 8, 8))
    clips, labels = v2.Compose([CutMix(num_classes=K, seed=0)])(video, torch.arange(3))
    assert type(clips) is tv_tensors.Video and clips.shape == video.shape and labels.shape == (3, K)
