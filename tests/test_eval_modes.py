"""Label scoring and greedy generation agree on T5 once the model emits label strings (the Performance issue:
scoring must give the same predictions as generation where both run; ``bench perf --eval`` times the two)."""

from __future__ import annotations

import torch

from bench.spec import TrainConfig
from bench.training.optim import build_optimizer, trainable_parameters
from tests.test_methods_train import EXAMPLES, _build

LABELS = ["0", "1"]


def test_scoring_and_generation_give_the_same_predictions_on_a_trained_t5(tiny_t5_dir):
    backbone, method = _build(tiny_t5_dir, "finetune", lr="3e-3")
    split = backbone.encode(EXAMPLES, LABELS)
    batch = split.batch(slice(None))
    optimizer = build_optimizer(method, backbone, TrainConfig())
    params = trainable_parameters(backbone)
    for _ in range(40):  # until greedy decoding writes label strings (and has learnt the four sentences)
        loss = backbone.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()
    backbone.train(False)
    unseen = [type(e)(e.source[::-1], e.target, e.label) for e in EXAMPLES[:4]]  # reversed sentences
    test = backbone.encode([*EXAMPLES[:4], *unseen], LABELS)
    with torch.inference_mode():
        generated = backbone.predict(test.batch(slice(None)), "generate", LABELS)
        scored = backbone.predict(test.batch(slice(None)), "score", LABELS)
    assert set(generated) <= set(LABELS), f"generation wrote non-label strings: {generated}"
    assert scored == generated
