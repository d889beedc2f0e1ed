"""mixmask train: specs, schedule, splits, one-epoch runs per data kind and model, exact resume, errors, DDP."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mixmask import CutMix, FMix, GridMask, MixMaskError, MixUp, RandomChoice
from mixmask.cli.main import main
from mixmask.train import TrainConfig, load_data, parse_mix, train
from mixmask.train.runner import Interrupt, _splits
from mixmask.train.schedules import lr_at, lr_curve
from mixmask.train.spec import spec_slug, split_specs

TINY = dict(train_size=40, test_size=20, epochs=1, batch_size=16, progress=False)


# -- mix specs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, expected", [
    ("mixup:alpha=0.4", MixUp(alpha=0.4, num_classes=10)),
    ("cutmix", CutMix(num_classes=10)),
    ("fmix:decay_power=3,max_soft=0.1", FMix(decay_power=3, max_soft=0.1, num_classes=10)),
    ("gridmask:keep_ratio=0.5,cell_size=(0.2,0.4)", GridMask(keep_ratio=0.5, cell_size=(0.2, 0.4), num_classes=10)),
    ("choice(cutmix,gridmask)", RandomChoice([CutMix(), GridMask()], num_classes=10)),
    ("choice(mixup:alpha=0.2,cutmix):weights=[0.3,0.7],per_sample=False",
     RandomChoice([MixUp(alpha=0.2), CutMix()], weights=[0.3, 0.7], per_sample=False, num_classes=10)),
])
def test_spec_builds_the_python_api_transform(spec, expected):
    built = parse_mix(spec, num_classes=10)
    assert type(built) is type(expected)
    assert repr(built) == repr(expected)


def test_spec_none_and_same_seed_same_draw():
    assert parse_mix("none") is None
    x, y = torch.rand(8, 1, 16, 16), torch.arange(8) % 3
    a = parse_mix("choice(cutmix,fmix)", num_classes=3, seed=5)(x, y)
    b = parse_mix("choice(cutmix,fmix)", num_classes=3, seed=5)(x, y)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)


@pytest.mark.parametrize("spec, words", [
    ("blend", ["unknown mix method 'blend'", "mixup", "cutmix", "fmix", "gridmask", "choice"]),
    ("mixup:beta=1", ["unknown argument 'beta'", "alpha"]),
    ("mixup:alpha=-1", ["alpha"]),
    ("choice(none,cutmix)", ["choice(...) takes"]),
    ("choice(cutmix", ["unbalanced"]),
    ("cutmix:alpha", ["NAME=VALUE"]),
])
def test_spec_errors_say_what_is_valid(spec, words):
    with pytest.raises(MixMaskError) as err:
        parse_mix(spec)
    for word in words:
        assert word in str(err.value)


def test_split_specs_keeps_arguments_with_their_method():
    assert split_specs("none,mixup:alpha=0.4,p=0.5,choice(cutmix,gridmask:keep_ratio=0.5),fmix") == [
        "none", "mixup:alpha=0.4,p=0.5", "choice(cutmix,gridmask:keep_ratio=0.5)", "fmix"]
    assert spec_slug("choice(cutmix,gridmask)") == "choice-cutmix-gridmask"
    with pytest.raises(MixMaskError, match="before any method"):
        split_specs("alpha=1,mixup")


# -- schedule ----------------------------------------------------------------------------------
@pytest.mark.parametrize("warmup", ["linear", "exponential"])
def test_warmup_then_cosine(warmup):
    lrs = lr_curve(100, 0.1, warmup_steps=10, warmup=warmup, min_lr=0.001)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10]))
    assert lrs[9] == pytest.approx(0.1) and lrs[10] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lr_at(100, 100, 0.1, 10, warmup, 0.001) == pytest.approx(0.001)
    assert lrs[0] == pytest.approx(0.1 * (0.01 + 0.099) if warmup == "linear" else 0.1 * 0.01 ** 0.9)


# -- splits ------------------------------------------------------------------------------------
def test_kfold_is_stratified_disjoint_and_apart_from_test():
    data = load_data("digits")
    cfg = TrainConfig(folds=5, seed=3).validate()
    folds = _splits(cfg, data)
    targets = data.train_targets.numpy()
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals.tolist()) == list(range(len(data.train)))  # disjoint and covering the pool
    overall = np.bincount(targets, minlength=10) / len(targets)
    for train_idx, val_idx in folds:
        assert not set(train_idx) & set(val_idx)
        assert len(train_idx) + len(val_idx) == len(targets)
        share = np.bincount(targets[val_idx], minlength=10) / len(val_idx)
        assert np.abs(share - overall).max() < 0.01
    pool, test = data.train.inputs.flatten(1), data.test.inputs.flatten(1)
    assert float(torch.cdist(pool, test).min()) > 0  # no test image is in the training pool
    assert len(data.train) + len(data.test) == 1797


# -- one-epoch runs ----------------------------------------------------------------------------
def _check_outputs(out: Path, segmentation: bool = False, epochs: int = 1) -> dict:
    from PIL import Image

    config = json.loads((out / "config.json").read_text())
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    assert len(rows) == epochs and [r["epoch"] for r in rows] == list(range(1, epochs + 1))
    assert 0.0 <= summary["test_acc"] <= 1.0 and config["mix"] == summary["mix"]
    pngs = ["curves.png", "lr.png", "confusion_matrix.png"] + (["predictions.png"] if segmentation else [])
    for name in pngs:
        with Image.open(out / name) as image:
            assert image.size[0] > 100
    report = json.loads((out / "report.json").read_text())
    assert ("mean_iou" in report) if segmentation else ("macro avg" in report)
    for name in ("best.pt", "last.pt"):
        state = torch.load(out / name, map_location="cpu", weights_only=False)
        assert state["epoch"] >= 1 and "model" in state
    return summary


@pytest.mark.parametrize("data, model, mix", [
    ("digits", "cnn", "cutmix"),
    ("mnist1d", "cnn", "fmix:decay_power=3"),
    ("digits", "preact_resnet18:width=8", "choice(mixup,gridmask)"),
])
def test_one_epoch_classification(tmp_path, data, model, mix):
    summary = train(TrainConfig(data=data, model=model, mix=mix, out=str(tmp_path), tta=True, **TINY))
    _check_outputs(tmp_path)
    assert summary["model"] == model and "test_acc_tta" in summary and summary["world_size"] == 1
    assert 0.0 <= summary["mix_share_of_step"] < 1.0


def test_one_epoch_timm(tmp_path):
    pytest.importorskip("timm")
    train(TrainConfig(model="timm:resnet10t", mix="mixup", out=str(tmp_path), optimizer="adamw", **TINY))
    _check_outputs(tmp_path)


def test_one_epoch_shapes_segmentation(tmp_path):
    summary = train(TrainConfig(data="shapes", model="unet:width=8", mix="mixup", out=str(tmp_path), train_size=20, test_size=10,
                                epochs=1, batch_size=8, progress=False))
    assert summary["model"] == "unet:width=8"
    assert set(summary["test_iou_per_class"]) == {"background", "rectangle", "ellipse", "triangle"}
    assert 0.0 <= summary["test_miou"] <= 1.0
    _check_outputs(tmp_path, segmentation=True)


@pytest.mark.parametrize("shape", [(1, 24), (2, 16, 24), (1, 8, 8, 16)])
def test_unet_levels_in_1d_2d_3d(shape):
    from mixmask.train.models import UNet, build_model

    net = build_model("unet:width=4,depth=3", shape, 5, "segmentation")
    assert isinstance(net, UNet) and len(net.encoders) == 2
    assert net(torch.zeros(2, *shape)).shape == (2, 5, *shape[1:])
    with pytest.raises(MixMaskError, match="divisible by 8"):
        UNet(shape[0], 5, len(shape) - 1, width=4, depth=4)(torch.zeros(1, *shape[:-1], 20))
    with pytest.raises(MixMaskError, match="unet:width=N,depth=N"):
        build_model("unet:depth=0", shape, 5, "segmentation")
    with pytest.raises(MixMaskError, match="cnn:width=N"):
        build_model("cnn:depth=3", shape, 5)


def test_per_task_defaults_land_in_config_json(tmp_path):
    from mixmask.train.config import TASK_DEFAULTS

    seg = TrainConfig(data="shapes").resolved()
    assert {k: getattr(seg, k) for k in TASK_DEFAULTS["segmentation"]} == TASK_DEFAULTS["segmentation"]
    assert TrainConfig(data="digits").resolved().ignore_index is None
    assert TrainConfig(data="shapes", optimizer="sgd", epochs=3).resolved().optimizer == "sgd"
    train(TrainConfig(data="shapes", model="unet:width=4", out=str(tmp_path), train_size=20, test_size=10, epochs=1,
                      progress=False))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["optimizer"] == "adamw" and config["lr"] == 0.002 and config["ignore_index"] == 255
    assert config["dataset"]["ignore_index"] == 255 and config["dataset"]["colors"][1] == [230, 25, 75]


def test_one_epoch_user_folders(tmp_path):
    from PIL import Image

    from mixmask.data import write_shapes

    root = tmp_path / "classes"
    rng = np.random.default_rng(0)
    for k, name in enumerate(["cats", "dogs"]):
        (root / name).mkdir(parents=True)
        for i in range(12):
            pixels = (rng.random((20 + i, 24, 3)) * 80 + 100 * k).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    whole = {**TINY, "train_size": None, "test_size": None}  # 19 + 5 images: smaller than TINY's sizes
    summary = train(TrainConfig(data=f"folder:{root}", mix="mixup", out=str(tmp_path / "a"), **whole))
    assert summary["test_size"] == 5 and summary["per_class"]["cats"]["support"] >= 2
    _check_outputs(tmp_path / "a")
    seg = write_shapes(tmp_path / "seg", count=10, size=32, seed=0)
    train(TrainConfig(data=f"seg-folder:{seg}", mix="cutmix", out=str(tmp_path / "b"), **whole))
    _check_outputs(tmp_path / "b", segmentation=True)


def _write_cifar(root: Path, per_batch: int = 8) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        labels = [i % 10 for i in range(per_batch)]
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        with open(root / name, "wb") as handle:
            pickle.dump({b"data": data, b"labels": labels}, handle)
    with open(root / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, handle)


def test_cifar_loader_reads_python_batches(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    data = load_data(f"cifar10:{tmp_path}")
    assert len(data.train) == 40 and len(data.test) == 8
    assert data.classes[3] == "c3" and data.input_shape == (3, 32, 32)
    x, y = data.train[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 32, 32) and int(y) == 0
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    assert torch.equal(x, torch.from_numpy(raw[b"data"][0].reshape(3, 32, 32)))
    summary = train(TrainConfig(data=f"cifar10:{tmp_path}", mix="fmix", out=str(tmp_path / "run"), epochs=1,
                                batch_size=8, progress=False, val_fraction=0.25))
    assert summary["train_size"] + summary["val_size"] == 40


# -- resume ------------------------------------------------------------------------------------
def test_resume_after_interrupted_epoch_repeats_the_uninterrupted_run(tmp_path):
    base = dict(train_size=60, test_size=30, epochs=2, batch_size=16, progress=False, mix="choice(mixup,cutmix)", seed=4)
    train(TrainConfig(out=str(tmp_path / "straight"), **base))

    def stop(epoch, step):
        if epoch == 1 and step == 1:
            raise Interrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(out=str(tmp_path / "cut"), **base), hook=stop)
    saved = torch.load(tmp_path / "cut" / "last.pt", map_location="cpu", weights_only=False)
    assert saved["epoch"] == 1  # the interrupted epoch is lost, the one before is kept
    train(TrainConfig(out=str(tmp_path / "cut"), resume=True, **base))

    def rows(name):
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if not k.endswith("seconds")} for line in lines]

    assert rows("straight") == rows("cut")
    a = torch.load(tmp_path / "straight" / "last.pt", map_location="cpu", weights_only=False)["model"]
    b = torch.load(tmp_path / "cut" / "last.pt", map_location="cpu", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (["--data", "imagenet"], ["unknown data 'imagenet'", "digits", "mnist1d", "cifar10:PATH", "folder:PATH"]),
    (["--model", "vgg"], ["unknown model 'vgg'", "cnn", "preact_resnet18", "unet", "timm:NAME"]),
    (["--mix", "mixit"], ["unknown mix method 'mixit'", "fmix"]),
    (["--data", "folder:/no/such/folder"], ["/no/such/folder", "not a folder"]),
    (["--folds", "3", "--fold", "3"], ["--fold must be in [0, 3)"]),
    (["--optimizer", "lion"], ["unknown optimizer 'lion'", "sgd", "adamw"]),
    (["--model", "unet"], ["segmentation"]),
    (["--threads", "0"], ["--threads must be >= 1"]),
])
def test_bad_input_is_a_clear_error_before_training(tmp_path, capsys, args, words):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--no-progress", "--train-size", "40", "--test-size", "20", *args]) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err
    assert not out.exists()


def test_cifar_path_without_batches_and_empty_class_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--data", f"cifar10:{tmp_path / 'empty'}", "--out", str(tmp_path / "r")]) == 2
    assert "data_batch_1..5 and test_batch" in capsys.readouterr().err
    (tmp_path / "empty" / "a").mkdir()
    assert main(["train", "--data", f"folder:{tmp_path / 'empty'}", "--out", str(tmp_path / "r")]) == 2
    assert str(tmp_path / "empty") in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resume_with_another_config_or_without_resume_is_refused(tmp_path, capsys):
    out = str(tmp_path / "run")
    common = ["train", "--out", out, "--no-progress", "--train-size", "40", "--test-size", "20", "--epochs", "1", "--batch-size", "16"]
    assert main(common) == 0
    before = (tmp_path / "run" / "last.pt").stat().st_mtime_ns
    assert main(common + ["--mix", "cutmix", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and "mix: saved 'none', now 'cutmix'" in err
    assert main(common) == 2
    assert "--resume" in capsys.readouterr().err
    assert (tmp_path / "run" / "last.pt").stat().st_mtime_ns == before


# -- k-fold run --------------------------------------------------------------------------------
def test_kfold_run_writes_each_fold_and_out_of_fold_accuracy(tmp_path):
    summary = train(TrainConfig(folds=2, out=str(tmp_path), **TINY))
    assert summary["folds"] == 2 and 0.0 <= summary["oof_acc"] <= 1.0
    assert sum(summary["fold_sizes"]) == 40
    vals = [json.loads((tmp_path / f"fold{i}" / "summary.json").read_text())["val_indices"] for i in range(2)]
    assert sorted(vals[0] + vals[1]) == list(range(40))
    assert json.loads((tmp_path / "summary.json").read_text())["oof_acc"] == summary["oof_acc"]


# -- distributed -------------------------------------------------------------------------------
def test_ddp_two_cpu_processes_on_gloo(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "mixmask.cli.main", "train", "--train-size", "64", "--test-size", "32", "--epochs", "1", "--batch-size", "8",
               "--mix", "cutmix", "--no-progress", "--out", str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = _check_outputs(tmp_path)
    assert summary["world_size"] == 2
    assert summary["test_size"] == 32 and summary["per_class"]["macro avg"]["support"] == 32
    assert done.stdout.count("epoch 1/1") == 1  # only rank 0 reports


# -- progress bar ------------------------------------------------------------------------------
def test_run_with_a_progress_bar_warns_nothing(tmp_path, monkeypatch):
    from rich.progress import Progress

    from mixmask.train import reports

    shown = []

    class Recording(Progress):
        def update(self, task, **kwargs):
            shown.append(kwargs.get("description"))
            super().update(task, **kwargs)

    monkeypatch.setattr(reports, "progress_bar", lambda enabled: Recording(disable=True))
    train(TrainConfig(out=str(tmp_path), mix="cutmix", **{**TINY, "progress": True}))  # warnings are errors here
    assert shown and all(d.startswith("epoch 1/1 loss ") for d in shown)


def test_segmentation_steps_use_pair_targets_with_the_soft_targets_loss_and_accuracy():
    from types import SimpleNamespace

    from mixmask import mixed_cross_entropy
    from mixmask.functional.kernels import PairTargets
    from mixmask.train.epochs import EpochLoop

    spec = "choice(mixup,cutmix,fmix):p=0.9"
    assert parse_mix(spec, num_classes=4, ignore_index=255, target_format="pair").target_format == "pair"
    assert parse_mix("cutmix:target_format='soft'", num_classes=4, target_format="pair").target_format == "soft"
    gen = torch.Generator().manual_seed(5)
    x, maps = torch.rand(6, 3, 16, 16, generator=gen), torch.randint(0, 4, (6, 16, 16), generator=gen)
    maps[:, :2] = 255
    logits = torch.randn(6, 4, 16, 16, generator=gen)
    steps = SimpleNamespace(ignore=255)
    for seed in range(3):
        soft = parse_mix(spec, num_classes=4, ignore_index=255, seed=seed)(x, masks=maps)
        pair = parse_mix(spec, num_classes=4, ignore_index=255, seed=seed, target_format="pair")(x, masks=maps)
        assert isinstance(pair.masks, PairTargets) and torch.equal(soft.inputs, pair.inputs)
        assert torch.allclose(mixed_cross_entropy(logits, soft.masks, ignore_index=255),
                              mixed_cross_entropy(logits, pair.masks, ignore_index=255), atol=1e-5)
        undecided = int(((soft.masks.max(1).values == 0.5) & (soft.masks.sum(1) > 0)).sum())  # ties at 1/2
        soft_hits = EpochLoop._correct(steps, logits, soft.masks)
        pair_hits = EpochLoop._correct(steps, logits, pair.masks)
        assert pair_hits[1] == soft_hits[1] == int((maps != 255).sum())
        assert abs(int(pair_hits[0]) - int(soft_hits[0])) <= undecided
