"""Randomness as users run it: own collate_fn with workers, epochs, torch.manual_seed, ranks, threads."""

from __future__ import annotations

import pickle
import socket
import threading

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, TensorDataset, default_collate

from mixmask import CutMix, FMix, MixCollate, MixMaskError, MixUp, RandomChoice
from mixmask.streams import ProcessStream


def _dataset(n=32):
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.rand(n, 3, 8, 8, generator=g), torch.arange(n) % 4)


class UserCollate:
    """torchvision's documented recipe: ``collate_fn=lambda b: mix(*default_collate(b))``."""

    def __init__(self, mix):
        self.mix = mix

    def __call__(self, batch):
        return tuple(self.mix(*default_collate(batch)))


def _epochs(collate, epochs=2, workers=2, persistent=False, seed=0):
    loader = DataLoader(_dataset(), batch_size=8, num_workers=workers, collate_fn=collate,
                        persistent_workers=persistent, generator=torch.Generator().manual_seed(seed))
    return [[x for x, _ in loader] for _ in range(epochs)]


def _lams(batches):
    return [x[:, 0, 0, 0] for x in batches]


@pytest.mark.parametrize("persistent", [False, True])
def test_a_plain_transform_in_a_users_collate_fn_draws_anew_per_worker_and_epoch(persistent):
    epochs = _epochs(UserCollate(MixUp(num_classes=4, seed=3)), persistent=persistent)
    first, second = epochs
    # batches 0 and 1 are the first draws of workers 0 and 1: they hold the same samples mixed anew
    flat = first + second
    for a in range(len(flat)):
        for b in range(a + 1, len(flat)):
            assert not torch.equal(flat[a], flat[b]), (a, b)
    again = _epochs(UserCollate(MixUp(num_classes=4, seed=3)), persistent=persistent)
    for x, y in zip(first + second, again[0] + again[1]):  # a seeded loader repeats bit for bit
        assert torch.equal(x, y)


def test_a_transform_called_in_workers_without_a_seed_follows_the_loaders_seed():
    same = _epochs(UserCollate(CutMix(num_classes=4)), epochs=1, seed=5)
    again = _epochs(UserCollate(CutMix(num_classes=4)), epochs=1, seed=5)
    other = _epochs(UserCollate(CutMix(num_classes=4)), epochs=1, seed=6)
    assert all(torch.equal(a, b) for a, b in zip(same[0], again[0]))
    assert not all(torch.equal(a, b) for a, b in zip(same[0], other[0]))


def _unseeded_draw(seed, method):
    torch.manual_seed(seed)
    transform = method(num_classes=4)  # built after seeding, as a script does
    x = torch.rand(16, 3, 8, 8)
    return transform(x, torch.arange(16) % 4)


@pytest.mark.parametrize("method", [MixUp, CutMix, FMix])
def test_torch_manual_seed_makes_an_unseeded_transform_repeat(method):
    a, b, c = _unseeded_draw(0, method), _unseeded_draw(0, method), _unseeded_draw(1, method)
    assert a.inputs.numpy().tobytes() == b.inputs.numpy().tobytes()
    assert a.targets.numpy().tobytes() == b.targets.numpy().tobytes()
    assert not torch.equal(a.lam, c.lam)


def test_manual_seed_after_construction_still_counts():
    transform = CutMix(num_classes=4)
    x = torch.rand(16, 3, 8, 8)
    torch.manual_seed(11)
    first = transform(x).lam
    torch.manual_seed(12)
    second = transform(x).lam  # a new global seed is a new key: a new stream
    fresh = CutMix(num_classes=4)
    torch.manual_seed(11)
    assert torch.equal(fresh(x).lam, first) and not torch.equal(first, second)


def test_an_explicit_seed_repeats_and_ignores_the_global_seed():
    x = torch.rand(16, 3, 8, 8)
    torch.manual_seed(0)
    a = FMix(seed=4)(x).mask
    torch.manual_seed(1)
    b = FMix(seed=4)(x).mask
    assert torch.equal(a, b) and not torch.equal(a, FMix(seed=5)(x).mask)


def test_draws_do_not_depend_on_the_thread_count():
    x = torch.rand(16, 1, 128, 128)  # FMix work of 2^18 elements: drawn in blocks on threads
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = FMix(seed=2)(x)
        torch.set_num_threads(2)
        two = FMix(seed=2)(x)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one.mask, two.mask) and torch.equal(one.inputs, two.inputs)


def test_a_failed_call_leaves_the_stream_where_it_was():
    x = torch.rand(8, 3, 8, 8)
    transform = CutMix(num_classes=4, seed=9)
    with pytest.raises(MixMaskError):
        transform(x, torch.full((8,), 7))  # labels out of range: refused before the draw
    with pytest.raises(MixMaskError):
        transform(x, params=None, masks=torch.zeros(8, 9, 9, dtype=torch.long))
    assert torch.equal(transform(x).mask, CutMix(num_classes=4, seed=9)(x).mask)
    stream = ProcessStream(1)
    state = stream().get_state()
    from mixmask.streams import rewinding
    with pytest.raises(RuntimeError), rewinding(stream()) as generator:
        torch.rand(5, generator=generator)
        raise RuntimeError("a failure inside the draw")
    assert torch.equal(stream().get_state(), state)


def _rank_worker(rank, world, port, queue):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        torch.manual_seed(0)  # every rank seeds alike, as DDP scripts do
        seeded = CutMix(num_classes=4, seed=0)(x).mask
        unseeded = FMix(num_classes=4)(x).mask
        gathered = [None] * world
        dist.all_gather_object(gathered, (seeded, unseeded))
        if rank == 0:  # numpy arrays travel by value (a tensor's shared memory dies with this process)
            queue.put([tuple(t.numpy() for t in pair) for pair in gathered])
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_of_a_gloo_group_draw_differently():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank_worker, args=(rank, 2, port, queue)) for rank in range(2)]
    for proc in procs:
        proc.start()
    gathered = queue.get(timeout=120)
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    (seeded0, unseeded0), (seeded1, unseeded1) = gathered
    assert not (seeded0 == seeded1).all() and not (unseeded0 == unseeded1).all()


@pytest.mark.parametrize("start", ["spawn", "forkserver"])
def test_mix_collate_survives_spawn_and_forkserver_workers(start):
    collate = MixCollate(RandomChoice([MixUp(), CutMix()], num_classes=4), seed=1)
    loader = DataLoader(_dataset(16), batch_size=8, num_workers=2, collate_fn=collate,
                        multiprocessing_context=start, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert len(batches) == 2 and batches[0][1].shape == (8, 4)
    assert not torch.equal(batches[0][0], batches[1][0])
    torch.testing.assert_close(batches[0][1].sum(1), torch.ones(8))


def test_a_transform_pickles_with_its_stream_through_torchs_forking_pickler():
    from io import BytesIO

    from multiprocessing.reduction import ForkingPickler

    transform = CutMix(num_classes=4, seed=2)
    x = torch.rand(8, 3, 8, 8)
    transform(x)
    buffer = BytesIO()
    ForkingPickler(buffer).dump(transform)
    clone = pickle.loads(buffer.getvalue())
    assert torch.equal(clone(x).mask, transform(x).mask)


def test_one_mix_collate_shared_by_threads_mixes_every_batch_correctly():
    collate = MixCollate(CutMix(num_classes=4), seed=0)
    results, errors = {}, []

    def work(t):
        try:
            # thread t's images are constant: sample i holds the value 100 * t + i everywhere
            samples = [(torch.full((1, 16, 16), 100.0 * t + i), torch.tensor(i % 4)) for i in range(8)]
            results[t] = [collate(samples) for _ in range(10)]
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sorted(results) == [0, 1, 2, 3]
    for t, batches in results.items():
        for x, targets in batches:
            expected = torch.empty_like(targets)
            for i in range(8):
                own = x[i] == 100.0 * t + i
                share = float(own.float().mean())
                others = x[i][~own].unique()
                assert others.numel() <= 1  # one partner, and from this thread's batch
                j = i if others.numel() == 0 else int(others[0] - 100.0 * t)
                assert 0 <= j < 8 and j != i or share == 1.0
                expected[i] = share * torch.eye(4)[i % 4] + (1 - share) * torch.eye(4)[j % 4]
            torch.testing.assert_close(targets, expected, rtol=0, atol=1e-6)
