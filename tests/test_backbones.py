"""Family-specific placement and evaluation: T5 prepends the prompt to the encoder input, BERT inserts it
right after [CLS]; label scoring picks a label string; records can be loaded from disk."""

from __future__ import annotations

import torch

from bench.backbones.load import load_backbone
from methods.registry import build_config, get_method_class
from tests.test_methods_train import EXAMPLES


def _attach(model_dir, name="pt", **overrides):
    return attach_to(load_backbone(str(model_dir), ["0", "1"], 16), name, **overrides)


def attach_to(backbone, name="pt", **overrides):
    """``backbone`` with method ``name`` (l=3 unless overridden) initialised from seed 0 and attached."""
    method = get_method_class(name)(build_config(name, {"num_tokens": "3", **overrides}), backbone.dims)
    method.initialize(backbone, torch.Generator().manual_seed(0))
    backbone.attach(method)
    return backbone, method


def model_inputs(backbone, batch, monkeypatch) -> dict:
    """The keyword arguments the backbone's model is called with for the training loss of ``batch``."""
    seen = {}
    original = backbone.model.forward

    def spy(**kwargs):
        seen.update(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(backbone.model, "forward", spy)
    backbone.loss(batch)
    return seen


def test_t5_prompt_in_front_of_encoder_input(tiny_t5_dir):
    backbone, method = _attach(tiny_t5_dir)
    batch = backbone.encode(EXAMPLES[:2], ["0", "1"]).batch(slice(None))
    out, mask = backbone.run_encoder(batch["input_ids"], batch["attention_mask"])
    assert out.last_hidden_state.shape[1] == 3 + 16
    assert mask[:, :3].eq(1).all() and torch.equal(mask[:, 3:], batch["attention_mask"])


def test_bert_prompt_after_cls(tiny_bert_dir, monkeypatch):
    backbone, method = _attach(tiny_bert_dir)
    batch = backbone.encode(EXAMPLES[:2], ["0", "1"]).batch(slice(None))
    seen = model_inputs(backbone, batch, monkeypatch)
    embeds, mask = seen["inputs_embeds"], seen["attention_mask"]
    words = backbone.embed_ids(batch["input_ids"])
    assert embeds.shape[1] == 16 + 3
    assert torch.equal(embeds[:, 0], words[:, 0])  # the real [CLS] stays at position 0
    assert torch.equal(embeds[:, 1:4], method.soft_prompt.expand(2, -1, -1))
    assert torch.equal(embeds[:, 4:], words[:, 1:])
    assert mask[:, 1:4].eq(1).all() and seen["token_type_ids"].eq(0).all()


def test_dept_offset_added_to_token_embeddings(tiny_t5_dir):
    backbone, method = _attach(tiny_t5_dir, "dept", rank="2")
    with torch.no_grad():
        method.decomposition.lora_b.fill_(0.5)
    ids = torch.randint(0, 1000, (2, 16))
    expected = backbone.embed_ids(ids) + method.decomposition.offset(16)
    embeds, prompt, _ = backbone.prompted_inputs(ids, torch.ones_like(ids))
    torch.testing.assert_close(embeds, expected)
    assert prompt.shape == (2, 3, backbone.dims.hidden_size)


def test_t5_score_and_generate_modes(tiny_t5_dir):
    backbone, _ = _attach(tiny_t5_dir)
    batch = backbone.encode(EXAMPLES[:4], ["0", "1"]).batch(slice(None))
    with torch.inference_mode():
        scored = backbone.predict(batch, "score", ["0", "1"])
        generated = backbone.predict(batch, "generate", ["0", "1"])
    assert len(scored) == len(generated) == 4
    assert set(scored) <= {"0", "1"}
    assert all(isinstance(g, str) for g in generated)


def test_an_encoder_checkpoint_with_another_label_count_gets_a_fresh_classifier(tiny_bert_dir):
    """tiny BERT is saved with a 2-label classifier: a 3-label task (MNLI, CB) and regression (STS-B) load it
    with a new head of their own size, the encoder's weights kept; the same label count keeps the saved head."""
    from safetensors.torch import load_file

    saved = load_file(str(tiny_bert_dir / "model.safetensors"))
    for labels, outputs in ((["a", "b", "c"], 3), (None, 1), (["0", "1"], 2)):
        model = load_backbone(str(tiny_bert_dir), labels, 16).model
        assert model.classifier.weight.shape[0] == outputs
        word = next(k for k in saved if k.endswith("word_embeddings.weight"))
        assert torch.equal(model.state_dict()[word], saved[word])
    assert torch.equal(model.classifier.weight, saved["classifier.weight"])
