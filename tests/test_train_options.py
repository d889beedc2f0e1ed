"""--train-size / --test-size, --augment crop,flip and --preset cifar-paper of `mixmask train` / `compare`."""

from __future__ import annotations

import json
import pickle
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import cli_error

from mixmask import MixMaskError
from mixmask.cli.main import main
from mixmask.data.classification import TensorData
from mixmask.train import TrainConfig, load_data, train
from mixmask.train.augment import PAD, Augmented, build_augment, parse_augment
from mixmask.train.config import PRESETS, pick_samples

pytest.importorskip("sklearn")


def _fake_cifar(root: Path, per_batch: int = 10) -> Path:
    """A tiny CIFAR-10 python-batch folder (data_batch_1..5, test_batch), written with pickle."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [i % 10 for i in range(per_batch)]}
        with open(root / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    return root


# -- sizes -------------------------------------------------------------------------------------
def test_train_size_shrinks_the_training_pool_only_stratified():
    full = load_data("digits")
    data = load_data("digits", train_size=200)
    assert len(data.train) == 200 and len(data.test) == len(full.test) == 360
    assert torch.equal(data.test_targets, full.test_targets)  # the test split is untouched
    counts = torch.bincount(data.train_targets, minlength=10)
    expected = torch.bincount(full.train_targets, minlength=10).double() * 200 / len(full.train)
    assert ((counts - expected).abs() <= 1).all(), (counts, expected)
    assert data.source_sizes == (len(full.train), 360)
    again = load_data("digits", train_size=200)
    assert torch.equal(data.train_targets, again.train_targets)  # the same samples every time
    x, y = data.train[0]
    assert torch.equal(x, full.train[data.train.indices[0]][0])


def test_test_size_keeps_a_stratified_part_of_the_test_split():
    data = load_data("mnist1d", test_size=100)
    assert len(data.test) == 100 and len(data.train) == 4000
    assert (torch.bincount(data.test_targets, minlength=10) >= 8).all()
    assert data.describe()["source_test_size"] == 1000


def test_pick_samples_falls_back_to_a_seeded_choice_when_it_cannot_stratify():
    targets = torch.tensor([0] * 5 + [1])  # class 1 has one sample: no stratified pick
    picked = pick_samples(targets, 6, 3)
    assert len(picked) == 3 and list(picked) == sorted(set(picked.tolist()))
    assert np.array_equal(picked, pick_samples(targets, 6, 3))
    assert np.array_equal(pick_samples(None, 10, 10), np.arange(10))


@pytest.mark.parametrize("argv, words", [
    (["--train-size", "5000"], ["--train-size 5000", "training pool of --data digits", "1437 samples",
                                "test split of 360 is kept apart"]),
    (["--test-size", "400"], ["--test-size 400", "test split of --data digits", "360 samples"]),
    (["--train-size", "8"], ["--train-size 8 keeps no sample of class(es)", "of the 10 classes", "at least 10"]),
    (["--train-size", "10", "--val-fraction", "0.5"], ["--train-size 10", "every class in the training split",
                                                       "holds out 5 of 10", "without a training sample"]),
    (["--train-size", "40", "--folds", "5"], ["--folds 5", "at least 5 samples of every class", "smallest class has 4",
                                             "of the 40 kept by --train-size 40"]),
    (["--train-size", "1"], ["--train-size must be an int >= 2", "1"]),
    (["--test-size", "0"], ["--test-size must be an int >= 1", "0"]),
])
def test_bad_sizes_are_one_line_errors_naming_the_numbers(tmp_path, capsys, argv, words):
    out = tmp_path / "run"
    message = cli_error(capsys, ["train", "--out", str(out), "--no-progress", "--epochs", "1", *argv])
    for word in words:
        assert word in message, message
    assert not out.exists()


def test_split_sizes_are_printed_and_recorded(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "mnist1d", "--train-size", "100", "--test-size", "50", "--val-fraction", "0.2",
                 "--epochs", "1", "--batch-size", "16", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert ("--data mnist1d: 80 train / 20 val / 50 test (training pool: 100 of 4000 kept by --train-size; "
            "test split: 50 of 1000 kept by --test-size)") in printed
    config = json.loads((out / "config.json").read_text())
    assert config["train_size"] == 100 and config["test_size"] == 50
    assert config["dataset"]["split"] == {"train": 80, "val": 20, "test": 50}
    assert config["dataset"]["source_train_size"] == 4000 and config["dataset"]["source_test_size"] == 1000


def test_compare_header_states_the_split(tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", "--data", "mnist1d", "--train-size", "60", "--val-fraction", "0.5", "--epochs", "1",
                 "--batch-size", "16", "--no-progress", "--mix", "none", "--seeds", "1", "--out", str(out)]) == 0
    text = (out / "compare.md").read_text()
    assert "Split: 30 train / 30 val / 1000 test samples (training pool: 60 of 4000, --train-size)." in text
    result = json.loads((out / "compare.json").read_text())
    assert result["config"]["train_size"] == 60 and result["config"]["test_size"] is None


def test_subset_is_the_old_name_of_train_size(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--subset", "40", "--test-size", "20", "--epochs", "1", "--batch-size", "16",
                 "--no-progress", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["train_size"] == 40 and "subset" not in config


# -- augment -----------------------------------------------------------------------------------
def test_parse_augment_names_and_errors():
    assert parse_augment("flip,crop") == ("crop", "flip") and parse_augment("") == () and parse_augment(None) == ()
    with pytest.raises(MixMaskError, match=r"unknown --augment name\(s\) \['rotate'\].*valid: crop, flip"):
        parse_augment("crop,rotate")
    with pytest.raises(MixMaskError, match="twice"):
        parse_augment("flip,flip")
    with pytest.raises(MixMaskError, match=r"takes images \(C, H, W\).*\(1, 40\)"):
        build_augment(("crop",), (1, 40))


def test_unknown_augment_at_the_cli_lists_the_valid_ones(tmp_path, capsys):
    message = cli_error(capsys, ["train", "--augment", "crop,jitter", "--out", str(tmp_path / "r"), "--no-progress"])
    assert "jitter" in message and "valid: crop, flip" in message
    message = cli_error(capsys, ["train", "--data", "mnist1d", "--augment", "flip", "--out", str(tmp_path / "r"),
                              "--no-progress"])
    assert "(C, H, W)" in message and "(1, 40)" in message


def _windows(image: torch.Tensor) -> list[torch.Tensor]:
    """Every crop of the zero-padded image and its mirror: what crop,flip may return."""
    c, h, w = image.shape
    padded = torch.zeros(c, h + 2 * PAD, w + 2 * PAD, dtype=image.dtype)
    padded[:, PAD:PAD + h, PAD:PAD + w] = image
    crops = [padded[:, i:i + h, j:j + w] for i in range(2 * PAD + 1) for j in range(2 * PAD + 1)]
    return crops + [c.flip(-1) for c in crops]


def test_crop_flip_is_drawn_per_sample_and_repeats():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (16, 3, 12, 12), generator=gen, dtype=torch.uint8)
    labels = torch.arange(16) % 10
    pool = TensorData(images, labels)
    transform = build_augment(("crop", "flip"), (3, 12, 12))
    state = torch.random.get_rng_state()
    data = Augmented(pool, np.arange(16), transform, seed=3, epoch=0)
    x, y = data.__getitems__(list(range(16)))
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's global generator is left alone
    assert x.shape == images.shape and x.dtype == torch.uint8 and torch.equal(y, labels)
    for i in range(16):  # each output is one window of its own padded image, possibly mirrored
        assert any(torch.equal(x[i], w) for w in _windows(images[i]))
    zeros = [(x[i] == 0).sum().item() for i in range(16)]
    assert len(set(zeros)) > 3  # different crops for different samples, not one per batch
    again, _ = Augmented(pool, np.arange(16), transform, seed=3, epoch=0).__getitems__(list(range(16)))
    assert torch.equal(again, x)
    alone = Augmented(pool, np.arange(16), transform, seed=3, epoch=0)[5][0]
    assert torch.equal(alone, x[5])  # a sample's draw does not depend on its batch
    other, _ = Augmented(pool, np.arange(16), transform, seed=3, epoch=1).__getitems__(list(range(16)))
    assert not torch.equal(other, x)


def test_crop_moves_segmentation_maps_with_their_image():
    gen = torch.Generator().manual_seed(1)
    maps = torch.randint(0, 4, (6, 10, 10), generator=gen)
    images = (maps * 60 + 10).to(torch.uint8)[:, None].expand(-1, 3, -1, -1).contiguous()
    transform = build_augment(("crop", "flip"), (3, 10, 10), ignore_index=255)
    x, y = Augmented(TensorData(images, maps), np.arange(6), transform, seed=0, epoch=0, dense=True).__getitems__(
        list(range(6)))
    inside = y != 255
    assert torch.equal(x[:, 0][inside], (y[inside] * 60 + 10).to(torch.uint8))
    assert (x[:, 0][~inside] == 0).all() and (~inside).any()


# -- preset and the CIFAR protocol -------------------------------------------------------------
def test_cifar_paper_preset_on_a_fake_cifar_folder(tmp_path, capsys):
    root = _fake_cifar(tmp_path / "cifar-10-batches-py")
    out = tmp_path / "run"
    assert main(["train", "--data", f"cifar10:{tmp_path}", "--preset", "cifar-paper", "--mix", "cutmix",
                 "--model", "preact_resnet18:width=4", "--epochs", "1", "--batch-size", "16", "--val-fraction",
                 "0.2", "--no-progress", "--out", str(out)]) == 0
    assert "40 train / 10 val / 10 test" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    preset = PRESETS["cifar-paper"]
    for key in ("optimizer", "lr", "momentum", "weight_decay", "warmup_epochs", "augment"):
        assert config[key] == preset[key], key
    assert (config["model"], config["epochs"], config["batch_size"]) == ("preact_resnet18:width=4", 1, 16)
    assert config["preset"] == "cifar-paper" and config["augment"] == "crop,flip"
    assert json.loads((out / "summary.json").read_text())["test_size"] == 10


def test_the_cifar_compare_line_of_the_docs_runs_on_a_fake_folder(tmp_path, capsys, monkeypatch):
    """docs/train.md's CIFAR-10 command as written (``~/data``, the preset, every SPEC), with the run made small."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "train.md").read_text()
    line = re.search(r"```bash\n(mixmask compare --data cifar10:~/data --preset cifar-paper .*?)```", text, re.S)
    argv = shlex.split(line.group(1).replace("\\\n", " "))
    assert argv[:2] == ["mixmask", "compare"] and "--preset" in argv
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    _fake_cifar(tmp_path / "data" / "cifar-10-batches-py", per_batch=20)
    small = ["--model", "preact_resnet18:width=4", "--epochs", "1", "--batch-size", "32", "--seeds", "1",
             "--workers", "0", "--no-progress"]
    assert main(argv[1:] + small) == 0
    out = tmp_path / "runs" / "cifar-paper"
    assert "Split: 90 train / 10 val / 20 test samples" in (out / "compare.md").read_text()
    result = json.loads((out / "compare.json").read_text())
    assert list(result["methods"]) == ["none", "mixup", "cutmix", "fmix"]
    config = result["config"]
    assert (config["preset"], config["augment"], config["lr"], config["optimizer"]) == ("cifar-paper", "crop,flip",
                                                                                         0.1, "sgd")


def test_preset_values_and_unknown_preset(tmp_path, capsys):
    assert PRESETS["cifar-paper"] == {"model": "preact_resnet18", "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
                                      "weight_decay": 5e-4, "epochs": 200, "batch_size": 128, "warmup_epochs": 0.0,
                                      "augment": "crop,flip"}
    with pytest.raises(SystemExit):
        main(["train", "--preset", "imagenet", "--out", str(tmp_path / "r")])
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err
    with pytest.raises(MixMaskError, match="unknown preset 'x'; valid: cifar-paper"):
        TrainConfig(preset="x").validate()


def test_augmented_training_repeats_and_differs_from_plain(tmp_path):
    root = _fake_cifar(tmp_path / "c")
    common = dict(data=f"cifar10:{root}", model="cnn:width=4", epochs=1, batch_size=16, progress=False,
                  val_fraction=0.2, mix="mixup")
    first = train(TrainConfig(**common, augment="crop,flip", out=str(tmp_path / "a")))
    second = train(TrainConfig(**common, augment="crop,flip", out=str(tmp_path / "b")))
    plain = train(TrainConfig(**common, out=str(tmp_path / "p")))
    assert first["train_loss"] == second["train_loss"]
    assert first["train_loss"] != plain["train_loss"]
