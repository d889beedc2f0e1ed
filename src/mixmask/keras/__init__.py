"""mixmask for Keras 3: MixUp, CutMix, FMix, GridMask and RandomChoice as augmentation layers.

The torch core's semantics (a partner and a mask per sample, no self-pairs, labels weighted by the
mask that was applied, GridMask keeps labels, segmentation ids follow the pixels, isotropic FMix),
written with Keras backend ops: they run on the TensorFlow, JAX and torch backends, inside
``tf.data.Dataset.map`` whatever the backend, under ``tf.function(jit_compile=True)`` and ``jax.jit``.

Example:
    >>> import numpy as np
    >>> from mixmask.keras import CutMix
    >>> out = CutMix(seed=0)({"images": np.zeros((8, 32, 32, 3), "float32"), "labels": np.eye(8, dtype="float32")})
    >>> tuple(out["images"].shape), tuple(out["labels"].shape)
    ((8, 32, 32, 3), (8, 8))
"""

from mixmask.errors import MixMaskError
from mixmask.keras.layers import CutMix, FMix, GridMask, MixLayer, MixUp, RandomChoice

__all__ = ["MixUp", "CutMix", "FMix", "GridMask", "RandomChoice", "MixLayer", "MixMaskError"]
