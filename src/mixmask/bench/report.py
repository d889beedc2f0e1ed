"""Reports of a benchmark: a rich table, a markdown table, the JSON document and a bar chart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["COLUMNS", "table_cells", "print_table", "to_markdown", "write_json", "write_markdown", "write_plot"]

#: Table columns: (header, what it means).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("size", "batch shape B x C x spatial"),
    ("method", "mixing method ('-' for a floor)"),
    ("library", "who does the call (floors: plain torch)"),
    ("median ms", "median time of one call, pooled over all rounds"),
    ("IQR ms", "inter-quartile range of those calls"),
    ("min ms", "fastest call (the figure least disturbed by other jobs on a shared machine)"),
    ("img/s", "images per second: B / median"),
    ("x copy", "median / the copy floor's median at this size"),
    ("mixmask x", "peer median / mixmask median at the same size and method (> 1: mixmask is faster)"),
    ("faults/call", "minor page faults per timed call, CPU: fresh memory the kernel mapped in (median of rounds)"),
    ("peak MiB", "memory one call adds (see memory_kind)"),
    ("semantics", "what the call does, or why there is no number"),
)


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}" if value >= 10 ** -digits else f"{value:.2g}"


def _library_label(row: dict[str, Any]) -> str:
    return f"{row['library']} (collate)" if row["path"] == "collate" else row["library"]


def _note(row: dict[str, Any]) -> str:
    if row["status"] == "ok":
        text = row["semantics"]
        if row.get("host_sync") not in (None, "none"):
            text += f"; host sync: {row['host_sync']}"
        return text
    return row["status"] + (f": {row['note']}" if row["note"] else "")


def table_cells(report: dict[str, Any]) -> list[list[str]]:
    """The table as strings, one list per row, in the order of :data:`COLUMNS`."""
    return [[row["size"], row["method"], _library_label(row), _fmt(row["median_ms"], 3), _fmt(row["iqr_ms"], 3),
             _fmt(row.get("min_ms"), 3),
             _fmt(row["images_per_s"], 0), _fmt(row["x_copy_floor"]), _fmt(row["mixmask_speedup"]),
             _fmt(row.get("faults_per_call"), 0), _fmt(row["peak_mib"], 1), _note(row)] for row in report["rows"]]


def _header_lines(report: dict[str, Any]) -> list[str]:
    v, m, cfg = report["versions"], report["machine"], report["config"]
    names = ("tensorflow", "tensorflow-cpu", "keras", "keras-cv") if cfg.get("framework") == "keras" else \
        ("timm", "torchvision", "kornia", "mixup")
    peers = ", ".join(f"{name} {v[name]}" for name in names if v.get(name))
    load = report["load_average"]
    memory = next((r["memory_kind"] for r in report["rows"] if r.get("memory_kind")), "n/a")
    return [
        f"date {report['date']} (UTC); python {v['python']}, torch {v['torch']}, mixmask {v['mixmask']}"
        + (f" (git {v['mixmask_git']})" if v.get("mixmask_git") else "")
        + (f"; {peers}" if peers else "; no peers installed"),
        f"machine: {m['cpu']}, {m['cores']} cores, {'TensorFlow' if cfg.get('framework') == 'keras' else 'torch'} "
        f"threads {m['threads']}, device {cfg['device']}"
        + (f" ({m['gpu']})" if m.get("gpu") else "") + f", dtype {cfg['dtype']}",
        f"load average (1, 5, 15 min) at start {load['start']}, at end {load['end']}",
        (f"{cfg['rounds']} rounds, each round's jobs in one fresh TensorFlow process, graph mode"
         f"{' with XLA' if cfg.get('jit') else ''}; memory: {memory}" if cfg.get("framework") == "keras" else
         f"{cfg['rounds']} rounds, each job in a fresh process; memory: {memory}"),
        f"command: {report['command']}",
    ]


def print_table(report: dict[str, Any]) -> None:
    """Print the table with rich, semantics as numbered notes under it (markdown without rich)."""
    try:
        from rich import box
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table
    except ImportError:
        print(to_markdown(report))
        return
    notes: dict[str, int] = {}
    table = Table(title="mixmask bench", box=box.SIMPLE_HEAD)
    for header, _ in COLUMNS[:-1]:
        numeric = header not in ("size", "method", "library")
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
    table.add_column("note", overflow="fold")
    previous = None
    for row, cells in zip(report["rows"], table_cells(report)):
        if previous is not None and row["size"] != previous:
            table.add_section()
        previous = row["size"]
        style = None if row["status"] == "ok" else "dim"
        if row["library"] in ("mixmask", "mixmask-keras") and row["status"] == "ok":
            style = "bold"
        note = cells[-1]
        if row["status"] == "ok":
            note = f"[{notes.setdefault(note, len(notes) + 1)}]"
        table.add_row(*(escape(c) for c in cells[:-1]), escape(note), style=style)
    console = Console()
    if not console.is_terminal:  # a file or a pipe: wide enough not to fold the numbers
        console.width = max(console.width, 150)
    console.print(table)
    for text, number in notes.items():
        console.print(f"[{number}] {text}", highlight=False, markup=False)
    for line in _header_lines(report):
        console.print(line, highlight=False, markup=False)


def to_markdown(report: dict[str, Any]) -> str:
    """The report as markdown: the run's date, versions, machine, load and command, then the table.

    Rows of methods a library has no equivalent of are left out of the table and listed in one line.
    """
    lines = [f"- {line}" for line in _header_lines(report)]
    missing: dict[str, list[str]] = {}
    for row in report["rows"]:
        if row["status"] == "no equivalent":
            methods = missing.setdefault(row["library"], [])
            if row["method"] not in methods:
                methods.append(row["method"])
    if missing:
        lines.append("- no equivalent: " + "; ".join(f"{lib}: {', '.join(m)}" for lib, m in missing.items()))
    lines += ["", "| " + " | ".join(h for h, _ in COLUMNS) + " |",
              "|" + "|".join("---" if h in ("size", "method", "library", "semantics") else "---:"
                             for h, _ in COLUMNS) + "|"]
    for row, cells in zip(report["rows"], table_cells(report)):
        if row["status"] != "no equivalent":
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(report: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`to_markdown` to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_markdown(report))
    return path


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    """Write the report as indented JSON to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def write_plot(report: dict[str, Any], path: str | Path) -> Path:
    """A bar chart PNG: images/s (log scale) per method and library, one panel per size.

    The copy floor (dashed) and the allocating lerp floor (dotted) are drawn as lines.
    """
    import matplotlib
    from matplotlib.figure import Figure

    rows = report["rows"]
    sizes = list(dict.fromkeys(r["size"] for r in rows))
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m != "-"]
    labels = [lab for lab in dict.fromkeys(_library_label(r) for r in rows if r["method"] != "-")]
    colours = {lab: matplotlib.colormaps["tab10"](i % 10) for i, lab in enumerate(labels)}
    panel = 1.5 + 1.5 * max(len(methods), 1)
    fig = Figure(figsize=(max(9.0, panel * len(sizes)), 5.2))
    axes = fig.subplots(1, len(sizes), squeeze=False)
    width = 0.8 / max(len(labels), 1)
    for ax, size in zip(axes[0], sizes):
        here = {(r["method"], _library_label(r)): r for r in rows if r["size"] == size}
        for j, label in enumerate(labels):
            xs, ys = [], []
            for i, method in enumerate(methods):
                value = here.get((method, label), {}).get("images_per_s")
                if value:
                    xs.append(i - 0.4 + (j + 0.5) * width)
                    ys.append(value)
            ax.bar(xs, ys, width=width, color=colours[label], label=label)
        for floor, style in (("floor-copy", "--"), ("floor-lerp", ":"), ("floor-gather", "--")):
            value = here.get(("-", floor), {}).get("images_per_s")
            if value:
                ax.axhline(value, color="black", linestyle=style, linewidth=1, label=floor)
        ax.set_yscale("log")
        ax.set_xticks(range(len(methods)), methods, rotation=30 if len(methods) > 4 else 0,
                      ha="right" if len(methods) > 4 else "center")
        ax.set_title(size)
        ax.set_ylabel("images/s (log)")
        ax.grid(axis="y", which="both", alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            if name not in names:
                handles.append(handle)
                names.append(name)
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 4), frameon=False)
    cfg = report["config"]
    fig.suptitle(f"mixmask bench: {cfg['device']}, {cfg['dtype']}, torch threads {report['machine']['threads']}, "
                 f"{report['date'][:10]}")
    fig.tight_layout(rect=(0, 0.06 + 0.04 * math.ceil(len(names) / 4), 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path

