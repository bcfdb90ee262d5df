"""Helpers for methods that take prompts trained on source tasks (ATTEMPT, MPT; docs/methods/attempt.md, docs/methods/mpt.md).

A method's config names its sources in one string field (``sources``): comma-separated task names or paths,
which the harness resolves to prompt tensors before :meth:`methods.base.Method.initialize` and hands over
through :meth:`methods.base.Method.load_sources`. Two special values mean "no source prompts":

* ``random``: the method makes frozen stand-ins itself (ATTEMPT's architecture ablation, ``attempt(src=random)``);
* ``none``: no sources at all (``mpt(src=none)``).

A method never learns where the prompts come from; it checks only their shapes.
"""

from __future__ import annotations

from typing import Literal

import torch

from bench.errors import InputError

SourcesKind = Literal["tasks", "random", "none"]
SPECIAL_SOURCES = ("random", "none")


def parse_sources(text: str) -> tuple[SourcesKind, list[str]]:
    """``"mnli,qnli"`` -> ``("tasks", ["mnli", "qnli"])``; ``"random"``/``"none"`` -> ``(kind, [])``."""
    value = text.strip()
    if value.lower() in SPECIAL_SOURCES:
        return value.lower(), []  # type: ignore[return-value]
    names = [t.strip() for t in value.split(",") if t.strip()]
    if not names:
        raise InputError(f"sources={text!r} names no source; give task names or paths, 'random' or 'none'")
    return "tasks", names


def stack_sources(prompts: list[torch.Tensor], length: int, dim: int, method: str) -> torch.Tensor:
    """Check each source prompt is ``[length, dim]`` and stack them to ``[t, length, dim]`` (float, detached).

    Source prompts must have the target prompt's length: both methods add them row by row.
    """
    for i, p in enumerate(prompts):
        if p.dim() != 2 or tuple(p.shape) != (length, dim):
            raise InputError(
                f"{method}: source prompt {i} has shape {tuple(p.shape)}; expected ({length}, {dim}) "
                f"(num_tokens={length} and the backbone's hidden size)"
            )
    if not prompts:
        return torch.zeros(0, length, dim)
    return torch.stack([p.detach().float() for p in prompts])


def task_sources(
    prompts: list[torch.Tensor], kind: str, sources: str, length: int, dim: int, method: str
) -> torch.Tensor | None:
    """The source prompts a ``sources`` setting receives, stacked ``[t, length, dim]``; None for ``random`` or
    ``none`` (which take no prompts). One error if the count does not fit the setting."""
    if kind != "tasks":
        if prompts:
            raise ValueError(f"{method}: sources={sources!r} takes no source prompts, got {len(prompts)}")
        return None
    if not prompts:
        raise ValueError(f"{method}: sources={sources!r} resolved to no source prompts")
    return stack_sources(prompts, length, dim, method)
