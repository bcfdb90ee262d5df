"""The causal-LM backbone (docs/decoder.md): loss only on the target tokens, the prompt right before the first
real token whatever the padding side, DePT's rows aligned with the real tokens, label scoring and batched
greedy generation that match single-example results."""

from __future__ import annotations

import pytest
import torch

from bench.backbones.decoder import ANSWER_CUE, DecoderBackbone
from bench.backbones.load import load_backbone
from methods.registry import build_config, get_method_class, list_methods

MAX_LENGTH = 40


class Ex:
    def __init__(self, source: str, target: str) -> None:
        self.source, self.target, self.label = source, target, int(target)


EXAMPLES = [
    Ex("sentence: a wonderful , moving film", "1"),
    Ex("sentence: dull", "0"),
    Ex("sentence: the best thing this year , by far the best", "1"),
    Ex("sentence: an utter waste of time", "0"),
]


def _backbone(model_dir, method_name: str | None = None, **overrides) -> DecoderBackbone:
    torch.manual_seed(0)
    backbone = load_backbone(str(model_dir), ["0", "1"], MAX_LENGTH)
    assert isinstance(backbone, DecoderBackbone)
    if method_name:
        cls = get_method_class(method_name)
        method = cls(build_config(method_name, overrides), backbone.dims)
        if cls.requires_sources:
            gen = torch.Generator().manual_seed(1)
            length = getattr(method.config, "num_tokens", 4)
            count = min(2, cls.max_sources or 2)
            method.load_sources([backbone.embed_random_vocab(length, gen) for _ in range(count)])
        method.initialize(backbone, torch.Generator().manual_seed(0))
        backbone.attach(method)
    backbone.train(False)
    return backbone


def _to_left_padding(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same examples, each row rotated so that its padding comes first."""
    pads = (batch["attention_mask"] == 0).sum(-1)
    width = batch["attention_mask"].shape[1]
    shift = (torch.arange(width).unsqueeze(0) - pads.unsqueeze(1)) % width
    return {k: v.gather(1, shift) for k, v in batch.items()}


def test_encoding_masks_everything_but_the_target(tiny_llama_dir):
    backbone = _backbone(tiny_llama_dir)
    split = backbone.encode(EXAMPLES, ["0", "1"])
    assert split.input_ids.shape == (4, MAX_LENGTH)
    tok = backbone.tokenizer
    for row, example in enumerate(EXAMPLES):
        labels = split.labels[row]
        target = labels[labels != -100].tolist()
        assert target == tok(" " + example.target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        prefix_len = int(((labels == -100) & split.attention_mask[row].bool()).sum())
        prefix = tok.decode(split.input_ids[row, :prefix_len])
        assert prefix.endswith(tok.decode(tok(ANSWER_CUE, add_special_tokens=False)["input_ids"]))


def test_source_is_truncated_so_cue_and_target_fit(tiny_llama_dir):
    backbone = _backbone(tiny_llama_dir)
    split = backbone.encode([Ex("sentence: " + "very " * 200 + "long", "1")], ["0", "1"])
    assert int(split.attention_mask.sum()) == MAX_LENGTH
    assert (split.labels[0] != -100).sum() >= 2  # digit + EOS survived


@pytest.mark.parametrize("method_name", list_methods())
def test_left_and_right_padding_give_the_same_loss(tiny_llama_dir, method_name):
    backbone = _backbone(tiny_llama_dir, method_name)
    with torch.no_grad():  # a non-zero DePT/EPT/ADePT update, so misaligned rows would change the loss
        for name, p in backbone.method.named_parameters():
            if name.endswith(("lora_b", "ffn_up")):  # ADePT: B of its FFN
                p.normal_(0, 0.5)
    right = backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    left = _to_left_padding(right)
    assert not torch.equal(left["input_ids"], right["input_ids"])
    with torch.no_grad():
        assert torch.allclose(backbone.loss(right), backbone.loss(left), atol=1e-5)


def test_prompt_sits_right_before_the_first_real_token_under_left_padding(tiny_llama_dir):
    backbone = _backbone(tiny_llama_dir, "pt", num_tokens=3)
    right = backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    left = _to_left_padding(right)
    embeds, mask, positions, n = backbone._inputs(left["input_ids"], left["attention_mask"])
    prompt = backbone.method.soft_prompt
    for row in range(len(EXAMPLES)):
        lead = int((left["attention_mask"][row] == 0).sum())
        assert mask[row, :lead].sum() == 0 and mask[row, lead:].all()  # pads, then prompt + text
        assert torch.equal(embeds[row, lead : lead + n], prompt)
        assert positions[row, lead] == 0 and positions[row, -1] == mask[row].sum() - 1


@pytest.mark.parametrize("method_name", ["pt", "dept", "lpt"])
def test_batched_generation_equals_one_example_at_a_time(tiny_llama_dir, method_name):
    backbone = _backbone(tiny_llama_dir, method_name, num_tokens=3)
    split = backbone.encode(EXAMPLES, ["0", "1"])
    with torch.inference_mode():
        batched = backbone.predict(split.batch(slice(None)), "generate")
        single = [backbone.predict(split.batch(slice(i, i + 1)), "generate")[0] for i in range(len(EXAMPLES))]
    assert batched == single


def test_label_scoring_matches_the_loss(tiny_llama_dir):
    """Scoring picks, per example, the label whose target tokens have the lower loss."""
    backbone = _backbone(tiny_llama_dir, "pt", num_tokens=3)
    with torch.inference_mode():
        predicted = backbone.predict(
            backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None)), "score", ["0", "1"]
        )
        for example, label in zip(EXAMPLES, predicted, strict=True):
            losses = {
                t: backbone.loss(backbone.encode([Ex(example.source, t)], ["0", "1"]).batch(slice(None)))
                for t in ("0", "1")
            }
            assert label == min(losses, key=lambda t: losses[t].item())


def test_lpt_prompt_never_sees_the_target(tiny_llama_dir):
    """LPT's generator pools layer-L_p states of the prefix only: the target tokens must not leak into a
    prompt that every position attends to. Same source, different targets -> the same prompt."""
    backbone = _backbone(tiny_llama_dir, "lpt", num_tokens=3, insert_layer=1)
    captured = []
    original = backbone.method.layer_prompt

    def spy(hidden, mask):
        out = original(hidden, mask)
        captured.append(out.detach().clone())
        return out

    backbone.method.layer_prompt = spy
    with torch.no_grad():
        for target in ("0", "1"):
            backbone.loss(backbone.encode([Ex(EXAMPLES[0].source, target)], ["0", "1"]).batch(slice(None)))
    assert torch.equal(captured[0], captured[1])
