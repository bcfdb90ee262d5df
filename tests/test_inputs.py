"""Residual PT's folded prompt, XPrompt's pruning and rewinding, and the trainer's multi-stage plan."""

from __future__ import annotations

import itertools

import pytest
import torch

from bench.planning.plan import RunRequest, plan
from bench.spec import TrainConfig
from bench.training.optim import build_optimizer, trainable_parameters
from bench.training.stages import StagePlan
from bench.worker import execute
from methods.base import StageContext, TrainingStage
from tests.test_methods_train import EXAMPLES, MAX_LENGTH, _build


def _train(backbone, method, batch, steps: int) -> None:
    optimizer = build_optimizer(method, backbone, TrainConfig(head_lr=0.05))
    params = trainable_parameters(backbone)
    backbone.train(True)
    for _ in range(steps):
        backbone.loss(batch).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()


# ---- Residual PT ------------------------------------------------------------------------------------------


def test_residual_pt_saves_only_the_folded_prompt_and_predicts_identically(tiny_t5_dir):
    backbone, method = _build(tiny_t5_dir, "residual_pt", num_tokens="5", bottleneck="8")
    batch = backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    _train(backbone, method, batch, 3)
    backbone.train(False)
    with torch.no_grad():
        prompt_before = method.prompt(None, None).clone()
        loss_before = backbone.loss(batch)
        enc_before = backbone.run_encoder(batch["input_ids"], batch["attention_mask"])[0].last_hidden_state
    assert not torch.equal(prompt_before, method.soft_prompt)  # the MLP really changes the prompt

    state = method.saved_state()
    assert set(state) == {"prompt"}
    assert sum(v.numel() for v in state.values()) == method.counts().saved_params == 5 * 32

    # A fresh method (other init, untrained MLP) that loads the state predicts exactly as the trained one.
    _, fresh = _build(tiny_t5_dir, "residual_pt", num_tokens="5", bottleneck="8", init="uniform")
    fresh.load_saved_state(state)
    with torch.no_grad():
        for p in fresh.mlps.parameters():
            p.add_(1.0)  # the MLP takes no part after loading
    backbone.attach(fresh)
    backbone.train(False)
    with torch.no_grad():
        assert torch.equal(fresh.prompt(None, None), prompt_before)
        assert torch.equal(backbone.loss(batch), loss_before)
        enc_after = backbone.run_encoder(batch["input_ids"], batch["attention_mask"])[0].last_hidden_state
    assert torch.equal(enc_after, enc_before)


def test_residual_pt_mlp_has_its_own_learning_rate(tiny_t5_dir):
    backbone, method = _build(tiny_t5_dir, "residual_pt", num_tokens="3", bottleneck="4", mlp_lr="0.001")
    rates = {g["name"]: g["lr"] for g in build_optimizer(method, backbone, TrainConfig()).param_groups}
    assert rates == {"prompt": 0.05, "mlp": 0.001}


# ---- XPrompt ----------------------------------------------------------------------------------------------

XP = {"num_tokens": "8", "num_pieces": "4", "token_prune_ratio": "0.25", "piece_prune_ratio": "0.5"}


def test_xprompt_prunes_tokens_and_pieces_and_keeps_them_pruned(tiny_t5_dir):
    backbone, method = _build(tiny_t5_dir, "xprompt", score_batches="3", **XP)
    batch = backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    assert [s.name for s in method.training_stages(5)] == ["prompt_tuning", "rewind_retrain_1"]
    _train(backbone, method, batch, 3)  # stage 1
    stage1 = method.soft_prompt.detach().clone()

    context = StageContext(batches=itertools.repeat(batch), loss=backbone.loss)
    backbone.train(False)
    method.begin_stage(1, context)
    record = method.record()

    # Requested counts: round(0.25·8) = 2 tokens, then round(0.5·6·4) = 12 of the 24 pieces of kept tokens.
    assert record["pruned_tokens"] == 2 and sum(record["token_mask"]) == 6 and len(record["kept_tokens"]) == 6
    assert record["pruned_pieces"] == 12 and sum(map(sum, record["piece_mask"])) == 12
    # Trainable: what stage 1 trained (8 tokens × 32); saved: the 12 surviving pieces × 8 dims.
    assert (method.counts().trainable_params, method.counts().saved_params) == (8 * 32, 12 * 8)
    assert method.stage_trainable_params() == 12 * 8
    # The two lowest-scoring tokens are the ones removed.
    scores = torch.tensor(record["token_importance"])
    dropped = [i for i in range(8) if i not in record["kept_tokens"]]
    assert set(torch.argsort(scores, stable=True)[:2].tolist()) == set(dropped)

    # Pruned tokens are gone from the sequence: the encoder sees l_kept + s positions.
    assert method.num_virtual_tokens == 6
    enc, mask = backbone.run_encoder(batch["input_ids"], batch["attention_mask"])
    assert enc.last_hidden_state.shape[1] == mask.shape[1] == 6 + MAX_LENGTH

    # Rewind: the kept entries start from their stage-1 final values; pruned pieces are zero.
    zero = method._expanded_mask() == 0
    assert torch.equal(method.soft_prompt[~zero], stage1[record["kept_tokens"]][~zero])
    assert bool((method.soft_prompt[zero] == 0).all())

    _train(backbone, method, batch, 4)  # stage 3 with the masks fixed
    assert bool((method.soft_prompt[zero] == 0).all()), "pruned entries moved in stage 3"
    assert not torch.equal(method.soft_prompt[~zero], stage1[record["kept_tokens"]][~zero])

    # The saved state holds the surviving entries only and reproduces the prompt.
    state = method.saved_state()
    assert state["values"].numel() == method.counts().saved_params
    _, fresh = _build(tiny_t5_dir, "xprompt", **XP)
    fresh.load_saved_state(state)
    assert torch.equal(fresh.prompt(None, None), method.prompt(None, None))
    assert fresh.num_virtual_tokens == 6


def test_xprompt_through_the_worker_on_tiny_t5(tiny_t5_dir, data_dir):
    """Stages, masks and per-stage counts reach the record; the same spec twice gives the same result."""
    request = RunRequest(
        suite="glue",
        tasks=["rte"],
        methods=["xprompt"],
        seeds=[3],
        preset="quick",
        model=str(tiny_t5_dir),
        data_dir=str(data_dir),
        max_steps=4,
        max_train_samples=32,
        overrides={
            "train": {"max_length": "32", "max_eval_samples": "8", "eval_every": "2", "batch_size": "4"},
            "xprompt": {**XP, "score_batches": "2"},
        },
    )
    (spec,) = plan(request)
    record = execute(spec)
    assert record["status"] == "ok" and record["steps"] == 8
    stages = record["method_record"]["stages"]
    assert [(s["name"], s["steps"]) for s in stages] == [("prompt_tuning", 4), ("rewind_retrain_1", 4)]
    assert stages[0]["trainable_params"] == 8 * 32 and stages[1]["trainable_params"] == 12 * 8
    assert all(s["train_time_s"] > 0 for s in stages) and stages[1]["prepare_time_s"] > 0
    assert (record["trainable_params"], record["saved_params"]) == (8 * 32, 12 * 8)
    assert record["virtual_tokens"] == 6
    assert record["method_record"]["pruned_tokens"] == 2 and record["method_record"]["pruned_pieces"] == 12
    # Dev evaluation runs in the final stage only (global steps 5..8).
    assert [h["step"] for h in record["metrics"]["dev_history"]] == [6, 8]
    again = execute(spec)
    assert again["metrics"]["dev_history"] == record["metrics"]["dev_history"]
    assert again["method_record"]["kept_tokens"] == record["method_record"]["kept_tokens"]
    assert again["final_loss"] == record["final_loss"]


# ---- the stage plan ---------------------------------------------------------------------------------------


def test_one_stage_plan_evaluates_as_the_plain_loop():
    stage_plan = StagePlan([TrainingStage("train", 10)])
    assert stage_plan.total_steps == 10
    assert [s for s in range(1, 11) if stage_plan.evaluates(s, 3)] == [3, 6, 9, 10]
    assert all(stage_plan.starts_later_stage(s) is None for s in range(1, 11))


def test_multi_stage_plan_evaluates_in_the_final_stage_only():
    stage_plan = StagePlan([TrainingStage("a", 5), TrainingStage("b", 5)])
    assert stage_plan.total_steps == 10 and stage_plan.starts_later_stage(6) == 1
    assert [s for s in range(1, 11) if stage_plan.evaluates(s, 2)] == [7, 9, 10]
    with pytest.raises(ValueError, match="max_steps=0"):
        StagePlan([TrainingStage("a", 0)])
