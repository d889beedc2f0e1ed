"""Check a ``mixmask bench --json`` report against the speed targets of the core issue.

Usage:
    mixmask bench --path transform,collate --threads 2 --json out/bench/cpu.json
    python benchmarks/bench_targets.py out/bench/cpu.json

Targets (CPU, float32, B=64 3x224x224 unless said): FMix <= 40 ms; CutMix <= 15 ms; CutMix and
MixUp <= timm's batch mode (at every size); the collate path <= 3x the copy floor. On CUDA,
B=256 3x224x224: FMix < 2 ms and no host synchronisation in mixmask's call. Prints one line per
target with the measured figure, the limit, their ratio and whether it is met; exits 1 when a
target that could be measured is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _row(report: dict[str, Any], size: str, method: str, library: str, path: str = "transform"
         ) -> dict[str, Any] | None:
    for row in report["rows"]:
        if (row["size"], row["method"], row["library"], row["path"]) == (size, method, library, path):
            return row if row["median_ms"] is not None else None
    return None


def targets(report: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """``(target, measured ms, limit ms)`` for each target the report's config can speak to."""
    cfg = report["config"]
    sizes = [row["size"] for row in report["rows"]]
    checks: list[tuple[str, float | None, float | None]] = []

    def median(size: str, method: str, library: str, path: str = "transform") -> float | None:
        row = _row(report, size, method, library, path)
        return None if row is None else row["median_ms"]

    if cfg["device"] == "cuda":
        big = "256x3x224x224"
        if big in sizes:
            checks.append((f"{big} fmix < 2 ms", median(big, "fmix", "mixmask"), 2.0))
        for row in report["rows"]:
            if row["library"] == "mixmask" and row["host_sync"] not in (None, "none"):
                checks.append((f"{row['size']} {row['method']} no host sync ({row['host_sync']})", 1.0, 0.0))
        return checks
    main = "64x3x224x224"
    if main in sizes and cfg["dtype"] == "float32":
        checks.append((f"{main} fmix <= 40 ms", median(main, "fmix", "mixmask"), 40.0))
        checks.append((f"{main} cutmix <= 15 ms", median(main, "cutmix", "mixmask"), 15.0))
        copy = median(main, "-", "floor-copy")
        for method in ("cutmix", "mixup"):
            collate = median(main, method, "mixmask", "collate")
            checks.append((f"{main} {method} collate <= 3x copy floor", collate, None if copy is None else 3 * copy))
    for size in dict.fromkeys(sizes):
        for method in ("mixup", "cutmix"):
            timm = median(size, method, "timm-batch")
            if timm is not None:
                checks.append((f"{size} {method} <= timm batch mode", median(size, method, "mixmask"), timm))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="a mixmask bench --json file")
    args = parser.parse_args(argv)
    with open(args.report) as handle:
        report = json.load(handle)
    print(f"{report['command']}\n{report['date']}, load {report['load_average']}\n")
    missed = 0
    for name, measured, limit in targets(report):
        if measured is None or limit is None:
            print(f"{name:55s} not measured")
            continue
        met = measured <= limit
        missed += not met
        ratio = measured / limit if limit else float("inf")
        print(f"{name:55s} {measured:9.2f} ms vs {limit:8.2f} ms  x{ratio:5.2f}  {'met' if met else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
