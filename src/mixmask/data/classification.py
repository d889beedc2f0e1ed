"""Classification data sets for ``mixmask train``: ``digits``, ``mnist1d`` and ``cifar10:PATH``.

Each loader returns a :class:`ClassificationData`: a training pool (split later into train /
validation / folds) and a held-out test split that is never used for training or model selection.
Everything is generated or read locally: nothing is downloaded.
"""

from __future__ import annotations

import functools
import importlib
import math
import pickle
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from mixmask.errors import MixMaskError

__all__ = ["TensorData", "ClassificationData", "load_digits", "load_mnist1d", "load_cifar", "stratified_split"]


class TensorData(Dataset):
    """An in-memory data set whose batches are gathered in one indexing op (no per-sample collate).

    Args:
        inputs: ``(N, C, *S)`` float or uint8.
        targets: ``(N,)`` int64 class ids, or ``(N, *S)`` int64 dense ids.
    """

    def __init__(self, inputs: Tensor, targets: Tensor) -> None:
        if inputs.shape[0] != targets.shape[0]:
            raise MixMaskError(f"expected as many targets as inputs, but got {tuple(inputs.shape)} inputs and "
                               f"{tuple(targets.shape)} targets")
        self.inputs = inputs
        self.targets = targets

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.targets[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        """A whole batch ``(inputs[indices], targets[indices])``; the DataLoader's collate passes it on."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return self.inputs.index_select(0, index), self.targets.index_select(0, index)


@dataclass
class ClassificationData:
    """A data set split into a training pool and a held-out test split.

    Attributes:
        name: the ``--data`` spelling it came from.
        train, test: map-style data sets yielding ``(input (C, *S), target)``.
        train_targets, test_targets: ``(N,)`` int64 class ids (for stratification and reports);
            None for segmentation.
        classes: class names, index = id.
        input_shape: ``(C, *S)``.
        task: ``"classification"`` or ``"segmentation"``.
        scale, mean, std: inputs are fed to the model as ``(x * scale - mean) / std`` per channel.
        ignore_index: id of unlabelled pixels (segmentation), or None.
        source_sizes: ``(training pool, test split)`` sizes before ``--train-size`` / ``--test-size``
            kept part of them (None: nothing was left out).
        colors: display colour ``(r, g, b)`` of each class (segmentation pictures), or None.
        labels: how the maps were read (segmentation folders: layout, rule, splits), for ``config.json``.
    """

    name: str
    train: Dataset
    train_targets: Tensor | None
    test: Dataset
    test_targets: Tensor | None
    classes: list[str]
    input_shape: tuple[int, ...]
    task: str = "classification"
    scale: float = 1.0
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])
    ignore_index: int | None = None
    source_sizes: tuple[int, int] | None = None
    colors: list[tuple[int, int, int]] | None = None
    labels: dict[str, Any] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (sizes, shape, classes)."""
        out = {"name": self.name, "task": self.task, "train_size": len(self.train), "test_size": len(self.test),
               "input_shape": list(self.input_shape), "classes": list(self.classes)}
        if self.source_sizes is not None:
            out["source_train_size"], out["source_test_size"] = self.source_sizes
        if self.task == "segmentation":
            out.update(num_classes=self.num_classes, ignore_index=self.ignore_index,
                       colors=[list(c) for c in self.colors] if self.colors else None, **(self.labels or {}))
        return out


def stratified_split(targets: Tensor, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)`` with ``held_out`` a stratified ``test_fraction`` of ``targets``.

    Falls back to a plain seeded split when the data are too small to stratify (fewer held-out
    samples than classes, or a class with a single sample).

    Args:
        targets: ``(N,)`` class ids.
        test_fraction: in (0, 1).
        seed: seed of the split (scikit-learn's ``random_state``).

    Returns:
        Two sorted int64 index arrays.
    """
    from sklearn.model_selection import train_test_split

    labels = targets.numpy()
    counts = np.bincount(labels)
    present = counts[counts > 0]
    held_count = math.ceil(test_fraction * len(labels))
    stratify = labels if held_count >= len(present) and len(labels) - held_count >= len(present) \
        and present.min(initial=0) >= 2 else None
    keep, held = train_test_split(np.arange(len(labels)), test_size=test_fraction, random_state=seed,
                                  stratify=stratify)
    return np.sort(keep), np.sort(held)


def _channel_stats(inputs: Tensor) -> tuple[list[float], list[float]]:
    dims = [0] + list(range(2, inputs.ndim))
    values = inputs.double()
    return values.mean(dims).tolist(), values.std(dims).clamp_min(1e-6).tolist()


def load_digits(size: int = 32, test_fraction: float = 0.2, split_seed: int = 0) -> ClassificationData:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images), upsampled to ``size`` x ``size``.

    Args:
        size: output side (bilinear upsampling of the 8x8 grid, values scaled to [0, 1]).
        test_fraction: stratified share kept apart as the test split.
        split_seed: seed of that split (fixed, so every run is tested on the same images).

    Returns:
        :class:`ClassificationData` with inputs float32 ``(1, size, size)`` and 10 classes.
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = torch.from_numpy(bunch.images).float().div_(16.0).unsqueeze(1)
    if size != 8:
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    targets = torch.from_numpy(bunch.target).long()
    keep, held = stratified_split(targets, test_fraction, split_seed)
    mean, std = _channel_stats(images[keep])
    return ClassificationData("digits", TensorData(images[keep], targets[keep]), targets[keep],
                              TensorData(images[held], targets[held]), targets[held],
                              [str(i) for i in range(10)], (1, size, size), mean=mean, std=std)


def load_mnist1d(num_samples: int = 5000, seed: int = 42) -> ClassificationData:
    """MNIST-1D signals (Greydanus, 2020) made by the ``mnist1d`` package's generator (no download).

    The generator's own train/test split (80/20) is kept; the global ``random``/``numpy`` states it
    seeds are restored afterwards.

    Args:
        num_samples: how many signals to generate (the package's default is 5000).
        seed: the generator's seed (42 reproduces the published data set).

    Returns:
        :class:`ClassificationData` with inputs float32 ``(1, 40)`` and 10 classes.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:
        raise MixMaskError("--data mnist1d needs the mnist1d package (pip install 'mixmask[train]'), "
                           "but it is not installed") from err
    args = get_dataset_args()
    args.num_samples, args.seed = int(num_samples), int(seed)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        made = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x = torch.from_numpy(made["x"]).float().unsqueeze(1)
    x_test = torch.from_numpy(made["x_test"]).float().unsqueeze(1)
    y, y_test = torch.from_numpy(made["y"]).long(), torch.from_numpy(made["y_test"]).long()
    return ClassificationData("mnist1d", TensorData(x, y), y, TensorData(x_test, y_test), y_test,
                              [str(i) for i in range(10)], tuple(x.shape[1:]))


_CIFAR10 = ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta", "label_names", b"labels", 10)
_CIFAR100 = (["train"], ["test"], "meta", "fine_label_names", b"fine_labels", 100)


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocols 0-2 (``encode(text, "latin1")``), and nothing else."""
    if not isinstance(text, str) or encoding != "latin1" or errors != "strict":
        raise pickle.UnpicklingError(f"only _codecs.encode(str, 'latin1') is allowed, but got encoding {encoding!r}")
    return text.encode("latin1")


@functools.cache
def _allowed_globals() -> dict[tuple[str, str], Any]:
    """``(module, name)`` → object, for the globals a pickled numpy array names (numpy 1 and 2 spellings)."""
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                           ("_codecs", "encode"): _latin1_encode}
    for package in ("numpy._core", "numpy.core"):
        for module, name in ((f"{package}.multiarray", "_reconstruct"), (f"{package}.multiarray", "scalar"),
                             (f"{package}.numeric", "_frombuffer")):
            try:
                with warnings.catch_warnings():  # numpy 2 warns when numpy.core is imported
                    warnings.simplefilter("ignore", DeprecationWarning)
                    allowed[(module, name)] = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):
                continue
    return allowed


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds only what a CIFAR batch holds: dicts, lists, bytes, str, numbers and numpy arrays.

    A pickle can name any importable callable and have it called while loading (``os.system``
    included), so a batch file from elsewhere is untrusted input: every global outside the numpy
    array helpers is refused before anything is called.
    """

    def find_class(self, module: str, name: str) -> Any:
        found = _allowed_globals().get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR batch never holds (only dicts, "
                                         "lists, bytes, str, ints and numpy arrays are read)")
        return found


def _unpickle(path: Path) -> Any:
    """Read a CIFAR python batch with :class:`_BatchUnpickler` (``encoding="bytes"``, as the batches were written)."""
    with open(path, "rb") as handle:
        try:
            return _BatchUnpickler(handle, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                KeyError, MemoryError) as err:
            raise MixMaskError(f"expected a CIFAR python-pickle batch at {str(path)!r}, but could not read it: "
                               f"{err}") from None


def _get(batch: dict, key: bytes) -> Any:
    return batch[key] if key in batch else batch.get(key.decode())


def _cifar_arrays(paths: list[Path], label_key: bytes, num_classes: int) -> tuple[Tensor, Tensor]:
    """Images uint8 ``(N, 3, 32, 32)`` and labels int64 ``(N,)`` of the batches, each checked."""
    images, labels = [], []
    for path in paths:
        batch = _unpickle(path)
        if not isinstance(batch, dict):
            raise MixMaskError(f"expected a dict with b'data' and {label_key!r} in {str(path)!r}, but it holds a "
                               f"{type(batch).__name__}")
        data, ids = _get(batch, b"data"), _get(batch, label_key)
        if data is None or ids is None:
            raise MixMaskError(f"expected keys b'data' and {label_key!r} in {str(path)!r}, but got "
                               f"{sorted(map(repr, batch))}")
        if not isinstance(data, np.ndarray) or data.dtype.kind not in "ui" or data.ndim != 2 \
                or data.shape[1] != 3 * 32 * 32:
            shown = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
            raise MixMaskError(f"expected b'data' in {str(path)!r} to be an integer array of shape (N, 3072), but "
                               f"got {shown}")
        if data.size and (int(data.min()) < 0 or int(data.max()) > 255):
            raise MixMaskError(f"expected b'data' in {str(path)!r} to hold pixel values 0 to 255, but they go "
                               f"from {int(data.min())} to {int(data.max())}")
        ok_ids = isinstance(ids, (list, np.ndarray)) and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (ids.tolist() if isinstance(
                ids, np.ndarray) else ids))
        if not ok_ids:
            kinds = sorted({type(v).__name__ for v in ids}) if isinstance(ids, (list, np.ndarray)) \
                else [type(ids).__name__]
            raise MixMaskError(f"expected {label_key!r} in {str(path)!r} to be a list of int class ids, but got "
                               f"{', '.join(kinds)}")
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(data):
            raise MixMaskError(f"expected one label per image in {str(path)!r}, but got {len(data)} images and "
                               f"{len(ids)} labels")
        bad = ids[(ids < 0) | (ids >= num_classes)]
        if len(bad):
            raise MixMaskError(f"expected {label_key!r} in {str(path)!r} to be class ids 0 to {num_classes - 1}, "
                               f"but got {sorted(set(bad.tolist()))[:10]}")
        images.append(torch.from_numpy(data.astype(np.uint8).reshape(-1, 3, 32, 32)))
        labels.append(torch.from_numpy(ids))
    return torch.cat(images), torch.cat(labels)


def _class_names(path: Path, key: str, count: int) -> list[str]:
    """Names from a meta file when it holds ``count`` of them, else ``"0"``, ``"1"``..."""
    meta = _unpickle(path) if path.is_file() else None
    names = _get(meta, key.encode()) if isinstance(meta, dict) else None
    if isinstance(names, list) and len(names) >= count and all(isinstance(n, (bytes, str)) for n in names):
        return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names[:count]]
    return [str(i) for i in range(count)]


def load_cifar(path: str | Path) -> ClassificationData:
    """CIFAR-10 or CIFAR-100 from the standard python-pickle batches on the user's disk.

    Looks in ``path`` and in ``path/cifar-10-batches-py`` / ``path/cifar-100-python`` for
    ``data_batch_1..5`` + ``test_batch`` (CIFAR-10) or ``train`` + ``test`` (CIFAR-100).

    Args:
        path: folder of the batches.

    Returns:
        :class:`ClassificationData` with uint8 inputs ``(3, 32, 32)`` (normalised on the fly).

    Raises:
        MixMaskError: when the folder is missing or holds neither set of batches.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise MixMaskError(f"expected a folder of CIFAR python batches for cifar10:PATH, but {str(root)!r} "
                           "is not a folder")
    for folder in (root, root / "cifar-10-batches-py", root / "cifar-100-python"):
        for train_names, test_names, meta_name, names_key, label_key, count in (_CIFAR10, _CIFAR100):
            if all((folder / n).is_file() for n in train_names + test_names):
                x, y = _cifar_arrays([folder / n for n in train_names], label_key, count)
                x_test, y_test = _cifar_arrays([folder / n for n in test_names], label_key, count)
                classes = _class_names(folder / meta_name, names_key, count)
                mean, std = _channel_stats(x[: 10000].float().div_(255))
                return ClassificationData(f"cifar10:{root}", TensorData(x, y), y, TensorData(x_test, y_test),
                                          y_test, classes, (3, 32, 32), scale=1 / 255, mean=mean, std=std)
    raise MixMaskError(f"expected CIFAR python batches (data_batch_1..5 and test_batch, or train and test) in "
                       f"{str(root)!r} or its cifar-10-batches-py / cifar-100-python sub-folder, but found "
                       f"{sorted(p.name for p in root.iterdir())[:20]}")
