"""mixmask compare: every SPEC x seed, skipped when finished, summarised in compare.md/json/png."""

from __future__ import annotations

import json

import pytest

from mixmask.cli.main import main
from mixmask.train.spec import spec_slug

COMMON = ["compare", "--train-size", "30", "--test-size", "15", "--epochs", "1", "--batch-size", "16", "--no-progress"]


def test_compare_runs_each_spec_and_seed_then_skips_finished_runs(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = COMMON + ["--mix", "none,mixup:alpha=0.4,choice(cutmix,gridmask)", "--seeds", "2", "--seed", "7",
                     "--out", str(out)]
    assert main(args) == 0
    runs = sorted(p.parent.name + "/" + p.name for p in out.glob("*/seed*"))
    assert runs == ["choice-cutmix-gridmask/seed7", "choice-cutmix-gridmask/seed8", "mixup-alpha=0.4/seed7",
                    "mixup-alpha=0.4/seed8", "none/seed7", "none/seed8"]
    result = json.loads((out / "compare.json").read_text())
    methods = result["methods"]
    assert list(methods) == ["none", "mixup:alpha=0.4", "choice(cutmix,gridmask)"]
    for spec, m in methods.items():
        assert m["seeds"] == [7, 8] and len(m["score"]) == 2
        assert m["score_mean"] == pytest.approx(sum(m["score"]) / 2)
        assert m["gain_over_none"] == pytest.approx(m["score_mean"] - methods["none"]["score_mean"])
        summary = json.loads((out / spec_slug(spec) / "seed8" / "summary.json").read_text())
        assert summary["mix"] == spec and summary["seed"] == 8 and m["score"][1] == summary["test_acc"]
    assert methods["none"]["gain_over_none"] == 0.0 and result["metric"] == "test_acc"
    table = (out / "compare.md").read_text()
    assert "| `mixup:alpha=0.4` |" in table and "| test accuracy (mean ± std) | test error |" in table and "1 epochs" in table and "2 per method" in table
    from PIL import Image

    with Image.open(out / "compare.png") as image:
        assert image.size[0] > 300
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/seed*/summary.json")}
    capsys.readouterr()
    assert main(args) == 0  # everything finished: nothing is trained again
    assert "[1/6]" not in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("*/seed*/summary.json")}


@pytest.mark.parametrize("extra, words", [
    (["--mix", "none,none"], ["distinct"]),
    (["--mix", "none,wobble"], ["unknown mix method 'wobble'", "gridmask"]),
    (["--seeds", "0"], ["--seeds must be an int >= 1"]),
    (["--folds", "3"], ["--folds is for `mixmask train`"]),
])
def test_compare_bad_input_fails_before_training(tmp_path, capsys, extra, words):
    assert main(COMMON + ["--out", str(tmp_path / "cmp"), *extra]) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err
    assert not (tmp_path / "cmp").exists()


def test_compare_refuses_a_folder_made_with_another_config(tmp_path, capsys):
    out = str(tmp_path / "cmp")
    assert main(COMMON + ["--mix", "none", "--seeds", "1", "--out", out]) == 0
    (tmp_path / "cmp" / "none" / "seed0" / "summary.json").unlink()
    changed = [("8" if a == "16" else a) for a in COMMON]
    assert main(changed + ["--mix", "none", "--seeds", "1", "--out", out]) == 2
    assert "batch_size: saved 16, now 8" in capsys.readouterr().err


def test_compare_segmentation_ranks_by_mean_iou(tmp_path):
    out = tmp_path / "seg"
    assert main(["compare", "--data", "shapes", "--model", "unet:width=8", "--train-size", "20", "--test-size", "10", "--epochs", "1",
                 "--batch-size", "8", "--no-progress", "--mix", "none,cutmix", "--seeds", "1", "--out", str(out)]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["metric"] == "test_miou"
    summary = json.loads((out / "cutmix" / "seed0" / "summary.json").read_text())
    assert result["methods"]["cutmix"]["score"] == [summary["test_miou"]]
    assert "| test mean IoU (mean ± std) | gain over none |" in (out / "compare.md").read_text()
