"""Router load balance for mixture methods (SMoP, MEPT, PT-MoE): the share of rows each expert receives.

A mixture whose router sends every row to one expert trains a single prompt with extra parameters; the record's
``method_record_*.router_load`` says whether that happened. Methods call :meth:`RouterLoad.add` with the expert
indices their router chose for a batch (training forwards only) and put :meth:`RouterLoad.summary` into
``Method.record()``. The counts are a training counter (methods/counters.py): outside ``state_dict``, inside
training checkpoints, so a resumed run reports the rows of every attempt.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from methods.counters import TrainingCounter


class RouterLoad(TrainingCounter):
    """Counts rows per expert; a buffer-free module (not in ``state_dict``), so artifacts and parameter counts
    ignore it, whose counts training checkpoints carry (:meth:`counter_state`).

    Args:
        num_experts: E, the number of experts the router chooses among.
    """

    def __init__(self, num_experts: int) -> None:
        super().__init__()
        if num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {num_experts}")
        self.num_experts = num_experts
        self.counts = torch.zeros(num_experts, dtype=torch.long)
        self.rows = 0

    def add(self, chosen: torch.Tensor) -> None:
        """Record one batch's routing.

        Args:
            chosen: ``[batch]`` or ``[batch, k]`` integer expert indices (top-k routing counts each of a row's
                k experts once).
        """
        flat = chosen.detach().reshape(-1).to("cpu", torch.long)
        self.counts += torch.bincount(flat, minlength=self.num_experts)[: self.num_experts]
        self.rows += chosen.shape[0]

    def reset(self) -> None:
        self.counts.zero_()
        self.rows = 0

    def counter_state(self) -> dict[str, Any]:
        """``{"counts": [E] int64 tensor, "rows": n}``, a copy."""
        return {"counts": self.counts.clone(), "rows": self.rows}

    def load_counter_state(self, state: dict[str, Any]) -> None:
        counts = state["counts"]
        if not isinstance(counts, torch.Tensor) or counts.shape != (self.num_experts,):
            raise ValueError(f"router load counts for {self.num_experts} experts expected, got {counts!r}")
        self.counts, self.rows = counts.to("cpu", torch.long).clone(), int(state["rows"])

    def summary(self) -> dict:
        """``{"experts": E, "rows": n, "share": [E floats summing to 1]}``; shares are 0 before any batch."""
        total = int(self.counts.sum())
        share = [round(int(c) / total, 6) if total else 0.0 for c in self.counts]
        return {"experts": self.num_experts, "rows": self.rows, "share": share}


def noisy_router_probs(
    logits: torch.Tensor, perturb: bool, sigma: float, training: bool, drop: nn.Module
) -> torch.Tensor:
    """SMoP's and MEPT's router probabilities ``p`` ``[B, k]`` from ``logits`` ``[B, k]``.

    With ``perturb`` (the official ``--perturb_router``) training adds Gaussian noise scaled by ``sigma²`` and
    the (detached) logits; without it the official code applies ``drop`` (dropout) to the logits instead.
    """
    if perturb:
        if training and sigma != 0:
            noise = torch.randn(logits.shape, device=logits.device, dtype=logits.dtype)
            logits = logits + sigma * noise * (sigma * logits.detach())
    else:
        logits = drop(logits)
    return torch.softmax(logits, dim=-1)
