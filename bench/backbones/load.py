"""Load a backbone of the right family for a task (``load_backbone``) or as shapes only (``meta_backbone``)."""

from __future__ import annotations

import torch
from transformers.utils import logging as hf_logging

from bench.backbones.base import Backbone
from bench.backbones.decoder import DecoderBackbone
from bench.backbones.encoder import EncoderBackbone
from bench.backbones.models import (
    UnknownModelError,
    ensure_local_weights,
    load_config,
    model_family,
    resolve_model,
)
from bench.backbones.seq2seq import Seq2SeqBackbone

# Every backbone is loaded in float32 whatever dtype its checkpoint stores (transformers 5.x would otherwise
# keep a bf16 checkpoint in bf16): master weights are fp32, and lower precision is only ever the run's
# ``train.precision`` autocast (bench/training/precision.py), which the record states.
LOAD_DTYPE = torch.float32


# The config fields that set a backbone's dropout, per family: BERT (hidden, attention, classifier; None means
# "as hidden"), T5 (one rate), Llama-style decoders (attention only; their checkpoints ship 0).
DROPOUT_FIELDS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "classifier_dropout",
    "dropout_rate",
    "attention_dropout",
)


def set_dropout(config, rate: float | None) -> dict[str, float | None]:
    """Set every dropout field the config has to ``rate`` (None: keep the checkpoint's values), before the
    model is built, so each module reads it at construction as transformers intends. Returns the values the
    model runs with (``{field: rate}``), which the record keeps as ``env.dropout``.

    Why a spec field: dropout 0 is a known recipe for prompt tuning a frozen model, and on a CPU it lets BERT's
    attention take the fused SDPA kernel (it falls back to the math path when dropout_p > 0 in training)."""
    for name in DROPOUT_FIELDS:
        if rate is not None and hasattr(config, name):
            setattr(config, name, float(rate))
    return {name: getattr(config, name) for name in DROPOUT_FIELDS if hasattr(config, name)}


def _build(
    model_name: str,
    config,
    label_strings: list[str] | None,
    max_length: int,
    weights: bool,
    encoder_text: str = "dept",
    encoder_prompt_position: str = "after_cls",
):
    """Instantiate the family's model from ``config`` (dropout already set); ``weights=False`` builds from the
    config alone (on the meta device). ``encoder_text`` and ``encoder_prompt_position`` are an encoder's
    (``TrainConfig``'s fields of those names); seq2seq and decoder backbones ignore them."""
    from transformers import (  # noqa: PLC0415 - auto classes load model and tokenizer code, only when a backbone is built
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    family = model_family(config)
    resolved = resolve_model(model_name) if weights else None
    if family == "seq2seq":
        if weights:
            model = AutoModelForSeq2SeqLM.from_pretrained(resolved.source, config=config, dtype=LOAD_DTYPE)
        else:
            model = AutoModelForSeq2SeqLM.from_config(config)
        tokenizer = AutoTokenizer.from_pretrained(resolved.source) if weights else None
        return Seq2SeqBackbone(model, tokenizer, model_name, max_length)
    if family == "encoder":
        num_labels = 1 if label_strings is None else len(label_strings)
        problem = "regression" if label_strings is None else "single_label_classification"
        config.num_labels, config.problem_type = num_labels, problem
        if weights:  # a checkpoint's classifier for another label count is replaced by a fresh one
            model = AutoModelForSequenceClassification.from_pretrained(
                resolved.source, config=config, dtype=LOAD_DTYPE, ignore_mismatched_sizes=True
            )
        else:
            model = AutoModelForSequenceClassification.from_config(config)
        tokenizer = AutoTokenizer.from_pretrained(resolved.source) if weights else None
        return EncoderBackbone(
            model, tokenizer, model_name, max_length, label_strings, encoder_text, encoder_prompt_position
        )
    if weights:
        model = AutoModelForCausalLM.from_pretrained(resolved.source, config=config, dtype=LOAD_DTYPE)
    else:
        model = AutoModelForCausalLM.from_config(config)
    tokenizer = AutoTokenizer.from_pretrained(resolved.source) if weights else None
    if tokenizer is not None and tokenizer.eos_token_id is None:
        raise UnknownModelError(
            f"decoder model {model_name!r}: its tokenizer has no EOS token to end targets"
        )
    return DecoderBackbone(model, tokenizer, model_name, max_length)


def load_backbone(
    model_name: str,
    label_strings: list[str] | None,
    max_length: int,
    dropout: float | None = None,
    encoder_text: str = "dept",
    encoder_prompt_position: str = "after_cls",
) -> Backbone:
    """Load weights and tokenizer (local folder, packaged alias, or the Hub) for a task's label set, with the
    backbone's dropout set to ``dropout`` (None: the checkpoint's; ``backbone.dropout`` says what it runs with)
    and an encoder's ``encoder_text`` and ``encoder_prompt_position`` (``TrainConfig``'s fields)."""

    hf_logging.set_verbosity_error()  # "newly initialized classifier" warnings are expected here
    resolved = resolve_model(model_name)
    ensure_local_weights(resolved)
    try:
        from transformers import AutoConfig  # noqa: PLC0415 - auto classes load model and tokenizer code, only when a backbone is built

        config = AutoConfig.from_pretrained(resolved.source)
    except OSError as exc:
        raise UnknownModelError(f"cannot load model {model_name!r} from {resolved.source!r}: {exc}") from None
    used = set_dropout(config, dropout)
    backbone = _build(
        model_name,
        config,
        label_strings,
        max_length,
        weights=True,
        encoder_text=encoder_text,
        encoder_prompt_position=encoder_prompt_position,
    )
    backbone.dropout = used
    return backbone


def meta_backbone(model_name: str, max_length: int, num_labels: int = 2) -> Backbone:
    """The backbone built from its config on the meta device: exact shapes and counts, no weights."""
    config = load_config(model_name)
    labels = [str(i) for i in range(num_labels)]
    with torch.device("meta"):
        return _build(model_name, config, labels, max_length, weights=False)
