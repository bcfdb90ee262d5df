"""Saved artifacts and ``bench eval``: a run's artifact rebuilds exactly its recorded dev/test metrics on tiny
T5 and tiny BERT (real RTE, a few steps), a tampered artifact does not, and bad input exits 2."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from bench.artifact_file import PROMPT_KEY
from bench.cli import main
from bench.results import read_record, record_path
from bench.worker import main as worker_main

TRAIN = {"max_length": "32", "max_eval_samples": "24", "eval_every": "3", "batch_size": "4"}


def train_for(model_dir) -> dict:
    """This file's training settings for a run on ``model_dir`` (a ``make_spec`` in conftest.py)."""
    if "t5" in str(model_dir):
        return {**TRAIN, "eval_mode": "score"}  # label scoring: a tiny random T5 generates no valid label
    return TRAIN


def run_worker(spec, out, *flags) -> dict:
    """The worker's own entry point, in-process: artifact first, then the record."""
    spec_file = out / f"{spec.run_id}.spec.json"
    out.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps(spec.to_dict()))
    path = record_path(out, spec)
    worker_main([str(spec_file), str(path), *flags])
    spec_file.unlink()
    return read_record(path)


@pytest.mark.parametrize("family", ["t5", "bert"])
def test_artifact_reproduces_metrics_and_tampering_is_caught(
    family, tiny_t5_dir, tiny_bert_dir, make_spec, tmp_path
):
    model_dir = tiny_t5_dir if family == "t5" else tiny_bert_dir
    spec = make_spec(model_dir, train=train_for(model_dir))
    out = tmp_path / "results"
    record = run_worker(spec, out)
    assert record["status"] == "ok", record["error"]
    assert record["artifact"] == f"artifacts/{spec.run_id}.safetensors"
    artifact = out / record["artifact"]
    assert record["artifact_bytes"] == artifact.stat().st_size > 0
    assert record["transfer"] is None
    tensors = load_file(str(artifact))
    assert set(tensors) == {"method.soft_prompt", PROMPT_KEY} | (
        {"head.0", "head.1"} if family == "bert" else set()
    )
    assert torch.equal(tensors[PROMPT_KEY], tensors["method.soft_prompt"])  # PT's exported prompt is P
    assert not list(artifact.parent.glob(".*.tmp"))  # atomic write left no temporary file

    assert main(["eval", spec.run_id[:8], "--out", str(out)]) == 0  # by a run-id prefix
    assert main(["eval", str(record_path(out, spec))]) == 0  # by record path
    assert record["metrics"]["test"]  # the compared metrics exist

    # Tampered values. BERT: the head flipped and scaled changes the predictions, so the metrics differ. The
    # tiny random T5 predicts one label whatever its prompt (its metrics cannot reveal a changed prompt), so
    # there the tampering is a prompt of the wrong shape, which must fail to load rather than evaluate.
    tampered = dict(tensors)
    if family == "bert":
        tampered["head.0"] = -tensors["head.0"] * 50
        tampered["method.soft_prompt"] = tensors["method.soft_prompt"] * -50 + 7
    else:
        tampered["method.soft_prompt"] = torch.cat([tensors["method.soft_prompt"]] * 2)
    save_file(tampered, str(artifact))
    assert main(["eval", spec.run_id, "--out", str(out)]) == 1
    # A broken file fails instead of evaluating.
    artifact.write_bytes(artifact.read_bytes()[:40])
    assert main(["eval", spec.run_id, "--out", str(out)]) == 1


def test_no_artifacts_flag_keeps_run_id_and_eval_bad_input(tiny_bert_dir, make_spec, tmp_path, capsys):
    spec = make_spec(tiny_bert_dir, train=train_for(tiny_bert_dir), seed=3)
    out = tmp_path / "results"
    record = run_worker(spec, out, "--no-artifacts")
    assert record["status"] == "ok" and record["run_id"] == spec.run_id
    assert record["artifact"] is None and record["artifact_bytes"] is None
    assert not (out / "artifacts").exists()
    assert main(["eval", spec.run_id, "--out", str(out)]) == 2  # nothing to load: a one-line error
    assert "--no-artifacts" in capsys.readouterr().err
    wrong = spec.run_id[:-1] + ("0" if spec.run_id[-1] != "0" else "1")
    assert main(["eval", wrong, "--out", str(out)]) == 2
    assert f"did you mean {spec.run_id!r}" in capsys.readouterr().err
