"""``bench export``: a finished run as a PEFT adapter that ``PeftModel.from_pretrained`` loads and that predicts
the run's own test rows exactly (every method with a PEFT twin, tiny T5 and tiny BERT, real RTE), as a
self-describing folder that ``bench eval FOLDER`` re-evaluates, and bad input as one line with exit code 2."""

from __future__ import annotations

import json

import pytest
import torch

from bench.backbones.seq2seq_scoring import label_scores
from bench.cli import main
from bench.export.peft_predict import load_adapter, peft_label_scores, peft_predictions
from bench.planning.inputs import prepare_data
from bench.run.reeval import rebuild
from tests.test_artifacts_eval import run_worker, train_for

pytestmark = pytest.mark.slow  # each case trains a tiny run and loads PEFT (seconds)

FIRST = {"encoder_prompt_position": "first"}  # PEFT's placement on an encoder (in front of [CLS])
TWINS = {  # method -> (method config, PEFT type)
    "pt": ({"num_tokens": "4"}, "PROMPT_TUNING"),
    "ptuning": ({"num_tokens": "4", "hidden_size": "8"}, "P_TUNING"),
    "mpt": ({"num_tokens": "4", "rank": "2", "sources": "none"}, "MULTITASK_PROMPT_TUNING"),
    "lora": ({"rank": "2", "alpha": "4", "targets": "q,v"}, "LORA"),
    "residual_pt": ({"num_tokens": "4"}, "PROMPT_TUNING"),
    "dpt": ({"num_tokens": "4"}, "PROMPT_TUNING"),
    "ulpt": ({"num_tokens": "4"}, "PROMPT_TUNING"),
    "xprompt": ({"num_tokens": "4"}, "PROMPT_TUNING"),
}


def _finished(family, method, request, make_spec, tmp_path, **train):
    model_dir = request.getfixturevalue(f"tiny_{family}_dir")
    config = TWINS[method][0] if method in TWINS else None
    spec = make_spec(
        model_dir, method=method, method_config=config, train={**train_for(model_dir), **FIRST, **train}
    )
    out = tmp_path / "results"
    record = run_worker(spec, out)
    assert record["status"] == "ok", record["error"]
    return spec, out, record


@pytest.mark.parametrize("family", ["t5", "bert"])
@pytest.mark.parametrize("method", sorted(TWINS))
def test_peft_adapter_predicts_the_runs_test_rows(family, method, request, make_spec, tmp_path):
    spec, out, record = _finished(family, method, request, make_spec, tmp_path)
    adapter = tmp_path / "adapter"
    assert main(["export", spec.run_id, "--out", str(out), "--to", str(adapter), "--format", "peft"]) == 0
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == TWINS[method][1]
    assert config["base_model_name_or_path"] == str(request.getfixturevalue(f"tiny_{family}_dir"))

    # PEFT's own loader on a fresh base, the run's test rows, the harness's scoring of PEFT's outputs
    train = spec.train_config()
    task, _, _, test, _ = prepare_data(spec, train)
    labels = task.label_strings()
    backbone, peft_model = load_adapter(adapter, spec.model, labels, train)
    split = backbone.encode(test, labels)
    predicted = peft_predictions(backbone, peft_model, split, labels, train.eval_mode)
    assert predicted == record["predictions"]["test"]["predicted"]
    if family == "t5":  # the tiny random T5 predicts one label whatever its adapter: compare the label scores
        _assert_same_scores(record, out, backbone, peft_model, split, labels)


def _assert_same_scores(record, out, backbone, peft_model, split, labels) -> None:
    """T5: PEFT's summed label log-probabilities ``[N, K]`` against the harness's on the rebuilt run, and
    against PEFT's own with the adapter disabled (the adapter must move them, or the comparison is empty)."""
    ours, _, _, _, _ = rebuild(record, out)
    batch = split.batch(slice(None))
    with torch.no_grad():
        enc, mask = ours.run_encoder(batch["input_ids"], batch["attention_mask"])
        expected = label_scores(ours, enc, mask, labels)
    theirs = peft_label_scores(backbone, peft_model, batch, labels)
    err = float((expected - theirs).abs().max())
    assert err <= 1e-4 * float(expected.abs().max()), err
    with peft_model.disable_adapter():
        plain = peft_label_scores(backbone, peft_model, batch, labels)
    assert float((plain - theirs).abs().max()) > 100 * err + 1e-6, "the adapter does not move the scores"
