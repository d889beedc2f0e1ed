"""``mixmask bench --framework keras`` end to end on a tiny size (one round: one TensorFlow process)."""

from __future__ import annotations

import json

from kerashelp import needs

from mixmask.cli.main import main


@needs("tensorflow")
def test_keras_bench_times_every_row_in_graph_mode(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--framework", "keras", "--sizes", "4x3x16x16", "--methods", "mixup,cutmix,fmix",
                 "--libraries", "mixmask-keras,keras,floor-gather", "--rounds", "1", "--warmup", "1",
                 "--min-time", "0", "--min-calls", "2", "--max-calls", "3", "--num-classes", "10", "--quiet",
                 "--json", str(out), "--markdown", str(tmp_path / "bench.md")])
    assert code == 0
    report = json.loads(out.read_text())
    rows = {(r["method"], r["library"]): r for r in report["rows"]}
    assert report["config"]["framework"] == "keras" and report["versions"]["keras"]
    for key in (("-", "floor-gather"), ("mixup", "mixmask-keras"), ("cutmix", "mixmask-keras"),
                ("fmix", "mixmask-keras"), ("mixup", "keras"), ("cutmix", "keras")):
        assert rows[key]["status"] == "ok", rows[key]
        assert rows[key]["calls"] >= 2 and rows[key]["median_ms"] > 0
    assert rows[("fmix", "keras")]["status"] == "no equivalent"
    assert rows[("cutmix", "keras")]["mixmask_speedup"] > 0
    assert "mixmask-keras" in (tmp_path / "bench.md").read_text()
    assert "graph mode" in capsys.readouterr().out
