"""``mixmask bench``: mixmask's throughput next to the peers' (timm, torchvision, kornia) and two floors.

Each (library, method, size) runs in its own fresh process for several interleaved rounds; the
report gives median and IQR per call, images/s, ratios to a copy floor and to mixmask, and peak
memory, with each peer's semantics spelled out.

Example:
    >>> from mixmask.bench import BenchConfig, run_bench
    >>> report = run_bench(BenchConfig(methods=("cutmix",), sizes=((8, 3, 32, 32),), rounds=1))
"""

from mixmask.bench.runner import BenchConfig, run_bench

__all__ = ["BenchConfig", "run_bench"]
