"""Seq2seq backbones (T5 family): text-to-text with the lineage's source format and digit targets.

The prompt lives only in the encoder (docs/backbones.md#t5-seq2seq): ``X = [P ; E'(x)]``, mask ``[1_n ; M(x)]``; labels
and decoder inputs are unchanged. Layer methods (LPT) get the same placement at block ``L_p``: blocks
``1..L_p`` run without gradient on the text alone, the prompt goes in front of their output, the relative
position bias is recomputed for length ``n + s`` (prompt at positions ``0..n−1``, text–text distances
unchanged) and the decoder's cross-attention mask covers the ``n`` prompt positions. Evaluation is greedy decoding with at most 20 new tokens (§5.6) or, as an
option, scoring every label string and taking the most likely one (the encoder once, all labels in one
decoder pass: ``bench/backbones/seq2seq_scoring.py``).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutput

from bench.backbones.base import Backbone, EncodedSplit
from bench.backbones.seq2seq_scoring import label_scores


class Seq2SeqBackbone(Backbone):
    family = "seq2seq"
    prompt_placement = "prepend_encoder"

    @property
    def eos_id(self) -> int:
        tok = self.tokenizer
        return tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id

    def _target_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.eos_id]

    def encode(self, examples: list, label_strings: list[str]) -> EncodedSplit:
        src = self.tokenize_sources(examples)
        # Targets padded to the longest tokenized label string of the task (docs/protocol.md#text-formats); pads -> -100.
        target_len = max(len(self._target_ids(t)) for t in list(label_strings) + [e.target for e in examples])
        labels = torch.full((len(examples), target_len), -100, dtype=torch.long)
        for i, e in enumerate(examples):
            ids = self._target_ids(e.target)
            labels[i, : len(ids)] = torch.tensor(ids)
        return EncodedSplit(src["input_ids"], src["attention_mask"], labels, [e.target for e in examples])

    def run_encoder(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[BaseModelOutput, torch.Tensor]:
        """Encoder outputs and the (prompt-extended) mask that cross-attention must use."""
        if self.layer_method is not None:
            return self._run_encoder_late(input_ids, attention_mask)
        embeds, prompt, mask = self.prompted_inputs(input_ids, attention_mask)
        if prompt is not None:
            batch, n = prompt.shape[:2]
            embeds = torch.cat([prompt, embeds], dim=1)  # [B, n+s, d]
            slots = torch.arange(n, device=mask.device).expand(batch, n)  # the prompt at columns 0..n-1
            self.set_prompt_slots(slots, torch.cat([mask.new_zeros(batch, n), mask], dim=1))
            mask = torch.cat([mask.new_ones(batch, n), mask], dim=1)
        encoder = self.model.get_encoder()
        out = encoder(inputs_embeds=embeds, attention_mask=mask, return_dict=True)
        return out, mask

    def prompt_stack(self) -> nn.ModuleList:
        return self.model.get_encoder().block

    def _check_layer_support(self) -> None:
        self._layer_count_check(len(self.model.get_encoder().block))

    def _run_encoder_late(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[BaseModelOutput, torch.Tensor]:
        """The encoder split at ``L_p``: T5Stack's forward, with the method's prompt spliced in between.

        Blocks ``1..L_p`` run under ``torch.no_grad()`` (no autograd graph: LPT's saving); block 0 computes
        the relative position bias for length ``s`` and passes it up as in T5Stack. After insertion the bias
        is recomputed for ``l + s`` by block 0's bias table (frozen) and used by blocks ``L_p+1..L``.
        """
        encoder = self.model.get_encoder()
        blocks = encoder.block
        lp = self.method.insert_layer
        with torch.no_grad():
            hidden = encoder.dropout(self.embed_ids(input_ids))  # [B, s, d]
            hidden = _run_t5_blocks(encoder, blocks[:lp], hidden, attention_mask, None)
        hidden, mask, _ = self.insert_layer_prompt(hidden, attention_mask, position=0)  # [B, l+s, d]
        length = hidden.shape[1]
        bias = blocks[0].layer[0].SelfAttention.compute_bias(length, length, device=hidden.device)
        hidden = _run_t5_blocks(encoder, blocks[lp:], hidden, mask, bias.to(hidden.dtype))
        hidden = encoder.dropout(encoder.final_layer_norm(hidden))
        return BaseModelOutput(last_hidden_state=hidden), mask

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        enc, mask = self.run_encoder(batch["input_ids"], batch["attention_mask"])
        return self.model(encoder_outputs=enc, attention_mask=mask, labels=batch["labels"]).loss

    def predict(
        self, batch: dict[str, torch.Tensor], mode: str = "generate", label_strings: list[str] | None = None
    ) -> list[str]:
        enc, mask = self.run_encoder(batch["input_ids"], batch["attention_mask"])
        if mode == "score":
            return self._score_labels(enc, mask, label_strings or [])
        out = self.model.generate(
            encoder_outputs=enc,
            attention_mask=mask,
            max_new_tokens=self.max_new_tokens,
            num_beams=1,
            do_sample=False,
        )
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def _score_labels(self, enc: BaseModelOutput, mask: torch.Tensor, label_strings: list[str]) -> list[str]:
        """Rank classification: the label string with the highest summed log-likelihood, every label in one
        decoder pass over the encoder states (``bench/backbones/seq2seq_scoring.py``)."""

        if not label_strings:
            raise ValueError("eval mode 'score' needs the task's label strings")
        best = label_scores(self, enc, mask, label_strings).argmax(dim=1)
        return [label_strings[i] for i in best.tolist()]


def _run_t5_blocks(
    encoder: nn.Module,
    blocks: nn.ModuleList,
    hidden: torch.Tensor,
    mask: torch.Tensor,
    position_bias: torch.Tensor | None,
) -> torch.Tensor:
    """Run T5 encoder ``blocks`` on ``hidden`` ``[B, n, d]`` with the 0/1 ``mask`` ``[B, n]``.

    As T5Stack (transformers 5.x) does: the mask is made 4-D by ``create_bidirectional_mask`` and added to
    the scores separately from the position bias; a block given no bias computes its own (block 0 only)
    and returns the one it used, which the next block reuses.
    """
    mask4 = create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden, attention_mask=mask)
    for block in blocks:
        hidden, position_bias, _ = block(hidden, mask4, position_bias)
    return hidden
