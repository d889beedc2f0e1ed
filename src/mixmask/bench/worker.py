"""One timed job, run in a fresh process: build the batch, warm up, measure memory, time calls.

The parent (:mod:`mixmask.bench.runner`) forks one process per (library, method, size, round) from
a server that has only imported torch and the peers, so no allocator state carries over between
jobs. A job returns a plain dict (see :func:`run_job`).
"""

from __future__ import annotations

import time
import traceback
import warnings
from typing import Any

import torch

from mixmask.bench.cases import make_call

__all__ = ["run_job", "child_main"]

_MIB = 1024.0 * 1024.0


def _make_batch(shape: list[int], dtype: str, num_classes: int, seed: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs (B, C, *S), labels (B,))`` drawn from ``seed``: floats in [0, 1) or uint8 in [0, 255]."""
    generator = torch.Generator().manual_seed(seed)
    if dtype == "uint8":
        inputs = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    else:
        inputs = torch.rand(shape, generator=generator, dtype=getattr(torch, dtype))
    labels = torch.randint(0, num_classes, (shape[0],), generator=generator)
    return inputs.to(device), labels.to(device)


def _rss() -> int | None:
    """Resident set size of this process in bytes (psutil), None when psutil is missing."""
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int | None:
    """Peak RSS in bytes since the last reset (``VmHWM``), None where the kernel does not say."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _measure_memory(call: Any, device: torch.device) -> tuple[float | None, str]:
    """Peak memory one call adds, in MiB, and what was measured."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = call()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base
        del out
        return peak / _MIB, "cuda max_memory_allocated delta"
    before = _rss()
    if before is None:
        return None, "unavailable (psutil missing)"
    if _reset_peak_rss():
        before = _rss()
        out = call()
        peak = _peak_rss()
        del out
        if peak is not None:
            return max(peak - before, 0) / _MIB, "peak RSS delta (VmHWM)"
    out = call()
    after = _rss()
    del out
    return max(after - before, 0) / _MIB, "RSS delta after the call (output alive)"


def _check_host_sync(call: Any) -> str:
    """Run one call with CUDA's sync debug mode set to error: ``"none"`` or the error raised."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        call()
        return "none"
    except RuntimeError as err:
        return str(err).splitlines()[0][:200]
    finally:
        torch.cuda.set_sync_debug_mode(0)
        torch.cuda.synchronize()


def _time_calls(call: Any, device: torch.device, min_time: float, min_calls: int,
                max_calls: int) -> list[float]:
    """Seconds per call, repeated until ``min_calls`` and ``min_time`` are reached (at most ``max_calls``)."""
    times: list[float] = []
    out = None
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        started = time.perf_counter()
        while len(times) < max_calls:
            pairs = []
            for _ in range(min_calls):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                out = None
                start.record()
                out = call()
                end.record()
                pairs.append((start, end))
            torch.cuda.synchronize(device)
            times.extend(start.elapsed_time(end) / 1000.0 for start, end in pairs)
            if time.perf_counter() - started >= min_time:
                break
        return times
    total = 0.0
    while len(times) < max_calls and (len(times) < min_calls or total < min_time):
        out = None  # the previous output is dropped before the next call, as in a training loop
        start = time.perf_counter()
        out = call()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        total += elapsed
    del out
    return times


def _minor_faults() -> int | None:
    """Minor page faults of this process so far, all threads (``getrusage``); None where the OS has no count."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_calls_and_faults(call: Any, device: torch.device, min_time: float, min_calls: int,
                          max_calls: int) -> tuple[list[float], float | None]:
    """:func:`_time_calls`, and the minor page faults per timed call on the CPU (memory the kernel had to map
    in for the calls: fresh allocations it had taken back); None on accelerators or without a count."""
    before = _minor_faults() if device.type == "cpu" else None
    times = _time_calls(call, device, min_time, min_calls, max_calls)
    after = _minor_faults() if before is not None else None
    return times, (after - before) / len(times) if after is not None and times else None


def run_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one (library, method, path, size) in this process.

    Args:
        spec: ``library``, ``method``, ``path``, ``shape`` (``[B, C, *S]``), ``dtype``, ``device``,
            ``num_classes``, ``seed``, ``threads`` (None: torch's default), ``warmup``, ``min_time``
            (seconds of timed calls), ``min_calls``, ``max_calls``.

    Returns:
        ``status`` (``"ok"`` or ``"error"``), ``error`` (the message, when not ok), ``times_s`` (seconds
        per call), ``faults_per_call`` (CPU), ``peak_mib`` and ``memory_kind``, ``host_sync`` (CUDA
        mixmask rows: ``"none"`` or the error the sync check raised; else None), ``threads``, ``warnings`` (messages raised by
        the library during the job).
    """
    result: dict[str, Any] = {"status": "ok", "error": None, "times_s": [], "faults_per_call": None,
                              "peak_mib": None, "memory_kind": None, "host_sync": None, "warnings": []}
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    result["threads"] = torch.get_num_threads()
    device = torch.device(spec["device"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            inputs, labels = _make_batch(spec["shape"], spec["dtype"], spec["num_classes"], spec["seed"], device)
            call = make_call(spec["library"], spec["method"], spec["path"], inputs, labels, spec["num_classes"],
                             spec["seed"])
            for _ in range(spec["warmup"]):
                call()
            if device.type == "cuda" and spec["library"] == "mixmask":
                result["host_sync"] = _check_host_sync(call)
            result["peak_mib"], result["memory_kind"] = _measure_memory(call, device)
            result["times_s"], result["faults_per_call"] = time_calls_and_faults(
                call, device, spec["min_time"], spec["min_calls"], spec["max_calls"])
        except Exception as err:  # a peer failing on this input is a result to report, not a crash
            last = traceback.extract_tb(err.__traceback__)[-1]
            result.update(status="error", error=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                          f" ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})"[:300])
    result["warnings"] = sorted({f"{w.category.__name__}: {w.message}"[:200] for w in caught})
    return result


def child_main(spec: dict[str, Any], connection: Any) -> None:
    """Entry point of a forked job: run it and send the result dict through ``connection``."""
    try:
        connection.send(run_job(spec))
    finally:
        connection.close()
