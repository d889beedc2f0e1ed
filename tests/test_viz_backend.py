"""Library pictures choose no matplotlib backend and never import pyplot."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_pictures_leave_the_backend_and_pyplot_alone(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        import matplotlib
        matplotlib.use("svg")
        import torch
        from mixmask.viz.previews import save_classification_preview
        from mixmask.viz.training import plot_compare, plot_confusion, plot_curves, plot_lr
        from mixmask.viz.segmentation import save_predictions, save_segmentation_preview
        from mixmask.bench.report import write_plot
        out = {str(tmp_path)!r}
        history = [{{"epoch": 1, "train_loss": 1.0, "test_acc": 0.5}},
                   {{"epoch": 2, "train_loss": 0.5, "test_acc": 0.7}}]
        plot_curves(history, out + "/c.png")
        plot_lr([0.1, 0.05], 1, out + "/lr.png")
        plot_confusion(torch.eye(3, dtype=torch.long), ["a", "b", "c"], out + "/cm.png")
        ids = torch.zeros(1, 8, 8, dtype=torch.long)
        save_predictions(out + "/seg.png", torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8), ids, ids)
        save_segmentation_preview(out + "/segp.png", methods=("cutmix",), size=16)
        plot_compare({{"none": [[0.5, 0.6]]}}, {{"none": [0.6]}}, out + "/cmp.png")
        save_classification_preview(out + "/p.png", torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8),
                                    methods=("cutmix",))
        rows = [{{"size": "2x3x8x8", "method": "mixup", "library": "mixmask", "path": "transform",
                  "images_per_s": 100.0}}]
        write_plot({{"rows": rows, "config": {{"device": "cpu", "dtype": "float32"}},
                    "machine": {{"threads": 1}}, "date": "2026-01-01"}}, out + "/b.png")
        print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["svg", "False"]
    assert len(list(tmp_path.glob("*.png"))) == 8
