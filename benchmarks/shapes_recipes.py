"""Which recipe teaches a U-Net the shapes data set within a few CPU minutes: model size, batch, rate, data.

A bare training loop (no validation split, no checkpoints, no mixing) over ``ShapesDataset`` images of
64x64 (training seed 0, 200 test images of seed 1), with ``mixmask.train.models.UNet``, AdamW (weight
decay 5e-4 on weights only), one epoch of linear warm-up and a cosine decay, per step, as
``mixmask train`` does. Prints the test mean IoU (and per class) ``--evals`` times and a JSON line at
the end with the process CPU seconds of the training loop, so that runs made on a busy machine can
be compared. docs/train.md has the table these runs gave.

    .venv/bin/python benchmarks/shapes_recipes.py --width 8 --depth 5 --batch-size 8 --lr 2e-3 --train 1600 --epochs 10
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F

from mixmask.data import ShapesDataset
from mixmask.train.metrics import confusion_matrix, iou_per_class
from mixmask.train.models import UNet


def _render(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = ShapesDataset(count, size=64, seed=seed)
    items = [data[i] for i in range(count)]
    return torch.stack([it["image"] for it in items]), torch.stack([it["mask"] for it in items])


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255 - 0.5) / 0.25  # as `mixmask train` feeds shapes


@torch.no_grad()
def _test_iou(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    model.eval()
    cm = sum(confusion_matrix(y[i:i + 100], model(_normalise(x[i:i + 100])).argmax(1), 4) for i in range(0, len(x), 100))
    model.train()
    return [v or 0.0 for v in iou_per_class(cm)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=8, help="U-Net channels at the first level")
    parser.add_argument("--depth", type=int, default=5, help="U-Net levels")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW peak rate")
    parser.add_argument("--train", type=int, default=1600, help="training images")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--evals", type=int, default=5, help="test evaluations along the run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the model and the data order")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x_train, y_train = _render(args.train, 0)
    x_test, y_test = _render(200, 1)
    generator = torch.Generator().manual_seed(args.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        model = UNet(3, 4, width=args.width, depth=args.depth)
    groups = [{"params": [p for p in model.parameters() if p.ndim > 1], "weight_decay": 5e-4},
              {"params": [p for p in model.parameters() if p.ndim <= 1], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=args.lr)
    steps_per_epoch = args.train // args.batch_size
    total, warmup = steps_per_epoch * args.epochs, steps_per_epoch
    step, started, cpu = 0, time.perf_counter(), time.process_time()
    for epoch in range(args.epochs):
        order = torch.randperm(args.train, generator=generator)
        for k in range(steps_per_epoch):
            index = order[k * args.batch_size:(k + 1) * args.batch_size]
            if step < warmup:
                lr = args.lr * (step + 1) / warmup
            else:
                lr = args.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = F.cross_entropy(model(_normalise(x_train[index])), y_train[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        if (epoch + 1) % max(1, args.epochs // args.evals) == 0 or epoch + 1 == args.epochs:
            ious = _test_iou(model, x_test, y_test)
            print(f"epoch {epoch + 1} step {step}: test mIoU {sum(ious) / 4:.3f} "
                  f"({', '.join(f'{v:.3f}' for v in ious)}), {time.process_time() - cpu:.0f} CPU s", flush=True)
    ious = _test_iou(model, x_test, y_test)
    print(json.dumps({**vars(args), "steps": step, "samples": step * args.batch_size,
                      "parameters": sum(p.numel() for p in model.parameters()), "test_miou": round(sum(ious) / 4, 4),
                      "test_iou": [round(v, 3) for v in ious], "cpu_seconds": round(time.process_time() - cpu, 1),
                      "wall_seconds": round(time.perf_counter() - started, 1), "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
