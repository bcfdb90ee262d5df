"""LPT's layer path on tiny T5 and BERT: the split forward is the plain forward when the prompt is masked out,
no gradient reaches below the insertion layer, and prediction runs (generate and score on T5)."""

from __future__ import annotations

import pytest
import torch

from bench.backbones.load import load_backbone
from methods.registry import build_config, get_method_class
from tests.test_methods_train import EXAMPLES

LENGTH = 16


def _attach(model_dir, **overrides):
    torch.manual_seed(0)
    backbone = load_backbone(str(model_dir), ["0", "1"], LENGTH)
    config = build_config("lpt", {"num_tokens": "3", "bottleneck": "8", "dropout": "0.0", **overrides})
    method = get_method_class("lpt")(config, backbone.dims)
    method.initialize(backbone, torch.Generator().manual_seed(0))
    backbone.attach(method)
    return backbone, method


def _batch(backbone):
    return backbone.encode(EXAMPLES[:4], ["0", "1"]).batch(slice(None))


def _mask_prompt_out(backbone, monkeypatch):
    """Splice the prompt in as usual but give its positions mask 0, so no text position can attend to it."""
    original = backbone.insert_layer_prompt

    def masked(hidden, mask, position):
        out, new_mask, n = original(hidden, mask, position)
        new_mask = new_mask.clone()
        new_mask[:, position : position + n] = 0
        return out, new_mask, n

    monkeypatch.setattr(backbone, "insert_layer_prompt", masked)


def test_t5_split_forward_equals_plain_encoder_when_prompt_masked(tiny_t5_dir, monkeypatch):
    """Checks the no-grad lower blocks, the bias recomputed for l+s with the text shifted by l, the upper
    blocks and the final norm: the text positions must match the unprompted encoder exactly."""
    backbone, method = _attach(tiny_t5_dir)
    batch = _batch(backbone)
    backbone.train(False)
    plain = backbone.model.get_encoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    _mask_prompt_out(backbone, monkeypatch)
    out, mask = backbone.run_encoder(batch["input_ids"], batch["attention_mask"])
    assert out.last_hidden_state.shape[1] == 3 + LENGTH and mask.shape[1] == 3 + LENGTH
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(
        out.last_hidden_state[:, 3:][real], plain.last_hidden_state[real], atol=1e-6, rtol=1e-6
    )


def test_t5_prompt_changes_the_encoder_and_mask_covers_it(tiny_t5_dir):
    backbone, _ = _attach(tiny_t5_dir)
    batch = _batch(backbone)
    backbone.train(False)
    plain = backbone.model.get_encoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    out, mask = backbone.run_encoder(batch["input_ids"], batch["attention_mask"])
    assert mask[:, :3].eq(1).all() and torch.equal(mask[:, 3:], batch["attention_mask"])
    assert not torch.allclose(out.last_hidden_state[:, 3:], plain.last_hidden_state, atol=1e-4)


def test_bert_split_forward_equals_plain_model_when_prompt_masked(tiny_bert_dir, monkeypatch):
    backbone, _ = _attach(tiny_bert_dir, pool="first")
    batch = _batch(backbone)
    backbone.train(False)
    plain = backbone._forward(batch, None).logits  # the input-method path with no prompt: the plain model
    _mask_prompt_out(backbone, monkeypatch)
    late = backbone._forward_late(batch)
    torch.testing.assert_close(late, plain, atol=1e-6, rtol=1e-6)


def test_bert_prompt_goes_after_cls(tiny_bert_dir, monkeypatch):
    backbone, method = _attach(tiny_bert_dir)
    batch = _batch(backbone)
    seen = {}
    original = backbone.insert_layer_prompt

    def spy(hidden, mask, position):
        out = original(hidden, mask, position)
        seen.update(position=position, before=hidden, after=out[0], mask=out[1])
        return out

    monkeypatch.setattr(backbone, "insert_layer_prompt", spy)
    backbone.loss(batch)
    assert seen["position"] == 1
    assert torch.equal(seen["after"][:, 0], seen["before"][:, 0])  # [CLS] stays at position 0
    assert torch.equal(seen["after"][:, 4:], seen["before"][:, 1:])
    assert seen["mask"][:, 1:4].eq(1).all()


@pytest.mark.parametrize("generator", ["npg", "mppg", "appg"])
def test_no_gradient_below_the_insertion_layer(tiny_model_dir, monkeypatch, generator):
    backbone, method = _attach(tiny_model_dir, generator=generator)
    for p in backbone.model.parameters():  # let every backbone tensor ask for grad, to see which get one
        p.requires_grad_(True)
    seen = {}
    original = method.layer_prompt

    def spy(hidden, mask):
        seen["hidden"] = hidden
        return original(hidden, mask)

    monkeypatch.setattr(method, "layer_prompt", spy)
    backbone.loss(_batch(backbone)).backward()
    assert seen["hidden"].grad_fn is None and not seen["hidden"].requires_grad
    lp = method.insert_layer
    if backbone.family == "seq2seq":
        blocks = backbone.model.get_encoder().block
        below, above = list(blocks[:lp]), list(blocks[lp:])
    elif backbone.family == "decoder":  # the input embedding is tied to the LM head above: not "below"
        layers = backbone.model.get_decoder().layers
        below, above = list(layers[:lp]), list(layers[lp:])
    else:
        base = backbone.model.base_model
        below, above = [base.embeddings, *base.encoder.layer[:lp]], list(base.encoder.layer[lp:])
    # Block 0 of T5 also owns the bias table reused above L_p (frozen in real runs); skip that one tensor.
    grads_below = [
        n
        for m in below
        for n, p in m.named_parameters()
        if p.grad is not None and "relative_attention" not in n
    ]
    assert not grads_below, f"parameters below L_p got gradients: {grads_below[:3]}"
    assert all(p.grad is not None for m in above for p in m.parameters()), "layers above L_p got no gradient"
    assert all(p.grad is not None for p in method.parameters())


def test_record_shows_the_saving(tiny_t5_dir):
    _, method = _attach(tiny_t5_dir)
    rec = method.record()
    assert rec["insert_layer"] == 1 and rec["layers_without_grad"] == 1 and rec["layers_with_prompt"] == 1
    assert rec["virtual_tokens_above_insert"] == 3 == method.num_virtual_tokens


@pytest.mark.parametrize("mode", ["generate", "score"])
def test_t5_predictions_run(tiny_t5_dir, mode):
    backbone, _ = _attach(tiny_t5_dir)
    backbone.train(False)
    with torch.no_grad():
        preds = backbone.predict(_batch(backbone), mode=mode, label_strings=["0", "1"])
    assert len(preds) == 4 and all(isinstance(p, str) for p in preds)
    if mode == "score":
        assert set(preds) <= {"0", "1"}


def test_bert_predictions_run(tiny_bert_dir):
    backbone, _ = _attach(tiny_bert_dir)
    backbone.train(False)
    with torch.no_grad():
        preds = backbone.predict(_batch(backbone))
    assert len(preds) == 4 and set(preds) <= {"0", "1"}


def test_insert_layer_beyond_the_stack_is_rejected(tiny_t5_dir):
    with pytest.raises(ValueError, match="insert_layer=2 must be between 1 and 1"):
        _attach(tiny_t5_dir, insert_layer="2")
