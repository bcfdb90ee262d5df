"""ptbench's whole run against the plain PEFT script (``scripts/plain_peft.py``), many steps rather than one.

``test_peft_equivalence.py`` checks one step's loss and gradients. This checks everything around it on real data
and the real MiniLM: the protocol's rows, the seeding before the backbone and LoRA are built, the batch order,
dynamic padding, dropout's random masks, clipping, AdamW and the schedule. Given PEFT's recipe (a constant rate
with no warm-up, the checkpoint's dropout 0.1, the last step kept, AdamW's decay 0.01 on the method and the
head; for PT also the prompt in front of [CLS] and ``init=peft_random``), ptbench's LoRA and PT on CB end at the
plain script's training loss, bit for bit, and predict the same test rows. The full-budget runs of
docs/quick-recipe.md#pt-too-bit-for-bit did the same on one machine (on another, a PT run can end elsewhere:
docs/quick-recipe.md#a-run-depends-on-the-machine).
"""

from __future__ import annotations

import argparse
import importlib.util

import pytest

from bench.planning.plan import RunRequest, plan
from bench.worker import execute
from tests.conftest import REPO

# Both sides train the real MiniLM (the harness and the plain PEFT script).
pytestmark = pytest.mark.slow

STEPS, BATCH, TRAIN_ROWS, MAX_LENGTH = 6, 4, 32, 32  # inputs cut to 32 tokens: seconds, not minutes


def _plain_script():
    spec = importlib.util.spec_from_file_location("plain_peft", REPO / "scripts" / "plain_peft.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# PEFT's recipe in ptbench's fields: a constant rate with no warm-up, the checkpoint's dropout (0.1), one
# evaluation at the end (the last step kept), AdamW's 0.01 decay on the method and on the head. PT also takes
# PEFT's placement (in front of [CLS]) and its random prompt drawn where PEFT draws it.
_RECIPE = {"schedule": "constant", "warmup_steps": "0", "dropout": "0.1", "head_weight_decay": "0.01"}
_METHOD = {
    "lora": ({}, {"weight_decay": "0.01"}, 3e-3),
    "pt": ({"encoder_prompt_position": "first"}, {"weight_decay": "0.01", "init": "peft_random"}, 3e-2),
}


def _plain_run(method: str) -> dict:
    args = argparse.Namespace(
        method=method, suite="superglue", task="cb", model="minilm", steps=STEPS, batch=BATCH,
        lr=_METHOD[method][2], num_tokens=20, max_length=MAX_LENGTH, max_train_samples=TRAIN_ROWS,
        max_eval_samples=500, text="plain", head_weight_decay=0.01,
    )  # fmt: skip
    return _plain_script().run(args, seed=42)


def _ptbench_run(data_dir, method: str, **changed: str) -> dict:
    train_extra, method_fields, _ = _METHOD[method]
    train = {
        **_RECIPE, **train_extra, "eval_every": str(STEPS), "batch_size": str(BATCH),
        "max_length": str(MAX_LENGTH), **changed,
    }  # fmt: skip
    request = RunRequest(
        suite="superglue",
        tasks=["cb"],
        methods=[method],
        seeds=[42],
        preset="quick",
        data_dir=str(data_dir),
        max_steps=STEPS,
        max_train_samples=TRAIN_ROWS,
        overrides={"train": train, method: dict(method_fields)},
    )
    (spec,) = plan(request)
    return execute(spec)


@pytest.mark.parametrize("method", ["lora", "pt"])
def test_pefts_recipe_trains_like_the_plain_peft_script(method, data_dir, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(data_dir))
    plain = _plain_run(method)
    ours = _ptbench_run(data_dir, method)
    if method == "lora":  # the quick preset's LoRA is PEFT's r=8, α=8 on q, v
        assert ours["spec"]["method_config"]["alpha"] == 8
    assert ours["steps"] == plain["steps"] == STEPS
    assert ours["final_loss"] == plain["final_loss"]  # the same operations in the same order: bit for bit
    assert ours["predictions"]["test"]["predicted"] == plain["predictions"]


def test_the_comparison_can_fail(data_dir, monkeypatch):
    """One recipe difference each (linear decay instead of a constant rate; the head's decay) moves the loss."""
    monkeypatch.setenv("BENCH_DATA_DIR", str(data_dir))
    plain = _plain_run("lora")
    for changed in ({"schedule": "linear"}, {"head_weight_decay": "0.0"}):
        assert _ptbench_run(data_dir, "lora", **changed)["final_loss"] != plain["final_loss"], changed
