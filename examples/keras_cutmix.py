"""CutMix for image classification with Keras 3 and tf.data, with mixmask's per-sample CutMix layer.

The Keras example "CutMix data augmentation for image classification" (CIFAR-10, a ResNet-20,
CutMix done by hand on pairs of images drawn from two zipped datasets) redone on data that ships
with scikit-learn (the 8x8 digits, resized to 32x32) with ``mixmask.keras.CutMix`` mapped over
batches: one box and one partner per sample, drawn inside the tf.data pipeline, the label weight
being the share of the sample's own pixels. A model trained without mixing is the baseline.

    python examples/keras_cutmix.py --epochs 15          # any Keras backend (tf.data needs TensorFlow)
    KERAS_BACKEND=jax python examples/keras_cutmix.py
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from mixmask.keras import CutMix

IMG_SIZE = 32
NUM_CLASSES = 10


def load_data(seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Digits as ``(N, 8, 8, 1)`` float32 in [0, 1] and one-hot ``(N, 10)`` labels, split 80/20 by class."""
    digits = load_digits()
    images = (digits.images[..., None] / 16.0).astype("float32")
    labels = keras.utils.to_categorical(digits.target, NUM_CLASSES).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.2, random_state=seed,
                                                        stratify=digits.target)
    return (x_train, y_train), (x_test, y_test)


def preprocess(image: Any, label: Any) -> tuple[Any, Any]:
    return tf.image.resize(image, (IMG_SIZE, IMG_SIZE)), label


def datasets(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], batch_size: int,
             seed: int, alpha: float) -> tuple[tf.data.Dataset, tf.data.Dataset, tf.data.Dataset]:
    """(CutMix training set, plain training set, test set): CutMix runs on each batch inside tf.data."""
    auto = tf.data.AUTOTUNE
    cutmix = CutMix(alpha=alpha, seed=seed)
    base = (tf.data.Dataset.from_tensor_slices(train).shuffle(1024, seed=seed)
            .map(preprocess, num_parallel_calls=auto).batch(batch_size))
    train_cutmix = base.map(lambda images, labels: cutmix((images, labels)), num_parallel_calls=auto).prefetch(auto)
    test_ds = tf.data.Dataset.from_tensor_slices(test).map(preprocess, num_parallel_calls=auto).batch(batch_size)
    return train_cutmix, base.prefetch(auto), test_ds.prefetch(auto)


def small_cnn(seed: int) -> keras.Model:
    """Three conv blocks, global pooling and a softmax (a small stand-in for the ResNet-20)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((IMG_SIZE, IMG_SIZE, 1))
    x = inputs
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train with CutMix and without; print and return the test accuracies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=1.0, help="Beta(alpha, alpha) of CutMix's lam")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)
    train, test = load_data(args.seed)
    train_cutmix, train_plain, test_ds = datasets(train, test, args.batch_size, args.seed, args.alpha)
    images, labels = next(iter(train_cutmix))
    mixed_rows = int(np.sum(np.max(labels.numpy(), axis=1) < 1.0))
    print(f"backend {keras.backend.backend()}; a CutMix batch: images {tuple(images.shape)}, "
          f"{mixed_rows}/{labels.shape[0]} label rows mixed")
    results: dict[str, Any] = {"backend": keras.backend.backend(), "first_batch_mixed_rows": mixed_rows}
    for name, data in (("cutmix", train_cutmix), ("baseline", train_plain)):
        model = small_cnn(args.seed)
        history = model.fit(data, validation_data=test_ds, epochs=args.epochs, shuffle=False, verbose=args.verbose)
        loss, accuracy = model.evaluate(test_ds, verbose=0)
        results[name] = {"test_accuracy": float(accuracy), "test_loss": float(loss),
                         "train_loss": [float(v) for v in history.history["loss"]]}
        print(f"{name}: test accuracy {100 * accuracy:.2f}%")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
