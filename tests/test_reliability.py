"""Reliability of the command line and the runner: one clear error per bad argument, file and fault.

Each test names the item of the reliability issue it covers. Errors are checked through
``main([...])`` (exit code 2, one ``mixmask <command>: error: ...`` line, no output written), faults
through a patched writer (a full disk) or a subprocess killed with SIGKILL at a chosen write.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import cli_error

from mixmask import MixMaskError
from mixmask.cli.main import main
from mixmask.data import ClassFolder, ImageMaskFolder
from mixmask.resources import check_writable, format_bytes
from mixmask.train import TrainConfig, load_data, train
from mixmask.train import records as records_module

TINY = dict(train_size=40, test_size=20, epochs=2, batch_size=16, progress=False, mix="cutmix", seed=1)




# -- untrusted files ---------------------------------------------------------------------------
class _Payload:
    """Pickles as a call of ``os.system``: what a hostile batch file holds."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _cifar(root: Path, write=None, per_batch: int = 4) -> Path:
    """CIFAR-10 batches in ``root``; ``write(name, batch) -> bytes | None`` may replace a file's bytes."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [i % 10 for i in range(per_batch)]}
        raw = write(name, batch) if write else None
        (root / name).write_bytes(raw if raw is not None else pickle.dumps(batch))
    return root


def test_a_cifar_batch_that_runs_a_command_is_refused_unrun(tmp_path, capsys):
    marker = tmp_path / "ran"
    hostile = pickle.dumps(_Payload(marker))
    root = _cifar(tmp_path / "c", lambda name, batch: hostile if name == "data_batch_3" else None)
    with pytest.raises(MixMaskError, match="data_batch_3.*names posix.system, which a CIFAR batch never holds"):
        load_data(f"cifar10:{root}")
    message = cli_error(capsys, ["train", "--data", f"cifar10:{root}", "--out", str(tmp_path / "run")])
    assert "posix.system" in message
    assert not marker.exists() and not (tmp_path / "run").exists()
    nested = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [_Payload(marker)] * 4}
    (root / "data_batch_3").write_bytes(pickle.dumps(nested))  # hidden inside an allowed container
    with pytest.raises(MixMaskError, match="posix.system"):
        load_data(f"cifar10:{root}")
    assert not marker.exists()


def _py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch as Python 2's cPickle wrote the CIFAR files: protocol 2, ``str`` as bytes, ``numpy.core``."""
    def text(b: bytes) -> bytes:
        return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)

    def integer(v: int) -> bytes:
        return b"J" + struct.pack("<i", v)

    out = b"\x80\x02}(" + text(b"batch_label") + text(b"training batch 1 of 5") + text(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + integer(0) + b"\x85" + text(b"b") + b"\x87R"
    out += b"(" + integer(1) + integer(data.shape[0]) + integer(data.shape[1]) + b"\x86"
    out += (b"cnumpy\ndtype\n" + text(b"u1") + integer(0) + integer(1) + b"\x87R(" + integer(3) + text(b"|")
            + b"NNN" + integer(-1) + integer(-1) + integer(0) + b"tb")
    out += b"\x89" + text(data.tobytes()) + b"tb"
    out += text(b"labels") + b"](" + b"".join(integer(v) for v in labels) + b"eu."
    return out


@pytest.mark.parametrize("writer", ["python2", "protocol2", "protocol4", "protocol5"])
def test_cifar_batches_of_every_pickle_protocol_read(tmp_path, writer):
    def write(name, batch):
        if writer == "python2":
            return _py2_batch(batch[b"data"], batch[b"labels"])
        return pickle.dumps(batch, protocol=int(writer[-1]))

    root = _cifar(tmp_path, write)
    data = load_data(f"cifar10:{root}")
    raw = _py2_batch(np.zeros((1, 3072), np.uint8), [0])  # the helper itself matches a trusted load
    assert pickle.loads(raw, encoding="bytes")[b"labels"] == [0]
    first = np.random.default_rng(0).integers(0, 256, (4, 3072), dtype=np.uint8)
    assert torch.equal(data.train[0][0], torch.from_numpy(first[0].reshape(3, 32, 32)))
    assert len(data.train) == 20 and data.classes == [str(i) for i in range(10)]


@pytest.mark.parametrize("content, words", [
    (7, ["holds a int"]),
    ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, -1, 2]}, ["class ids 0 to 9", "[-1]"]),
    ({b"data": np.zeros((4, 3072), np.uint8), b"labels": ["cat", "dog", "cat", "dog"]}, ["list of int", "str"]),
    ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1]}, ["4 images and 2 labels"]),
    ({b"data": np.zeros((4, 3072), np.float32), b"labels": [0, 1, 2, 3]}, ["integer array", "float32"]),
    ({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, ["(N, 3072)", "(4, 100)"]),
    ({b"data": np.full((4, 3072), 300, np.int64), b"labels": [0, 1, 2, 3]}, ["0 to 255", "300"]),
    ({b"pixels": 1}, ["keys b'data' and b'labels'"]),
])
def test_bad_cifar_contents_are_named_before_anything_is_written(tmp_path, capsys, content, words):
    root = _cifar(tmp_path / "c", lambda name, batch: pickle.dumps(content) if name == "data_batch_2" else None)
    message = cli_error(capsys, ["train", "--data", f"cifar10:{root}", "--out", str(tmp_path / "run")])
    for word in words + ["data_batch_2"]:
        assert word in message
    assert not (tmp_path / "run").exists()


def test_a_checkpoint_that_runs_a_command_is_refused_unrun(tmp_path, capsys):
    out, marker = tmp_path / "run", tmp_path / "ran"
    out.mkdir()
    torch.save({"epoch": 1, "model": _Payload(marker)}, out / "last.pt")
    message = cli_error(capsys, ["train", "--resume", "--out", str(out), "--train-size", "40", "--test-size", "20", "--no-progress"])
    assert "last.pt" in message and "refused unrun" in message and "posix.system" in message
    assert not marker.exists() and sorted(p.name for p in out.iterdir()) == ["last.pt"]


# -- outputs checked before work ---------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["train", "--out", "/proc/mixmask-run"],
    ["train", "--out", "{file}/run"],
    ["compare", "--out", "/proc/mixmask-run", "--seeds", "1"],
    ["preview", "--out", "/proc/preview.png"],
    ["preview", "--out", "{file}/p.png"],
    ["data", "shapes", "--out", "/proc/shapes"],
    ["bench", "--json", "/proc/bench.json", "--sizes", "2x3x8x8"],
    ["bench", "--markdown", "{file}/bench.md", "--sizes", "2x3x8x8"],
    ["bench", "--plot", "/proc/bench.png", "--sizes", "2x3x8x8"],
])
def test_unwritable_outputs_are_refused_before_any_work(tmp_path, capsys, monkeypatch, argv):
    import mixmask.bench.runner as bench_runner
    import mixmask.train.runner as train_runner

    def never(*args, **kwargs):
        raise AssertionError("the work started")

    monkeypatch.setattr(bench_runner, "run_bench", never)
    monkeypatch.setattr(train_runner, "load_data", never)
    monkeypatch.setattr("mixmask.data.photos.sample_photos", never)
    monkeypatch.setattr("mixmask.data.shapes.write_shapes", never)
    (tmp_path / "a-file").write_text("x")
    argv = [a.replace("{file}", str(tmp_path / "a-file")) for a in argv]
    option = next(a for a in argv if a.startswith("--") and a != "--sizes")
    message = cli_error(capsys, argv)
    assert option in message and ("/proc" in message or "a-file" in message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_the_write_check_leaves_nothing_behind(tmp_path):
    assert check_writable(tmp_path / "new" / "deeper", "--out", folder=True) == tmp_path / "new" / "deeper"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(MixMaskError, match="expected a folder to write, but it is a file"):
        check_writable(tmp_path / "f", "--out", folder=True)
    with pytest.raises(MixMaskError, match="expected a file to write, but it is a folder"):
        check_writable(tmp_path, "--json", folder=False)
    (tmp_path / "link").symlink_to(tmp_path / "missing")
    with pytest.raises(MixMaskError, match="broken symbolic link"):
        check_writable(tmp_path / "link" / "x.json", "--json", folder=False)
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(600 * 2 ** 30) == "600.0 GiB"


# -- devices and values ------------------------------------------------------------------------
def test_a_cuda_device_that_is_not_there_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "no CUDA device" in cli_error(capsys, ["train", "--device", "cuda", "--out", str(tmp_path / "r")])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert "has 1 CUDA device(s), cuda:0 to cuda:0" in cli_error(capsys, ["train", "--device", "cuda:3", "--out",
                                                                       str(tmp_path / "r")])
    assert "auto, cpu, cuda or cuda:N" in cli_error(capsys, ["train", "--device", "tpu", "--out", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, words", [
    (["--momentum", "-5"], "--momentum must be in [0, 1), but got -5.0"),
    (["--weight-decay", "nan"], "--weight-decay must be a finite number, but got nan"),
    (["--min-lr", "10"], "--min-lr must be in [0, the learning rate 0.05]"),
    (["--lr", "inf"], "--lr must be a finite number, but got inf"),
    (["--seed", "-1"], "--seed must be an int >= 0, but got -1"),
    (["--clip-grad", "nan"], "--clip-grad must be a finite number"),
    (["--mix", "mixup:channels_last=True"], "channels-first batches (B, C, *S)"),
    (["--mix", "choice(cutmix,mixup:channels_last=True)"], "drop channels_last"),
    (["--folds", "5000"], "--folds 5000 needs at least 5000 training samples, but --data digits has 40"),
])
def test_bad_values_are_refused_before_anything_is_written(tmp_path, capsys, args, words):
    out = tmp_path / "run"
    assert words in cli_error(capsys, ["train", "--out", str(out), "--train-size", "40", "--test-size", "20", *args])
    assert not out.exists()


def test_bench_sizes_beyond_memory_are_refused_before_running(capsys, monkeypatch):
    import mixmask.bench.runner as bench_runner

    monkeypatch.setattr(bench_runner, "run_bench", lambda *a, **k: pytest.fail("the benchmark started"))
    message = cli_error(capsys, ["bench", "--sizes", "2x3x8x8,10000x3x2000x5000", "--quiet"])
    assert "--sizes 10000x3x2000x5000 needs about" in message and "TiB" in message


def test_preview_memory_is_estimated_before_allocating(tmp_path, capsys):
    for task in ("classification", "segmentation"):
        message = cli_error(capsys, ["preview", "--task", task, "--size", "100000", "--out", str(tmp_path / "p.png")])
        assert "--size 100000 (4 images of 100000x100000) needs about 3.6 TiB of memory" in message
    assert not (tmp_path / "p.png").exists()


def _png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` RGB pixels (a few bytes on disk: a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _seg_folder(root: Path, count: int = 4, ids: int = 3, dtype=np.uint8) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / f"{i}.png")
        mask = (rng.integers(0, ids, (16, 16))).astype(dtype)
        Image.fromarray(mask).save(root / f"{i}_mask.png")
    return root


def test_decompression_bombs_are_named_by_every_reader(tmp_path, capsys):
    seg = _seg_folder(tmp_path / "seg")
    _png_header(seg / "0.png", 40000, 40000)
    for argv in (["data", "check", str(seg)],
                 ["train", "--data", f"seg-folder:{seg}", "--out", str(tmp_path / "run")],
                 ["preview", "--images", str(seg / "0.png"), str(seg / "1.png"), "--out", str(tmp_path / "p.png")]):
        message = cli_error(capsys, argv)
        assert "0.png" in message and "decompression bomb" in message and "1600000000 pixels" in message
    classes = tmp_path / "classes"
    for k in range(2):
        (classes / f"c{k}").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * k, np.uint8)).save(classes / f"c{k}" / f"{i}.png")
    _png_header(classes / "c1" / "big.png", 10000, 10000)  # above MAX_IMAGE_PIXELS: Pillow only warns
    message = cli_error(capsys, ["train", "--data", f"folder:{classes}", "--out", str(tmp_path / "run")])
    assert "'c1/big.png'" in message and "100000000 pixels" in message
    assert not (tmp_path / "run").exists() and not (tmp_path / "p.png").exists()


def test_every_problem_of_a_folder_is_reported_in_one_pass_with_its_cause(tmp_path, capsys):
    root = _seg_folder(tmp_path / "seg", count=5)
    truncated = root / "1.png"
    truncated.write_bytes(truncated.read_bytes()[:-60])  # the header reads, the pixels do not
    (root / "2.png").unlink()
    (root / "2.png").symlink_to(root / "gone.png")  # a broken link: its mask is not "without an image"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "lonely.png")
    (root / "3_mask.png").unlink()
    message = cli_error(capsys, ["data", "check", str(root)])
    assert "'lonely.png', '3.png'" in message or "'3.png', 'lonely.png'" in message
    assert f"'2.png' (a broken symbolic link to {str(root / 'gone.png')!r})" in message
    assert "failed to decode" in message and f"{str(truncated)!r}" in message and "truncated" in message
    assert "mask(s) without an image" not in message
    with pytest.raises(MixMaskError) as lazy:
        ImageMaskFolder(root)  # without verify, the header pass still names the link and the pairing
    assert "broken symbolic link" in str(lazy.value) and "failed to decode" not in str(lazy.value)
    (tmp_path / "cls" / "a").mkdir(parents=True)
    (tmp_path / "cls" / "a" / "x.png").symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(MixMaskError, match="'a/x.png' \\(a broken symbolic link"):
        ClassFolder(tmp_path / "cls")


def test_ids_that_make_too_many_classes_are_refused_before_training(tmp_path, capsys, monkeypatch):
    import mixmask.resources as resources

    root = _seg_folder(tmp_path / "seg", count=5, dtype=np.uint16)
    mask = np.array(Image.open(root / "0_mask.png"))
    mask[0, 0] = 60000
    Image.fromarray(mask.astype(np.uint16)).save(root / "0_mask.png")
    monkeypatch.setattr(resources, "available_memory", lambda device="cpu": 8 << 30)
    message = cli_error(capsys, ["train", "--data", f"seg-folder:{root}", "--out", str(tmp_path / "run"),
                              "--batch-size", "4"])
    assert "60001 classes (ids 0 to 60000" in message and "8.0 GiB is available" in message
    assert "unlabelled pixels must be 255" in message and not (tmp_path / "run").exists()


def test_data_shapes_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep")
    message = cli_error(capsys, ["data", "shapes", "--out", str(tmp_path), "--count", "2", "--size", "16"])
    assert "holds 1 entry" in message and "--overwrite" in message
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    assert main(["data", "shapes", "--out", str(tmp_path), "--count", "2", "--size", "16", "--overwrite"]) == 0


# -- resume and durability ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """An uninterrupted run of TINY, to compare interrupted ones with."""
    out = tmp_path_factory.mktemp("straight")
    train(TrainConfig(out=str(out), **TINY))
    return out


def _rows(folder: Path) -> list[dict]:
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.endswith("seconds")} for line in lines]


def _same_run(a: Path, b: Path) -> None:
    assert _rows(a) == _rows(b)
    wa = torch.load(a / "last.pt", weights_only=True)["model"]
    wb = torch.load(b / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((a / "summary.json").read_text())["test_acc"] == json.loads((b / "summary.json").read_text())[
        "test_acc"]
    assert not list(b.glob(".tmp.*"))


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_damaged_last_checkpoint_is_a_clear_error(tmp_path, capsys, straight, damage):
    out = tmp_path / "run"
    out.mkdir()
    data = (straight / "last.pt").read_bytes()
    (out / "last.pt").write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    argv = ["train", "--resume", "--out", str(out), "--train-size", "40", "--test-size", "20", "--epochs", "2", "--batch-size", "16",
            "--mix", "cutmix", "--seed", "1", "--no-progress"]
    message = cli_error(capsys, argv)
    assert f"{str(out / 'last.pt')!r}" in message and "cannot be read" in message
    assert ("(0 bytes:" in message) == (damage == "empty")  # "(0 bytes", not the end of "(336510 bytes"


def test_resuming_with_another_thread_count_is_refused(tmp_path, capsys, straight, monkeypatch):
    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 1)
    argv = ["train", "--resume", "--out", str(straight), "--train-size", "40", "--test-size", "20", "--epochs", "2", "--batch-size", "16",
            "--mix", "cutmix", "--seed", "1", "--no-progress"]
    message = cli_error(capsys, argv)
    assert f"threads: saved {threads}, now {threads + 1}" in message and "--threads" in message


def test_a_full_disk_is_one_error_and_the_run_resumes(tmp_path, capsys, straight, monkeypatch):
    out = tmp_path / "run"
    saved = torch.save
    calls = []

    def full_disk(obj, path, *args, **kwargs):
        calls.append(Path(path).name)
        if Path(path).name.endswith(".last.pt") and obj["epoch"] == 2:
            Path(path).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return saved(obj, path, *args, **kwargs)

    monkeypatch.setattr(records_module.torch, "save", full_disk)
    argv = ["train", "--out", str(out), "--train-size", "40", "--test-size", "20", "--epochs", "2", "--batch-size", "16", "--mix", "cutmix",
            "--seed", "1", "--no-progress"]
    message = cli_error(capsys, argv)
    assert "No space left on device" in message and "epoch 1 complete (last.pt)" in message
    assert "--resume" in message
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1 and not list(out.glob(".tmp.*"))
    assert [r["epoch"] for r in _rows(out)] == [1, 2]  # written before the commit: the finished epoch is kept
    monkeypatch.setattr(records_module.torch, "save", saved)
    assert main(argv + ["--resume"]) == 0
    _same_run(straight, out)


_KILL = """
import os, signal, sys
import torch
torch.set_num_threads({threads})
from mixmask.train import TrainConfig, train
replace = os.replace
seen = []
def killing_replace(src, dst):
    name = os.path.basename(dst)
    seen.append(name)
    if name == {target!r} and seen.count(name) == {count}:
        os.kill(os.getpid(), signal.SIGKILL)
    return replace(src, dst)
os.replace = killing_replace
train(TrainConfig(out=sys.argv[1], **{tiny!r}))
"""


@pytest.mark.parametrize("target, count", [
    ("last.pt", 2),        # the last epoch done, metrics.jsonl written, killed before its commit
    ("summary.json", 1),   # every epoch committed, killed while writing the reports
])
def test_a_run_killed_at_a_write_loses_nothing_and_resumes_exactly(tmp_path, straight, target, count):
    out = tmp_path / "run"
    script = _KILL.format(threads=torch.get_num_threads(), target=target, count=count, tiny=TINY)
    done = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    assert list(out.glob(f".tmp.*.{target}"))  # the write the kill interrupted
    assert [r["epoch"] for r in _rows(out)] == [1, 2]  # no finished epoch's row lost
    train(TrainConfig(out=str(out), resume=True, **TINY))
    _same_run(straight, out)


def test_cli_errors_have_no_traceback_through_the_real_entry_point(tmp_path):
    for argv, words in ((["train", "--momentum", "-5", "--out", str(tmp_path / "r")], "--momentum must be in [0, 1)"),
                        (["bench", "--json", "/proc/x.json"], "--json '/proc/x.json'")):
        done = subprocess.run([sys.executable, "-m", "mixmask.cli.main", *argv], capture_output=True, text=True,
                              timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert len(lines) == 1 and lines[0].startswith(f"mixmask {argv[0]}: error: ") and words in lines[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", [["train", "--epochs", "1"], ["preview"], ["bench", "--quiet"],
                                     ["data", "shapes"]])
def test_a_negative_seed_is_refused_by_every_command_before_any_output(tmp_path, capsys, command):
    out = tmp_path / "out"
    out_option = ["--out", str(out / "x.png" if command[0] == "preview" else out)] if command[0] != "bench" \
        else ["--json", str(out / "b.json")]
    message = cli_error(capsys, [*command, "--seed", "-1", *out_option])
    assert "seed must be an int >= 0, but got -1" in message
    assert not out.exists()
