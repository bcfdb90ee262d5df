"""Label scoring on T5: the encoder once, every label's decoder pass in one batch (docs/backbones.md#t5-seq2seq).

Label ``k``'s score is the summed log-probability of its target tokens (the label's tokens and EOS,
``Seq2SeqBackbone._target_ids``) given the encoder states, exactly what :func:`reference_scores` (the former
one-decoder-run-per-label loop, kept as the test oracle and ``bench perf --eval``'s baseline) computes:

* the encoder runs once per row (``Seq2SeqBackbone.predict``, with the method's prompt and LPT's late prompt);
* the decoder runs once per row on every label's decoder inputs side by side, ``[start ; y_k<T]`` for each
  label, one contiguous block per label (``label_tree(share=False)``): the self-attention mask is causal
  within a block and closed between blocks, so no label sees another; a block's relative position bias is
  the one its own run computes (T5's bias depends on the column distance, and within a block that is the
  distance of a one-label run);
* the cross-attention keys and values of the encoder states are computed once per row and layer for all
  labels (``R x S`` positions, not ``R x K x S``); the head runs in float32 chunks (``summed_logprobs``).

Prefix tuning's key/value prefixes enter in attention (``methods/prefix.py``), unchanged by the mask.
"""

from __future__ import annotations

import torch
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import BaseModelOutput

from bench.backbones.label_tree import label_tree, summed_logprobs


def label_scores(
    backbone, enc: BaseModelOutput, mask: torch.Tensor, label_strings: list[str]
) -> torch.Tensor:
    """``[R, K]`` summed target log-probabilities; ``enc`` and ``mask`` ``[R, S]`` are the encoder's output and
    the (prompt-extended) mask cross-attention uses."""
    model = backbone.model
    targets = [backbone._target_ids(text) for text in label_strings]
    start = model.config.decoder_start_token_id
    tree = label_tree([[start, *t[:-1]] for t in targets], share=False, device=mask.device)
    size = mask.shape[0]
    decoder = model.get_decoder()
    states = enc.last_hidden_state  # [R, S, d]
    self_mask = create_causal_mask(
        config=decoder.config,
        inputs_embeds=states.new_empty(size, len(tree), 1),  # read for batch, length and dtype only
        attention_mask=None,
        cache=None,
        and_mask_function=tree.attention_rule(0),
    )  # [R | 1, 1, C, C] in the format of the model's attention implementation
    if self_mask is not None and self_mask.shape[0] != size:
        self_mask = self_mask.expand(size, *self_mask.shape[1:])
    hidden = decoder(
        input_ids=tree.tokens.expand(size, -1),
        attention_mask=self_mask,
        encoder_hidden_states=states,
        encoder_attention_mask=mask,
        use_cache=False,
    ).last_hidden_state  # [R, C, d]
    if getattr(model.config, "scale_decoder_outputs", False):  # as T5ForConditionalGeneration.forward
        hidden = hidden * (model.config.d_model**-0.5)
    return summed_logprobs(hidden, model.get_output_embeddings(), tree.nodes, targets)


def reference_scores(
    backbone, enc: BaseModelOutput, mask: torch.Tensor, label_strings: list[str]
) -> torch.Tensor:
    """``[R, K]`` by one decoder run per label (the former path)."""
    batch = mask.shape[0]
    scores = []
    for text in label_strings:
        ids = torch.tensor(backbone._target_ids(text), device=mask.device)
        labels = ids.unsqueeze(0).expand(batch, -1).contiguous()
        logits = backbone.model(encoder_outputs=enc, attention_mask=mask, labels=labels).logits  # [B, T, V]
        scores.append(logits.log_softmax(-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1).sum(-1))  # [B]
    return torch.stack(scores, dim=1)
