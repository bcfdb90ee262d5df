"""A causal LM's test predictions from PEFT's own ``PeftModelForCausalLM`` (``forward`` and ``generate``).

ptbench places a prompt right before each row's first real token and numbers positions from it (the prompt
``0..n-1``, the text from ``n``; ``bench/backbones/decoder.py``). PEFT 0.22's prompt types (``PROMPT_TUNING``,
``P_TUNING``, ``MULTITASK_PROMPT_TUNING``) concatenate the prompt in front of whatever the model is given,
padding included, and drop given position ids (the model numbers ``0..n+s-1``). Both agree exactly when no pad
comes before a real token, so PEFT's model is called:

* label scoring: one row per (example, label), ``[prefix ; label tokens ; EOS]``, **right**-padded; PEFT's
  logits ``[B, n+L, V]`` include the ``n`` virtual positions, so target token at text column ``c`` is
  predicted at ``n + c - 1``;
* generation: rows of **equal prefix length** batched together (no padding at all), PEFT's greedy
  ``generate``; its output ``[B, s + new]`` starts with the ``s`` input ids.

Prefix tuning reaches PEFT's model as a cache of ``l`` keys/values (unrotated, as ptbench's prefix keys) and
PEFT adds ``l`` to given position ids; ptbench numbers the text from 0 (``positions_from_mask``), so every
call passes ``position_ids = cumsum(mask) - 1 - l`` and may use any padding (left-padded generation as
ptbench's). LoRA changes weights only: PEFT's model takes the harness's own rows and ``generate``'s positions.
"""

from __future__ import annotations

import torch

from bench.backbones.positions import positions_from_mask

PROMPT_TYPES = {"PROMPT_TUNING", "P_TUNING", "MULTITASK_PROMPT_TUNING"}  # PEFT's input-prompt types


def peft_type(peft_model) -> str:
    return peft_model.peft_config["default"].peft_type.value


def extra_inputs(peft_model, ids: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """What every call of PEFT's model (any family) takes besides ids and mask. MPT: every row's task (task 0,
    the one exported). Prefix: ptbench's position ids ``[B, s]`` less ``l`` (PEFT 0.22 adds ``l`` to given
    position ids: its text follows the prefix; ptbench numbers the text from 0). On a right-padded encoder
    row they are ``-l..s-1-l``. Nothing else."""
    kind = peft_type(peft_model)
    if kind == "MULTITASK_PROMPT_TUNING":
        return {"task_ids": torch.zeros(ids.shape[0], dtype=torch.long, device=ids.device)}
    if kind == "PREFIX_TUNING":
        return {
            "position_ids": positions_from_mask(mask) - peft_model.peft_config["default"].num_virtual_tokens
        }
    return {}


def _virtual(peft_model) -> int:
    """How many positions PEFT's logits carry in front of the text (its prompt types' virtual tokens)."""
    config = peft_model.peft_config["default"]
    return config.num_virtual_tokens if peft_type(peft_model) in PROMPT_TYPES else 0


@torch.no_grad()
def decoder_label_scores(backbone, peft_model, batch: dict, labels: list[str]) -> torch.Tensor:
    """``[B, K]`` summed log-probabilities of each label's target tokens (``" " + label`` and EOS) after each
    row's ``[source ; cue]`` prefix, one right-padded PEFT forward per label."""
    prefix = (batch["labels"] == -100) & batch["attention_mask"].bool()
    lengths = prefix.sum(-1).tolist()  # the encoded rows are right-padded: a prefix is columns 0..len-1
    n, scores = _virtual(peft_model), []
    for text in labels:
        target = backbone._target_ids(text)
        width = max(lengths) + len(target)
        ids = torch.full((len(lengths), width), backbone.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, length in enumerate(lengths):
            ids[i, : length + len(target)] = torch.tensor(batch["input_ids"][i, :length].tolist() + target)
            mask[i, : length + len(target)] = 1
        logits = peft_model(
            input_ids=ids, attention_mask=mask, **extra_inputs(peft_model, ids, mask)
        ).logits  # [B, n + width, V]
        logp = logits.float().log_softmax(-1)
        cols = torch.tensor(lengths).unsqueeze(1) + torch.arange(len(target)).unsqueeze(0)  # [B, T]
        picked = logp.gather(1, (n + cols - 1).unsqueeze(-1).expand(-1, -1, logp.shape[-1]))  # [B, T, V]
        scores.append(picked.gather(-1, ids.gather(1, cols).unsqueeze(-1)).squeeze(-1).sum(-1))
    return torch.stack(scores, 1)


@torch.no_grad()
def decoder_generate(backbone, peft_model, batch: dict) -> list[str]:
    """Greedy answers of PEFT's ``generate`` from each row's ``[source ; cue]`` prefix (see the module
    docstring for how rows are batched)."""
    ids, mask = backbone._prefixes(batch)  # [B, W] left-padded, as the harness generates
    lengths = mask.sum(-1)
    groups = (
        [(lengths == k).nonzero().squeeze(1) for k in sorted(set(lengths.tolist()))]
        if peft_type(peft_model) in PROMPT_TYPES
        else [torch.arange(ids.shape[0])]
    )
    out: list[str] = [""] * ids.shape[0]
    for rows in groups:
        width = int(lengths[rows].max())
        x, m = ids[rows, ids.shape[1] - width :], mask[rows, ids.shape[1] - width :]
        generated = peft_model.generate(
            input_ids=x, attention_mask=m, max_new_tokens=backbone.max_new_tokens, do_sample=False,
            num_beams=1, pad_token_id=backbone.pad_id, eos_token_id=backbone.eos_id,
            **extra_inputs(peft_model, x, m),
        )  # fmt: skip
        texts = backbone.tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)
        for row, text in zip(rows.tolist(), texts, strict=True):
            out[row] = text.strip()
    return out
