"""``bench export``: a finished run as a PEFT adapter that ``PeftModel.from_pretrained`` loads and that predicts
the run's own test rows exactly (every method with a PEFT twin, tiny T5 and tiny BERT, LoRA also on a tiny
Llama, real RTE), as a
self-describing folder that ``bench eval FOLDER`` re-evaluates, and bad input as one line with exit code 2."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

from bench.backbones.seq2seq_scoring import label_scores
from bench.cli import main
from bench.export.peft_predict import forward_inputs, load_adapter, peft_label_scores, peft_predictions
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
    "prefix": ({"num_tokens": "4", "hidden_size": "8"}, "PREFIX_TUNING"),
}
ENCODER_ONLY = {"prefix"}  # PEFT's seq2seq prefix reaches only T5's decoder: refused there (tested below)
CASES = [(m, f) for m in sorted(TWINS) for f in ("t5", "bert") if f == "bert" or m not in ENCODER_ONLY]
CASES.append(("lora", "llama"))  # a causal LM: LoRA only (PEFT places a prompt elsewhere, tested below)


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


@pytest.mark.parametrize(("method", "family"), CASES)
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
    # Predictions can agree by luck (the tiny random T5 predicts one label whatever its prompt): the scores
    # behind them must agree too.
    _assert_same_scores(record, out, backbone, peft_model, split, labels)


def _scores(backbone, peft_model, batch, labels) -> torch.Tensor:
    """PEFT's scores: T5's summed label log-probabilities ``[N, K]``, BERT's classifier logits ``[N, K]``, a
    causal LM's next-token logits ``[N, s, V]``."""
    if backbone.family == "decoder":
        with torch.no_grad():
            return peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    if backbone.family == "seq2seq":
        return peft_label_scores(backbone, peft_model, batch, labels)
    extra = {"token_type_ids": batch["token_type_ids"]} if batch.get("token_type_ids") is not None else {}
    with torch.no_grad():
        return peft_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
            **extra, **forward_inputs(peft_model, batch["input_ids"]),
        ).logits  # fmt: skip


@contextlib.contextmanager
def _adapter_zeroed(peft_model):
    """The adapter's own tensors (prompt or prefix table, LoRA's B) zeroed, the classifier kept. PEFT's
    ``disable_adapter`` cannot be used: it fails on prompt learning with a classifier in PEFT 0.22."""
    params = [p for n, p in peft_model.named_parameters() if "prompt_encoder" in n or "lora_B" in n]
    assert params, "no adapter tensors found"
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p in params:
            p.zero_()
    try:
        yield
    finally:
        with torch.no_grad():
            for p, value in zip(params, saved, strict=True):
                p.copy_(value)


def _assert_same_scores(record, out, backbone, peft_model, split, labels) -> None:
    """PEFT's scores against the harness's on the rebuilt run (T5: label scoring; BERT, causal LM: logits), and
    against PEFT's own with the adapter zeroed (the adapter must move them, or the comparison is empty)."""
    ours, _, _, _, _ = rebuild(record, out)
    batch = split.batch(slice(None))
    with torch.no_grad():
        if ours.family == "decoder":  # the run's model, LoRA injected by ptbench
            expected = ours.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        elif ours.family == "seq2seq":
            enc, mask = ours.run_encoder(batch["input_ids"], batch["attention_mask"])
            expected = label_scores(ours, enc, mask, labels)
        else:
            expected = ours._forward(batch, None).logits
    theirs = _scores(backbone, peft_model, batch, labels)
    err = float((expected - theirs).abs().max())
    assert err <= 1e-4 * float(expected.abs().max()), err
    with _adapter_zeroed(peft_model):
        plain = _scores(backbone, peft_model, batch, labels)
    assert float((plain - theirs).abs().max()) > 100 * err + 1e-6, "the adapter does not move the scores"


@pytest.mark.parametrize(
    ("family", "method", "why"),
    [
        ("t5", "prefix", "PEFT has no twin of prefix on a seq2seq backbone"),
        ("llama", "pt", "PEFT puts the prompt in front of the padding"),
    ],
)
def test_runs_peft_would_predict_otherwise_are_refused(
    family, method, why, request, make_spec, tmp_path, capsys
):
    spec, out, _ = _finished(family, method, request, make_spec, tmp_path)
    capsys.readouterr()
    target = tmp_path / "adapter"
    assert main(["export", spec.run_id, "--out", str(out), "--to", str(target), "--format", "peft"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error:") and why in err and err.count("\n") == 1, err
    assert not target.exists()
