"""``mixmask compare``: every SPEC x seed trained in turn (resumable), then a table, JSON and a plot."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mixmask.errors import MixMaskError
from mixmask.resources import check_writable
from mixmask.train.config import TrainConfig
from mixmask.train.spec import parse_mix, spec_slug, split_specs

__all__ = ["compare", "summarize"]


_LABELS = {"test_acc": "test accuracy", "test_miou": "test mean IoU"}


def _run_dir(out: Path, spec: str, seed: int) -> Path:
    return out / spec_slug(spec) / f"seed{seed}"


def compare(base: TrainConfig, mix: str, seeds: int = 3) -> dict[str, Any]:
    """Train each SPEC of ``mix`` with ``seeds`` seeds, one after the other, and summarise.

    Runs go to ``base.out/<spec>/seed<S>``; a run with a ``summary.json`` is skipped, one with a
    checkpoint is resumed, so calling this again continues where it stopped.

    Args:
        base: the shared configuration (its ``mix`` is ignored; seeds start at ``base.seed``).
        mix: comma-separated SPECs, e.g. ``"none,mixup,cutmix,fmix,gridmask"``.
        seeds: runs per SPEC.

    Returns:
        The ``compare.json`` content.

    Raises:
        MixMaskError: a bad SPEC, seed count or option, or a run folder made with another
            configuration: all before any training starts.
    """
    from mixmask.train.records import check_resumable
    from mixmask.train.runner import train

    specs = split_specs(mix)
    for spec in specs:
        parse_mix(spec)
    if len(set(map(spec_slug, specs))) != len(specs):
        raise MixMaskError(f"expected distinct mix specs, but got {specs}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise MixMaskError(f"--seeds must be an int >= 1, but got {seeds!r}")
    if base.folds:
        raise MixMaskError(f"compare trains on a validation split; --folds is for `mixmask train`, but got "
                           f"--folds {base.folds}")
    out = check_writable(base.out, "--out", folder=True)
    runs = [replace(base, mix=spec, seed=base.seed + k, out=str(_run_dir(out, spec, base.seed + k)),
                    resume=True).resolved() for spec in specs for k in range(seeds)]
    for cfg in runs:
        cfg.validate()
        check_resumable(Path(cfg.out) / "last.pt", cfg)
    started = time.perf_counter()
    for i, cfg in enumerate(runs):
        if (Path(cfg.out) / "summary.json").exists():
            continue
        print(f"[{i + 1}/{len(runs)}] mix {cfg.mix} seed {cfg.seed} -> {cfg.out}", flush=True)
        train(cfg)
    result = summarize(out, specs, [base.seed + k for k in range(seeds)])
    result["wall_seconds_this_session"] = time.perf_counter() - started
    result["config"] = {k: v for k, v in base.resolved().to_dict().items() if k not in ("mix", "seed", "out", "resume")}
    _write(out, result)
    return result


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def summarize(out: Path, specs: list[str], seeds: list[int]) -> dict[str, Any]:
    """Collect the finished runs of ``out`` into per-method statistics.

    Args:
        out: the compare folder.
        specs: the SPECs, in table order.
        seeds: the seeds of each SPEC.

    Returns:
        ``{"metric": ..., "methods": {spec: {...}}, "seeds": [...], ...}``: per method the scores
        (test accuracy, or test mean IoU for segmentation) of each seed, their mean and sample std,
        the gain over ``none`` (when present), per-epoch curves and timings.
    """
    methods: dict[str, Any] = {}
    metric = "test_acc"
    for spec in specs:
        rows = []
        for seed in seeds:
            folder = _run_dir(out, spec, seed)
            summary = json.loads((folder / "summary.json").read_text())
            history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line]
            rows.append((summary, history))
        metric = "test_miou" if rows[0][0].get("task") == "segmentation" else "test_acc"
        score = [s[metric] for s, _ in rows]
        best = [s.get(f"{metric}_at_best_val", s[metric]) for s, _ in rows]
        mean, std = _mean_std(score)
        best_mean, best_std = _mean_std(best)
        epoch_s = [float(np.median([h["epoch_seconds"] for h in hist])) for _, hist in rows]
        methods[spec] = {
            "seeds": seeds, "score": score, "score_mean": mean, "score_std": std,
            "score_at_best_val": best, "score_at_best_val_mean": best_mean, "score_at_best_val_std": best_std,
            "seconds_per_epoch": float(np.median(epoch_s)),
            "mix_share_of_step": float(np.mean([s["mix_share_of_step"] for s, _ in rows])),
            "run_seconds": [float(sum(h["epoch_seconds"] for h in hist)) for _, hist in rows],
            "curves": {"score": [[h[metric] for h in hist] for _, hist in rows],
                       "train_loss": [[h["train_loss"] for h in hist] for _, hist in rows]},
            "epochs": rows[0][0]["epochs"], "model": rows[0][0]["model"], "data": rows[0][0]["data"],
            "split": _split_of(_run_dir(out, spec, seeds[0])),
        }
        if metric == "test_acc":
            methods[spec]["test_error_mean"] = 1.0 - mean
    if "none" in methods:
        ref = methods["none"]
        for m in methods.values():
            n1, n2 = len(m["score"]), len(ref["score"])
            m["gain_over_none"] = m["score_mean"] - ref["score_mean"]
            m["gain_stderr"] = math.sqrt(m["score_std"] ** 2 / n1 + ref["score_std"] ** 2 / n2)
    return {"metric": metric, "metric_label": _LABELS[metric], "methods": methods, "seeds": seeds, "out": str(out),
            "total_run_seconds": float(sum(sum(m["run_seconds"]) for m in methods.values()))}


def _split_of(folder: Path) -> dict[str, Any]:
    """The split sizes a run recorded in its ``config.json`` (train / val / test, and what was kept of what)."""
    config = json.loads((folder / "config.json").read_text())
    dataset = config.get("dataset", {})
    split = dict(dataset.get("split", {}))
    for key in ("train_size", "test_size", "source_train_size", "source_test_size"):
        if key in dataset:
            split[f"pool_{key}" if key == "train_size" else key] = dataset[key]
    return split


def _split_text(split: dict[str, Any]) -> str:
    """``"400 train / 100 val / 1000 test samples (training pool: 500 of 4000, --train-size)"``."""
    if not {"train", "val", "test"} <= set(split):
        return "split sizes not recorded"
    text = f"{split['train']} train / {split['val']} val / {split['test']} test samples"
    kept = []
    if "source_train_size" in split and split.get("pool_train_size") != split["source_train_size"]:
        kept.append(f"training pool: {split['pool_train_size']} of {split['source_train_size']}, --train-size")
    if "source_test_size" in split and split["test"] != split["source_test_size"]:
        kept.append(f"test split: {split['test']} of {split['source_test_size']}, --test-size")
    return text + (f" ({'; '.join(kept)})" if kept else "")


def _write(out: Path, result: dict[str, Any]) -> None:
    from mixmask.train.records import atomic_write, save_json
    from mixmask.viz.training import plot_compare

    methods = result["methods"]
    first = next(iter(methods.values()))
    seeds = result["seeds"]
    header = (f"data `{first['data']}`, model `{first['model']}`, {first['epochs']} epochs, seeds "
              f"{seeds[0]}..{seeds[-1]} ({len(seeds)} per method), training + evaluation time "
              f"{result['total_run_seconds'] / 60:.1f} min in all")
    split = f"Split: {_split_text(first['split'])}."
    label = result["metric_label"]
    error = "test_error_mean" in first
    lines = ["# mixmask compare", "", header, "", split, "",
             f"| mix | {label} (mean ± std) |" + (" test error |" if error else "") +
             f" gain over none | {label} at best val | s/epoch | mixing share of step |",
             "|---|---|" + ("---|" if error else "") + "---|---|---|---|"]
    for spec, m in methods.items():
        gain = (f"{100 * m['gain_over_none']:+.2f} ± {100 * m['gain_stderr']:.2f} pp" if "gain_over_none" in m
                else "n/a")
        lines.append(f"| `{spec}` | {100 * m['score_mean']:.2f} ± {100 * m['score_std']:.2f} % | "
                     + (f"{100 * m['test_error_mean']:.2f} % | " if error else "")
                     + f"{gain} | {100 * m['score_at_best_val_mean']:.2f} ± {100 * m['score_at_best_val_std']:.2f} % | "
                     f"{m['seconds_per_epoch']:.1f} | {100 * m['mix_share_of_step']:.1f} % |")
    lines += ["", f"{label[0].upper() + label[1:]} of the last epoch on the held-out test split (clean data); std is "
              "the sample standard deviation over seeds; the gain's ± is the standard error of the difference of "
              "means.", ""]
    atomic_write(out / "compare.md", lambda p: p.write_text("\n".join(lines)))
    save_json(out / "compare.json", result)
    atomic_write(out / "compare.png", lambda p: plot_compare(
        {s: m["curves"]["score"] for s, m in methods.items()}, {s: m["score"] for s, m in methods.items()}, p, label,
        header.split(", training")[0].replace("`", "")))
