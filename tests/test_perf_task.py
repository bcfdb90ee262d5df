"""``bench perf --task``: the real job's rows, in the loop's order, through the harness and through PEFT.

Timings are printed, never asserted; what is tested is that every variant sees the same batches (same rows,
same order, same cut), that the plain tokenisation drops the field names, and that the table and ratios come
out for a real task file.
"""

from __future__ import annotations

import json

import pytest
import torch

from bench.cli import main
from bench.perf.real_task import batch_order, plain_split

SMALL = [
    "train.max_steps=3",
    "train.eval_every=2",
    "train.max_train_samples=24",
    "train.max_eval_samples=8",
    "train.batch_size=4",
    "train.timing_warmup_steps=1",
]


@pytest.mark.slow
def test_task_mode_times_harness_and_peft_on_the_same_batches(tiny_bert_dir, data_dir, tmp_path, capsys):
    out = tmp_path / "perf.json"
    sets = [arg for item in SMALL for arg in ("--set", item)]
    args = [
        "perf",
        "--task",
        "sst2",
        "--model",
        str(tiny_bert_dir),
        "--methods",
        "pt",
        "--data-dir",
        str(data_dir),
    ]
    args += sets
    assert main([*args, "--variants", "harness,peft,peft-plain", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    rows = {r["variant"]: r for r in data["rows"]}
    assert set(rows) == {"harness", "peft", "peft-plain"}
    for row in rows.values():
        assert row["steps"] == 3 and row["batch"] == 4 and row["train_time_s"] > 0
        assert row["dev_evaluations"] == 2  # like with like: every variant evaluates at steps 2 and 3
        assert row["ms_per_step"] > 0 and row["ms_per_step_mean"] > 0
        assert row["contention"]["wall_s"] > 0
    # The twin gets the harness's own token batches (the quick preset reads the fields as BERT segments, so the
    # twin's backbone must too); the plain tokenisation of the raw field is then the same rows of tokens.
    assert rows["peft"]["tokens_per_row"] == rows["harness"]["tokens_per_row"]
    assert rows["peft-plain"]["tokens_per_row"] == rows["harness"]["tokens_per_row"]
    assert rows["peft"]["virtual_tokens"] == rows["harness"]["virtual_tokens"]
    names = {r["ratio"] for r in data["ratios"]}
    for ref in ("peft", "peft-plain"):
        for what in ("median ms/step", "mean ms/step", "train time", "peak memory"):
            assert f"pt: harness / {ref} {what}" in names
    assert "the real job's batches" in capsys.readouterr().out


def test_batch_order_is_the_trainers(tiny_bert_dir):
    """The trainer asks its split for exactly the batches ``batch_order`` gives (across an epoch boundary)."""
    from bench.backbones.base import EncodedSplit
    from bench.backbones.load import load_backbone
    from bench.spec import TrainConfig
    from bench.training.trainer import LoopInputs, train_and_evaluate
    from methods.pt import PromptTuning, PTConfig
    from suites.task import Example

    backbone = load_backbone(str(tiny_bert_dir), ["0", "1"], 16)
    backbone.attach(PromptTuning(PTConfig(num_tokens=2), backbone.dims))
    encoded = backbone.encode([Example(f"row {i}", str(i % 2), i % 2) for i in range(10)], ["0", "1"])
    seen: list[torch.Tensor] = []

    class Spy(EncodedSplit):
        def batch(self, index, trim=False):
            if isinstance(index, torch.Tensor):
                seen.append(index.clone())
            return super().batch(index, trim)

    spy = Spy(encoded.input_ids, encoded.attention_mask, encoded.labels, encoded.references)

    class Task:
        selection_metric = "accuracy"

        @staticmethod
        def label_strings():
            return ["0", "1"]

        @staticmethod
        def compute_metrics(predictions, references):
            return {"accuracy": 0.0}

    train = TrainConfig(batch_size=4, max_steps=5, warmup_steps=0, eval_every=5, max_length=16)
    train_and_evaluate(LoopInputs(backbone, Task(), spy, encoded, None, train, 7, torch.device("cpu")))
    expected = batch_order(10, 4, 5, 7)
    assert len(seen) == 5 and all(torch.equal(a, b) for a, b in zip(seen, expected, strict=True))


def test_plain_split_tokenises_the_raw_fields(tiny_bert_dir):
    from transformers import AutoTokenizer

    from suites.task import Example

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert_dir))

    class Pair:
        source_fields = ("sentence1", "sentence2")

    rows = [Example("sentence1: a b sentence2: c", "1", 1, fields={"sentence1": "a b", "sentence2": "c"})]
    split = plain_split(Pair(), rows, tokenizer, 16, torch.tensor([1]))
    assert (
        split.input_ids[0].tolist() == tokenizer("a b", "c", max_length=16, padding="max_length")["input_ids"]
    )
    assert split.labels.tolist() == [1] and split.references == ["1"]
