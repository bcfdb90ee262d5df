"""Soft-prompt initialisations shared by the prompt family (docs/methods/pt.md#defaults defaults).

* ``vocab``: rows of the frozen vocabulary embedding at sampled token ids (ATTEMPT ``init_prefix_from_vocab``,
  PEFT ``SAMPLE_VOCAB``): the prompt starts on the scale the backbone expects.
* ``text``: the embeddings of a fixed text's token ids, repeated or cut to the prompt length (DePT). The text
  is tokenised with the tokenizer's special tokens by default (``init_special_tokens``), so on T5 the repeated
  id pattern holds ``</s>`` as in DePT's ``prompt_tuning_lora.py`` and PEFT's TEXT init
  (``docs/methods/dept.md#deviations-from-the-official-code``).
* ``uniform``: Uniform(-scale, scale) (the prompt-tuning gin default uses scale 0.5).
* ``normal``: N(0, 1), ``nn.Embedding``'s default and so PEFT's ``RANDOM`` prompt init, drawn from the
  method's own seeded generator.
* ``peft_random``: the same N(0, 1), drawn where and how PEFT draws it: from the global RNG, right after the
  backbone is built (``nn.Embedding``'s init inside ``get_peft_model``). A seed then gives PEFT's prompt draw
  for draw, and the global RNG moves on as it does in PEFT, so dropout's masks follow too: what a run
  reproducing a plain PEFT run needs (docs/quick-recipe.md#ptbench-with-pefts-recipe-is-the-plain-run).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from methods.base import EmbeddingSource

PromptInit = Literal["vocab", "text", "uniform", "normal", "peft_random"]


def init_prompt_(
    prompt: torch.Tensor,
    how: str,
    embeddings: EmbeddingSource,
    generator: torch.Generator,
    text: str = "",
    uniform_scale: float = 0.5,
    special_tokens: bool = True,
    vocab_max_id: int | None = None,
) -> None:
    """Fill ``prompt`` ``[n, d]`` in place; ``special_tokens`` applies to ``text``, ``vocab_max_id`` (draw ids
    below it; None: the whole vocabulary) to ``vocab``."""
    n = prompt.shape[0]
    with torch.no_grad():
        if how == "vocab":
            prompt.copy_(embeddings.embed_random_vocab(n, generator, vocab_max_id))
        elif how == "text":
            prompt.copy_(embeddings.embed_text(text, n, special_tokens))
        elif how == "uniform":
            prompt.copy_(torch.rand(prompt.shape, generator=generator) * 2 * uniform_scale - uniform_scale)
        elif how == "normal":
            prompt.copy_(torch.randn(prompt.shape, generator=generator))
        elif how == "peft_random":
            prompt.copy_(torch.randn(prompt.shape))  # the global RNG, on purpose (see the module docstring)
        else:
            raise ValueError(
                f"prompt init {how!r} is not one of 'vocab', 'text', 'uniform', 'normal', 'peft_random'"
            )


def init_from_config_(
    prompt: torch.Tensor, config, embeddings: EmbeddingSource, generator: torch.Generator
) -> None:
    """:func:`init_prompt_` with a config's ``init``, ``init_text`` and ``init_special_tokens`` fields."""
    special = getattr(config, "init_special_tokens", True)
    init_prompt_(prompt, config.init, embeddings, generator, config.init_text, special_tokens=special)


def kaiming_uniform_(tensor: torch.Tensor, fan_in: int, generator: torch.Generator) -> None:
    """``nn.init.kaiming_uniform_(a=√5)`` (``nn.Linear``'s and PEFT LoRA's default) from ``generator``:
    Uniform(±√(6 / ((1 + a²)·fan_in))) = Uniform(±1/√fan_in). Torch's fan-in of a 2-D ``[out, in]`` tensor is
    its second size; callers pass it explicitly because some tensors here are stored transposed."""
    bound = math.sqrt(6 / ((1 + 5) * fan_in))
    with torch.no_grad():
        tensor.copy_(torch.rand(tensor.shape, generator=generator) * 2 * bound - bound)
