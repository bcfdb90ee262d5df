"""TEST-ONLY fault injection: make a run fail in a chosen way at a chosen step.

The reliability tests need runs that produce a NaN loss, run out of memory, raise, segfault or hang at a
known step, inside the real worker process. ``PTBENCH_FAULT`` asks for that; nothing else reads it, and an
unset variable (every real run) makes :func:`at_step` a no-op. Never set it outside tests.

Syntax: comma-separated items ``KIND@STEP[:ARG][/seed=N]``; ``STEP`` is a 1-based optimiser step or ``*``
(every step); ``/seed=N`` limits the item to runs of that seed, so one run of a grid can fail alone.

=========  ===================================================================================
kind       effect at the step
=========  ===================================================================================
nan        the loss becomes NaN (exercises ``train.nan_policy``)
oom        allocates 1 PiB on the loss's device: the allocator's real out-of-memory error
raise      raises ``RuntimeError("injected fault")``
segfault   the process kills itself with SIGSEGV (a hard crash: no record from the worker)
sleep      sleeps ARG seconds (default 1): slow runs for kill tests
=========  ===================================================================================
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import torch

from bench.errors import InputError

ENV = "PTBENCH_FAULT"
KINDS = ("nan", "oom", "raise", "segfault", "sleep")


@dataclass(frozen=True)
class Fault:
    kind: str
    step: int | None  # None: every step
    arg: float | None = None
    seed: int | None = None


def parse(text: str) -> list[Fault]:
    faults = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        item, _, selector = item.partition("/")
        kind, _, rest = item.partition("@")
        step, _, arg = rest.partition(":")
        if kind not in KINDS or not step:
            raise InputError(f"{ENV}: bad item {item!r}; expected KIND@STEP[:ARG] with KIND in {KINDS}")
        seed = int(selector.removeprefix("seed=")) if selector else None
        faults.append(Fault(kind, None if step == "*" else int(step), float(arg) if arg else None, seed))
    return faults


def active(seed: int) -> list[Fault]:
    """The faults requested for a run of ``seed`` (empty unless ``PTBENCH_FAULT`` is set)."""
    text = os.environ.get(ENV)
    return [f for f in parse(text) if f.seed in (None, seed)] if text else []


def at_step(faults: list[Fault], step: int, loss: torch.Tensor) -> torch.Tensor:
    """Apply the faults due at ``step`` to this step's ``loss`` (returned, possibly made NaN)."""
    for fault in faults:
        if fault.step is not None and fault.step != step:
            continue
        if fault.kind == "nan":
            loss = loss * float("nan")
        elif fault.kind == "oom":
            torch.empty(2**50, dtype=torch.uint8, device=loss.device)  # raises; never fits
        elif fault.kind == "raise":
            raise RuntimeError(f"injected fault at step {step}")
        elif fault.kind == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif fault.kind == "sleep":
            time.sleep(fault.arg if fault.arg is not None else 1.0)
    return loss
