"""Soft-prompt initialisations shared by the prompt family (METHODS.md §3.1 defaults).

* ``vocab``: rows of the frozen vocabulary embedding at sampled token ids (ATTEMPT ``init_prefix_from_vocab``,
  PEFT ``SAMPLE_VOCAB``): the prompt starts on the scale the backbone expects.
* ``text``: the embeddings of a fixed text's token ids, repeated or cut to the prompt length (DePT).
* ``uniform``: Uniform(-scale, scale) (the prompt-tuning gin default uses scale 0.5).
"""

from __future__ import annotations

from typing import Literal

import torch

from methods.base import EmbeddingSource

PromptInit = Literal["vocab", "text", "uniform"]


def init_prompt_(
    prompt: torch.Tensor,
    how: str,
    embeddings: EmbeddingSource,
    generator: torch.Generator,
    text: str = "",
    uniform_scale: float = 0.5,
) -> None:
    """Fill ``prompt`` ``[n, d]`` in place."""
    n = prompt.shape[0]
    with torch.no_grad():
        if how == "vocab":
            prompt.copy_(embeddings.embed_random_vocab(n, generator))
        elif how == "text":
            prompt.copy_(embeddings.embed_text(text, n))
        elif how == "uniform":
            prompt.copy_(torch.rand(prompt.shape, generator=generator) * 2 * uniform_scale - uniform_scale)
        else:
            raise ValueError(f"prompt init {how!r} is not one of 'vocab', 'text', 'uniform'")
