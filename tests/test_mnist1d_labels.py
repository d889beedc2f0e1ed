"""benchmarks/mnist1d_labels.py: where each MNIST-1D digit lies, and the 1-D check behind docs/train.md."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mnist1d")
pytest.importorskip("sklearn")

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "mnist1d_labels.py"
_spec = importlib.util.spec_from_file_location("mnist1d_labels", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_digit_spans_are_where_the_noiseless_template_is():
    noiseless = dict(corr_noise_scale=0.0, iid_noise_scale=0.0, shear_scale=0.0)
    x, y, spans = bench.digit_spans(500, **noiseless)
    _, y_default, default = bench.digit_spans(500)
    assert np.array_equal(spans, default) and np.array_equal(y, y_default)  # same draws, only the noise differs
    pos = np.arange(x.shape[1])
    # linear resampling spreads a template's edge by less than 1.5 of the 40 points; outside, the
    # zero padding is one constant after the data set's standardisation
    outside = (pos < spans[:, :1] - 1.5) | (pos > spans[:, 1:] + 1.5)
    assert outside.sum(1).min() >= 25
    padding = x[outside]
    assert np.ptp(padding) < 1e-9
    inside = (pos >= spans[:, :1]) & (pos <= spans[:, 1:])
    assert ((np.abs(x - padding[0]) > 1e-3) & inside).sum(1).min() >= 3
    lengths = spans[:, 1] - spans[:, 0]
    assert 5.5 < lengths.min() and lengths.max() < 9.5 and spans.min() >= 0 and spans.max() <= 39


def test_visible_digit_weights():
    spans = torch.tensor([[2.0, 5.0], [10.0, 13.0]], dtype=torch.float64)
    mask = torch.ones(2, 20, dtype=torch.float64)
    mask[0, 2:6] = 0  # sample 0 loses its whole digit; sample 1 keeps all of its own
    w, own, partner = bench.digit_weights(mask, torch.tensor([1, 0]), spans)
    assert own.tolist() == [0.0, 1.0]
    assert partner.tolist() == [0.0, 0.0]  # sample 1's digit (10-13) is kept in 0; sample 0's (2-5) is kept in 1
    assert w.tolist() == [0.5, 1.0]  # no digit visible at all: half and half
    mask[0, 10:14] = 0
    w, own, partner = bench.digit_weights(mask, torch.tensor([1, 0]), spans)
    assert own[0] == 0 and partner[0] == 1 and w[0] == 0


def test_the_one_dimensional_check_on_real_batches():
    result = bench.check(argparse.Namespace(methods="mixup,cutmix,fmix"))
    assert result["signals"] == 256
    for spec, paths in result["methods"].items():
        for errors in paths.values():
            assert errors["max_abs_output_error"] < 1e-5, (spec, errors)
            assert errors["max_abs_lam_minus_mask_mean"] < 1e-6, (spec, errors)
            assert errors["max_abs_target_error"] < 1e-6 and errors["max_abs_row_sum_minus_1"] < 1e-6, (spec, errors)
            assert errors["pairs_of_two_classes"] > 150, (spec, errors)
