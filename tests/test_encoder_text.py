"""``train.encoder_text``: an encoder reads the lineage's one-segment source ("dept") or the raw fields as BERT
segments ("segments": ``[CLS] A [SEP] B [SEP]``, token types 0/1), a recorded spec field."""

from __future__ import annotations

import pytest
import torch

from bench.backbones.load import load_backbone
from bench.errors import InputError
from bench.spec import RunSpec, TrainConfig
from suites import get_task
from tests.test_backbones import attach_to, model_inputs

MRPC_ROW = {"sentence1": "He left early .", "sentence2": "He went home soon .", "label": 1, "idx": 0}


def _pair_examples():
    task = get_task("mrpc", "glue")
    return [task.format(MRPC_ROW), task.format({**MRPC_ROW, "label": 0})]


def test_encoder_text_is_part_of_the_run_id_and_checked():
    def spec(**train):
        return RunSpec("glue", "sst2", "pt", {}, "minilm", "quick", 42, train)

    assert spec(encoder_text="segments").run_id != spec().run_id
    with pytest.raises(InputError) as err:
        TrainConfig(encoder_text="pairs").validate()
    assert "train.encoder_text='pairs'" in str(err.value) and "'segments'" in str(err.value)


def test_tasks_give_the_field_values_alone_as_segments():
    example = _pair_examples()[0]
    assert example.source == "sentence1: He left early . sentence2: He went home soon ."
    assert example.segments == ("He left early .", "He went home soon .")
    wsc = get_task("wsc", "superglue").format(
        {
            "text": "Mark told Pete he was late .",
            "span1_text": "Pete",
            "span1_index": 2,
            "span2_text": "he",
            "span2_index": 3,
            "label": 1,
            "idx": 0,
        }
    )
    assert wsc.segments == (wsc.source.removeprefix("text: "),) and "# he #" in wsc.segments[0]


def test_segments_encode_a_bert_pair_with_token_types(tiny_bert_dir):
    dept = load_backbone(str(tiny_bert_dir), ["0", "1"], 32).encode(_pair_examples(), ["0", "1"])
    pair = load_backbone(str(tiny_bert_dir), ["0", "1"], 32, encoder_text="segments")
    split = pair.encode(_pair_examples(), ["0", "1"])
    sep = pair.tokenizer.sep_token_id
    assert dept.token_type_ids is None and int((dept.input_ids[0] == sep).sum()) == 1
    ids, types = split.input_ids[0], split.token_type_ids[0]
    first_sep, second_sep = (ids == sep).nonzero().flatten().tolist()
    assert types[: first_sep + 1].eq(0).all() and types[first_sep + 1 : second_sep + 1].eq(1).all()
    assert "sentence1" not in pair.tokenizer.decode(ids)
    batch = split.batch(slice(None), trim=True)
    assert batch["token_type_ids"].shape == batch["input_ids"].shape == (2, second_sep + 1)


def test_the_prompt_sits_after_cls_with_token_type_0_and_b_keeps_1(tiny_bert_dir, monkeypatch):
    backbone, _ = attach_to(load_backbone(str(tiny_bert_dir), ["0", "1"], 32, encoder_text="segments"))
    batch = backbone.encode(_pair_examples(), ["0", "1"]).batch(slice(None), trim=True)
    types = model_inputs(backbone, batch, monkeypatch)["token_type_ids"]
    assert types.shape[1] == batch["input_ids"].shape[1] + 3
    assert types[:, :4].eq(0).all()  # [CLS] and the 3 virtual tokens
    assert torch.equal(types[:, 4:], batch["token_type_ids"][:, 1:])  # the text keeps its segments


def test_non_encoders_read_the_dept_source_whatever_the_field(tiny_t5_dir):
    examples = _pair_examples()
    plain = load_backbone(str(tiny_t5_dir), ["0", "1"], 32).encode(examples, ["0", "1"])
    asked = load_backbone(str(tiny_t5_dir), ["0", "1"], 32, encoder_text="segments").encode(
        examples, ["0", "1"]
    )
    assert torch.equal(asked.input_ids, plain.input_ids) and asked.token_type_ids is None


def test_the_prompt_can_go_in_front_of_cls(tiny_bert_dir, monkeypatch):
    """``encoder_prompt_position="first"``: PEFT's placement, the pooler reads the first virtual token."""
    backbone, method = attach_to(
        load_backbone(
            str(tiny_bert_dir), ["0", "1"], 32, encoder_text="segments", encoder_prompt_position="first"
        ),
        init="normal",
    )
    batch = backbone.encode(_pair_examples(), ["0", "1"]).batch(slice(None), trim=True)
    seen = model_inputs(backbone, batch, monkeypatch)
    embeds, types = seen["inputs_embeds"], seen["token_type_ids"]
    assert torch.equal(embeds[:, :3], method.soft_prompt.expand(2, -1, -1))
    assert torch.equal(embeds[:, 3:], backbone.embed_ids(batch["input_ids"]))  # [CLS] and the text follow
    assert types[:, :3].eq(0).all() and torch.equal(types[:, 3:], batch["token_type_ids"])
    assert backbone.prompt_placement == "first"
    assert 0.5 < float(method.soft_prompt.detach().std()) < 1.5  # N(0, 1), PEFT's random init
