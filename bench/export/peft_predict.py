"""Test predictions of an exported adapter loaded by PEFT itself (``PeftModel.from_pretrained``).

What ``bench export --verify`` and tests/test_export.py compare with the run's recorded test predictions. The
base model is the run's backbone loaded fresh (its own head untrained); PEFT's loader puts the adapter and
the classifier in. Rows are the run's encoded test rows (the harness's text formatting and truncation), and
each family is scored as the harness scores it:

* encoder: ``argmax`` of PEFT's classifier logits ``[B, K]`` (regression: the value, as ``bench`` formats it);
* T5 with ``eval_mode="score"``: the label whose target tokens (label + EOS) have the highest summed
  log-probability, from PEFT's forward with ``labels`` ``[B, T]``; ``"generate"``: PEFT's greedy ``generate``;
* causal LM: PEFT's ``PeftModelForCausalLM`` forward (label scoring, right-padded rows) or greedy
  ``generate``, called as ``bench/export/peft_decoder.py`` says (no pad in front of a prompt; prefix tuning's
  position ids).
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.backbones.load import load_backbone
from bench.export.peft_decoder import decoder_generate, decoder_label_scores, extra_inputs
from bench.spec import TrainConfig

ROWS = 32  # rows per forward


def load_adapter(folder: Path, model: str, labels: list[str] | None, train: TrainConfig):
    """``(backbone, peft_model)``: a fresh backbone (for its tokenizer and encoding) and PEFT's model of
    ``folder`` around a second fresh copy of the same checkpoint, in evaluation mode. ``labels``: an encoder
    classifier's label strings (None: regression, one output; T5 and causal LMs ignore them)."""
    from peft import PeftModel  # noqa: PLC0415 - peft takes seconds to import: only when an adapter is read

    torch.manual_seed(1)  # a different untrained head than the exporter's: PEFT must bring the trained one
    backbone = load_backbone(model, labels, train.max_length, 0.0, train.encoder_text, "first")
    base = load_backbone(model, labels, train.max_length, 0.0, train.encoder_text).model
    peft_model = PeftModel.from_pretrained(base, str(folder))
    peft_model.eval()
    backbone.train(False)
    return backbone, peft_model


@torch.no_grad()
def peft_label_scores(backbone, peft_model, batch: dict, labels: list[str]) -> torch.Tensor:
    """T5: ``[B, K]`` summed log-probabilities of each label's target tokens (label + EOS), PEFT's forward."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    scores = []
    for text in labels:
        target = torch.tensor(backbone._target_ids(text)).expand(ids.shape[0], -1).contiguous()  # [B, T]
        logits = peft_model(
            input_ids=ids, attention_mask=mask, labels=target, **extra_inputs(peft_model, ids, mask)
        ).logits
        logp = logits.float().log_softmax(-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)  # [B, T]
        scores.append(logp.sum(-1))  # [B]
    return torch.stack(scores, 1)


@torch.no_grad()
def peft_predictions(backbone, peft_model, split, labels: list[str], eval_mode: str) -> list[str]:
    """The predicted label string of every row of ``split`` (an ``EncodedSplit`` of the run's test rows);
    ``labels`` are the task's label strings (STS-B: the 26 values T5 and causal LMs score)."""
    out: list[str] = []
    for start in range(0, len(split), ROWS):
        batch = split.batch(slice(start, start + ROWS))
        ids, mask = batch["input_ids"], batch["attention_mask"]
        extra = extra_inputs(peft_model, ids, mask)
        if backbone.family == "decoder" and eval_mode == "score":
            best = decoder_label_scores(backbone, peft_model, batch, labels).argmax(1)
            out += [labels[i] for i in best.tolist()]
        elif backbone.family == "decoder":
            out += decoder_generate(backbone, peft_model, batch)
        elif backbone.family == "encoder":
            if batch.get("token_type_ids") is not None:
                extra["token_type_ids"] = batch["token_type_ids"]
            logits = peft_model(input_ids=ids, attention_mask=mask, **extra).logits  # [B, K]
            if backbone.label_strings is None:  # regression: one output, formatted as the harness does
                out += [f"{v:.4f}" for v in logits.squeeze(-1).tolist()]
            else:
                out += [labels[i] for i in logits.argmax(-1).tolist()]
        elif eval_mode == "score":
            out += [
                labels[i] for i in peft_label_scores(backbone, peft_model, batch, labels).argmax(1).tolist()
            ]
        else:
            generated = peft_model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=backbone.max_new_tokens,
                num_beams=1, do_sample=False, **extra,
            )  # fmt: skip
            out += [t.strip() for t in backbone.tokenizer.batch_decode(generated, skip_special_tokens=True)]
    return out
