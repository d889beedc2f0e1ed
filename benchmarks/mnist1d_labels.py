"""Why CutMix and FMix cost accuracy on MNIST-1D: the label weight is the area, the digit is a small part of it.

An MNIST-1D signal (Greydanus, 2020) is a 12-point digit template padded with 36-60 zeros,
stretched, shifted by 0-47 of 72 positions, filled with correlated noise where the padding was,
sheared and resampled to 40 points: the digit covers about 6-9 of the 40 points and the rest is
noise. This script regenerates the data set with the ``mnist1d`` package's generator (the same
seed as ``--data mnist1d``), records where each digit lies, and

0. ``check``: checks mixmask's 1-D path on real training batches (output, ``lam``, targets);
1. ``stats``: draws mixmask's CutMix / FMix masks on real training batches and compares the label
   weight of the own digit (``lam``, the mask mean) with the share of the two digits that is
   actually visible in the mixed signal;
2. ``train``: trains the ``mixmask train`` model and schedule on the ``--train-size 500
   --val-fraction 0.2`` split (400 signals) with the area label (what every MSDA library does) and
   with the *visible-digit* label (``w = v_own / (v_own + v_partner)``, the visible fraction of
   each digit), several seeds, and evaluates each model as trained and after re-estimating the
   batch-norm statistics on clean data (the evaluation-mode suspect).

    .venv/bin/python benchmarks/mnist1d_labels.py check                # the 1-D path on real batches
    .venv/bin/python benchmarks/mnist1d_labels.py stats --png spans.png  # --png: signals with their digit shaded
    .venv/bin/python benchmarks/mnist1d_labels.py digits-stats     # the same on --data digits, for contrast
    .venv/bin/python benchmarks/mnist1d_labels.py curves --compare-json runs/cmp/compare.json --png curves.png
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/mnist1d_labels.py train --arms none,cutmix,cutmix-digit \\
        --seeds 3 --epochs 100 --json out/mnist1d_labels.json
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from mixmask.data.classification import load_mnist1d, stratified_split
from mixmask.functional.losses import mixed_cross_entropy
from mixmask.train.config import load_data
from mixmask.train.models import build_model
from mixmask.train.schedules import lr_at
from mixmask.train.spec import parse_mix

LENGTH = 40


def digit_spans(num_samples: int = 5000, seed: int = 42, **overrides) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regenerate MNIST-1D; return signals ``(N, 40)``, labels ``(N,)`` and digit intervals ``(N, 2)``.

    Train then test order, as ``--data mnist1d`` has them; ``overrides`` change the generator's
    arguments (``corr_noise_scale=0`` ...: the tests check the intervals on noiseless signals). The package's ``pad``, ``translate`` and
    the final ``np.random.permutation`` are wrapped (not replaced): the padding length, the shift
    and the shuffle are read from what they return, so the draws and the signals are unchanged.
    An interval is where the 12 template points land in the 40-point signal.
    """
    import importlib
    import random

    from mnist1d.data import get_dataset_args, make_dataset

    T = importlib.import_module("mnist1d.transform")  # the package's __init__ shadows the module with a function

    pads: list[int] = []
    shifts: list[int] = []
    perms: list[np.ndarray] = []
    pad, translate, permutation = T.pad, T.translate, np.random.permutation

    def recording_pad(x, padding):
        out = pad(x, padding)
        pads.append(len(out) - len(x))
        return out

    def recording_translate(x, max_translation):
        out = translate(x, max_translation)
        shifts.append(next(k for k in range(len(x)) if np.array_equal(np.roll(x, k), out)))
        return out

    def recording_permutation(n):
        out = permutation(n)
        perms.append(np.asarray(out))
        return out

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    for key, value in overrides.items():
        setattr(args, key, value)
    np_state, py_state = np.random.get_state(), random.getstate()
    T.pad, T.translate, np.random.permutation = recording_pad, recording_translate, recording_permutation
    try:
        made = make_dataset(args)
    finally:
        T.pad, T.translate, np.random.permutation = pad, translate, permutation
        np.random.set_state(np_state)
        random.setstate(py_state)
    p, k = np.asarray(pads, dtype=float), np.asarray(shifts, dtype=float)
    dilated = args.template_len + args.padding[-1]            # 72 points after the dilation
    scale = (args.final_seq_length - 1) / (dilated - 1)        # 72 -> 40 points
    template = (args.template_len - 1) * (dilated - 1) / (args.template_len - 1 + p)
    spans = np.stack([k * scale, (k + template) * scale], 1)[perms[-1]]
    x = np.concatenate([made["x"], made["x_test"]])
    y = np.concatenate([made["y"], made["y_test"]])
    return x, y, spans


def visible(mask: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
    """The share of each digit interval where ``mask`` is 1: ``(B, L)`` masks, ``(B, 2)`` spans -> ``(B,)``."""
    pos = torch.arange(mask.shape[1], dtype=torch.float64)
    inside = (pos >= spans[:, :1]) & (pos <= spans[:, 1:])
    return (mask.double() * inside).sum(1) / inside.sum(1).clamp_min(1)


def digit_weights(mask: torch.Tensor, index: torch.Tensor, spans: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(w, v_own, v_partner)``: the visible-digit label weight of the own digit and the visible shares."""
    own = visible(mask, spans)
    partner = visible(1 - mask.double(), spans[index])
    total = own + partner
    w = torch.where(total > 0, own / total.clamp_min(1e-12), torch.full_like(own, 0.5))
    return w, own, partner


def training_split():
    """``--data mnist1d --train-size 500 --val-fraction 0.2``: (x, y, spans) of the 400 training and 1000 test signals."""
    x_all, y_all, spans_all = digit_spans()
    data = load_data("mnist1d", 500)
    reference = load_mnist1d()
    if not torch.equal(reference.train.inputs[:, 0], torch.from_numpy(x_all[:4000]).float()):
        raise SystemExit("the regenerated signals differ from --data mnist1d: the spans would be wrong")
    pool = np.asarray(data.train.indices)
    keep, _ = stratified_split(data.train_targets, 0.2, 0)
    chosen = pool[keep]
    x = torch.from_numpy(x_all[chosen]).float()[:, None]
    y = torch.from_numpy(y_all[chosen]).long()
    spans = torch.from_numpy(spans_all[chosen])
    return x, y, spans, reference.test.inputs, reference.test.targets, torch.from_numpy(spans_all[4000:])


def _agreement(rows: torch.Tensor) -> dict:
    """Label weight against visible digit over pairs of two classes: ``rows`` (N, 5) = lam, w, own, partner, differ."""
    lam, w, own, partner, differ = rows.unbind(1)
    d = differ > 0
    return {
        "pairs_of_two_classes": int(d.sum()),
        "mean_abs_lam_minus_visible_weight": float((lam[d] - w[d]).abs().mean()),
        "corr_lam_visible_weight": float(np.corrcoef(lam[d].numpy(), w[d].numpy())[0, 1]),
        "share_own_digit_gone_lam_ge_0.5": float(((own < 0.1) & (lam >= 0.5))[d].double().mean()),
        "share_partner_digit_gone_weight_ge_0.25": float(((partner < 0.1) & (1 - lam >= 0.25))[d].double().mean()),
        "share_both_digits_visible_ge_0.5": float(((own >= 0.5) & (partner >= 0.5))[d].double().mean()),
    }


def _draws(spec: str, x: torch.Tensor, y: torch.Tensor, draws: int, weights) -> dict:
    """``draws`` batches of 64 mixed by ``spec``; ``weights(mask (B, *S), index, batch)`` gives ``(w, own, partner)``."""
    mix = parse_mix(spec, num_classes=10, seed=0)
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(draws):
        batch = torch.randperm(len(y), generator=g)[:64]
        params = mix.sample(x[batch], y[batch], generator=g)
        mask = params.mask.double()
        if mask.ndim == 1:  # MixUp: one weight per sample
            mask = mask.view(-1, *[1] * (x.ndim - 2)).expand(-1, *x.shape[2:])
        w, own, partner = weights(mask, params.index, batch)
        differ = y[batch] != y[batch][params.index]
        rows.append(torch.stack([params.lam.double(), w, own, partner, differ.double()], 1))
    return _agreement(torch.cat(rows))


def stats(args: argparse.Namespace) -> dict:
    """Label weight against visible digit, over ``--draws`` batches of 64 real training signals."""
    x, y, spans, *_ = training_split()
    lengths = spans[:, 1] - spans[:, 0]
    result = {"signals": len(y), "digit_points_mean": float(lengths.mean()), "digit_points_min": float(lengths.min()),
              "digit_points_max": float(lengths.max()), "methods": {}}
    for spec in args.methods.split(","):
        result["methods"][spec] = _draws(spec, x, y, args.draws,
                                         lambda mask, index, batch: digit_weights(mask, index, spans[batch]))
    return result


def digits_stats(args: argparse.Namespace) -> dict:
    """The same comparison on ``--data digits`` (32x32 upsampled 8x8 digits): the 'visible digit' is the ink.

    ``w = ink_own_visible / (ink_own_visible + ink_partner_visible)``, ink = the pixel values of the
    [0, 1] images; a contrast with MNIST-1D, where the digit is a small part of the signal.
    """
    data = load_data("digits", 500)
    full = load_data("digits")
    pool = torch.as_tensor(np.asarray(data.train.indices))
    x, y = full.train.inputs[pool], full.train.targets[pool]

    def ink(mask, index, batch):
        own_ink, partner_ink = x[batch][:, 0].double(), x[batch][index][:, 0].double()
        own = (mask * own_ink).sum((1, 2)) / own_ink.sum((1, 2))
        partner = ((1 - mask) * partner_ink).sum((1, 2)) / partner_ink.sum((1, 2))
        return own / (own + partner).clamp_min(1e-12), own, partner

    result = {"images": len(y), "ink_share_of_area": float((x > 0.25).double().mean()), "methods": {}}
    for spec in args.methods.split(","):
        result["methods"][spec] = _draws(spec, x, y, args.draws, ink)
    return result


def check(args: argparse.Namespace) -> dict:
    """The 1-D path on 256 real training signals: each method's output against ``M * x[i] + (1 - M) * x[j[i]]``.

    Through the public call and through ``sample`` + ``apply(inplace=True, workspace=)`` as the training
    loop calls them; also ``lam`` against the mask mean and the targets against ``lam`` / ``1 - lam``.
    """
    data = load_mnist1d()
    x, y = data.train.inputs[:256], data.train.targets[:256]
    result = {"signals": len(y), "methods": {}}
    for spec in args.methods.split(","):
        mix = parse_mix(spec, num_classes=10, seed=0)
        public = mix(x, y)
        params = mix.sample(x, y, generator=torch.Generator().manual_seed(0))
        loop = mix.apply(params, x.clone(), y, num_classes=10, inplace=True, workspace=torch.empty_like(x))
        result["methods"][spec] = {"public_call": _errors(public.params, x, y, public.inputs, public.targets),
                                   "sample_apply_inplace": _errors(params, x, y, loop.inputs, loop.targets)}
    return result


def _errors(params, x: torch.Tensor, y: torch.Tensor, mixed: torch.Tensor, targets: torch.Tensor) -> dict:
    """Largest gaps of a mixed ``(B, 1, L)`` batch and its ``(B, 10)`` targets from what the draw defines."""
    m = params.mask.double()
    m = m.view(len(x), 1, 1) if m.ndim == 1 else m.view(len(x), 1, -1)  # MixUp: one weight per sample
    expected = m * x.double() + (1 - m) * x[params.index].double()
    lam = params.lam.double()
    onehot = F.one_hot(y, 10).double()
    want = lam[:, None] * onehot + (1 - lam)[:, None] * onehot[params.index]
    return {"max_abs_output_error": float((mixed.double() - expected).abs().max()),
            "max_abs_lam_minus_mask_mean": float((lam - m.expand(-1, 1, x.shape[-1]).mean((1, 2))).abs().max()),
            "max_abs_target_error": float((targets.double() - want).abs().max()),
            "max_abs_row_sum_minus_1": float((targets.double().sum(1) - 1).abs().max()),
            "pairs_of_two_classes": int((y != y[params.index]).sum())}


def spans_png(path: str, count: int = 12) -> None:
    """The first ``count`` training signals of the 400 with their digit interval shaded."""
    from matplotlib.figure import Figure

    x, y, spans, *_ = training_split()
    fig = Figure(figsize=(12, 4.2))
    axes = fig.subplots(2, count // 2, sharey=True)
    for i, ax in enumerate(axes.flat):
        ax.plot(x[i, 0].numpy(), color="black", lw=1)
        ax.axvspan(float(spans[i, 0]), float(spans[i, 1]), color="tab:green", alpha=0.25)
        ax.set_title(f"digit {int(y[i])}: points {float(spans[i, 0]):.1f}-{float(spans[i, 1]):.1f}", fontsize=8)
        ax.set_xticks([0, 39])
        ax.tick_params(labelsize=7)
    fig.suptitle("MNIST-1D training signals (--train-size 500 --val-fraction 0.2) and where their digit template "
                 "lies (green); the rest is padding turned into noise", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def _bn_recalibrated(model, x: torch.Tensor) -> torch.nn.Module:
    """A copy of ``model`` whose batch-norm statistics are re-estimated on clean ``x`` (cumulative average)."""
    import copy

    clone = copy.deepcopy(model)
    for m in clone.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    clone.train()
    with torch.no_grad():
        for start in range(0, len(x), 64):
            clone(x[start:start + 64])
    return clone.eval()


@torch.no_grad()
def _accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(1) == y).double().mean())


@torch.no_grad()
def phantom_probe(model, x: torch.Tensor, y: torch.Tensor, spans: torch.Tensor, seed: int, draws: int = 20) -> dict:
    """Does the model see a partner whose digit was cut away? CutMix mixes of ``x`` with each other.

    Over the pairs of two classes where < 10 % of the partner's digit is left but the area label
    gives it >= 0.25: the mean softmax probability of the partner's class, and the mean area label.
    On training signals a model can learn to give it by recognising the signal from its noise; on
    test signals it cannot.
    """
    mix = parse_mix("cutmix", num_classes=10, seed=seed)
    g = torch.Generator().manual_seed(seed + 7)
    probs, labels = [], []
    model.eval()
    for _ in range(draws):
        batch = torch.randperm(len(y), generator=g)[:64]
        params = mix.sample(x[batch], y[batch], generator=g)
        mixed = mix.apply(params, x[batch], y[batch], num_classes=10).inputs
        _, _, partner = digit_weights(params.mask.double(), params.index, spans[batch])
        phantom = (partner < 0.1) & (1 - params.lam.double() >= 0.25) & (y[batch] != y[batch][params.index])
        p = model(mixed).softmax(1)[torch.arange(len(batch)), y[batch][params.index]]
        probs.append(p[phantom])
        labels.append((1 - params.lam)[phantom])
    probs, labels = torch.cat(probs), torch.cat(labels)
    return {"pairs": len(probs), "partner_prob": float(probs.mean()), "area_label": float(labels.mean())}


def train_arm(arm: str, seed: int, epochs: int, split, lr: float = 0.05) -> dict:
    """One run of the ``mixmask train`` loop (cnn, SGD-Nesterov 0.05, wd 5e-4 on weights, 1 warm-up epoch, cosine,
    batch 64) with ``arm``: ``none``, ``<spec>`` (area labels) or ``<spec>-digit`` (visible-digit labels)."""
    x, y, spans, x_test, y_test, _ = split
    spec, digit = (arm[:-len("-digit")], True) if arm.endswith("-digit") else (arm, False)
    mix = None if spec == "none" else parse_mix(spec, num_classes=10, seed=seed)
    torch.manual_seed(seed)
    model = build_model("cnn", (1, LENGTH), 10)
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}],
                          lr=lr, momentum=0.9, nesterov=True)
    steps = len(y) // 64
    g = torch.Generator().manual_seed(seed + 1000)
    curve = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=g)
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch * steps + step, epochs * steps, lr, steps)
            batch = order[step * 64:(step + 1) * 64]
            xb, yb = x[batch], y[batch]
            if mix is None:
                target = F.one_hot(yb, 10).float()
            else:
                params = mix.sample(xb, yb, generator=g)
                out = mix.apply(params, xb, yb, num_classes=10)
                xb, target = out.inputs, out.targets
                if digit:
                    mask = params.mask.float()
                    w, _, _ = digit_weights(mask, params.index, spans[batch])
                    w = w.float()[:, None]
                    target = w * F.one_hot(yb, 10).float() + (1 - w) * F.one_hot(yb[params.index], 10).float()
            loss = mixed_cross_entropy(model(xb), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if (epoch + 1) % 10 == 0 or epoch == 0:
            curve.append((epoch + 1, _accuracy(model, x_test, y_test)))
    return {"arm": arm, "seed": seed, "test_acc": _accuracy(model, x_test, y_test),
            "test_acc_bn_recalibrated": _accuracy(_bn_recalibrated(model, x), x_test, y_test), "curve": curve,
            "phantom_train": phantom_probe(model, x, y, spans, seed),
            "phantom_test": phantom_probe(model, x_test, y_test, split[5], seed)}


def curves(path: str, out: str | None, every: tuple[int, ...] = (1, 5, 10, 20, 30, 50, 75, 100)) -> dict:
    """Per-epoch test accuracy and training loss of a ``compare.json``: a table (mean ± std over seeds), and a PNG."""
    result = json.loads(open(path).read())
    table = {}
    for spec, m in result["methods"].items():
        acc, loss = np.asarray(m["curves"]["score"]), np.asarray(m["curves"]["train_loss"])
        epochs = [e for e in every if e <= acc.shape[1]]
        table[spec] = {e: {"test_acc": (float(acc[:, e - 1].mean()), float(acc[:, e - 1].std(ddof=1))),
                           "train_loss": (float(loss[:, e - 1].mean()), float(loss[:, e - 1].std(ddof=1)))}
                       for e in epochs}
        table[spec]["peak"] = {"epoch": int(acc.mean(0).argmax()) + 1, "test_acc": float(acc.mean(0).max())}
    if out:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.6))
        left, right = fig.subplots(1, 2)
        for spec, m in result["methods"].items():
            for ax, key in ((left, "score"), (right, "train_loss")):
                values = np.asarray(m["curves"][key])
                mean, std = values.mean(0), values.std(0, ddof=1)
                x = np.arange(1, len(mean) + 1)
                ax.plot(x, mean, label=spec)
                ax.fill_between(x, mean - std, mean + std, alpha=0.2)
        left.set(xlabel="epoch", ylabel="test accuracy (clean)", ylim=(0.6, 1.0))
        right.set(xlabel="epoch", ylabel="training loss (mixed batches)", yscale="log")
        left.legend(fontsize=8)
        fig.suptitle(f"{result['methods'][next(iter(result['methods']))]['data']}: mean ± std over "
                     f"{len(result['seeds'])} seeds", fontsize=9)
        fig.tight_layout()
        fig.savefig(out, dpi=80)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("check", "stats", "digits-stats", "train", "curves"))
    parser.add_argument("--compare-json", default=None, help="curves: a compare.json")
    parser.add_argument("--png", default=None, help="curves, stats: the PNG to write")
    parser.add_argument("--methods", default="cutmix,fmix,mixup", help="check, stats, digits-stats: mix SPECs")
    parser.add_argument("--draws", type=int, default=200, help="stats: batches of 64")
    parser.add_argument("--arms", default="none,cutmix,cutmix-digit", help="train: arms")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.05, help="train: peak learning rate")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.what == "check":
        result = check(args)
    elif args.what == "stats":
        result = stats(args)
        if args.png:
            spans_png(args.png)
    elif args.what == "digits-stats":
        result = digits_stats(args)
    elif args.what == "curves":
        result = curves(args.compare_json, args.png)
    else:
        split = training_split()
        runs = []
        for arm in args.arms.split(","):
            for seed in range(args.seeds):
                tick = time.perf_counter()
                run = train_arm(arm, seed, args.epochs, split, args.lr)
                run["seconds"] = time.perf_counter() - tick
                runs.append(run)
                print(json.dumps({k: v for k, v in run.items() if k != "curve"}), flush=True)
        result = {"epochs": args.epochs, "lr": args.lr, "runs": runs, "arms": {}}
        for arm in args.arms.split(","):
            accs = [r["test_acc"] for r in runs if r["arm"] == arm]
            bn = [r["test_acc_bn_recalibrated"] for r in runs if r["arm"] == arm]
            phantom = {k: float(np.mean([r[k]["partner_prob"] for r in runs if r["arm"] == arm]))
                       for k in ("phantom_train", "phantom_test")}
            result["arms"][arm] = {"test_acc_mean": float(np.mean(accs)), "test_acc_std": float(np.std(accs, ddof=1))
                                   if len(accs) > 1 else 0.0, "bn_recalibrated_mean": float(np.mean(bn)),
                                   "bn_recalibrated_std": float(np.std(bn, ddof=1)) if len(bn) > 1 else 0.0,
                                   "partner_prob_phantom_train": phantom["phantom_train"],
                                   "partner_prob_phantom_test": phantom["phantom_test"]}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
