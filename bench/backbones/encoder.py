"""Encoder-only backbones (BERT family): a classification head, regression for STS-B (METHODS.md §2.3).

Choices, recorded in every run: the head is a linear layer over position 0 (BERT's pooler stays frozen), it
trains at its own learning rate and is counted in ``head_params``, never in ``trainable_params``. The prompt is
inserted right after ``[CLS]`` so position 0 stays the real ``[CLS]`` the head reads; token-type ids of virtual
positions are 0. BERT adds position and token-type embeddings and its embedding LayerNorm to
``inputs_embeds``, so the prompt is normalised, unlike on T5: learning rates do not transfer between families.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.backbones.base import Backbone, EncodedSplit
from methods.base import BackboneDims

PROMPT_PLACEMENT = "after_cls"


class EncoderBackbone(Backbone):
    family = "encoder"
    prompt_placement = PROMPT_PLACEMENT

    def __init__(
        self, model: nn.Module, tokenizer, name: str, max_length: int, label_strings: list[str] | None
    ) -> None:
        super().__init__(model, tokenizer, name, max_length)
        self.label_strings = label_strings  # None: regression
        for p in self.head_parameters():
            p.requires_grad_(True)

    @property
    def head(self) -> nn.Module:
        for attr in ("classifier", "score"):
            if hasattr(self.model, attr):
                return getattr(self.model, attr)
        raise ValueError(f"model {self.name!r} has no classification head ('classifier' or 'score')")

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.head.parameters())

    @property
    def dims(self) -> BackboneDims:
        c = self.model.config
        return BackboneDims(
            "encoder",
            c.hidden_size,
            c.num_hidden_layers,
            self.max_length,
            c.vocab_size,
            c.max_position_embeddings,
        )

    def encode(self, examples: list, label_strings: list[str]) -> EncodedSplit:
        src = self.tokenizer(
            [e.source for e in examples],
            max_length=self.max_length,
            padding="max_length",
            truncation=True,
            return_tensors="pt",
        )
        dtype = torch.float if self.label_strings is None else torch.long
        labels = torch.tensor([e.label for e in examples], dtype=dtype)
        return EncodedSplit(src["input_ids"], src["attention_mask"], labels, [e.target for e in examples])

    def _forward(self, batch: dict[str, torch.Tensor], labels: torch.Tensor | None):
        embeds, prompt, mask = self.prompted_inputs(batch["input_ids"], batch["attention_mask"])
        if prompt is not None:  # [CLS] ; P ; rest
            embeds = torch.cat([embeds[:, :1], prompt, embeds[:, 1:]], dim=1)
            ones = mask.new_ones(mask.shape[0], prompt.shape[1])
            mask = torch.cat([mask[:, :1], ones, mask[:, 1:]], dim=1)
        token_types = torch.zeros_like(mask)
        return self.model(
            inputs_embeds=embeds, attention_mask=mask, token_type_ids=token_types, labels=labels
        )

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._forward(batch, batch["labels"]).loss

    def predict(
        self, batch: dict[str, torch.Tensor], mode: str = "generate", label_strings: list[str] | None = None
    ) -> list[str]:
        logits = self._forward(batch, None).logits
        if self.label_strings is None:
            return [f"{v:.4f}" for v in logits.squeeze(-1).tolist()]
        return [self.label_strings[i] for i in logits.argmax(-1).tolist()]
