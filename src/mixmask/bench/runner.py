"""Plan, run and summarise a benchmark: every job in a fresh process, rounds in interleaved order.

A job is one (size, method, library, path). Each round runs every job once, in an order drawn from
the seed, each in a new process forked from a server that has only imported torch and the
installed peers (allocator state left by one job would change the next one's figures). The calls
of all rounds are pooled into a median and an inter-quartile range per row.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import torch

from mixmask.bench.cases import (BENCH_METHODS, FLOORS, LIBRARIES, PATHS, PEER_MODULES, has_equivalent, installed,
                                 semantics)
from mixmask.bench.keras_jobs import (KERAS_LIBRARIES, KERAS_METHODS, keras_has_equivalent, keras_installed,
                                      keras_semantics)
from mixmask.errors import MixMaskError

__all__ = ["DEFAULT_SIZES", "SCHEMA", "BenchConfig", "check_memory", "job_memory", "parse_sizes", "plan_rows",
           "run_bench", "summarise"]

SCHEMA = "mixmask-bench/1"
DEFAULT_SIZES: tuple[tuple[int, ...], ...] = ((128, 3, 32, 32), (64, 3, 224, 224), (16, 3, 512, 512))
DTYPES: tuple[str, ...] = ("float32", "uint8")
FRAMEWORKS: tuple[str, ...] = ("torch", "keras")
#: Per framework: the row that is "ours" (``mixmask_speedup``) and the copy floor (``x_copy_floor``).
_OURS = {"torch": "mixmask", "keras": "mixmask-keras"}
_COPY_FLOOR = {"torch": "floor-copy", "keras": "floor-gather"}


def parse_sizes(text: str) -> tuple[tuple[int, ...], ...]:
    """``"128x3x32x32,64x3x224x224"`` → ``((128, 3, 32, 32), (64, 3, 224, 224))``.

    Each size is ``BxCxS1[xS2[xS3]]``: a batch, channels and 1 to 3 spatial sizes, all positive.

    Raises:
        MixMaskError: a size that is not 3 to 5 positive integers joined by ``x``.
    """
    sizes = []
    for part in (p.strip() for p in str(text).split(",")):
        try:
            dims = tuple(int(d) for d in part.lower().split("x"))
        except ValueError:
            dims = ()
        if not 3 <= len(dims) <= 5 or min(dims) < 1:
            raise MixMaskError(f"expected sizes like 64x3x224x224 (B x C x 1 to 3 spatial sizes, all >= 1), "
                               f"but got {part!r}")
        sizes.append(dims)
    return tuple(sizes)


def _size_name(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def _check_subset(name: str, values: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    values = tuple(dict.fromkeys(values))
    unknown = [v for v in values if v not in allowed]
    if not values or unknown:
        raise MixMaskError(f"expected {name} from {', '.join(allowed)}, but got {', '.join(values) or 'nothing'}")
    return values


@dataclass(frozen=True)
class BenchConfig:
    """What to run.

    Args:
        methods: mixing methods, from :data:`~mixmask.bench.cases.BENCH_METHODS`.
        sizes: ``(B, C, *S)`` batch shapes.
        device: ``"cpu"`` or ``"cuda"``.
        dtype: ``"float32"`` or ``"uint8"`` inputs.
        paths: ``"transform"`` (mixmask and peers, new outputs) and/or ``"collate"`` (mixmask in
            place into a batch it owns, with a reused workspace).
        libraries: rows to run: ``mixmask``, the peers and the floors (missing peers are reported).
        rounds: runs of every job, each in a fresh process, in a new interleaved order.
        warmup: untimed calls before measuring.
        min_time: seconds of timed calls per job and round (at least ``min_calls`` calls).
        min_calls, max_calls: bounds on the timed calls per job and round.
        threads: torch intra-op threads in each job (None: torch's default).
        num_classes: K of the soft targets made from the sparse labels.
        seed: seed of the data, of mixmask's draws and of the job order.
        timeout: seconds before a job is stopped and reported as an error.
        framework: ``"torch"`` (mixmask and the torch peers) or ``"keras"`` (mixmask.keras against
            keras.layers and KerasCV, graph mode on TensorFlow, CPU, 2-D sizes; libraries from
            ``mixmask-keras, keras, keras-cv, floor-gather``, all of them when left at the torch default;
            methods: the four of mixmask.keras when left at the default).
        jit: compile the Keras rows' graphs with XLA (``tf.function(jit_compile=True)``).
    """

    methods: tuple[str, ...] = BENCH_METHODS
    sizes: tuple[tuple[int, ...], ...] = DEFAULT_SIZES
    device: str = "cpu"
    dtype: str = "float32"
    paths: tuple[str, ...] = ("transform",)
    libraries: tuple[str, ...] = LIBRARIES
    rounds: int = 3
    warmup: int = 3
    min_time: float = 0.5
    min_calls: int = 5
    max_calls: int = 500
    threads: int | None = None
    num_classes: int = 1000
    seed: int = 0
    timeout: float = 600.0
    framework: str = "torch"
    jit: bool = False

    def __post_init__(self) -> None:
        if self.framework not in FRAMEWORKS:
            raise MixMaskError(f"expected framework in {FRAMEWORKS}, but got {self.framework!r}")
        object.__setattr__(self, "methods", _check_subset("methods", self.methods, BENCH_METHODS))
        object.__setattr__(self, "paths", _check_subset("paths", self.paths, PATHS))
        if self.framework == "keras":
            if self.methods == BENCH_METHODS:
                object.__setattr__(self, "methods", KERAS_METHODS)
            if tuple(self.libraries) == LIBRARIES:
                object.__setattr__(self, "libraries", KERAS_LIBRARIES)
            object.__setattr__(self, "libraries", _check_subset("libraries", self.libraries, KERAS_LIBRARIES))
            if self.device != "cpu" or self.paths != ("transform",):
                raise MixMaskError(f"the keras section runs on the cpu device and the transform path, but got device "
                                   f"{self.device!r} and paths {self.paths}")
            if any(len(size) != 4 for size in self.sizes):
                raise MixMaskError(f"the keras section times 2-D image batches (BxCxHxW), but got sizes "
                                   f"{[_size_name(s) for s in self.sizes]}")
        else:
            object.__setattr__(self, "libraries", _check_subset("libraries", self.libraries, LIBRARIES))
        if not self.sizes:
            raise MixMaskError("expected at least one size, but got none")
        for size in self.sizes:
            parse_sizes(_size_name(size))
        if self.device not in ("cpu", "cuda"):
            raise MixMaskError(f"expected device cpu or cuda, but got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise MixMaskError("device cuda was asked for, but torch.cuda.is_available() is False")
        if self.dtype not in DTYPES:
            raise MixMaskError(f"expected dtype in {DTYPES}, but got {self.dtype!r}")
        for name in ("rounds", "min_calls", "max_calls", "num_classes"):
            if getattr(self, name) < 1:
                raise MixMaskError(f"expected {name} >= 1, but got {getattr(self, name)}")
        if self.warmup < 0 or not self.min_time >= 0 or not self.timeout > 0:
            raise MixMaskError(f"expected warmup >= 0, min_time >= 0 and timeout > 0, but got {self.warmup}, "
                               f"{self.min_time} and {self.timeout}")
        if self.max_calls < self.min_calls:
            raise MixMaskError(f"expected max_calls >= min_calls, but got {self.max_calls} < {self.min_calls}")
        if self.threads is not None and self.threads < 1:
            raise MixMaskError(f"expected threads >= 1 or None, but got {self.threads}")


@dataclass
class Row:
    """One line of the report: a library doing one method at one size (or a floor)."""

    size: str
    batch: int
    method: str
    library: str
    path: str
    status: str
    semantics: str
    note: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def runs(self) -> bool:
        """Whether the row is timed (it is neither missing nor without an equivalent)."""
        return self.status == "ok"

    def spec(self, config: BenchConfig) -> dict[str, Any]:
        """The job description handed to :func:`mixmask.bench.worker.run_job` (or the keras jobs)."""
        return {"library": self.library, "method": self.method, "path": self.path,
                "shape": [int(d) for d in self.size.split("x")], "dtype": config.dtype, "device": config.device,
                "num_classes": config.num_classes, "seed": config.seed, "threads": config.threads,
                "warmup": config.warmup, "min_time": config.min_time, "min_calls": config.min_calls,
                "max_calls": config.max_calls, "jit": config.jit}


def _plan_keras_rows(config: BenchConfig) -> list[Row]:
    rows = []
    for size in config.sizes:
        name, batch = _size_name(size), size[0]
        if "floor-gather" in config.libraries:
            rows.append(Row(name, batch, "-", "floor-gather", "transform", "ok", keras_semantics("floor-gather", "-")))
        for method in config.methods:
            for library in (lib for lib in config.libraries if lib != "floor-gather"):
                status = "no equivalent" if not keras_has_equivalent(library, method) else \
                    "not installed" if not keras_installed(library) else "ok"
                rows.append(Row(name, batch, method, library, "transform", status, keras_semantics(library, method)))
    return rows


def plan_rows(config: BenchConfig) -> list[Row]:
    """Every row of the report, in table order, with the status known before running anything."""
    if config.framework == "keras":
        return _plan_keras_rows(config)
    rows = []
    for size in config.sizes:
        name, batch = _size_name(size), size[0]
        for library in (lib for lib in FLOORS if lib in config.libraries):
            rows.append(Row(name, batch, "-", library, "transform", "ok", semantics(library, "-")))
        for method in config.methods:
            for library in config.libraries:
                for path in config.paths:
                    if library in FLOORS or (path == "collate" and library != "mixmask"):
                        continue
                    if not has_equivalent(library, method):
                        status = "no equivalent"
                    elif not installed(library):
                        status = "not installed"
                    else:
                        status = "ok"
                    rows.append(Row(name, batch, method, library, path, status, semantics(library, method, path)))
    return rows


def _quantile(values: Sequence[float], q: float) -> float:
    return float(torch.quantile(torch.tensor(values, dtype=torch.float64), q))


def summarise(rows: Sequence[Row], framework: str = "torch") -> list[dict[str, Any]]:
    """Figures of every row: median, IQR and fastest of the pooled calls, images/s and the ratios.

    The fastest call is the figure least disturbed by other jobs on a shared machine.

    ``x_copy_floor`` is the row's median over the copy floor's at the same size;
    ``mixmask_speedup`` (peer rows) is the peer's median over mixmask's (transform path) for the
    same size and method, so > 1 means mixmask is faster. For ``framework="keras"`` the copy floor
    is ``floor-gather`` and mixmask is ``mixmask-keras``.
    """
    ours_name, floor_name = _OURS[framework], _COPY_FLOOR[framework]
    floors = FLOORS + ("floor-gather",)
    out = []
    for row in rows:
        times = [t for r in row.results if r["status"] == "ok" for t in r["times_s"]]
        errors = sorted({r["error"] for r in row.results if r["status"] != "ok"})
        status, note = row.status, row.note
        if row.status == "ok" and errors:
            status, note = "error", "; ".join(errors)
        peaks = [r["peak_mib"] for r in row.results if r["status"] == "ok" and r["peak_mib"] is not None]
        faults = [r["faults_per_call"] for r in row.results
                  if r["status"] == "ok" and r.get("faults_per_call") is not None]
        item: dict[str, Any] = {
            "size": row.size, "batch": row.batch, "method": row.method, "library": row.library, "path": row.path,
            "status": status, "note": note, "semantics": row.semantics, "calls": len(times),
            "median_ms": None, "min_ms": None, "q1_ms": None, "q3_ms": None, "iqr_ms": None, "round_medians_ms": [],
            "images_per_s": None, "x_copy_floor": None, "mixmask_speedup": None,
            "faults_per_call": _quantile(faults, 0.5) if faults else None,
            "peak_mib": _quantile(peaks, 0.5) if peaks else None,
            "memory_kind": next((r["memory_kind"] for r in row.results if r.get("memory_kind")), None),
            "host_sync": next((r["host_sync"] for r in row.results if r.get("host_sync")), None),
            "threads": next((r["threads"] for r in row.results if "threads" in r), None),
            "warnings": sorted({w for r in row.results for w in r.get("warnings", [])}),
        }
        if times and status == "ok":
            median = _quantile(times, 0.5)
            item.update(median_ms=1e3 * median, min_ms=1e3 * min(times), q1_ms=1e3 * _quantile(times, 0.25),
                        q3_ms=1e3 * _quantile(times, 0.75), images_per_s=row.batch / median,
                        round_medians_ms=[1e3 * _quantile(r["times_s"], 0.5) for r in row.results
                                          if r["status"] == "ok" and r["times_s"]])
            item["iqr_ms"] = item["q3_ms"] - item["q1_ms"]
        out.append(item)
    by_key = {(i["size"], i["method"], i["library"], i["path"]): i for i in out}
    for item in out:
        if item["median_ms"] is None:
            continue
        floor = by_key.get((item["size"], "-", floor_name, "transform"))
        if floor and floor["median_ms"]:
            item["x_copy_floor"] = item["median_ms"] / floor["median_ms"]
        ours = by_key.get((item["size"], item["method"], ours_name, "transform"))
        if item["library"] not in (ours_name,) + floors and ours and ours["median_ms"]:
            item["mixmask_speedup"] = item["median_ms"] / ours["median_ms"]
    return out


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(config: BenchConfig) -> dict[str, Any]:
    """CPU model, cores, threads, platform and GPU (when the device is cuda)."""
    default = "default" if config.framework == "keras" else torch.get_num_threads()
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "threads": config.threads or default,
            "platform": platform.platform(),
            "gpu": torch.cuda.get_device_name() if config.device == "cuda" else None}


def _git_commit() -> str | None:
    """The commit of the mixmask source tree (``+dirty`` with local changes), None outside a checkout."""
    import subprocess

    source = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", source, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", source, "status", "--porcelain", "--", ".."], capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "") if commit else None


def versions() -> dict[str, str | None]:
    """Versions of python, torch, mixmask (and its git commit) and each peer (None when not installed)."""
    found = {"python": platform.python_version()}
    for dist in ("torch", "numpy", "mixmask", "timm", "torchvision", "kornia", "mixup", "psutil", "tensorflow-cpu",
                 "tensorflow", "keras", "jax", "keras-cv"):
        found[dist] = _version(dist)
    found["mixmask_git"] = _git_commit()
    return found


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _run_in_fresh_process(context: Any, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    from mixmask.bench import worker

    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=worker.child_main, args=(spec, sender), daemon=True)
    process.start()
    sender.close()
    try:
        if receiver.poll(timeout):
            return receiver.recv()
        error = f"no result within {timeout:g} s (stopped)"
    except EOFError:
        error = "the job's process ended without a result"
    finally:
        receiver.close()
        process.join(1.0 if process.exitcode is None else None)
        if process.exitcode is None:
            process.kill()
            process.join()
    return {"status": "error", "error": f"{error}; exit code {process.exitcode}", "times_s": []}


def _context(rows: Sequence[Row]) -> Any:
    """A fork-server context that preloads torch, the worker and the peers the rows use."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    peers = {PEER_MODULES[r.library][1] for r in rows if r.runs and r.library in PEER_MODULES}
    context.set_forkserver_preload(["torch", "mixmask.bench.worker", *sorted(peers)])
    return context


#: Batch-sized float32 buffers one job may hold at once: the input, its clone, the last output, and up
#: to 4 more during a call (kornia's MixUp adds 146.9 MiB, 4 batches, at 64x3x224x224: docs/bench.md).
JOB_BATCH_COPIES = 8


def job_memory(shape: Sequence[int], num_classes: int) -> int:
    """Estimated peak bytes of one job on a ``(B, C, *S)`` batch (float32 buffers and ``(B, K)`` targets)."""
    batch = math.prod(int(d) for d in shape)
    return JOB_BATCH_COPIES * 4 * batch + 4 * 4 * int(shape[0]) * num_classes


def check_memory(config: BenchConfig) -> None:
    """Refuse sizes whose jobs cannot fit in the memory available now (jobs run one at a time).

    Raises:
        MixMaskError: naming the size, its estimate and the memory available.
    """
    from mixmask.resources import check_memory as check

    for size in config.sizes:
        check(job_memory(size, config.num_classes), f"--sizes {_size_name(size)}", "choose smaller --sizes",
              config.device)


def run_bench(config: BenchConfig, *, argv: Sequence[str] | None = None,
              progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Run every job of ``config`` and return the report (the ``--json`` document).

    Args:
        config: what to run.
        argv: the command's arguments, recorded as the exact command.
        progress: called as ``progress(done, total, label)`` before each job and once at the end.

    Returns:
        A dict: ``schema``, ``command``, ``argv``, ``date``, ``finished``, ``config``, ``versions``,
        ``machine``, ``load_average`` (``start``/``end``), ``rows`` (see :func:`summarise`).
    """
    check_memory(config)
    rows = plan_rows(config)
    timed = [row for row in rows if row.runs]
    order_gen = torch.Generator().manual_seed(config.seed)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "command": " ".join(["mixmask", "bench", *map(shlex.quote, argv or [])]),
        "argv": list(argv or []), "date": _now(), "finished": None, "config": asdict(config),
        "versions": versions(), "machine": machine_info(config),
        "load_average": {"start": _load(), "end": None},
        "executable": sys.executable,
    }
    total = len(timed) * config.rounds
    if config.framework == "keras":
        _run_keras_rounds(config, timed, order_gen, progress)
        return _finish(report, rows, config, progress, total)
    context = _context(rows) if timed else None
    done = 0
    for round_index in range(config.rounds):
        for position in torch.randperm(len(timed), generator=order_gen).tolist():
            row = timed[position]
            if progress is not None:
                progress(done, total, f"round {round_index + 1}/{config.rounds} {row.size} {row.method} "
                                      f"{row.library}{' (collate)' if row.path == 'collate' else ''}")
            row.results.append(_run_in_fresh_process(context, row.spec(config), config.timeout))
            done += 1
    return _finish(report, rows, config, progress, total)


def _finish(report: dict[str, Any], rows: list[Row], config: BenchConfig,
            progress: Callable[[int, int, str], None] | None, total: int) -> dict[str, Any]:
    if progress is not None:
        progress(total, total, "done")
    report["rows"] = summarise(rows, config.framework)
    report["load_average"]["end"] = _load()
    report["finished"] = _now()
    return report


def _run_keras_rounds(config: BenchConfig, timed: list[Row], order_gen: torch.Generator,
                      progress: Callable[[int, int, str], None] | None) -> None:
    """Each round in one fresh ``python -m mixmask.bench.keras_jobs`` process, its jobs in a new order."""
    import json
    import subprocess

    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    for round_index in range(config.rounds):
        order = [timed[i] for i in torch.randperm(len(timed), generator=order_gen).tolist()]
        if not order:
            return
        if progress is not None:
            progress(round_index * len(timed), len(timed) * config.rounds,
                     f"round {round_index + 1}/{config.rounds}: {len(order)} keras jobs in one process")
        try:
            done = subprocess.run([sys.executable, "-m", "mixmask.bench.keras_jobs"],
                                  input=json.dumps([row.spec(config) for row in order]), env=env,
                                  capture_output=True, text=True, timeout=config.timeout * len(order))
            results = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
            error = None if results is not None else \
                f"the round's process failed (exit {done.returncode}): {done.stderr.strip()[-200:]}"
        except (subprocess.TimeoutExpired, ValueError, IndexError) as err:
            results, error = None, f"the round's process gave no result: {type(err).__name__}"
        for position, row in enumerate(order):
            row.results.append(results[position] if results is not None else
                               {"status": "error", "error": error, "times_s": []})
