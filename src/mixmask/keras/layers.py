"""Keras 3 layers: MixUp, CutMix, FMix, GridMask and RandomChoice, with the torch core's semantics.

A call draws, for the whole batch at once, one partner ``j[i]`` and one mask ``M[i]`` per sample
(:mod:`mixmask.keras.masks`), then mixes every target kind with them::

    images[i]  -> M[i] * x[i] + (1 - M[i]) * x[j[i]]        (GridMask: the partner is ``fill``)
    labels[i]  -> w[i] * y[i] + (1 - w[i]) * y[j[i]]        w = lam = mean(M[i]); 1 for GridMask
    seg. maps  -> ids from the sample that supplied each pixel (binary masks), or per-pixel soft targets

The layers derive from Keras' image augmentation base (a ``DataLayer``), so they run with the
backend's own ops, or TensorFlow's inside a ``tf.data`` pipeline whatever the backend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras.src.layers.preprocessing.image_preprocessing.base_image_preprocessing_layer import (
    BaseImagePreprocessingLayer,
)

from mixmask.errors import MixMaskError
from mixmask.functional._checks import check_finite_range, check_positive
from mixmask.functional.params import METHODS
from mixmask.keras import masks as K
from mixmask.transforms.mix import MixPolicy
from mixmask.transforms.samplers import GridMaskSampler

__all__ = ["MixLayer", "MixUp", "CutMix", "FMix", "GridMask", "RandomChoice"]

_NONE, _GRIDMASK = METHODS.index("none"), METHODS.index("gridmask")
_KEYS = ("images", "labels", "segmentation_masks")


def _static_shape(tensor: Any) -> tuple[int | None, ...]:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _jax_tracing(tensor: Any) -> bool:
    from keras.src.utils.jax_utils import is_in_jax_tracing_scope

    return is_in_jax_tracing_scope(tensor)


class MixLayer(BaseImagePreprocessingLayer):
    """Base of the mixing layers: pairing, apply probability, seeding and the call.

    Called on a dict ``{"images", "labels", "segmentation_masks"}`` (labels and maps optional), on a
    tuple ``(images, labels)``, or on images alone; returns the same structure, mixed (a new dict).

    Args:
        p: probability that a sample is mixed (others pass through with lam = 1).
        per_sample: a mask, lam and method per sample (default), or one drawn for the whole batch
            (RandomChoice: one method per batch, as seed 002's pipeline); partners stay per sample.
        pairing: ``"permutation"`` (a random partner, never itself), ``"flip"`` (reversed batch) or
            ``"other_class"`` (a random partner with a different label where one exists; needs labels).
        num_classes: K, for sparse ``(B,)`` labels and for soft per-pixel targets.
        label_smoothing: eps applied to class targets before mixing.
        multi_label: targets are independent {0, 1} entries (smoothing towards 1/2).
        ignore_index: id of unlabelled pixels in segmentation maps.
        data_format: ``"channels_last"`` (default: Keras' setting) or ``"channels_first"``.
        seed: int seed of the layer's ``keras.random.SeedGenerator``.
    """

    _USE_BASE_FACTOR = False
    method = "none"

    def __init__(self, *, p: float = 1.0, per_sample: bool = True, pairing: str = "permutation",
                 num_classes: int | None = None, label_smoothing: float = 0.0, multi_label: bool = False,
                 ignore_index: int | None = None, data_format: str | None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(data_format=data_format, **kwargs)
        # the torch core's policy checks the shared options with the same rules and messages
        options = MixPolicy(p=p, per_sample=per_sample, pairing=pairing, num_classes=num_classes,
                            label_smoothing=label_smoothing, multi_label=multi_label, ignore_index=ignore_index)
        self.p, self.per_sample, self.pairing = options.p, options.per_sample, options.pairing
        self.num_classes = options.num_classes
        self.label_smoothing, self.multi_label = options.label_smoothing, options.multi_label
        self.ignore_index = options.ignore_index
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise MixMaskError(f"seed must be an int or None, but got {seed!r}")
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)
        self.built = True  # no weights: the seed generator's state is its only variable

    # -- what a subclass defines ---------------------------------------------------------------
    @property
    def binary(self) -> bool:
        """Whether every mask entry is 0 or 1 (else masks are soft and maps become soft targets)."""
        return True

    @property
    def fill(self) -> float:
        """Value GridMask samples get where pixels are dropped."""
        return 0.0

    def _method_ids(self) -> tuple[int, ...]:
        """Ids into :data:`mixmask.functional.params.METHODS` this layer may draw."""
        return (METHODS.index(self.method),)

    def draw_masks(self, ops: Any, batch: Any, spatial: tuple[int, ...], seed: Any) -> tuple[Any, Any, Any]:
        """``(method (B,) int32, mask (B, *S), lam (B,) float32)`` for a batch."""
        raise NotImplementedError

    # -- input checks (at trace time in graph mode: static shapes only) ------------------------
    def _spatial(self, images: Any) -> tuple[int, ...]:
        shape = _static_shape(images)
        layout = "(B, *S, C)" if self.data_format == "channels_last" else "(B, C, *S)"
        if not 3 <= len(shape) <= 5:
            raise MixMaskError(f"images: expected a batch {layout} with 1 to 3 spatial dims (rank 3 to 5), "
                               f"but got shape {shape}")
        spatial = shape[1:-1] if self.data_format == "channels_last" else shape[2:]
        if any(s is None for s in spatial):
            raise MixMaskError(f"images: expected static spatial sizes, but got shape {shape} (set the image "
                               f"size in the pipeline, e.g. with a resize)")
        return tuple(spatial)

    @staticmethod
    def _check_batch(name: str, shape: tuple[int | None, ...], batch: int | None) -> None:
        if shape and shape[0] is not None and batch is not None and shape[0] != batch:
            raise MixMaskError(f"{name}: expected {batch} samples like the images, but got shape {shape}")

    def _class_targets(self, labels: Any, batch: int | None = None) -> Any:
        """``(B, K)`` float32 targets from ``(B,)`` ids or ``(B, K)`` one-hot / soft / multi-label rows."""
        ops, shape = self.backend, _static_shape(labels)
        self._check_batch("labels", shape, batch)
        if len(shape) == 1:
            if self.num_classes is None:
                raise MixMaskError(f"labels: sparse ids of shape {shape} need num_classes, but got None")
            return ops.nn.one_hot(ops.cast(labels, "int32"), self.num_classes, dtype="float32")
        if len(shape) != 2 or shape[1] is None:
            raise MixMaskError(f"labels: expected (B,) class ids or (B, K) one-hot / soft targets, but got shape "
                               f"{shape}")
        if self.num_classes is not None and shape[1] != self.num_classes:
            raise MixMaskError(f"labels: expected (B, {self.num_classes}) targets (num_classes={self.num_classes}), "
                               f"but got shape {shape}")
        return ops.cast(labels, "float32")

    def _dense_ids(self, maps: Any, spatial: tuple[int, ...], batch: int | None = None) -> tuple[Any, bool]:
        """A ``(B, *S)`` id map from ``(B, *S)`` or ``(B, *S, 1)`` (``(B, 1, *S)`` channels first), and
        whether it had the channel."""
        shape = _static_shape(maps)
        self._check_batch("segmentation_masks", shape, batch)
        if shape[1:] == spatial:
            return maps, False
        last = self.data_format == "channels_last"
        if shape[1:] == (spatial + (1,) if last else (1,) + spatial):
            return self.backend.numpy.squeeze(maps, axis=-1 if last else 1), True
        expected = f"(B, {', '.join(map(str, spatial))})"
        with_channel = f"(B, {', '.join(map(str, spatial + (1,) if last else (1,) + spatial))})"
        raise MixMaskError(f"segmentation_masks: expected shape {expected} or {with_channel} to match the images, "
                           f"but got {shape}")

    # -- the draw and its application ----------------------------------------------------------
    def _jax_eager(self, images: Any) -> bool:
        """Whether this is an eager call on the JAX backend (not traced, not in a tf.data pipeline)."""
        return self.backend.name == "jax" and not _jax_tracing(images)

    def _jitted(self, name: str, function: Any, *args: Any) -> Any:
        """``function(*args)`` compiled with ``jax.jit``, the seed generators' states carried in and out.

        An eager JAX call would otherwise dispatch (and compile, for every new shape) each of the
        draw's hundred-odd small ops one at a time: tens of seconds on a busy CPU, against one
        compilation of the whole call. One compiled function per entry point and input structure.
        """
        import jax

        variables = self.non_trainable_variables
        cache = self.__dict__.setdefault("_jax_functions", {})
        if name not in cache:
            def pure(state: list[Any], *inner: Any) -> tuple[Any, list[Any]]:
                with keras.StatelessScope(state_mapping=list(zip(variables, state))) as scope:
                    out = function(*inner)
                new = [scope.get_current_value(v) for v in variables]
                return out, [old if value is None else value for old, value in zip(state, new)]

            cache[name] = jax.jit(pure)
        out, state = cache[name]([v.value for v in variables], *args)
        for variable, value in zip(variables, state):
            variable.assign(value)
        return out

    def get_random_transformation(self, data: Any, training: bool = True, seed: Any = None) -> dict[str, Any] | None:
        """Draw partners and masks for a batch: ``{"index", "mask", "lam", "method"}`` (None when not training).

        ``index`` ``(B,)`` int32 partners, ``mask`` ``(B, *S)`` (bool when :attr:`binary`; MixUp's is
        ``(B, 1, ..., 1)``, which broadcasts), ``lam``
        ``(B,)`` float32 mask means, ``method`` ``(B,)`` int32 ids into ``METHODS`` (0: not mixed).
        """
        if not training:
            return None
        images, labels, _ = self._unpack(data)[:3]
        if seed is None and self._jax_eager(images):
            return self._jitted("draw", lambda x, y: self._draw(x, y, None), images, labels)
        return self._draw(images, labels, seed)

    def _draw(self, images: Any, labels: Any, seed: Any) -> dict[str, Any]:
        ops = self.backend
        images = ops.convert_to_tensor(images)
        spatial = self._spatial(images)
        if seed is None:
            seed = self._get_seed_generator(ops._backend)
        batch = ops.shape(images)[0]
        if self.pairing == "other_class":
            if labels is None:
                raise MixMaskError("pairing='other_class' needs labels, but got none")
            index = K.other_class_partners(ops, self._class_targets(ops.convert_to_tensor(labels)), seed)
        elif self.pairing == "flip":
            index = ops.cast(batch, "int32") - 1 - ops.numpy.arange(batch, dtype="int32")
        else:
            index = K.derangement(ops, batch, seed)
        if self.per_sample:
            method, mask, lam = self.draw_masks(ops, batch, spatial, seed)
        else:  # one draw for the whole batch (partners stay per sample)
            method, mask, lam = self.draw_masks(ops, 1, spatial, seed)
            method, lam = (ops.numpy.zeros((batch,), dtype=t.dtype) + t for t in (method, lam))
            mask = ops.numpy.logical_or(mask, ops.numpy.zeros((batch,) + (1,) * len(spatial), dtype="bool")) \
                if self.binary else mask + ops.numpy.zeros((batch,) + (1,) * len(spatial), dtype="float32")
        erase = ops.numpy.equal(method, _GRIDMASK)
        applied = ops.numpy.logical_or(erase, ops.numpy.greater(ops.cast(batch, "int32"), 1))  # a lone sample
        if self.p < 1:
            applied = ops.numpy.logical_and(applied, ops.random.uniform((batch,), seed=seed) < self.p)
        view = ops.numpy.reshape(applied, (-1,) + (1,) * len(spatial))
        mask = ops.numpy.where(view, mask, ops.numpy.ones_like(mask))
        return {"index": index, "mask": mask, "lam": ops.numpy.where(applied, lam, ops.numpy.ones_like(lam)),
                "method": ops.numpy.where(applied, method, ops.numpy.full_like(method, _NONE))}

    def _erase(self, transformation: dict[str, Any], rank: int) -> Any:
        """``(B, 1, ..., 1)`` bool of rank ``rank``: samples whose partner is the fill value."""
        ops = self.backend
        return ops.numpy.reshape(ops.numpy.equal(transformation["method"], _GRIDMASK), (-1,) + (1,) * (rank - 1))

    def transform_images(self, images: Any, transformation: dict[str, Any] | None = None,
                         training: bool = True) -> Any:
        """``M * x + (1 - M) * partner`` in the layer's compute dtype (an exact copy for binary masks)."""
        ops = self.backend
        images = ops.cast(images, self.compute_dtype)
        if not training or transformation is None:
            return images
        mask = ops.numpy.expand_dims(transformation["mask"], -1 if self.data_format == "channels_last" else 1)
        fill = ops.cast(self.fill, self.compute_dtype)
        if self._method_ids() == (_GRIDMASK,):
            partner = ops.numpy.full_like(images, fill)
        else:
            partner = ops.numpy.take(images, transformation["index"], axis=0)
            if _GRIDMASK in self._method_ids():
                partner = ops.numpy.where(self._erase(transformation, len(images.shape)), fill, partner)
        if self.binary:
            return ops.numpy.where(mask, images, partner)
        weight = ops.cast(mask, self.compute_dtype)
        return weight * images + (1.0 - weight) * partner

    def transform_labels(self, labels: Any, transformation: dict[str, Any] | None, training: bool = True) -> Any:
        """``(B, K)`` float32 soft targets ``w * y + (1 - w) * y[j]``, ``w`` the mask mean (1 for GridMask)."""
        ops = self.backend
        labels = ops.convert_to_tensor(labels)
        if not training or transformation is None:
            return labels
        soft = self._class_targets(labels)
        eps = self.label_smoothing
        if eps > 0:
            soft = soft * (1.0 - eps) + (eps / 2.0 if self.multi_label else eps / float(soft.shape[1]))
        weight = ops.numpy.where(ops.numpy.equal(transformation["method"], _GRIDMASK), 1.0, transformation["lam"])
        weight = weight[:, None]
        return weight * soft + (1.0 - weight) * ops.numpy.take(soft, transformation["index"], axis=0)

    def transform_segmentation_masks(self, segmentation_masks: Any, transformation: dict[str, Any] | None,
                                     training: bool = True) -> Any:
        """Mix id maps with the mask that mixed the images.

        Binary masks: each pixel keeps the id of the sample that supplied it (same shape and dtype).
        Soft masks: float32 per-pixel soft targets ``(B, *S, K)`` (``(B, K, *S)`` channels first),
        ignored pixels weigh 0. GridMask pixels keep their ids, or get ``ignore_index`` when one is set.
        """
        ops = self.backend
        maps = ops.convert_to_tensor(segmentation_masks)
        if not training or transformation is None:
            return maps
        mask = transformation["mask"]
        dims, shape = len(mask.shape) - 1, _static_shape(maps)
        last = self.data_format == "channels_last"
        spatial = shape[1:] if len(shape) == dims + 1 else shape[1:-1] if last else shape[2:]
        ids, channel = self._dense_ids(maps, spatial)
        erase = self._erase(transformation, len(spatial) + 1)
        gridmask = _GRIDMASK in self._method_ids()
        if self.binary:
            partner = ops.numpy.take(ids, transformation["index"], axis=0)
            if gridmask:
                hidden = ids if self.ignore_index is None else ops.numpy.full_like(ids, self.ignore_index)
                partner = ops.numpy.where(erase, hidden, partner)
            mixed = ops.numpy.where(mask, ids, partner)
            return ops.numpy.expand_dims(mixed, -1 if last else 1) if channel else mixed
        if self.num_classes is None:
            raise MixMaskError("segmentation_masks: a soft mask turns id maps into per-pixel soft targets, which "
                               "needs num_classes, but got None")
        ids = ops.cast(ids, "int32")
        valid = ops.numpy.ones_like(ids, dtype="bool") if self.ignore_index is None else \
            ops.numpy.not_equal(ids, self.ignore_index)
        own = ops.nn.one_hot(ops.numpy.where(valid, ids, 0), self.num_classes, dtype="float32")
        own = own * ops.cast(valid, "float32")[..., None]
        partner = ops.numpy.take(own, transformation["index"], axis=0)
        if gridmask:  # the hidden part keeps the sample's own ids, or is ignored
            hidden = own if self.ignore_index is None else ops.numpy.zeros_like(own)
            partner = ops.numpy.where(erase[..., None], hidden, partner)
        weight = ops.cast(mask, "float32")[..., None]
        soft = weight * own + (1.0 - weight) * partner
        return soft if last else ops.numpy.moveaxis(soft, -1, 1)

    # -- the call ------------------------------------------------------------------------------
    def _unpack(self, data: Any) -> tuple[Any, Any, Any, str]:
        """``(images, labels, maps, kind)`` of a dict, an ``(images, labels)`` tuple or an images tensor."""
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(_KEYS))
            if "images" not in data or unknown:
                raise MixMaskError(f"expected a dict with 'images' and optionally 'labels', 'segmentation_masks', "
                                   f"but got keys {sorted(data)}")
            return data["images"], data.get("labels"), data.get("segmentation_masks"), "dict"
        if isinstance(data, (tuple, list)):
            if len(data) != 2:
                raise MixMaskError(f"expected (images, labels), but got a {type(data).__name__} of {len(data)} items")
            return data[0], data[1], None, "tuple"
        return data, None, None, "images"

    def call(self, data: Any, training: bool = True) -> Any:
        """Mix a batch; ``training=False`` returns it unchanged (in a new dict for dict inputs)."""
        images, labels, maps, kind = self._unpack(data)
        if training and self._jax_eager(images):  # checks raise while jax traces, before anything runs
            return self._jitted(f"call-{kind}", lambda x, y, m: self._mix(x, y, m, kind, training=True),
                                images, labels, maps)
        return self._mix(images, labels, maps, kind, training)

    def _mix(self, images: Any, labels: Any, maps: Any, kind: str, training: bool) -> Any:
        ops = self.backend
        images = ops.convert_to_tensor(images)
        spatial, batch = self._spatial(images), _static_shape(images)[0]
        if labels is not None:  # everything is checked before anything is drawn
            labels = ops.convert_to_tensor(labels)
            self._class_targets(labels, batch)
        if maps is not None:
            maps = ops.convert_to_tensor(maps)
            self._dense_ids(maps, spatial, batch)
            if not self.binary and self.num_classes is None:
                raise MixMaskError("segmentation_masks: a soft mask turns id maps into per-pixel soft targets, "
                                   "which needs num_classes, but got None")
        transformation = self._draw(images, labels, None) if training else None
        out_images = self.transform_images(images, transformation, training=training)
        out_labels = None if labels is None else self.transform_labels(labels, transformation, training=training)
        out_maps = None if maps is None else self.transform_segmentation_masks(maps, transformation, training=training)
        if kind == "dict":
            out = {"images": out_images}
            if labels is not None:
                out["labels"] = out_labels
            if maps is not None:
                out["segmentation_masks"] = out_maps
            return out
        if kind == "tuple":
            return out_images, out_labels
        return out_images

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"p": self.p, "per_sample": self.per_sample, "pairing": self.pairing, "num_classes": self.num_classes,
                       "label_smoothing": self.label_smoothing, "multi_label": self.multi_label,
                       "ignore_index": self.ignore_index, "seed": self.seed})
        return config


class _LamLayer(MixLayer):
    """A method whose masks follow a drawn weight ``lam ~ Beta(alpha, alpha)``."""

    def __init__(self, alpha: float = 1.0, *, reformulate: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = check_positive("alpha", alpha)
        self.reformulate = bool(reformulate)

    def draw_lam(self, ops: Any, batch: Any, seed: Any) -> Any:
        """``(B,)`` float32 drawn weights."""
        return K.sample_lam(ops, batch, self.alpha, seed, reformulate=self.reformulate)

    def _ids(self, ops: Any, batch: Any) -> Any:
        return ops.numpy.full((batch,), METHODS.index(self.method), dtype="int32")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "reformulate": self.reformulate}


@keras.saving.register_keras_serializable(package="mixmask")
class MixUp(_LamLayer):
    """MixUp (Zhang et al., 2018), per sample: ``lam[i] ~ Beta(alpha, alpha)``, ``M[i] = lam[i]``.

    Segmentation maps become per-pixel soft targets (needs ``num_classes``): ids are never blended.

    Example:
        >>> mix = MixUp(alpha=0.4, seed=0)
        >>> out = mix({"images": np.ones((8, 32, 32, 3), "float32"), "labels": np.eye(10, dtype="float32")[:8]})
        >>> tuple(out["labels"].shape)
        (8, 10)
    """

    method = "mixup"

    @property
    def binary(self) -> bool:
        return False

    def draw_masks(self, ops, batch, spatial, seed):
        lam = self.draw_lam(ops, batch, seed)  # the mask stays (B, 1, ..., 1): it broadcasts over S
        return self._ids(ops, batch), ops.numpy.reshape(lam, (-1,) + (1,) * len(spatial)), lam


@keras.saving.register_keras_serializable(package="mixmask")
class CutMix(_LamLayer):
    """CutMix (Yun et al., 2019): a box of the partner pasted into each sample, lam = the area outside it.

    Boxes are intervals, rectangles or cuboids (1-, 2-, 3-D) of volume ``(1 - lam) * |S|`` before
    clipping to the image; the label weight is the share of the sample's own pixels that remain.
    """

    method = "cutmix"

    def draw_masks(self, ops, batch, spatial, seed):
        mask, lam = K.cutmix_masks(ops, self.draw_lam(ops, batch, seed), spatial, seed)
        return self._ids(ops, batch), mask, lam


@keras.saving.register_keras_serializable(package="mixmask")
class FMix(_LamLayer):
    """FMix (Harris et al., 2020): 1 on the top ``round(lam * |S|)`` values of a low-frequency grey image.

    The grey image is isotropic (drawn on a cube of side ``max(S)`` and cropped), in 1-D, 2-D or 3-D.

    Args:
        alpha: Beta concentration.
        decay_power: spectrum decay ``1 / f ** decay_power``; higher is smoother (the paper uses 3).
        max_soft: soft edge width as a fraction of ``|S|`` (0: binary masks).
        and the :class:`MixLayer` arguments.
    """

    method = "fmix"

    def __init__(self, alpha: float = 1.0, *, decay_power: float = 3.0, max_soft: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(alpha, **kwargs)
        self.decay_power = check_positive("decay_power", decay_power)
        self.max_soft = check_finite_range("max_soft", max_soft, 0.0, 0.5)

    @property
    def binary(self) -> bool:
        return self.max_soft == 0

    def draw_masks(self, ops, batch, spatial, seed):
        mask, lam = K.fmix_masks(ops, self.draw_lam(ops, batch, seed), spatial, seed,
                                 decay_power=self.decay_power, max_soft=self.max_soft)
        return self._ids(ops, batch), mask, lam

    def get_config(self):
        return {**super().get_config(), "decay_power": self.decay_power, "max_soft": self.max_soft}


@keras.saving.register_keras_serializable(package="mixmask")
class GridMask(MixLayer):
    """GridMask (Chen et al., 2020): a grid of dropped blocks filled with ``fill``; labels are kept.

    Args:
        cell_size: ``(low, high)`` range of the grid period as fractions of the smallest side.
        keep_ratio: fraction of each cell's side that is kept, in (0, 1).
        rotate: largest random rotation in degrees (2-D only).
        fill: value written into dropped pixels.
        and the :class:`MixLayer` arguments.
    """

    method = "gridmask"

    def __init__(self, *, cell_size: Sequence[float] = (96 / 224, 1.0), keep_ratio: float = 0.6,
                 rotate: float = 0.0, fill: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # the torch core's GridMask sampler checks the options with the same rules and messages
        options = GridMaskSampler(cell_size, keep_ratio, rotate, fill)
        self.cell_size, self.keep_ratio, self.rotate = tuple(options.cell_size), options.keep_ratio, options.rotate
        self._fill = options.fill

    @property
    def fill(self) -> float:
        return self._fill

    def _spatial(self, images):
        spatial = super()._spatial(images)
        if self.rotate > 0 and len(spatial) != 2:
            raise MixMaskError(f"rotate is defined for 2-D images only, but got spatial shape {spatial}")
        return spatial

    def draw_masks(self, ops, batch, spatial, seed):
        mask, lam = K.gridmask_masks(ops, batch, spatial, seed, cell_size=self.cell_size,
                                     keep_ratio=self.keep_ratio, rotate=self.rotate)
        return ops.numpy.full((batch,), _GRIDMASK, dtype="int32"), mask, lam

    def get_config(self):
        return {**super().get_config(), "cell_size": list(self.cell_size), "keep_ratio": self.keep_ratio,
                "rotate": self.rotate, "fill": self._fill}


@keras.saving.register_keras_serializable(package="mixmask")
class RandomChoice(MixLayer):
    """Pick a method per sample (or one per batch) among ``layers`` and mix the batch once.

    Every member's masks are drawn for the whole batch and each sample takes those of its method
    (static shapes for ``jit``; the cost is the sum of the members'). The members' own ``p``,
    pairing and seed are not used, the choice's are; their method options are.

    Args:
        layers: at most one of each of :class:`MixUp`, :class:`CutMix`, :class:`FMix`, :class:`GridMask`.
        weights: relative probability of each layer (None: uniform).
        and the :class:`MixLayer` arguments (``p``: probability that a sample is mixed at all).
    """

    def __init__(self, layers: Sequence[MixLayer], weights: Sequence[float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        layers = list(layers)
        if not layers or not all(isinstance(m, MixLayer) and not isinstance(m, RandomChoice) for m in layers):
            raise MixMaskError(f"layers: expected a non-empty list of MixUp/CutMix/FMix/GridMask, but got {layers!r}")
        kinds = [m.method for m in layers]
        if len(set(kinds)) != len(kinds):
            raise MixMaskError(f"layers: expected at most one layer of each kind, but got {kinds}")
        if weights is not None and (not isinstance(weights, Sequence) or len(weights) != len(layers)):
            raise MixMaskError(f"weights: expected {len(layers)} non-negative numbers, but got {weights!r}")
        values = [1.0] * len(layers) if weights is None else \
            [check_finite_range("weights", w, 0.0, math.inf) for w in weights]
        if sum(values) <= 0:
            raise MixMaskError(f"weights: expected a positive sum, but got {weights!r}")
        self.members = layers
        self.choice_weights = [w / sum(values) for w in values]

    @property
    def binary(self) -> bool:
        return all(m.binary for m in self.members)

    @property
    def fill(self) -> float:
        return next((m.fill for m in self.members if m.method == "gridmask"), 0.0)

    def _method_ids(self):
        return tuple(METHODS.index(m.method) for m in self.members)

    def _spatial(self, images):
        spatial = super()._spatial(images)
        for member in self.members:
            member._spatial(images)
        return spatial

    def draw_masks(self, ops, batch, spatial, seed):
        logits = ops.convert_to_tensor(np.log(np.maximum(self.choice_weights, 1e-30))[None, :].astype("float32"))
        picks = ops.cast(ops.numpy.reshape(ops.random.categorical(logits, batch, seed=seed), (-1,)), "int32")
        table = ops.convert_to_tensor(np.asarray(self._method_ids(), dtype="int32"))
        method = ops.numpy.take(table, picks, axis=0)
        mask = lam = None
        view = (-1,) + (1,) * len(spatial)
        for k, member in enumerate(self.members):
            _, part, part_lam = member.draw_masks(ops, batch, spatial, seed)
            if not self.binary:
                part = ops.cast(part, "float32")
            if mask is None:
                mask, lam = part, part_lam
            else:
                chosen = ops.numpy.equal(picks, k)
                mask = ops.numpy.where(ops.numpy.reshape(chosen, view), part, mask)
                lam = ops.numpy.where(chosen, part_lam, lam)
        return method, mask, lam

    def get_config(self):
        config = super().get_config()
        config.update({"layers": [keras.saving.serialize_keras_object(m) for m in self.members],
                       "weights": self.choice_weights})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layers"] = [keras.saving.deserialize_keras_object(m) for m in config["layers"]]
        return cls(**config)
