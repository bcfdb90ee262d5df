"""Training checkpoints: resume an interrupted run where it stopped.

One file per run, ``<results>/checkpoints/<run_id>.pt``, written atomically (temporary file in the same
folder, fsync, ``os.replace``) every N optimiser steps, read back when the run starts again, deleted when the
run finishes ``ok`` (or ``pruned``: a search trial that is never resumed). It holds everything the rest of the
loop depends on, so a resumed run ends with the same metrics as an uninterrupted one on CPU: the trainable
state (method + head), optimiser, scheduler, the data order (generator state, permutation, cursor), the global
torch RNG (dropout), the step, the best-dev state and the dev history so far, the running counters of the
record, and the method's non-parameter state (``Method.checkpoint_state``: its training counters, such as the
mixtures' router load, which ``state_dict`` and so artifacts leave out). N is ``--checkpoint-every`` or the
preset's default (``bench.presets.checkpoint_interval``).

A shared results folder is data, not a program: the file is read with ``torch.load(weights_only=True)``, which
unpickles tensors and plain containers only and never runs code, so the state holds nothing else (tensors,
dicts, lists, tuples, numbers, strings, None). A file that is not a ptbench checkpoint of this format, is
unreadable, or belongs to another run is ignored with one warning line on stderr, and the run starts from step
0 rather than fail. So is one whose method state names other counters than the run's method keeps: a file
written before checkpoints held ``method_state`` has none, which resumes a method without counters and is
refused for one with them (its record would count only the rows routed after the resume).

An interrupted run (``bench.grid.signals.Interrupted``: Slurm's time-limit warning, a preemption) notes in
``<run_id>.interruptions.json`` beside the checkpoint the step it reached, the signal, ``SLURM_RESTART_COUNT`` and
the training seconds since the last save, which the resumed run trains again (``lost_train_time_s``); the finished
run's record carries the list (``interruptions``), and it is deleted with the checkpoint. It is JSON, so reading
it runs no code either.

The checkpoint is not part of the spec (``run_id`` does not change with the interval); it stores the
``run_id`` it belongs to.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.atomic import atomic_open
from bench.errors import InputError
from bench.protocol import WARNING_PREFIX

FORMAT = "ptbench-checkpoint"  # the file's header: what ``load`` accepts
VERSION = 1
# What ``LoopState.restore`` reads: a file without them cannot resume a run.
REQUIRED = ("trainable", "optimizer", "scheduler", "order", "torch_rng", "permutation", "result")


def checkpoint_path(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / "checkpoints" / f"{run_id}.pt"


class Checkpointer:
    """Saves/loads one run's training state every ``every`` steps at ``path``."""

    def __init__(self, path: Path, every: int, run_id: str) -> None:
        if every < 1:
            raise InputError(f"--checkpoint-every {every} must be >= 1")
        self.path, self.every, self.run_id = Path(path), every, run_id
        self.saved_train_s = 0.0  # training seconds (loop minus evaluation) in the last saved or loaded state
        self.saved_step = 0  # that state's step (0: none, the run starts again)

    @property
    def notes_path(self) -> Path:
        return self.path.with_name(f"{self.run_id}.interruptions.json")

    def interruptions(self) -> list[dict[str, Any]]:
        """The interruptions noted so far (oldest first); [] when there are none or the file is unreadable."""
        try:
            notes = json.loads(self.notes_path.read_text())
        except (OSError, ValueError):
            return []
        return notes if isinstance(notes, list) and all(isinstance(n, dict) for n in notes) else []

    def note_interruption(self, step: int, train_s: float, signal_name: str) -> dict[str, Any]:
        """Add one interruption: the run reached ``step`` with ``train_s`` training seconds, of which those after
        the last save are lost (trained again after the resume)."""
        restarts = os.environ.get("SLURM_RESTART_COUNT")
        note = {
            "step": step,
            "resumes_from_step": self.saved_step,
            "signal": signal_name,
            "slurm_restart_count": int(restarts) if restarts and restarts.isdigit() else None,
            "lost_train_time_s": max(0.0, train_s - self.saved_train_s),
        }
        with atomic_open(self.notes_path, "w") as handle:
            json.dump([*self.interruptions(), note], handle)
        return note

    def due(self, step: int, max_steps: int) -> bool:
        return step % self.every == 0 and step < max_steps

    def save(self, state: dict[str, Any]) -> None:
        with atomic_open(self.path, "wb") as handle:
            header = {"format": FORMAT, "version": VERSION, "run_id": self.run_id}
            torch.save({**header, **storable(state)}, handle)
        self.saved_train_s = state.get("loop_time_s", 0.0) - state.get("eval_time_s", 0.0)
        self.saved_step = state["result"].get("steps", 0)

    def load(self, method_state: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The saved state, or None if there is none or it is refused (warned about on stderr).

        ``method_state``: the run's method's ``checkpoint_state()`` (only its names are compared: a file whose
        ``method_state`` names other counters is refused); None compares nothing.
        """
        if not self.path.exists():
            return None
        try:  # weights_only: a pickled object that would run code is an error here, never executed
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - foreign, tampered or damaged: start from scratch, never fail
            return self._refuse(f"not a ptbench checkpoint ({_reason(exc)})")
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            return self._refuse("not a ptbench checkpoint (no ptbench header)")
        if state.get("version") != VERSION:
            return self._refuse(f"checkpoint format {state.get('version')!r}, this ptbench reads {VERSION}")
        if state.get("run_id") != self.run_id:
            return self._refuse(f"it belongs to run {state.get('run_id')!r}, not {self.run_id}")
        if missing := [key for key in REQUIRED if key not in state]:
            return self._refuse(f"not a ptbench checkpoint (no {', '.join(missing)})")
        saved = state.setdefault("method_state", {})  # absent in files written before it was kept: none
        if not isinstance(saved, dict):
            return self._refuse("not a ptbench checkpoint (method_state is not a dict)")
        if method_state is not None and sorted(saved) != sorted(method_state):
            return self._refuse(
                f"it holds training counters {_names(saved)}, the run's method keeps {_names(method_state)}"
            )
        self.saved_train_s = float(state.get("loop_time_s", 0.0)) - float(state.get("eval_time_s", 0.0))
        self.saved_step = int(state["result"].get("steps", 0))
        return state

    def _refuse(self, why: str) -> None:
        print(
            f"{WARNING_PREFIX}ignoring checkpoint {self.path}: {why}; starting the run from step 0",
            file=sys.stderr,
        )
        return None

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
        self.notes_path.unlink(missing_ok=True)


def storable(value: Any, where: str = "state") -> Any:
    """``value`` in the types ``torch.load(weights_only=True)`` reads back: numpy scalars become Python numbers and
    numpy arrays tensors; anything else that is not a tensor, plain container, number, string or None is a
    ``TypeError`` here, at the first save (a programming error), rather than a checkpoint no run can resume from."""
    if isinstance(value, np.generic):  # first: np.float64 is also a float
        return value.item()
    if value is None or isinstance(value, torch.Tensor | bool | int | float | str | torch.dtype):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {key: storable(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(storable(item, f"{where}[{i}]") for i, item in enumerate(value))
    raise TypeError(f"checkpoint {where}: a {type(value).__name__} cannot be stored (weights_only)")


def _names(state: dict[str, Any]) -> str:
    return ", ".join(repr(name) for name in sorted(state)) or "(none)"


def _reason(exc: Exception) -> str:
    """One line on why ``torch.load`` refused a file: the global it would have had to import (torch's own message
    goes on to explain how to allow it, which is what must not be done with a file anyone could have written),
    or the first line of the error."""
    if found := re.search(r"Unsupported global: GLOBAL (\S+)", str(exc)):
        return f"it would import {found.group(1)}, which is not a tensor or plain value"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
