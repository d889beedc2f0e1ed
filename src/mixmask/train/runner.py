"""The training loop of ``mixmask train``: one run, or K folds, on one process or under torchrun.

A run is put together from one part per responsibility: :class:`~mixmask.train.loaders.Loaders`
(batches), :class:`~mixmask.train.learner.Learner` (model and optimiser),
:class:`~mixmask.train.epochs.EpochLoop` (training and evaluation),
:class:`~mixmask.train.records.RunRecords` (checkpoints, metrics, resume) and
:mod:`mixmask.train.reports` (summary, reports, pictures).

Determinism: the model is initialised, the data order drawn and every batch mixed from streams
derived from ``seed`` (and the epoch and rank), so a run resumed from its last checkpoint repeats
the uninterrupted run exactly on the same device and thread count.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixmask.errors import MixMaskError
from mixmask.resources import check_memory, check_writable, format_bytes
from mixmask.train import reports
from mixmask.train.config import TrainConfig, load_data
from mixmask.train.augment import build_augment, parse_augment
from mixmask.train.distributed import Context, barrier, setup
from mixmask.train.epochs import EpochLoop, StepHook, training_mix
from mixmask.train.learner import Learner
from mixmask.train.loaders import Loaders
from mixmask.train.models import build_model
from mixmask.train.records import RunRecords, check_resumable, save_json
from mixmask.train.seeds import derive_seed
from mixmask.train.spec import parse_mix

__all__ = ["train", "check_resumable", "derive_seed", "Interrupt", "StepHook"]


class Interrupt(KeyboardInterrupt):
    """Raised by a step hook to stop a run as Ctrl-C would (used by tests)."""


class Run:
    """One training run (one fold, or the train/validation split) writing into ``out``."""

    def __init__(self, cfg: TrainConfig, data, train_idx: np.ndarray, val_idx: np.ndarray, out: Path,
                 ctx: Context, hook: StepHook | None) -> None:
        self.cfg, self.data, self.ctx, self.out = cfg, data, ctx, out
        self.train_idx, self.val_idx = train_idx, val_idx
        self.test_idx = np.arange(len(data.test))
        augment = build_augment(parse_augment(cfg.augment), data.input_shape, data.ignore_index)
        self.loaders = Loaders(cfg, data.train, train_idx, ctx, augment, dense=data.task == "segmentation")
        self.learner = Learner(cfg, data, ctx)
        self.loop = EpochLoop(cfg, data, ctx, self.learner, self.loaders, hook)
        self.records = RunRecords(cfg, out, ctx)
        segmentation = data.task == "segmentation"
        self.score_key = ("val_miou" if segmentation else "val_acc") if len(val_idx) else "train_acc"

    def split_sizes(self) -> dict[str, int]:
        """The samples this run trains, validates and tests on (``config.json``'s ``split``)."""
        return {"train": len(self.train_idx), "val": len(self.val_idx), "test": len(self.test_idx)}

    def split_text(self) -> str:
        """``"400 train / 100 val / 1000 test (training pool: 500 of 4000 kept by --train-size)"``."""
        sizes = self.split_sizes()
        text = f"--data {self.cfg.data}: {sizes['train']} train / {sizes['val']} val / {sizes['test']} test"
        kept = []
        if self.data.source_sizes is not None:
            (source_pool, source_test), pool, test = self.data.source_sizes, len(self.data.train), len(self.data.test)
            if pool != source_pool:
                kept.append(f"training pool: {pool} of {source_pool} kept by --train-size")
            if test != source_test:
                kept.append(f"test split: {test} of {source_test} kept by --test-size")
        return text + (f" ({'; '.join(kept)})" if kept else "")

    def _epoch(self, epoch: int, progress) -> tuple[dict[str, Any], list[float]]:
        """Train and evaluate one epoch: its ``metrics.jsonl`` row and the learning rate of each step."""
        cfg, ctx = self.cfg, self.ctx
        with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
            torch.manual_seed(derive_seed(cfg.seed, 2, epoch, ctx.rank))
            tick = time.perf_counter()
            row: dict[str, Any] = {"epoch": epoch + 1}
            trained, lrs = self.loop.train_epoch(epoch, progress)
            row["lr"] = lrs[-1] if lrs else (self.records.lrs[-1] if self.records.lrs else cfg.base_lr)
            row.update(trained)
            for split, dataset, indices in (("val", self.data.train, self.val_idx),
                                            ("test", self.data.test, self.test_idx)):
                if len(indices):
                    result = self.loop.evaluate(dataset, indices)
                    row[f"{split}_loss"], row[f"{split}_acc"] = result["loss"], result["acc"]
                    if self.loop.segmentation:
                        row[f"{split}_miou"] = result["miou"]
            row["epoch_seconds"] = time.perf_counter() - tick
        return row, lrs

    def run(self) -> dict[str, Any]:
        """Train the remaining epochs (checkpointing each), then :meth:`finish`."""
        cfg, ctx = self.cfg, self.ctx
        self.records.load(self.learner)
        self.records.write_config({**self.data.describe(), "split": self.split_sizes()})
        if ctx.main:
            print(f"mixmask train: {self.split_text()}", flush=True)
        barrier(ctx)
        started = time.perf_counter()
        with reports.progress_bar(cfg.progress and ctx.main) as progress:
            for epoch in range(self.records.start_epoch, cfg.epochs):
                row, lrs = self._epoch(epoch, progress)
                self.records.end_epoch(row, lrs, self.score_key, self.learner)
                if ctx.main:
                    reports.print_row(row, cfg.epochs)
                barrier(ctx)
        return self.finish(time.perf_counter() - started)

    def finish(self, wall: float) -> dict[str, Any]:
        """Final evaluation (last and best checkpoints, TTA), reports, plots and ``summary.json``."""
        cfg, data, loop = self.cfg, self.data, self.loop
        last = loop.evaluate(data.test, self.test_idx, predictions=True)
        summary = reports.summary(self, last, wall)
        if cfg.tta:
            tta = loop.evaluate(data.test, self.test_idx, tta=True)
            summary["test_acc_tta"] = tta["acc"]
            if loop.segmentation:
                summary["test_miou_tta"] = tta["miou"]
        if cfg.folds and len(self.val_idx):
            val = loop.evaluate(data.train, self.val_idx, predictions=True)
            summary["val_indices"] = self.val_idx.tolist()
            summary["val_predictions"] = val["pred"].tolist()
        barrier(self.ctx)
        at_best = last
        best = self.records.best_model()
        if best is not None:
            model = self.learner.model
            current = {k: v.clone() for k, v in model.state_dict().items()}
            model.load_state_dict(best)
            at_best = loop.evaluate(data.test, self.test_idx)
            model.load_state_dict(current)
        summary["test_acc_at_best_val"] = at_best["acc"]
        if loop.segmentation:
            summary["test_miou_at_best_val"] = at_best["miou"]
        if self.ctx.main:
            with self.records.writing("the reports and summary.json", len(self.records.history)):
                reports.write_reports(self, last, summary)
                save_json(self.out / "summary.json", summary)
        barrier(self.ctx)
        return summary


def _check_mix_layout(mix, spec: str) -> None:
    """The loop feeds channels-first batches ``(B, C, *S)``: refuse ``channels_last=True`` anywhere in the SPEC."""
    members = [mix, *getattr(mix, "transforms", [])] if mix is not None else []
    if any(getattr(m, "channels_last", False) for m in members):
        raise MixMaskError(f"--mix {spec!r}: the training loop feeds channels-first batches (B, C, *S), so "
                           "channels_last=True would mix along the wrong axis; drop channels_last")


def _check_mix_on(cfg: TrainConfig, data) -> None:
    """Mix two training samples as the loop will, so that a SPEC that does not fit the data fails now."""
    mix = training_mix(cfg, data)
    if mix is None or len(data.train) < 2:
        return
    items = [data.train[i] for i in range(2)]
    x = torch.stack([torch.as_tensor(item[0]) for item in items]).float()
    y = torch.stack([torch.as_tensor(item[1]) for item in items]).long()
    try:
        mix(x, masks=y) if data.task == "segmentation" else mix(x, y)
    except (MixMaskError, RuntimeError, TypeError) as err:
        raise MixMaskError(f"--mix {cfg.mix!r} cannot mix {data.task} batches of shape {tuple(x.shape)} from "
                           f"--data {cfg.data}: {err}") from None


def _check_class_memory(cfg: TrainConfig, data) -> None:
    """Refuse a class count whose per-class maps and confusion matrix cannot fit (e.g. a 16-bit id 60000).

    Counted (a lower bound): about 6 float32 ``(B, K, *S)`` maps per training step (logits, their
    log-softmax, gradients, soft targets), 3 per evaluation batch, and 4 int64/float64 ``(K, K)``
    confusion matrices.
    """
    k = data.num_classes
    pixels = math.prod(data.input_shape[1:]) if data.task == "segmentation" else 1
    maps = max(6 * cfg.batch_size, 3 * max(256, cfg.batch_size)) * k * pixels * 4
    matrices = 4 * k * k * 8
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    what = (f"--data {cfg.data} with {k} classes (ids 0 to {k - 1}; per-class maps {format_bytes(maps)}, "
            f"confusion matrices {format_bytes(matrices)})")
    hint = ("check the largest id of the masks (unlabelled pixels must be 255) or use a smaller --batch-size"
            if data.task == "segmentation" else "use a smaller --batch-size")
    if device == "cpu":
        check_memory(maps + matrices, what, hint)
    else:
        check_memory(maps, what, hint, device)
        check_memory(matrices, what, hint)


def _check_classes_fit(cfg: TrainConfig, num_classes: int, targets: np.ndarray, train_idx: np.ndarray) -> None:
    """With ``--train-size``: every class must keep at least one sample in the training part.

    Raises:
        MixMaskError: naming the classes left out, the kept pool's size and the split that left them out.
    """
    kept = np.bincount(targets, minlength=num_classes)
    missing = [c for c in range(num_classes) if kept[c] == 0]
    if missing:
        raise MixMaskError(f"--train-size {cfg.train_size} keeps no sample of class(es) {missing[:10]} of the "
                           f"{num_classes} classes: it must be at least {num_classes}, one per class")
    trained = np.bincount(targets[train_idx], minlength=num_classes)
    missing = [c for c in range(num_classes) if trained[c] == 0]
    if missing:
        held = len(targets) - len(train_idx)
        raise MixMaskError(f"--train-size {cfg.train_size} is too small to hold every class in the training "
                           f"split: --val-fraction {cfg.val_fraction:g} holds out {held} of {len(targets)} samples and "
                           f"leaves class(es) {missing[:10]} of the {num_classes} without a training sample (smallest "
                           f"class of the kept pool: {int(kept.min())}); raise --train-size or lower --val-fraction")


def _splits(cfg: TrainConfig, data) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, val) index pairs into the training pool: K stratified folds, or one validation split."""
    n = len(data.train)
    targets = data.train_targets.numpy() if data.train_targets is not None else None
    if cfg.folds > n:
        raise MixMaskError(f"--folds {cfg.folds} needs at least {cfg.folds} training samples, but --data {cfg.data} "
                           f"has {n}")
    if cfg.folds:
        from sklearn.model_selection import KFold, StratifiedKFold

        if targets is not None:
            smallest = int(np.bincount(targets).min(initial=n)) if len(targets) else 0
            if smallest < cfg.folds:
                counts = np.bincount(targets)
                kept = f" of the {n} kept by --train-size {cfg.train_size}" if cfg.train_size is not None else ""
                raise MixMaskError(f"--folds {cfg.folds} needs at least {cfg.folds} samples of every class, but the "
                                   f"smallest class has {int(counts[counts > 0].min())}{kept}")
            splitter = StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed)
            return [(np.sort(a), np.sort(b)) for a, b in splitter.split(np.zeros(n), targets)]
        splitter = KFold(cfg.folds, shuffle=True, random_state=cfg.seed)
        return [(np.sort(a), np.sort(b)) for a, b in splitter.split(np.zeros(n))]
    if targets is not None:
        from mixmask.data.classification import stratified_split

        split = stratified_split(torch.as_tensor(targets), cfg.val_fraction, 0)
        if cfg.train_size is not None:
            _check_classes_fit(cfg, data.num_classes, targets, split[0])
        return [split]
    order = np.random.default_rng(0).permutation(n)
    cut = max(1, round(n * cfg.val_fraction))
    return [(np.sort(order[cut:]), np.sort(order[:cut]))]


def train(cfg: TrainConfig, *, hook: StepHook | None = None) -> dict[str, Any]:
    """Run ``mixmask train``: validate everything, then train one run or K folds.

    Args:
        cfg: the configuration (fields left None take the task's defaults, :meth:`TrainConfig.resolved`).
        hook: called after every step with ``(epoch, step)``; raising stops the run (the last
            finished epoch stays on disk for ``resume``).

    Returns:
        The ``summary.json`` content (for folds: the aggregate with out-of-fold accuracy).

    Raises:
        MixMaskError: bad configuration, data, model or mix spec, or a resume that does not match,
            all before any training starts.
    """
    cfg = cfg.resolved().validate()
    out = check_writable(cfg.out, "--out", folder=True)
    _check_mix_layout(parse_mix(cfg.mix), cfg.mix)
    data = load_data(cfg.data, cfg.train_size, cfg.test_size, **cfg.label_options())
    with torch.random.fork_rng(devices=[]):
        build_model(cfg.model, data.input_shape, data.num_classes, data.task)
    _check_class_memory(cfg, data)
    build_augment(parse_augment(cfg.augment), data.input_shape, data.ignore_index)
    _check_mix_on(cfg, data)
    splits = _splits(cfg, data)
    if cfg.folds == 0:
        check_resumable(out / "last.pt", cfg)
    ctx = setup(cfg.device)
    try:
        if cfg.folds == 0:
            return Run(cfg, data, *splits[0], out, ctx, hook).run()
        chosen = range(cfg.folds) if cfg.fold is None else [cfg.fold]
        for i in chosen:
            check_resumable(out / f"fold{i}" / "last.pt", replace(cfg, fold=i))
        for i in chosen:
            fold_dir = out / f"fold{i}"
            if cfg.resume and (fold_dir / "summary.json").exists():
                continue
            Run(replace(cfg, fold=i), data, *splits[i], fold_dir, ctx, hook).run()
        return _aggregate_folds(cfg, data, splits, out, ctx)
    finally:
        if ctx.owns_group:
            torch.distributed.destroy_process_group()


def _aggregate_folds(cfg: TrainConfig, data, splits, out: Path, ctx: Context) -> dict[str, Any]:
    """Out-of-fold accuracy and the mean/std of each fold's test accuracy, once every fold is done."""
    summaries = []
    for i in range(cfg.folds):
        path = out / f"fold{i}" / "summary.json"
        if not path.exists():
            return {"folds": cfg.folds, "finished": i, "out": str(out)}
        summaries.append(json.loads(path.read_text()))
    targets = data.train_targets.numpy() if data.train_targets is not None else None
    oof = np.full(len(data.train), -1, dtype=np.int64)
    for s in summaries:
        oof[np.asarray(s["val_indices"], dtype=np.int64)] = s["val_predictions"]
    tests = [s["test_acc"] for s in summaries]
    result: dict[str, Any] = {
        "data": cfg.data, "model": cfg.model, "mix": cfg.mix, "seed": cfg.seed, "epochs": cfg.epochs,
        "folds": cfg.folds, "fold_sizes": [len(v) for _, v in splits],
        "oof_acc": float((oof == targets).mean()) if targets is not None else None,
        "test_acc_per_fold": tests, "test_acc": float(np.mean(tests)), "test_acc_std": float(np.std(tests)),
        "test_error": 1.0 - float(np.mean(tests)),
    }
    if ctx.main:
        save_json(out / "config.json", {**cfg.to_dict(), "dataset": data.describe()})
        save_json(out / "summary.json", result)
    return result
