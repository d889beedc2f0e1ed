"""MixCollate: in-place mixing inside a DataLoader, one stream per worker and per rank."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

import mixmask.streams as streams
from mixmask import CutMix, FMix, GridMask, MixCollate, MixMaskError, MixUp, RandomChoice


class Same(Dataset):
    """Every batch holds the same samples, so batches differ only by their random draw."""

    def __init__(self, n=32, kind="labels", dtype=torch.float32):
        g = torch.Generator().manual_seed(0)
        self.images = (torch.rand(8, 3, 8, 8, generator=g) * 255).to(dtype)
        self.labels = torch.arange(8) % 4
        self.masks = torch.randint(0, 4, (8, 8, 8), generator=g)
        self.n, self.kind = n, kind

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        i = i % 8
        if self.kind == "dict":
            return {"image": self.images[i], "label": self.labels[i], "mask": self.masks[i]}
        return self.images[i], self.labels[i] if self.kind == "labels" else self.masks[i]


def run(collate, workers=2, seed=0, kind="labels", dtype=torch.float32):
    loader = DataLoader(Same(kind=kind, dtype=dtype), batch_size=8, num_workers=workers, collate_fn=collate,
                        generator=torch.Generator().manual_seed(seed))
    return list(loader)


def test_workers_draw_from_distinct_streams_and_runs_reproduce():
    collate = MixCollate(CutMix(num_classes=4), seed=1)
    first = run(collate)
    assert len(first) == 4
    # batch 0 comes from worker 0 and batch 1 from worker 1: both are their worker's first draw
    assert not torch.equal(first[0][0], first[1][0])
    assert not torch.equal(first[0][0], first[2][0])
    second = run(collate)
    for (x1, y1), (x2, y2) in zip(first, second):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    other_seed = run(MixCollate(CutMix(num_classes=4), seed=2))
    assert not torch.equal(first[0][0], other_seed[0][0])


def test_ranks_draw_from_distinct_streams(monkeypatch):
    collate = MixCollate(FMix(num_classes=4), seed=3)
    rank0 = run(collate, workers=0)
    monkeypatch.setattr(streams, "_rank", lambda: 1)
    rank1 = run(MixCollate(FMix(num_classes=4), seed=3), workers=0)
    assert not torch.equal(rank0[0][0], rank1[0][0])
    monkeypatch.setattr(streams, "_rank", lambda: 0)
    again = run(MixCollate(FMix(num_classes=4), seed=3), workers=0)
    assert torch.equal(rank0[0][0], again[0][0])


@pytest.mark.parametrize("transform", [MixUp(num_classes=4), CutMix(num_classes=4), FMix(num_classes=4),
                                       GridMask(num_classes=4),
                                       RandomChoice([MixUp(), FMix(), GridMask()], num_classes=4)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_in_place_path_equals_out_of_place(transform, dtype):
    collate = MixCollate(transform, seed=4)
    data = Same(dtype=dtype)
    samples = [data[i] for i in range(8)]
    shots = [(s[0]._version, s[0].clone()) for s in samples]
    for _ in range(2):  # the second call reuses the workspace
        state = collate.generator().get_state()
        inputs, targets = collate(samples)
        fresh, labels = default_collate(samples)
        params = transform.sample(fresh, labels, generator=torch.Generator().set_state(state))
        expected = transform.apply(params, fresh, labels)
        assert torch.equal(inputs, expected.inputs) and torch.equal(targets, expected.targets)
    for s, (version, copy) in zip(samples, shots):
        assert s[0]._version == version and torch.equal(s[0], copy)


def test_dense_targets_and_dicts():
    masks = run(MixCollate(CutMix(num_classes=4), targets="masks", seed=5), workers=0, kind="masks")
    x, seg = masks[0]
    assert seg.shape == (8, 8, 8) and seg.dtype == torch.long
    dicts = run(MixCollate(CutMix(num_classes=4), seed=5), workers=0, kind="dict")
    batch = dicts[0]
    assert set(batch) == {"image", "label", "mask"}
    assert batch["label"].shape == (8, 4) and batch["mask"].dtype == torch.long
    torch.testing.assert_close(batch["label"].sum(1), torch.ones(8))


def test_pickle_and_repr():
    collate = MixCollate(MixUp(num_classes=4), seed=6)
    collate([Same()[i] for i in range(8)])
    clone = pickle.loads(pickle.dumps(collate))
    assert clone._workspace is None and repr(clone) == repr(collate)
    assert repr(collate) == "MixCollate(MixUp(alpha=1.0, num_classes=4), targets='labels', seed=6)"


def test_collate_errors():
    with pytest.raises(MixMaskError, match="mixmask transform.*int"):
        MixCollate(3)
    with pytest.raises(MixMaskError, match="targets.*'boxes'"):
        MixCollate(MixUp(), targets="boxes")
    with pytest.raises(MixMaskError, match="collate to.*list"):
        MixCollate(MixUp(), collate_fn=lambda s: [s[0][0], s[0][1], s[0][0]])([Same()[0]])
