"""What a run keeps in its folder: ``config.json``, ``metrics.jsonl``, ``best.pt``, ``last.pt``; resume from them.

Every file is written whole through a temporary file in the same folder and ``os.replace``, so a
reader (or a resumed run) sees the old content or the new one, never a part. After each epoch
``metrics.jsonl`` and ``best.pt`` are written first and ``last.pt`` last: ``last.pt`` is the commit
of the epoch. A resumed run takes ``last.pt`` as the truth and rewrites ``metrics.jsonl`` from the
history it holds, so a kill between the writes loses nothing (the uncommitted epoch is trained
again, with the same result). Checkpoints are read with ``torch.load(weights_only=True)``: tensors
and plain containers only, nothing in them is executed.
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from mixmask.errors import MixMaskError
from mixmask.train.config import TrainConfig
from mixmask.train.distributed import Context
from mixmask.train.learner import Learner

__all__ = ["atomic_write", "save_json", "load_checkpoint", "runtime", "check_resumable", "RunRecords"]

#: Files a run writes through :func:`atomic_write` (their leftover temporary files are removed on resume).
RUN_FILES = ("config.json", "metrics.jsonl", "best.pt", "last.pt", "summary.json", "report.json", "report.txt",
             "curves.png", "lr.png", "confusion_matrix.png", "predictions.png")
_FORMAT = 2


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder (``.tmp.<pid>.<name>``: same suffix), then rename it."""
    tmp = path.with_name(f".tmp.{os.getpid()}.{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_json(path: Path, obj: Any) -> None:
    """``obj`` as indented JSON, atomically."""
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2) + "\n"))


def _check_identity(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    keys = sorted(set(saved) | set(current))
    diff = {k: (saved.get(k), current.get(k)) for k in keys if saved.get(k) != current.get(k)}
    if diff:
        shown = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise MixMaskError(f"cannot resume {str(path)!r}: it was made with a different configuration ({shown})")


def load_checkpoint(path: Path, keys: tuple[str, ...] = ("epoch", "model")) -> dict[str, Any]:
    """Read a checkpoint of a run (tensors and plain containers only: ``weights_only=True``).

    Raises:
        MixMaskError: the file is empty, truncated, not a checkpoint, or lacks one of ``keys``.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        size = path.stat().st_size if path.exists() else 0
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        named = [line for line in lines if "GLOBAL" in line]  # weights_only refusing a pickled call
        if named:
            reason = f"it holds more than tensors and plain containers, refused unrun: {named[0]}"
        else:
            reason = lines[0][:200] if lines else err.__class__.__name__
        raise MixMaskError(f"expected a mixmask checkpoint in {str(path)!r}, but it cannot be read ({size} bytes: "
                           f"{reason}); runs write it whole, so it was damaged or replaced outside a run: "
                           "delete the folder's checkpoints to start over, or choose another --out") from None
    missing = [k for k in keys if not isinstance(state, dict) or k not in state]
    if missing:
        raise MixMaskError(f"expected a mixmask checkpoint in {str(path)!r}, but it has no {missing}")
    return state


def runtime(cfg: TrainConfig) -> dict[str, Any]:
    """What, beyond the configuration, decides a run's numbers: device type, world size, CPU threads."""
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    return {"device_type": torch.device(device).type, "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "threads": torch.get_num_threads()}


def _check_runtime(saved: dict[str, Any] | None, current: dict[str, Any], path: Path) -> None:
    if not saved:
        return
    names = ["device_type", "world_size"] + (["threads"] if current["device_type"] == "cpu" else [])
    diff = [f"{k}: saved {saved.get(k)!r}, now {current[k]!r}" for k in names if saved.get(k) != current[k]]
    if diff:
        raise MixMaskError(f"cannot resume {str(path)!r} exactly: it was trained on other settings ({'; '.join(diff)}) "
                           "and the results depend on them; resume with the same --device, --threads and number of "
                           "processes, or train into another --out")


def check_resumable(last: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """Check a resume target before any training starts; return its state (None when there is none).

    Raises:
        MixMaskError: ``last`` exists and ``cfg.resume`` is off; it cannot be read; it was made with
            another configuration, device type, world size or (on CPU) thread count.
    """
    if not last.exists() and not last.is_symlink():
        return None
    if not cfg.resume:
        raise MixMaskError(f"{str(last.parent)!r} already holds a run (last.pt); pass --resume to continue it "
                           "or choose another --out")
    state = load_checkpoint(last, ("epoch", "model", "optimizer", "history", "lrs", "best"))
    _check_identity(state.get("identity", {}), cfg.identity(), last)
    _check_runtime(state.get("runtime"), runtime(cfg), last)
    return state


class RunRecords:
    """The records of one run in ``out``: per-epoch history, learning rates, the best epoch; their files.

    Args:
        cfg: the run's configuration.
        out: the run folder.
        ctx: only rank 0 writes.

    Attributes:
        history: one row per finished epoch (the lines of ``metrics.jsonl``).
        lrs: the learning rate of every step so far.
        best: ``{"epoch", "score", "metric"}`` of the best epoch so far.
        start_epoch: the first epoch still to train (after :meth:`load`).
    """

    def __init__(self, cfg: TrainConfig, out: Path, ctx: Context) -> None:
        self.cfg, self.out, self.ctx = cfg, out, ctx
        self.history: list[dict[str, Any]] = []
        self.lrs: list[float] = []
        self.best: dict[str, Any] = {"epoch": 0, "score": -math.inf}
        self.start_epoch = 0

    def write_config(self, dataset: dict[str, Any]) -> None:
        """Create the folder and write ``config.json`` (rank 0)."""
        if self.ctx.main:
            with self.writing("config.json", self.start_epoch):
                self.out.mkdir(parents=True, exist_ok=True)
                save_json(self.out / "config.json", {**self.cfg.to_dict(), "dataset": dataset,
                                                     "world_size": self.ctx.world, "device": str(self.ctx.device)})

    def _state(self, epoch: int, learner: Learner) -> dict[str, Any]:
        return {"format": _FORMAT, "identity": self.cfg.identity(), "runtime": runtime(self.cfg), "epoch": epoch,
                **learner.state(), "history": self.history, "lrs": self.lrs, "best": self.best}

    @contextmanager
    def writing(self, what: str, committed: int) -> Iterator[None]:
        """Turn a failed write (full disk, lost folder) into one error saying what the folder still holds.

        Args:
            what: the file(s) being written, for the message.
            committed: the epochs ``last.pt`` holds.
        """
        try:
            yield
        except OSError as err:
            from mixmask.resources import describe_os_error

            kept = f"epoch {committed} complete (last.pt)" if committed else "no finished epoch"
            raise MixMaskError(f"could not write {what} in {str(self.out)!r}: {describe_os_error(err)}; the folder "
                               f"still holds {kept}: make room and run the same command with --resume") from None

    def _clean(self) -> None:
        """Remove temporary files left by a run killed while writing."""
        for name in RUN_FILES:
            for tmp in self.out.glob(f".tmp.*.{name}"):
                tmp.unlink(missing_ok=True)

    def load(self, learner: Learner) -> None:
        """Restore the last checkpoint of ``out`` when resuming, and repair ``metrics.jsonl`` from it.

        Raises:
            MixMaskError: a run exists and ``resume`` is off, or it cannot be resumed exactly
                (see :func:`check_resumable`).
        """
        state = check_resumable(self.out / "last.pt", self.cfg)
        if state is None:
            return
        learner.load(state)
        self.history, self.lrs, self.best = state["history"], state["lrs"], state["best"]
        self.start_epoch = int(state["epoch"])
        if self.ctx.main:
            self._clean()
            with self.writing("metrics.jsonl", self.start_epoch):
                self._write_metrics()

    def _write_metrics(self) -> None:
        atomic_write(self.out / "metrics.jsonl",
                     lambda p: p.write_text("".join(json.dumps(h) + "\n" for h in self.history)))

    def end_epoch(self, row: dict[str, Any], lrs: list[float], score_key: str, learner: Learner) -> None:
        """Record a finished epoch: ``metrics.jsonl``, ``best.pt`` (a new best), then ``last.pt`` (rank 0).

        Raises:
            MixMaskError: a write failed (the folder keeps the previous epoch's records).
        """
        self.history.append(row)
        self.lrs += lrs
        epoch = row["epoch"]
        new_best = row[score_key] > self.best["score"]
        if new_best:
            self.best = {"epoch": epoch, "score": row[score_key], "metric": score_key}
        if not self.ctx.main:
            return
        with self.writing(f"the records of epoch {epoch}", epoch - 1):
            self._write_metrics()
            if new_best:
                state = {"format": _FORMAT, "identity": self.cfg.identity(), "epoch": epoch,
                         "model": learner.model.state_dict(), "metrics": row}
                atomic_write(self.out / "best.pt", lambda p: torch.save(state, p))
            atomic_write(self.out / "last.pt", lambda p: torch.save(self._state(epoch, learner), p))

    def best_model(self) -> dict[str, Any] | None:
        """The model state dict of ``best.pt`` when the best epoch is not the last one, else None.

        Raises:
            MixMaskError: ``best.pt`` cannot be read or holds another epoch than the recorded best.
        """
        path = self.out / "best.pt"
        if self.best["epoch"] == len(self.history) or not path.exists():
            return None
        state = load_checkpoint(path)
        if state["epoch"] != self.best["epoch"]:
            raise MixMaskError(f"expected epoch {self.best['epoch']} in {str(path)!r} (the best recorded in "
                               f"last.pt), but it holds epoch {state['epoch']}")
        return state["model"]
