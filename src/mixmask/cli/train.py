"""``mixmask train``: train a model with or without mixing and write curves, reports and checkpoints."""

from __future__ import annotations

import argparse
import json

from mixmask.cli.labels import add_label_arguments
from mixmask.train.config import PRESETS, TASK_DEFAULTS

__all__ = ["add_parser", "add_training_arguments", "config_from_args", "set_threads"]


def add_training_arguments(parser: argparse.ArgumentParser, *, mix_help: str) -> None:
    """The arguments shared by ``train`` and ``compare`` (all but ``--mix``'s meaning and ``--seed``)."""
    parser.add_argument("--data", default="digits", help="digits (default), mnist1d, shapes, folder:PATH, "
                        "seg-folder:PATH or cifar10:PATH (CIFAR-10/100 python batches on disk)")
    parser.add_argument("--preset", default=None, choices=sorted(PRESETS), help="start from a published "
                        "protocol; options given on the command line override its values. cifar-paper: "
                        + _preset_text("cifar-paper"))
    parser.add_argument("--model", default=None, help="cnn (default), preact_resnet18, unet (default for "
                        "segmentation) or timm:NAME (random init)")
    parser.add_argument("--mix", default="none", help=mix_help)
    parser.add_argument("--epochs", type=int, default=None, help="default: 10 (classification), "
                        f"{TASK_DEFAULTS['segmentation']['epochs']} (segmentation)")
    parser.add_argument("--batch-size", type=int, default=None, help="per process (default: 64 for "
                        f"classification, {TASK_DEFAULTS['segmentation']['batch_size']} for segmentation)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: 0.05 for sgd, "
                        "0.001 for adamw, 0.002 for adamw on segmentation)")
    parser.add_argument("--optimizer", default=None, help="sgd (Nesterov momentum; default for classification) "
                        "or adamw (default for segmentation)")
    parser.add_argument("--momentum", type=float, default=None, help="default 0.9")
    parser.add_argument("--weight-decay", type=float, default=None, help="default 5e-4")
    parser.add_argument("--warmup-epochs", type=float, default=None, help="default 1")
    parser.add_argument("--warmup", default="linear", help="warm-up shape before the cosine: linear or exponential")
    parser.add_argument("--min-lr", type=float, default=0.0)
    parser.add_argument("--clip-grad", type=float, default=None, help="max gradient norm (default: no clipping)")
    parser.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    parser.add_argument("--folds", type=int, default=0, help="stratified K-fold of the training pool (0: a "
                        "validation split instead)")
    parser.add_argument("--fold", type=int, default=None, help="run only this fold of --folds")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--train-size", "--subset", dest="train_size", type=int, default=None, metavar="N",
                        help="keep N samples of the training pool (stratified) before the validation split or "
                        "folds; the test split is never shrunk by it (--subset is the old name)")
    parser.add_argument("--test-size", type=int, default=None, metavar="N", help="keep N samples of the test "
                        "split (stratified), for quick runs (default: all)")
    parser.add_argument("--augment", default=None, metavar="NAMES", help="per-sample augmentation of the "
                        "training images before mixing: crop (4-pixel zero padding, random crop back), flip "
                        "(horizontal, p=0.5), or crop,flip (default: none)")
    parser.add_argument("--tta", action="store_true", help="also report test accuracy with flip TTA")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (default 0)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1...")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op CPU threads of this process "
                        "(default: torch's; 1 is much faster on a machine whose cores are busy)")
    add_label_arguments(parser)


def set_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads`` (checked) to this process."""
    from mixmask.errors import MixMaskError

    if args.threads is not None:
        if args.threads < 1:
            raise MixMaskError(f"--threads must be >= 1, but got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)


def _preset_text(name: str) -> str:
    return ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in PRESETS[name].items())


def config_from_args(args: argparse.Namespace, **overrides):
    """A :class:`~mixmask.train.TrainConfig` from parsed arguments.

    Options left unset (None) take the ``--preset``'s value when it has one, else the
    :class:`~mixmask.train.TrainConfig` default.
    """
    import dataclasses

    from mixmask.train import TrainConfig

    fields = {k: getattr(args, k) for k in TrainConfig.__dataclass_fields__ if hasattr(args, k)}
    preset = PRESETS.get(fields.get("preset") or "", {})
    fields.update({k: v for k, v in preset.items() if fields.get(k) is None})
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    fields = {k: v for k, v in fields.items() if v is not None or defaults[k] is None}
    fields.update(overrides)
    return TrainConfig(**fields)


def _run(args: argparse.Namespace) -> int:
    from mixmask.train import train

    set_threads(args)
    cfg = config_from_args(args)
    try:
        summary = train(cfg)
    except KeyboardInterrupt:
        print(f"mixmask train: interrupted; the last finished epoch is saved, continue with --resume --out {args.out}")
        return 130
    keys = ("test_acc", "test_acc_at_best_val", "test_acc_tta", "test_miou", "oof_acc", "test_acc_std")
    shown = {k: round(summary[k], 4) for k in keys if isinstance(summary.get(k), float)}
    print(f"mixmask train: wrote {args.out}: {json.dumps(shown)}")
    per_class = summary.get("test_iou_per_class")
    if per_class:
        print("test IoU per class: " + ", ".join(f"{name} {'n/a' if v is None else f'{v:.3f}'}"
                                                  for name, v in per_class.items()))
    return 0


def add_parser(subparsers) -> None:
    """Register ``mixmask train``."""
    parser = subparsers.add_parser(
        "train", help="train a model with a mixing method and write curves, reports and checkpoints",
        description="Train on embedded or local data with a mixing SPEC; evaluate on clean data every epoch; "
        "checkpoint every epoch (atomic) and resume exactly. Runs under torchrun for DistributedDataParallel.")
    add_training_arguments(parser, mix_help="mixing SPEC: none (default), mixup:alpha=0.4, cutmix, "
                           "fmix:decay_power=3, gridmask, choice(cutmix,gridmask)...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/train", help="output folder (default runs/train)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.set_defaults(func=_run)
