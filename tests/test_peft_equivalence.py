"""ptbench's PT, P-tuning, MPT (target stage), LoRA and prefix tuning against HF PEFT's own models.

Each test builds the ptbench method on a tiny random backbone and PEFT's ``get_peft_model`` on a fresh copy of the
same checkpoint, copies the method's parameter values into PEFT's modules (random, not the zero inits, so every
gradient is non-trivial), runs one batch through both, and asserts the same loss and the same gradient of every
trainable tensor (float32 round-off). Where ptbench deliberately differs from PEFT, the test names the
difference, removes exactly that difference on the PEFT side or in the backbone, and asserts the difference
matters before it is removed (docs/methods/prefix.md, docs/methods/pt.md):

* BERT prompts: ptbench puts virtual tokens after ``[CLS]`` (the head reads the real ``[CLS]``), PEFT in front of
  it. The PEFT side is given the input without ``[CLS]`` and ``[CLS]``'s embedding in front of its prompt.
* Prefix on T5: PEFT's seq2seq prefix reaches only the decoder (``past_key_values``; T5's encoder takes no
  cache) and T5 then gives prefix keys a relative-position bias; ptbench prefixes encoder and decoder with a zero
  bias on prefix columns. Compared on decoder self-attention only, with the decoder's bias table zeroed.
* Prefix on BERT: PEFT numbers the text's positions from ``l`` (the prefix is a cache of length ``l``), ptbench
  from 0. Compared with a constant position table on both sides.
* Prefix on T5, also: PEFT's seq2seq path gives decoder layer ``j`` the prefix rows meant for layer ``2j mod L``
  (see the test); ptbench's slots are remapped to PEFT's reading for the comparison.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest
import torch
from packaging.version import Version

from bench.backbones.load import load_backbone
from methods.registry import build_config, get_method_class
from tests.test_methods_train import EXAMPLES

MAX_LENGTH = 16
TOKENS = 3  # l


def _ptbench(model_dir, method: str, **overrides):
    torch.manual_seed(0)
    backbone = load_backbone(str(model_dir), ["0", "1"], MAX_LENGTH)
    cls = get_method_class(method)
    module = cls(build_config(method, {k: str(v) for k, v in overrides.items()}), backbone.dims)
    if cls.requires_sources:
        module.load_sources([])
    module.initialize(backbone, torch.Generator().manual_seed(0))
    backbone.attach(module)
    backbone.train(False)
    return backbone, module


def _batch(backbone) -> dict[str, torch.Tensor]:
    return backbone.encode(EXAMPLES[:4], ["0", "1"]).batch(slice(None))


def _hf_model(model_dir, family: str):
    from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    if family == "t5":
        return AutoModelForSeq2SeqLM.from_pretrained(model_dir)
    return AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=2, problem_type="single_label_classification"
    )


def _peft(model_dir, family: str, config):
    from peft import get_peft_model

    peft_model = get_peft_model(_hf_model(model_dir, family), config)
    peft_model.eval()
    return peft_model


def _randomize(params, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.copy_(torch.randn(p.shape, generator=generator) * 0.5)


def _assert_same(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> None:
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    scale = float(theirs.abs().max())
    assert scale > 0, f"{what}: PEFT's gradient is zero, the comparison would be empty"
    err = float((ours - theirs).abs().max())
    assert err <= 1e-5 * scale + 1e-7, f"{what}: max |Δ| {err:.3g} (scale {scale:.3g})"


def _peft_loss(peft_model, family: str, batch, move_cls: bool = False, **kwargs) -> torch.Tensor:
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if move_cls:  # [CLS] joins the front of PEFT's virtual tokens (see the module docstring)
        ids = ids[:, 1:]
    return peft_model(input_ids=ids, attention_mask=mask, labels=batch["labels"], **kwargs).loss


def _cls_in_front(peft_model, cls_token_id: int) -> None:
    """Make PEFT's prompt ``[E([CLS]) ; P]``: a forward hook on its prompt encoder ``[B, l, d] -> [B, 1+l, d]``."""
    embeddings = peft_model.get_base_model().get_input_embeddings()
    cls_id = torch.tensor([cls_token_id])

    def hook(module, args, output):
        cls = embeddings(cls_id).unsqueeze(0).expand(output.shape[0], -1, -1)
        return torch.cat([cls.to(output.dtype), output], dim=1)

    peft_model.prompt_encoder[peft_model.active_adapter].register_forward_hook(hook)


def _check_prompt_method(model_dir, family: str, method: str, peft_config, copy_pairs, **kwargs) -> None:
    """Shared body of the input-prompt methods: ``copy_pairs(ours, peft) -> [(name, our_param, peft_param)]``."""
    backbone, ours = _ptbench(model_dir, method, num_tokens=TOKENS, **kwargs)
    _randomize([p for p in ours.parameters() if p.requires_grad])
    peft_model = _peft(model_dir, family, peft_config)
    pairs = copy_pairs(ours, peft_model)
    with torch.no_grad():
        for _, mine, theirs in pairs:
            theirs.copy_(mine.view_as(theirs))
    batch = _batch(backbone)
    extra = {"task_ids": torch.zeros(len(batch["labels"]), dtype=torch.long)} if method == "mpt" else {}
    heads = []
    if family == "bert":
        with torch.no_grad():  # placement matters: PEFT's own layout gives another loss
            plain = _peft_loss(peft_model, family, batch, **extra)
        _cls_in_front(peft_model, backbone.tokenizer.cls_token_id)
        heads = _head_pairs(backbone, peft_model)
    loss = backbone.loss(batch)
    reference = _peft_loss(peft_model, family, batch, move_cls=family == "bert", **extra)
    if family == "bert":
        assert abs(plain.item() - reference.item()) > 1e-4, "placement after [CLS] made no difference"
    assert abs(loss.item() - reference.item()) <= 1e-5 * abs(reference.item()), (loss, reference)
    loss.backward()
    reference.backward()
    for name, mine, theirs in pairs + heads:
        _assert_same(mine.grad.view_as(theirs), theirs.grad, name)


def _head_pairs(backbone, peft_model) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """The BERT classifier: trainable on both sides (PEFT: ``modules_to_save``), from the same checkpoint."""
    theirs = dict(peft_model.named_parameters())
    pairs = []
    for name, p in backbone.model.classifier.named_parameters():
        match = [v for k, v in theirs.items() if k.endswith(f"classifier.modules_to_save.default.{name}")]
        assert len(match) == 1, name
        pairs.append((f"classifier.{name}", p, match[0]))
    return pairs


TASK = {"t5": "SEQ_2_SEQ_LM", "bert": "SEQ_CLS"}


@pytest.mark.parametrize("family", ["t5", "bert"])
def test_prompt_tuning_equals_peft(request, family):
    from peft import PromptTuningConfig

    config = PromptTuningConfig(
        task_type=TASK[family], num_virtual_tokens=TOKENS, num_transformer_submodules=1
    )

    def pairs(ours, peft_model):
        theirs = peft_model.prompt_encoder.default.embedding.weight
        return [("soft_prompt", ours.soft_prompt, theirs)]

    _check_prompt_method(request.getfixturevalue(f"tiny_{family}_dir"), family, "pt", config, pairs)


def _same_names(ours_module, peft_module) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Parameters of the same PEFT module class on both sides, paired by name."""
    theirs = dict(peft_module.named_parameters())
    pairs = [(name, p, theirs[name]) for name, p in ours_module.named_parameters()]
    assert len(pairs) == len(theirs), (sorted(theirs), [n for n, _, _ in pairs])
    return pairs


@pytest.mark.parametrize("family", ["t5", "bert"])
def test_ptuning_equals_peft(request, family):
    from peft import PromptEncoderConfig

    config = PromptEncoderConfig(
        task_type=TASK[family],
        num_virtual_tokens=TOKENS,
        num_transformer_submodules=1,
        encoder_reparameterization_type="MLP",
        encoder_hidden_size=8,
    )

    def pairs(ours, peft_model):
        return _same_names(ours.encoder, peft_model.prompt_encoder.default)

    model_dir = request.getfixturevalue(f"tiny_{family}_dir")
    _check_prompt_method(model_dir, family, "ptuning", config, pairs, hidden_size=8)


@pytest.mark.parametrize("family", ["t5", "bert"])
def test_mpt_target_stage_equals_peft(request, family):
    """MPT's target stage with one task: P̂ = P* ∘ (U V), PEFT's ``MultitaskPromptEmbedding`` called with task 0."""
    from peft import MultitaskPromptTuningConfig

    config = MultitaskPromptTuningConfig(
        task_type=TASK[family],
        num_virtual_tokens=TOKENS,
        num_transformer_submodules=1,
        num_tasks=1,
        num_ranks=2,
        prompt_tuning_init="RANDOM",
    )

    def pairs(ours, peft_model):
        return _same_names(ours.embedding, peft_model.prompt_encoder.default)

    model_dir = request.getfixturevalue(f"tiny_{family}_dir")
    _check_prompt_method(model_dir, family, "mpt", config, pairs, rank=2, sources="none")


def _check_wrapped(backbone, peft_model, pairs, batch, **kwargs) -> None:
    """Same loss and gradients for methods whose tensors live in the model (LoRA, prefix)."""
    loss = backbone.loss(batch)
    reference = _peft_loss(peft_model, "", batch, **kwargs)
    assert abs(loss.item() - reference.item()) <= 1e-5 * abs(reference.item()), (
        loss.item(),
        reference.item(),
    )
    loss.backward()
    reference.backward()
    for name, mine, theirs in pairs:
        _assert_same(mine.grad, theirs.grad, name)


@pytest.mark.parametrize("family", ["t5", "bert"])
def test_lora_equals_peft(request, family):
    """ptbench injects PEFT's LoRA layers by module name (``inject_adapter_in_model``); PEFT's own model wraps the
    same checkpoint with ``get_peft_model``. B is randomised (PEFT inits it to zero, which would zero A's grad)."""
    from peft import LoraConfig

    model_dir = request.getfixturevalue(f"tiny_{family}_dir")
    backbone, ours = _ptbench(model_dir, "lora", rank=2, alpha=4.0, targets="q,v")
    _randomize(ours.trainable_tensors().values())
    targets = ["q", "v"] if family == "t5" else ["query", "value"]
    config = LoraConfig(task_type=TASK[family], r=2, lora_alpha=4.0, lora_dropout=0.0, target_modules=targets)
    peft_model = _peft(model_dir, family, config)
    theirs = {
        k.removeprefix("base_model.model."): v for k, v in peft_model.named_parameters() if "lora_" in k
    }
    assert sorted(theirs) == sorted(ours.trainable_tensors())  # the same modules get adapters
    pairs = [(name, p, theirs[name]) for name, p in ours.trainable_tensors().items()]
    if family == "bert":
        pairs += _head_pairs(backbone, peft_model)
    with torch.no_grad():
        for _, mine, other in pairs:
            other.copy_(mine)
    _check_wrapped(backbone, peft_model, pairs, _batch(backbone))


_T5_DECODER_SELF = r"^decoder\.block\.\d+\.layer\.0\.SelfAttention$"


def test_prefix_on_t5_decoder_equals_peft(tiny_t5_dir, monkeypatch):
    """PEFT's seq2seq prefix: decoder self-attention only (T5's encoder takes no cache; the cross-attention cache is
    reset), so ptbench is restricted to the same modules. Two differences remain, each checked to matter:

    * T5 gives PEFT's cached prefix keys a relative-position bias, ptbench's prefix columns none: the decoder's
      bias table is zeroed on both sides.
    * PEFT 0.21's seq2seq path duplicates the prefix rows for cross-attention (``cat([kv, kv])`` over the row
      axis, then ``split(4)`` per layer), so decoder layer ``j`` reads the prefix of row pair ``2j mod L``; ptbench
      gives every module its own pair. ptbench's slots are remapped to PEFT's reading for the comparison.
    """
    import re

    from peft import PrefixTuningConfig

    import methods.prefix as prefix

    monkeypatch.setattr(prefix, "_SELF", [re.compile(_T5_DECODER_SELF)])
    backbone, ours = _ptbench(tiny_t5_dir, "prefix", num_tokens=TOKENS, hidden_size=8)
    assert ours.module_names == [
        "decoder.block.0.layer.0.SelfAttention",
        "decoder.block.1.layer.0.SelfAttention",
    ]
    _randomize(ours.encoder.parameters())
    config = PrefixTuningConfig(
        task_type="SEQ_2_SEQ_LM", num_virtual_tokens=TOKENS, prefix_projection=True, encoder_hidden_size=8
    )
    peft_model = _peft(tiny_t5_dir, "t5", config)
    pairs = _same_names(ours.encoder, peft_model.prompt_encoder.default)
    with torch.no_grad():
        for _, mine, other in pairs:
            other.copy_(mine)
    batch = _batch(backbone)
    blocks = backbone.model.decoder.block
    slots = [block.layer[0].SelfAttention.ptbench_prefix for block in blocks]

    def gap() -> float:
        return abs(backbone.loss(batch).item() - _peft_loss(peft_model, "t5", batch).item())

    with torch.no_grad():
        for j, slot in enumerate(slots):
            slot.index = (2 * j) % len(blocks)  # PEFT's reading
        assert gap() > 1e-4  # the position bias on prefix keys matters
        for model in (backbone.model, peft_model.get_base_model()):
            model.decoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight.zero_()
        for j, slot in enumerate(slots):
            slot.index = j  # ptbench's own mapping
        assert gap() > 1e-4  # PEFT's layer mapping matters
        for j, slot in enumerate(slots):
            slot.index = (2 * j) % len(blocks)
    _check_wrapped(backbone, peft_model, pairs, batch)


@pytest.mark.skipif(
    Version(version("peft")) < Version("0.22"),
    reason="PEFT < 0.22 cannot prefix BERT under transformers 5.x (requirements.lock installs 0.22)",
)
def test_prefix_on_bert_equals_peft(tiny_bert_dir):
    """PEFT's prefix on an encoder classifier: every BERT self-attention layer gets its key/value pair, as in ptbench
    (module ``m`` reads rows ``2m``/``2m+1`` of the same ``PrefixEncoder`` output). One difference remains,
    checked to matter and then removed: PEFT hands the prefix to BERT as a cache of length ``l``, and BERT then
    numbers the text's positions from ``l``, while ptbench's text keeps positions ``0..s-1`` (the frozen model sees
    its text as it was trained). The position table is made constant on both sides, so a shift changes nothing.
    """
    from peft import PrefixTuningConfig

    backbone, ours = _ptbench(tiny_bert_dir, "prefix", num_tokens=TOKENS, hidden_size=8)
    assert ours.module_names == [f"bert.encoder.layer.{i}.attention.self" for i in range(2)]
    _randomize(ours.encoder.parameters())
    config = PrefixTuningConfig(
        task_type="SEQ_CLS", num_virtual_tokens=TOKENS, prefix_projection=True, encoder_hidden_size=8
    )
    peft_model = _peft(tiny_bert_dir, "bert", config)
    pairs = _same_names(ours.encoder, peft_model.prompt_encoder.default)
    heads = _head_pairs(backbone, peft_model)
    with torch.no_grad():
        for _, mine, other in pairs + heads:
            other.copy_(mine)
    batch = _batch(backbone)
    with torch.no_grad():
        assert abs(backbone.loss(batch).item() - _peft_loss(peft_model, "bert", batch).item()) > 1e-4
        for model in (backbone.model, peft_model.get_base_model()):
            table = model.bert.embeddings.position_embeddings.weight
            table.copy_(table[:1].expand_as(table))  # every position the same vector: the shift is gone
    _check_wrapped(backbone, peft_model, pairs + heads, batch)
