"""Every method runs with its backbone on a second device: no tensor is created on the CPU by mistake.

Every other test runs on the CPU, where a mask, position table, index or frozen projection made without
``device=`` works by accident and fails only on a user's first CUDA run. Here the model and the method are moved
to a simulated device (``tests/sim_device.py``: real CPU values under a ``meta`` device label, with CUDA's rule
that an op may not mix a device tensor with a CPU tensor of one or more dimensions), the batch is moved as the
trainer moves it, and the whole path runs: the training loss and its backward pass, one optimiser step (clipping
included), every later training stage (XPrompt's pruning), prediction in both evaluation modes under
``torch.inference_mode`` (generation included), and saving and reloading the method's state. The loss and the
gradients on the device must match the CPU run's, so the simulation computes what the CPU computes.

Checked to fail: with ``torch.arange(q, device=query.device)`` in ``methods/prefix.py``'s prefix attention mask
turned into ``torch.arange(q)``, ``[t5-prefix]`` fails with ``DeviceMismatch: aten.le.Tensor: tensors on two
devices``; ``test_a_tensor_made_without_the_device_fails`` keeps that property checked in CI.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from bench.spec import TrainConfig
from bench.training.optim import build_optimizer, trainable_parameters
from methods.base import StageContext
from methods.registry import list_methods
from tests.sim_device import DeviceMismatch, OnDevice, on_sim_device, sim_modes, to_sim
from tests.test_methods_train import EXAMPLES, _build

LABELS = ["0", "1"]
MODES = ("generate", "score")


def _grads(backbone) -> list[torch.Tensor | None]:
    return [p.grad for p in trainable_parameters(backbone)]


def _predictions(backbone, batch, inference=torch.inference_mode) -> dict[str, list[str]]:
    backbone.train(False)
    with inference():
        out = {mode: backbone.predict(batch, mode, LABELS) for mode in MODES}
    backbone.train(True)
    return out


# PT-MoE's experts start equal (every A_i the same SVD factor), so which expert a row goes to leaves the loss as
# it is but moves that row's gradient to another expert: its noisy top-1 choice flipped between the two runs
# with one torch thread. Without the noise the choice is the router's alone, the same on both runs.
QUIET_ROUTER = {"ptmoe": {"noise_std": 0.0}}


@pytest.mark.slow
@pytest.mark.parametrize("method_name", list_methods())
def test_method_runs_on_a_second_device(tiny_model_dir, method_name):
    # The method's initial values from a fixed seed, not from whatever ran before in this process: a routed
    # mixture's top-k choice depends on them, and a near-tie can flip on round-off between the two runs.
    torch.manual_seed(0)
    backbone, method = _build(tiny_model_dir, method_name, **QUIET_ROUTER.get(method_name, {}))
    backbone.max_new_tokens = 3  # a label and its EOS: generation runs, the test stays short
    batch = backbone.encode(EXAMPLES, LABELS).batch(slice(None))
    # The CPU run: predictions, then one loss and its gradients (same dropout draws on both runs).
    expected = _predictions(backbone, batch)
    backbone.train(True)
    torch.manual_seed(0)
    cpu_loss = backbone.loss(batch)
    cpu_loss.backward()
    cpu_grads = [g.clone() for g in _grads(backbone)]
    for p in trainable_parameters(backbone):
        p.grad = None

    with on_sim_device(backbone):
        params = trainable_parameters(backbone)
        assert params and all(isinstance(p, OnDevice) for p in params)
        moved = to_sim(batch)
        assert _predictions(backbone, moved, torch.no_grad) == expected
        torch.manual_seed(0)
        loss = backbone.loss(moved)
        loss.backward()
        assert isinstance(loss, OnDevice)
        torch.testing.assert_close(loss.item(), cpu_loss.item(), rtol=1e-5, atol=0)
        for grad, cpu_grad in zip(_grads(backbone), cpu_grads, strict=True):
            assert isinstance(grad, OnDevice)
            # The wrapper's path is not bit for bit on every backbone (Llama's loss differs by ~1e-6): the absolute
            # tolerance scales with the tensor's largest gradient (ACCEPT's shared codebook sums 60 rows' grads).
            scale = max(1.0, float(cpu_grad.abs().max()))
            torch.testing.assert_close(grad.cpu(), cpu_grad, rtol=1e-4, atol=1e-6 * scale)

        optimizer = build_optimizer(method, backbone, TrainConfig(head_lr=0.05))
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        for index in range(1, len(method.training_stages(4))):  # XPrompt: prune and rewind between stages
            context = StageContext(batches=itertools.repeat(moved), loss=backbone.loss)
            backbone.train(False)
            method.begin_stage(index, context)
            backbone.train(True)
            backbone.loss(moved).backward()
        _predictions(backbone, moved, torch.no_grad)
        method.load_saved_state(method.saved_state())
        method.record()


def test_a_tensor_made_without_the_device_fails(tiny_t5_dir):
    """The check itself: a method that adds a CPU tensor to its prompt fails on the device, not on the CPU."""
    backbone, method = _build(tiny_t5_dir, "pt")
    prompt = method.prompt

    def stray_prompt(embeds, mask):
        return prompt(embeds, mask) + torch.ones(method.soft_prompt.shape[-1])  # no device=: a bug

    method.prompt = stray_prompt
    batch = backbone.encode(EXAMPLES, LABELS).batch(slice(None))
    backbone.loss(batch).backward()  # fine on the CPU
    with on_sim_device(backbone), pytest.raises(DeviceMismatch, match="two devices"):
        backbone.loss(to_sim(batch))


def test_text_and_vocabulary_inits_read_a_moved_backbone(tiny_t5_dir):
    """``embed_text``/``embed_random_vocab`` (DePT's text init, vocabulary draws) on a backbone already on the
    device: the ids follow the embedding weights, and the values are the CPU's."""
    backbone, _ = _build(tiny_t5_dir, "pt")
    text = backbone.embed_text("classify the sentiment", 5)
    vocab = backbone.embed_random_vocab(5, torch.Generator().manual_seed(3))
    with on_sim_device(backbone):
        on_device = backbone.embed_text("classify the sentiment", 5)
        drawn = backbone.embed_random_vocab(5, torch.Generator().manual_seed(3))
        assert isinstance(on_device, OnDevice) and isinstance(drawn, OnDevice)
        assert torch.equal(on_device.cpu(), text) and torch.equal(drawn.cpu(), vocab)


def test_mpt_peft_task_ids_follow_the_batch():
    from methods.mpt import MPT

    batch = to_sim({"input_ids": torch.zeros(3, 4, dtype=torch.long)})
    with sim_modes():
        assert isinstance(MPT.peft_inputs(batch)["task_ids"], OnDevice)
