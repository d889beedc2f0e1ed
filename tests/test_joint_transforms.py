"""Joint transforms: image and map move together, colour touches the image only, seeded streams."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from mixmask import MixMaskError
from mixmask.data import IGNORE_INDEX, JointTransform, ShapesDataset, joint_transforms

NO_COLOUR = {"brightness": 0, "contrast": 0, "saturation": 0, "hue": 0}


def encode(ids: torch.Tensor) -> torch.Tensor:
    """Pixel value that encodes each id: ``20 + 40 * id`` in all 3 channels (fill 0 encodes the ignore id)."""
    return (20 + 40 * ids).to(torch.uint8).unsqueeze(-3).expand(*ids.shape[:-2], 3, *ids.shape[-2:])


def encoded_sample(seed: int, size: int = 40, classes: int = 5) -> dict[str, torch.Tensor]:
    """Blocky random ids (8x8 blocks of various sizes) and the image that encodes them."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, classes, (1, 1, 5, 5), generator=gen).float()
    ids = torch.nn.functional.interpolate(coarse, size=(size, size + 8), mode="nearest")[0, 0].long()
    return {"image": tv_tensors.Image(encode(ids).clone()), "mask": tv_tensors.Mask(ids)}


def assert_encoded(image: torch.Tensor, ids: torch.Tensor, fill: int = 0) -> None:
    """Every pixel encodes its id; ignored pixels hold ``fill``."""
    ignored = ids == IGNORE_INDEX
    expected = torch.where(ignored.unsqueeze(-3), torch.full_like(image, fill), encode(torch.where(ignored, 0, ids)))
    assert torch.equal(image, expected)


POSITIONAL = {
    "crop": {"hflip": 0, "degrees": 0},
    "hflip": {"scale": (1, 1), "ratio": (1.2, 1.2), "hflip": 1.0, "degrees": 0},
    "vflip": {"hflip": 0, "vflip": 1.0, "degrees": 0},
    "rotate": {"hflip": 0, "degrees": 45},
    "translate": {"hflip": 0, "degrees": 0, "translate": 0.3},
    "all": {"vflip": 0.5, "degrees": 30, "translate": 0.1},
}


@pytest.mark.parametrize("name", list(POSITIONAL))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_positional_transforms_keep_pixel_id_correspondence(name, seed):
    transform = joint_transforms(32, interpolation="nearest", seed=seed, **NO_COLOUR, **POSITIONAL[name])
    sample = encoded_sample(seed)
    out = transform(sample)
    assert isinstance(out["image"], tv_tensors.Image) and isinstance(out["mask"], tv_tensors.Mask)
    assert out["image"].shape == (3, 32, 32) and out["mask"].shape == (32, 32)
    assert out["image"].dtype == torch.uint8 and out["mask"].dtype == torch.int64
    assert_encoded(out["image"], out["mask"])
    if name in ("crop", "hflip", "vflip"):
        assert not bool((out["mask"] == IGNORE_INDEX).any())
    assert not torch.equal(sample["image"][:, :32, :32], out["image"])  # something moved


def test_uncovered_pixels_get_the_fill_and_the_ignore_index():
    uncovered = 0
    for seed in range(3):
        out = joint_transforms(32, hflip=0, degrees=45, translate=0.2, fill=7, interpolation="nearest", seed=seed,
                               **NO_COLOUR)(encoded_sample(seed))
        assert_encoded(out["image"], out["mask"], fill=7)
        uncovered += int((out["mask"] == IGNORE_INDEX).sum())
    assert uncovered > 30


def test_flip_moves_image_and_map_together():
    sample = encoded_sample(5, size=32)
    out = joint_transforms(sample["mask"].shape, scale=(1, 1), ratio=(40 / 32, 40 / 32), hflip=1.0, degrees=0,
                           seed=0, **NO_COLOUR)(sample)
    assert torch.equal(out["mask"], sample["mask"].flip(-1))
    assert torch.equal(out["image"], sample["image"].flip(-1))


def test_bilinear_image_nearest_map_ids_never_blended():
    sample = encoded_sample(3)
    out = joint_transforms(64, scale=(0.2, 0.3), degrees=20, seed=0, **NO_COLOUR)(sample)
    ids = set(out["mask"].unique().tolist())
    assert ids <= set(sample["mask"].unique().tolist()) | {IGNORE_INDEX}
    values = set(out["image"].unique().tolist())
    assert not values <= {20 + 40 * k for k in range(5)} | {0}  # the image itself was interpolated
    # away from edges of regions, the interpolated image still encodes the (nearest) map's id
    m = out["mask"].unsqueeze(0).float()
    uniform = (torch.nn.functional.max_pool2d(m, 7, 1, 3) == -torch.nn.functional.max_pool2d(-m, 7, 1, 3))[0]
    inner = uniform & (out["mask"] != IGNORE_INDEX)
    assert int(inner.sum()) > 500
    diff = (out["image"].int() - encode(torch.where(out["mask"] == IGNORE_INDEX, 0, out["mask"])).int()).abs()
    assert int(diff[:, inner].max()) <= 1


def test_colour_transforms_leave_the_map_untouched():
    image = ShapesDataset(1, size=48, seed=0)[0]["image"][:, :40]
    sample = {"image": tv_tensors.Image(image), "mask": encoded_sample(4, size=40)["mask"]}
    transform = joint_transforms((40, 48), scale=(1, 1), ratio=(48 / 40, 48 / 40), hflip=0, degrees=0,
                                 brightness=0.5, contrast=0.5, saturation=0.5, hue=0.2, seed=0)
    for _ in range(3):
        out = transform(sample)
        assert torch.equal(out["mask"], sample["mask"])
        assert not torch.equal(out["image"], sample["image"])


def test_same_seed_same_draws_and_global_generator_untouched():
    sample = encoded_sample(0)
    state = torch.get_rng_state()
    first = [joint_transforms(32, seed=9)(sample) for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first[0]["image"], first[1]["image"]) and torch.equal(first[0]["mask"], first[1]["mask"])
    stream = joint_transforms(32, seed=9)
    draws = [stream(sample)["mask"] for _ in range(3)]
    assert not torch.equal(draws[0], draws[1]) or not torch.equal(draws[1], draws[2])


def test_own_v2_transform_and_pickling():
    mine = JointTransform(v2.Compose([v2.RandomCrop(24), v2.RandomVerticalFlip(1.0)]), seed=1)
    sample = encoded_sample(2)
    out = mine(sample)
    assert out["image"].shape == (3, 24, 24)
    assert_encoded(out["image"], out["mask"])
    fresh = pickle.loads(pickle.dumps(JointTransform(mine.transform, seed=1)))
    assert torch.equal(fresh(sample)["mask"], out["mask"])  # a copy of a fresh transform draws what it draws
    again = pickle.loads(pickle.dumps(mine))  # a copy goes on where the original is
    assert torch.equal(again(sample)["mask"], mine(sample)["mask"])
    assert "RandomCrop" in repr(mine) and "seed=1" in repr(mine)


class _Same(Dataset):
    """The same sample at every index, so differences come from the transform's stream only."""

    def __init__(self, transform):
        self.transform, self.sample = transform, encoded_sample(0)

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return self.transform(self.sample)


def test_each_worker_draws_its_own_stream_and_runs_repeat():
    def run():
        loader = DataLoader(_Same(joint_transforms(24, seed=0, **NO_COLOUR)), batch_size=1, num_workers=2,
                            generator=torch.Generator().manual_seed(0))
        return [batch["mask"] for batch in loader]

    first, second = run(), run()
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[0], first[1])  # item 0 from worker 0, item 1 from worker 1


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 0}, "size"), ({"scale": (0.5, 0.2)}, "low <= high"), ({"scale": (0, 0)}, "high > 0"),
    ({"ratio": (0, 1)}, "positive"), ({"hflip": 2}, "hflip"), ({"degrees": -1}, "degrees"),
    ({"hue": 0.7}, "hue"), ({"ignore_index": 1.5}, "ignore_index"), ({"interpolation": "area"}, "interpolation"),
    ({"seed": -3}, "seed")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(MixMaskError, match=match):
        joint_transforms(**kwargs)


def test_not_callable():
    with pytest.raises(MixMaskError, match="callable"):
        JointTransform(3)
