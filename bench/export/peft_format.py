"""A finished run as a PEFT adapter folder: ``adapter_config.json`` + ``adapter_model.safetensors``.

Which runs fit (:func:`peft_fit`), and why the others do not (docs/export.md#which-methods-export-to-peft):

==============================  ===========================  ================================================
run                             PEFT type                    what is written
==============================  ===========================  ================================================
``pt``, and every input method  ``PROMPT_TUNING``            the prompt ``[l, d]`` the method prepends
whose prompt is one ``[l, d]``                               (``prompt_embeddings``)
for every input (SPoT, Residual
PT, DPT, ULPT, XPrompt)
``ptuning``                     ``P_TUNING``                 the encoder's output ``[l, d]`` (PEFT keeps only
                                                             it in inference mode, as ptbench's artifact)
``mpt``                         ``MULTITASK_PROMPT_TUNING``  P* ``[l, d]``, U ``[1, l, R]``, V ``[1, R, d]``
``lora``                        ``LORA``                     every ``lora_A``/``lora_B``
``prefix`` (BERT family,        ``PREFIX_TUNING``            the prefixes ``[l, M·2·k]``, ``k = H_kv·d_h`` (the
causal LMs)                                                  MLP dropped, as in ptbench's artifact); PEFT's
                                                             caller passes ptbench's position ids less ``l``
                                                             (PEFT adds ``l``: its text follows the prefix,
                                                             ptbench's starts at 0)
==============================  ===========================  ================================================

LoRA fits every family (T5, BERT, causal LMs): it changes weights only, never what the model is given. On an
encoder (BERT family) the prompt methods fit only with ``train.encoder_prompt_position=first`` (PEFT puts
virtual tokens in front of ``[CLS]``), and the classifier is saved as PEFT's ``modules_to_save``. On a causal
LM PEFT puts the prompt in front of whatever it is given, padding included, and ptbench right before the first
real token: the two agree when PEFT's model is given no pad in front of a real token (right-padded rows to
score, rows of equal length to generate: ``bench/export/peft_decoder.py``), which ``ptbench.json`` records.
Prefix tuning on T5 is refused (PEFT's seq2seq prefix reaches only the decoder). The adapter is built by PEFT
itself: ``get_peft_model`` on a fresh copy of the run's backbone (inference mode), the run's tensors copied
into PEFT's parameters, ``save_pretrained``; ``base_model_name_or_path`` names the backbone (an alias's Hub id,
else the folder or Hub id the run loaded).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bench.backbones.load import load_backbone
from bench.backbones.models import ALIASES, load_config, model_family, resolve_model
from bench.errors import InputError
from bench.export.peft_decoder import PROMPT_TYPES
from bench.run.artifacts import static_prompt
from bench.spec import RunSpec, TrainConfig
from methods.base import Method
from methods.registry import get_method_class

DECLARED = {
    "ptuning": "P_TUNING",
    "mpt": "MULTITASK_PROMPT_TUNING",
    "lora": "LORA",
    "prefix": "PREFIX_TUNING",
}
SIDECAR = "ptbench.json"  # what PEFT's files do not say: run id, label order, how inputs were formatted
TASK_TYPES = {"seq2seq": "SEQ_2_SEQ_LM", "encoder": "SEQ_CLS", "decoder": "CAUSAL_LM"}


def peft_fit(spec: RunSpec, train: TrainConfig, has_prompt: bool) -> str:
    """The PEFT type the run's trained state fits exactly, or an ``InputError`` saying why none does.

    Decided before any weight is loaded: from the method's class, the backbone's family (its config) and
    whether the artifact holds a static ``prompt`` (``has_prompt``: the same ``[l, d]`` for every input).
    """
    cls, family = get_method_class(spec.method), model_family(load_config(spec.model))
    tail = "; --format folder exports every method"
    if spec.method == "lora":
        return "LORA"
    if spec.method == "prefix":
        if family == "seq2seq":
            raise InputError(
                f"PEFT has no twin of prefix on a seq2seq backbone (PEFT's seq2seq prefix reaches only T5's "
                f"decoder){tail}"
            )
        return "PREFIX_TUNING"
    prompt_only = (
        cls.attach == "input"
        and cls.update_embeds is Method.update_embeds
        and (spec.method in DECLARED or has_prompt)
    )
    if not prompt_only:
        raise InputError(f"PEFT has no twin of {spec.method!r} ({_why_not(cls)}){tail}")
    if family == "encoder" and train.encoder_prompt_position != "first":
        raise InputError(
            f"run {spec.run_id} put its prompt after [CLS] (train.encoder_prompt_position="
            f"{train.encoder_prompt_position!r}) and PEFT puts it in front: train with --set "
            f"train.encoder_prompt_position=first to export to PEFT{tail}"
        )
    return DECLARED.get(spec.method, "PROMPT_TUNING")


def _why_not(cls: type[Method]) -> str:
    if cls.name == "finetune":
        return "a full fine-tune is a whole model, not an adapter"
    if cls.name == "bitfit":
        return "PEFT's BEFT shifts linear layers' biases only; BitFit also trains LayerNorm biases"
    if cls.attach == "layer":
        return "its prompt enters after a middle layer"
    if cls.attach == "input":
        return "its prompt depends on the input, or it changes the input's embeddings"
    return "PEFT has no module of this kind"


def _peft_config(peft_type: str, spec: RunSpec, backbone, base_model):
    """The PEFT config of the run's trained state (inference mode: no reparameterisation kept)."""
    import peft  # noqa: PLC0415 - peft takes seconds to import: only when an adapter is written

    task_type, method = TASK_TYPES[backbone.family], backbone.method
    config = spec.method_config
    if peft_type == "LORA":
        built = type(method).peft_equivalent(method.config, base_model, task_type)
    elif peft_type == "PREFIX_TUNING":  # inference mode: the prefixes themselves, [l, M·2·d]
        built = peft.PrefixTuningConfig(
            task_type=task_type, num_virtual_tokens=config["num_tokens"], prefix_projection=False
        )
    elif peft_type == "MULTITASK_PROMPT_TUNING":
        built = peft.MultitaskPromptTuningConfig(
            task_type=task_type, num_virtual_tokens=config["num_tokens"], num_tasks=1,
            num_ranks=config["rank"], num_transformer_submodules=1, prompt_tuning_init="RANDOM",
        )  # fmt: skip
    else:
        cls = peft.PromptEncoderConfig if peft_type == "P_TUNING" else peft.PromptTuningConfig
        built = cls(
            task_type=task_type,
            num_virtual_tokens=static_prompt(backbone).shape[0],
            num_transformer_submodules=1,
        )
    built.inference_mode = True
    built.base_model_name_or_path = base_name(spec.model)
    return built


def _positions(peft_type: str, family: str) -> str | None:
    if peft_type != "PREFIX_TUNING":
        return None
    if family == "decoder":
        return "cumsum(attention_mask) - 1 - num_virtual_tokens"
    return "arange(s) - num_virtual_tokens"


def base_name(model: str) -> str:
    """What ``PeftModel.from_pretrained`` users load as the base: an alias's Hub id, else the run's source."""
    return ALIASES[model].hub_id if model in ALIASES else resolve_model(model).source


def _copy_state(peft_type: str, backbone, peft_model) -> None:
    """The run's trained tensors into PEFT's parameters (shapes checked by ``copy_``)."""
    method = backbone.method
    params = dict(peft_model.named_parameters())
    with torch.no_grad():
        if peft_type == "LORA":
            for name, value in method.trainable_tensors().items():
                params[f"base_model.model.{name}"].copy_(value)
        elif peft_type == "MULTITASK_PROMPT_TUNING":
            encoder = peft_model.prompt_encoder["default"]
            encoder.embedding.weight.copy_(method.shared_prompt)
            encoder.prefix_task_cols.copy_(method.factor_u)
            encoder.prefix_task_rows.copy_(method.factor_v)
        elif peft_type == "PREFIX_TUNING":  # module m: rows 2m (keys), 2m+1 (values), as PEFT reads them
            peft_model.prompt_encoder["default"].embedding.weight.copy_(method.all_prefixes())
        else:
            peft_model.prompt_encoder["default"].embedding.weight.copy_(static_prompt(backbone))
        if backbone.family == "encoder":  # the classifier, PEFT's modules_to_save (same parameter order)
            attr = "classifier" if hasattr(peft_model.get_base_model(), "classifier") else "score"
            saved = getattr(peft_model.get_base_model(), attr).modules_to_save["default"]
            for theirs, mine in zip(saved.parameters(), backbone.head_parameters(), strict=True):
                theirs.copy_(mine)


def write_peft(
    spec: RunSpec, train: TrainConfig, backbone, labels: list[str] | None, out: Path, scored: list[str]
) -> str:
    """Write the adapter folder of the rebuilt run (``backbone`` with the artifact loaded); return its type.

    ``labels``: the encoder classifier's label strings (None: regression, one output); ``scored``: the task's
    label strings (STS-B: the 26 values a T5 or a causal LM scores)."""
    from peft import get_peft_model  # noqa: PLC0415 - peft takes seconds to import: only when an adapter is written

    peft_type = peft_fit(spec, train, static_prompt(backbone) is not None)
    torch.manual_seed(0)  # the fresh base's own head init is overwritten; seeded so the export is repeatable
    base = load_backbone(spec.model, labels, train.max_length, 0.0, train.encoder_text).model
    peft_model = get_peft_model(base, _peft_config(peft_type, spec, backbone, base))
    _copy_state(peft_type, backbone, peft_model)
    out.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out))
    sidecar = {
        "run_id": spec.run_id,
        "method": spec.method,
        "peft_type": peft_type,
        "backbone": spec.model,
        "family": backbone.family,
        "suite": spec.suite,
        "task": spec.task,
        # encoder: classifier output i is labels[i] (None: regression); T5, causal LM: the strings scored
        "labels": labels if backbone.family == "encoder" else scored,
        "eval_mode": train.eval_mode,
        "encoder_text": train.encoder_text,
        "max_length": train.max_length,
        # prefix: PEFT numbers the text's positions from l (after the prefix), ptbench from 0; PEFT adds l to
        # position ids it is given, so its caller passes ptbench's less l
        "position_ids": _positions(peft_type, backbone.family),
        # causal LM, prompt types: PEFT puts the prompt in front of everything it is given, pads included
        "padding": "right (forward); none (generate: rows of equal length)"
        if backbone.family == "decoder" and peft_type in PROMPT_TYPES
        else None,
    }
    (out / SIDECAR).write_text(json.dumps(sidecar, indent=1) + "\n")
    return peft_type
