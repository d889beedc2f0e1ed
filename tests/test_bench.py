"""``mixmask bench``: end to end on tiny sizes, the JSON schema, missing peers, and each case's job."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from mixmask.bench.cases import BENCH_METHODS, LIBRARIES, has_equivalent, installed, make_call, semantics
from mixmask.bench.report import COLUMNS, to_markdown
from mixmask.bench.runner import BenchConfig, Row, parse_sizes, plan_rows, summarise
from mixmask.bench.worker import run_job
from mixmask.cli.main import main
from mixmask.errors import MixMaskError

TINY = ["--sizes", "4x3x16x16", "--rounds", "1", "--warmup", "1", "--min-time", "0", "--min-calls", "2",
        "--max-calls", "3", "--quiet"]

ROW_TYPES = {"size": str, "batch": int, "method": str, "library": str, "path": str, "status": str, "note": str,
             "semantics": str, "calls": int, "round_medians_ms": list, "warnings": list}
ROW_NUMBERS = ("median_ms", "min_ms", "q1_ms", "q3_ms", "iqr_ms", "images_per_s", "x_copy_floor", "mixmask_speedup",
               "faults_per_call", "peak_mib")


def _check_row(row: dict) -> None:
    for key, kind in ROW_TYPES.items():
        assert isinstance(row[key], kind), (key, row[key])
    for key in ROW_NUMBERS:
        assert row[key] is None or isinstance(row[key], float), (key, row[key])
    assert row["status"] in ("ok", "error", "not installed", "no equivalent")
    if row["status"] == "ok":
        assert row["calls"] >= 2 and row["semantics"]
        assert 0 < row["min_ms"] <= row["q1_ms"] <= row["median_ms"] <= row["q3_ms"]
        assert row["images_per_s"] == pytest.approx(row["batch"] / row["median_ms"] * 1e3)
        assert row["peak_mib"] is not None and row["peak_mib"] >= 0 and row["memory_kind"]
        if sys.platform.startswith("linux"):  # CPU rows count page faults where getrusage does
            assert row["faults_per_call"] is not None and row["faults_per_call"] >= 0
    else:
        assert row["median_ms"] is None and row["calls"] == 0


def test_end_to_end_json_schema_markdown_and_plot(tmp_path):
    out = tmp_path / "b.json"
    args = ["bench", *TINY, "--methods", "mixup,cutmix", "--path", "transform,collate",
            "--libraries", "mixmask,timm-batch,floor-copy,floor-lerp",
            "--json", str(out), "--markdown", str(tmp_path / "b.md"), "--plot", str(tmp_path / "b.png")]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["schema"] == "mixmask-bench/1"
    assert report["command"].startswith("mixmask bench ") and "--sizes 4x3x16x16" in report["command"]
    assert report["config"]["sizes"] == [[4, 3, 16, 16]] and report["config"]["rounds"] == 1
    assert {"python", "torch", "mixmask", "timm", "torchvision", "kornia"} <= set(report["versions"])
    assert report["versions"]["torch"] and report["versions"]["python"]
    assert isinstance(report["machine"]["cpu"], str) and report["machine"]["cores"] >= 1
    assert report["machine"]["threads"] >= 1
    for moment in ("start", "end"):
        load = report["load_average"][moment]
        assert load is None or (len(load) == 3 and all(isinstance(v, float | int) for v in load))
    assert report["date"] <= report["finished"]
    for row in report["rows"]:
        _check_row(row)
    rows = {(r["method"], r["library"], r["path"]): r for r in report["rows"]}
    assert rows[("-", "floor-copy", "transform")]["x_copy_floor"] == pytest.approx(1.0)
    for key in [("-", "floor-lerp", "transform")] + [(m, "mixmask", p) for m in ("mixup", "cutmix")
                                                     for p in ("transform", "collate")]:
        assert rows[key]["status"] == "ok", rows[key]
        assert rows[key]["x_copy_floor"] > 0
    timm = rows[("cutmix", "timm-batch", "transform")]
    assert timm["status"] == ("ok" if installed("timm-batch") else "not installed")
    if timm["status"] == "ok":
        assert timm["mixmask_speedup"] == pytest.approx(timm["median_ms"] / rows[("cutmix", "mixmask", "transform")]
                                                        ["median_ms"])
    markdown = (tmp_path / "b.md").read_text()
    assert report["command"] in markdown
    assert markdown.count("\n| 4x3x16x16 |") == sum(r["status"] != "no equivalent" for r in report["rows"])
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_peer_is_a_row_not_a_failure(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kornia", None)  # `import kornia` now raises ImportError
    out = tmp_path / "b.json"
    args = ["bench", *TINY, "--methods", "cutmix,fmix", "--libraries", "mixmask,kornia,floor-copy",
            "--json", str(out)]
    assert main(args) == 0
    rows = {(r["method"], r["library"]): r for r in json.loads(out.read_text())["rows"]}
    assert rows[("cutmix", "kornia")]["status"] == "not installed"
    assert rows[("fmix", "kornia")]["status"] == "no equivalent"
    assert rows[("cutmix", "mixmask")]["status"] == "ok" and rows[("fmix", "mixmask")]["status"] == "ok"
    markdown = to_markdown(json.loads(out.read_text()))
    assert "no equivalent: kornia: fmix" in markdown and "| fmix | kornia |" not in markdown


def test_bad_arguments_are_clear_errors(capsys):
    assert main(["bench", "--sizes", "4x3"]) == 2
    assert "4x3" in capsys.readouterr().err
    assert main(["bench", "--methods", "mixup,puzzlemix"]) == 2
    assert "puzzlemix" in capsys.readouterr().err
    with pytest.raises(MixMaskError, match="paths"):
        BenchConfig(paths=("eager",))
    with pytest.raises(MixMaskError, match="rounds"):
        BenchConfig(rounds=0)
    assert parse_sizes("2x3x8, 1x1x4x4x4") == ((2, 3, 8), (1, 1, 4, 4, 4))


def test_plan_marks_what_cannot_run_and_keeps_semantics():
    config = BenchConfig(methods=BENCH_METHODS, sizes=((4, 3, 8, 8),), paths=("transform", "collate"))
    rows = plan_rows(config)
    for row in rows:
        if row.status == "ok":
            assert semantics(row.library, row.method, row.path) == row.semantics != ""
    kinds = {(r.method, r.library, r.path): r.status for r in rows}
    assert kinds[("fmix", "timm-batch", "transform")] == "no equivalent"
    assert kinds[("gridmask", "kornia", "transform")] == "no equivalent"
    assert kinds[("gridmask", "mixup-pkg", "transform")] == "no equivalent"
    for method in ("mixup", "cutmix", "resizemix", "fmix", "saliencymix"):  # the `mixup` package's methods
        assert kinds[(method, "mixup-pkg", "transform")] == ("ok" if installed("mixup-pkg") else "not installed")
    assert ("cutmix", "timm-batch", "collate") not in kinds  # the collate path is mixmask's own
    assert all(kinds[(m, "mixmask", p)] == "ok" for m in BENCH_METHODS for p in ("transform", "collate"))


def test_summary_pools_rounds_and_takes_ratios():
    copy = Row("8x3x4x4", 8, "-", "floor-copy", "transform", "ok", "")
    ours = Row("8x3x4x4", 8, "mixup", "mixmask", "transform", "ok", "")
    peer = Row("8x3x4x4", 8, "mixup", "torchvision", "transform", "ok", "")
    broken = Row("8x3x4x4", 8, "cutmix", "kornia", "transform", "ok", "")
    ok = {"status": "ok", "peak_mib": 1.0, "memory_kind": "rss", "host_sync": None, "threads": 1, "warnings": []}
    copy.results = [dict(ok, times_s=[0.001] * 4)]
    ours.results = [dict(ok, times_s=[0.002, 0.004]), dict(ok, times_s=[0.003, 0.005, 0.006])]
    peer.results = [dict(ok, times_s=[0.012] * 3)]
    broken.results = [{"status": "error", "error": "TypeError: boom", "times_s": []}]
    items = {i["library"]: i for i in summarise([copy, ours, peer, broken])}
    pooled = torch.tensor([2.0, 4.0, 3.0, 5.0, 6.0], dtype=torch.float64)
    assert items["mixmask"]["median_ms"] == pytest.approx(4.0)
    assert items["mixmask"]["iqr_ms"] == pytest.approx(float(pooled.quantile(0.75) - pooled.quantile(0.25)))
    assert items["mixmask"]["min_ms"] == pytest.approx(2.0)
    assert items["mixmask"]["round_medians_ms"] == pytest.approx([3.0, 5.0])
    assert items["mixmask"]["images_per_s"] == pytest.approx(8 / 0.004)
    assert items["mixmask"]["x_copy_floor"] == pytest.approx(4.0)
    assert items["torchvision"]["mixmask_speedup"] == pytest.approx(3.0)
    assert items["kornia"]["status"] == "error" and "boom" in items["kornia"]["note"]
    report = {"rows": list(items.values()), "versions": {"python": "3", "torch": "2", "mixmask": "0"},
              "machine": {"cpu": "x", "cores": 1, "threads": 1}, "config": {"device": "cpu", "dtype": "float32",
                                                                            "rounds": 2},
              "load_average": {"start": None, "end": None}, "date": "d", "command": "mixmask bench"}
    lines = to_markdown(report).splitlines()
    header = next(line for line in lines if line.startswith("| size"))
    assert header.count("|") == len(COLUMNS) + 1


def test_worker_reports_a_peer_failure_as_a_result():
    pytest.importorskip("timm")
    spec = {"library": "timm-batch", "method": "mixup", "path": "transform", "shape": [3, 3, 8, 8],
            "dtype": "float32", "device": "cpu", "num_classes": 5, "seed": 0, "threads": 1, "warmup": 1,
            "min_time": 0.0, "min_calls": 2, "max_calls": 2}
    result = run_job(spec)  # timm needs an even batch
    assert result["status"] == "error" and "even" in result["error"]
    result = run_job(dict(spec, shape=[4, 3, 8, 8]))
    assert result["status"] == "ok" and len(result["times_s"]) == 2 and result["threads"] == 1


def _runnable(method: str) -> list[str]:
    return [lib for lib in LIBRARIES if has_equivalent(lib, method) and installed(lib)]


@pytest.mark.parametrize("method", BENCH_METHODS)
def test_every_case_mixes_images_and_labels_alike(method):
    """Each library does the same job: with sample i filled with its own label id, the mixed image's
    mean is the label mixture's mean id (so soft targets match the pixels each call mixed)."""
    batch, classes = 8, 8
    labels = torch.arange(batch)
    for library in _runnable(method):
        inputs = labels.float().view(-1, 1, 1, 1).expand(batch, 3, 16, 16).contiguous()
        out = make_call(library, method, "transform", inputs, labels, classes, seed=1)()
        if isinstance(out, tuple):
            mixed, targets = out
        else:
            mixed, targets = out.inputs, out.targets
        if (library, method) == ("mixup-pkg", "saliencymix") and targets.shape == (batch, 1, batch, classes):
            # mixup 0.2.2 broadcasts its (B, 1, 1, 1) weights against (B, K) labels: sample i's row is [i, 0, i]
            targets = targets[torch.arange(batch), 0, torch.arange(batch)]
        assert targets.shape == (batch, classes), library
        assert torch.allclose(targets.sum(1), torch.ones(batch)), library
        if method not in ("gridmask", "cutout"):  # they keep labels and drop pixels to the fill value
            expected = targets @ torch.arange(classes, dtype=torch.float32)
            assert torch.allclose(mixed.mean((1, 2, 3)), expected, atol=1e-4), library


def test_floors_and_collate_path_keep_shape_and_dtype():
    inputs = torch.rand(4, 3, 8, 8)
    labels = torch.arange(4)
    for library in ("floor-copy", "floor-lerp"):
        out = make_call(library, "-", "transform", inputs, labels, 4)()
        assert out.shape == inputs.shape and out.dtype == inputs.dtype
    owned = inputs.clone()
    result = make_call("mixmask", "cutmix", "collate", owned, labels, 4, seed=2)()
    assert result.inputs.data_ptr() == owned.data_ptr()  # mixed in place, as in a collate
    with pytest.raises(MixMaskError, match="no equivalent"):
        make_call("kornia", "fmix", "transform", inputs, labels, 4)
    with pytest.raises(MixMaskError, match="collate"):
        make_call("torchvision", "mixup", "collate", inputs, labels, 4)


def test_keras_section_plans_its_own_rows_and_refuses_what_it_cannot_time():
    config = BenchConfig(framework="keras", sizes=((4, 3, 8, 8),), methods=("mixup", "fmix"))
    assert config.libraries == ("mixmask-keras", "keras", "keras-cv", "floor-gather")
    assert BenchConfig(framework="keras").methods == ("mixup", "cutmix", "fmix", "gridmask")
    status = {(r.method, r.library): r.status for r in plan_rows(config)}
    assert status[("-", "floor-gather")] == "ok"
    assert status[("fmix", "keras")] == "no equivalent" and status[("mixup", "keras")] == "ok"
    assert status[("fmix", "mixmask-keras")] == "ok"
    assert status[("fmix", "keras-cv")] in ("ok", "not installed")
    for kwargs, match in (({"device": "cuda"}, "cpu device|cuda"), ({"paths": ("collate",)}, "transform path"),
                          ({"sizes": ((4, 3, 8),)}, "2-D image batches"), ({"libraries": ("timm-batch",)}, "libraries"),
                          ({"framework": "mxnet"}, "framework")):
        with pytest.raises(MixMaskError, match=match):
            BenchConfig(**{"framework": "keras", **kwargs})


def test_keras_summary_compares_with_mixmask_keras_and_the_gather_floor():
    rows = [Row("8x3x4x4", 8, "-", "floor-gather", "transform", "ok", ""),
            Row("8x3x4x4", 8, "cutmix", "mixmask-keras", "transform", "ok", ""),
            Row("8x3x4x4", 8, "cutmix", "keras", "transform", "ok", "")]
    for row, ms in zip(rows, (1.0, 2.0, 6.0)):
        row.results.append({"status": "ok", "times_s": [ms / 1e3] * 3, "peak_mib": 0.0, "memory_kind": "x"})
    items = {i["library"]: i for i in summarise(rows, "keras")}
    assert items["mixmask-keras"]["x_copy_floor"] == pytest.approx(2.0)
    assert items["keras"]["mixmask_speedup"] == pytest.approx(3.0)
    assert items["mixmask-keras"]["mixmask_speedup"] is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts page faults with getrusage")
def test_page_faults_per_call_tell_fresh_memory_from_reused_memory():
    from mixmask.bench.worker import time_calls_and_faults

    cpu = torch.device("cpu")
    buffer = torch.zeros(16 << 20)  # 64 MiB, mapped in once here
    _, reused = time_calls_and_faults(lambda: buffer.add_(1.0), cpu, 0.0, 4, 4)
    # 64 MiB is above glibc's largest mmap threshold: each call maps fresh pages (32 faults even as 2 MiB pages)
    _, fresh = time_calls_and_faults(lambda: torch.empty(16 << 20).fill_(1.0), cpu, 0.0, 4, 4)
    assert fresh >= 16 and reused < fresh / 4, (fresh, reused)
    assert time_calls_and_faults(lambda: None, torch.device("meta"), 0.0, 2, 2)[1] is None  # not the CPU
