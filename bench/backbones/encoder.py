"""Encoder-only backbones (BERT family): a classification head, regression for STS-B (docs/backbones.md#encoder-only-bert-family).

Choices, recorded in every run: the head is a linear layer over position 0 (BERT's pooler stays frozen), it
trains at its own learning rate and is counted in ``head_params``, never in ``trainable_params``. The prompt is
inserted right after ``[CLS]`` so position 0 stays the real ``[CLS]`` the head reads; token-type ids of virtual
positions are 0 (``encoder_prompt_position="first"`` puts it in front of ``[CLS]`` instead, PEFT's placement).
The text is the lineage's one-segment source (``encoder_text="dept"``) or the raw fields as BERT segments,
``[CLS] A [SEP] B [SEP]`` with token types 0/1 (``"segments"``, docs/protocol.md#text-formats). BERT adds
position and token-type embeddings and its embedding LayerNorm to ``inputs_embeds``, so the prompt is normalised, unlike on T5: learning rates do not transfer between families.

Layer methods (LPT): embeddings and layers ``1..L_p`` run without gradient on the text alone, the prompt is
inserted after ``[CLS]`` in their output (it gets no position or token-type embedding: those were added at
the input, and the text keeps its positions), the remaining layers run with the extended mask, then the same
head. Supported for BERT-style stacks (``embeddings`` + ``encoder.layer``; pooler + classifier, or a
RoBERTa-style classifier over the sequence).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

from bench.backbones.base import Backbone, EncodedSplit
from bench.errors import InputError

PROMPT_PLACEMENT = "after_cls"


class EncoderBackbone(Backbone):
    family = "encoder"
    prompt_placement = PROMPT_PLACEMENT

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        name: str,
        max_length: int,
        label_strings: list[str] | None,
        text: str = "dept",
        prompt_position: str = PROMPT_PLACEMENT,
    ) -> None:
        super().__init__(model, tokenizer, name, max_length)
        self.label_strings = label_strings  # None: regression
        self.text = text  # train.encoder_text: "dept" (one segment) or "segments" (BERT pairs)
        # train.encoder_prompt_position: "after_cls" (the head reads the real [CLS]) or "first" (PEFT's: in
        # front of [CLS], so the pooler reads the first virtual token)
        self.prompt_placement = prompt_position
        self._insert_at = 0 if prompt_position == "first" else 1
        for p in self.head_parameters():
            p.requires_grad_(True)

    @property
    def head(self) -> nn.Module:
        for attr in ("classifier", "score"):
            if hasattr(self.model, attr):
                return getattr(self.model, attr)
        raise InputError(f"model {self.name!r} has no classification head ('classifier' or 'score')")

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.head.parameters())

    def encode(self, examples: list, label_strings: list[str]) -> EncodedSplit:
        src = self.tokenize_segments(examples) if self.text == "segments" else self.tokenize_sources(examples)
        dtype = torch.float if self.label_strings is None else torch.long
        labels = torch.tensor([e.label for e in examples], dtype=dtype)
        return EncodedSplit(
            src["input_ids"],
            src["attention_mask"],
            labels,
            [e.target for e in examples],
            token_type_ids=src["token_type_ids"] if self.text == "segments" else None,
        )

    def tokenize_segments(self, examples: list) -> dict[str, torch.Tensor]:
        """The fields as BERT reads a pair: ``[CLS] A [SEP] B [SEP]`` ``[n, s]`` with token types 0/1.

        A is the first field, B the others joined by spaces (WiC's word, MultiRC's paragraph); one-field tasks
        are ``[CLS] A [SEP]``. Pairs are cut longest-first to ``s``, as the tokenizer does by default."""
        first = [e.segments[0] for e in examples]
        rest = [" ".join(e.segments[1:]) for e in examples]
        second = rest if any(len(e.segments) > 1 for e in examples) else None
        return self.tokenizer(
            first,
            second,
            max_length=self.max_length,
            padding="max_length",
            truncation=True,
            return_token_type_ids=True,
            return_tensors="pt",
        )

    def _token_types(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, s]`` segment ids: the batch's (``encoder_text="segments"``) or all 0."""
        types = batch.get("token_type_ids")
        return types if types is not None else torch.zeros_like(batch["attention_mask"])

    def _forward(self, batch: dict[str, torch.Tensor], labels: torch.Tensor | None):
        embeds, prompt, mask = self.prompted_inputs(batch["input_ids"], batch["attention_mask"])
        token_types = self._token_types(batch)
        if prompt is not None:  # [CLS] ; P ; rest, or P ; [CLS] ; rest (virtual positions: token type 0)
            at, ones = self._insert_at, mask.new_ones(mask.shape[0], prompt.shape[1])
            embeds = torch.cat([embeds[:, :at], prompt, embeds[:, at:]], dim=1)
            mask = torch.cat([mask[:, :at], ones, mask[:, at:]], dim=1)
            token_types = torch.cat([token_types[:, :at], torch.zeros_like(ones), token_types[:, at:]], dim=1)
            slots = at + torch.arange(ones.shape[1], device=mask.device).expand_as(ones)
            self.set_prompt_slots(
                slots, mask.masked_fill(torch.zeros_like(mask).scatter(1, slots, 1).bool(), 0)
            )
        return self.model(
            inputs_embeds=embeds, attention_mask=mask, token_type_ids=token_types, labels=labels
        )

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.layer_method is not None:
            return self._late_loss(self._forward_late(batch), batch["labels"])
        return self._forward(batch, batch["labels"]).loss

    def prompt_stack(self) -> nn.ModuleList:
        return self.model.base_model.encoder.layer

    # ---- layer methods (LPT) -----------------------------------------------------------------------------
    def _check_layer_support(self) -> None:
        base = self.model.base_model
        if not (hasattr(base, "embeddings") and hasattr(getattr(base, "encoder", None), "layer")):
            raise InputError(
                f"model {self.name!r} ({type(self.model).__name__}) has no BERT-style embeddings + "
                "encoder.layer stack, which layer methods need"
            )
        self._layer_count_check(len(base.encoder.layer))

    def _forward_late(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of the split forward: layers ``1..L_p`` without gradient, ``P(x)`` after ``[CLS]``, the rest."""
        base = self.model.base_model
        layers = base.encoder.layer
        lp = self.method.insert_layer
        mask = batch["attention_mask"]
        with torch.no_grad():
            hidden = base.embeddings(
                inputs_embeds=self.embed_ids(batch["input_ids"]), token_type_ids=self._token_types(batch)
            )  # [B, s, d]
            hidden = _run_bert_layers(base, layers[:lp], hidden, mask)
        hidden, mask, _ = self.insert_layer_prompt(hidden, mask, position=self._insert_at)  # [B, l+s, d]
        hidden = _run_bert_layers(base, layers[lp:], hidden, mask)
        return self._head_logits(hidden)

    def _head_logits(self, sequence: torch.Tensor) -> torch.Tensor:
        """The model's own head on the final states: BERT pooler -> dropout -> classifier, or RoBERTa-style."""
        base = self.model.base_model
        if getattr(base, "pooler", None) is not None and hasattr(self.model, "dropout"):
            return self.head(self.model.dropout(base.pooler(sequence)))
        return self.head(sequence)

    def _late_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss ``*ForSequenceClassification`` computes: MSE for regression, else cross-entropy."""
        if self.label_strings is None:
            return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
        return F.cross_entropy(logits, labels)

    def predict(
        self, batch: dict[str, torch.Tensor], mode: str = "generate", label_strings: list[str] | None = None
    ) -> list[str]:
        if self.layer_method is not None:
            logits = self._forward_late(batch)
        else:
            logits = self._forward(batch, None).logits
        if self.label_strings is None:
            return [f"{v:.4f}" for v in logits.squeeze(-1).tolist()]
        return [self.label_strings[i] for i in logits.argmax(-1).tolist()]


def _run_bert_layers(base: nn.Module, layers: nn.ModuleList, hidden: torch.Tensor, mask: torch.Tensor):
    """Run BERT ``layers`` on ``hidden`` ``[B, n, d]`` with the 0/1 ``mask`` ``[B, n]`` (as BertModel in 5.x)."""
    mask4 = create_bidirectional_mask(config=base.config, inputs_embeds=hidden, attention_mask=mask)
    for layer in layers:
        out = layer(hidden, mask4)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden
