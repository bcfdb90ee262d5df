"""Training checkpoints for ``bench run --checkpoint-every N``: resume an interrupted run where it stopped.

One file per run, ``<results>/checkpoints/<run_id>.pt``, written atomically (temporary file in the same
folder, fsync, ``os.replace``) every N optimiser steps, read back when the run starts again, deleted when the
run finishes ``ok``. It holds everything the rest of the loop depends on, so a resumed run ends with the same
metrics as an uninterrupted one on CPU: the trainable state (method + head), optimiser, scheduler, the data
order (generator state, permutation, cursor), the global torch RNG (dropout), the step, the best-dev state
and the dev history so far, and the running counters of the record.

The checkpoint is not part of the spec (``run_id`` does not change with ``--checkpoint-every``); it stores
the ``run_id`` it belongs to and is ignored if that does not match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.atomic import atomic_open
from bench.errors import InputError


def checkpoint_path(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / "checkpoints" / f"{run_id}.pt"


class Checkpointer:
    """Saves/loads one run's training state every ``every`` steps at ``path``."""

    def __init__(self, path: Path, every: int, run_id: str) -> None:
        if every < 1:
            raise InputError(f"--checkpoint-every {every} must be >= 1")
        self.path, self.every, self.run_id = Path(path), every, run_id

    def due(self, step: int, max_steps: int) -> bool:
        return step % self.every == 0 and step < max_steps

    def save(self, state: dict[str, Any]) -> None:
        with atomic_open(self.path, "wb") as handle:
            torch.save({"run_id": self.run_id, **state}, handle)

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None if there is none (or it is unreadable or belongs to another run)."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception:  # a foreign or damaged file: start from scratch rather than fail the run
            return None
        return state if isinstance(state, dict) and state.get("run_id") == self.run_id else None

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
