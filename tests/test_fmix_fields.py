"""FMix grey images of elongated shapes: the cube crop's covariance exactly, isotropy, cost that grows with |S|."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from mixmask import FMix, MixMaskError
from mixmask.functional import _fields as F
from mixmask.functional import fmix_grey_images, fmix_masks
from mixmask.functional import masks as M
from mixmask.functional._cache import TensorCache

CPU = torch.device("cpu")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def cube_covariance(shape, decay_power):
    """Reference: the covariance of the cube field cropped to ``shape``, from the whole cube's spectrum.

    ``C(r) = 2 / T^(2D) sum_k A(k)^2 cos(2 pi k.r / T)`` with the cube's amplitude
    ``A = 1 / max(f, 1 / T) ** decay_power``, over all ``T ** D`` frequencies (no ball left out).
    """
    size, ndim = max(shape), len(shape)
    freqs = torch.meshgrid(*[torch.fft.fftfreq(size, dtype=torch.float64)] * ndim, indexing="ij")
    power = 1.0 / torch.sqrt(sum(f**2 for f in freqs)).clamp_min(1.0 / size) ** (2 * decay_power)
    covariance = 2.0 / size**ndim * torch.fft.ifftn(power).real
    positions = torch.stack(torch.meshgrid(*[torch.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, ndim)
    lags = (positions[:, None, :] - positions[None, :, :]) % size
    return covariance[tuple(lags[..., d] for d in range(ndim))]


def plan_covariance(plan):
    """The covariance that a plan's linear map from normals gives: ``G^T G`` over a basis of the normals."""
    count, m, two = F.normals_shape(plan)
    n = count * m * two
    fields = F.plan_fields(plan, torch.eye(n, dtype=torch.float64).view(n, count, m, two)).reshape(n, -1)
    return fields.T @ fields


@pytest.mark.parametrize("shape, decay_power, long_axes", [
    ((6, 16), 3.0, (1,)), ((7, 30), 1.0, (1,)), ((5, 33), 2.0, (1,)),   # the whole lattice: no ball
    ((3, 4, 24), 3.0, (2,)), ((4, 24, 3), 3.0, (1,)),                    # two short axes, one long
    ((14, 16, 3), 3.0, (0, 1)),                                          # a long axis cropped to 14 of 16
    ((6, 40), 3.0, (1,)), ((41, 6), 3.0, (0,)), ((6, 40), 5.0, (1,)),   # a ball leaves modes out
    ((2, 3, 128), 3.0, (2,)),
    ((3, 18, 18), 5.0, (1, 2)), ((18, 3, 18), 5.0, (0, 2)), ((15, 18, 3), 5.0, (0, 1)),  # two runs of bins
])
def test_plan_has_the_covariance_of_the_cube_crop(shape, decay_power, long_axes):
    plan = F.build_plan(shape, decay_power, long_axes, torch.float64, CPU)
    expected = cube_covariance(shape, decay_power)
    error = float((plan_covariance(plan) - expected).abs().max() / expected.diagonal().max())
    radius = F.ball_radius(len(shape), max(shape), decay_power)
    if len(long_axes) == 2 and decay_power == 5.0:
        assert len(plan.placements) == 2  # the first long axis holds its frequencies in two runs of bins
    if radius == math.inf:
        assert error < 1e-10
    else:  # the modes left out hold at most TAIL of the variance: no entry moves by more than that
        assert radius < max(shape) // 2 * math.sqrt(len(shape))
        assert error < F.TAIL


@pytest.mark.parametrize("ndim, size, decay_power", [(2, 256, 3.0), (2, 256, 5.0), (3, 128, 3.0), (3, 64, 5.0),
                                                     (2, 512, 2.5)])
def test_ball_radius_bounds_the_variance_left_out(ndim, size, decay_power):
    radius = F.ball_radius(ndim, size, decay_power)
    assert radius < math.inf
    freqs = torch.meshgrid(*[torch.fft.fftfreq(size, dtype=torch.float64) * size] * ndim, indexing="ij")
    norm = torch.sqrt(sum(f**2 for f in freqs))
    power = norm.clamp_min(1.0) ** (-2 * decay_power)
    assert float(power[norm > radius].sum() / power.sum()) <= F.TAIL


def test_ball_radius_is_none_when_the_tail_diverges_or_covers_the_lattice():
    assert F.ball_radius(2, 4096, 1.0) == math.inf  # 2 * decay_power <= ndim
    assert F.ball_radius(3, 4096, 1.5) == math.inf
    assert F.ball_radius(2, 32, 3.0) == math.inf  # every lattice point lies inside the ball


def _variograms(grey_chunks, shape, lags):
    """``{lag: (D,) mean of (g(x + lag e_d) - g(x))^2}`` over all chunks of grey images."""
    sums = {lag: torch.zeros(len(shape), dtype=torch.float64) for lag in lags}
    count = 0
    for grey in grey_chunks:
        count += grey.shape[0]
        for lag in lags:
            for d, n in enumerate(shape):
                step = grey.narrow(d + 1, lag, n - lag) - grey.narrow(d + 1, 0, n - lag)
                sums[lag][d] += step.square_().sum(dtype=torch.float64) / step[0].numel()
    return {lag: s / count for lag, s in sums.items()}


@pytest.mark.parametrize("shape, samples", [((16, 1024), 2048), ((4, 512), 2048), ((512, 8), 2048),
                                            ((2, 2, 1024), 2048), ((3, 24, 96), 1024)])
def test_elongated_grey_images_are_isotropic(shape, samples):
    assert F.choose_long_axes(shape, 3.0) is not None  # drawn by a plan, not on the cube
    lags = [lag for lag in (1, 3, 6) if lag < min(shape)]
    g = gen(11)
    chunk = max(1, (1 << 22) // math.prod(shape))
    gammas = _variograms((fmix_grey_images(min(chunk, samples - k), shape, 3.0, g) for k in range(0, samples, chunk)),
                         shape, lags)
    # per-sample spread of these means is large at decay 3 (a few low modes dominate): ~3% standard error here
    for lag, gamma in gammas.items():
        assert float(gamma.max() / gamma.min()) < 1.1, (lag, gamma)
    gradient = gammas[1]  # mean squared gradient along each axis
    assert 0.9 < float(gradient[1:].min() / gradient[0]) and float(gradient[1:].max() / gradient[0]) < 1.1


def _cube_grey_images(batch_size, shape, decay_power, generator):
    """The cube draw as it was before elongated shapes had plans: scale, seeded blocks of 16, irfftn, crop."""
    cube = (max(shape),) * len(shape)
    axes = [torch.fft.fftfreq(n, dtype=torch.float64) for n in cube[:-1]] + [
        torch.fft.rfftfreq(cube[-1], dtype=torch.float64)]
    freqs = torch.sqrt(sum(g**2 for g in torch.meshgrid(*axes, indexing="ij")))
    scale = 1.0 / freqs.clamp_min(1.0 / max(cube)) ** decay_power
    edge = torch.zeros(freqs.shape[-1], dtype=torch.bool)
    edge[0] = True
    if cube[-1] % 2 == 0:
        edge[-1] = True
    scale = (scale * torch.where(edge, math.sqrt(2.0), 1.0)).float()
    seeds = torch.randint(0, 2**62, (-(-batch_size // 16),), generator=generator).tolist()
    noise = torch.cat([torch.randn((min(16, batch_size - 16 * k), *scale.shape, 2),
                                   generator=torch.Generator().manual_seed(s)) * scale[..., None]
                       for k, s in enumerate(seeds)])
    grey = torch.fft.irfftn(torch.view_as_complex(noise), s=cube, dim=tuple(range(1, len(shape) + 1)))
    return grey[(slice(None),) + tuple(slice(0, n) for n in shape)]


@pytest.mark.parametrize("shape", [(64,), (32, 32), (33, 33), (12, 12, 12), (32, 48), (10, 16, 14)])
def test_square_shapes_and_those_on_the_cube_draw_as_before(shape):
    assert F.choose_long_axes(shape, 3.0) is None
    grey = fmix_grey_images(20, shape, 3.0, gen(4))
    assert torch.equal(grey, _cube_grey_images(20, shape, 3.0, gen(4)))


@pytest.mark.parametrize("shape", [(16, 4096), (2, 2, 1024), (48, 20), (3, 24, 96)])
def test_same_images_whatever_the_number_of_threads(shape):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        M._TABLES.clear()  # the plan is built again under each thread count
        one = fmix_grey_images(40, shape, 3.0, gen(5))
        torch.set_num_threads(2)
        M._TABLES.clear()
        two = fmix_grey_images(40, shape, 3.0, gen(5))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)
    assert one.shape == (40, *shape) and one.dtype == torch.float32 and one.is_contiguous()


@pytest.mark.parametrize("shape", [(4, 16384), (2, 2, 16384), (4096, 16)])
def test_fmix_masks_of_long_shapes_keep_round_lam_n_pixels(shape):
    lam = torch.tensor([0.0, 0.3, 0.5, 1.0], dtype=torch.float64)
    mask, used = fmix_masks(lam, shape, gen(6))
    n = math.prod(shape)
    assert mask.shape == (4, *shape) and mask.dtype == torch.bool
    assert torch.equal(mask.reshape(4, n).sum(1), torch.round(lam * n).long())


def test_long_axis_runs_along_the_field():
    # on a 4 x 16384 strip the field varies along the long axis and barely across it
    grey = fmix_grey_images(8, (4, 16384), 3.0, gen(7)).double()
    across = grey.diff(dim=1).pow(2).mean()
    along = grey.diff(dim=2).pow(2).mean()
    spread = (grey - grey.mean(2, keepdim=True)).pow(2).mean()
    assert across < 1e-4 * spread and along < 1e-4 * spread  # smooth at the pixel scale
    assert grey[:, 0].std(1).min() > 0.1 * spread.sqrt()  # and not flat along its length


def test_shapes_that_no_way_fits_are_refused_with_the_figures():
    with pytest.raises(MixMaskError, match=r"\(2, 2, 16384\).*decay_power=1\b.*16384\^3.*decay_power >= 3"):
        fmix_grey_images(2, (2, 2, 16384), 1.0, gen())
    with pytest.raises(MixMaskError, match=r"\(256, 256, 16384\).*less elongated"):
        fmix_grey_images(2, (256, 256, 16384), 3.0, gen())
    x = torch.rand(2, 1, 2, 2, 16384)
    before = x.clone()
    with pytest.raises(MixMaskError, match="decay_power=1"):
        FMix(decay_power=1.0, num_classes=2, seed=0)(x, torch.tensor([0, 1]))
    assert torch.equal(x, before)


def test_choice_depends_on_the_shape_only():
    assert F.choose_long_axes((16, 4096), 3.0) == (1,)
    assert F.choose_long_axes((4096, 16), 3.0) == (0,)
    assert F.choose_long_axes((2, 2, 16384), 3.0) == (2,)
    assert F.choose_long_axes((64, 64), 3.0) is None and F.choose_long_axes((8, 8, 8), 1.0) is None
    # a plan costs a preparation: a near-square image stays on its cube
    assert F.choose_long_axes((224, 320), 3.0) is None


def test_tables_live_in_a_cache_bounded_in_bytes():
    assert isinstance(M._TABLES, TensorCache) and M._TABLES.max_bytes <= 1 << 30
    assert not hasattr(M._spectrum_scale, "cache_info")  # no unbounded lru_cache of device tensors
    fmix_grey_images(2, (16, 4096), 3.0, gen())
    fmix_grey_images(2, (64, 64), 3.0, gen())
    assert 0 < M._TABLES.nbytes <= M._TABLES.max_bytes


def test_tensor_cache_drops_the_least_recently_used_and_keeps_nothing_too_large():
    cache = TensorCache(100)
    built = []

    def build(n):
        def make():
            built.append(n)
            return torch.zeros(n, dtype=torch.uint8)
        return make

    a = cache.get("a", build(40))
    cache.get("b", build(40))
    assert cache.get("a", build(40)) is a and built == [40, 40]  # a hit, now the most recent
    cache.get("c", build(40))  # 120 bytes: "b" goes
    assert cache.nbytes == 80 and len(cache) == 2
    cache.get("b", build(40))
    assert built == [40, 40, 40, 40]
    big = cache.get("big", build(101))
    assert big.numel() == 101 and cache.nbytes <= 100 and "big" not in cache._entries


def test_tensor_cache_is_safe_to_share_between_threads():
    cache = TensorCache(1000)
    errors = []

    def work(k):
        try:
            for i in range(200):
                value = cache.get(i % 30, lambda i=i: torch.full((8,), i % 30, dtype=torch.int32))
                assert int(value[0]) == i % 30
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and cache.nbytes <= 1000
    assert cache.nbytes == sum(size for _, size in cache._entries.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("shape", [(16, 4096), (2, 2, 1024), (48, 20)])
def test_cuda_elongated_grey_images_make_no_host_sync_once_prepared(shape):
    g = torch.Generator(device="cuda").manual_seed(0)
    first = fmix_grey_images(4, shape, 3.0, g, device="cuda")  # fills the cache
    torch.cuda.set_sync_debug_mode("error")
    try:
        grey = fmix_grey_images(4, shape, 3.0, g, device="cuda")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert grey.device.type == "cuda" and grey.dtype == torch.float32 and grey.shape == (4, *shape)
    assert first.shape == grey.shape and bool(torch.isfinite(grey).all())
