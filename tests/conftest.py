"""Shared helpers for the core tests: naive per-sample references and a no-side-effect check."""

from __future__ import annotations

import os

import torch
from hypothesis import HealthCheck, settings

from mixmask.functional.params import FILL_METHODS, METHODS, MixParams

settings.register_profile("mixmask", deadline=None, max_examples=25, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mixmask")

#: Ids of the methods whose partner is the fill value (GridMask, Cutout).
FILL_IDS = {METHODS.index(m) for m in FILL_METHODS}


def snapshot(*tensors):
    """``(version, clone)`` of each tensor, to check later that nothing was written."""
    return [(t._version, t.clone()) for t in tensors if isinstance(t, torch.Tensor)]


def assert_untouched(tensors, shots):
    """Each tensor has the version and the values it had when ``snapshot`` was taken."""
    tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
    for t, (version, copy) in zip(tensors, shots):
        assert t._version == version
        torch.testing.assert_close(t, copy, rtol=0, atol=0, equal_nan=True)


def naive_mix_inputs(inputs: torch.Tensor, params: MixParams, channels_last: bool = False) -> torch.Tensor:
    """Reference: one sample at a time, in float64, ``M * x[i] + (1 - M) * partner``."""
    out = torch.empty_like(inputs)
    for i in range(inputs.shape[0]):
        m = params.mask[i].double()
        m = m.unsqueeze(-1) if channels_last else m.unsqueeze(0)
        x = inputs[i].double()
        if int(params.method[i]) in FILL_IDS:
            partner = torch.full_like(x, params.fill)
        else:
            partner = inputs[int(params.index[i])].double()
        if params.mask.dtype == torch.bool:
            value = torch.where(m.bool(), x, partner)
        else:
            value = m * x + (1 - m) * partner
        if inputs.dtype == torch.uint8:
            value = value.round().clamp(0, 255)
        out[i] = value.to(inputs.dtype)
    return out


def naive_class_targets(labels: torch.Tensor, params: MixParams, num_classes: int, eps: float = 0.0,
                        multi_label: bool = False) -> torch.Tensor:
    """Reference: one sample at a time, in float64."""
    batch = labels.shape[0]
    rows = []
    for i in range(batch):
        def target(k):
            if labels.ndim == 1:
                y = torch.zeros(num_classes, dtype=torch.float64)
                y[int(labels[k])] = 1.0
            else:
                y = labels[k].double()
            return y * (1 - eps) + (eps / 2 if multi_label else eps / num_classes)
        w = 1.0 if int(params.method[i]) in FILL_IDS else float(params.lam[i])
        rows.append(w * target(i) + (1 - w) * target(int(params.index[i])))
    return torch.stack(rows)


def naive_dense_targets(ids: torch.Tensor, params: MixParams, num_classes: int | None = None,
                        ignore_index: int | None = None) -> torch.Tensor:
    """Reference: one sample and one pixel kind at a time."""
    batch = ids.shape[0]
    if params.mask.dtype == torch.bool:
        out = torch.empty_like(ids)
        for i in range(batch):
            keep = params.mask[i]
            if int(params.method[i]) in FILL_IDS:
                other = ids[i] if ignore_index is None else torch.full_like(ids[i], ignore_index)
            else:
                other = ids[int(params.index[i])]
            out[i] = torch.where(keep, ids[i], other)
        return out
    out = torch.zeros(batch, num_classes, *ids.shape[1:], dtype=torch.float64)
    for i in range(batch):
        m = params.mask[i].double()
        for k in range(num_classes):
            own = (ids[i] == k).double()
            if int(params.method[i]) in FILL_IDS:
                other = own if ignore_index is None else torch.zeros_like(own)
            else:
                other = (ids[int(params.index[i])] == k).double()
            out[i, k] = m * own + (1 - m) * other
    return out.float()


def cli_error(capsys, argv: list[str]) -> str:
    """Run the CLI, expect exit code 2 and one error line ``mixmask <cmd>: error: ...``; return it."""
    from mixmask.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mixmask {argv[0]}: error: "), err
    return lines[0]


# The Keras layer tests run in one subprocess per backend (tests/test_keras_backends.py sets this).
if os.environ.get("MIXMASK_KERAS_TESTS") != "1":
    collect_ignore_glob = ["keras/*"]
