"""bench/cost: the fake-tensor step count equals what autograd saves on a real step, the fit check and the
largest batch that fits, the calibration cache, and ``bench run --dry-run``'s cost lines."""

from __future__ import annotations

import json

import pytest
import torch

from bench.cli import main
from bench.cost.calibrate import cached, calibrate
from bench.cost.estimate import peak_parts
from bench.cost.step import (
    StepShape,
    build_unloaded,
    count_saved,
    precision_context,
    predict_step,
    storages,
    synthetic_batch,
)

METHODS = {
    "pt": {"num_tokens": 4},
    "dept": {"num_tokens": 4, "rank": 2},
    "ept": {},
    "lpt": {"num_tokens": 3, "insert_layer": 1},
    "lora": {"rank": 2},
    "prefix": {"num_tokens": 4},
}
FAMILIES = {"tiny_t5_dir": "seq2seq", "tiny_bert_dir": "encoder", "tiny_llama_dir": "decoder"}


def _shape(model_dir, method: str, batch: int = 3, precision: str = "fp32") -> StepShape:
    # dropout 0.1: dropout masks are saved tensors too (the tiny models ship 0)
    config = json.dumps(METHODS[method])
    return StepShape(str(model_dir), method, config, batch, 24, 3, 2, precision, dropout=0.1)


def _measured(shape: StepShape, family: str) -> tuple[int, int, int, int]:
    """What autograd really saves on a real step of ``shape`` (a randomly initialised model)."""
    torch.manual_seed(0)
    backbone, _ = build_unloaded(shape, None)
    backbone.train(True)
    batch = synthetic_batch(family, shape.batch, shape.seq_len, shape.target_len)
    excluded = storages([backbone.model, *backbone.trainable_modules()])
    with precision_context(shape.precision):
        return count_saved(backbone.loss, batch, excluded)


@pytest.mark.slow
@pytest.mark.parametrize("fixture", FAMILIES)
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_saved_activations_predicted_equal_what_autograd_saves(fixture, precision, request):
    model_dir = request.getfixturevalue(fixture)
    for method in METHODS:
        shape = _shape(model_dir, method, precision=precision)
        predicted = predict_step(shape)
        saved, largest, forward, step = _measured(shape, FAMILIES[fixture])
        assert predicted.saved_bytes == saved, (method, predicted.saved_bytes, saved)
        assert predicted.largest_saved == largest, method
        assert (predicted.forward_flops, predicted.step_flops) == (forward, step), method
        assert predicted.saved_bytes > 0 and predicted.trainable_params > 0


@pytest.mark.slow
def test_t5_base_counts_in_seconds_without_weights():
    """T5-Base at the paper's shapes on fake tensors: weights fp32 (222.9M parameters and the prompt), PT's 100 x 768 trains,
    the saved bytes grow with the batch."""
    one = StepShape("t5-base", "pt", "{}", 2, 64, 2, 2, "fp32")
    two = StepShape("t5-base", "pt", "{}", 4, 64, 2, 2, "fp32")
    small, large = predict_step(one), predict_step(two)
    assert small.trainable_params == 100 * 768
    assert small.weights_bytes == 4 * (
        222_903_552 + 100 * 768
    )  # tied embeddings counted once, plus the prompt
    assert small.optimizer_bytes == 8 * 100 * 768
    assert large.saved_bytes > 1.9 * small.saved_bytes
    assert large.step_flops > 1.9 * small.step_flops


def test_largest_batch_that_fits_does_fit(tiny_t5_dir):
    """``(fixed, per_row)`` from batch 8 give a batch that, counted again at that batch, is within the budget,
    and one more row is not."""
    step = predict_step(_shape(tiny_t5_dir, "pt", batch=8))
    fixed, per_row, _ = peak_parts(step, 8, 1)
    budget = fixed + 5 * per_row + per_row // 2
    fits = (budget - fixed) // per_row
    assert fits == 5
    for batch, ok in ((fits, True), (fits + 1, False)):
        again = predict_step(_shape(tiny_t5_dir, "pt", batch=batch))
        f, row, _ = peak_parts(again, batch, 1)
        assert (f + row * batch <= budget) is ok


@pytest.mark.slow
def test_calibration_is_cached_per_device_and_shape(tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PTBENCH_CACHE_DIR", str(tmp_path))
    shape = _shape(tiny_bert_dir, "pt")
    assert cached(shape) is None
    entry = calibrate(shape, steps=2, warmup=1, eval_batch=4)
    assert entry["ms_per_step"] > 0 and entry["eval_ms_per_row"] > 0
    assert cached(shape) == entry
    assert cached(_shape(tiny_bert_dir, "pt", batch=4)) is None  # another shape is not this one's
    assert cached(shape, device="NVIDIA H100 80GB HBM3") is None  # nor another device's


@pytest.fixture
def dry_args(tiny_t5_dir, data_dir, tmp_path):
    return [
        "run",
        *("--tasks", "rte", "--seeds", "1", "--preset", "quick", "--methods", "pt,lora"),
        *("--model", str(tiny_t5_dir), "--data-dir", str(data_dir), "--out", str(tmp_path / "out")),
        "--dry-run",
    ]


@pytest.mark.slow
def test_dry_run_prints_each_runs_cost_and_the_total(dry_args, capsys):
    assert main([*dry_args, "--gpu", "a100-40gb"]) == 0
    out = capsys.readouterr().out
    assert "cost (predicted)" in out and "total: 2 runs" in out
    assert "PFLOP" in out and "peak memory" in out and "rows scored" in out
    assert "device assumed: a100-40gb" in out and "estimate" in out
    assert "over memory" not in out


@pytest.mark.slow
def test_a_plan_over_the_memory_budget_is_flagged_with_the_batch_that_fits(dry_args, capsys):
    assert main([*dry_args, "--gpu-memory", "0.05", "--set", "train.batch_size=64"]) == 0
    out = capsys.readouterr().out
    assert "over memory" in out and "the largest batch that fits is" in out
    batch = int(out.split("the largest batch that fits is ")[1].split()[0])
    assert 1 <= batch < 64


@pytest.mark.parametrize(
    ("extra", "expected"),
    [(["--gpu", "h1000"], "--gpu 'h1000' is not a known card"), (["--gpu-memory", "-1"], "must be > 0")],
)
def test_bad_cost_options_are_one_line_errors(dry_args, extra, expected, capsys):
    assert main([*dry_args, *extra]) == 2
    assert expected in capsys.readouterr().err


@pytest.mark.slow
def test_tune_states_the_cost_of_its_trial_budget(tiny_t5_dir, data_dir, tmp_path):
    """``bench tune``'s budget: the trials times each study's run, dev only (no test rows)."""
    import argparse
    import io

    from rich.console import Console

    from bench.cost.show import print_cost, print_tune_cost
    from bench.planning.plan import RunRequest, plan

    request = RunRequest(
        "glue", ["rte"], ["pt"], [42], "quick", str(tiny_t5_dir), str(data_dir), 20, out=str(tmp_path)
    )
    args = argparse.Namespace(gpu="h100", gpu_memory=None, calibrate=False)
    console = Console(file=io.StringIO(), width=200)
    tuned = print_tune_cost(request, 5, args, console)
    single = print_cost(plan(request), args, console)
    text = console.file.getvalue()
    assert "trial budget: 5 trials per study" in text and "total: 5 runs, 100 steps" in text
    assert tuned[0].rows_scored < single[0].rows_scored  # a trial scores dev only, a run also test


@pytest.mark.slow
def test_calibrate_times_each_shape_once_and_the_plan_uses_it(dry_args, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PTBENCH_CACHE_DIR", str(tmp_path / "cache"))
    assert main([*dry_args, "--calibrate"]) == 0
    assert "time calibrated on this device" in capsys.readouterr().out
    cache = json.loads((tmp_path / "cache" / "calibration.json").read_text())
    assert len(cache) == 2  # pt and lora on one task: two shapes
    assert main(dry_args) == 0  # no --calibrate: the cached timings of this device still apply
    assert "time calibrated on this device" in capsys.readouterr().out
