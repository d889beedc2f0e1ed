"""What a run shows: the progress bar, one line per epoch, ``summary.json`` and the reports and pictures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixmask.train.records import atomic_write, save_json

__all__ = ["progress_bar", "print_row", "summary", "write_reports"]


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def progress_bar(enabled: bool):
    """A rich progress bar when asked, rich is installed and stderr is a terminal (else a context giving None)."""
    if not enabled or not sys.stderr.isatty():
        return _NoProgress()
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    except ImportError:
        return _NoProgress()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    transient=True)


def print_row(row: dict[str, Any], epochs: int) -> None:
    """One line for a finished epoch: lr, train loss, val/test scores, seconds."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"lr {row['lr']:.4g}", f"train loss {row['train_loss']:.4f}"]
    parts += [f"{k} {row[k]:.4f}" for k in ("val_acc", "val_miou", "test_acc", "test_miou") if k in row]
    parts.append(f"{row['train_seconds']:.1f}s (mixing {row['mix_seconds']:.2f}s)")
    print(" | ".join(parts), flush=True)


def summary(run, last: dict[str, Any], wall: float) -> dict[str, Any]:
    """The ``summary.json`` fields known from the history and the last evaluation on the test split.

    Args:
        run: the :class:`~mixmask.train.runner.Run` (configuration, data, records, sizes).
        last: the test evaluation of the last epoch.
        wall: seconds of this session.
    """
    cfg, data, history = run.cfg, run.data, run.records.history
    out: dict[str, Any] = {
        "data": cfg.data, "model": cfg.model, "mix": cfg.mix, "seed": cfg.seed, "epochs": cfg.epochs,
        "task": data.task, "fold": cfg.fold, "world_size": run.ctx.world, "device": str(run.ctx.device),
        "parameters": run.learner.parameters,
        "train_size": len(run.train_idx), "val_size": len(run.val_idx), "test_size": len(run.test_idx),
        "test_loss": last["loss"], "test_acc": last["acc"], "test_error": 1.0 - last["acc"],
        "best_epoch": run.records.best["epoch"], "best_metric": run.records.best.get("metric"),
        "wall_seconds_this_session": wall,
    }
    train_s = [h["train_seconds"] for h in history]
    mix_s = [h["mix_seconds"] for h in history]
    out.update(train_seconds_per_epoch=float(np.median(train_s)), mix_seconds_per_epoch=float(np.median(mix_s)),
               mix_share_of_step=float(sum(mix_s) / max(sum(train_s), 1e-12)))
    if history:
        out.update({k: v for k, v in history[-1].items() if k.startswith(("val_", "train_"))
                    and not k.endswith("seconds")})
    if data.task == "segmentation":
        out.update(test_miou=last["miou"], test_iou_per_class=dict(zip(data.classes, last["iou"])),
                   test_pixel_acc=last["acc"])
    return out


def write_reports(run, last: dict[str, Any], summary: dict[str, Any]) -> None:
    """Per-class report, confusion matrix, curves, learning rate and (segmentation) prediction PNGs.

    Each file is written whole (:func:`~mixmask.train.records.atomic_write`); adds ``per_class`` to
    ``summary``.
    """
    from mixmask.viz.training import plot_confusion, plot_curves, plot_lr

    cfg, data, out = run.cfg, run.data, run.out
    title = f"{cfg.data} · {cfg.model} · mix {cfg.mix} · seed {cfg.seed}"
    atomic_write(out / "curves.png", lambda p: plot_curves(run.records.history, p, title))
    atomic_write(out / "lr.png", lambda p: plot_lr(run.records.lrs, run.loaders.steps_per_epoch, p, f"{cfg.optimizer}: "
                                                   f"{cfg.warmup} warm-up {cfg.warmup_epochs:g} epoch(s), then cosine"))
    atomic_write(out / "confusion_matrix.png",
                 lambda p: plot_confusion(last["cm"], data.classes, p, f"test, last epoch · {title}"))
    if data.task == "segmentation":
        atomic_write(out / "predictions.png", lambda p: _segmentation_png(run, p, title))
        report = {"pixel_accuracy": last["acc"], "mean_iou": last["miou"],
                  "iou": dict(zip(data.classes, last["iou"]))}
        lines = [f"pixel accuracy {last['acc']:.4f}", f"mean IoU {last['miou']:.4f}"]
        lines += [f"IoU {c}: {'n/a' if v is None else f'{v:.4f}'}" for c, v in zip(data.classes, last["iou"])]
        text = "\n".join(lines) + "\n"
    else:
        from sklearn.metrics import classification_report

        truth = data.test_targets[torch.as_tensor(run.test_idx)].numpy()
        pred = last["pred"].numpy()
        labels = list(range(data.num_classes))
        text = classification_report(truth, pred, labels=labels, target_names=data.classes, digits=4, zero_division=0)
        report = classification_report(truth, pred, labels=labels, target_names=data.classes, output_dict=True,
                                       zero_division=0)
    atomic_write(out / "report.txt", lambda p: p.write_text(text))
    summary["per_class"] = report
    save_json(out / "report.json", report)


@torch.no_grad()
def _segmentation_png(run, path: Path, title: str) -> None:
    from mixmask.viz.segmentation import save_predictions

    count = min(4, len(run.data.test))
    items = [run.data.test[i] for i in range(count)]
    x, y = torch.stack([image for image, _ in items]), torch.stack([ids for _, ids in items])
    model = run.learner.model
    model.eval()
    pred = model(run.learner.norm(x.to(run.ctx.device))).argmax(1).cpu()
    save_predictions(path, x, y, pred, colors=run.data.colors, class_names=run.data.classes,
                     ignore_index=run.data.ignore_index, title=f"test predictions · {title}")
