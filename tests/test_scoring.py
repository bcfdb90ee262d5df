"""Label scoring in one pass (docs/decoder.md#label-scoring) gives the per-label loop's log-probabilities and
predictions: on a tiny Llama and a tiny T5, bare and with methods that change the prefix (PT, DePT's
position-wise offsets), the keys/values of every layer (prefix tuning) and a middle layer (LPT), for the real
label sets of SST-2 (2), CB (3) and STS-B (26, several tokens each)."""

from __future__ import annotations

import pytest
import torch

from bench.backbones import decoder_scoring, seq2seq_scoring
from bench.backbones.label_tree import label_tree
from bench.backbones.load import load_backbone
from methods.registry import build_config, get_method_class
from suites import get_task

TASKS = {"sst2": "glue", "cb": "superglue", "stsb": "glue"}
METHODS = [None, "pt", "dept", "prefix", "lpt"]
MAX_LENGTH = 48
SOURCES = [
    "sentence: a wonderful , moving film",
    "sentence: dull",
    "premise: the best thing this year , by far the best . hypothesis: it was good",
    "sentence: an utter waste of time and money , and of everyone 's patience",
    "sentence1: a man plays a guitar . sentence2: a man is playing music",
]


class Ex:
    def __init__(self, source: str, target: str) -> None:
        self.source, self.target, self.label = source, target, 0


def _labels(task: str) -> list[str]:
    return get_task(task, TASKS[task]).label_strings()


def _backbone(model_dir, method_name: str | None, labels: list[str]):
    torch.manual_seed(0)
    backbone = load_backbone(str(model_dir), labels, MAX_LENGTH)
    if method_name:
        method = get_method_class(method_name)(build_config(method_name, {"num_tokens": "3"}), backbone.dims)
        method.initialize(backbone, torch.Generator().manual_seed(0))
        backbone.attach(method)
        with torch.no_grad():  # DePT's B starts at zero: make its position-wise offsets count
            for name, p in method.named_parameters():
                if name.endswith("lora_b"):
                    p.normal_(0, 0.5)
    backbone.train(False)
    return backbone


def _batch(backbone, labels: list[str]) -> dict[str, torch.Tensor]:
    examples = [Ex(s, labels[i % len(labels)]) for i, s in enumerate(SOURCES)]
    return backbone.encode(examples, labels).batch(slice(None), trim=True)


def _check(new: torch.Tensor, ref: torch.Tensor, predicted: list[str], labels: list[str]) -> None:
    assert new.shape == ref.shape == (len(SOURCES), len(labels))
    assert torch.allclose(new, ref, atol=1e-4, rtol=1e-5), (new - ref).abs().max()
    assert predicted == [labels[i] for i in ref.argmax(1).tolist()]
    assert ref.std(1).min() > 1e-3  # the labels' scores differ: a wrong row would show


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("method_name", METHODS)
def test_decoder_scoring_equals_the_per_label_loop(tiny_llama_dir, method_name, task):
    labels = _labels(task)
    backbone = _backbone(tiny_llama_dir, method_name, labels)
    batch = _batch(backbone, labels)
    with torch.inference_mode():
        new = decoder_scoring.label_scores(backbone, batch, labels)
        ref = decoder_scoring.reference_scores(backbone, batch, labels)
        predicted = backbone.predict(batch, "score", labels)
    _check(new, ref, predicted, labels)


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("method_name", METHODS)
def test_t5_scoring_equals_the_per_label_loop(tiny_t5_dir, method_name, task):
    labels = _labels(task)
    backbone = _backbone(tiny_t5_dir, method_name, labels)
    batch = _batch(backbone, labels)
    with torch.inference_mode():
        enc, mask = backbone.run_encoder(batch["input_ids"], batch["attention_mask"])
        new = seq2seq_scoring.label_scores(backbone, enc, mask, labels)
        ref = seq2seq_scoring.reference_scores(backbone, enc, mask, labels)
        predicted = backbone.predict(batch, "score", labels)
    _check(new, ref, predicted, labels)


@pytest.mark.parametrize("method_name", ["pt", "lpt"])
def test_labels_of_different_token_lengths(tiny_llama_dir, tiny_t5_dir, method_name):
    """Label strings of 1 to 4 tokens, two sharing their first token: every length is summed in full."""
    labels = ["yes", "no way", "no way at all", "maybe so"]
    for model_dir in (tiny_llama_dir, tiny_t5_dir):
        backbone = _backbone(model_dir, method_name, labels)
        batch = _batch(backbone, labels)
        with torch.inference_mode():
            if backbone.family == "decoder":
                new = decoder_scoring.label_scores(backbone, batch, labels)
                ref = decoder_scoring.reference_scores(backbone, batch, labels)
            else:
                enc, mask = backbone.run_encoder(batch["input_ids"], batch["attention_mask"])
                new = seq2seq_scoring.label_scores(backbone, enc, mask, labels)
                ref = seq2seq_scoring.reference_scores(backbone, enc, mask, labels)
            predicted = backbone.predict(batch, "score", labels)
        _check(new, ref, predicted, labels)


def test_decoder_scoring_is_one_forward_of_the_shared_tree(tiny_llama_dir):
    """STS-B's 26 labels share their leading tokens: one layer stack call, on fewer positions than the labels'
    tokens put end to end."""
    labels = _labels("stsb")
    backbone = _backbone(tiny_llama_dir, "pt", labels)
    targets = [backbone._target_ids(t)[:-1] for t in labels]
    tree = label_tree(targets)
    assert len(tree) < sum(len(t) for t in targets)
    assert len(tree) == len({tuple(t[: m + 1]) for t in targets for m in range(len(t))})
    calls = []
    original = backbone._run_layers

    def counted(*args, **kwargs):
        calls.append(args[1].shape)
        return original(*args, **kwargs)

    backbone._run_layers = counted
    batch = _batch(backbone, labels)
    with torch.inference_mode():
        decoder_scoring.label_scores(backbone, batch, labels)
    width = int(((batch["labels"] == -100) & batch["attention_mask"].bool()).sum(-1).max())
    assert calls == [torch.Size([len(SOURCES), 3 + width + len(tree), backbone.dims.hidden_size])]


def test_tree_visibility_follows_ancestors():
    tree = label_tree([[5, 6, 7], [5, 6, 8], [9]])
    assert tree.tokens.tolist() == [5, 6, 7, 8, 9]
    assert tree.depth.tolist() == [0, 1, 2, 2, 0]
    assert tree.nodes == [[0, 1, 2], [0, 1, 3], [4]]
    assert tree.visible[3].tolist() == [True, True, False, True, False]
    chain = label_tree([[5, 6], [5, 7]], share=False)
    assert chain.tokens.tolist() == [5, 6, 5, 7] and chain.nodes == [[0, 1], [2, 3]]
    assert chain.visible[3].tolist() == [False, False, True, True]
