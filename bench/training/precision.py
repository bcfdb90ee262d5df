"""The numeric precision a run trains and evaluates in (``train.precision``, docs/protocol.md#precision).

The semantics are PyTorch AMP's, as Hugging Face Trainer's ``bf16=True`` uses them:

* ``fp32``: everything in float32; on CUDA, TF32 tensor-core math is switched *off* for the run (PyTorch's
  matmul default, and cuDNN's too, which PyTorch leaves on), so fp32 means fp32.
* ``tf32``: float32 tensors, matmuls and convolutions on CUDA through TF32 tensor cores
  (``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32`` set for the run).
  TF32 is an NVIDIA tensor-core mode (Ampere, compute capability 8.0, and newer): a CPU, or an older GPU, has
  none. Such a run is not refused; it runs in fp32 and the record says so (``env.precision`` = ``fp32``,
  ``env.precision_requested`` = ``tf32``, ``env.precision_note`` why): a grid planned for a GPU cluster stays
  runnable on a laptop, and no record claims a mode that did not run.
* ``bf16``: mixed precision. Master weights, gradients and optimiser state stay float32 (the model is
  loaded in float32, ``bench/backbones/load.py``); the forward pass and the loss run under
  ``torch.autocast(device_type, dtype=torch.bfloat16)``, which computes matmuls in bf16 and keeps reductions
  such as softmax, log-softmax and cross-entropy in float32. The backward runs outside the context (autocast's
  recipe). No loss scaler: bf16 has float32's 8-bit exponent, so gradients do not underflow the way fp16's
  do (``torch.amp.GradScaler`` exists for fp16 only). CPUs run bf16 autocast too (natively with AVX512-BF16 or
  AMX, emulated otherwise); a CUDA GPU without native bf16 (before Ampere) is refused.

Usage, nanoGPT's ``ctx`` style: ``ctx = autocast(precision, device)`` once, then ``with ctx: loss = ...``
around every forward; ``with math_mode(resolve(precision, device), device): ...`` around the whole run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch

from bench.errors import InputError
from bench.spec import PRECISIONS

__all__ = ["PRECISIONS", "PrecisionUnavailable", "RunPrecision", "autocast", "math_mode", "resolve"]


class PrecisionUnavailable(InputError):
    """A precision this device cannot run (bf16 on a GPU without native bf16)."""


@dataclass(frozen=True)
class RunPrecision:
    """What was asked for, what actually runs, and why they differ (None when they do not)."""

    requested: str
    ran: str
    note: str | None = None

    def record(self, device: torch.device) -> dict[str, Any]:
        """The record's ``env`` keys (docs/records.md#provenance); on CUDA also ``tf32_matmul`` as the run
        had it (``math_mode`` restores the flags after the run: read afterwards they would say the default)."""
        out = {"precision": self.ran, "precision_requested": self.requested, "precision_note": self.note}
        if device.type == "cuda":
            out["tf32_matmul"] = self.ran == "tf32"
        return out


def unavailable_reason(precision: str, device: torch.device) -> str | None:
    """Why ``device`` cannot run ``precision`` natively, or None when it can."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if major < 8:
            name = torch.cuda.get_device_name(device)
            need = "an Ampere or newer GPU (compute capability 8.0+)"
            return f"{precision} needs {need}; {name} is {major}.{minor}"
        return None
    if device.type == "cpu":
        if precision == "tf32":
            return "TF32 is a tensor-core math mode of NVIDIA GPUs (Ampere and newer); a CPU has none"
        return None
    return f"ptbench runs {precision} on cuda and cpu only, not on {device.type}"


def resolve(precision: str, device: torch.device) -> RunPrecision:
    """The precision a run of ``train.precision=precision`` gets on ``device``: tf32 falls back to fp32
    (noted), bf16 where it cannot run raises ``PrecisionUnavailable``."""
    if precision not in PRECISIONS:
        raise InputError(f"train.precision={precision!r} is not allowed; allowed: {', '.join(PRECISIONS)}")
    reason = unavailable_reason(precision, device)
    if reason is None:
        return RunPrecision(precision, precision)
    if precision == "tf32":
        return RunPrecision(precision, "fp32", f"{reason}: ran in fp32")
    raise PrecisionUnavailable(f"train.precision={precision!r} cannot run on {device}: {reason}")


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """The context every forward (and loss) runs in: bf16 autocast, or nothing for fp32/tf32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def math_mode(run: RunPrecision, device: torch.device) -> Iterator[RunPrecision]:
    """TF32 on for a tf32 run and off otherwise, on CUDA, restored afterwards (tests run several in one
    process); nothing to set on a CPU."""
    if device.type != "cuda":
        yield run
        return
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    tf32 = run.ran == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield run
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
