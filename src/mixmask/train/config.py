"""The configuration of one training run, and the ``--data`` names it can load."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mixmask.errors import MixMaskError

__all__ = ["DATA_NAMES", "OPTIMIZERS", "PRESETS", "TASK_DEFAULTS", "TrainConfig", "check_device", "load_data",
           "pick_samples", "task_of"]

#: Spellings of ``--data`` (``PATH`` is a folder on the user's disk).
DATA_NAMES: tuple[str, ...] = ("digits", "mnist1d", "shapes", "folder:PATH", "seg-folder:PATH", "cifar10:PATH")
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
_DEFAULT_LR = {"sgd": 0.05, "adamw": 1e-3}
#: ``--preset NAME``: values of options the command line leaves unset (docs/train.md says where they come from).
PRESETS: dict[str, dict[str, Any]] = {
    # PreAct-ResNet-18 on CIFAR as in the FMix / OpenMixup tables: SGD 0.1, momentum 0.9, weight
    # decay 5e-4, batch 128, 200 epochs, 4-pixel pad-and-crop + horizontal flip; no warm-up
    "cifar-paper": {"model": "preact_resnet18", "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
                    "weight_decay": 5e-4, "epochs": 200, "batch_size": 128, "warmup_epochs": 0.0,
                    "augment": "crop,flip"},
}
#: Defaults of the options left unset (None), per task (docs/train.md says why these). ``lr`` is
#: the task's peak rate for its default optimiser; another optimiser gets its own default rate.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {"model": "cnn", "optimizer": "sgd", "epochs": 10, "batch_size": 64},
    "segmentation": {"model": "unet", "optimizer": "adamw", "lr": 2e-3, "epochs": 10, "batch_size": 8,
                     "ignore_index": 255},
}
#: Options that only mean something for ``seg-folder:PATH`` data.
_FOLDER_LABEL_FIELDS = ("layout", "colors", "class_names", "num_classes")


def task_of(data: str) -> str:
    """``"segmentation"`` for ``shapes`` and ``seg-folder:PATH``, else ``"classification"``."""
    return "segmentation" if data == "shapes" or data.startswith("seg-folder:") else "classification"


#: Fields that may differ between a run and its resumption (they do not change the results).
RUNTIME_FIELDS: tuple[str, ...] = ("out", "resume", "workers", "device", "progress", "fold")


def check_device(name: str) -> torch.device | None:
    """Check a ``--device`` value: ``auto`` (None), ``cpu``, ``cuda`` or ``cuda:N`` present on this machine.

    Raises:
        MixMaskError: an unknown spelling, or a CUDA device this machine does not have.
    """
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda") or (device.type == "cpu" and device.index not in (None, 0)):
        raise MixMaskError(f"--device must be auto, cpu, cuda or cuda:N, but got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MixMaskError(f"--device {name}: no CUDA device is available on this machine "
                               "(torch.cuda.is_available() is False); use --device cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise MixMaskError(f"--device {name}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return device


@dataclass
class TrainConfig:
    """Everything that defines a run; ``config.json`` is this, as a dict.

    Fields left None take the task's value from :data:`TASK_DEFAULTS` (:meth:`resolved`).

    Attributes:
        data: ``digits``, ``mnist1d``, ``shapes``, ``folder:PATH``, ``seg-folder:PATH`` or ``cifar10:PATH``.
        model: ``cnn``, ``preact_resnet18``, ``unet`` or ``timm:NAME``.
        mix: a mixing SPEC (see :func:`mixmask.train.spec.parse_mix`).
        epochs, batch_size: as usual (the batch size is per process under torchrun).
        lr: peak learning rate (None: 0.05 for SGD, 1e-3 for AdamW; 2e-3 for AdamW on segmentation).
        optimizer: ``sgd`` (Nesterov momentum) or ``adamw``.
        momentum, weight_decay: optimiser settings.
        warmup_epochs, warmup: warm-up length (epochs, may be fractional) and shape
            (``linear`` / ``exponential``) before the cosine decay.
        min_lr: learning rate at the end of the cosine.
        clip_grad: max gradient norm (None: no clipping).
        amp: mixed precision on CUDA (ignored on CPU).
        seed: seeds the model, the data order, the mixing streams and dropout.
        folds, fold: stratified K-fold of the training pool (0: no folds, a validation split instead);
            ``fold`` runs one fold only.
        val_fraction: share of the training pool held out for validation when ``folds == 0``.
        train_size: keep this many samples of the training pool (stratified, seed 0), before the
            validation split or the folds; the test split is untouched (None: all of it).
        test_size: keep this many samples of the test split (stratified, seed 0), for quick runs
            (None: all of it).
        augment: per-sample augmentation of the training images before mixing, a comma-separated
            subset of :data:`mixmask.train.augment.AUGMENTS` (``"crop,flip"``); ``""`` for none.
        preset: the name of the :data:`PRESETS` entry the command line started from (a record:
            the values it set are the fields themselves).
        tta: also report test accuracy averaged over the input and its flip along the last axis.
        workers: DataLoader worker processes.
        device: ``auto``, ``cpu``, ``cuda``...
        progress: show a progress bar (rich) when attached to a terminal.
        out: output folder.
        resume: continue the run in ``out`` from its last checkpoint.
        layout: ``seg-folder:`` layout, ``auto`` or one of :data:`mixmask.data.folders.LAYOUTS`.
        colors: ``seg-folder:`` colour table file (CSV ``name,r,g,b`` or JSON).
        class_names: ``seg-folder:`` file of class names (one per line, or a JSON list).
        num_classes: ``seg-folder:`` number of classes (default: the data set's, the table's, or
            the largest id found + 1).
        ignore_index: segmentation: id of unlabelled pixels, left out of the loss and the metrics (255).
    """

    data: str = "digits"
    model: str | None = None
    mix: str = "none"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    warmup: str = "linear"
    min_lr: float = 0.0
    clip_grad: float | None = None
    amp: bool = True
    seed: int = 0
    folds: int = 0
    fold: int | None = None
    val_fraction: float = 0.1
    train_size: int | None = None
    test_size: int | None = None
    augment: str = ""
    preset: str | None = None
    tta: bool = False
    workers: int = 0
    device: str = "auto"
    progress: bool = True
    out: str = "runs/train"
    resume: bool = False
    layout: str = "auto"
    colors: str | None = None
    class_names: str | None = None
    num_classes: int | None = None
    ignore_index: int | None = None

    @property
    def task(self) -> str:
        return task_of(self.data)

    def resolved(self) -> TrainConfig:
        """A copy with every field left None set to the task's default (:data:`TASK_DEFAULTS`)."""
        defaults = dict(TASK_DEFAULTS[self.task])
        task_lr = defaults.pop("lr", None)
        out = dataclasses.replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})
        if out.lr is None:
            out.lr = task_lr if out.optimizer == defaults["optimizer"] and task_lr else _DEFAULT_LR.get(out.optimizer)
        return out

    def label_options(self) -> dict[str, Any]:
        """The options that say what a ``seg-folder:`` map means, for :func:`load_data`."""
        return {k: getattr(self, k) for k in _FOLDER_LABEL_FIELDS + ("ignore_index",)}

    def validate(self) -> TrainConfig:
        """Check the values that need no data (on a :meth:`resolved` config); returns self.

        Raises:
            MixMaskError: a value out of range, an unknown optimiser or warm-up, ``fold >= folds``, a
                segmentation option for classification data.
        """
        from mixmask.data.folders import LAYOUTS
        from mixmask.train.schedules import WARMUPS

        def positive_int(name: str, value: Any, low: int = 1) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise MixMaskError(f"--{name.replace('_', '-')} must be an int >= {low}, but got {value!r}")

        def real(name: str, value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise MixMaskError(f"--{name.replace('_', '-')} must be a finite number, but got {value!r}")
            return float(value)

        full = self.resolved()
        positive_int("epochs", full.epochs)
        positive_int("batch_size", full.batch_size)
        positive_int("workers", self.workers, 0)
        positive_int("seed", self.seed, 0)
        if full.optimizer not in OPTIMIZERS:
            raise MixMaskError(f"unknown optimizer {full.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if self.warmup not in WARMUPS:
            raise MixMaskError(f"unknown warm-up {self.warmup!r}; valid: {', '.join(WARMUPS)}")
        if self.lr is not None and not real("lr", self.lr) > 0:
            raise MixMaskError(f"--lr must be > 0, but got {self.lr!r}")
        if not 0 <= real("momentum", self.momentum) < 1:
            raise MixMaskError(f"--momentum must be in [0, 1), but got {self.momentum!r}")
        if not real("weight_decay", self.weight_decay) >= 0:
            raise MixMaskError(f"--weight-decay must be >= 0, but got {self.weight_decay!r}")
        if not 0 <= real("min_lr", self.min_lr) <= full.base_lr:
            raise MixMaskError(f"--min-lr must be in [0, the learning rate {full.base_lr:g}] (the cosine decays "
                               f"from the learning rate down to it), but got {self.min_lr!r}")
        if not 0 <= real("warmup_epochs", self.warmup_epochs) <= full.epochs:
            raise MixMaskError(f"--warmup-epochs must be in [0, epochs={full.epochs}], but got {self.warmup_epochs}")
        if self.clip_grad is not None and not real("clip_grad", self.clip_grad) > 0:
            raise MixMaskError(f"--clip-grad must be > 0, but got {self.clip_grad}")
        positive_int("folds", self.folds, 0)
        if self.folds == 1:
            raise MixMaskError(f"--folds must be 0 (no folds) or >= 2, but got {self.folds}")
        if self.fold is not None:
            if self.folds == 0:
                raise MixMaskError(f"--fold {self.fold} needs --folds K >= 2, but got --folds 0")
            if isinstance(self.fold, bool) or not isinstance(self.fold, int) or not 0 <= self.fold < self.folds:
                raise MixMaskError(f"--fold must be in [0, {self.folds}) for --folds {self.folds}, but got {self.fold}")
        if self.folds == 0 and not 0 < real("val_fraction", self.val_fraction) < 1:
            raise MixMaskError(f"--val-fraction must be in (0, 1), but got {self.val_fraction}")
        if self.train_size is not None:
            positive_int("train_size", self.train_size, 2)
        if self.test_size is not None:
            positive_int("test_size", self.test_size, 1)
        if self.preset is not None and self.preset not in PRESETS:
            raise MixMaskError(f"unknown preset {self.preset!r}; valid: {', '.join(PRESETS)}")
        from mixmask.train.augment import parse_augment

        parse_augment(self.augment)
        check_device(self.device)
        given = [k for k in _FOLDER_LABEL_FIELDS if getattr(self, k) not in (None, "auto")]
        if given and not self.data.startswith("seg-folder:"):
            raise MixMaskError(f"--{given[0].replace('_', '-')} applies to seg-folder:PATH data, but got --data "
                               f"{self.data}")
        if self.ignore_index is not None and self.task != "segmentation":
            raise MixMaskError(f"--ignore-index applies to segmentation data (shapes, seg-folder:PATH), but got "
                               f"--data {self.data}")
        if self.layout not in ("auto",) + LAYOUTS:
            raise MixMaskError(f"unknown layout {self.layout!r}; valid: auto, {', '.join(LAYOUTS)}")
        if self.num_classes is not None:
            positive_int("num_classes", self.num_classes)
        if self.ignore_index is not None:
            positive_int("ignore_index", self.ignore_index, 0)
        return self

    @property
    def base_lr(self) -> float:
        return self.lr if self.lr is not None else _DEFAULT_LR[self.optimizer]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The fields that must match for ``--resume`` (all but output/runtime settings)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}


def pick_samples(targets: torch.Tensor | None, size: int, keep: int) -> np.ndarray:
    """``keep`` of ``size`` sample indices (sorted), stratified by ``targets`` when every class can be kept.

    Stratified (scikit-learn's ``train_test_split``, seed 0) when ``targets`` are given, ``keep`` is
    at least the number of classes present and each class has two samples or more; otherwise a
    seeded random choice (segmentation maps, tiny sets). The same arguments give the same indices.

    Args:
        targets: ``(size,)`` class ids, or None.
        size: how many samples there are.
        keep: how many to keep, ``1 <= keep <= size``.

    Returns:
        int64 ``(keep,)`` indices.
    """
    if keep >= size:
        return np.arange(size)
    if targets is not None:
        counts = torch.bincount(targets)
        present = counts[counts > 0]
        if int(present.min()) >= 2 and len(present) <= keep <= size - len(present):
            from sklearn.model_selection import train_test_split

            chosen, _ = train_test_split(np.arange(size), train_size=keep, random_state=0, stratify=targets.numpy())
            return np.sort(chosen)
    return np.sort(np.random.default_rng(0).permutation(size)[:keep])


def _resize_splits(data, spec: str, train_size: int | None, test_size: int | None):
    """Keep ``train_size`` samples of the training pool and ``test_size`` of the test split (stratified).

    Raises:
        MixMaskError: a size larger than the split it is taken from.
    """
    from torch.utils.data import Subset

    sizes = (len(data.train), len(data.test))
    for option, size, split, what in (("--train-size", train_size, data.train, "training pool"),
                                      ("--test-size", test_size, data.test, "test split")):
        if size is not None and size > len(split):
            other = (f"; its test split of {len(data.test)} is kept apart" if option == "--train-size"
                     else "; --test-size only shrinks it")
            raise MixMaskError(f"{option} {size} is larger than the {what} of --data {spec}, which has {len(split)} "
                               f"samples{other}")
    if train_size is not None and train_size < len(data.train):
        idx = pick_samples(data.train_targets, len(data.train), train_size)
        data.train = Subset(data.train, idx.tolist())
        if data.train_targets is not None:
            data.train_targets = data.train_targets[torch.as_tensor(idx)]
    if test_size is not None and test_size < len(data.test):
        idx = pick_samples(data.test_targets, len(data.test), test_size)
        data.test = Subset(data.test, idx.tolist())
        if data.test_targets is not None:
            data.test_targets = data.test_targets[torch.as_tensor(idx)]
    if (len(data.train), len(data.test)) != sizes:
        data.source_sizes = sizes
    return data


def load_data(spec: str, train_size: int | None = None, test_size: int | None = None, **labels: Any):
    """Load a ``--data`` spelling.

    Args:
        spec: see :data:`DATA_NAMES`.
        train_size: keep this many samples of the training pool (stratified); the test split is
            never shrunk by it.
        test_size: keep this many samples of the test split (stratified), for quick runs.
        labels: for segmentation data, :meth:`TrainConfig.label_options` (``layout``, ``colors``,
            ``class_names``, ``num_classes``, ``ignore_index``).

    Returns:
        A :class:`mixmask.data.classification.ClassificationData` (also for segmentation data,
        with ``task="segmentation"``).

    Raises:
        MixMaskError: unknown name (the valid ones are listed), missing folder, unreadable data, a
            size larger than its split.
    """
    from mixmask.data import classification as C

    name, _, path = spec.partition(":")
    if name in ("folder", "seg-folder", "cifar10") and not path:
        raise MixMaskError(f"--data {name}: needs a folder, e.g. {name}:/data/images, but got {spec!r}")
    if name == "digits" and not path:
        data = C.load_digits()
    elif name == "mnist1d" and not path:
        data = C.load_mnist1d()
    elif name == "cifar10":
        data = C.load_cifar(path)
    elif name in ("shapes", "folder", "seg-folder") and (name != "shapes" or not path):
        from mixmask.train.folder_data import load_folder_data

        data = load_folder_data(name, path, train_size, test_size, **labels)
    else:
        raise MixMaskError(f"unknown data {spec!r}; valid: {', '.join(DATA_NAMES)}")
    return _resize_splits(data, spec, train_size, test_size)
