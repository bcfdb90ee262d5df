"""A case's PEFT model: the method's declared PEFT twin (``Method.peft_equivalent``) around the same backbone."""

from __future__ import annotations

from bench.perf.cases import PerfCase


def wrap_twin(backbone, method: str, config):
    """``(peft_model, loss)``: ``backbone.model`` wrapped by the PEFT twin of ``method`` with ``config`` (its
    ``MethodConfig``), and a loss over our encoded
    batches ``{"input_ids", "attention_mask" [B, L], "labels"}`` (plus the extra inputs the twin needs,
    ``Method.peft_inputs``). The real-task timing (``bench.perf.real_task``) wraps a backbone loaded for its
    task's labels; the synthetic cases one loaded for two labels."""
    import torch
    from peft import TaskType, get_peft_model

    from bench.errors import InputError
    from methods.registry import get_method_class

    task_type = {
        "seq2seq": TaskType.SEQ_2_SEQ_LM,
        "encoder": TaskType.SEQ_CLS,
        "decoder": TaskType.CAUSAL_LM,
    }[backbone.family]
    cls = get_method_class(method)
    peft_config = cls.peft_equivalent(config, backbone.model, task_type)
    if peft_config is None:
        raise InputError(f"PEFT has no {method!r} (the method declares no peft_equivalent)")
    model = get_peft_model(backbone.model, peft_config)

    def loss(batch: dict) -> torch.Tensor:
        kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        kwargs.update(cls.peft_inputs(batch))
        return model(**kwargs, labels=batch["labels"]).loss

    return model, loss


def peft_model(case: PerfCase):
    """``(backbone, peft_model, loss)``: the same backbone model wrapped by PEFT, and a loss over our encoded
    batches (with the extra inputs the method's twin needs, ``Method.peft_inputs``)."""
    import torch

    from bench.backbones.load import load_backbone
    from methods.registry import build_config

    torch.manual_seed(case.seed)
    backbone = load_backbone(case.model, ["0", "1"], case.seq_len)
    model, loss = wrap_twin(backbone, case.method, build_config(case.method, case.overrides))
    return backbone, model, loss
