"""mixmask.keras layers on the current backend: invariants, references, structures, errors, configs."""

from __future__ import annotations

import numpy as np
import pytest
from kerashelp import BACKEND, needs, to_numpy

from mixmask.errors import MixMaskError
from mixmask.functional.params import METHODS
from mixmask.keras import CutMix, FMix, GridMask, MixUp, RandomChoice

GRIDMASK = METHODS.index("gridmask")
# Tests of the layers' own logic (structures, options, errors): on TensorFlow and torch, where a
# new layer costs no compilation; on JAX the references, graph and jit tests below run.
LOGIC = needs("tensorflow", "torch")
K = 6


def make_layer(name, **kwargs):
    """A layer by short name, with ``kwargs`` for the base options."""
    if name == "mixup":
        return MixUp(alpha=0.5, **kwargs)
    if name == "cutmix":
        return CutMix(**kwargs)
    if name == "fmix":
        return FMix(**kwargs)
    if name == "fmix_soft":
        return FMix(max_soft=0.1, **kwargs)
    if name == "gridmask":
        return GridMask(fill=0.5, **kwargs)
    if name == "choice":
        return RandomChoice([MixUp(), CutMix(), FMix(), GridMask(fill=0.5)], **kwargs)
    return RandomChoice([CutMix(), FMix(), GridMask(fill=0.5, keep_ratio=0.5)], **kwargs)  # "choice_binary"


NAMES = ["mixup", "cutmix", "fmix", "fmix_soft", "gridmask", "choice", "choice_binary"]
SHAPES = {"1d": (40,), "2d": (12, 20), "3d": (6, 8, 10)}
# Every layer and rank on TensorFlow; elsewhere (each new layer compiles its call under JAX) every
# layer in 2-D and FMix, whose spectrum is built per rank, in all ranks.
CASES = [pytest.param(name, shape, id=f"{name}-{rank}") for name in NAMES for rank, shape in SHAPES.items()
         if BACKEND == "tensorflow" or rank == "2d" or name == "fmix"]


def batch(spatial, size=9, seed=0, channels_first=False):
    rng = np.random.default_rng(seed)
    shape = (size, 3, *spatial) if channels_first else (size, *spatial, 3)
    images = rng.random(shape).astype("float32")
    ids = rng.integers(0, K, size)
    maps = rng.integers(0, K, (size, *spatial)).astype("int32")
    return images, ids, maps


def reference(images, labels, maps, t, layer, channels_first=False):
    """numpy, one sample at a time: what the layer must output for the draw ``t``."""
    mask, index, lam, method = (to_numpy(t[k]) for k in ("mask", "index", "lam", "method"))
    onehot = np.eye(K, dtype="float64")[labels]
    out_x, out_y, out_m = np.empty(images.shape), np.empty(onehot.shape), []
    for i in range(images.shape[0]):
        erase = method[i] == GRIDMASK
        m = mask[i].astype("float64")
        m = m[None] if channels_first else m[..., None]
        partner = np.full_like(images[i], layer.fill) if erase else images[index[i]]
        out_x[i] = m * images[i] + (1 - m) * partner
        w = 1.0 if erase else lam[i]
        out_y[i] = w * onehot[i] + (1 - w) * onehot[index[i]]
        if layer.binary:
            other = maps[i] if erase else maps[index[i]]
            out_m.append(np.where(mask[i], maps[i], other))
        else:
            own = np.eye(K)[maps[i]]
            other = own if erase else np.eye(K)[maps[index[i]]]
            out_m.append(mask[i][..., None] * own + (1 - mask[i][..., None]) * other)
    return out_x, out_y, np.stack(out_m)


@pytest.mark.parametrize("name, spatial", CASES)
def test_call_matches_the_per_sample_reference(name, spatial):
    images, labels, maps = batch(spatial)
    data = {"images": images, "labels": labels, "segmentation_masks": maps}
    out = make_layer(name, seed=3, num_classes=K)(dict(data))
    twin = make_layer(name, seed=3, num_classes=K)  # same seed: the same draw, through the public hooks
    t = twin.get_random_transformation(data)
    mask, index, lam, method = (to_numpy(t[k]) for k in ("mask", "index", "lam", "method"))
    np.testing.assert_allclose(lam, mask.reshape(len(lam), -1).astype("float64").mean(1), atol=1e-6)
    assert mask.dtype == (bool if twin.binary else np.float32)
    assert np.all(index != np.arange(len(index)))  # no self-pairs
    if name.startswith("choice"):
        assert set(method) <= {METHODS.index(m.method) for m in twin.members}
    want_x, want_y, want_m = reference(images, labels, maps, t, twin)
    np.testing.assert_allclose(to_numpy(out["images"]), want_x, atol=1e-5)
    np.testing.assert_allclose(to_numpy(out["labels"]), want_y, atol=1e-6)
    np.testing.assert_allclose(to_numpy(out["labels"]).sum(1), 1.0, atol=1e-6)
    got_m = to_numpy(out["segmentation_masks"])
    if twin.binary:
        assert got_m.dtype == maps.dtype
        np.testing.assert_array_equal(got_m, want_m)
    else:
        assert got_m.shape == (*maps.shape, K)
        np.testing.assert_allclose(got_m, want_m, atol=1e-6)
        np.testing.assert_allclose(got_m.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ["cutmix", "mixup", "gridmask"])
def test_channels_first_and_channel_of_one_in_maps(name):
    images, labels, maps = batch((12, 20), channels_first=True)
    layer = make_layer(name, seed=1, num_classes=K, data_format="channels_first")
    twin = make_layer(name, seed=1, num_classes=K, data_format="channels_first")
    out = layer({"images": images, "labels": labels, "segmentation_masks": maps[:, None]})
    t = twin.get_random_transformation({"images": images})
    want_x, _, want_m = reference(images, labels, maps, t, twin, channels_first=True)
    np.testing.assert_allclose(to_numpy(out["images"]), want_x, atol=1e-5)
    got_m = to_numpy(out["segmentation_masks"])
    if twin.binary:
        np.testing.assert_array_equal(got_m, want_m[:, None])
    else:
        np.testing.assert_allclose(got_m, np.moveaxis(want_m, -1, 1), atol=1e-6)


@LOGIC
def test_binary_masks_copy_pixels_exactly_and_labels_are_the_own_pixel_share():
    images, labels, maps = batch((16, 16), size=12)
    layer = CutMix(seed=0, num_classes=K)
    t = layer.get_random_transformation({"images": images})
    out = to_numpy(layer.transform_images(images, t))
    mask, index = to_numpy(t["mask"]), to_numpy(t["index"])
    own = mask[..., None]
    np.testing.assert_array_equal(out, np.where(own, images, images[index]))
    np.testing.assert_allclose(to_numpy(t["lam"]), mask.mean((1, 2)), atol=1e-6)


def test_gridmask_keeps_labels_and_ids_or_marks_them_ignored():
    images, labels, maps = batch((16, 16))
    layer = GridMask(seed=0, num_classes=K, ignore_index=255, fill=0.25)
    out = layer({"images": images, "labels": labels, "segmentation_masks": maps})
    twin = GridMask(seed=0, num_classes=K, ignore_index=255, fill=0.25)
    mask = to_numpy(twin.get_random_transformation({"images": images})["mask"])
    np.testing.assert_array_equal(to_numpy(out["labels"]), np.eye(K)[labels])
    np.testing.assert_array_equal(to_numpy(out["segmentation_masks"]), np.where(mask, maps, 255))
    np.testing.assert_allclose(to_numpy(out["images"]), np.where(mask[..., None], images, 0.25))


@LOGIC
def test_sparse_one_hot_soft_and_smoothed_labels():
    images, labels, _ = batch((8, 8))
    onehot = np.eye(K, dtype="float32")[labels]
    a = to_numpy(MixUp(seed=2, num_classes=K)((images, labels))[1])
    b = to_numpy(MixUp(seed=2)((images, onehot))[1])
    np.testing.assert_allclose(a, b, atol=1e-6)
    eps = 0.1
    smoothed = to_numpy(MixUp(seed=2, label_smoothing=eps)((images, onehot))[1])
    np.testing.assert_allclose(smoothed, b * (1 - eps) + eps / K, atol=1e-6)
    multi = (np.random.default_rng(0).random((9, K)) < 0.3).astype("float32")
    out = to_numpy(CutMix(seed=2, multi_label=True, label_smoothing=eps)((images, multi))[1])
    assert out.shape == (9, K) and np.all((out >= eps / 2 - 1e-6) & (out <= 1 - eps / 2 + 1e-6))


@LOGIC
def test_structures_training_false_and_nothing_changed_in_place():
    images, labels, maps = batch((8, 8))
    layer = CutMix(seed=0, num_classes=K)
    data = {"images": images, "labels": labels, "segmentation_masks": maps}
    keys = list(data)
    out = layer(data)
    assert list(data) == keys and data["images"] is images  # the caller's dict is left as it was
    assert set(out) == set(keys)
    assert tuple(to_numpy(layer(images)).shape) == images.shape
    x, y = layer((images, labels))
    assert to_numpy(y).shape == (9, K)
    same = layer(dict(data), training=False)
    np.testing.assert_array_equal(to_numpy(same["images"]), images)
    np.testing.assert_array_equal(to_numpy(same["labels"]), labels)
    copy = images.copy()
    layer(images)
    np.testing.assert_array_equal(images, copy)


@LOGIC
def test_seeds_repeat_and_calls_differ():
    images, labels, _ = batch((16, 16))
    first = [to_numpy(FMix(seed=5)((images, np.eye(K, dtype="float32")[labels]))[0]) for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])
    layer = FMix(seed=5)
    a, b = (to_numpy(layer(images)) for _ in range(2))
    assert not np.array_equal(a, b)


@LOGIC
def test_p_zero_is_the_identity_and_lone_samples_are_kept():
    images, labels, _ = batch((8, 8))
    out = CutMix(p=0.0, seed=0, num_classes=K)((images, labels))
    np.testing.assert_array_equal(to_numpy(out[0]), images)
    np.testing.assert_array_equal(to_numpy(out[1]), np.eye(K)[labels])
    one = FMix(seed=0, num_classes=K)((images[:1], labels[:1]))
    np.testing.assert_array_equal(to_numpy(one[0]), images[:1])
    grid = to_numpy(GridMask(seed=0)(images[:1]))
    assert not np.array_equal(grid, images[:1])  # GridMask needs no partner


@LOGIC
def test_pairings():
    images, _, _ = batch((8, 8), size=16)
    labels = np.repeat(np.arange(4), 4)
    flip = to_numpy(CutMix(pairing="flip", seed=0).get_random_transformation({"images": images})["index"])
    np.testing.assert_array_equal(flip, np.arange(15, -1, -1))
    layer = CutMix(pairing="other_class", num_classes=4, seed=0)
    for _ in range(5):
        index = to_numpy(layer.get_random_transformation({"images": images, "labels": labels})["index"])
        assert np.all(labels[index] != labels)
    same = to_numpy(layer.get_random_transformation({"images": images, "labels": np.zeros(16, "int32")})["index"])
    assert np.all(same != np.arange(16))  # one class only: any other sample


@LOGIC
def test_random_choice_per_batch_and_weights():
    images, _, _ = batch((8, 8), size=32)
    per_batch = RandomChoice([CutMix(), GridMask()], per_sample=False, seed=0)
    for _ in range(4):
        method = to_numpy(per_batch.get_random_transformation({"images": images})["method"])
        assert len(set(method)) == 1
    one = CutMix(per_sample=False, seed=0).get_random_transformation({"images": images})
    mask, lam = to_numpy(one["mask"]), to_numpy(one["lam"])
    assert np.all(mask == mask[:1]) and np.all(lam == lam[0])
    assert np.all(to_numpy(one["index"]) != np.arange(32))  # partners stay per sample
    only = RandomChoice([CutMix(), FMix()], weights=[0.0, 1.0], seed=0)
    method = to_numpy(only.get_random_transformation({"images": images})["method"])
    assert set(method) == {METHODS.index("fmix")}
    mixed = to_numpy(RandomChoice([CutMix(), FMix()], seed=0).get_random_transformation({"images": images})["method"])
    assert set(mixed) == {METHODS.index("cutmix"), METHODS.index("fmix")}


@LOGIC
def test_fmix_keeps_round_lam_n_pixels():
    layer = FMix(seed=0)
    ops = layer.backend
    from mixmask.keras import masks as M

    lam = ops.convert_to_tensor(np.array([0.0, 0.1, 0.37, 0.5, 0.999, 1.0], "float32"))
    mask, used = M.fmix_masks(ops, lam, (10, 13), layer.generator)
    counts = to_numpy(mask).reshape(6, -1).sum(1)
    np.testing.assert_array_equal(counts, np.round(to_numpy(lam) * 130))


@pytest.mark.parametrize("name", NAMES if BACKEND == "tensorflow" else ["cutmix", "choice"])
@LOGIC
def test_config_round_trip(name):
    layer = make_layer(name, seed=4, num_classes=K, pairing="flip", p=0.5)
    again = type(layer).from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    images, labels, _ = batch((8, 8))
    np.testing.assert_array_equal(to_numpy(layer((images, labels))[0]), to_numpy(again((images, labels))[0]))


@pytest.mark.parametrize("build, match", [
    (lambda: MixUp(alpha=0.0), "alpha"),
    (lambda: CutMix(alpha=-1.0), "alpha"),
    (lambda: FMix(decay_power=0), "decay_power"),
    (lambda: GridMask(keep_ratio=1.0), "keep_ratio"),
    (lambda: GridMask(cell_size=(0.5, 0.2)), "cell_size"),
    (lambda: CutMix(pairing="random"), "pairing"),
    (lambda: CutMix(p=1.5), "p must"),
    (lambda: CutMix(num_classes=0), "num_classes"),
    (lambda: RandomChoice([CutMix(), CutMix()]), "one layer of each kind"),
    (lambda: RandomChoice([CutMix()], weights=[1.0, 2.0]), "weights"),
])
def test_bad_arguments_raise_when_built(build, match):
    with pytest.raises(MixMaskError, match=match):
        build()


@pytest.mark.parametrize("data, layer, match", [
    (lambda x, y, m: x[0, 0], CutMix, "images: expected a batch"),
    (lambda x, y, m: x[..., None, None], CutMix, "images: expected a batch"),
    (lambda x, y, m: (x, np.eye(K + 1, dtype="float32")[y]), lambda: CutMix(num_classes=K), "labels: expected"),
    (lambda x, y, m: (x, y), CutMix, "need num_classes"),
    (lambda x, y, m: (x, np.zeros((9, 2, 2), "float32")), CutMix, "labels: expected"),
    (lambda x, y, m: {"images": x, "segmentation_masks": m[:, :4]}, CutMix, "segmentation_masks: expected"),
    (lambda x, y, m: {"images": x, "segmentation_masks": m}, MixUp, "needs num_classes"),
    (lambda x, y, m: {"images": x, "bounding_boxes": m}, CutMix, "expected a dict"),
    (lambda x, y, m: (x, y, m), CutMix, r"expected \(images, labels\)"),
    (lambda x, y, m: x, lambda: CutMix(pairing="other_class"), "needs labels"),
    (lambda x, y, m: x[:, :, :, 0], lambda: GridMask(rotate=10.0), "rotate"),
])
@LOGIC
def test_bad_inputs_raise_before_drawing(data, layer, match):
    images, labels, maps = batch((8, 8))
    with pytest.raises(MixMaskError, match=match):
        layer()(data(images, labels, maps))


@needs("tensorflow")
def test_docstring_examples_run():
    import doctest

    import mixmask.keras
    import mixmask.keras.layers

    for module in (mixmask.keras, mixmask.keras.layers):
        result = doctest.testmod(module, extraglobs={"np": np})
        assert result.attempted > 0 and result.failed == 0
