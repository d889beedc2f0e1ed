"""Training pictures: loss/accuracy curves, the learning-rate schedule, confusion matrices and
method comparisons (matplotlib, imported lazily); segmentation predictions are drawn by
:mod:`mixmask.viz.segmentation`.

Figures are made with ``matplotlib.figure.Figure`` and saved without pyplot, so no backend is
chosen here and the caller's matplotlib settings are left as they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

__all__ = ["plot_curves", "plot_lr", "plot_confusion", "plot_compare"]


def _figure(**kwargs):
    """A new figure, not registered with pyplot (nothing to close, no backend switched)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _std(values: np.ndarray) -> np.ndarray:
    """Sample standard deviation over the first axis (0 for a single row)."""
    return values.std(0, ddof=1) if len(values) > 1 else np.zeros_like(values[0])


def plot_curves(history: Sequence[Mapping[str, float]], path: str | Path, title: str = "") -> Path:
    """Loss and score per epoch for train / val / test (score: ``acc``, or ``miou`` when logged).

    Args:
        history: one mapping per epoch with ``epoch`` and ``{train,val,test}_{loss,acc,miou}`` keys.
        path: PNG to write.
        title: figure title.

    Returns:
        ``path``.
    """
    fig = _figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    epochs = [h["epoch"] for h in history]
    score = "miou" if any("val_miou" in h or "test_miou" in h for h in history) else "acc"
    for ax, metric in zip(axes, ("loss", score)):
        for split, style in (("train", "-"), ("val", "--"), ("test", ":")):
            key = f"{split}_{metric}"
            points = [(e, h[key]) for e, h in zip(epochs, history) if h.get(key) is not None]
            if points:
                ax.plot(*zip(*points), style, marker="o", ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel({"loss": "cross-entropy", "acc": "accuracy", "miou": "mean IoU"}[metric])
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_title("loss (train: on the training batches as mixed)")
    axes[1].set_title(f"{'mean IoU' if score == 'miou' else 'accuracy'} (val/test: clean data)")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_lr(lrs: Sequence[float], steps_per_epoch: int, path: str | Path, title: str = "") -> Path:
    """The learning rate of every optimisation step, against epochs.

    Args:
        lrs: one rate per step.
        steps_per_epoch: to label the x axis in epochs.
        path: PNG to write.
        title: figure title.

    Returns:
        ``path``.
    """
    fig = _figure(figsize=(5, 3.2))
    ax = fig.subplots()
    x = np.arange(len(lrs)) / max(steps_per_epoch, 1)
    ax.plot(x, lrs)
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title(title or "learning-rate schedule")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_confusion(cm: Tensor | np.ndarray, classes: Sequence[str], path: str | Path, title: str = "") -> Path:
    """A confusion matrix, rows normalised to the share of each true class, with counts written in.

    Args:
        cm: ``(K, K)`` counts, ``cm[true, predicted]``.
        classes: K names.
        path: PNG to write.
        title: figure title.

    Returns:
        ``path``.
    """
    counts = np.asarray(cm, dtype=np.int64)
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    k = len(classes)
    side = min(max(4.0, 0.5 * k + 2), 14)
    fig = _figure(figsize=(side, side * 0.85))
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true class")
    if k <= 30:
        ax.set_xticks(range(k), classes, rotation=90 if k > 10 else 0)
        ax.set_yticks(range(k), classes)
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"confusion matrix ({counts.sum()} samples)")
    return _save(fig, path)


def plot_compare(curves: Mapping[str, Sequence[Sequence[float]]], finals: Mapping[str, Sequence[float]],
                 path: str | Path, metric: str = "test accuracy", title: str = "") -> Path:
    """Per method: mean ± std of a metric per epoch over seeds, and the final values with error bars.

    Args:
        curves: method → one list of per-epoch values per seed.
        finals: method → the final value of each seed.
        path: PNG to write.
        metric: what the values are (axis label).
        title: figure title.

    Returns:
        ``path``.
    """
    fig = _figure(figsize=(11, 3.8))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    later: list[float] = []
    for name, runs in curves.items():
        length = min((len(r) for r in runs), default=0)
        if not length:
            continue
        values = np.array([r[:length] for r in runs], dtype=float)
        mean, std = values.mean(0), _std(values)
        epochs = np.arange(1, length + 1)
        (line,) = left.plot(epochs, mean, label=name)
        left.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        later += list(mean[length // 3:] - std[length // 3:]) + list(mean[length // 3:] + std[length // 3:])
    if later:  # zoom on the later epochs, where the methods differ
        pad = max((max(later) - min(later)) * 0.15, 0.002)
        left.set_ylim(max(min(later) - pad, 0.0), min(max(later) + pad, 1.0))
    left.set_xlabel("epoch")
    left.set_ylabel(metric)
    left.set_title(f"{metric} per epoch (mean ± std over seeds; y zoomed on the last 2/3)", fontsize=10)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    names = list(finals)
    means = [float(np.mean(finals[n])) for n in names]
    stds = [float(_std(np.asarray(finals[n], dtype=float))) for n in names]
    right.bar(range(len(names)), means, yerr=stds, capsize=4, color="tab:blue", alpha=0.8)
    for i, n in enumerate(names):
        right.scatter([i] * len(finals[n]), finals[n], color="black", s=8, zorder=3)
    right.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    low = min((min(v) for v in finals.values() if len(v)), default=0.0)
    high = max((max(v) for v in finals.values() if len(v)), default=1.0)
    pad = max((high - low) * 0.3, 0.005)
    right.set_ylim(max(low - pad, 0.0), min(high + pad, 1.0))
    right.set_ylabel(f"final {metric}")
    right.set_title("final epoch (bars: mean ± std; dots: seeds)", fontsize=10)
    right.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title)
    return _save(fig, path)
