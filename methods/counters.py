"""Training counters: a method's non-parameter state that a training checkpoint carries.

Some methods count what happens in their training forwards (SMoP, MEPT and PT-MoE: the rows their router sends
to each expert, ``methods.routing.RouterLoad``) and report it in ``Method.record()``. Such a count is not a
parameter: it stays out of ``state_dict``, so artifacts, ``saved_state`` and parameter counts ignore it. But
the rest of the run depends on it as on the optimiser state: a run resumed from a checkpoint must continue the
counts, not restart them, or its record differs from the uninterrupted run's. A counter is therefore a
:class:`TrainingCounter` submodule; ``Method.checkpoint_state`` collects every one by module name (this
module's :func:`counter_states`) and ``Method.load_checkpoint_state`` gives it back
(:func:`load_counter_states`).

Checkpoints are read with ``torch.load(weights_only=True)``, so a counter's state holds tensors and plain
values (dicts, lists, numbers, strings, None) only.
"""

from __future__ import annotations

from typing import Any

from torch import nn


class TrainingCounter(nn.Module):
    """A submodule whose state is kept outside ``state_dict`` but saved in training checkpoints."""

    def counter_state(self) -> dict[str, Any]:
        """The counts so far (tensors and plain values; copies, so later training does not change them)."""
        raise NotImplementedError

    def load_counter_state(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (what :meth:`counter_state` returned when the checkpoint was written)."""
        raise NotImplementedError


def counter_states(module: nn.Module) -> dict[str, dict[str, Any]]:
    """``{submodule name: counter_state()}`` of every :class:`TrainingCounter` of ``module`` ({} if none)."""
    return {name: m.counter_state() for name, m in module.named_modules() if isinstance(m, TrainingCounter)}


def load_counter_states(module: nn.Module, states: dict[str, dict[str, Any]]) -> None:
    """Give every :class:`TrainingCounter` of ``module`` its state from ``states`` (keyed as
    :func:`counter_states` keys them); a name missing on either side is a ``ValueError``."""
    counters = {name: m for name, m in module.named_modules() if isinstance(m, TrainingCounter)}
    if set(counters) != set(states):
        raise ValueError(f"counter states for {sorted(states)}, but the method counts {sorted(counters)}")
    for name, counter in counters.items():
        counter.load_counter_state(states[name])
