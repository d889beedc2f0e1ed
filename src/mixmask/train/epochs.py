"""One training epoch (mix on the device, forward, backward, step) and one evaluation pass on clean data."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from mixmask.functional.kernels import PairTargets
from mixmask.functional.losses import mixed_cross_entropy
from mixmask.train.config import TrainConfig
from mixmask.train.distributed import Context, all_sum, gather_shards
from mixmask.train.learner import Learner
from mixmask.train.loaders import Loaders
from mixmask.train.metrics import accuracy, confusion_matrix, iou_per_class
from mixmask.train.schedules import lr_at
from mixmask.train.seeds import derive_seed
from mixmask.train.spec import parse_mix

__all__ = ["StepHook", "EpochLoop", "training_mix"]

#: Called after every optimisation step with ``(epoch, step_in_epoch)``; may raise to stop the run.
StepHook = Callable[[int, int], None]


def training_mix(cfg: TrainConfig, data):
    """The transform the training loop mixes with (None for ``--mix none``).

    Segmentation targets come out as pairs (own ids, partner ids, per-pixel weight): the same loss
    without ``(B, K, *S)`` soft targets.
    """
    segmentation = data.task == "segmentation"
    return parse_mix(cfg.mix, num_classes=data.num_classes, seed=cfg.seed,
                     ignore_index=data.ignore_index if segmentation else None,
                     target_format="pair" if segmentation else None)


class EpochLoop:
    """Trains a :class:`Learner` one epoch at a time and evaluates it.

    Batches are mixed in the loop, on the device, with ``sample(generator=)`` + ``apply(inplace=True,
    workspace=)``; the draws of epoch ``e`` on rank ``r`` come from the seed ``(seed, 1, e, r)``.

    Args:
        cfg: the run's configuration.
        data: the :class:`~mixmask.data.classification.ClassificationData`.
        ctx: rank, world size and device.
        learner: model and optimiser.
        loaders: the run's batches.
        hook: called after every step with ``(epoch, step)``.
    """

    def __init__(self, cfg: TrainConfig, data, ctx: Context, learner: Learner, loaders: Loaders,
                 hook: StepHook | None = None) -> None:
        self.cfg, self.ctx, self.learner, self.loaders, self.hook = cfg, ctx, learner, loaders, hook
        self.segmentation = data.task == "segmentation"
        self.ignore = data.ignore_index
        self.num_classes = data.num_classes
        self.mix = training_mix(cfg, data)
        self.total_steps = loaders.steps_per_epoch * cfg.epochs
        self.warmup_steps = round(cfg.warmup_epochs * loaders.steps_per_epoch)
        self.autocast = ctx.device.type == "cuda" and cfg.amp
        self.workspace: Tensor | None = None

    # -- one step ------------------------------------------------------------------------------
    def _mix(self, x: Tensor, y: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        if self.mix is None:
            return x, y
        labels, maps = (None, y) if self.segmentation else (y, None)  # maps too: ClassMix reads them
        params = self.mix.sample(x, labels, maps, generator=generator)
        if self.workspace is None or self.workspace.shape != x.shape:
            self.workspace = torch.empty_like(x)
        if self.segmentation:
            out = self.mix.apply(params, x, masks=y, num_classes=self.num_classes, inplace=True,
                                 workspace=self.workspace)
            return out.inputs, out.masks
        out = self.mix.apply(params, x, y, num_classes=self.num_classes, inplace=True, workspace=self.workspace)
        return out.inputs, out.targets

    def _mix_timed(self, x: Tensor, y: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, float]:
        tick = time.perf_counter()
        if self.mix is not None and self.ctx.device.type == "cpu" and torch.get_num_threads() > 1:
            # a mixing draw is a few dozen small ops (FMix: a small FFT and a sort): on the CPU,
            # intra-op threads cost more than they give there (FMix at 2 threads: 22 % of a
            # digits step, at 1 thread: 6 %)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                x, target = self._mix(x, y, generator)
            finally:
                torch.set_num_threads(threads)
        else:
            x, target = self._mix(x, y, generator)
        return x, target, time.perf_counter() - tick

    def _loss(self, logits: Tensor, target: Tensor) -> Tensor:
        ignore = -100 if self.ignore is None else self.ignore
        return mixed_cross_entropy(logits, target, ignore_index=ignore)

    def _correct(self, logits: Tensor, target: Tensor | PairTargets) -> tuple[Tensor, Tensor]:
        """(correct, counted) against the dominant label of (possibly soft or pair) targets, on the device."""
        pred = logits.argmax(1)
        if isinstance(target, PairTargets):  # the own id where its weight is at least one half
            weight = target.weight.view(target.weight.shape + (1,) * (target.own.ndim - target.weight.ndim))
            target = torch.where(weight >= 0.5, target.own, target.partner)
        if target.dtype.is_floating_point:
            keep, target = target.sum(1) > 0, target.argmax(1)
        else:
            keep = target != self.ignore if self.ignore is not None else torch.ones_like(target, dtype=torch.bool)
        return ((pred == target) & keep).sum(), keep.sum()

    def _autocast(self):
        return torch.autocast(self.ctx.device.type, dtype=torch.bfloat16) if self.autocast else nullcontext()

    # -- one epoch -----------------------------------------------------------------------------
    def train_epoch(self, epoch: int, progress: Any = None) -> tuple[dict[str, float], list[float]]:
        """Train one epoch.

        Returns:
            ``({"train_loss", "train_acc", "train_seconds", "mix_seconds"}, learning rate of each step)``.
        """
        cfg, ctx, learner = self.cfg, self.ctx, self.learner
        learner.net.train()
        generator = torch.Generator().manual_seed(derive_seed(cfg.seed, 1, epoch, ctx.rank))
        totals = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss sum, correct, counted
        lrs: list[float] = []
        mix_seconds = 0.0
        started = time.perf_counter()
        steps = self.loaders.steps_per_epoch
        task = progress.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=steps) if progress else None
        for step, (x, y) in enumerate(self.loaders.train(epoch)):
            lr = lr_at(epoch * steps + step, self.total_steps, cfg.base_lr, self.warmup_steps, cfg.warmup,
                       cfg.min_lr)
            learner.set_lr(lr)
            lrs.append(lr)
            x = learner.norm(x.to(ctx.device, non_blocking=True))
            y = y.to(ctx.device, non_blocking=True)
            x, target, seconds = self._mix_timed(x, y, generator)
            mix_seconds += seconds
            with self._autocast():
                logits = learner.net(x)
            loss = self._loss(logits.float(), target)
            learner.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad is not None:
                nn.utils.clip_grad_norm_(learner.model.parameters(), cfg.clip_grad)
            learner.optimizer.step()
            with torch.no_grad():  # accumulated on the device: no host sync per step
                correct, counted = self._correct(logits.detach(), target)
                totals += torch.stack([loss.detach().double() * x.shape[0], correct.double(), counted.double()])
            if task is not None:
                progress.update(task, advance=1, description=f"epoch {epoch + 1}/{cfg.epochs} loss "
                                f"{loss.detach().item():.3f} acc {(totals[1] / totals[2].clamp_min(1)).item():.3f}")
            if self.hook is not None:
                self.hook(epoch, step)
        seconds = time.perf_counter() - started
        if task is not None:
            progress.remove_task(task)
        totals = all_sum(totals.cpu(), ctx)
        row = {"train_loss": float(totals[0]) / self.loaders.samples_per_epoch,
               "train_acc": float(totals[1]) / max(float(totals[2]), 1.0),
               "train_seconds": seconds, "mix_seconds": mix_seconds}
        return row, lrs

    # -- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, dataset: Dataset, indices: np.ndarray, *, predictions: bool = False,
                 tta: bool = False) -> dict[str, Any]:
        """Loss and confusion matrix on clean data, reduced over ranks.

        Args:
            dataset, indices: the samples to evaluate.
            predictions: also return ``pred``, the predicted class of each sample (classification)
                in ``indices`` order.
            tta: average the softmax over the input and its flip along the last axis.

        Returns:
            ``{"loss", "acc", "cm" (K, K)}``, with ``miou`` and ``iou`` for segmentation and ``pred``
            on request.
        """
        model = self.learner.model
        model.eval()
        k = self.num_classes
        cm = torch.zeros((k, k), dtype=torch.int64)
        loss_sum, count = 0.0, 0.0
        preds: list[Tensor] = []
        ignore = -100 if self.ignore is None else self.ignore
        for x, y in self.loaders.evaluation(dataset, indices):
            x, y = self.learner.norm(x.to(self.ctx.device)), y.to(self.ctx.device)
            with self._autocast():
                logits = model(x).float()
                if tta:
                    flipped = model(x.flip(-1)).float()
                    if self.segmentation:
                        flipped = flipped.flip(-1)
                    logits = (logits.softmax(1) + flipped.softmax(1)).log()
            loss_sum += float(F.cross_entropy(logits, y.long(), ignore_index=ignore, reduction="sum"))
            count += float((y != ignore).sum())
            pred = logits.argmax(1)
            cm += confusion_matrix(y, pred, k, self.ignore).cpu()
            if predictions:
                preds.append(pred.cpu())
        totals = all_sum(torch.cat([torch.tensor([loss_sum, count], dtype=torch.float64), cm.double().flatten()]),
                         self.ctx)
        cm = totals[2:].round().long().view(k, k)
        result: dict[str, Any] = {"loss": float(totals[0] / max(float(totals[1]), 1.0)), "cm": cm,
                                  "acc": accuracy(cm)}
        if self.segmentation:
            ious = iou_per_class(cm)
            present = [v for v in ious if v is not None]
            result.update(miou=float(np.mean(present)) if present else 0.0, iou=ious)
        if predictions:
            local = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
            result["pred"] = gather_shards(local, len(indices), self.ctx)
        return result
