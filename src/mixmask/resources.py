"""What a command needs from the machine, checked before long work: a writable place for its outputs, enough memory.

Each check raises :class:`~mixmask.errors.MixMaskError` naming the option, the path or the figure,
and leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mixmask.errors import MixMaskError

__all__ = ["check_writable", "available_memory", "check_memory", "format_bytes", "describe_os_error"]


def format_bytes(count: float) -> str:
    """``1536`` → ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def describe_os_error(err: OSError) -> str:
    """``"'path': No space left on device"`` (the file and the system's reason, without the errno)."""
    reason = err.strerror or err.__class__.__name__
    name = err.filename if err.filename is not None else None
    return f"{str(name)!r}: {reason}" if name is not None else f"{reason} ({err})"


def check_writable(path: str | Path, option: str, *, folder: bool) -> Path:
    """Check that an output file or folder can be written, before any work is done.

    The path (expanded ``~``) must be a folder (``folder=True``) or not a folder; its nearest
    existing ancestor must be a folder in which a file can be created (a temporary file is made and
    removed there: permissions, read-only file systems, ``/proc`` and full disks all show).

    Args:
        path: the output path.
        option: the option that named it, for the message (``"--out"``, ``"--json"``).
        folder: whether the output is a folder (else a file).

    Returns:
        The expanded path.

    Raises:
        MixMaskError: naming ``option``, the path and the reason.
    """
    path = Path(path).expanduser()
    if path.exists() and path.is_dir() != folder:
        kind = "a folder" if folder else "a file"
        raise MixMaskError(f"{option} {str(path)!r}: expected {kind} to write, but it is "
                           f"{'a file' if folder else 'a folder'}")
    probe = path if folder and path.is_dir() else path.parent
    while not probe.exists():
        if probe.is_symlink():
            raise MixMaskError(f"{option} {str(path)!r}: {str(probe)!r} is a broken symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        raise MixMaskError(f"{option} {str(path)!r}: cannot create it, {str(probe)!r} is a file, not a folder")
    try:
        handle, name = tempfile.mkstemp(prefix=".mixmask-write-check-", dir=probe)
    except OSError as err:
        raise MixMaskError(f"{option} {str(path)!r}: cannot write in {str(probe)!r} "
                           f"({err.strerror or err.__class__.__name__})") from None
    os.close(handle)
    os.unlink(name)
    return path


def _cgroup_room() -> int | None:
    """Bytes the cgroup (v2) of this process may still take, when it has a limit."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
    except OSError:
        return None
    if limit == "max":
        return None
    return max(int(limit) - int(used), 0)


def available_memory(device: str = "cpu") -> int | None:
    """Bytes that can be allocated now on ``device`` (None when unknown).

    CPU: ``MemAvailable`` of ``/proc/meminfo`` (or the cgroup's room when smaller); CUDA: the free
    memory of the current device.
    """
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return None
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    room = None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    room = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if room is None:
        try:
            room = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    group = _cgroup_room()
    return room if group is None else min(room, group)


def check_memory(need: float, what: str, hint: str, device: str = "cpu") -> None:
    """Refuse work whose estimated memory exceeds what ``device`` has available now.

    Args:
        need: the estimate, in bytes.
        what: what needs it (``"--size 100000"``), for the message.
        hint: what to change (``"choose a smaller --size"``).
        device: where it would be allocated.

    Raises:
        MixMaskError: with the estimate and the memory available.
    """
    room = available_memory(device)
    if room is not None and need > room:
        raise MixMaskError(f"{what} needs about {format_bytes(need)} of memory, but {format_bytes(room)} is "
                           f"available on {device}: {hint}")
