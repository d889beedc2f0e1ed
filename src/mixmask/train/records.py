"""What a run keeps in its folder: ``config.json``, ``metrics.jsonl``, ``best.pt``, ``last.pt``; resume from them.

Every file is written whole through a temporary file in the same folder and ``os.replace``, so a
reader (or a resumed run) sees the old content or the new one, never a part.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mixmask.errors import MixMaskError
from mixmask.train.config import TrainConfig
from mixmask.train.distributed import Context
from mixmask.train.learner import Learner

__all__ = ["atomic_write", "save_json", "check_resumable", "RunRecords"]


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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
    diff = {k: (saved.get(k), current.get(k)) for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)}
    if diff:
        shown = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise MixMaskError(f"cannot resume {str(path)!r}: it was made with a different configuration ({shown})")


def check_resumable(last: Path, cfg: TrainConfig) -> None:
    """Check a resume target before any training starts.

    Raises:
        MixMaskError: ``last`` exists and ``cfg.resume`` is off, or it was made with another configuration.
    """
    if not last.exists():
        return
    if not cfg.resume:
        raise MixMaskError(f"{str(last.parent)!r} already holds a run (last.pt); pass --resume to continue it "
                           "or choose another --out")
    _check_identity(torch.load(last, map_location="cpu", weights_only=False).get("identity", {}), cfg.identity(), last)


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
            self.out.mkdir(parents=True, exist_ok=True)
            save_json(self.out / "config.json", {**self.cfg.to_dict(), "dataset": dataset,
                                                 "world_size": self.ctx.world, "device": str(self.ctx.device)})

    def _state(self, epoch: int, learner: Learner) -> dict[str, Any]:
        return {"format": 1, "identity": self.cfg.identity(), "epoch": epoch, **learner.state(),
                "history": self.history, "lrs": self.lrs, "best": self.best}

    def load(self, learner: Learner) -> None:
        """Restore the last checkpoint of ``out`` when resuming; refuse to overwrite a run otherwise.

        Raises:
            MixMaskError: a run exists and ``resume`` is off, or its configuration differs.
        """
        last = self.out / "last.pt"
        if not last.exists():
            return
        if not self.cfg.resume:
            raise MixMaskError(f"{str(self.out)!r} already holds a run (last.pt); pass --resume to continue it "
                               "or choose another --out")
        state = torch.load(last, map_location="cpu", weights_only=False)
        _check_identity(state.get("identity", {}), self.cfg.identity(), last)
        learner.load(state)
        self.history, self.lrs, self.best = state["history"], state["lrs"], state["best"]
        self.start_epoch = int(state["epoch"])

    def end_epoch(self, row: dict[str, Any], lrs: list[float], score_key: str, learner: Learner) -> None:
        """Record a finished epoch: history, best, then ``best.pt``, ``last.pt`` and ``metrics.jsonl`` (rank 0)."""
        self.history.append(row)
        self.lrs += lrs
        epoch = row["epoch"]
        if row[score_key] > self.best["score"]:
            self.best = {"epoch": epoch, "score": row[score_key], "metric": score_key}
            if self.ctx.main:
                state = {"identity": self.cfg.identity(), "epoch": epoch, "model": learner.model.state_dict(),
                         "metrics": row}
                atomic_write(self.out / "best.pt", lambda p: torch.save(state, p))
        if self.ctx.main:
            atomic_write(self.out / "last.pt", lambda p: torch.save(self._state(epoch, learner), p))
            atomic_write(self.out / "metrics.jsonl",
                         lambda p: p.write_text("".join(json.dumps(h) + "\n" for h in self.history)))

    def best_model(self) -> dict[str, Any] | None:
        """The model state dict of ``best.pt`` when the best epoch is not the last one, else None."""
        path = self.out / "best.pt"
        if self.best["epoch"] == len(self.history) or not path.exists():
            return None
        return torch.load(path, map_location="cpu", weights_only=False)["model"]
