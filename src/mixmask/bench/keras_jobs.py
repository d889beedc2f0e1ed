"""The Keras section of ``mixmask bench`` (``--framework keras``): graph-mode calls on TensorFlow.

mixmask.keras against ``keras.layers.MixUp`` / ``CutMix`` and, when it is installed, KerasCV's
``MixUp`` / ``CutMix`` / ``FourierMix`` / ``GridMask``, plus a copy floor (``tf.gather``). Every
call is one ``tf.function`` (graph mode, optionally XLA) mixing a channels-last float batch and its
one-hot ``(B, K)`` labels. TensorFlow takes seconds to import and is not fork-safe once running,
so each round runs in one fresh process (``python -m mixmask.bench.keras_jobs``) that imports it
once and times every job of the round, in the round's order, each with its own graph.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["KERAS_LIBRARIES", "KERAS_METHODS", "keras_semantics", "keras_has_equivalent", "keras_installed", "run_jobs"]

KERAS_LIBRARIES: tuple[str, ...] = ("mixmask-keras", "keras", "keras-cv", "floor-gather")
#: The methods mixmask.keras has (the Keras section's default).
KERAS_METHODS: tuple[str, ...] = ("mixup", "cutmix", "fmix", "gridmask")
_METHODS = {"mixmask-keras": KERAS_METHODS, "keras": ("mixup", "cutmix"),
            "keras-cv": ("mixup", "cutmix", "fmix", "gridmask"), "floor-gather": ("-",)}
_MODULES = {"mixmask-keras": "keras", "keras": "keras", "keras-cv": "keras_cv", "floor-gather": "tensorflow"}
_SEMANTICS = {
    ("mixmask-keras", "mixup"): "per-sample lam ~ Beta and partner (no self-pairs)",
    ("mixmask-keras", "cutmix"): "per-sample box and partner (no self-pairs); lam = own-pixel share",
    ("mixmask-keras", "fmix"): "per-sample isotropic Fourier mask and partner (no self-pairs); lam = mask mean",
    ("mixmask-keras", "gridmask"): "per-sample grid, fill 0; labels kept",
    ("keras", "mixup"): "per-sample lam ~ Beta; partner = shuffled batch (may be itself)",
    ("keras", "cutmix"): "per-sample box inside the image, alpha ~ U(factor); partner = shuffled batch (may be "
                         "itself); lam from the box's real-valued area",
    ("keras-cv", "mixup"): "per-sample lam ~ Beta; partner = shuffled batch (may be itself)",
    ("keras-cv", "cutmix"): "per-sample box; lam = 1 - box h*w / image area; partner = shuffled batch (may be itself)",
    ("keras-cv", "fmix"): "per-sample spectrum drawn on S (anisotropic off square) and mask, in tf.map_fn loops; "
                          "labels weighted by the drawn lam; partner = shuffled batch (may be itself)",
    ("keras-cv", "gridmask"): "a grid per image (map over the batch), random rotation; images only, labels passed "
                              "through",
    ("floor-gather", "-"): "tf.gather of a permuted batch; no labels",
}


def keras_semantics(library: str, method: str) -> str:
    """What a row's number buys (an empty string for an unknown row)."""
    return _SEMANTICS.get((library, method), "")


def keras_has_equivalent(library: str, method: str) -> bool:
    """Whether ``library`` implements ``method`` (the floor has the single method ``"-"``)."""
    return method in _METHODS.get(library, ())


def keras_installed(library: str) -> bool:
    """Whether the package a row needs can be imported (TensorFlow for every row)."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", _MODULES[library]))
    except (ImportError, ValueError):
        return False


def _layer(library: str, method: str, seed: int) -> Any:
    if library == "mixmask-keras":
        from mixmask import keras as mk

        return {"mixup": mk.MixUp, "cutmix": mk.CutMix, "fmix": mk.FMix, "gridmask": mk.GridMask}[method](seed=seed)
    if library == "keras":
        import keras

        return keras.layers.MixUp(alpha=1.0, seed=seed) if method == "mixup" else keras.layers.CutMix(seed=seed)
    import keras_cv

    kinds = {"mixup": keras_cv.layers.MixUp, "cutmix": keras_cv.layers.CutMix, "fmix": keras_cv.layers.FourierMix,
             "gridmask": keras_cv.layers.GridMask}
    return kinds[method](seed=seed)


def make_keras_call(library: str, method: str, images: Any, labels: Any, seed: int, jit: bool) -> Callable[[], Any]:
    """A no-argument callable running one graph-mode call of ``library``'s ``method`` on this batch."""
    import tensorflow as tf

    if library == "floor-gather":
        order = tf.random.shuffle(tf.range(images.shape[0]), seed=seed)
        step = tf.function(lambda x: tf.gather(x, order), jit_compile=jit)
        return lambda: step(images)
    layer = _layer(library, method, seed)
    if library == "keras-cv" and method == "gridmask":
        step = tf.function(lambda x, y: (layer(x, training=True), y), jit_compile=jit)
    else:
        step = tf.function(lambda x, y: layer({"images": x, "labels": y}), jit_compile=jit)
    return lambda: step(images, labels)


def _run_job(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import tensorflow as tf
    import torch

    from mixmask.bench.worker import _measure_memory, time_calls_and_faults

    result: dict[str, Any] = {"status": "ok", "error": None, "times_s": [], "faults_per_call": None,
                              "peak_mib": None, "memory_kind": None,
                              "host_sync": None, "warnings": [], "threads": spec.get("threads")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rng = np.random.default_rng(spec["seed"])
            b, c, *spatial = spec["shape"]
            if len(spatial) != 2:
                raise ValueError(f"the keras section times 2-D images only, but got size {spec['shape']}")
            shape = (b, *spatial, c)  # channels last
            raw = rng.integers(0, 256, shape, dtype=np.uint8) if spec["dtype"] == "uint8" else \
                rng.random(shape, dtype=np.float32)
            images = tf.constant(raw)
            labels = tf.one_hot(rng.integers(0, spec["num_classes"], b), spec["num_classes"])
            call = make_keras_call(spec["library"], spec["method"], images, labels, spec["seed"], spec["jit"])
            for _ in range(max(spec["warmup"], 1)):  # the first call traces (and compiles) the graph
                call()
            cpu = torch.device("cpu")
            result["peak_mib"], result["memory_kind"] = _measure_memory(call, cpu)
            result["times_s"], result["faults_per_call"] = time_calls_and_faults(
                call, cpu, spec["min_time"], spec["min_calls"], spec["max_calls"])
        except Exception as err:  # a peer failing on this input is a result to report
            last = traceback.extract_tb(err.__traceback__)[-1]
            message = str(err).strip().splitlines()[0] if str(err).strip() else ""
            result.update(status="error", error=f"{type(err).__name__}: {message} "
                                                f"({last.filename.rsplit('/', 1)[-1]}:{last.lineno})"[:300])
    result["warnings"] = sorted({f"{w.category.__name__}: {w.message}"[:200] for w in caught})
    return result


def run_jobs(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Time each job in this process, in the given order (TensorFlow set up once for all of them)."""
    threads = next((s.get("threads") for s in specs if s.get("threads")), None)
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    return [_run_job(spec) for spec in specs]


def main() -> int:
    """Read a JSON list of job specs on stdin, print a JSON list of results as the last stdout line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    specs = json.loads(sys.stdin.read())
    results = run_jobs(specs)
    sys.stdout.write("\n" + json.dumps(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
