"""Prefix tuning's injection into attention (methods/prefix.py) on tiny T5, BERT and Llama.

An empty prefix leaves every output exactly as the plain model's (so masks, T5's position bias and the explicit
causal mask are extended correctly), a real prefix changes it, on Llama the injection equals the plain model
run with the prefix in a pre-filled KV cache (PEFT's semantics), gradients reach only the prefix encoder, and
the saved prefixes reproduce the loss without the MLP."""

from __future__ import annotations

import pytest
import torch

from bench.backbones.load import load_backbone
from methods.prefix import PrefixTuning, attention_modules
from methods.registry import build_config
from tests.test_methods_train import EXAMPLES

MAX_LENGTH = 24


def _backbone(model_dir, prefix: bool = True, kernel: str | None = None, **overrides):
    torch.manual_seed(0)
    backbone = load_backbone(str(model_dir), ["0", "1"], MAX_LENGTH)
    if kernel:
        backbone.model.set_attn_implementation(kernel)
    if prefix:
        method = PrefixTuning(build_config("prefix", {"num_tokens": "3", **overrides}), backbone.dims)
        backbone.attach(method)
    backbone.train(False)
    return backbone


def _batch(backbone):
    return backbone.encode(EXAMPLES[:4], ["0", "1"]).batch(slice(None))


def _empty_prefix(method: PrefixTuning) -> None:
    """Make every module's prefix zero-length (the whole injection path still runs)."""
    empty = torch.zeros(method.heads, 0, method.head_dim)
    method.prefix_kv = lambda index: (empty, empty)


@pytest.mark.parametrize("family", ["t5", "bert", "llama"])
def test_empty_prefix_equals_plain_model_and_real_prefix_changes_it(request, family):
    model_dir = request.getfixturevalue(f"tiny_{family}_dir")
    plain, prefixed = _backbone(model_dir, prefix=False), _backbone(model_dir)
    batch = _batch(plain)
    with torch.no_grad():
        reference = plain.loss(batch)
        changed = prefixed.loss(batch)
        _empty_prefix(prefixed.method)
        same = prefixed.loss(batch)
    assert torch.allclose(same, reference, atol=1e-6), (same, reference)
    assert not torch.allclose(changed, reference, atol=1e-3)
    if family != "bert":  # greedy decoding (with its KV cache) through the same path
        with torch.no_grad():
            assert prefixed.predict(batch, "generate") == plain.predict(batch, "generate")


@pytest.mark.parametrize("family", ["t5", "bert", "llama"])
def test_which_modules_get_prefixes(request, family):
    backbone = _backbone(request.getfixturevalue(f"tiny_{family}_dir"))
    names = backbone.method.module_names
    assert len(names) == {"t5": 4, "bert": 2, "llama": 2}[family]  # every self-attention of 2-layer stacks
    if family == "t5":
        assert all("SelfAttention" in n for n in names)
        assert len(attention_modules(backbone.model, cross_attention=True)) == 6
    # Only the prefixed modules dispatch to the prefix kernel; the stacks' config is untouched.
    modules = dict(backbone.model.named_modules())
    assert {modules[n].config._attn_implementation for n in names} == {"ptbench_prefix"}
    assert backbone.model.config._attn_implementation in ("eager", "sdpa")


@pytest.mark.parametrize("family", ["t5", "bert", "llama"])
def test_eager_and_sdpa_kernels_agree(request, family):
    """Eager gets materialised float masks, SDPA boolean or no mask at all (then the prefix kernel builds the
    causal one): both must give the same loss, generated text included, with a real prefix."""
    model_dir = request.getfixturevalue(f"tiny_{family}_dir")
    eager, sdpa = _backbone(model_dir, kernel="eager"), _backbone(model_dir, kernel="sdpa")
    for batch in (_batch(eager), {k: v[:1] for k, v in _batch(eager).items()}):
        with torch.no_grad():
            assert torch.allclose(eager.loss(batch), sdpa.loss(batch), atol=1e-5)
            if family != "bert":
                assert eager.predict(batch, "generate") == sdpa.predict(batch, "generate")


@pytest.mark.parametrize("padded", [True, False])
def test_llama_injection_equals_a_prefilled_cache(tiny_llama_dir, padded):
    """PEFT's semantics: the prefix as a prefilled key/value cache (keys unrotated), every query may attend to it.
    Without padding the model passes no mask to SDPA, so the prefix kernel's own causal mask is checked."""
    from transformers import DynamicCache

    plain, prefixed = _backbone(tiny_llama_dir, prefix=False), _backbone(tiny_llama_dir)
    method = prefixed.method
    batch = _batch(plain)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if not padded:
        width = int(mask.sum(-1).min())
        ids, mask = ids[:, :width], mask[:, :width]
    inner = plain.model.get_decoder()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        ours = prefixed.model.get_decoder()(input_ids=ids, attention_mask=mask, position_ids=positions)
        cache = DynamicCache(config=plain.model.config)
        for index in range(method.num_modules):
            k, v = method.prefix_kv(index)
            cache.update(k.expand(len(ids), -1, -1, -1), v.expand(len(ids), -1, -1, -1), index)
        full_mask = torch.cat([mask.new_ones(len(ids), 3), mask], dim=1)
        ref = inner(input_ids=ids, attention_mask=full_mask, position_ids=positions, cache=cache)
    real = mask.bool()
    assert torch.allclose(ours.last_hidden_state[real], ref.last_hidden_state[real], atol=1e-5)


@pytest.mark.parametrize("projection", ["true", "false"])
def test_gradients_reach_only_the_prefix_and_saved_prefix_reproduces_the_loss(tiny_t5_dir, projection):
    backbone = _backbone(tiny_t5_dir, projection=projection, hidden_size="8")
    method = backbone.method
    batch = _batch(backbone)
    backbone.loss(batch).backward()
    params = list(method.encoder.parameters())
    assert params and all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    assert all(p.grad is None for p in backbone.model.parameters())
    # Each module's slice is the PEFT PrefixEncoder's output, read as PEFT reads it.
    with torch.no_grad():
        full = method.encoder(method.indices).view(3, method.num_modules * 2, method.heads, method.head_dim)
        k, v = method.prefix_kv(1)
        assert torch.allclose(k, full[:, 2].transpose(0, 1)) and torch.allclose(v, full[:, 3].transpose(0, 1))
        loss = backbone.loss(batch)
    state = method.saved_state()
    assert list(state) == ["prefix"] and state["prefix"].shape == (3, method.counts().saved_params // 3)
    fresh = _backbone(tiny_t5_dir, projection=projection, hidden_size="8")
    fresh.method.load_saved_state(state)
    with torch.no_grad():
        assert torch.allclose(fresh.loss(batch), loss, atol=1e-6)
        assert fresh.predict(batch, "score", ["0", "1"]) == backbone.predict(batch, "score", ["0", "1"])


def test_counts_and_record_on_bert(tiny_bert_dir):
    method = _backbone(tiny_bert_dir, projection="false").method
    # 2 layers, H·d_h = 32: l·M·2k = 3·2·64 trainable and saved
    assert method.counts().trainable_params == method.counts().saved_params == 3 * 2 * 64
    assert method.record()["prefix_modules"] == 2


@pytest.mark.parametrize("bad", [{"num_tokens": "0"}, {"hidden_size": "0"}, {"lr": "0"}])
def test_bad_config(tiny_t5_dir, bad):
    backbone = load_backbone(str(tiny_t5_dir), ["0", "1"], MAX_LENGTH)
    with pytest.raises(ValueError, match=next(iter(bad))):
        PrefixTuning(build_config("prefix", bad), backbone.dims)


def test_t5_attention_by_hand(tiny_t5_dir):
    """One T5 encoder self-attention against the equation: keys [P^K ; K], zero bias on prefix columns, T5's
    relative bias on text columns, no 1/sqrt(d_h) scaling."""
    backbone = _backbone(tiny_t5_dir)
    attention = backbone.model.encoder.block[0].layer[0].SelfAttention
    hidden = torch.randn(2, 5, 32)
    with torch.no_grad():
        out = attention(hidden)[0]
        heads = lambda x: x.view(2, 5, 2, 16).transpose(1, 2)  # noqa: E731  [B, H, s, d_h]
        q, k, v = heads(attention.q(hidden)), heads(attention.k(hidden)), heads(attention.v(hidden))
        pk, pv = backbone.method.prefix_kv(0)
        keys = torch.cat([pk.expand(2, -1, -1, -1), k], dim=2)
        values = torch.cat([pv.expand(2, -1, -1, -1), v], dim=2)
        bias = torch.cat([torch.zeros(1, 2, 5, 3), attention.compute_bias(5, 5)], dim=-1)
        weights = (q @ keys.transpose(-1, -2) + bias).softmax(-1)
        expected = attention.o((weights @ values).transpose(1, 2).reshape(2, 5, 32))
    assert torch.allclose(out, expected, atol=1e-5)


def test_trainer_best_state_and_saved_state_round_trip(tiny_model_dir):
    """The trainer's best-checkpoint state (method state dict) and the saved prefixes restore the loss."""
    import tests.test_params_wrap as wrap_tests

    wrap_tests.test_saved_and_best_state_round_trip(tiny_model_dir, "prefix")
