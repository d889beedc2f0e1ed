"""The training loop of ``mixmask train``: one run, or K folds, on one process or under torchrun.

Determinism: the model is initialised, the data order drawn and every batch mixed from streams
derived from ``seed`` (and the epoch and rank), so a run resumed from its last checkpoint repeats
the uninterrupted run exactly on the same device and thread count.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset, default_collate
from torch.utils.data.distributed import DistributedSampler

from mixmask.errors import MixMaskError
from mixmask.functional.losses import mixed_cross_entropy
from mixmask.train.config import TrainConfig, load_data
from mixmask.train.metrics import accuracy, confusion_matrix, iou_per_class
from mixmask.train.models import build_model
from mixmask.train.schedules import lr_at
from mixmask.train.spec import parse_mix

__all__ = ["train", "check_resumable", "derive_seed", "Interrupt"]

#: Called after every optimisation step with ``(epoch, step_in_epoch)``; may raise to stop the run.
StepHook = Callable[[int, int], None]


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (a ``numpy.random.SeedSequence`` hash): one stream per use/epoch/rank."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


class Interrupt(KeyboardInterrupt):
    """Raised by a step hook to stop a run as Ctrl-C would (used by tests)."""


@dataclass
class _Context:
    rank: int
    world: int
    device: torch.device
    owns_group: bool

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup(cfg: TrainConfig) -> _Context:
    """Start the process group when launched by torchrun (WORLD_SIZE > 1) and pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dist = torch.distributed
    if cfg.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    owns = False
    if world > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            owns = True
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
            torch.cuda.set_device(device)
    else:
        rank = 0
    return _Context(rank, world, device, owns)


def _all_sum(values: Tensor, ctx: _Context) -> Tensor:
    if ctx.world > 1:
        values = values.to(ctx.device if ctx.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(values)
    return values.cpu()


def _barrier(ctx: _Context) -> None:
    if ctx.world > 1:
        torch.distributed.barrier()


def _batched(batch: Any) -> Any:
    """collate_fn for data sets whose ``__getitems__`` already returns a collated batch."""
    return batch


def _base(dataset: Dataset) -> Dataset:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def _collate_for(dataset: Dataset):
    from mixmask.data.classification import TensorData

    return _batched if isinstance(_base(dataset), TensorData) else default_collate


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _save_json(path: Path, obj: Any) -> None:
    _atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2) + "\n"))


class _Normalize(nn.Module):
    """``(x * scale - mean) / std`` per channel, in float32."""

    def __init__(self, scale: float, mean: list[float], std: list[float], dims: int) -> None:
        super().__init__()
        shape = (1, -1) + (1,) * dims
        self.scale = scale
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x.float() * self.scale - self.mean) / self.std


class _Run:
    """One training run (one fold, or the train/validation split) writing into ``out``."""

    def __init__(self, cfg: TrainConfig, data, train_idx: np.ndarray, val_idx: np.ndarray, out: Path,
                 ctx: _Context, hook: StepHook | None) -> None:
        self.cfg, self.data, self.ctx, self.out, self.hook = cfg, data, ctx, out, hook
        self.train_idx, self.val_idx = train_idx, val_idx
        self.test_idx = np.arange(len(data.test))
        self.segmentation = data.task == "segmentation"
        self.ignore = data.ignore_index
        self.num_classes = data.num_classes
        self.mix = parse_mix(cfg.mix, num_classes=self.num_classes, seed=cfg.seed,
                             ignore_index=self.ignore if self.segmentation else None)
        dims = len(data.input_shape) - 1
        self.norm = _Normalize(data.scale, data.mean, data.std, dims).to(ctx.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(cfg.seed, 0))
            self.model = build_model(cfg.model, data.input_shape, self.num_classes, data.task).to(ctx.device)
        self.net: nn.Module = self.model
        if ctx.world > 1:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        decay, no_decay = [], []
        for p in self.model.parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if cfg.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(groups, lr=cfg.base_lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
        else:
            self.optimizer = torch.optim.AdamW(groups, lr=cfg.base_lr)
        per_rank = math.ceil(len(train_idx) / ctx.world)
        self.drop_last = per_rank >= 2 * cfg.batch_size
        self.steps_per_epoch = per_rank // cfg.batch_size if self.drop_last else math.ceil(per_rank / cfg.batch_size)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.warmup_steps = round(cfg.warmup_epochs * self.steps_per_epoch)
        self.autocast = ctx.device.type == "cuda" and cfg.amp
        self.history: list[dict[str, Any]] = []
        self.lrs: list[float] = []
        self.best: dict[str, Any] = {"epoch": 0, "score": -math.inf}
        self.start_epoch = 0
        self.workspace: Tensor | None = None

    # -- state ---------------------------------------------------------------------------------
    def _state(self, epoch: int) -> dict[str, Any]:
        return {"format": 1, "identity": self.cfg.identity(), "epoch": epoch, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "history": self.history, "lrs": self.lrs,
                "best": self.best}

    def load(self) -> None:
        """Restore the last checkpoint of ``out`` when resuming; refuse to overwrite a run otherwise.

        Raises:
            MixMaskError: a run exists and ``resume`` is off, or its configuration differs.
        """
        last = self.out / "last.pt"
        if not last.exists():
            return
        if not self.cfg.resume:
            raise MixMaskError(f"{str(self.out)!r} already holds a run (last.pt); pass --resume to continue it "
                               "or choose another --out")
        state = torch.load(last, map_location="cpu", weights_only=False)
        _check_identity(state.get("identity", {}), self.cfg.identity(), last)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history, self.lrs, self.best = state["history"], state["lrs"], state["best"]
        self.start_epoch = int(state["epoch"])

    # -- data ----------------------------------------------------------------------------------
    def _train_loader(self, epoch: int) -> DataLoader:
        subset = Subset(self.data.train, self.train_idx.tolist())
        sampler = DistributedSampler(subset, num_replicas=self.ctx.world, rank=self.ctx.rank, shuffle=True,
                                     seed=self.cfg.seed, drop_last=False)
        sampler.set_epoch(epoch)
        return DataLoader(subset, batch_size=self.cfg.batch_size, sampler=sampler, drop_last=self.drop_last,
                          num_workers=self.cfg.workers, collate_fn=_collate_for(self.data.train),
                          pin_memory=self.ctx.device.type == "cuda", persistent_workers=False,
                          generator=torch.Generator().manual_seed(derive_seed(self.cfg.seed, 3, epoch)))

    def _eval_loader(self, dataset: Dataset, indices: np.ndarray) -> DataLoader:
        shard = indices[self.ctx.rank::self.ctx.world].tolist()
        return DataLoader(Subset(dataset, shard), batch_size=max(256, self.cfg.batch_size), shuffle=False,
                          num_workers=self.cfg.workers, collate_fn=_collate_for(dataset))

    # -- steps ---------------------------------------------------------------------------------
    def _mix(self, x: Tensor, y: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        if self.mix is None:
            return x, y
        params = self.mix.sample(x, None if self.segmentation else y, generator=generator)
        if self.workspace is None or self.workspace.shape != x.shape:
            self.workspace = torch.empty_like(x)
        if self.segmentation:
            out = self.mix.apply(params, x, masks=y, num_classes=self.num_classes, inplace=True,
                                 workspace=self.workspace)
            return out.inputs, out.masks
        out = self.mix.apply(params, x, y, num_classes=self.num_classes, inplace=True, workspace=self.workspace)
        return out.inputs, out.targets

    def _loss(self, logits: Tensor, target: Tensor) -> Tensor:
        ignore = -100 if self.ignore is None else self.ignore
        return mixed_cross_entropy(logits, target, ignore_index=ignore)

    def _correct(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """(correct, counted) against the dominant label of (possibly soft) targets, on the device."""
        pred = logits.argmax(1)
        if target.dtype.is_floating_point:
            keep, target = target.sum(1) > 0, target.argmax(1)
        else:
            keep = target != self.ignore if self.ignore is not None else torch.ones_like(target, dtype=torch.bool)
        return ((pred == target) & keep).sum(), keep.sum()

    def train_epoch(self, epoch: int, progress) -> dict[str, float]:
        cfg, ctx = self.cfg, self.ctx
        self.net.train()
        generator = torch.Generator().manual_seed(derive_seed(cfg.seed, 1, epoch, ctx.rank))
        totals = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss sum, correct, counted
        mix_seconds = 0.0
        started = time.perf_counter()
        task = progress.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=self.steps_per_epoch) if progress else None
        for step, (x, y) in enumerate(self._train_loader(epoch)):
            global_step = epoch * self.steps_per_epoch + step
            lr = lr_at(global_step, self.total_steps, cfg.base_lr, self.warmup_steps, cfg.warmup, cfg.min_lr)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.lrs.append(lr)
            x = self.norm(x.to(ctx.device, non_blocking=True))
            y = y.to(ctx.device, non_blocking=True)
            tick = time.perf_counter()
            if self.mix is not None and ctx.device.type == "cpu" and torch.get_num_threads() > 1:
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
            mix_seconds += time.perf_counter() - tick
            with torch.autocast(ctx.device.type, dtype=torch.bfloat16) if self.autocast else nullcontext():
                logits = self.net(x)
            loss = self._loss(logits.float(), target)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad)
            self.optimizer.step()
            with torch.no_grad():  # accumulated on the device: no host sync per step
                correct, counted = self._correct(logits.detach(), target)
                totals += torch.stack([loss.detach().double() * x.shape[0], correct.double(), counted.double()])
            if task is not None:
                progress.update(task, advance=1, description=f"epoch {epoch + 1}/{cfg.epochs} loss {float(loss):.3f} "
                                f"acc {float(totals[1]) / max(float(totals[2]), 1.0):.3f}")
            if self.hook is not None:
                self.hook(epoch, step)
        seconds = time.perf_counter() - started
        if task is not None:
            progress.remove_task(task)
        totals = _all_sum(totals.cpu(), ctx)
        return {"train_loss": float(totals[0]) / _seen(self, ctx), "train_acc": float(totals[1]) / max(float(totals[2]), 1.0),
                "train_seconds": seconds, "mix_seconds": mix_seconds}

    @torch.no_grad()
    def evaluate(self, dataset: Dataset, indices: np.ndarray, *, predictions: bool = False,
                 tta: bool = False) -> dict[str, Any]:
        """Loss and confusion matrix on clean data, reduced over ranks (and predictions on request)."""
        self.model.eval()
        k = self.num_classes
        cm = torch.zeros((k, k), dtype=torch.int64)
        loss_sum, count = 0.0, 0.0
        preds: list[Tensor] = []
        for x, y in self._eval_loader(dataset, indices):
            x, y = self.norm(x.to(self.ctx.device)), y.to(self.ctx.device)
            with torch.autocast(self.ctx.device.type, dtype=torch.bfloat16) if self.autocast else nullcontext():
                logits = self.model(x).float()
                if tta:
                    flipped = self.model(x.flip(-1)).float()
                    if self.segmentation:
                        flipped = flipped.flip(-1)
                    logits = (logits.softmax(1) + flipped.softmax(1)).log()
            ignore = -100 if self.ignore is None else self.ignore
            loss_sum += float(F.cross_entropy(logits, y.long(), ignore_index=ignore, reduction="sum"))
            count += float((y != ignore).sum())
            pred = logits.argmax(1)
            cm += confusion_matrix(y, pred, k, self.ignore).cpu()
            if predictions:
                preds.append(pred.cpu())
        totals = _all_sum(torch.cat([torch.tensor([loss_sum, count], dtype=torch.float64), cm.double().flatten()]),
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
            result["pred"] = _gather_shards(local, len(indices), self.ctx)
        return result

    def run(self) -> dict[str, Any]:
        cfg, ctx = self.cfg, self.ctx
        if ctx.main:
            self.out.mkdir(parents=True, exist_ok=True)
            _save_json(self.out / "config.json", {**cfg.to_dict(), "dataset": self.data.describe(),
                                                  "world_size": ctx.world, "device": str(ctx.device)})
        _barrier(ctx)
        self.load()
        started = time.perf_counter()
        with _progress(cfg.progress and ctx.main) as progress:
            for epoch in range(self.start_epoch, cfg.epochs):
                with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
                    torch.manual_seed(derive_seed(cfg.seed, 2, epoch, ctx.rank))
                    row: dict[str, Any] = {"epoch": epoch + 1, "lr": self.lrs[-1] if self.lrs else cfg.base_lr}
                    tick = time.perf_counter()
                    row.update(self.train_epoch(epoch, progress))
                    row["lr"] = self.lrs[-1]
                    for split, dataset, indices in (("val", self.data.train, self.val_idx),
                                                    ("test", self.data.test, self.test_idx)):
                        if len(indices):
                            result = self.evaluate(dataset, indices)
                            row[f"{split}_loss"], row[f"{split}_acc"] = result["loss"], result["acc"]
                            if self.segmentation:
                                row[f"{split}_miou"] = result["miou"]
                    row["epoch_seconds"] = time.perf_counter() - tick
                self.history.append(row)
                score_key = ("val_miou" if self.segmentation else "val_acc") if len(self.val_idx) else "train_acc"
                if row[score_key] > self.best["score"]:
                    self.best = {"epoch": epoch + 1, "score": row[score_key], "metric": score_key}
                    if ctx.main:
                        state = {"identity": cfg.identity(), "epoch": epoch + 1, "model": self.model.state_dict(),
                                 "metrics": row}
                        _atomic_write(self.out / "best.pt", lambda p: torch.save(state, p))
                if ctx.main:
                    _atomic_write(self.out / "last.pt", lambda p: torch.save(self._state(epoch + 1), p))
                    _atomic_write(self.out / "metrics.jsonl",
                                  lambda p: p.write_text("".join(json.dumps(h) + "\n" for h in self.history)))
                    _print_row(row, cfg.epochs)
                _barrier(ctx)
        return self.finish(time.perf_counter() - started)

    def finish(self, wall: float) -> dict[str, Any]:
        """Final evaluation (last and best checkpoints, TTA), reports, plots and ``summary.json``."""
        cfg, data = self.cfg, self.data
        last = self.evaluate(data.test, self.test_idx, predictions=True)
        summary: dict[str, Any] = {
            "data": cfg.data, "model": cfg.model, "mix": cfg.mix, "seed": cfg.seed, "epochs": cfg.epochs,
            "task": data.task, "fold": cfg.fold, "world_size": self.ctx.world, "device": str(self.ctx.device),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "train_size": len(self.train_idx), "val_size": len(self.val_idx), "test_size": len(self.test_idx),
            "test_loss": last["loss"], "test_acc": last["acc"], "test_error": 1.0 - last["acc"],
            "best_epoch": self.best["epoch"], "best_metric": self.best.get("metric"),
            "wall_seconds_this_session": wall,
        }
        train_s = [h["train_seconds"] for h in self.history]
        mix_s = [h["mix_seconds"] for h in self.history]
        summary.update(train_seconds_per_epoch=float(np.median(train_s)), mix_seconds_per_epoch=float(np.median(mix_s)),
                       mix_share_of_step=float(sum(mix_s) / max(sum(train_s), 1e-12)))
        if self.history:
            summary.update({k: v for k, v in self.history[-1].items() if k.startswith(("val_", "train_"))
                            and not k.endswith("seconds")})
        if self.segmentation:
            summary.update(test_miou=last["miou"], test_iou_per_class=dict(zip(data.classes, last["iou"])),
                           test_pixel_acc=last["acc"])
        if cfg.tta:
            tta = self.evaluate(data.test, self.test_idx, tta=True)
            summary["test_acc_tta"] = tta["acc"]
            if self.segmentation:
                summary["test_miou_tta"] = tta["miou"]
        if cfg.folds and len(self.val_idx):
            val = self.evaluate(data.train, self.val_idx, predictions=True)
            summary["val_indices"] = self.val_idx.tolist()
            summary["val_predictions"] = val["pred"].tolist()
        best_path = self.out / "best.pt"
        _barrier(self.ctx)
        at_best = last
        if self.best["epoch"] != len(self.history) and best_path.exists():
            current = {k: v.clone() for k, v in self.model.state_dict().items()}
            self.model.load_state_dict(torch.load(best_path, map_location="cpu", weights_only=False)["model"])
            at_best = self.evaluate(data.test, self.test_idx)
            self.model.load_state_dict(current)
        summary["test_acc_at_best_val"] = at_best["acc"]
        if self.segmentation:
            summary["test_miou_at_best_val"] = at_best["miou"]
        if self.ctx.main:
            _reports(self, last, summary)
            _save_json(self.out / "summary.json", summary)
        _barrier(self.ctx)
        return summary


def _seen(run: _Run, ctx: _Context) -> float:
    """Training samples seen per epoch, over all ranks."""
    per_rank = math.ceil(len(run.train_idx) / ctx.world)
    if run.drop_last:
        return float(run.steps_per_epoch * run.cfg.batch_size * ctx.world)
    return float(per_rank * ctx.world)


def _gather_shards(local: Tensor, total: int, ctx: _Context) -> Tensor:
    """Undo the ``indices[rank::world]`` sharding of per-sample results."""
    if ctx.world == 1:
        return local
    parts: list[Any] = [None] * ctx.world
    torch.distributed.all_gather_object(parts, local)
    out = torch.empty(total, dtype=local.dtype)
    for rank, part in enumerate(parts):
        out[rank::ctx.world] = part
    return out


def _check_identity(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    diff = {k: (saved.get(k), current.get(k)) for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)}
    if diff:
        shown = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise MixMaskError(f"cannot resume {str(path)!r}: it was made with a different configuration ({shown})")


def _print_row(row: dict[str, Any], epochs: int) -> None:
    parts = [f"epoch {row['epoch']}/{epochs}", f"lr {row['lr']:.4g}", f"train loss {row['train_loss']:.4f}"]
    parts += [f"{k} {row[k]:.4f}" for k in ("val_acc", "val_miou", "test_acc", "test_miou") if k in row]
    parts.append(f"{row['train_seconds']:.1f}s (mixing {row['mix_seconds']:.2f}s)")
    print(" | ".join(parts), flush=True)


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _progress(enabled: bool):
    """A rich progress bar when asked, rich is installed and stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        return _NoProgress()
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    except ImportError:
        return _NoProgress()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    transient=True)


def _reports(run: _Run, last: dict[str, Any], summary: dict[str, Any]) -> None:
    """Per-class report, confusion matrix, curves, learning rate and (segmentation) prediction PNGs."""
    from mixmask.viz.training import plot_confusion, plot_curves, plot_lr

    data, out = run.data, run.out
    title = f"{run.cfg.data} · {run.cfg.model} · mix {run.cfg.mix} · seed {run.cfg.seed}"
    plot_curves(run.history, out / "curves.png", title)
    plot_lr(run.lrs, run.steps_per_epoch, out / "lr.png",
            f"{run.cfg.optimizer}: {run.cfg.warmup} warm-up {run.cfg.warmup_epochs:g} epoch(s), then cosine")
    plot_confusion(last["cm"], data.classes, out / "confusion_matrix.png", f"test, last epoch · {title}")
    if run.segmentation:
        _segmentation_png(run, out / "predictions.png", title)
        report = {"pixel_accuracy": last["acc"], "mean_iou": last["miou"],
                  "iou": dict(zip(data.classes, last["iou"]))}
        (out / "report.txt").write_text("\n".join([f"pixel accuracy {last['acc']:.4f}", f"mean IoU {last['miou']:.4f}"]
                                                  + [f"IoU {c}: {'n/a' if v is None else f'{v:.4f}'}"
                                                     for c, v in zip(data.classes, last["iou"])]) + "\n")
    else:
        from sklearn.metrics import classification_report

        truth = data.test_targets[torch.as_tensor(run.test_idx)].numpy()
        pred = last["pred"].numpy()
        labels = list(range(run.num_classes))
        text = classification_report(truth, pred, labels=labels, target_names=data.classes, digits=4, zero_division=0)
        report = classification_report(truth, pred, labels=labels, target_names=data.classes, output_dict=True,
                                       zero_division=0)
        (out / "report.txt").write_text(text)
    summary["per_class"] = report
    _save_json(out / "report.json", report)


@torch.no_grad()
def _segmentation_png(run: _Run, path: Path, title: str) -> None:
    from mixmask.viz.training import plot_segmentation

    count = min(4, len(run.data.test))
    items = [run.data.test[i] for i in range(count)]
    x, y = torch.stack([image for image, _ in items]), torch.stack([ids for _, ids in items])
    run.model.eval()
    pred = run.model(run.norm(x.to(run.ctx.device))).argmax(1).cpu()
    plot_segmentation(x, y, pred, path, run.num_classes, f"test predictions · {title}")


def _splits(cfg: TrainConfig, data) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, val) index pairs into the training pool: K stratified folds, or one validation split."""
    n = len(data.train)
    targets = data.train_targets.numpy() if data.train_targets is not None else None
    if cfg.folds:
        from sklearn.model_selection import KFold, StratifiedKFold

        if targets is not None:
            smallest = int(np.bincount(targets).min(initial=n)) if len(targets) else 0
            if smallest < cfg.folds:
                counts = np.bincount(targets)
                raise MixMaskError(f"--folds {cfg.folds} needs at least {cfg.folds} samples of every class, but the "
                                   f"smallest class has {int(counts[counts > 0].min())}")
            splitter = StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed)
            return [(np.sort(a), np.sort(b)) for a, b in splitter.split(np.zeros(n), targets)]
        return [(np.sort(a), np.sort(b)) for a, b in KFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(np.zeros(n))]
    if targets is not None:
        from mixmask.data.classification import stratified_split

        return [stratified_split(torch.as_tensor(targets), cfg.val_fraction, 0)]
    order = np.random.default_rng(0).permutation(n)
    cut = max(1, round(n * cfg.val_fraction))
    return [(np.sort(order[cut:]), np.sort(order[:cut]))]


def train(cfg: TrainConfig, *, hook: StepHook | None = None) -> dict[str, Any]:
    """Run ``mixmask train``: validate everything, then train one run or K folds.

    Args:
        cfg: the configuration (``cfg.model`` None picks ``cnn``, or ``unet`` for segmentation).
        hook: called after every step with ``(epoch, step)``; raising stops the run (the last
            finished epoch stays on disk for ``resume``).

    Returns:
        The ``summary.json`` content (for folds: the aggregate with out-of-fold accuracy).

    Raises:
        MixMaskError: bad configuration, data, model or mix spec, or a resume that does not match,
            all before any training starts.
    """
    cfg = replace(cfg).validate()
    parse_mix(cfg.mix)
    data = load_data(cfg.data, cfg.subset)
    if cfg.model is None:
        cfg.model = "unet" if data.task == "segmentation" else "cnn"
    with torch.random.fork_rng(devices=[]):
        build_model(cfg.model, data.input_shape, data.num_classes, data.task)
    out = Path(cfg.out)
    splits = _splits(cfg, data)
    if cfg.folds == 0:
        check_resumable(out / "last.pt", cfg)
    ctx = _setup(cfg)
    try:
        if cfg.folds == 0:
            return _Run(cfg, data, *splits[0], out, ctx, hook).run()
        chosen = range(cfg.folds) if cfg.fold is None else [cfg.fold]
        for i in chosen:
            check_resumable(out / f"fold{i}" / "last.pt", replace(cfg, fold=i))
        for i in chosen:
            fold_dir = out / f"fold{i}"
            if cfg.resume and (fold_dir / "summary.json").exists():
                continue
            _Run(replace(cfg, fold=i), data, *splits[i], fold_dir, ctx, hook).run()
        return _aggregate_folds(cfg, data, splits, out, ctx)
    finally:
        if ctx.owns_group:
            torch.distributed.destroy_process_group()


def check_resumable(last: Path, cfg: TrainConfig) -> None:
    """Check a resume target before any training starts.

    Raises:
        MixMaskError: ``last`` exists and ``cfg.resume`` is off, or it was made with another configuration.
    """
    if not last.exists():
        return
    if not cfg.resume:
        raise MixMaskError(f"{str(last.parent)!r} already holds a run (last.pt); pass --resume to continue it "
                           "or choose another --out")
    _check_identity(torch.load(last, map_location="cpu", weights_only=False).get("identity", {}), cfg.identity(), last)


def _aggregate_folds(cfg: TrainConfig, data, splits, out: Path, ctx: _Context) -> dict[str, Any]:
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
        _save_json(out / "config.json", {**cfg.to_dict(), "dataset": data.describe()})
        _save_json(out / "summary.json", result)
    return result
