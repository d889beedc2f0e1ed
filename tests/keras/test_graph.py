"""Graph mode: inside tf.data.Dataset.map (any backend), tf.function with XLA, jax.jit."""

from __future__ import annotations

import numpy as np
import pytest
from kerashelp import needs, to_numpy

from mixmask.errors import MixMaskError
from mixmask.keras import CutMix, FMix, GridMask, MixUp, RandomChoice

K = 5


def layers():
    return [MixUp(seed=0, num_classes=K), CutMix(seed=0, num_classes=K), FMix(seed=0, num_classes=K),
            GridMask(seed=0, num_classes=K, rotate=15.0),
            RandomChoice([CutMix(), FMix(), GridMask()], seed=0, num_classes=K, pairing="other_class")]


def data(size=22, spatial=(12, 16), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((size, *spatial, 3)).astype("float32"), rng.integers(0, K, size),
            rng.integers(0, K, (size, *spatial, 1)).astype("int32"))


def check_batch(out, labels, maps, binary):
    """Invariants of one mixed batch: soft rows summing to 1 whose support comes from the batch,
    and id maps that hold only ids of the batch (or soft per-pixel targets summing to 1)."""
    got = to_numpy(out["labels"])
    assert got.shape == (len(labels), K)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
    assert set(np.nonzero(got.sum(0))[0]) <= set(labels)
    seg = to_numpy(out["segmentation_masks"])
    if binary:
        assert seg.shape == maps.shape and set(np.unique(seg)) <= set(np.unique(maps))
    else:
        np.testing.assert_allclose(seg.sum(-1), 1.0, atol=1e-5)


@needs("tensorflow", "jax")
@pytest.mark.parametrize("position", range(5))
def test_inside_tf_data_map_with_a_dynamic_batch(position):
    import tensorflow as tf

    layer = layers()[position]
    images, labels, maps = data()
    ds = tf.data.Dataset.from_tensor_slices({"images": images, "labels": labels, "segmentation_masks": maps})
    ds = ds.batch(8).map(layer, num_parallel_calls=2)  # 8, 8, 6: the batch size is unknown when traced
    assert ds.element_spec["images"].shape.as_list() == [None, 12, 16, 3]
    sizes = []
    for start, out in zip(range(0, 22, 8), ds):
        sizes.append(out["images"].shape[0])
        part = slice(start, start + 8)
        check_batch(out, labels[part], maps[part], layer.binary)
    assert sizes == [8, 8, 6]
    pairs = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8).map(lambda x, y: layer((x, y)))
    x, y = next(iter(pairs))
    assert x.shape == (8, 12, 16, 3) and y.shape == (8, K)
    first, second = (next(iter(ds))["images"].numpy() for _ in range(2))
    assert not np.array_equal(first, second)  # the seed generator advances between epochs


@needs("tensorflow", "jax")
def test_bad_inputs_raise_when_tf_data_traces_the_map():
    import tensorflow as tf

    images, labels, _ = data()
    onehot = np.eye(K + 1, dtype="float32")[labels]
    ds = tf.data.Dataset.from_tensor_slices((images, onehot)).batch(4)
    with pytest.raises(MixMaskError, match="labels: expected"):  # (AutoGraph would wrap it in a StagingError)
        ds.map(tf.autograph.experimental.do_not_convert(lambda x, y: CutMix(num_classes=K)((x, y))))
    flat = tf.data.Dataset.from_tensor_slices(images.reshape(22, -1)).batch(4)
    with pytest.raises(MixMaskError, match="images: expected a batch"):
        flat.map(CutMix())


@needs("tensorflow")
@pytest.mark.parametrize("position", range(5))
def test_tf_function_with_xla(position):
    import tensorflow as tf

    layer = layers()[position]
    images, labels, maps = data(size=8)
    step = tf.function(lambda x, y, m: layer({"images": x, "labels": y, "segmentation_masks": m}), jit_compile=True)
    first = step(images, labels, maps)
    second = step(images, labels, maps)
    check_batch(first, labels, maps, layer.binary)
    assert not np.array_equal(first["images"].numpy(), second["images"].numpy())


@needs("tensorflow")
def test_tf_function_raises_at_trace_time():
    import tensorflow as tf

    images, labels, _ = data(size=8)
    step = tf.function(lambda x: FMix()(x), autograph=False)  # AutoGraph would wrap it in a StagingError
    with pytest.raises(MixMaskError, match="images: expected static spatial sizes"):
        step.get_concrete_function(tf.TensorSpec([None, None, 16, 3], tf.float32))


@needs("jax")
@pytest.mark.parametrize("position", [0, 4])  # MixUp, and the choice of CutMix, FMix and GridMask
def test_jax_jit_through_stateless_call(position):
    import jax

    layer = layers()[position]
    images, labels, maps = data(size=8)
    state = [v.value for v in layer.non_trainable_variables]
    assert state  # the seed generator's state: what jax.jit must carry in and out

    @jax.jit
    def step(state, x, y, m):
        return layer.stateless_call([], state, {"images": x, "labels": y, "segmentation_masks": m})

    first, state = step(state, images, labels, maps)
    second, state = step(state, images, labels, maps)
    check_batch(first, labels, maps, layer.binary)
    assert not np.array_equal(np.asarray(first["images"]), np.asarray(second["images"]))
    eager = type(layer).from_config(layer.get_config())({"images": images, "labels": labels,
                                                         "segmentation_masks": maps})
    np.testing.assert_allclose(np.asarray(first["images"]), to_numpy(eager["images"]), atol=1e-5)


@needs("torch")  # the other backends run every layer in the tests above
def test_backend_runs_the_layers_eagerly():
    images, labels, maps = data(size=6)
    for layer in layers():
        out = layer({"images": images, "labels": labels, "segmentation_masks": maps})
        check_batch(out, labels, maps, layer.binary)
