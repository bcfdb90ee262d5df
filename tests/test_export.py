"""``bench export``: a finished run as a PEFT adapter that ``PeftModel.from_pretrained`` loads and that predicts
the run's own test rows exactly (every method with a PEFT twin on tiny T5, BERT and Llama, real RTE; both
scoring modes; STS-B), the causal LM's calling convention shown necessary, as a self-describing folder that
``bench eval FOLDER`` re-evaluates, and bad input as one line with exit code 2."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

from bench.backbones.decoder_scoring import label_scores as decoder_scores
from bench.backbones.seq2seq_scoring import label_scores
from bench.cli import main
from bench.export.peft_decoder import decoder_label_scores, extra_inputs
from bench.export.peft_predict import load_adapter, peft_label_scores, peft_predictions
from bench.planning.inputs import prepare_data
from bench.run.reeval import rebuild
from tests.conftest import _save_tiny
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
NOT_T5 = {"prefix"}  # PEFT's seq2seq prefix reaches only T5's decoder: refused there (tested below)
CASES = [(m, f) for m in sorted(TWINS) for f in ("t5", "bert", "llama") if f != "t5" or m not in NOT_T5]


def _finished(family, method, request, make_spec, tmp_path, task="rte", **train):
    model_dir = request.getfixturevalue(f"tiny_{family}_dir")
    config = TWINS[method][0] if method in TWINS else None
    spec = make_spec(
        model_dir, method=method, task=task, method_config=config,
        train={**train_for(model_dir), **FIRST, **train},
    )  # fmt: skip
    out = tmp_path / "results"
    record = run_worker(spec, out)
    assert record["status"] == "ok", record["error"]
    return spec, out, record


@pytest.mark.parametrize(("method", "family"), CASES)
def test_peft_adapter_predicts_the_runs_test_rows(family, method, request, make_spec, tmp_path):
    _check_export(family, method, request, make_spec, tmp_path)


# The other scoring mode of each family (the cases above: T5 scores labels, the causal LM generates), and
# regression (STS-B: T5 and causal LMs score its 26 values, BERT's classifier has one output).
OTHER_MODE = [("pt", "t5"), ("mpt", "t5"), ("lora", "t5")]
OTHER_MODE += [(m, "llama") for m in ("pt", "ptuning", "mpt", "prefix", "lora", "xprompt")]
STSB = [("pt", "t5"), ("lora", "t5"), ("pt", "llama")]
STSB += [(m, "bert_no_head") for m in ("pt", "prefix", "lora")]  # the fixture's 2-label head would not load


@pytest.fixture(scope="module")
def tiny_bert_no_head_dir(tmp_path_factory):
    """conftest's tiny BERT saved without its 2-label classifier, so that a 1-output (regression) head loads."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.3,
    )  # fmt: skip
    return _save_tiny(BertModel(config), tmp_path_factory.mktemp("tiny-bert-no-head"))


@pytest.mark.parametrize(("method", "family"), OTHER_MODE)
def test_the_other_eval_mode_exports_to_peft(family, method, request, make_spec, tmp_path):
    mode = "generate" if family == "t5" else "score"
    _check_export(family, method, request, make_spec, tmp_path, ["--verify"], eval_mode=mode)


@pytest.mark.parametrize(("method", "family"), STSB)
def test_regression_runs_export_to_peft(family, method, request, make_spec, tmp_path):
    _check_export(family, method, request, make_spec, tmp_path, ["--verify"], task="stsb")


def _check_export(family, method, request, make_spec, tmp_path, flags=(), task="rte", **train):
    """Train, export (``flags``: ``--verify`` also runs the CLI's own check), load with PEFT, compare."""
    spec, out, record = _finished(family, method, request, make_spec, tmp_path, task=task, **train)
    adapter = tmp_path / "adapter"
    assert (
        main(["export", spec.run_id, "--out", str(out), "--to", str(adapter), "--format", "peft", *flags])
        == 0
    )
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == TWINS[method][1]
    assert config["base_model_name_or_path"] == str(request.getfixturevalue(f"tiny_{family}_dir"))

    # PEFT's own loader on a fresh base, the run's test rows, PEFT's forward or generate
    train = spec.train_config()
    task, _, _, test, _ = prepare_data(spec, train)
    labels = task.label_strings()
    backbone, peft_model = load_adapter(adapter, spec.model, None if task.is_regression else labels, train)
    split = backbone.encode(test, labels)
    predicted = peft_predictions(backbone, peft_model, split, labels, train.eval_mode)
    assert predicted == record["predictions"]["test"]["predicted"]
    # Predictions can agree by luck (the tiny random T5 predicts one label whatever its prompt): the scores
    # behind them must agree too.
    _assert_same_scores(record, out, backbone, peft_model, split, labels)


def _scores(backbone, peft_model, batch, labels) -> torch.Tensor:
    """PEFT's scores ``[N, K]``: T5's and a causal LM's summed label log-probabilities, BERT's classifier
    logits (``K = 1`` for regression)."""
    if backbone.family == "decoder":
        return decoder_label_scores(backbone, peft_model, batch, labels)
    if backbone.family == "seq2seq":
        return peft_label_scores(backbone, peft_model, batch, labels)
    extra = {"token_type_ids": batch["token_type_ids"]} if batch.get("token_type_ids") is not None else {}
    with torch.no_grad():
        return peft_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
            **extra, **extra_inputs(peft_model, batch["input_ids"], batch["attention_mask"]),
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
    """PEFT's scores against the harness's on the rebuilt run (T5, causal LM: label scoring; BERT: logits), and
    against PEFT's own with the adapter zeroed (the adapter must move them, or the comparison is empty)."""
    ours, _, _, _, _ = rebuild(record, out)
    batch = split.batch(slice(None))
    with torch.no_grad():
        if ours.family == "decoder":  # the harness's own label scoring (one pass, the labels as a tree)
            expected = decoder_scores(ours, batch, labels)
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


@pytest.mark.parametrize("method", ["pt", "ptuning", "mpt", "prefix"])
def test_peft_called_with_left_padding_and_its_own_positions_differs(method, request, make_spec, tmp_path):
    """Why the causal LM's calling convention (bench/export/peft_decoder.py) is needed: PEFT's model given
    left-padded rows and no position ids scores the labels otherwise than the run (prompt in front of the
    pads; prefix: the text numbered from ``l``)."""
    spec, out, record = _finished("llama", method, request, make_spec, tmp_path, eval_mode="score")
    adapter = tmp_path / "adapter"
    assert main(["export", spec.run_id, "--out", str(out), "--to", str(adapter), "--format", "peft"]) == 0
    train = spec.train_config()
    task, _, _, test, _ = prepare_data(spec, train)
    labels = task.label_strings()
    backbone, peft_model = load_adapter(adapter, spec.model, labels, train)
    batch = backbone.encode(test, labels).batch(slice(None))
    ours, _, _, _, _ = rebuild(record, out)
    with torch.no_grad():
        expected = decoder_scores(ours, batch, labels)  # [N, K]
    prefix = (batch["labels"] == -100) & batch["attention_mask"].bool()
    lengths = prefix.sum(-1).tolist()
    n = 0 if method == "prefix" else peft_model.peft_config["default"].num_virtual_tokens
    task_ids = {"task_ids": torch.zeros(len(lengths), dtype=torch.long)} if method == "mpt" else {}
    worst = 0.0
    for k, text in enumerate(labels):
        target = backbone._target_ids(text)
        width = max(lengths) + len(target)
        ids = torch.full((len(lengths), width), backbone.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, length in enumerate(lengths):  # left-padded [pads ; prefix ; target]
            ids[i, width - length - len(target) :] = torch.tensor(
                batch["input_ids"][i, :length].tolist() + target
            )
            mask[i, width - length - len(target) :] = 1
        with torch.no_grad():
            logp = peft_model(input_ids=ids, attention_mask=mask, **task_ids).logits.float().log_softmax(-1)
        picked = logp[:, n + width - len(target) - 1 : n + width - 1]  # [N, T, V]
        score = picked.gather(-1, ids[:, width - len(target) :].unsqueeze(-1)).squeeze(-1).sum(-1)
        worst = max(worst, float((score - expected[:, k]).abs().max()))
    agreed = float((decoder_label_scores(backbone, peft_model, batch, labels) - expected).abs().max())
    print(
        f"\n{method}, {len(lengths)} rows, scores up to {float(expected.abs().max()):.3g}: max |delta score| "
        f"{agreed:.2g} called as peft_decoder.py says, {worst:.2g} left-padded with PEFT's own positions"
    )
    assert worst > 1e-2 > agreed, (worst, agreed)
