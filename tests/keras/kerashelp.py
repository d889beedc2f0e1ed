"""Helpers of the Keras layer tests, which run once per backend (tests/test_keras_backends.py), each in its own process.

Keras fixes its backend when it is first imported (``KERAS_BACKEND``), so each backend needs a
process of its own; the driver sets ``MIXMASK_KERAS_TESTS=1`` and the backend.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

BACKEND = keras.backend.backend()


def to_numpy(value):
    """A backend tensor, a tf.Tensor (from tf.data, whatever the backend) or an array as numpy."""
    module = type(value).__module__
    if module.startswith(("tensorflow", "torch")):  # (np.array() on a torch tensor warns under numpy 2)
        return np.asarray(value.detach().cpu().numpy() if module.startswith("torch") else value.numpy())
    return np.asarray(keras.ops.convert_to_numpy(value))


def needs(*backends):
    """Skip a test on the other backends (it tests a feature of these backends only)."""
    return pytest.mark.skipif(BACKEND not in backends, reason=f"for the {', '.join(backends)} backend(s)")
